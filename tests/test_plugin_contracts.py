"""What the core checks of a plugin's components at run time: a broken fusion or augmentation
fails with a PluginError naming the component, its plugin and what to fix, never with a bare
torch error (or, worse, silently); and mistakes a plugin author makes that the kit or the core
must name, not hide."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import automm
from automm import Augmentation, Fusion, PluginError, hookimpl
from automm.components.text import HashedNgramEncoder
from automm.testing import ConformanceError, check_augmentation, check_fusion

TEXTS = ["a red shirt", "blue jeans", "a watch", "green socks"] * 4
LABELS = ["s", "l", "l", "l"] * 4


def _fit(**kwargs):
    clf = automm.AutoMM(column_types={"x0": "text"}, max_epochs=1, num_workers=0, random_state=0, **kwargs)
    return clf.fit(TEXTS, LABELS)


class _Concat(Fusion):
    """Concatenates the present inputs (missing ones zeroed) into ``hidden_dim`` columns."""

    def __init__(self, input_dims, n_outputs, hidden_dim=4):
        super().__init__()
        self.names = sorted(input_dims)
        self.linear = nn.Linear(sum(input_dims.values()), hidden_dim)
        self.output_dim = hidden_dim

    def forward(self, embeddings, masks):
        return self.linear(torch.cat([torch.where(masks[n][:, None], embeddings[n], 0.0) for n in self.names], 1))


class _OneTooWide(_Concat):
    def __init__(self, input_dims, n_outputs, hidden_dim=4):
        super().__init__(input_dims, n_outputs, hidden_dim + 1)
        self.output_dim = hidden_dim


class _NoWidth(_Concat):
    def __init__(self, input_dims, n_outputs, hidden_dim=4):
        super().__init__(input_dims, n_outputs, hidden_dim)
        del self.output_dim  # never set: the class's 0


class _FusionPlugin:
    @hookimpl
    def automm_register_fusions(self, register):
        register("too_wide", _OneTooWide, tags=("manual",))
        register("no_width", _NoWidth, tags=("manual",))


def test_a_fusion_wider_than_its_output_dim_is_named(fresh_registry):
    fresh_registry(_FusionPlugin())
    with pytest.raises(PluginError, match=r"fusion 'too_wide' \(plugin '.*_FusionPlugin'\) returned a tensor of shape "
                                          r"\(\d+, 5\), but its output_dim is 4; .*set self.output_dim to the width"):
        _fit(fusion="too_wide")


def test_a_fusion_without_an_output_dim_is_named_when_the_model_is_built(fresh_registry):
    fresh_registry(_FusionPlugin())
    with pytest.raises(PluginError, match=r"fusion 'no_width' \(plugin '.*'\) has output_dim 0 \(never set\?\); "
                                          r"set self.output_dim in __init__"):
        _fit(fusion="no_width")


class _WidensFused(automm.BatchAugmentation):
    def apply_fused(self, fused, targets, generator):
        return torch.cat([fused, fused[:, :1]], 1), targets


class _DropsAMask(automm.BatchAugmentation):
    def apply_masks(self, masks, generator):
        return {name: mask for name, mask in list(masks.items())[1:]}


class _RevivesMasks(automm.BatchAugmentation):
    def apply_masks(self, masks, generator):
        return {name: torch.ones_like(mask) for name, mask in masks.items()}


class _BatchPlugin:
    @hookimpl
    def automm_register_augmentations(self, register):
        register("widens_fused", _WidensFused, modality="batch")
        register("drops_a_mask", _DropsAMask, modality="batch")
        register("revives_masks", _RevivesMasks, modality="batch")


def test_a_batch_augmentation_that_changes_the_fused_width_is_named(fresh_registry):
    fresh_registry(_BatchPlugin())
    with pytest.raises(PluginError, match=r"augmentation 'widens_fused' \(plugin '.*_BatchPlugin'\): apply_fused "
                                          r"changed the fused embeddings from \(\d+, (\d+)\) torch\.\w+ to "
                                          r"\(\d+, \d+\) torch\.\w+; it must keep their shape"):  # (GPU: bfloat16)
        _fit(augmentations=["widens_fused"])


def test_a_batch_augmentation_that_drops_an_input_from_the_masks_is_named(fresh_registry):
    fresh_registry(_BatchPlugin())
    with pytest.raises(PluginError, match=r"augmentation 'drops_a_mask' .*apply_masks changed the masks from "
                                          r"\{'text_0': \(\d+,\) torch.bool\} to \{\}; it must return the same inputs"):
        _fit(augmentations=["drops_a_mask"])


def test_a_batch_augmentation_that_marks_a_missing_input_present_is_named(fresh_registry):
    # the model would read the missing texts' placeholder as their value, silently
    fresh_registry(_BatchPlugin())
    texts = [text if i % 4 else "" for i, text in enumerate(TEXTS)]
    clf = automm.AutoMM(column_types={"x0": "text"}, max_epochs=1, num_workers=0, random_state=0,
                        augmentations=["revives_masks"])
    with pytest.raises(PluginError, match=r"augmentation 'revives_masks' \(plugin '.*_BatchPlugin'\): apply_masks "
                                          r"turned a missing input \('text_0'\) into a present one; it may only "
                                          r"turn True into False"):
        clf.fit(texts, LABELS)


class _Raises(automm.Augmentation):
    modality = "text"

    def __call__(self, value, generator):
        raise ValueError("a bug inside")


class _RaisesInBatch(automm.BatchAugmentation):
    def apply_fused(self, fused, targets, generator):
        raise ValueError("a bug inside")


class _RaisingPlugin:
    @hookimpl
    def automm_register_augmentations(self, register):
        register("raises", _Raises, modality="text")
        register("raises_in_batch", _RaisesInBatch, modality="batch")


@pytest.mark.parametrize("name, where", [("raises", r"on a list sample"), ("raises_in_batch", r"in apply_fused")])
def test_an_augmentation_that_raises_is_named(fresh_registry, name, where):
    # had failed the fit (or each trial of a search) with a bare "ValueError: a bug inside"
    fresh_registry(_RaisingPlugin())
    with pytest.raises(PluginError, match=rf"augmentation '{name}' \(plugin '.*_RaisingPlugin'\) failed {where}: "
                                          r"ValueError: a bug inside"):
        _fit(augmentations=[name])


class _BreaksWhenTold(_Concat):
    broken = False

    def forward(self, embeddings, masks):
        if _BreaksWhenTold.broken:
            raise ValueError("a bug inside")
        return super().forward(embeddings, masks)


class _EncoderBreaksWhenTold(HashedNgramEncoder):
    def forward(self, batch):
        if _BreaksWhenTold.broken:
            raise ValueError("a bug inside")
        return super().forward(batch)


class _ForwardPlugin:
    @hookimpl
    def automm_register_fusions(self, register):
        register("breaks_in_forward", _BreaksWhenTold, tags=("manual",))

    @hookimpl
    def automm_register_encoders(self, register):
        register("breaks_in_forward", _EncoderBreaksWhenTold, modality="text", tags=("manual",))


@pytest.mark.parametrize("component", ["fusion", "encoder"])
def test_a_fusion_or_encoder_that_raises_in_forward_is_named(fresh_registry, monkeypatch, component):
    # had failed the fit, each trial of a search and predict with a bare "ValueError: a bug inside"
    fresh_registry(_ForwardPlugin())
    chosen = {"fusion": "breaks_in_forward"} if component == "fusion" else {"encoders": {"text": "breaks_in_forward"}}
    label = (r"fusion 'breaks_in_forward' \(plugin '.*_ForwardPlugin'\)" if component == "fusion" else
             r"encoder 'breaks_in_forward' \(plugin '.*_ForwardPlugin'\) of input 'text_0'")
    clf = _fit(**chosen)
    monkeypatch.setattr(_BreaksWhenTold, "broken", True)
    named = rf"^{label} failed in forward: ValueError: a bug inside$"
    with pytest.raises(PluginError, match=named):
        clf.predict(TEXTS[:3])
    with pytest.raises(PluginError, match=named):
        _fit(**chosen)


class _ToPixels(automm.Augmentation):
    modality = "image"

    def __call__(self, value, generator):
        return (value * 255).to(torch.uint8)


class _JoinsTokens(automm.Augmentation):
    modality = "text"

    def __call__(self, value, generator):
        return " ".join(reversed(value))


class _SampleAugmentationPlugin:
    @hookimpl
    def automm_register_augmentations(self, register):
        register("to_pixels", _ToPixels, modality="image")
        register("joins_tokens", _JoinsTokens, modality="text")


def test_an_image_augmentation_returning_uint8_pixels_is_named(fresh_registry):
    import numpy as np

    fresh_registry(_SampleAugmentationPlugin())
    images = list(np.random.default_rng(0).integers(0, 256, size=(16, 12, 12, 3), dtype=np.uint8))
    clf = automm.AutoMM(encoders={"image": {"name": "cnn", "image_size": 12, "width": 4, "depth": 2}},
                        augmentations=["to_pixels"], max_epochs=1, num_workers=0, random_state=0)
    with pytest.raises(PluginError, match=r"augmentation 'to_pixels' \(plugin '.*'\): returned a torch.uint8 tensor; "
                                          r"it must return the image as a float tensor \(3, H, W\) in \[0, 1\]"):
        clf.fit(images, LABELS)


def test_a_text_augmentation_returning_a_str_is_named(fresh_registry):
    fresh_registry(_SampleAugmentationPlugin())
    with pytest.raises(PluginError, match=r"augmentation 'joins_tokens' \(plugin '.*'\): returned a str; it must "
                                          r"return a list of str tokens"):
        _fit(augmentations=["joins_tokens"])


def _unprefixed_space(trial, prefix):
    return {"hidden_dim": trial.suggest_categorical("hidden_dim", [4, 8])}


def _unprefixed_int_space(trial, prefix):
    return {"hidden_dim": trial.suggest_int("hidden_dim", 4, 8)}


class _SpacePlugin:
    @hookimpl
    def automm_register_fusions(self, register):
        register("unprefixed", _Concat, search_space=_unprefixed_space, tags=("manual",))
        register("unprefixed_b", _Concat, search_space=_unprefixed_int_space, tags=("manual",))


_NO_PRESETS = {"warm_start": False, "linear_model": False, "neighbors_model": False}


def test_a_search_space_that_ignores_its_prefix_is_named_before_optuna_sees_the_parameter(fresh_registry):
    from automm.search import SearchError

    fresh_registry(_SpacePlugin())
    with pytest.raises(SearchError, match=r"the search space of fusion 'unprefixed(_b)?' \(plugin '.*_SpacePlugin'\) "
                                          r"suggested 'hidden_dim', which does not start with its prefix "
                                          r"'fusion.unprefixed(_b)?.'") as caught:
        _fit(fusion=["unprefixed", "unprefixed_b"], n_trials=3, search_space=_NO_PRESETS)
    assert "Cannot set different distribution" not in str(caught.value)


def test_the_leaderboard_names_the_fusion_of_a_trial_whose_configuration_failed():
    import optuna

    from automm.leaderboard import leaderboard_frame

    failed = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, params={"fusion": "film"},
                                       distributions={"fusion": optuna.distributions.CategoricalDistribution(
                                           ["film", "concat"])},
                                       user_attrs={"automm:reason": "PluginError: the search space ..."})
    assert leaderboard_frame([failed])["fusion"].tolist() == ["film"]


def _space_with_a_foreign_keyword(trial, prefix):
    return {"hidden_dim": trial.suggest_categorical(f"{prefix}hidden_dim", [4, 8]),
            "depth": trial.suggest_int(f"{prefix}depth", 1, 2)}


class _ForeignKeywordPlugin:
    @hookimpl
    def automm_register_fusions(self, register):
        register("foreign_keyword", _Concat, search_space=_space_with_a_foreign_keyword, tags=("manual",))


_FOREIGN = (r"the search space of fusion 'foreign_keyword' \(plugin '.*_ForeignKeywordPlugin'\) returned 'depth', "
            r"which its factory does not take \(it takes hidden_dim\)")


def test_a_search_space_returning_a_keyword_its_factory_does_not_take_is_named(fresh_registry):
    from automm.search import SearchError

    fresh_registry(_ForeignKeywordPlugin())
    with pytest.raises(SearchError, match=_FOREIGN):
        _fit(fusion=["foreign_keyword"], n_trials=2, search_space=_NO_PRESETS)


def test_the_kit_checks_that_the_factory_takes_what_the_search_space_returns(fresh_registry):
    from automm.testing import ConformanceError, check_search_space

    fresh_registry(_ForeignKeywordPlugin())
    with pytest.raises(ConformanceError, match=_FOREIGN):
        check_search_space("foreign_keyword", "fusion")


class _NeedsImageAndText(Fusion):
    """Bilinear image x text: assumes an image_0 and a text_0 input."""

    def __init__(self, input_dims, n_outputs, rank=4):
        super().__init__()
        self.bilinear = nn.Bilinear(input_dims["image_0"], input_dims["text_0"], rank)
        self.output_dim = rank

    def forward(self, embeddings, masks):
        image, text = (torch.where(masks[n][:, None], embeddings[n], 0.0) for n in ("image_0", "text_0"))
        return self.bilinear(image, text)


def _failing_factory(output_dim=4):
    raise ValueError("the weights file is missing")


class _FactoryPlugin:
    @hookimpl
    def automm_register_fusions(self, register):
        register("needs_image_and_text", _NeedsImageAndText, tags=("manual",))

    @hookimpl
    def automm_register_encoders(self, register):
        register("unbuildable", _failing_factory, modality="text", output_dim=4)

    @hookimpl
    def automm_register_augmentations(self, register):
        register("unbuildable_aug", _failing_factory, modality="text")


def test_a_fusion_that_cannot_be_built_for_the_inputs_is_named_with_them(fresh_registry):
    fresh_registry(_FactoryPlugin())
    with pytest.raises(PluginError, match=r"fusion 'needs_image_and_text' \(plugin '.*_FactoryPlugin'\) could not be "
                                          r"built for inputs \{'text_0': \d+\} \(n_outputs=2\) with hyperparameters "
                                          r"\{\}: KeyError: 'image_0'; a fusion must work with whatever "
                                          r"inputs it is given"):
        _fit(fusion="needs_image_and_text")


def test_an_encoder_or_augmentation_factory_that_fails_is_named(fresh_registry):
    fresh_registry(_FactoryPlugin())
    with pytest.raises(PluginError, match=r"encoder 'unbuildable' \(plugin '.*'\) could not be built for input "
                                          r"'text_0' with hyperparameters \{'output_dim': 4\}: ValueError: the weights "
                                          r"file is missing"):
        _fit(encoders={"text": {"name": "unbuildable", "output_dim": 4}})
    with pytest.raises(PluginError, match=r"augmentation 'unbuildable_aug' \(plugin '.*'\) could not be built with "
                                          r"hyperparameters \{\}: ValueError: the weights file is missing"):
        _fit(augmentations=["unbuildable_aug"])


def test_the_kit_tries_a_fusion_on_one_input_and_on_other_names(fresh_registry):
    from automm.testing import ConformanceError, check_fusion

    fresh_registry(_FactoryPlugin())
    with pytest.raises(ConformanceError, match=r"needs_image_and_text.*factory\(input_dims=\{'image_0': 8\}, "
                                               r"n_outputs=3\) fails: KeyError\('text_0'\); a fusion must work with "
                                               r"whatever inputs it is given"):
        check_fusion("needs_image_and_text", {"image_0": 8, "text_0": 5})


# -- mistakes a plugin author makes, named by the kit or the core --------------------------

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


def test_the_image_values_check_passes_a_usual_sample_in_one_reduction(monkeypatch):
    """The check after every image augmentation of every sample ran five reductions (0.4 ms a
    64-px sample on one core, as long as the built-in augmentations themselves): a sample within
    the slack now passes on one min-max, and NaN, infinities and 0..255 pixels are still named."""
    from automm.contracts import sample_problem

    image = torch.rand(3, 16, 16)
    assert sample_problem("image", image, image) is None
    calls = []
    monkeypatch.setattr(torch, "isfinite", lambda *a, **k: calls.append(1) or torch.ones((), dtype=torch.bool))
    assert sample_problem("image", image, image.clone()) is None and not calls
    monkeypatch.undo()
    for bad in (float("nan"), float("inf"), float("-inf")):
        broken = image.clone()
        broken[1, 3, 5] = bad  # one value, inside an image otherwise in [0, 1]
        assert "NaN or infinite" in sample_problem("image", image, broken), bad
    assert "pixels 0..255" in sample_problem("image", image, image * 255)
    assert "clamped to [0, 1]" in sample_problem("image", image, image - 3)
    edge = image.clone()
    edge[0, 0, 0], edge[0, 0, 1] = -0.5, 1.5  # at the slack: passes, on the one reduction as well
    assert sample_problem("image", image, edge) is None


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


def test_a_patch_of_pixels_past_the_slack_is_a_lost_image():
    """A few stray values past the slack pass; a fifth of the image at 255 (a patch pasted as 0..255
    pixels) is named: clamped to [0, 1], that part of the image is lost."""
    from automm.contracts import sample_problem

    image = torch.rand(3, 20, 20)
    patched = image.clone()
    patched[:, :4, :] = 255.0  # 20% of the values
    assert "clamped to [0, 1]" in sample_problem("image", image, patched)


def test_a_text_augmentation_returning_token_ids_is_named():
    from automm.contracts import sample_problem

    problem = sample_problem("text", ["a", "red", "shirt"], [3, 7, 9])
    assert problem is not None and "a list holding a int (3)" in problem and "list of str tokens" in problem
    assert sample_problem("text", ["a", "red", "shirt"], ["red", "a"]) is None


def test_a_batch_augmentation_returning_float_masks_is_named():
    """Float masks (0.0 / 1.0) would be read as present everywhere by ``torch.where``: named."""
    from automm import BatchAugmentation
    from automm.contracts import CheckedBatchAugmentation

    class FloatMasks(BatchAugmentation):
        def apply_masks(self, masks, generator):
            return {name: mask.float() for name, mask in masks.items()}

    masks = {"image_0": torch.tensor([True, False]), "text_0": torch.tensor([True, True])}
    checked = CheckedBatchAugmentation(FloatMasks(), "augmentation 'float_masks'")
    with pytest.raises(PluginError, match=r"augmentation 'float_masks': apply_masks changed the masks .*torch.float32"
                                          r".* bool tensor"):
        checked.apply_masks(masks, torch.Generator().manual_seed(0))


def test_an_input_error_a_component_raises_on_purpose_is_not_blamed_on_the_plugin():
    """``building`` and ``calling`` name a component's crash as a PluginError, but an InputError it
    raises on purpose (a bad value, a bad hyperparameter) reaches the user as that InputError."""
    from types import SimpleNamespace

    from automm.contracts import building, calling
    from automm.exceptions import InputError

    spec = SimpleNamespace(label="encoder 'shout' (plugin 'x')")
    with pytest.raises(InputError, match="^width must be even$"):
        with building(spec, {"width": 3}):
            raise InputError("width must be even")
    with pytest.raises(InputError, match="^not a shout$"):
        with calling("augmentation 'x'", "on a sample"):
            raise InputError("not a shout")
    with pytest.raises(PluginError, match=r"encoder 'shout' \(plugin 'x'\) could not be built with hyperparameters "
                                          r"\{'width': 3\}: ValueError: boom"):
        with building(spec, {"width": 3}):
            raise ValueError("boom")


class _WeightsNotInstalled(automm.exceptions.AutoMMError, ImportError):
    """As automm-pretrained's MissingWeightsError."""


