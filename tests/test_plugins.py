"""Plugin discovery: built-ins through hooks, third parties through entry points."""

import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import automm
from automm import Encoder, PluginError, UnknownComponentError, hookimpl
from automm.registry import DISABLE_AUTOLOAD_ENV

from helpers import tiny, write_manifest


def test_builtin_components_are_registered_through_hooks(builtin_only):
    assert {"cnn", "resnet", "gru", "transformer", "hashed_ngram", "tabular"} <= set(automm.list_encoders())
    assert set(automm.list_fusions()) >= {"concat", "attention", "gated", "late"}
    assert {"random_resized_crop", "horizontal_flip", "color_jitter", "token_dropout", "token_swap",
            "modality_dropout", "mixup"} <= set(automm.list_augmentations())
    assert automm.list_encoders(modality="image") == ["cnn", "colour_histogram", "resnet"]
    assert automm.list_encoders("hash*") == ["hashed_ngram"]
    spec = automm.get_registry().get("encoder", "cnn")
    assert spec.provider == "automm.components.image"


def test_a_modality_filter_that_can_only_list_nothing_is_refused(builtin_only):
    """list_fusions(modality="image") and list_encoders(modality="imgae") returned [] silently:
    fusions and datasets have no modality, and no component has the misspelt one."""
    assert automm.list_augmentations(modality="batch") == ["mixup", "modality_dropout"]
    assert automm.list_augmentations(modality="tabular") == []  # a modality, with no augmentation
    with pytest.raises(automm.InputError, match=r"unknown modality 'imgae'.*did you mean 'image'"):
        automm.list_encoders(modality="imgae")
    with pytest.raises(automm.InputError, match=r"list_fusions: modality: fusions have no modality"):
        automm.list_fusions(modality="image")
    with pytest.raises(automm.InputError, match=r"list_datasets: modality: datasets have no modality"):
        automm.list_datasets(modality="image")


def test_create_functions_name_a_misspelt_hyperparameter(builtin_only):
    """create_encoder("cnn", widht=16) raised the factory's bare TypeError, with no did-you-mean."""
    with pytest.raises(automm.InputError, match=r"create_encoder: encoder 'cnn' has no hyperparameter 'widht' "
                                                r"\(did you mean 'width'\?\)"):
        automm.create_encoder("cnn", widht=16)
    with pytest.raises(automm.InputError, match=r"create_fusion: fusion 'concat' has no hyperparameter 'proj'"):
        automm.create_fusion("concat", {"a": 4}, 2, proj=3)
    with pytest.raises(automm.InputError, match=r"create_augmentation: .* 'alhpa' \(did you mean 'alpha'\?\)"):
        automm.create_augmentation("mixup", alhpa=1.0)
    assert automm.create_encoder("cnn", width=8).output_dim > 0
    assert automm.create_encoder("tabular", column_roles={"a": "numeric"}) is not None  # given by automm in a fit


def test_unknown_name_lists_known_names(builtin_only):
    with pytest.raises(UnknownComponentError, match="unknown encoder 'cnnn'. Did you mean 'cnn'.*Known encoders: boosted_trees, cnn, colour_histogram, gru"):
        automm.create_encoder("cnnn")


def test_an_unknown_name_says_how_installed_plugins_are_found(monkeypatch):
    from automm.registry import Registry, get_plugin_manager

    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    registry = Registry(get_plugin_manager(load_entrypoints=False))
    with pytest.raises(UnknownComponentError, match=r"unknown fusion 'xattn'. Known fusions: .*\. Installed plugins "
                                                    r"are found through the 'automm' entry-point group \(\[project"
                                                    r"\.entry-points\.automm\] in a plugin's pyproject.toml\); "
                                                    r"`automm plugins` lists what loaded"):
        registry.get("fusion", "xattn")
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    with pytest.raises(UnknownComponentError, match=f"{DISABLE_AUTOLOAD_ENV} is set: installed plugins are not loaded"):
        registry.get("fusion", "xattn")


@pytest.mark.parametrize("hook", ["automm_register_encoders", "automm_register_fusions",
                                  "automm_register_augmentations"])
def test_the_register_hooks_document_tags_and_manual(hook):
    from automm import hookspecs

    doc = getattr(hookspecs, hook).__doc__
    assert 'description="", tags=())' in " ".join(doc.split())
    assert '"manual"' in doc


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


