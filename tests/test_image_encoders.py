"""Tests of image loading, preprocessing and the built-in image encoders (cnn, resnet, colour_histogram)."""

from __future__ import annotations

import inspect
import io
import os
from pathlib import Path

import numpy as np
import optuna
import pluggy
import pytest
import torch
from PIL import Image

from automm import hookspecs
from automm.components import image as image_module
from automm.components.base import MISSING
from automm.components.image import (COLOUR_FEATURES, CNNEncoder, ColourHistogramEncoder, ImageEncoder,
                                     ResNetEncoder, cnn_search_space, load_image, resnet_search_space)
from automm.exceptions import InputError
from helpers import single_torch_thread  # noqa: F401  (autouse: this module's tests on one torch thread)

ENCODERS = {"cnn": CNNEncoder, "resnet": ResNetEncoder}
SEARCH_SPACES = {"cnn": cnn_search_space, "resnet": resnet_search_space}


def shared_data_dir() -> Path:
    """Real data: ``$AUTOMM_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("AUTOMM_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def registered_encoders() -> dict[str, dict]:
    """What the module's hook registers, keyed by name."""
    calls: dict[str, dict] = {}

    def register(name, factory, **options):
        calls[name] = dict(options, factory=factory)

    image_module.automm_register_encoders(register=register)
    return calls


def png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


# -- load_image -------------------------------------------------------------------------

def test_load_image_from_path_str_and_pathlib(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (10, 6), (255, 0, 0)).save(path)
    for value in (str(path), path):
        img = load_image(value)
        assert img.mode == "RGB" and img.size == (10, 6)
        assert img.getpixel((3, 3)) == (255, 0, 0)


def test_load_image_from_bytes():
    img = load_image(png_bytes(Image.new("RGB", (5, 7), (0, 128, 255))))
    assert img.mode == "RGB" and img.size == (5, 7) and img.getpixel((0, 0)) == (0, 128, 255)


def test_load_image_greyscale_arrays_become_rgb():
    grey = np.full((4, 6), 100, dtype=np.uint8)
    for array in (grey, grey[:, :, None]):
        img = load_image(array)
        assert img.mode == "RGB" and img.size == (6, 4) and img.getpixel((0, 0)) == (100, 100, 100)


def test_load_image_rgb_uint8_and_float_arrays():
    array = np.zeros((3, 4, 3), dtype=np.uint8)
    array[..., 1] = 200
    assert load_image(array).getpixel((2, 1)) == (0, 200, 0)
    floats = np.zeros((3, 4, 3), dtype=np.float32)
    floats[..., 2] = 1.0
    floats[..., 0] = 0.5
    assert load_image(floats).getpixel((0, 0)) == (128, 0, 255)
    assert load_image(np.ones((2, 2), dtype=np.float64)).getpixel((1, 1)) == (255, 255, 255)


def test_load_image_integer_and_boolean_arrays():
    # np.array(list of lists) gives int64: pixels 0..255 all the same
    assert load_image(np.array([[0, 128], [255, 7]])).getpixel((1, 0)) == (128, 128, 128)
    assert load_image(np.array([[True, False]])).getpixel((0, 0)) == (255, 255, 255)


def test_load_image_rgba_array_transparent_pixels_become_white():
    array = np.zeros((2, 2, 4), dtype=np.uint8)
    array[0, 0] = (255, 0, 0, 255)      # opaque red
    array[0, 1] = (0, 0, 255, 0)        # fully transparent blue -> white
    array[1, 0] = (0, 0, 0, 128)        # half-transparent black -> mid grey
    img = load_image(array)
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (255, 0, 0)
    assert img.getpixel((1, 0)) == (255, 255, 255)
    assert all(abs(c - 127) <= 1 for c in img.getpixel((0, 1)))


def test_load_image_palette_with_transparency_and_la_modes():
    palette_img = Image.new("P", (3, 3), 0)
    palette_img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette_img.putpixel((1, 1), 1)
    palette_img.info["transparency"] = 0
    for value in (palette_img, png_bytes(palette_img)):
        img = load_image(value)
        assert img.mode == "RGB"
        assert img.getpixel((0, 0)) == (255, 255, 255)   # transparent index -> white
        assert img.getpixel((1, 1)) == (255, 0, 0)

    la = Image.new("LA", (2, 1), (50, 255))
    la.putpixel((1, 0), (0, 0))
    img = load_image(la)
    assert img.getpixel((0, 0)) == (50, 50, 50) and img.getpixel((1, 0)) == (255, 255, 255)


