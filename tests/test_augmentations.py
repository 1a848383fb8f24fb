"""Tests for the built-in augmentations (automm.components.augmentations)."""

from __future__ import annotations

import inspect
import json
import re

import optuna
import pytest
import torch

from automm.components.augmentations import (
    ColorJitter,
    HorizontalFlip,
    Mixup,
    ModalityDropout,
    RandomResizedCrop,
    TokenDropout,
    TokenSwap,
    automm_register_augmentations,
    color_jitter_search_space,
    horizontal_flip_search_space,
    mixup_search_space,
    modality_dropout_search_space,
    random_resized_crop_search_space,
    sample_beta,
    token_dropout_search_space,
    token_swap_search_space,
)
from automm.components.base import Augmentation, BatchAugmentation

IMAGE_AUGMENTATIONS = {
    "random_resized_crop": lambda: RandomResizedCrop(p=1.0),
    "horizontal_flip": lambda: HorizontalFlip(p=1.0),
    "color_jitter": lambda: ColorJitter(p=1.0),
}
TEXT_AUGMENTATIONS = {
    "token_dropout": lambda: TokenDropout(p=0.3),
    "token_swap": lambda: TokenSwap(p=0.3),
}
REGISTERED = {
    "random_resized_crop": (RandomResizedCrop, random_resized_crop_search_space, "image"),
    "horizontal_flip": (HorizontalFlip, horizontal_flip_search_space, "image"),
    "color_jitter": (ColorJitter, color_jitter_search_space, "image"),
    "token_dropout": (TokenDropout, token_dropout_search_space, "text"),
    "token_swap": (TokenSwap, token_swap_search_space, "text"),
    "modality_dropout": (ModalityDropout, modality_dropout_search_space, "batch"),
    "mixup": (Mixup, mixup_search_space, "batch"),
}
TOKENS = [f"tok{i}" for i in range(40)]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def image(seed: int = 0, channels: int = 3, height: int = 24, width: int = 32) -> torch.Tensor:
    return torch.rand(channels, height, width, generator=gen(seed))


# -- image ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(IMAGE_AUGMENTATIONS))
@pytest.mark.parametrize("channels", [1, 3])
def test_image_shape_dtype_and_range_preserved(name, channels):
    augmentation = IMAGE_AUGMENTATIONS[name]()
    assert isinstance(augmentation, Augmentation) and augmentation.modality == "image"
    value = image(channels=channels)
    for seed in range(5):
        out = augmentation(value, gen(seed))
        assert out.shape == value.shape and out.dtype == value.dtype
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", sorted(IMAGE_AUGMENTATIONS))
def test_image_same_seed_same_output_different_seed_different_output(name):
    augmentation = IMAGE_AUGMENTATIONS[name]()
    value = image()
    first = augmentation(value, gen(7))
    assert torch.equal(first, augmentation(value, gen(7)))
    assert not torch.equal(first, value)
    if name != "horizontal_flip":  # a flip with p=1 is deterministic by design
        outputs = [augmentation(value, gen(seed)) for seed in range(5)]
        assert any(not torch.equal(outputs[0], other) for other in outputs[1:])


def test_image_augmentations_do_not_modify_input():
    value = image()
    original = value.clone()
    for make in IMAGE_AUGMENTATIONS.values():
        make()(value, gen(0))
    assert torch.equal(value, original)


def test_probability_zero_is_identity_and_p_is_respected():
    value = image()
    for augmentation in (RandomResizedCrop(p=0.0), HorizontalFlip(p=0.0), ColorJitter(p=0.0)):
        assert torch.equal(augmentation(value, gen(0)), value)
    flip = HorizontalFlip(p=0.5)
    generator = gen(0)
    flipped = sum(not torch.equal(flip(value, generator), value) for _ in range(400))
    assert 150 < flipped < 250


def test_horizontal_flip_mirrors():
    value = image()
    assert torch.equal(HorizontalFlip(p=1.0)(value, gen(0)), value.flip(-1))


def test_random_resized_crop_full_scale_is_identity_like():
    value = image()
    crop = RandomResizedCrop(scale=(1.0, 1.0), ratio=(32 / 24, 32 / 24), p=1.0)
    torch.testing.assert_close(crop(value, gen(0)), value)


def test_random_resized_crop_handles_extreme_ratio_fallback():
    value = image(height=4, width=64)
    out = RandomResizedCrop(scale=(0.9, 1.0), ratio=(3.0, 3.0), p=1.0)(value, gen(0))
    assert out.shape == value.shape and torch.isfinite(out).all()


def test_color_jitter_zero_strength_is_identity():
    value = image()
    torch.testing.assert_close(ColorJitter(0.0, 0.0, 0.0, p=1.0)(value, gen(0)), value)


