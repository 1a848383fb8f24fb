"""Small licence-clean data embedded in the package (for the quickstart and tests)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..hookspecs import hookimpl

__all__ = ["load_emoji_sample", "EMOJI_SAMPLE_DIR", "automm_register_datasets"]

EMOJI_SAMPLE_DIR = Path(__file__).resolve().parent / "emoji_sample"


def load_emoji_sample() -> pd.DataFrame:
    """A pandas DataFrame of 396 emoji: ``image`` (absolute PNG path), ``name`` (text),
    ``category`` (label, 9 classes) and ``split`` (train/test). Twemoji pictures are CC BY 4.0
    (© Twitter / jdecked contributors); metadata MIT. See ``ATTRIBUTION.md`` in the folder."""
    frame = pd.read_csv(EMOJI_SAMPLE_DIR / "emoji_sample.csv")
    frame["image"] = [str(EMOJI_SAMPLE_DIR / p) for p in frame["image"]]
    return frame


@hookimpl
def automm_register_datasets(register):
    register("emoji", load_emoji_sample, columns=("image", "name", "category", "split"),
             description="396 emoji: picture (PNG) and name, label category (9 classes); embedded, CC BY 4.0.")