def test_load_image_other_pil_modes():
    assert load_image(Image.new("L", (2, 2), 30)).getpixel((0, 0)) == (30, 30, 30)
    assert load_image(Image.new("1", (2, 2), 1)).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(Image.new("CMYK", (2, 2), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    sixteen_bit = Image.fromarray(np.full((2, 2), 65535, dtype=np.uint16))
    assert load_image(sixteen_bit).getpixel((0, 0)) == (255, 255, 255)


def test_load_image_draft_size_decodes_jpeg_at_reduced_scale(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (800, 600), (10, 200, 30)).save(path, quality=90)
    full = load_image(path)
    drafted = load_image(path, draft_size=64)
    assert full.size == (800, 600)
    assert 64 <= min(drafted.size) < 600 and drafted.mode == "RGB"
    assert load_image(path.read_bytes(), draft_size=64).size == drafted.size


@pytest.mark.parametrize("value, message", [
    (12345, "type int"),
    (None, "type NoneType"),
    (torch.zeros(3, 4, 4), "type Tensor"),
    (np.zeros((3, 8, 8), dtype=np.uint8), "shape (3, 8, 8)"),
    (np.zeros((4, 4, 2), dtype=np.uint8), "shape (4, 4, 2)"),
    (np.zeros((2, 2, 2, 3), dtype=np.uint8), "shape (2, 2, 2, 3)"),
    (np.zeros((0, 4), dtype=np.uint8), "no pixels"),
    (np.full((2, 2), 2.0), "[0, 1]"),
    (np.full((2, 2), np.nan), "NaN"),
    (np.full((2, 2), 256, dtype=np.int64), "0..255; got values in 256..256"),
    (np.full((2, 2), 16.0), "divide by 16"),
    (np.zeros((2, 2), dtype=np.complex64), "dtype complex64"),
    (b"", "empty bytes"),
    (b"definitely not an image", "not a readable image"),
    ("/no/such/file.png", "not found"),
])
def test_load_image_bad_inputs_raise_input_error(value, message):
    with pytest.raises(InputError) as excinfo:
        load_image(value)
    assert message in str(excinfo.value)


def test_load_image_truncated_file_raises_input_error(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, format="JPEG")
    with pytest.raises(InputError):
        load_image(buffer.getvalue()[:200])


# -- preprocess -------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_preprocess_shape_and_range(name):
    encoder = ENCODERS[name](image_size=32)
    rng = np.random.default_rng(0)
    sample = encoder.preprocess(rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8))
    assert sample.shape == (3, 32, 32) and sample.dtype == torch.float32
    assert sample.min() >= -1.0 and sample.max() <= 1.0
    white = encoder.preprocess(Image.new("RGB", (32, 32), (255, 255, 255)))
    black = encoder.preprocess(Image.new("RGB", (10, 10), (0, 0, 0)))
    assert torch.allclose(white, torch.ones(3, 32, 32)) and torch.allclose(black, -torch.ones(3, 32, 32))


def test_preprocess_missing_gives_zeros():
    sample = CNNEncoder(image_size=48).preprocess(MISSING)
    assert sample.shape == (3, 48, 48) and not sample.any()


def test_preprocess_calls_augment_on_unit_range_tensor():
    seen = []

    def flip_to_black(x):
        seen.append((tuple(x.shape), float(x.min()), float(x.max())))
        return torch.zeros_like(x)

    encoder = CNNEncoder(image_size=16)
    sample = encoder.preprocess(Image.new("RGB", (40, 20), (255, 255, 255)), augment=flip_to_black)
    assert seen == [((3, 16, 16), 1.0, 1.0)]
    assert torch.allclose(sample, -torch.ones(3, 16, 16))


def test_preprocess_resizes_and_clamps_augment_output():
    encoder = CNNEncoder(image_size=16)
    sample = encoder.preprocess(Image.new("RGB", (16, 16)), augment=lambda x: torch.full((3, 20, 24), 3.0))
    assert sample.shape == (3, 16, 16) and torch.allclose(sample, torch.ones(3, 16, 16))
    with pytest.raises(InputError):
        encoder.preprocess(Image.new("RGB", (16, 16)), augment=lambda x: x[0])


def test_collate_and_state_round_trip():
    encoder = ResNetEncoder(image_size=16, width=8, depth=2)
    batch = encoder.collate([encoder.preprocess(MISSING), encoder.preprocess(np.zeros((5, 5), dtype=np.uint8))])
    assert batch.shape == (2, 3, 16, 16)
    state = encoder.get_state()
    assert state == {}
    encoder.set_state(state)


def test_real_images_preprocess():
    data = shared_data_dir()
    jpgs = sorted((data / "fashion" / "images").glob("*.jpg"))[:1]
    pngs = sorted((data / "emoji" / "images").glob("*.png"))[:1]
    if not jpgs or not pngs:
        pytest.skip(f"real image data not found under {data} (set AUTOMM_DATA)")
    encoder = CNNEncoder(image_size=64)
    for path in jpgs + pngs:
        sample = encoder.preprocess(path)
        assert sample.shape == (3, 64, 64) and -1.0 <= sample.min() <= sample.max() <= 1.0
    emoji = load_image(pngs[0])  # transparent background -> white corners
    assert emoji.mode == "RGB" and emoji.getpixel((0, 0)) == (255, 255, 255)
    assert encoder(torch.stack([encoder.preprocess(p) for p in jpgs + pngs])).shape == (2, 128)


# -- encoders ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, hyperparameters", [
    ("cnn", dict(image_size=48, width=16, depth=4, output_dim=40, dropout=0.2)),
    ("cnn", dict(image_size=20, width=8, depth=2, output_dim=7, dropout=0.0)),
    ("resnet", dict(image_size=48, width=16, depth=4, blocks_per_stage=2, output_dim=40, dropout=0.2)),
    ("resnet", dict(image_size=24, width=8, depth=2, blocks_per_stage=1, output_dim=9, dropout=0.0)),
])
def test_forward_shape_equals_output_dim(name, hyperparameters):
    encoder = ENCODERS[name](**hyperparameters)
    assert encoder.modality == "image" and encoder.output_dim == hyperparameters["output_dim"]
    size = hyperparameters["image_size"]
    out = encoder(torch.randn(3, 3, size, size))
    assert out.shape == (3, hyperparameters["output_dim"]) and torch.isfinite(out).all()
    encoder.eval()
    assert encoder(torch.randn(1, 3, size, size)).shape == (1, hyperparameters["output_dim"])