def test_image_augmentations_reject_bad_arguments():
    with pytest.raises(ValueError):
        HorizontalFlip(p=1.5)
    with pytest.raises(ValueError):
        RandomResizedCrop(scale=(0.0, 1.0))
    with pytest.raises(TypeError):
        HorizontalFlip(p=1.0)(torch.rand(4, 4), gen(0))


def test_color_jitter_names_strength_when_it_refuses_it():
    # augmentations=[{"name": "color_jitter", "strength": 1.5}] was refused as "brightness must be in
    # [0, 1]", a value the user never gave
    with pytest.raises(ValueError, match=r"^strength must be in \[0, 1\], got 1.5$"):
        ColorJitter(strength=1.5)
    with pytest.raises(ValueError, match=r"^brightness must be in \[0, 1\], got -0.1$"):
        ColorJitter(brightness=-0.1)


@pytest.mark.parametrize("value", ["x", None, "0.5", 1.5])
def test_a_probability_that_is_no_number_in_0_1_is_refused_saying_what_is_accepted(value):
    """p='x' was refused in float()'s words ("could not convert string to float: 'x'"), p=None as
    "float() argument must be ...", and p="0.5" was taken."""
    with pytest.raises(ValueError, match=rf"^p must be a number in \[0, 1\], got {re.escape(repr(value))}$"):
        HorizontalFlip(p=value)


def test_a_refused_augmentation_of_a_list_is_named_by_its_place_in_it():
    """augmentations=["token_dropout", {"name": "mixup", "alpha": -1}] was named augmentations['alpha'],
    a path that is none in a list."""
    from automm import AutoMM, InputError

    texts, labels = [f"item {i % 5} word{i % 3}" for i in range(20)], [f"c{i % 2}" for i in range(20)]
    for augmentations, shown in [(["token_dropout", {"name": "mixup", "alpha": -1}],
                                  r"augmentations\[1\]\['alpha'\]: augmentation 'mixup' refuses alpha=-1"),
                                 ([{"name": "token_dropout", "p": "x"}],
                                  r"augmentations\[0\]\['p'\]: augmentation 'token_dropout' refuses p='x' \(ValueError: "
                                  r"p must be a number in \[0, 1\], got 'x'\)"),
                                 (["token_dropout", {"name": "mixup", "beta": 2}],
                                  r"augmentations\[1\]: augmentation 'mixup' has no hyperparameter 'beta'"),
                                 (["token_dropout", 5], r"augmentations\[1\]: expected a component name")]:
        with pytest.raises(InputError, match=rf"^{shown}"):
            AutoMM(augmentations=augmentations, max_epochs=1, num_workers=0).fit(texts, labels)


def test_a_configuration_with_strength_shows_the_brightness_contrast_and_saturation_that_run():
    """augmentations=[{"name": "color_jitter", "strength": 0.35}] trained at 0.35, but the fitted
    model's config_ showed brightness, contrast and saturation 0.2 (their defaults) beside it."""
    from automm import AutoMM, registry

    reg = registry.get_registry()
    (name, params), = AutoMM(augmentations=[{"name": "color_jitter", "strength": 0.35}])._resolve_augmentations(
        reg, {"image"})
    assert (params["brightness"], params["contrast"], params["saturation"], params["strength"]) == (0.35,) * 4
    built = ColorJitter(**params)
    assert (built.brightness, built.contrast, built.saturation) == (0.35, 0.35, 0.35)
    assert reg.get("augmentation", "color_jitter").hyperparameters(brightness=0.1)["brightness"] == 0.1


# -- text ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TEXT_AUGMENTATIONS))
def test_text_determinism(name):
    augmentation = TEXT_AUGMENTATIONS[name]()
    assert augmentation.modality == "text"
    first = augmentation(TOKENS, gen(3))
    assert isinstance(first, list)
    assert first == augmentation(TOKENS, gen(3))
    assert first != augmentation(TOKENS, gen(4))
    assert TOKENS == [f"tok{i}" for i in range(40)]  # input not modified


def test_token_dropout_drops_but_never_empties():
    assert TokenDropout(p=1.0)(["only"], gen(0)) == ["only"]
    for seed in range(50):
        out = TokenDropout(p=1.0)(["a", "b", "c"], gen(seed))
        assert len(out) == 1 and out[0] in ("a", "b", "c")
        out = TokenDropout(p=0.9)(["a", "b"], gen(seed))
        assert out
    assert TokenDropout(p=0.5)([], gen(0)) == []
    out = TokenDropout(p=0.3)(TOKENS, gen(0))
    assert 0 < len(out) < len(TOKENS)
    assert out == [token for token in TOKENS if token in out]  # order kept
    assert TokenDropout(p=0.0)(TOKENS, gen(0)) == TOKENS


