"""Tests of the decoded-image cache shared by the epochs and trials of one fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from automm import AutoMM
from automm.components import image as image_module
from automm.components.image import image_tensor
from automm.components.image_cache import (ENTRY_OVERHEAD, cache_stats, image_cache, image_cache_budget,
                                           suspend_image_cache)


@pytest.fixture
def count_decodes(monkeypatch):
    """Counts calls of ``load_image`` (the file decode) made by ``image_tensor``."""
    calls = []
    real = image_module.load_image

    def counting(value, draft_size=None):
        calls.append(value)
        return real(value, draft_size=draft_size)

    monkeypatch.setattr(image_module, "load_image", counting)
    return calls


@pytest.fixture
def png_paths(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_repeated_images_decode_once_inside_the_scope_with_identical_pixels(png_paths, count_decodes):
    uncached = [image_tensor(p, 16) for p in png_paths]
    assert len(count_decodes) == 3
    with image_cache():
        first = [image_tensor(p, 16) for p in png_paths]
        second = [image_tensor(p, 16) for p in png_paths]
        assert cache_stats()["entries"] == 3 and cache_stats()["hits"] == 3
    assert len(count_decodes) == 6  # the second pass came from the cache
    for a, b, c in zip(uncached, first, second):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert cache_stats() is None  # freed when the scope ends
    image_tensor(png_paths[0], 16)
    assert len(count_decodes) == 7  # nothing kept outside a scope


def test_each_side_is_cached_separately(png_paths):
    with image_cache():
        small, large = image_tensor(png_paths[0], 8), image_tensor(png_paths[0], 16)
        assert small.shape == (3, 8, 8) and large.shape == (3, 16, 16)
        assert cache_stats()["entries"] == 2


def test_augmentations_never_modify_the_cached_pixels(png_paths):
    def blacken(x):
        return x.mul_(0.0)  # an in-place augmentation

    with image_cache():
        clean = image_tensor(png_paths[0], 16)
        assert image_tensor(png_paths[0], 16, blacken).abs().sum() == 0
        assert torch.equal(image_tensor(png_paths[0], 16), clean)


def test_arrays_are_keyed_by_identity_and_kept_alive(count_decodes):
    rng = np.random.default_rng(1)
    with image_cache():
        values = [rng.integers(0, 256, (20, 20, 3), dtype=np.uint8) for _ in range(2)]
        a = image_tensor(values[0], 8)
        b = image_tensor(values[1], 8)
        assert not torch.equal(a, b)
        assert torch.equal(image_tensor(values[0], 8), a)
        assert len(count_decodes) == 2
        # a new array built after the old one is dropped never gets the old one's pixels
        del values[0]
        fresh = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
        assert torch.equal(image_tensor(fresh, 8), _uncached(fresh, 8))


def _uncached(value, size):
    with suspend_image_cache():
        return image_tensor(value, size)


def test_the_budget_bounds_the_cache_and_zero_turns_it_off(png_paths, monkeypatch, count_decodes):
    one_image = 3 * 16 * 16 + ENTRY_OVERHEAD  # bytes of one cached image at side 16, with its entry
    monkeypatch.setenv("AUTOMM_IMAGE_CACHE_MB", str(1.5 * one_image / 2 ** 20))
    with image_cache():
        for _ in range(2):
            for p in png_paths:
                image_tensor(p, 16)
        stats = cache_stats()
        assert stats["entries"] == 1 and stats["bytes"] <= stats["budget"]
    assert len(count_decodes) == 5  # only the first image was served from the cache
    # tiny pictures: their entries' overhead counts (pixels alone would have let all three in)
    monkeypatch.setenv("AUTOMM_IMAGE_CACHE_MB", str(4 * (3 * 4 * 4 + 100) / 2 ** 20))
    with image_cache():
        for p in png_paths:
            image_tensor(p, 4)
        assert cache_stats()["entries"] == 0
    monkeypatch.setenv("AUTOMM_IMAGE_CACHE_MB", "0")
    assert image_cache_budget() == 0
    with image_cache():
        assert cache_stats() is None
    for bad in ("lots", "-1", "inf"):  # a negative size had turned the cache off silently
        monkeypatch.setenv("AUTOMM_IMAGE_CACHE_MB", bad)
        with pytest.raises(ValueError, match=f"AUTOMM_IMAGE_CACHE_MB must be a number of megabytes >= 0; got '{bad}'"):
            image_cache_budget()


def test_nested_scopes_share_one_cache_and_suspend_bypasses_it(png_paths, count_decodes):
    with image_cache():
        image_tensor(png_paths[0], 16)
        with image_cache():
            image_tensor(png_paths[0], 16)
            assert cache_stats()["hits"] == 1
        assert cache_stats() is not None  # the inner scope does not free the outer one's cache
        with suspend_image_cache():
            image_tensor(png_paths[1], 16)
        assert cache_stats()["entries"] == 1
    assert len(count_decodes) == 2


def test_a_fit_with_the_cache_equals_one_without(emoji_sample, monkeypatch, request):
    """The cache changes the speed of a fit, never its result (augmentations included)."""
    rows = emoji_sample[emoji_sample.split == "train"].head(60)
    X, y = rows[["image", "name"]], rows["category"]
    previous = torch.get_num_threads()
    request.addfinalizer(lambda: torch.set_num_threads(previous))  # (the tests after it ran on one thread)

    def fitted_probabilities():
        torch.set_num_threads(1)
        clf = AutoMM(random_state=0, max_epochs=2, n_trials=1, encoders={"image": "cnn", "text": "hashed_ngram"},
                     augmentations=["random_resized_crop", "horizontal_flip"])
        return clf.fit(X, y).predict_proba(X), clf.history_

    monkeypatch.setenv("AUTOMM_IMAGE_CACHE_MB", "0")
    without, history_without = fitted_probabilities()
    monkeypatch.delenv("AUTOMM_IMAGE_CACHE_MB")
    with_cache, history_with = fitted_probabilities()
    np.testing.assert_array_equal(without, with_cache)
    assert [r["train_loss"] for r in history_without] == [r["train_loss"] for r in history_with]


def test_a_scope_belongs_to_its_thread_unless_shared(png_paths, count_decodes):
    """A fit in one thread kept its scope open for every thread: a service that wrote each upload to
    one path and predicted on it got the first upload's answer for the second while a fit ran beside."""
    import threading

    from automm.components.image_cache import current_image_cache, shared_image_cache

    opened, done = threading.Event(), threading.Event()
    seen = {}

    def fitting():
        with image_cache():
            image_tensor(png_paths[0], 16)
            seen["cache"] = current_image_cache()
            opened.set()
            done.wait(10)

    fit = threading.Thread(target=fitting)
    fit.start()
    assert opened.wait(10)
    try:
        first = image_tensor(png_paths[0], 16)
        Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(png_paths[0])  # the next upload, same path
        with image_cache():  # a prediction in this thread: its own scope, not the fit's
            assert cache_stats()["entries"] == 0
            rewritten = image_tensor(png_paths[0], 16)
        assert not torch.equal(first, rewritten) and int(rewritten.sum()) == 0
        assert current_image_cache() is None
        with shared_image_cache(seen["cache"]):  # a trial thread of that fit: its cache
            assert cache_stats()["entries"] == 1
            decodes = len(count_decodes)
            image_tensor(png_paths[1], 16)
            image_tensor(png_paths[1], 16)
            assert len(count_decodes) == decodes + 1 and len(seen["cache"].entries) == 2
        assert current_image_cache() is None
    finally:
        done.set()
        fit.join()