def _convolutions(module):
    return [(m.out_channels, m.stride[0]) for m in module.modules()
            if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]


def _dropouts(module):
    return {m.p for m in module.modules() if isinstance(m, torch.nn.Dropout)}


def test_width_depth_blocks_and_dropout_build_the_network_they_name():
    """The output width alone did not show a width, depth, blocks_per_stage or dropout left unused."""
    cnn = CNNEncoder(image_size=32, width=4, depth=3, output_dim=5, dropout=0.3)
    assert _convolutions(cnn) == [(4, 2), (8, 1), (16, 1)]  # channels doubling from width, stride 2 first
    assert _dropouts(cnn) == {0.3}
    resnet = ResNetEncoder(image_size=32, width=4, depth=3, blocks_per_stage=2, output_dim=5, dropout=0.25)
    # the stem, then per stage blocks_per_stage blocks of two convolutions, stride 2 entering stages 2 and 3
    assert _convolutions(resnet) == [(4, 2)] + [(4, 1)] * 4 + [(8, 2)] + [(8, 1)] * 3 + [(16, 2)] + [(16, 1)] * 3
    assert _dropouts(resnet) == {0.25}
    histogram = ColourHistogramEncoder(image_size=16, hidden_dim=7, output_dim=5, dropout=0.35)
    assert [m.out_features for m in histogram.modules() if isinstance(m, torch.nn.Linear)] == [7, 5]
    assert _dropouts(histogram) == {0.35}
    flat = ColourHistogramEncoder(image_size=16, hidden_dim=0, output_dim=5)
    assert [m.in_features for m in flat.modules() if isinstance(m, torch.nn.Linear)] == [COLOUR_FEATURES]


@pytest.mark.parametrize("cls", [CNNEncoder, ResNetEncoder])
@pytest.mark.parametrize("bad", [dict(width=0), dict(depth=-1), dict(output_dim=2.5), dict(dropout=1.0),
                                 dict(image_size=0), dict(blocks_per_stage=0)])
def test_bad_hyperparameters_raise_input_error(cls, bad):
    if "blocks_per_stage" in bad and cls is CNNEncoder:
        bad = dict(width=True)
    with pytest.raises(InputError):
        cls(**bad)


