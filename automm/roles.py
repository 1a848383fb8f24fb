"""Column-role inference: which columns are images, texts, numbers or categories.

Built-in rules run last (``trylast``) so that a plugin can claim columns of its own
modality (for example audio files) through ``automm_infer_column_role``.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .hookspecs import hookimpl

__all__ = ["IMAGE_EXTENSIONS", "ROLE_TO_MODALITY", "infer_role_builtin", "modality_of_role", "looks_like_image_path"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
#: Roles whose columns share one tabular input; every other role is its own modality.
ROLE_TO_MODALITY = {"numeric": "tabular", "categorical": "tabular"}


def modality_of_role(role: str) -> str:
    return ROLE_TO_MODALITY.get(role, role)


def looks_like_image_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike)) and str(value).lower().endswith(IMAGE_EXTENSIONS)


def _is_image_object(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray)):
        return True
    if isinstance(value, np.ndarray) and value.ndim >= 2:
        return True
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, Image.Image)


def infer_role_builtin(values: Sequence[Any]) -> str:
    """The built-in rules: image objects or image paths → ``image``; numbers →
    ``numeric``; strings with several words or mostly unique → ``text``; other strings
    → ``categorical``."""
    values = list(values)
    if not values:
        return "categorical"
    if sum(_is_image_object(v) for v in values) >= 0.8 * len(values):
        return "image"
    if sum(looks_like_image_path(v) for v in values) >= 0.8 * len(values):
        return "image"
    if all(isinstance(v, (bool, int, float, np.number, np.bool_)) for v in values):
        return "numeric"
    texts = [str(v) for v in values]
    mean_words = float(np.mean([len(t.split()) for t in texts]))
    unique_ratio = len(set(texts)) / len(texts)
    mean_chars = float(np.mean([len(t) for t in texts]))
    if mean_words >= 3 or (unique_ratio > 0.5 and len(texts) >= 20) or mean_chars > 40:
        return "text"
    return "categorical"


@hookimpl(trylast=True)
def automm_infer_column_role(name: str, values: Sequence[Any]) -> str | None:
    return infer_role_builtin(values)
