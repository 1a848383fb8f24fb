"""What the core checks of a plugin's components at run time: a broken fusion or augmentation
fails with a PluginError naming the component, its plugin and what to fix, never with a bare
torch error (or, worse, silently)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import automm
from automm import Fusion, PluginError, hookimpl

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


class _BatchPlugin:
    @hookimpl
    def automm_register_augmentations(self, register):
        register("widens_fused", _WidensFused, modality="batch")
        register("drops_a_mask", _DropsAMask, modality="batch")


def test_a_batch_augmentation_that_changes_the_fused_width_is_named(fresh_registry):
    fresh_registry(_BatchPlugin())
    with pytest.raises(PluginError, match=r"augmentation 'widens_fused' \(plugin '.*_BatchPlugin'\): apply_fused "
                                          r"changed the fused embeddings from \(\d+, (\d+)\) torch.float32 to "
                                          r"\(\d+, \d+\) torch.float32; it must keep their shape"):
        _fit(augmentations=["widens_fused"])


def test_a_batch_augmentation_that_drops_an_input_from_the_masks_is_named(fresh_registry):
    fresh_registry(_BatchPlugin())
    with pytest.raises(PluginError, match=r"augmentation 'drops_a_mask' .*apply_masks changed the masks from "
                                          r"\{'text_0': \(\d+,\) torch.bool\} to \{\}; it must return the same inputs"):
        _fit(augmentations=["drops_a_mask"])


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