def test_cnn_rejects_images_too_small_for_its_depth():
    with pytest.raises(InputError, match="too small"):
        CNNEncoder(image_size=8, depth=3)
    assert CNNEncoder(image_size=16, depth=3, width=4)(torch.randn(2, 3, 16, 16)).shape == (2, 128)
    # strided convolutions keep at least one pixel, so the resnet accepts tiny images
    assert ResNetEncoder(image_size=8, depth=3, width=4)(torch.randn(2, 3, 8, 8)).shape == (2, 128)
    assert ResNetEncoder(image_size=5, depth=4, width=4)(torch.randn(2, 3, 5, 5)).shape == (2, 128)
    with pytest.raises(InputError, match="too small"):
        ResNetEncoder(image_size=3)


def test_registration_defaults_cover_constructor_and_output_dim_matches():
    calls = registered_encoders()
    assert set(calls) == {"cnn", "resnet", "colour_histogram"}
    for name, options in calls.items():
        factory = options["factory"]
        assert options["modality"] == "image" and options["description"]
        parameters = set(inspect.signature(factory).parameters)
        assert set(options["defaults"]) == parameters
        encoder = factory(**options["defaults"])
        assert isinstance(encoder, ImageEncoder)
        assert encoder.output_dim == options["output_dim"](options["defaults"])
        for key, default in options["defaults"].items():
            assert inspect.signature(factory).parameters[key].default == default


def test_hook_registers_through_pluggy():
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(image_module)
    names = []
    pm.hook.automm_register_encoders(register=lambda name, factory, **options: names.append(name))
    assert sorted(names) == ["cnn", "colour_histogram", "resnet"]


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_search_space_under_fixed_trial_builds_encoder(name):
    prefix = f"image.{name}."
    params = {"image_size": 48, "width": 16, "depth": 2, "output_dim": 64, "dropout": 0.25}
    if name == "resnet":
        params["blocks_per_stage"] = 2
    trial = optuna.trial.FixedTrial({prefix + key: value for key, value in params.items()})
    kwargs = SEARCH_SPACES[name](trial, prefix)
    assert kwargs == params
    assert set(kwargs) == set(registered_encoders()[name]["defaults"])
    encoder = ENCODERS[name](**kwargs)
    assert encoder(torch.randn(2, 3, 48, 48)).shape == (2, 64)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_search_space_under_real_study_builds_encoders(name):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(4):
        trial = study.ask()
        kwargs = SEARCH_SPACES[name](trial, "enc.")
        assert all(param.startswith("enc.") for param in trial.params)
        encoder = ENCODERS[name](**kwargs)
        assert encoder.output_dim == kwargs["output_dim"]
        study.tell(trial, 0.0)


