"""Small licence-clean data embedded in the package (for the quickstart and tests)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["load_emoji_sample", "EMOJI_SAMPLE_DIR"]

EMOJI_SAMPLE_DIR = Path(__file__).resolve().parent / "emoji_sample"


def load_emoji_sample():
    """A pandas DataFrame of 396 emoji: ``image`` (absolute PNG path), ``name`` (text),
    ``category`` (label, 9 classes) and ``split`` (train/test). Twemoji pictures are CC BY 4.0
    (© Twitter / jdecked contributors); metadata MIT. See ``ATTRIBUTION.md`` in the folder."""
    import pandas as pd

    frame = pd.read_csv(EMOJI_SAMPLE_DIR / "emoji_sample.csv")
    frame["image"] = [str(EMOJI_SAMPLE_DIR / p) for p in frame["image"]]
    return frame