class WaveformPlugin:
    """A modality whose check reads float arrays of samples in [-1, 1] (a clip, mono or stereo) and
    no role rule: such a column takes the role only through column_types."""

    @hookimpl
    def automm_register_encoders(self, register):
        register("waveform_constant", ConstantEncoder, modality="waveform", output_dim=lambda hp: hp["output_dim"],
                 defaults={"output_dim": 3})
        register("spectrum_constant", ConstantEncoder, modality="spectrum", output_dim=lambda hp: hp["output_dim"],
                 defaults={"output_dim": 3})  # a modality whose plugin checks no values: never named

    @hookimpl
    def automm_check_column(self, role, name, values):
        if role != "waveform":
            return None
        return [(row, "not samples in [-1, 1]") for row, v in enumerate(values)
                if not (isinstance(v, np.ndarray) and v.dtype.kind == "f" and np.abs(v).max() <= 1)]


def test_arrays_the_core_refuses_name_the_installed_modalities_that_read_them(builtin_only, fresh_registry):
    """A column of bare 1-D float arrays (mono audio) was refused as "vectors of numbers", 2-D ones
    (stereo) as float images out of [0, 1], with no word of the installed plugin modality that reads
    them with column_types: the messages name each modality whose plugin's check reads the values."""
    fresh_registry(WaveformPlugin())
    rng = np.random.default_rng(0)
    y = [0, 1] * 6
    mono = pd.DataFrame({"clip": [rng.uniform(-0.5, 0.5, 400) for _ in y]})
    stereo = pd.DataFrame({"clip": [rng.uniform(-0.5, 0.5, (400, 2)) for _ in y]})
    hint = r"; or, if they are waveform values, column_types=\{'clip': 'waveform'\} \(the modality of plugin.*\)$"
    with pytest.raises(automm.InputError, match=r"values are vectors of numbers .*add_prefix\('clip_'\)" + hint):
        automm.AutoMM(max_epochs=1).fit(mono, y)
    with pytest.raises(automm.InputError, match=r"float image arrays must hold values in \[0, 1\].*" + hint) as caught:
        automm.AutoMM(max_epochs=1).fit(stereo, y)
    assert "spectrum" not in str(caught.value)
    # values the modality's check refuses (embeddings beyond [-1, 1]) name no modality
    with pytest.raises(automm.InputError, match=r"give each number its own column.*add_prefix\('clip_'\)$"):
        automm.AutoMM(max_epochs=1).fit(pd.DataFrame({"clip": [rng.normal(0, 5, 8) for _ in y]}), y)


def test_a_fitted_models_errors_suggest_no_other_column_types(builtin_only, fresh_registry):
    """predict's refusal of arrays that are no images ended with "or, if they are waveform values,
    column_types={...}": a fitted model's column types are fixed, so only fit says it."""
    fresh_registry(WaveformPlugin())
    rng = np.random.default_rng(0)
    y = [0, 1] * 6
    model = automm.AutoMM(**tiny(max_epochs=1)).fit(
        pd.DataFrame({"clip": [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in y]}), y)
    stereo = pd.DataFrame({"clip": [rng.uniform(-0.5, 0.5, (400, 2)) for _ in y]})
    for method in (model.predict, model.transform, lambda X: model.score(X, y)):
        with pytest.raises(automm.InputError, match=r"float image arrays must hold values in \[0, 1\]") as caught:
            method(stereo)
        assert "column_types" not in str(caught.value) and "waveform" not in str(caught.value)


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


def test_tags_or_columns_given_as_one_string_are_refused(fresh_registry):
    """tags="manual" was read as the tags 'm', 'a', 'n', ...: the fusion was silently not manual,
    and the search tried it by default; columns="text" named five one-letter columns."""
    from automm.components.fusions import SumFusion

    class OneString:
        @hookimpl
        def automm_register_fusions(self, register):
            register("my_sum", SumFusion, tags="manual")

    with pytest.raises(PluginError, match=r"fusion 'my_sum'.*tags='manual' is one string.*tags=\('manual',\)"):
        fresh_registry(OneString())

    class OneColumn:
        @hookimpl
        def automm_register_datasets(self, register):
            register("words", lambda: None, columns="text")

    with pytest.raises(PluginError, match=r"columns='text' is one string"):
        fresh_registry(OneColumn())


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


