"""Image loading and the built-in image encoders (``cnn``, ``resnet``, ``colour_histogram``), trained
from scratch.

The networks take square RGB images of side ``image_size`` and are sized to train on a CPU:
their first layer downsamples by 4 (a stride-2 convolution, then a 2x2 max pool).
``colour_histogram`` reads an image's colours only (joint RGB and HSV histograms): what a
from-scratch CNN learns slowly and frozen ImageNet features keep little of, and, in its linear
form, the search's linear model's way to see an image without a pretrained plugin.
"""

from __future__ import annotations

import contextlib
import functools
import io
import numbers
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn
from torch.nn import functional as F

from automm.components.base import MISSING, Encoder, true_or_false, whole_at_least_one
from automm.components.image_cache import cached_pixels
from automm.exceptions import InputError
from automm.hookspecs import hookimpl

__all__ = [
    "image_tensor",
    "load_image",
    "exif_orientation",
    "pil_image_problem",
    "unread_image_file",
    "ImageEncoder",
    "CNNEncoder",
    "ResNetEncoder",
    "ColourHistogramEncoder",
    "colour_histogram",
    "cnn_search_space",
    "resnet_search_space",
    "colour_histogram_search_space",
    "automm_register_encoders",
]

_HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_WHITE = (255, 255, 255, 255)


# -- loading ----------------------------------------------------------------------------

#: The formats :func:`load_image` decodes at a reduced scale (``draft_size``): JPEG, and MPO, a JPEG
#: holding further pictures after its first (a phone's Ultra HDR gain map, a depth map), which Pillow
#: opens as its first picture: the same decoder, the same pixels (a 12-megapixel photo decoded at
#: full size took 10 times as long).
DRAFT_FORMATS = ("JPEG", "MPO")

#: Why Pillow cannot open a HEIF file (an iPhone's HEIC photo), and what reads it: automm registers
#: pillow-heif's opener itself where the package is installed (:func:`heif_opener_registered_now`), so
#: that the ``automm`` command, a search's processes and a loader's spawned workers read them too.
HEIF_UNREADABLE = "a HEIC/HEIF photo, which Pillow reads only with the pillow-heif plugin"
HEIF_HINT = "pip install pillow-heif (automm then reads them through it), or convert the photos to JPEG"

#: The image files that automm's check of a column found larger than Pillow's decompression-bomb
#: warning limit (``PIL.Image.MAX_IMAGE_PIXELS``) and named, with their rows
#: (:func:`automm.data.validate_images`): decoding them leaves out Pillow's own warning, which names no file.
NAMED_LARGE_FILES: set[str] = set()