def test_token_swap_permutes_adjacent_pairs_only():
    out = TokenSwap(p=0.5)(TOKENS, gen(0))
    assert sorted(out) == sorted(TOKENS) and out != TOKENS
    for position, token in enumerate(out):
        assert abs(TOKENS.index(token) - position) <= 1
    assert TokenSwap(p=1.0)(["a", "b", "c", "d", "e"], gen(0)) == ["b", "a", "d", "c", "e"]
    assert TokenSwap(p=1.0)(["a"], gen(0)) == ["a"]
    assert TokenSwap(p=0.0)(TOKENS, gen(0)) == TOKENS


# -- batch: modality dropout ---------------------------------------------------------------

def random_masks(seed: int, batch: int = 64, names=("a", "b.x", "c")) -> dict[str, torch.Tensor]:
    generator = gen(seed)
    return {name: torch.rand(batch, generator=generator) > 0.4 for name in names}


def test_modality_dropout_never_removes_last_present_input():
    augmentation = ModalityDropout(p=0.9)
    assert isinstance(augmentation, BatchAugmentation) and augmentation.modality == "batch"
    for seed in range(20):
        masks = random_masks(seed)
        out = augmentation.apply_masks(masks, gen(seed))
        assert set(out) == set(masks)
        before = torch.stack([masks[n] for n in sorted(masks)], dim=1)
        after = torch.stack([out[n] for n in sorted(out)], dim=1)
        assert after.dtype == torch.bool
        assert not (after & ~before).any()  # never adds an input
        assert torch.equal(after.any(dim=1), before.any(dim=1))  # keeps >= 1 where there was >= 1
        assert (after.sum(dim=1) < before.sum(dim=1)).any()  # does drop


def test_modality_dropout_p_one_keeps_exactly_one():
    masks = {name: torch.ones(32, dtype=torch.bool) for name in ("a", "b", "c")}
    out = ModalityDropout(p=1.0).apply_masks(masks, gen(0))
    kept = torch.stack([out[n] for n in sorted(out)], dim=1)
    assert torch.equal(kept.sum(dim=1), torch.ones(32, dtype=torch.long))
    assert len(set(kept.int().argmax(dim=1).tolist())) > 1  # the kept input varies


def test_modality_dropout_determinism_and_rate():
    masks = {name: torch.ones(2000, dtype=torch.bool) for name in ("a", "b")}
    augmentation = ModalityDropout(p=0.1)
    first = augmentation.apply_masks(masks, gen(1))
    assert all(torch.equal(first[n], v) for n, v in augmentation.apply_masks(masks, gen(1)).items())
    assert any(not torch.equal(first[n], v) for n, v in augmentation.apply_masks(masks, gen(2)).items())
    dropped = sum((~first[n]).float().mean().item() for n in first) / 2
    assert 0.06 < dropped < 0.14
    assert torch.equal(masks["a"], torch.ones(2000, dtype=torch.bool))  # input not modified


# -- batch: mixup --------------------------------------------------------------------------