class _NeedsWeights(HashedNgramEncoder):
    def __init__(self, **kwargs):
        raise _WeightsNotInstalled("encoder 'needs_weights' needs the package 'weights-pkg'; pip install weights-pkg")


class _NeedsLibrary(HashedNgramEncoder):
    def __init__(self, **kwargs):
        import automm_spec5_no_such_library  # noqa: F401  (a plugin's library that is not installed)


class _PackagePlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("needs_weights", _NeedsWeights, modality="text", output_dim=8)
        register("needs_library", _NeedsLibrary, modality="text", output_dim=8)


@pytest.mark.parametrize("name, said", [("needs_weights", "pip install weights-pkg"),
                                        ("needs_library", "No module named 'automm_spec5_no_such_library'")])
def test_search_warns_about_trials_failed_for_a_package_not_installed(fresh_registry, name, said):
    """A missing weight package failed every trial with the encoder (automm-pretrained's linear and
    nearest-neighbour models and pretrained variant among them) without a word; a missing library was
    said to be a search_space mistake."""
    fresh_registry(_PackagePlugin())
    import optuna

    clf = automm.AutoMM(column_types={"x0": "text"}, max_epochs=1, num_workers=0, random_state=0, n_trials=4,
                        encoders={"text": ["hashed_ngram", name]}, sampler=optuna.samplers.RandomSampler(seed=0),
                        search_space={"linear_model": False, "neighbors_model": False, "warm_start": False})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(TEXTS, LABELS)
    failed = clf.leaderboard_[clf.leaderboard_["state"] == "FAIL"]
    assert len(failed) >= 1 and failed["reason"].str.startswith("missing package").all()
    warned = [str(w.message) for w in caught if "needs a package that is not installed" in str(w.message)]
    assert len(warned) == 1 and warned[0].startswith(f"{len(failed)} of {len(clf.leaderboard_)} trials") and said in warned[0]
    assert not [w for w in caught if "could not be built with the settings" in str(w.message)]


