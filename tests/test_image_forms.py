"""Images in the forms users give them: the same picture read alike, and problems named."""

import io
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from automm import AutoMM
from automm.components.image import load_image
from automm.data import as_table, validate_images
from automm.exceptions import InputError
from automm.roles import infer_role_builtin

from helpers import tiny


def _picture():
    ramp = np.linspace(0, 255, 32 * 24).reshape(24, 32)
    return np.rint(ramp).astype(np.uint8)


@pytest.mark.parametrize("make", [lambda g: Image.fromarray(g).convert("I"),
                                  lambda g: Image.fromarray(g.astype(np.int32))])
def test_a_32_bit_pil_image_of_8_bit_values_reads_as_its_array_does(make):
    grey = _picture()
    expected = np.array(load_image(grey))
    assert np.abs(np.array(load_image(make(grey))).astype(int) - expected).max() <= 1


def test_a_16_bit_pil_image_is_16_bit_however_it_was_made(tmp_path):
    """A dark 16-bit scan read 257 times brighter once copied or resized (its format gone) than
    opened, and 255 and 256 on either side of a cliff."""
    dark = (_picture().astype(np.uint16) * 240 // 255)  # 0..240 of 65535
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    opened = Image.open(tmp_path / "dark16.png")
    forms = [tmp_path / "dark16.png", opened, opened.copy(), Image.fromarray(dark)]
    means = [np.array(load_image(form)).mean() for form in forms]
    assert max(means) - min(means) < 0.5 and max(means) < 2
    assert abs(np.array(load_image(Image.fromarray(np.full((8, 8), 255, np.uint16)))).mean()
               - np.array(load_image(Image.fromarray(np.full((8, 8), 256, np.uint16)))).mean()) < 1.5


def test_a_16_bit_file_still_scales_from_16_bits(tmp_path):
    grey = (_picture().astype(np.uint16) * 257)
    Image.fromarray(grey).save(tmp_path / "deep.png")
    assert np.abs(np.array(load_image(tmp_path / "deep.png"))[..., 0].astype(int) - _picture()).max() <= 1


def test_a_lazily_opened_truncated_pil_image_is_an_input_error(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    with pytest.raises(InputError, match="cut.jpg"):
        load_image(Image.open(tmp_path / "cut.jpg"), draft_size=32)


def test_one_hwc_array_is_not_read_as_a_stack_of_greyscale_images():
    with pytest.raises(InputError, match=r"one image \(H, W, C\).*pass \[image\]"):
        as_table([np.zeros((40, 30, 3), np.uint8)])
    assert len(as_table([np.zeros((5, 40, 30, 3), np.uint8)])) == 5


def test_one_greyscale_image_given_alone_to_predict_is_named_as_one():
    """A model of one image input given one (H, W) array: "X has 32 features, but AutoMM is
    expecting 1", with no word of images; it says the array is one image and to pass [image]."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (24, 32), dtype=np.uint8) for _ in range(12)]
    model = AutoMM(**tiny(max_epochs=1)).fit(images, [0, 1] * 6)
    hint = (r"; an array of shape \(24, 32\) is one greyscale image \(H, W\), not 24 rows of 32 columns: pass "
            r"\[image\] for one image, or a stack \(N, H, W\)$")
    for method in (model.predict, model.transform, lambda X: model.score(X, [0])):
        with pytest.raises(InputError, match=r"^X has 32 features, but AutoMM is expecting 1 features as input.*" + hint):
            method(images[0])
    assert len(model.predict([images[0]])) == 1
    numbers = AutoMM(**tiny(max_epochs=1, encoders=None)).fit(rng.normal(size=(12, 2)), [0, 1] * 6)  # no image input
    with pytest.raises(InputError, match=r"^X has 32 features, but AutoMM is expecting 2 features") as caught:
        numbers.predict(images[0])
    assert "greyscale" not in str(caught.value)


def test_a_stack_with_one_bad_image_names_it_and_makes_it_missing():
    stack = np.random.default_rng(0).random((40, 8, 8, 3))
    stack[17, 0, 0, 0] = np.nan
    with pytest.warns(UserWarning, match=r"row 17 \(ndarray\): float image array contains NaN"):
        assert validate_images("img", stack) == [17]
    with pytest.raises(InputError, match=r"40 of 40 images: row 0, row 1, row 2"):
        validate_images("img", stack * 255)


def test_memoryview_images_are_images():
    buffer = io.BytesIO()
    Image.fromarray(_picture()).save(buffer, "PNG")
    views = [memoryview(buffer.getvalue())] * 3
    assert infer_role_builtin(views) == "image"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert validate_images("img", views) == []


def test_home_relative_image_paths_are_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for i in range(8):
        Image.fromarray(np.full((16, 16), i * 30, np.uint8)).save(tmp_path / f"{i}.png")
    model = AutoMM(**tiny()).fit([f"~/{i}.png" for i in range(8)], ["a", "b"] * 4)
    assert len(model.predict([os.path.join("~", "3.png")])) == 1


def test_a_column_of_urls_read_as_text_is_warned_about():
    from automm.data import infer_roles
    from automm.registry import get_registry

    table = as_table([[f"https://cdn.example/images/{i}" for i in range(30)]])
    with pytest.warns(UserWarning, match="holds URLs.*never downloads"):
        roles = infer_roles(table, None, get_registry().plugin_manager, ["image", "text", "numeric", "categorical"])
    assert roles == {"x0": "text"}


def test_unreadable_validation_images_are_named_as_x_val():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(8)]
    val = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(20)]
    val[3] = np.full((16, 16), np.nan)
    with pytest.warns(UserWarning, match=r"^X_val: column 'x0': 1 of 20 images .*row 3"):
        AutoMM(**tiny()).fit(images, ["a", "b"] * 4, X_val=val, y_val=["a", "b"] * 10)


def test_a_32_bit_image_made_in_memory_and_its_file_are_other_cache_keys(tmp_path):
    """load_image reads the same 32-bit pixels differently from a file (0..65535) and from memory
    (0..255 when they are): the feature cache must not serve one's features for the other."""
    from automm.feature_cache import content_digest

    grey = _picture().astype(np.int32)
    Image.fromarray(grey).save(tmp_path / "deep.tif")
    in_memory, from_file = Image.fromarray(grey), Image.open(tmp_path / "deep.tif")
    assert in_memory.mode == from_file.mode == "I" and in_memory.tobytes() == from_file.tobytes()
    assert np.array(load_image(in_memory)).mean() > 10 * np.array(load_image(from_file)).mean()
    assert content_digest(in_memory) != content_digest(from_file)

def test_a_categorical_column_of_a_few_site_urls_is_not_warned_about():
    """The URL warning (automm never downloads) fired on a column of three shop sites, a category."""
    import pandas as pd

    from automm import get_registry
    from automm.data import infer_roles

    def roles(frame):
        known = ["numeric", "categorical", "text", "datetime", "image"]
        return infer_roles(as_table((frame,)), None, get_registry().plugin_manager, known)

    sites = [f"https://shop{i % 3}.example.com/" for i in range(60)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert roles(pd.DataFrame({"shop": sites})) == {"shop": "categorical"}
    products = [f"https://cdn.example.com/images/{1000 + i}" for i in range(60)]
    with pytest.warns(UserWarning, match="holds URLs"):
        roles(pd.DataFrame({"picture": products}))


def test_a_pil_image_whose_file_was_closed_before_use_is_named_before_training(tmp_path, monkeypatch):
    """``with Image.open(path) as image: images.append(image)`` leaves images that can never be
    decoded: the fit failed inside its first epoch with a bare AssertionError from Pillow."""
    import automm.estimator

    Image.fromarray(_picture()).save(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as closed:
        pass
    with pytest.raises(InputError, match=r"a\.png was never decoded and its file is closed.*image\.load\(\)"):
        load_image(closed)
    opened = [Image.open(tmp_path / "a.png") for _ in range(3)]
    with pytest.warns(UserWarning, match=r"1 of 40 images cannot be read and count as missing: row 39"):
        assert validate_images("image", opened * 13 + [closed]) == [39]

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(automm.estimator.AutoMM, "_fit_candidates", no_training)
    with pytest.raises(InputError, match=r"4 of 4 images cannot be read: row 0 \(PngImageFile\): PIL image .*a\.png "
                                         r"was never decoded and its file is closed"):
        AutoMM(**tiny()).fit([closed] * 4, [0, 1, 0, 1])


@pytest.mark.parametrize("scale, hint", [(0.6, r"divide by 255 if they are 0\.\.255 pixels \(by 153, their maximum"),
                                         (1.0, r"divide by 255 if they are 0\.\.255 pixels")])
def test_a_dark_photo_as_floats_of_0_to_255_is_told_to_divide_by_255(scale, hint):
    """A photo of 0..255 floats with no pure white was told to divide by its maximum (153): a
    picture 1.7 times brighter than the same photo as uint8."""
    photo = np.linspace(0, 255, 24 * 32).reshape(24, 32) * scale
    with pytest.raises(InputError, match=hint):
        load_image(photo)


def test_a_lazily_opened_pil_image_is_read_as_its_file_and_left_unloaded(tmp_path):
    """Image.open(path) images were loaded in place: each kept its full pixels in the caller's
    list (16 lazily opened 24-megapixel photos: 1.6 GB, 17 s to predict instead of 3 s as paths),
    and, not decoded at a reduced scale as its path is, gave other features than its path."""
    from automm.feature_cache import content_digest

    exif = Image.Exif()
    exif[0x0112] = 6
    pixels = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.jpg", exif=exif)
    Image.fromarray(255 - pixels).save(tmp_path / "other.jpg", exif=exif)
    opened = Image.open(tmp_path / "photo.jpg")
    assert np.array_equal(np.asarray(load_image(opened, draft_size=32)),
                          np.asarray(load_image(tmp_path / "photo.jpg", draft_size=32)))
    keys = {content_digest(opened), content_digest(Image.open(tmp_path / "other.jpg"))}
    assert opened.tile, "the caller's image was decoded in place"
    loaded = Image.open(tmp_path / "photo.jpg")
    loaded.load()
    keys.add(content_digest(loaded))  # its full pixels: another image than the file read at a reduced scale
    assert len(keys) == 3 and load_image(loaded).size == (96, 128)
    drafted = Image.open(tmp_path / "photo.jpg")
    drafted.draft("RGB", (64, 48))  # no longer the file's image: its own pixels are read
    assert load_image(drafted).size == (48, 64)


def test_a_palette_image_with_an_alpha_palette_is_composited_on_white_as_its_rgba_image():
    """``convert("P")`` and ``quantize()`` of an RGBA image keep the alpha in the palette, not in
    ``info["transparency"]``: such an image's transparent background was read black (an emoji's
    probabilities moved by up to 0.30), and the feature cache keyed it without the alpha."""
    from automm.datasets import load_emoji_sample
    from automm.feature_cache import content_digest

    path = load_emoji_sample()["image"].iloc[0]
    rgba = Image.open(path).convert("RGBA")
    assert rgba.getpixel((0, 0))[3] == 0  # a transparent corner
    expected = np.asarray(load_image(path)).astype(int)
    for palette in (rgba.convert("P"), rgba.quantize()):
        assert palette.mode == "P" and palette.palette.mode == "RGBA" and "transparency" not in palette.info
        read = np.asarray(load_image(palette)).astype(int)
        assert read[0, 0].min() >= 240  # (quantize gives the background a near-transparent colour)
        assert np.abs(read - expected).mean() < 3  # (the palette's 256 colours)

    transparent = Image.new("P", (4, 4), 0)
    transparent.putpalette([0, 0, 0, 0, 255, 0, 0, 255], rawmode="RGBA")
    opaque = transparent.copy()
    opaque.putpalette([0, 0, 0, 255, 255, 0, 0, 255], rawmode="RGBA")
    assert np.asarray(load_image(transparent)).min() == 255 and np.asarray(load_image(opaque)).max() == 0
    assert content_digest(transparent) != content_digest(opaque)


def test_one_greyscale_image_with_a_channel_axis_is_not_read_as_a_stack_of_images():
    """``predict(x[0])`` of a Keras-style (N, H, W, 1) set gave H predictions, one per row of
    pixels, each an image 1 pixel wide."""
    image = np.random.default_rng(0).integers(0, 255, (40, 30, 1), dtype=np.uint8)
    expected = r"shape \(40, 30, 1\) is one greyscale image \(H, W, 1\), not a stack of 40 images 1 pixel wide; pass \[image\]"
    with pytest.raises(InputError, match=expected):
        validate_images("x0", image)
    with pytest.raises(InputError, match=expected):
        validate_images("x0", as_table([image]).columns["x0"])
    assert validate_images("x0", image[None]) == [] and validate_images("x0", np.stack([image[..., 0]] * 3)) == []


def test_image_paths_given_as_bytes_are_named_as_paths(tmp_path):
    """Paths as bytes (h5py's strings, a numpy ``S`` array's) were read as text without a word, and
    as images "not a readable image (UnidentifiedImageError)"."""
    from automm import get_registry
    from automm.data import infer_roles

    paths = [os.fsencode(tmp_path / f"{i}.png") for i in range(30)]
    with pytest.warns(UserWarning, match=r"column 'x0' holds image file paths as bytes \(e\.g\. b'.*0\.png'\): it is "
                                         r"read as text, the paths, not the images; decode them to str"):
        roles = infer_roles(as_table([np.array(paths)]), None, get_registry().plugin_manager,
                            ["image", "text", "numeric", "categorical"])
    assert roles == {"x0": "text"}
    with pytest.raises(InputError, match=r"row 0 \(bytes\): bytes of the path '.*0\.png', not of an image \(give "
                                         r"paths as str: value\.decode\(\)\)"):
        validate_images("x0", paths)