def soft_targets(batch: int = 16, classes: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.softmax(torch.randn(batch, classes, generator=gen(seed)) * 3, dim=1)


def test_mixup_keeps_soft_targets_summing_to_one_and_shapes():
    fused = torch.randn(16, 8, generator=gen(0))
    one_hot = torch.nn.functional.one_hot(torch.arange(16) % 4, 4).float()
    for targets in (soft_targets(), one_hot):
        for seed in range(10):
            mixed_fused, mixed_targets = Mixup(alpha=0.4, p=1.0).apply_fused(fused, targets, gen(seed))
            assert mixed_fused.shape == fused.shape and mixed_targets.shape == targets.shape
            torch.testing.assert_close(mixed_targets.sum(dim=1), torch.ones(16))
            assert (mixed_targets >= 0).all()


def test_mixup_mixes_consistently_and_deterministically():
    fused = torch.randn(16, 8, generator=gen(0))
    targets = torch.nn.functional.one_hot(torch.arange(16) % 4, 4).float()
    mixup = Mixup(alpha=1.0, p=1.0)
    out_fused, out_targets = mixup.apply_fused(fused, targets, gen(5))
    again = mixup.apply_fused(fused, targets, gen(5))
    assert torch.equal(out_fused, again[0]) and torch.equal(out_targets, again[1])
    assert not torch.equal(out_fused, mixup.apply_fused(fused, targets, gen(6))[0])
    assert not torch.equal(out_fused, fused)
    # One-hot rows mixed with weight lam: the largest entry is max(lam, 1 - lam) (or 1).
    lam = out_targets.max(dim=1).values.max().item()
    assert 0.5 <= lam <= 1.0


def test_mixup_probability_and_regression_targets():
    fused = torch.randn(8, 4, generator=gen(0))
    values = torch.randn(8, generator=gen(1))
    same = Mixup(p=0.0).apply_fused(fused, values, gen(0))
    assert same[0] is fused and same[1] is values
    mixed_fused, mixed_values = Mixup(alpha=0.2, p=1.0).apply_fused(fused, values, gen(0))
    assert mixed_values.shape == values.shape
    assert mixed_values.min() >= values.min() - 1e-6 and mixed_values.max() <= values.max() + 1e-6
    with pytest.raises(TypeError):
        Mixup(p=1.0).apply_fused(fused, torch.arange(8), gen(0))


def test_sample_beta_is_seeded_and_has_beta_moments():
    assert sample_beta(0.2, 0.2, gen(0)) == sample_beta(0.2, 0.2, gen(0))
    generator = gen(0)
    draws = torch.tensor([sample_beta(0.2, 0.2, generator) for _ in range(4000)])
    assert ((draws >= 0) & (draws <= 1)).all()
    assert abs(draws.mean().item() - 0.5) < 0.03
    assert abs(draws.var().item() - 0.25 / 1.4) < 0.02  # Var = 1 / (4 (2 alpha + 1))
    draws = torch.tensor([sample_beta(2.0, 5.0, generator) for _ in range(4000)])
    assert abs(draws.mean().item() - 2 / 7) < 0.015


# -- defaults, search spaces, registration ------------------------------------------------

@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_defaults_match_constructor_and_are_json(name):
    factory, _, _ = REGISTERED[name]
    signature = inspect.signature(factory).parameters
    defaults = json.loads(json.dumps(factory.defaults))
    assert set(defaults) == set(signature)
    for key, value in defaults.items():
        expected = signature[key].default
        assert (list(expected) if isinstance(expected, tuple) else expected) == pytest.approx(value)
    factory(**defaults)  # JSON round-tripped defaults build


FIXED = {
    "random_resized_crop": {"min_scale": 0.5},
    "horizontal_flip": {"p": 0.3},
    "color_jitter": {"strength": 0.1, "p": 0.9},
    "token_dropout": {"p": 0.2},
    "token_swap": {"p": 0.2},
    "modality_dropout": {"p": 0.2},
    "mixup": {"alpha": 0.3, "p": 0.7},
}


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_search_space_with_fixed_trial_builds_working_augmentation(name):
    factory, search_space, modality = REGISTERED[name]
    prefix = f"aug.{name}."
    trial = optuna.trial.FixedTrial({prefix + key: value for key, value in FIXED[name].items()})
    params = search_space(trial, prefix)
    assert set(params) <= set(factory.defaults)
    augmentation = factory(**params)
    if modality == "image":
        assert augmentation(image(), gen(0)).shape == image().shape
    elif modality == "text":
        assert augmentation(TOKENS, gen(0))
    elif name == "modality_dropout":
        assert set(augmentation.apply_masks(random_masks(0), gen(0))) == {"a", "b.x", "c"}
    else:
        assert augmentation.apply_fused(torch.randn(4, 3), soft_targets(4), gen(0))[0].shape == (4, 3)


def test_search_space_values_for_known_cases():
    crop = random_resized_crop_search_space(optuna.trial.FixedTrial({"x.min_scale": 0.5}), "x.")
    assert crop == {"scale": [0.5, 1.0]}
    jitter = color_jitter_search_space(optuna.trial.FixedTrial({"x.strength": 0.1, "x.p": 0.9}), "x.")
    assert jitter == {"brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "p": 0.9}
    # what the spaces suggest, the factories take (search_space= narrows them by these names)
    assert RandomResizedCrop(min_scale=0.5).scale == (0.5, 1.0)
    built = ColorJitter(strength=0.1)
    assert (built.brightness, built.contrast, built.saturation) == (0.1, 0.1, 0.1)


def test_registration_hook():
    registered = {}

    def register(name, factory, **kwargs):
        registered[name] = (factory, kwargs)

    automm_register_augmentations(register)
    assert set(registered) == set(REGISTERED)
    for name, (factory, kwargs) in registered.items():
        expected_factory, search_space, modality = REGISTERED[name]
        assert factory is expected_factory
        assert kwargs["modality"] == modality
        assert kwargs["defaults"] == factory.defaults
        assert kwargs["search_space"] is search_space
        assert kwargs["description"]


def test_color_jitter_draws_each_factor_from_its_own_range():
    """Saturation alone (brightness and contrast 0) changes a colour image, and leaves a grey one
    as it is; its factor was drawn from the contrast's range."""
    from automm.components.augmentations import ColorJitter

    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    jitter = ColorJitter(brightness=0.0, contrast=0.0, saturation=0.5, p=1.0)
    changed = [not torch.allclose(jitter(image, torch.Generator().manual_seed(seed)), image) for seed in range(4)]
    assert all(changed)
    grey = image[:1].repeat(3, 1, 1)
    torch.testing.assert_close(jitter(grey, torch.Generator().manual_seed(0)), grey)