def make_two_class_images(n_per_class: int, size: int, seed: int = 0):
    """Class 0: bright left half; class 1: bright right half; both with noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in (0, 1):
        for _ in range(n_per_class):
            array = rng.uniform(0.0, 0.3, size=(size, size, 3))
            half = slice(0, size // 2) if label == 0 else slice(size // 2, size)
            array[:, half] += 0.6
            images.append(np.clip(array, 0.0, 1.0))
            labels.append(label)
    return images, torch.tensor(labels)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoder_trains_on_separable_images(name):
    torch.manual_seed(0)
    encoder = ENCODERS[name](image_size=32, width=8, depth=2, output_dim=16)
    head = torch.nn.Linear(encoder.output_dim, 2)
    images, labels = make_two_class_images(16, 40)
    batch = encoder.collate([encoder.preprocess(image) for image in images])
    optimizer = torch.optim.Adam(list(encoder.parameters()) + list(head.parameters()), lr=1e-2)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        logits = head(encoder(batch))
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert (logits.argmax(1) == labels).float().mean().item() >= 0.9


def test_float_and_16_bit_image_files_keep_their_contrast(tmp_path):
    """A float TIFF holding 0..255 (an 8-bit image saved as floats) came out white: it was read as [0, 1]."""
    ramp = np.tile(np.linspace(0, 1, 64), (8, 1))
    for name, pixels, mode in (("unit.tiff", ramp, "F"), ("bytes.tiff", ramp * 255, "F"),
                               ("wide.tiff", ramp * 4000 - 1000, "F"), ("deep.png", ramp * 65535, "I;16")):
        array = pixels.astype(np.float32) if mode == "F" else pixels.astype(np.uint16)
        image = Image.fromarray(array)
        assert image.mode == mode
        image.save(tmp_path / name)
        loaded = np.asarray(load_image(tmp_path / name))[..., 0].astype(np.float64)
        np.testing.assert_allclose(loaded, np.rint(ramp * 255), atol=1.0, err_msg=name)


# -- colour_histogram ---------------------------------------------------------------------

def test_colour_histogram_is_the_colour_shares_of_the_picture_and_of_its_centre(tmp_path):
    pixels = np.full((8, 8, 3), 255, dtype=np.uint8)
    pixels[2:6, 2:6] = (255, 0, 0)  # a red square filling the centre, on white
    path = tmp_path / "red_on_white.png"
    Image.fromarray(pixels).save(path)
    encoder = ColourHistogramEncoder(image_size=8)
    features = encoder.preprocess(str(path))
    assert features.shape == (COLOUR_FEATURES,) and features.dtype == torch.float32
    red_rgb, white_rgb, red_hsv, white_hsv = 7 * 64, 511, 3 * 4 + 3, 3  # 8x8x8 RGB and 16x4x4 HSV bins
    expected = torch.zeros(COLOUR_FEATURES)
    expected[red_rgb], expected[white_rgb] = 0.5, 0.75 ** 0.5  # whole picture: the square root of the shares
    expected[512 + red_rgb] = 1.0  # its centre: all red
    expected[1024 + red_hsv], expected[1024 + white_hsv] = 0.5, 0.75 ** 0.5
    expected[1280 + red_hsv] = 1.0
    torch.testing.assert_close(features, expected)
    # a function of the pixels alone: the same picture as bytes, an array or a PIL image, and
    # through an augmentation that changes nothing
    for value in (path.read_bytes(), pixels, Image.fromarray(pixels)):
        torch.testing.assert_close(encoder.preprocess(value), expected)
    torch.testing.assert_close(encoder.preprocess(str(path), augment=lambda x: x.clone()), expected)
    assert not encoder.preprocess(MISSING).any()


def test_colour_histogram_reads_the_augmented_pixels_and_its_linear_form_is_its_design_times_the_weight():
    """An augmentation left unused, or a linear form predicting on another scale than the design it
    was fitted on, passed the tests."""
    encoder = ColourHistogramEncoder(image_size=8)
    white, red = Image.new("RGB", (8, 8), (255, 255, 255)), Image.new("RGB", (8, 8), (255, 0, 0))
    blackened = encoder.preprocess(white, augment=torch.zeros_like)
    torch.testing.assert_close(blackened, encoder.preprocess(Image.new("RGB", (8, 8), (0, 0, 0))))
    assert not torch.equal(blackened, encoder.preprocess(white))
    linear = ColourHistogramEncoder(image_size=8, output_dim=3, linear=True)
    batch = linear.collate([linear.preprocess(v) for v in (white, red, MISSING)])
    weight = torch.randn(COLOUR_FEATURES, 3, generator=torch.Generator().manual_seed(0))
    linear.set_linear_weight(weight)
    torch.testing.assert_close(linear(batch), linear.linear_design(batch).to_dense() @ weight)


def test_an_image_only_colour_task_gets_the_search_s_linear_model_on_the_colours(builtin_only, tmp_path):
    """Fashion baseColour from the photo alone scored 0.43 at time_limit=60 (the cnn, cut in its
    first epochs; no linear model for images without automm-pretrained) against 0.63 for
    logistic regression on a colour histogram: the search's linear model now reads the colours."""
    from automm import AutoMM

    rng = np.random.default_rng(0)
    hues = {"red": (190, 40, 40), "olive": (120, 130, 40), "teal": (40, 130, 130), "navy": (30, 40, 110)}

    def photos(n):
        images, labels = [], []
        for i in range(n):
            label = list(hues)[i % len(hues)]
            image = np.full((24, 24, 3), 255, dtype=np.uint8)  # a product of that colour (shade and place vary) on white
            top, left, size = rng.integers(1, 8), rng.integers(1, 8), rng.integers(10, 16)
            image[top:top + size, left:left + size] = np.clip(np.array(hues[label]) + rng.integers(-25, 26, 3), 0, 255)
            images.append(image)
            labels.append(label)
        return images, labels

    images, labels = photos(160)
    test_images, test_labels = photos(40)
    test_images[0] = None  # a row without a picture still gets a prediction
    model = AutoMM(n_trials=2, max_epochs=1, batch_size=32, num_workers=0, random_state=0).fit(images, labels)
    linear = model.leaderboard_.set_index("number").loc[1]  # right after the default (cnn)
    assert linear["fusion"] == "sum" and linear["encoders"] == "image_0=colour_histogram"
    assert linear["state"] == "COMPLETE" and linear["score"] >= 0.9
    assert model.score(test_images, test_labels) >= 0.9
    proba = model.predict_proba(test_images)
    assert np.isfinite(proba).all()
    loaded = AutoMM.load(model.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict_proba(test_images), proba, atol=1e-6)