@contextlib.contextmanager
def pixel_limit_warning_left_out(leave_out: bool = True):
    """Pillow's ``DecompressionBombWarning`` (it names no file) left out within, where ``leave_out``,
    in the main thread only (the warnings' filters are the process's). An "ignore" filter of its own,
    put first and removed by identity, without telling ``warnings`` that its filters changed: an
    "ignore" leaves nothing in the registries of warnings shown, which ``catch_warnings`` emptied
    (as any change ``warnings`` is told of does), so after each ``predict``'s image check every
    warning the program had shown once (automm's, scikit-learn's, the caller's) showed again."""
    if not leave_out or threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = ("ignore", None, Image.DecompressionBombWarning, None, 0)
    warnings.filters.insert(0, ours)
    try:
        yield
    finally:
        found = [i for i, entry in enumerate(warnings.filters) if entry is ours]
        if found:  # (else gone already: the caller reset the filters meanwhile)
            del warnings.filters[found[0]]


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation of ``image`` (1: upright, or none recorded)."""
    try:
        return int(image.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - unreadable EXIF: taken as upright, as exif_transpose does
        return 1


def load_image(value: Any, draft_size: int | None = None) -> Image.Image:
    """Load ``value`` as an RGB PIL image.

    Accepts a file path (``str`` or ``pathlib.Path``), the bytes of an encoded image file,
    a numpy array of shape (H, W) or (H, W, C) with C in 1, 3, 4 (uint8, or float in
    [0, 1]), or a PIL image of any mode. Greyscale becomes RGB; transparent pixels are
    composited onto white. ``draft_size`` lets JPEG (and MPO) files decode at a reduced scale that
    still covers ``draft_size`` x ``draft_size`` pixels (much faster for big photos).
    Raises :class:`~automm.exceptions.InputError` for anything else.
    """
    if isinstance(value, Image.Image):  # turned upright by its EXIF orientation, as a file's image is
        problem = pil_image_problem(value)
        if problem is not None:
            raise InputError(problem)
        filename = unread_image_file(value)
        if filename is not None:  # decoded from its file as a path is, leaving the caller's image unloaded
            decoded = _decode(filename, filename, draft_size, filename in NAMED_LARGE_FILES,
                              like=(value.format, value.mode, value.size))
            if decoded is not None:
                return decoded
        try:  # an image from Image.open is decoded only now: its file may be cut short or broken
            value.load()
            return _to_rgb(ImageOps.exif_transpose(value) if exif_orientation(value) != 1 else value,
                           from_file=value.format is not None)
        except (OSError, SyntaxError, ValueError) as exc:
            source = getattr(value, "filename", "") or f"a {value.mode} PIL image"
            raise InputError(f"cannot decode image {source}: {exc}") from None
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.is_file():
            raise InputError(f"image file not found: {str(path)!r}")
        return _decode(path, str(path), draft_size, os.fspath(value) in NAMED_LARGE_FILES)
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) == 0:
            raise InputError("cannot load an image from empty bytes")
        return _decode(io.BytesIO(bytes(value)), f"<{len(value)} bytes>", draft_size)
    if isinstance(value, np.ndarray):
        return _array_to_image(value)
    raise InputError(f"cannot load an image from a value of type {type(value).__name__}; expected a file path, "
                     "encoded image bytes, a numpy array (H, W) or (H, W, C), or a PIL image")


def pil_image_problem(image: Image.Image) -> str | None:
    """What makes a PIL image unreadable before it is decoded, or None: one from ``Image.open`` holds
    no pixels until it is loaded, and once its file is closed (``with Image.open(path) as image:``
    left before the image was used) it can never be (Pillow fails with a bare ``AssertionError``)."""
    fp = getattr(image, "fp", None)
    if getattr(image, "tile", None) and (fp is None or getattr(fp, "closed", False)):
        source = getattr(image, "filename", "") or f"a {image.format or image.mode} image"
        return (f"PIL image {source} was never decoded and its file is closed (an Image.open(...) left in a with "
                "block before use): call image.load() inside the block, or pass the file's path")
    return None


def unread_image_file(image: Image.Image) -> str | None:
    """The file an image from ``Image.open(path)`` is still to be decoded from (its first frame,
    its file open), else None. :func:`load_image` decodes that file as it decodes a path (a JPEG
    at a reduced scale) rather than loading the image itself: loading kept every photo's full
    pixels in the caller's list of images (16 lazily opened 24-megapixel photos: 1.6 GB, and 17 s
    to predict instead of 3 s)."""
    filename = getattr(image, "filename", None)
    fp = getattr(image, "fp", None)
    if (not getattr(image, "tile", None) or fp is None or getattr(fp, "closed", False)
            or not isinstance(filename, str) or not filename or image.tell() != 0):
        return None
    return filename if os.path.isfile(filename) else None


def _decode(source: Any, description: str, draft_size: int | None, named_large: bool = False,
            like: tuple | None = None) -> Image.Image | None:
    """``source`` decoded to RGB; ``like``: None unless its (format, mode, size) are these (a file
    that is no longer the image opened from it)."""
    try:
        with pixel_limit_warning_left_out(named_large), Image.open(source) as opened:
            if like is not None and (opened.format, opened.mode, opened.size) != like:
                return None
            if draft_size and opened.format in DRAFT_FORMATS:
                opened.draft("RGB", (int(draft_size), int(draft_size)))
            opened.load()
            rgb = _to_rgb(ImageOps.exif_transpose(opened), from_file=True)
            # closing the file releases ``opened``'s pixels, so never return it itself
            return rgb.copy() if rgb is opened else rgb
    except UnidentifiedImageError:
        if _starts_heif(source):
            if heif_opener_registered_now():
                return _decode(source, description, draft_size, named_large, like)
            raise InputError(f"not a readable image file: {description}: {HEIF_UNREADABLE}; {HEIF_HINT}") from None
        raise InputError(f"not a readable image file: {description}") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt files
        raise InputError(f"cannot decode image {description}: {exc}") from None


def _starts_heif(source: Any) -> bool:
    """Whether ``source`` (a path or a binary file) begins a HEIF image."""
    from automm.roles import is_heif_bytes

    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as file:
                return is_heif_bytes(file.read(12))
        source.seek(0)
        return is_heif_bytes(source.read(12))
    except (OSError, ValueError, AttributeError):
        return False


def heif_opener_registered_now() -> bool:
    """Whether pillow-heif's opener, not registered in this process, is now, so that opening a HEIF
    file again reads it: Pillow opens one only with it (``pillow_heif.register_heif_opener()``), a
    call that the ``automm`` command's user cannot make, nor a script in a loader's spawned workers.
    False where it was registered already (the file is then broken) or pillow-heif is not installed."""
    if "HEIF" in Image.OPEN:
        return False
    try:
        import pillow_heif
    except (ImportError, OSError):  # (OSError: installed without its library)
        return False
    pillow_heif.register_heif_opener()
    return "HEIF" in Image.OPEN


def _to_rgb(img: Image.Image, from_file: bool = False) -> Image.Image:
    """Convert any PIL mode to RGB, compositing transparency onto white: an alpha channel, a
    transparent colour (``info["transparency"]``) or a palette's alpha (a ``P`` image whose
    palette is RGBA, as ``convert("P")`` and ``quantize()`` of an RGBA image make). ``from_file``:
    decoded from an image file, whose 32-bit greyscale (mode ``I``) is 0..65535 whatever its values."""
    if img.mode in _HIGH_DEPTH_MODES:
        img = _high_depth_to_l(img, from_file)
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE)
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "RGB":
        return img
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot convert an image of mode {img.mode!r} to RGB: {exc}") from None


def _high_depth_to_l(img: Image.Image, from_file: bool = False) -> Image.Image:
    """16/32-bit integer greyscale (scaled from 16 bits) or float greyscale to 8 bits. A 16-bit
    mode (``I;16``) is 0..65535 always, made in memory too (a copy, crop or resize of an opened
    16-bit file); a 32-bit one (``I``) made in memory holding only 0..255 (``convert("I")`` of
    an 8-bit image, an int32 array's) is 8-bit, as an integer array's pixels are. A float
    image's range is its own: [0, 1] when no pixel is above 1, else 0..255 when none is above
    255 (an 8-bit image saved as floats: read as [0, 1] it came out white), else its minimum to
    its maximum."""
    pixels = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if img.mode == "I" and not from_file and pixels.size and 0.0 <= pixels.min() and pixels.max() <= 255.0:
        scaled = pixels
    elif img.mode != "F":
        scaled = pixels * (255.0 / 65535.0)
    elif pixels.size == 0 or pixels.max() <= 1.0:
        scaled = pixels * 255.0
    elif pixels.max() <= 255.0:
        scaled = pixels
    else:
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) * (255.0 / (high - low))
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def array_image_problem(array: np.ndarray, stacked: bool = False) -> str | None:
    """What makes ``array`` unusable as an image (one image, or with ``stacked`` a stack
    of images along the first axis), or None. Pixels are uint8 or other integers in
    0..255, booleans (0 / 255) or floats in [0, 1]; the channels come last (1, 3 or 4). A
    stack (N, H, 1) would be images 1 pixel wide: it is one greyscale image (H, W, 1) given
    where a column of images was expected (``predict(x[0])`` of a Keras-style (N, H, W, 1) set)."""
    shape = tuple(array.shape[1:] if stacked else array.shape)
    if not ((len(shape) == 2) or (len(shape) == 3 and shape[2] in (1, 3, 4))):
        what = "stacked image arrays must have shape (N, H, W) or (N, H, W, C)" if stacked else \
            "image arrays must have shape (H, W) or (H, W, C)"
        return f"{what} with C in 1, 3 or 4 (channels last); got shape {tuple(array.shape)}"
    if stacked and len(shape) == 2 and shape[1] == 1:
        return (f"an array of shape {tuple(array.shape)} is one greyscale image (H, W, 1), not a stack of "
                f"{array.shape[0]} images 1 pixel wide; pass [image] for one image, or a stack (N, H, W) or "
                "(N, H, W, 1)")
    if shape[0] == 0 or shape[1] == 0:
        return f"image array has no pixels: shape {tuple(array.shape)}"
    if array.dtype == np.uint8 or array.dtype == bool or array.size == 0:
        return None
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            return "float image array contains NaN or infinite values"
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            hint = ""
            if low >= 0.0 and 16.0 < high <= 255.0:  # 8-bit pixels as floats, of a photo with no pure white
                hint = f"divide by 255 if they are 0..255 pixels (by {high:g}, their maximum, they come out brighter), "
            elif low >= 0.0 and high > 1.0:  # another scale (sklearn's digits: 0..16)
                hint = f"divide by {high:g}, its maximum, "
            return (f"float image arrays must hold values in [0, 1]; got values in [{low:g}, {high:g}] "
                    f"({hint}or pass uint8 for 0..255 pixels)")
        return None
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            return (f"integer image arrays must hold values in 0..255; got values in {low}..{high} "
                    "(scale them, or pass floats in [0, 1])")
        return None
    return f"image arrays must hold numbers (uint8 0..255 or float 0..1); got dtype {array.dtype}"


def _array_to_image(array: np.ndarray) -> Image.Image:
    problem = array_image_problem(array)
    if problem is not None:
        raise InputError(problem)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if np.issubdtype(array.dtype, np.floating):
        pixels = np.rint(array * 255.0).astype(np.uint8)
    elif array.dtype == bool:
        pixels = array.astype(np.uint8) * 255
    else:
        pixels = array.astype(np.uint8, copy=False)
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[2] if pixels.ndim == 3 else 2]
    return _to_rgb(Image.fromarray(np.ascontiguousarray(pixels), mode=mode))


# -- encoders ---------------------------------------------------------------------------

def _check_dropout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
        raise InputError(f"hyperparameter dropout must be a number in [0, 1); got {value!r}")
    return float(value)


def _decoded_pixels(value: Any, size: int) -> torch.Tensor:
    """One image as uint8 pixels (3, size, size), squashed to the square (bilinear)."""
    img = load_image(value, draft_size=size)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def image_tensor(value: Any, size: int, augment: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> torch.Tensor:
    """One image (anything :func:`load_image` reads) as a float tensor
    (3, size, size) in [0, 1], squashed to the square with bilinear resampling; ``augment`` is
    applied to that tensor, its result clamped to [0, 1] and resized back if its size changed.
    Inside :func:`automm.components.image_cache.image_cache` the decoded pixels are reused.
    Encoders handle ``MISSING`` and apply their own normalisation."""
    # .float() copies: the (possibly cached, shared) uint8 pixels are never modified
    x = cached_pixels(value, size, _decoded_pixels).float().div_(255.0)
    if augment is not None:
        x = augment(x)
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[0] != 3:
            raise InputError(f"image augmentation must return a (3, H, W) tensor; got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if x.shape[1:] != (size, size):
            x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False)[0]
        x = x.float().clamp(0.0, 1.0)
    return x


class ImageEncoder(Encoder):
    """Base class of image encoders: turns any :func:`load_image` input into a normalised
    (3, image_size, image_size) tensor; subclasses build layers and implement ``forward``."""

    modality = "image"

    def __init__(self, image_size: int = 64):
        super().__init__()
        self.image_size = whole_at_least_one("image_size", image_size)

    def preprocess(self, value: Any, augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Image -> float tensor (3, S, S), normalised to [-1, 1]; ``MISSING`` -> zeros.

        ``augment`` receives the resized tensor with values in [0, 1]; its result is
        clamped to [0, 1] (and resized back to S x S if it changed size)."""
        if value is MISSING:
            return torch.zeros(3, self.image_size, self.image_size)
        return (image_tensor(value, self.image_size, augment) - 0.5) / 0.5

    def get_state(self) -> dict:
        return {}

    def set_state(self, state) -> None:
        """Nothing to restore: the layers do not depend on data."""

    def _channels_last(self, batch: torch.Tensor) -> torch.Tensor:
        # channels-last convolutions are markedly faster on CPU (oneDNN); the weights are
        # converted once in the subclass constructors.
        return batch.contiguous(memory_format=torch.channels_last)


def _stage_channels(width: int, depth: int) -> list[int]:
    """Channels per stage: doubling from ``width``, capped at ``8 * width``."""
    return [min(width * 2 ** i, 8 * width) for i in range(depth)]


class CNNEncoder(ImageEncoder):
    """A plain CNN: ``depth`` blocks of Conv3x3-BatchNorm-ReLU-MaxPool2 (the first conv with
    stride 2), global average pooling, dropout and a linear projection to ``output_dim``."""

    def __init__(self, image_size: int = 64, width: int = 32, depth: int = 3, output_dim: int = 128,
                 dropout: float = 0.1):
        super().__init__(image_size=image_size)
        width = whole_at_least_one("width", width)
        depth = whole_at_least_one("depth", depth)
        self.output_dim = whole_at_least_one("output_dim", output_dim)
        dropout = _check_dropout(dropout)
        if self.image_size < 2 ** (depth + 1):
            raise InputError(f"image_size={self.image_size} is too small for a cnn of depth={depth}: "
                             f"it needs at least {2 ** (depth + 1)} pixels")
        layers: list[nn.Module] = []
        in_channels = 3
        for index, channels in enumerate(_stage_channels(width, depth)):
            layers += [nn.Conv2d(in_channels, channels, 3, stride=2 if index == 0 else 1, padding=1, bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            in_channels = channels
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(in_channels, self.output_dim)
        self.to(memory_format=torch.channels_last)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        features = self.features(self._channels_last(batch))
        return self.projection(self.dropout(features.mean(dim=(2, 3))))


class _BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with a skip connection (1x1 conv when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        nn.init.zeros_(self.bn2.weight)  # each block starts as the identity: stabler early training
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.skip(x), inplace=True)


class ResNetEncoder(ImageEncoder):
    """A small residual network: a conv stem (stride-2 conv, BN, ReLU, 2x2 max pool), ``depth`` stages of
    ``blocks_per_stage`` basic blocks (stride 2 between stages, channels doubling from
    ``width``), global average pooling, dropout and a linear projection to ``output_dim``."""

    def __init__(self, image_size: int = 64, width: int = 32, depth: int = 3, blocks_per_stage: int = 1,
                 output_dim: int = 128, dropout: float = 0.1):
        super().__init__(image_size=image_size)
        width = whole_at_least_one("width", width)
        depth = whole_at_least_one("depth", depth)
        blocks_per_stage = whole_at_least_one("blocks_per_stage", blocks_per_stage)
        self.output_dim = whole_at_least_one("output_dim", output_dim)
        dropout = _check_dropout(dropout)
        if self.image_size < 4:
            raise InputError(f"image_size={self.image_size} is too small for a resnet: it needs at least 4 pixels")
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        blocks: list[nn.Module] = []
        in_channels = width
        for stage, channels in enumerate(_stage_channels(width, depth)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                blocks.append(_BasicBlock(in_channels, channels, stride))
                in_channels = channels
        self.stages = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(in_channels, self.output_dim)
        self.to(memory_format=torch.channels_last)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(self._channels_last(batch)))
        return self.projection(self.dropout(features.mean(dim=(2, 3))))


#: The bins of :func:`colour_histogram`: a joint RGB histogram of 8 x 8 x 8 bins and a joint HSV one
#: of 16 hues x 4 saturations x 4 values, each of the whole image and of its centre (the middle
#: half of each side, where a photo's subject usually is).
RGB_BINS, HSV_BINS = 512, 256
COLOUR_FEATURES = 2 * (RGB_BINS + HSV_BINS)


@functools.lru_cache(maxsize=1)
def _colour_bins() -> tuple[np.ndarray, np.ndarray]:
    """The RGB and the HSV bin of each colour of 5 bits a channel (a 15-bit code), the HSV one
    as PIL converts the colour at the middle of that cell: two table look-ups per pixel, 4x
    faster than converting each image to HSV (the same accuracy on fashion baseColour)."""
    levels = (np.arange(32) * 8 + 4).astype(np.uint8)
    cells = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(1, -1, 3)
    hsv = np.asarray(Image.fromarray(cells, mode="RGB").convert("HSV")).reshape(-1, 3).astype(np.intp)
    rgb = cells.reshape(-1, 3).astype(np.intp)
    rgb_bin = (rgb[:, 0] >> 5) << 6 | (rgb[:, 1] >> 5) << 3 | (rgb[:, 2] >> 5)
    hsv_bin = (hsv[:, 0] >> 4) << 4 | (hsv[:, 1] >> 6) << 2 | (hsv[:, 2] >> 6)
    return rgb_bin, hsv_bin


def colour_histogram(pixels: torch.Tensor) -> torch.Tensor:
    """The colour features of one image's uint8 pixels (3, H, W): for the whole image and for its
    centre, the joint RGB (8 x 8 x 8) and HSV (16 x 4 x 4) histograms, each the square root of
    the pixels' shares (unit L2 norm; the Hellinger embedding, where a linear model compares
    histograms well), :data:`COLOUR_FEATURES` float32 values. A pure function of the pixels."""
    rgb_bin, hsv_bin = _colour_bins()
    channels = pixels.numpy().astype(np.intp) >> 3
    code = channels[0] << 10 | channels[1] << 5 | channels[2]
    height, width = code.shape
    whole = code.ravel()
    centre = code[height // 4:height - height // 4, width // 4:width - width // 4].ravel()
    bins = np.concatenate([rgb_bin[whole], rgb_bin[centre] + RGB_BINS,
                           hsv_bin[whole] + 2 * RGB_BINS, hsv_bin[centre] + 2 * RGB_BINS + HSV_BINS])
    counts = np.bincount(bins, minlength=COLOUR_FEATURES).astype(np.float32)
    return torch.from_numpy(np.sqrt(counts / _pixels_counted(whole.size, centre.size)))


@functools.lru_cache(maxsize=8)
def _pixels_counted(whole: int, centre: int) -> np.ndarray:
    """The number of pixels each of :func:`colour_histogram`'s bins counts among (the same for
    every image of one size: made once)."""
    return np.repeat(np.array([whole, centre] * 2, dtype=np.float32), [RGB_BINS, RGB_BINS, HSV_BINS, HSV_BINS])


class ColourHistogramEncoder(ImageEncoder):
    """An image's colours (:func:`colour_histogram` of its pixels at side ``image_size``), then
    LayerNorm, dropout, an optional hidden layer (``hidden_dim`` > 0) and a linear projection to
    ``output_dim``. Blind to shape, quick to train: a colour task (a product's colour from its
    photo) needs nothing else, and the features of a row are computed once per fit where no
    image augmentation runs.

    With ``linear=True`` the output is the histograms times a weight ``output_dim`` wide
    (``hidden_dim`` and ``dropout`` unused; the weight starts at zero): what the search's linear
    model (:mod:`automm.linear`) is made of. Its design is sparse (some 170 of the 1,536 bins of a
    product photo are not empty) and, as a text's bag is, used as it is: the four histograms,
    each of unit norm, halved to one of unit norm. Standardised as dense features, rare bins made
    the fit ill-conditioned (fashion usage, image + title: 20 s an L2 strength instead of 2) for
    no better accuracy (fashion baseColour from the photo, logistic regression: 0.683 against
    0.680). The pixels are those the other image encoders decode at the same side (the image
    cache serves both); a missing image's features are zeros."""

    reusable_samples = True
    min_format_version = 7  # an automm reading format 6 or older has no colour_histogram encoder
    #: The linear form's factor on the histograms: four blocks of unit norm as one.
    LINEAR_SCALE = 0.5

    def __init__(self, image_size: int = 64, hidden_dim: int = 0, output_dim: int = 128, dropout: float = 0.1,
                 linear: bool = False):
        super().__init__(image_size=image_size)
        self.output_dim = whole_at_least_one("output_dim", output_dim)
        if isinstance(hidden_dim, bool) or not isinstance(hidden_dim, numbers.Integral) or hidden_dim < 0:
            raise InputError(f"hyperparameter hidden_dim must be a whole number >= 0; got {hidden_dim!r}")
        self.hidden_dim = int(hidden_dim)
        dropout = _check_dropout(dropout)
        self.linear = true_or_false("linear", linear)
        if self.linear:
            self.linear_layer = nn.Linear(COLOUR_FEATURES, self.output_dim, bias=False)
            nn.init.zeros_(self.linear_layer.weight)
            return
        self.norm = nn.LayerNorm(COLOUR_FEATURES)
        self.dropout = nn.Dropout(dropout)
        if self.hidden_dim > 0:
            self.hidden = nn.Sequential(nn.Linear(COLOUR_FEATURES, self.hidden_dim), nn.GELU(), nn.Dropout(dropout))
            self.project = nn.Linear(self.hidden_dim, self.output_dim)
        else:
            self.hidden = nn.Identity()
            self.project = nn.Linear(COLOUR_FEATURES, self.output_dim)

    def preprocess(self, value: Any, augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Image -> its :func:`colour_histogram` at side ``image_size`` (after ``augment``, which
        receives the resized tensor in [0, 1]); ``MISSING`` -> zeros."""
        if value is MISSING:
            return torch.zeros(COLOUR_FEATURES)
        if augment is None:
            pixels = cached_pixels(value, self.image_size, _decoded_pixels)
        else:
            pixels = image_tensor(value, self.image_size, augment).mul_(255.0).round_().to(torch.uint8)
        return colour_histogram(pixels)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if self.linear:
            return self.linear_layer(batch.float() * self.LINEAR_SCALE)
        return self.project(self.hidden(self.dropout(self.norm(batch.float()))))

    def linear_design(self, batch: torch.Tensor) -> torch.Tensor:
        """The histograms times :attr:`LINEAR_SCALE`, sparse (images, :data:`COLOUR_FEATURES`)
        (linear form)."""
        return (batch.float() * self.LINEAR_SCALE).to_sparse().coalesce()

    def set_linear_weight(self, weight: torch.Tensor) -> None:
        """Set the linear form's weight (:data:`COLOUR_FEATURES`, ``output_dim``)."""
        if not self.linear:
            raise RuntimeError("set_linear_weight needs colour_histogram's linear form (linear=True)")
        with torch.no_grad():
            self.linear_layer.weight.copy_(weight.detach().t().to(self.linear_layer.weight.dtype))


# -- search spaces ----------------------------------------------------------------------

def cnn_search_space(trial: Any, prefix: str) -> dict:
    """Suggest ``cnn`` hyperparameters on an Optuna trial (parameter names start with ``prefix``)."""
    return {
        "image_size": trial.suggest_categorical(f"{prefix}image_size", [48, 64, 96]),
        "width": trial.suggest_categorical(f"{prefix}width", [16, 32, 48]),
        "depth": trial.suggest_int(f"{prefix}depth", 2, 4),
        "output_dim": trial.suggest_categorical(f"{prefix}output_dim", [64, 128, 256]),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.3),
    }


def resnet_search_space(trial: Any, prefix: str) -> dict:
    """Suggest ``resnet`` hyperparameters on an Optuna trial (parameter names start with ``prefix``)."""
    return {
        "image_size": trial.suggest_categorical(f"{prefix}image_size", [48, 64, 96]),
        "width": trial.suggest_categorical(f"{prefix}width", [16, 32, 48]),
        "depth": trial.suggest_int(f"{prefix}depth", 2, 4),
        "blocks_per_stage": trial.suggest_int(f"{prefix}blocks_per_stage", 1, 2),
        "output_dim": trial.suggest_categorical(f"{prefix}output_dim", [64, 128, 256]),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.3),
    }


def colour_histogram_search_space(trial: Any, prefix: str) -> dict:
    """Suggest ``colour_histogram`` hyperparameters on an Optuna trial (parameter names start with ``prefix``)."""
    return {
        "image_size": trial.suggest_categorical(f"{prefix}image_size", [32, 64]),
        "hidden_dim": trial.suggest_categorical(f"{prefix}hidden_dim", [0, 128, 256]),
        "output_dim": trial.suggest_categorical(f"{prefix}output_dim", [64, 128, 256]),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.4),
    }


# -- plugin hook ------------------------------------------------------------------------

CNN_DEFAULTS = {"image_size": 64, "width": 32, "depth": 3, "output_dim": 128, "dropout": 0.1}
RESNET_DEFAULTS = {"image_size": 64, "width": 32, "depth": 3, "blocks_per_stage": 1, "output_dim": 128,
                   "dropout": 0.1}
COLOUR_HISTOGRAM_DEFAULTS = {"image_size": 64, "hidden_dim": 0, "output_dim": 128, "dropout": 0.1, "linear": False}


@hookimpl
def automm_register_encoders(register):
    register("cnn", CNNEncoder, modality="image", output_dim=lambda hp: hp["output_dim"],
             defaults=dict(CNN_DEFAULTS), search_space=cnn_search_space,
             description="small CNN trained from scratch (conv-BN-ReLU-maxpool blocks, global average pool)")
    register("resnet", ResNetEncoder, modality="image", output_dim=lambda hp: hp["output_dim"],
             defaults=dict(RESNET_DEFAULTS), search_space=resnet_search_space,
             description="small residual network trained from scratch (basic blocks, global average pool)")
    register("colour_histogram", ColourHistogramEncoder, modality="image", output_dim=lambda hp: hp["output_dim"],
             defaults=dict(COLOUR_HISTOGRAM_DEFAULTS), search_space=colour_histogram_search_space, tags=("linear",),
             description="joint RGB and HSV colour histograms of the image and its centre (colour, not shape), "
                         "then a linear projection; the linear model's view of an image")
