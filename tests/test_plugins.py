"""Plugin discovery: built-ins through hooks, third parties through entry points."""

import sys
import textwrap

import pytest
import torch

import automm
from automm import Encoder, PluginError, UnknownComponentError, hookimpl
from automm.registry import DISABLE_AUTOLOAD_ENV


def test_builtin_components_are_registered_through_hooks(builtin_only):
    assert {"cnn", "resnet", "gru", "transformer", "hashed_ngram", "tabular"} <= set(automm.list_encoders())
    assert set(automm.list_fusions()) >= {"concat", "attention", "gated", "late"}
    assert {"random_resized_crop", "horizontal_flip", "color_jitter", "token_dropout", "token_swap",
            "modality_dropout", "mixup"} <= set(automm.list_augmentations())
    assert automm.list_encoders(modality="image") == ["cnn", "resnet"]
    assert automm.list_encoders("hash*") == ["hashed_ngram"]
    spec = automm.get_registry().get("encoder", "cnn")
    assert spec.provider == "automm.components.image"


def test_unknown_name_lists_known_names(builtin_only):
    with pytest.raises(UnknownComponentError, match="unknown encoder 'cnnn'. Did you mean 'cnn'.*Known encoders: cnn, gru"):
        automm.create_encoder("cnnn")


def test_create_encoder_applies_hyperparameters():
    encoder = automm.create_encoder("cnn", output_dim=24, image_size=32)
    assert encoder.output_dim == 24


class ConstantEncoder(Encoder):
    modality = "text"

    def __init__(self, output_dim=3):
        super().__init__()
        self.output_dim = output_dim
        self.scale = torch.nn.Parameter(torch.ones(1))

    def preprocess(self, value, augment=None):
        return torch.tensor(float(len(str(value))))

    def forward(self, batch):
        return batch.view(-1, 1).repeat(1, self.output_dim) * self.scale


class ConstantPlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("constant", ConstantEncoder, modality="text", output_dim=lambda hp: hp["output_dim"],
                 defaults={"output_dim": 3})


def test_in_process_plugin_joins_and_is_used_by_fit(fresh_registry):
    fresh_registry(ConstantPlugin())
    assert "constant" in automm.list_encoders()
    clf = automm.AutoMM(encoders={"text": "constant"}, column_types={"x0": "text"}, max_epochs=1, random_state=0,
                         num_workers=0)
    clf.fit(["a", "bb", "ccc", "dddd"] * 5, [0, 1, 0, 1] * 5)
    assert clf.config_["encoders"]["text_0"]["name"] == "constant"


def test_duplicate_names_fail_naming_both_providers(fresh_registry):
    class Duplicate:
        @hookimpl
        def automm_register_encoders(self, register):
            register("cnn", ConstantEncoder, modality="text")

    with pytest.raises(PluginError, match="duplicate encoder name 'cnn'.*automm.components.image.*and by plugin"):
        fresh_registry(Duplicate())


def test_invalid_registration_is_rejected(fresh_registry):
    class Bad:
        @hookimpl
        def automm_register_fusions(self, register):
            register("Bad Name!", object)

    with pytest.raises(PluginError, match="invalid fusion.*'Bad Name!'"):
        fresh_registry(Bad())


def test_a_plugin_dataset_is_listed_loaded_and_used_by_a_recipe(fresh_registry, tmp_path):
    import pandas as pd

    from automm.recipes import RecipeError, fit_recipe, load_recipe

    def load_words():
        words = ["red apple", "green pear", "ripe banana", "sour lemon"] * 6
        return pd.DataFrame({"text": words, "label": [w.split()[1] for w in words],
                             "split": ["train"] * 16 + ["test"] * 8})

    class WordsPlugin:
        @hookimpl
        def automm_register_datasets(self, register):
            register("fruit_words", load_words, columns=("text", "label", "split"), description="fruit names")

    fresh_registry(WordsPlugin())
    assert "emoji" in automm.list_datasets() and "fruit_words" in automm.list_datasets()
    assert list(automm.load_dataset("fruit_words").columns) == ["text", "label", "split"]
    recipe = {"data": {"sample": "fruit_words", "label": "label", "split_column": "split"},
              "training": {"max_epochs": 1, "num_workers": 0}, "output": {"dir": str(tmp_path / "m")}}
    result = fit_recipe(recipe)
    assert result.test_metrics["n"] == 8
    with pytest.raises(RecipeError, match=r"data.sample.*did you mean 'fruit_words'"):
        load_recipe(dict(recipe, data={"sample": "fruit_word", "label": "label"}))
    with pytest.raises(RecipeError, match=r"data.label.*'labl'"):
        load_recipe(dict(recipe, data={"sample": "fruit_words", "label": "labl"}))


def test_a_dataset_loader_must_give_a_split_column(fresh_registry):
    import pandas as pd

    class NoSplit:
        @hookimpl
        def automm_register_datasets(self, register):
            register("no_split", lambda: pd.DataFrame({"x": [1]}))

    fresh_registry(NoSplit())
    with pytest.raises(PluginError, match="dataset 'no_split'.*'split' column"):
        automm.load_dataset("no_split")
    with pytest.raises(UnknownComponentError, match="Known datasets: emoji"):
        automm.load_dataset("nope")


@pytest.fixture
def installed_distribution(tmp_path, monkeypatch):
    """A real distribution on sys.path: a module plus a dist-info with an ``automm`` entry point."""
    (tmp_path / "automm_hello_plugin.py").write_text(textwrap.dedent('''
        import torch
        from automm import Encoder, hookimpl

        class HelloEncoder(Encoder):
            modality = "text"
            def __init__(self, output_dim=2):
                super().__init__()
                self.output_dim = output_dim
                self.linear = torch.nn.Linear(1, output_dim)
            def preprocess(self, value, augment=None):
                return torch.tensor([float(len(str(value)))])
            def forward(self, batch):
                return self.linear(batch)

        @hookimpl
        def automm_register_encoders(register):
            register("hello", HelloEncoder, modality="text", output_dim=2, defaults={"output_dim": 2})
    '''))
    dist = tmp_path / "automm_hello_plugin-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: automm-hello-plugin\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[automm]\nhello = automm_hello_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.invalidate_caches()
    yield
    sys.modules.pop("automm_hello_plugin", None)
    automm.reset_registry()


def test_entry_point_plugin_is_discovered_from_package_metadata(installed_distribution, monkeypatch):
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    registry = automm.reset_registry()
    spec = registry.get("encoder", "hello")
    assert spec.package == "automm-hello-plugin 1.2.3"
    assert automm.create_encoder("hello").output_dim == 2


def test_autoload_can_be_switched_off(installed_distribution, monkeypatch):
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    assert "hello" not in automm.reset_registry().names("encoder")


def test_a_broken_installed_plugin_is_skipped_with_a_warning_naming_it(tmp_path, monkeypatch):
    dist = tmp_path / "automm_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: automm-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[automm]\nbroken = automm_broken_module_that_is_missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    from automm.registry import PluginLoadWarning

    with pytest.warns(PluginLoadWarning, match="'broken' from automm-broken 0.1 could not be loaded"):
        registry = automm.reset_registry()
    assert "cnn" in registry.names("encoder")
    monkeypatch.undo()
    automm.reset_registry()
