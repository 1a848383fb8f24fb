"""Mistakes a plugin author makes that the core and the kit must name (not hide)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import automm
from automm import Augmentation, Fusion, PluginError, hookimpl
from automm.testing import ConformanceError
from automm.testing import check_augmentation, check_fusion

TEXTS = ["a red shirt", "blue jeans", "a watch", "green socks"] * 4
LABELS = ["s", "l", "l", "l"] * 4


class _Concat(Fusion):
    def __init__(self, input_dims, n_outputs, hidden_dim=4):
        super().__init__()
        self.names = sorted(input_dims)
        self.linear = nn.Linear(sum(input_dims.values()), hidden_dim)
        self.output_dim = hidden_dim

    def forward(self, embeddings, masks):
        return self.linear(torch.cat([torch.where(masks[n][:, None], embeddings[n], 0.0) for n in self.names], 1))


class _BatchNormed(_Concat):
    def __init__(self, input_dims, n_outputs, hidden_dim=4):
        super().__init__(input_dims, n_outputs, hidden_dim)
        self.norm = nn.BatchNorm1d(hidden_dim)

    def forward(self, embeddings, masks):
        return self.norm(super().forward(embeddings, masks))


class _MeanOfPresent(_Concat):
    def forward(self, embeddings, masks):
        count = sum(masks[n].float() for n in self.names)[:, None]
        return super().forward(embeddings, masks) / count  # NaN for a row lacking every input


class _Pixels255(Augmentation):
    modality = "image"

    def __call__(self, value, generator):
        return value * 255.0


class _Plugin:
    @hookimpl
    def automm_register_fusions(self, register):
        register("bn_concat", _BatchNormed, defaults={"hidden_dim": 4})
        register("twice_declared", _Concat, defaults={"hidden_dim": 4}, output_dim=lambda hp: 2 * hp["hidden_dim"])
        register("mean_present", _MeanOfPresent, defaults={"hidden_dim": 4})
        register("no_prefix", _Concat, defaults={"hidden_dim": 4},
                 search_space=lambda trial, prefix: {"hidden_dim": trial.suggest_int("hidden_dim", 2, 4)})

    @hookimpl
    def automm_register_augmentations(self, register):
        register("pixels255", _Pixels255, modality="image")


@pytest.fixture
def plugin(fresh_registry):
    fresh_registry(_Plugin())


def test_batchnorm_fusion_passes_the_kit(plugin):
    check_fusion("bn_concat")  # its training-mode statistics are not a failed round trip


def test_image_augmentation_on_0_255_pixels_is_named(plugin):
    with pytest.raises(ConformanceError, match="pixels 0..255"):
        check_augmentation("pixels255")
    images = [torch.rand(8, 8, 3).numpy() for _ in range(16)]
    with pytest.raises(PluginError, match="pixels255"):
        automm.AutoMM(max_epochs=1, num_workers=0, random_state=0, augmentations=["pixels255"]).fit(images, LABELS)


def test_non_finite_fusion_output_is_named(plugin):
    texts = ["" if i < 3 else t for i, t in enumerate(TEXTS)]
    with pytest.raises(FloatingPointError, match="mean_present.*lacking every input"):
        automm.AutoMM(column_types={"x0": "text"}, max_epochs=1, num_workers=0, random_state=0,
                      fusion="mean_present", augmentations=None).fit(texts, LABELS)


def test_search_warns_about_trials_a_broken_plugin_failed(plugin):
    clf = automm.AutoMM(column_types={"x0": "text"}, max_epochs=1, num_workers=0, random_state=0, n_trials=3,
                        fusion=["concat", "no_prefix"], search_space={"warm_start": False, "linear_model": False})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(TEXTS, LABELS)
    failed = int(((clf.leaderboard_["fusion"] == "no_prefix") & (clf.leaderboard_["state"] == "FAIL")).sum())
    assert failed  # the search sampled the broken fusion (seeded), and every such trial failed
    said = [str(w.message) for w in caught if "broke its contract" in str(w.message)]
    assert len(said) == 1 and said[0].startswith(f"{failed} of 3 trials failed") and "SearchSpaceError" in said[0]


def test_kit_compares_a_fusions_registered_width_with_the_built_one(plugin):
    with pytest.raises(ConformanceError, match="twice_declared.*registers output_dim=8.*built fusion has output_dim=4"):
        check_fusion("twice_declared")


class _SuffixRule:
    """Claims '.xyz' files; its rule assumes every value is a string (floats break it)."""

    @hookimpl
    def automm_infer_column_role(self, name, values):
        return "text" if all(v.endswith(".xyz") for v in values) else None


def test_an_installed_plugins_crashing_role_rule_is_passed_over_with_a_warning(fresh_registry):
    """A plain table fit died with AttributeError 'float' object has no attribute 'endswith', from
    a plugin the user never used, and nothing named it."""
    from automm.registry import PluginLoadWarning, _distributions
    from automm.data import _failed_role_rules

    registry = fresh_registry(_SuffixRule())
    name = registry.plugin_manager.get_name(next(p for p in registry.plugin_manager.get_plugins()
                                                 if isinstance(p, _SuffixRule)))
    _distributions(registry.plugin_manager)[name] = "automm-xyz 0.1"  # as an entry point's plugin is recorded
    _failed_role_rules.discard(name)
    X = {"price": [float(i) for i in range(20)], "colour": ["red", "blue"] * 10}
    with pytest.warns(PluginLoadWarning, match=r"automm-xyz 0.1.*automm_infer_column_role raised AttributeError"):
        clf = automm.AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(X, ["a", "b"] * 10)
    assert clf.column_roles_ == {"price": "numeric", "colour": "categorical"}


def test_an_in_process_plugins_crashing_role_rule_is_named(fresh_registry):
    fresh_registry(_SuffixRule())
    with pytest.raises(PluginError, match=r"_SuffixRule.*automm_infer_column_role raised AttributeError.*'price'"):
        automm.AutoMM(max_epochs=1).fit({"price": [1.0, 2.0] * 10}, ["a", "b"] * 10)


def test_kit_asks_a_role_rule_about_other_data():
    from automm.testing import check_role_inference

    with pytest.raises(ConformanceError, match="raises on a column of numbers.*return None"):
        check_role_inference(_SuffixRule(), ["a.xyz", "b.xyz"], "text")


class _Picky(_Concat):
    def __init__(self, input_dims, n_outputs, hidden_dim=4):
        if hidden_dim == 8:
            raise ValueError("hidden_dim 8 not supported")
        super().__init__(input_dims, n_outputs, hidden_dim)


def test_a_fusion_refusing_a_hyperparameter_is_not_told_about_its_inputs(fresh_registry):
    """The message said 'a fusion must work with whatever inputs it is given' when the inputs were fine."""
    class Plugin:
        @hookimpl
        def automm_register_fusions(self, register):
            register("picky", _Picky, defaults={"hidden_dim": 4},
                     search_space=lambda trial, prefix: {"hidden_dim": trial.suggest_categorical(f"{prefix}hidden_dim",
                                                                                                  [8])})

    fresh_registry(Plugin())
    clf = automm.AutoMM(column_types={"x0": "text"}, max_epochs=1, num_workers=0, random_state=0, n_trials=4,
                        fusion=["concat", "picky"], search_space={"warm_start": False, "linear_model": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(TEXTS, LABELS)
    reasons = clf.leaderboard_.loc[clf.leaderboard_["fusion"] == "picky", "reason"].tolist()
    assert reasons and all("hidden_dim 8 not supported; with its default hyperparameters it builds for these inputs"
                           in r and "whatever inputs" not in r for r in reasons), reasons


def test_noise_past_the_slack_on_a_few_pixels_is_not_a_lost_image():
    """A noise augmentation on a white background overshoots 1.5 on a few pixels by chance: the
    range check failed whole fits at random."""
    from automm.contracts import sample_problem

    image = torch.ones(3, 32, 32)
    noisy = image.clone()
    noisy[0, 0, :10] = 1.6  # 10 of 3,072 values
    assert sample_problem("image", image, noisy) is None
    assert "pixels 0..255" in sample_problem("image", image, image * 255)


def test_an_augmentation_named_for_a_modality_the_data_lack_is_warned_about():
    """The README promises a warning when a named augmentation cannot act; one for audio on image
    and text data was dropped without a word."""
    images = [torch.rand(8, 8, 3).numpy() for _ in range(16)]
    with pytest.warns(UserWarning, match=r"'token_dropout' augments text inputs, and the data have none \(image\)"):
        clf = automm.AutoMM(max_epochs=1, num_workers=0, random_state=0,
                            augmentations=["token_dropout", "horizontal_flip"]).fit(images, LABELS)
    assert [a["name"] for a in clf.augmentation_choices_] == ["horizontal_flip"]


def test_a_component_named_by_one_word_of_its_name_gets_a_did_you_mean():
    """augmentations=["flip"] listed every augmentation but did not point at horizontal_flip."""
    from automm.suggestions import close_match

    with pytest.raises(automm.UnknownComponentError, match="Did you mean 'horizontal_flip'"):
        automm.AutoMM(augmentations=["flip"], max_epochs=1).fit(TEXTS, LABELS)
    assert close_match("drop", ["token_dropout", "modality_dropout"]) is None  # two candidates: no guess