class _CachedFeatures(HashedNgramEncoder):
    def prepare(self, values, *, cache_dir=None):
        from automm.feature_cache import FeatureCache

        FeatureCache(cache_dir, "cached_features-v1", {})  # (as a frozen encoder's features are kept)
        super().prepare(values, cache_dir=cache_dir)


class _CachePlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("cached_features", _CachedFeatures, modality="text", output_dim=8)


def test_search_warns_about_trials_failed_for_want_of_a_feature_cache_folder(fresh_registry, monkeypatch):
    """No $HOME and a user id the user database lacks (a container's --user 1000): every trial of an
    encoder keeping features in the default feature cache failed (automm-pretrained's presets, the
    strongest models), and the model kept said nothing of it."""
    import pwd

    import optuna

    fresh_registry(_CachePlugin())
    for name in ("HOME", "AUTOMM_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)

    def unknown(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")
    monkeypatch.setattr(pwd, "getpwuid", unknown)
    clf = automm.AutoMM(column_types={"x0": "text"}, max_epochs=1, num_workers=0, random_state=0, n_trials=4,
                        encoders={"text": ["hashed_ngram", "cached_features"]},
                        sampler=optuna.samplers.RandomSampler(seed=0),
                        search_space={"linear_model": False, "neighbors_model": False, "warm_start": False})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(TEXTS, LABELS)
    failed = clf.leaderboard_[clf.leaderboard_["state"] == "FAIL"]
    assert len(failed) >= 1
    warned = [str(w.message) for w in caught if "feature cache, which has no folder here" in str(w.message)]
    assert len(warned) == 1 and warned[0].startswith(f"{len(failed)} of {len(clf.leaderboard_)} trials"), warned
    assert "set $AUTOMM_CACHE_DIR" in warned[0] and "AutoMM(cache_dir=...)" in warned[0]