def _install_fake_plugin(tmp_path, monkeypatch, module: str, source: str, version: str = "0.1",
                         entry_point: str | None = None) -> str:
    """A distribution ``automm-<module>`` with one ``automm`` entry point (named ``entry_point``,
    else after the module), as pip would leave it; returns "name version"."""
    import importlib

    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    dist = tmp_path / f"{module}-{version}.dist-info"
    dist.mkdir()
    name = module.replace("_", "-")
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist / "entry_points.txt").write_text(f"[automm]\n{entry_point or module} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    importlib.invalidate_caches()
    return f"{name} {version}"


_PLUGIN_HEADER = """
    import torch
    from automm import Encoder, hookimpl

    class Width(Encoder):
        modality = "text"
        static_preprocess = True
        def __init__(self, output_dim=2):
            super().__init__()
            self.output_dim = output_dim
            self.linear = torch.nn.Linear(1, output_dim)
        def preprocess(self, value, augment=None):
            return torch.tensor([float(len(str(value)))])
        def forward(self, batch):
            return self.linear(batch)
"""

@pytest.fixture
def installed_distribution(tmp_path, monkeypatch):
    """A real distribution on sys.path: a module plus a dist-info with an ``automm`` entry point."""
    _install_fake_plugin(tmp_path, monkeypatch, "automm_hello_plugin", _PLUGIN_HEADER + """
    @hookimpl
    def automm_register_encoders(register):
        register("hello", Width, modality="text", output_dim=2, defaults={"output_dim": 2})
    """, version="1.2.3", entry_point="hello")
    yield
    sys.modules.pop("automm_hello_plugin", None)
    automm.reset_registry()


def test_entry_point_plugin_is_discovered_from_package_metadata(installed_distribution, monkeypatch):
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    registry = automm.reset_registry()
    spec = registry.get("encoder", "hello")
    assert spec.package == "automm-hello-plugin 1.2.3"
    assert automm.create_encoder("hello").output_dim == 2


def test_an_installed_plugin_module_given_to_reset_registry_too_is_registered_once(installed_distribution):
    """The guide's test step, run once the package is installed, had failed with pluggy's "Plugin
    already registered under a different name" and a dump of every plugin."""
    import importlib

    module = importlib.import_module("automm_hello_plugin")
    registry = automm.reset_registry([module])
    assert registry.get("encoder", "hello").package == "automm-hello-plugin 1.2.3"

    class Other:
        pass

    twin = type("Other", (), {"__module__": Other.__module__, "__qualname__": Other.__qualname__})()
    with pytest.raises(automm.PluginError, match="another plugin is registered as .*give each plugin its own"):
        automm.reset_registry([Other(), twin])


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

    # the category a program filters by is public, beside AutoMMWarning
    with pytest.warns(automm.PluginLoadWarning, match="'broken' from automm-broken 0.1 is skipped: could not be loaded"):
        registry = automm.reset_registry()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=automm.PluginLoadWarning)
        automm.reset_registry()
    assert "cnn" in registry.names("encoder")
    # a component it would have registered is unknown: the message says which plugin was skipped, and why
    with pytest.raises(UnknownComponentError, match=r"unknown fusion 'xattn'.*Installed plugins skipped, so their "
                                                    r"components are missing: 'broken' \(automm-broken 0.1\) could "
                                                    r"not be loaded: ModuleNotFoundError.*`automm plugins` lists them"):
        automm.create_fusion("xattn", {"text_0": 4}, 2)
    monkeypatch.undo()
    automm.reset_registry()


# What a plugin author gets wrong, and what each installed package then does to automm.
_BROKEN_PLUGINS = {
    "a hook argument not named register": ("""
    @hookimpl
    def automm_register_encoders(regster):
        regster("typo_arg", Width, modality="text")
    """, "could not be registered: .*regster"),
    "a registration hook that raises": ("""
    @hookimpl
    def automm_register_encoders(register):
        raise RuntimeError("the weights package is missing")
    """, "its components could not be registered: automm_register_encoders raised RuntimeError: the weights "
         "package is missing"),
    "a registration hook that raises a KeyError": ("""
    @hookimpl
    def automm_register_encoders(register):
        raise KeyError("size")
    """, "automm_register_encoders raised KeyError: 'size'"),
    "a name a built-in has": ("""
    @hookimpl
    def automm_register_encoders(register):
        register("cnn", Width, modality="text")
    """, "duplicate encoder name 'cnn': registered by plugin 'automm.components.image' and by plugin"),
    "a built-in name registered first (trylast)": ("""
    @hookimpl(trylast=True)
    def automm_register_encoders(register):
        register("cnn", Width, modality="text")
    """, "duplicate encoder name 'cnn': registered by plugin .* and by plugin 'automm.components.image'"),
    "a register keyword misspelt": ("""
    @hookimpl
    def automm_register_encoders(register):
        register("typo_kw", Width, modallity="text")
    """, "unknown keyword 'modallity' \\(did you mean 'modality'\\?\\)"),
}


@pytest.mark.parametrize("mistake", sorted(_BROKEN_PLUGINS))
def test_an_installed_plugin_that_cannot_register_is_skipped_and_listed(mistake, tmp_path, monkeypatch, capsys):
    from automm.cli import main
    from automm.registry import PluginLoadWarning, skipped_plugins

    source, reason = _BROKEN_PLUGINS[mistake]
    module = "automm_faulty_" + mistake.replace(" ", "_").replace("-", "_")[:20]
    package = _install_fake_plugin(tmp_path, monkeypatch, module, _PLUGIN_HEADER + source)
    try:
        with pytest.warns(PluginLoadWarning, match=f"{module!r} from {package} is skipped: .*{reason}"):
            registry = automm.reset_registry()
        assert {"cnn", "hashed_ngram"} <= set(registry.names("encoder"))
        assert registry.get("encoder", "cnn").provider == "automm.components.image"
        assert module not in dict(registry.plugin_manager.list_name_plugin())
        assert set(skipped_plugins()) == {module}
        assert main(["plugins"]) == 0  # the command that diagnoses it still works, and says why
        out = capsys.readouterr().out
        assert "skipped plugins (1)" in out and module in out
    finally:
        sys.modules.pop(module, None)
        monkeypatch.undo()
        automm.reset_registry()


def test_an_in_process_plugin_that_cannot_register_raises(fresh_registry):
    class Clashing:
        @hookimpl
        def automm_register_encoders(self, register):
            register("cnn", ConstantEncoder, modality="text")

    with pytest.raises(PluginError, match="duplicate encoder name 'cnn'"):
        fresh_registry(Clashing())


@pytest.mark.parametrize("module, hook, said", [
    ("automm_singular", "@hookimpl\n    def automm_register_encoder(register):",
     "implements 'automm_register_encoder', which is not an automm hook, so it is never called \\(did you mean "
     "'automm_register_encoders'"),
    # the guide's plugin with its @hookimpl line left out loaded silently with no component, and naming
    # its encoder said only that plugins are found through the entry-point group
    ("automm_undecorated", "def automm_register_encoders(register):",
     "defines 'automm_register_encoders' without the @automm.hookimpl decorator, so it is never called"),
])
def test_a_hook_pluggy_never_calls_is_warned_about(tmp_path, monkeypatch, module, hook, said):
    """A misspelt hook name (warned about with the right one) and a hook without @hookimpl."""
    from automm.registry import PluginLoadWarning

    package = _install_fake_plugin(tmp_path, monkeypatch, module, _PLUGIN_HEADER + f"""
    {hook}
        register("{module}", Width, modality="text")
    """)
    try:
        with pytest.warns(PluginLoadWarning, match=f"'{module}' from {package} {said}"):
            registry = automm.reset_registry()
        assert module not in registry.names("encoder")
    finally:
        sys.modules.pop(module, None)
        monkeypatch.undo()
        automm.reset_registry()


def test_automm_plugins_names_the_package_of_an_installed_plugin(installed_distribution, monkeypatch, capsys):
    from automm.cli import main

    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    automm.reset_registry()
    assert main(["plugins", "--json"]) == 0
    import json

    plugins = {p["name"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
    assert plugins["hello"]["package"] == "automm-hello-plugin 1.2.3"
    assert plugins["hello"]["components"] == 1


def test_loading_a_model_with_autoloading_off_says_so(installed_distribution, monkeypatch, tmp_path):
    from automm.exceptions import ModelFormatError

    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    automm.reset_registry()
    clf = automm.AutoMM(encoders={"text": "hello"}, column_types={"x0": "text"}, max_epochs=1, random_state=0,
                        num_workers=0)
    clf.fit(["a", "bb", "ccc", "dddd"] * 4, ["s", "l", "l", "l"] * 4)
    clf.save(tmp_path / "model")
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    automm.reset_registry()
    with pytest.raises(ModelFormatError, match=f"'hello'.*not loaded: {DISABLE_AUTOLOAD_ENV} is set"):
        automm.AutoMM.load(tmp_path / "model")

    # the component's name registered here by another package than the one it was saved with: said
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV)
    automm.reset_registry()
    import json

    manifest = tmp_path / "model" / "automm.json"
    saved = json.loads(manifest.read_text())
    for component in saved["components"]:
        if component["name"] == "hello":
            component["package"] = "automm-hello-original 0.9"
    write_manifest(manifest, saved)
    with pytest.warns(UserWarning, match=r"saved with encoder 'hello' of package automm-hello-original 0.9; here that "
                                         r"name comes from automm-hello-plugin 1.2.3, .*install automm-hello-original"):
        automm.AutoMM.load(tmp_path / "model")


def test_a_model_another_version_of_its_plugin_cannot_build_says_which_versions(installed_distribution, monkeypatch,
                                                                                tmp_path):
    # had said only that the factory failed ("narrow its search space, or fix its factory") or that
    # weights.safetensors did not match, as if the file were damaged, not that the plugin had changed
    from automm.exceptions import ModelFormatError

    automm.reset_registry()
    clf = automm.AutoMM(encoders={"text": "hello"}, column_types={"x0": "text"}, max_epochs=1, random_state=0,
                        num_workers=0)
    clf.fit(["a", "bb", "ccc", "dddd"] * 4, ["s", "l", "l", "l"] * 4)
    clf.save(tmp_path / "model")
    import json

    manifest = tmp_path / "model" / "automm.json"
    saved = json.loads(manifest.read_text())
    for component in saved["components"]:
        if component["name"] == "hello":
            component["package"] = "automm-hello-plugin 1.0.0"  # as saved by an older version, whose
    saved["config"]["encoders"]["text_0"]["gain"] = 2.0     # factory took a keyword 1.2.3's does not
    write_manifest(manifest, saved)
    with pytest.raises(ModelFormatError, match=r"^the model was saved with encoder 'hello' of automm-hello-plugin "
                                               r"1\.0\.0 \(here automm-hello-plugin 1\.2\.3\), which cannot load it: "
                                               r"install the package it was saved with to load it \(.*'gain'"):
        automm.AutoMM.load(tmp_path / "model")
    saved["config"]["encoders"]["text_0"].pop("gain")  # built, but its weights named otherwise
    write_manifest(manifest, saved)
    weights = tmp_path / "model" / "weights.safetensors"
    from safetensors.torch import load_file, save_file

    tensors = load_file(weights)
    save_file({key.replace("linear", "dense"): value for key, value in tensors.items()}, weights)
    saved.pop("files", None)  # (a save of before the files' digests)
    write_manifest(manifest, saved)
    with pytest.raises(ModelFormatError, match=r"^the model was saved with encoder 'hello' of automm-hello-plugin "
                                               r"1\.0\.0 .*weights cannot be read or do not match"):
        automm.AutoMM.load(tmp_path / "model")
    for component in saved["components"]:
        component["package"] = None if component["name"] != "hello" else "automm-hello-plugin 1.2.3"
    write_manifest(manifest, saved)
    with pytest.raises(ModelFormatError, match=r"^.*weights\.safetensors: weights cannot be read"):
        automm.AutoMM.load(tmp_path / "model")  # the same package: a damaged file, as before


class WrongWidthEncoder(ConstantEncoder):
    def forward(self, batch):
        return super().forward(batch)[:, :1]  # narrower than its output_dim


def test_an_encoder_narrower_than_its_output_dim_is_named(fresh_registry):
    class Plugin:
        @hookimpl
        def automm_register_encoders(self, register):
            register("narrow", WrongWidthEncoder, modality="text", defaults={"output_dim": 3})

    fresh_registry(Plugin())
    clf = automm.AutoMM(encoders={"text": "narrow"}, column_types={"x0": "text"}, max_epochs=1, num_workers=0)
    with pytest.raises(PluginError, match=r"encoder 'narrow' \(plugin '.*Plugin'\) of input 'text_0' returned a "
                                          r"tensor of shape \(\d+, 1\); its output_dim says \(batch, 3\)"):
        clf.fit(["a", "bb", "ccc", "dddd"] * 4, ["s", "l", "l", "l"] * 4)


def test_a_search_space_that_raises_fails_its_trials_with_the_reason(fresh_registry):
    from automm.search import SearchError

    def broken_space(trial, prefix):
        raise ValueError("oops")

    class Plugin:
        @hookimpl
        def automm_register_encoders(self, register):
            register("spaceless", ConstantEncoder, modality="text", defaults={"output_dim": 3},
                     search_space=broken_space)

    fresh_registry(Plugin())
    clf = automm.AutoMM(encoders={"text": "spaceless"}, column_types={"x0": "text"}, n_trials=2, max_epochs=1,
                        num_workers=0, random_state=0,
                        search_space={"warm_start": False, "linear_model": False, "neighbors_model": False})
    with pytest.raises(SearchError, match="the search space of encoder 'spaceless' .*raised ValueError: oops"):
        clf.fit(["a", "bb", "ccc", "dddd"] * 4, ["s", "l", "l", "l"] * 4)


def test_a_fusions_hyperparameter_names_exclude_its_two_positional_arguments():
    from automm.exceptions import InputError
    from automm.registry import ComponentSpec

    def positional_only(input_dims, n_outputs, /, hidden=8):
        return None

    def keyword(input_dims, n_outputs, hidden=8):
        return None

    for factory in (positional_only, keyword):
        spec = ComponentSpec(kind="fusion", name="f", factory=factory, provider="p")
        spec.check_hyperparameters({"hidden": 4}, "fusion")
        with pytest.raises(InputError, match=r"fusion: fusion 'f' has no hyperparameter 'hiden' \(did you mean "
                                             r"'hidden'\?\); it takes hidden$"):
            spec.check_hyperparameters({"hiden": 4}, "fusion")


def test_a_failing_suggest_names_the_parameter_and_a_storage_failure_is_not_the_plugins(monkeypatch):
    """A sampler lacking a parameter (GridSampler) was reported as the plugin's fault, naming
    nothing; a journal that could not be written too."""
    import optuna

    from automm.exceptions import PluginError
    from automm.storage import StorageError

    spec = automm.get_registry().get("encoder", "cnn")
    with pytest.raises(PluginError, match=r"raised ValueError in Optuna's suggest of 'image_0\.cnn\.\w+' \(the "
                                          r"range it was given, or the sampler\)"):
        spec.suggest(optuna.trial.FixedTrial({}), "image_0.cnn.")

    class FullDisk(optuna.trial.FixedTrial):
        def suggest_int(self, *args, **kwargs):
            raise StorageError("storage: cannot write the journal file 'j.log' (OSError: No space left on device)")

        suggest_categorical = suggest_float = suggest_int

    with pytest.raises(StorageError, match="No space left"):
        spec.suggest(FullDisk({}), "image_0.cnn.")


def test_a_skipped_plugin_is_named_with_its_package_once(fresh_registry):
    """'shout (automm-shout 0.1.0)' (automm-shout 0.1.0) its entry-point name is taken ..."""
    registry = fresh_registry()
    registry.plugin_manager.automm_skipped = {
        "shout (automm-shout 0.1.0)": {"package": "automm-shout 0.1.0", "reason": "its entry-point name is taken"},
        "other": {"package": "automm-other 1.0", "reason": "failed to import"}}
    said = registry.where_plugins_come_from()
    assert "'shout (automm-shout 0.1.0)' its entry-point name is taken" in said
    assert "'other' (automm-other 1.0) failed to import" in said


@pytest.mark.parametrize("arguments, message", [
    ({"factory": lambda **kw: None}, r"encoder 'modeless' needs a modality="),
    ({"factory": "not a factory", "modality": "text"}, r"factory for 'modeless' is not callable"),
    ({"factory": lambda **kw: None, "modality": "text", "search_space": {"dim": 8}},
     r"search_space for 'modeless' is not callable"),
])
def test_an_encoder_registered_without_a_modality_or_callables_is_refused(fresh_registry, arguments, message):
    """Without these checks an encoder of no modality registered, matched no input and was never
    used, silently; a factory or search space that is not callable failed only inside a trial."""

    class Bad:
        @hookimpl
        def automm_register_encoders(self, register):
            register("modeless", **arguments)

    with pytest.raises(PluginError, match=r"invalid encoder registered by plugin .*" + message):
        fresh_registry(Bad())
