"""The pre-fit check of image files on large or slow collections (session 34)."""

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import automm.data as data
from automm import InputError
from automm.progress import verbose_logging


def test_relative_pathlib_paths_that_are_missing_get_the_working_directory_hint(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.png")
    monkeypatch.chdir(tmp_path / "images")
    with pytest.raises(InputError, match=r"relative paths are read from the working directory"):
        data.validate_images("image", [Path("images/a.png")] * 4)


def test_a_long_image_check_reports_its_progress(tmp_path, monkeypatch, caplog):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    monkeypatch.setattr(data, "CHECK_PROGRESS_AFTER_S", 0.0)
    with caplog.at_level(logging.INFO, logger="automm.data"):
        assert data.validate_images("image", [str(path)] * 600) == []
    messages = [r.getMessage() for r in caplog.records if r.name == "automm.data"]
    assert any("checking the images of column 'image': 256 of 600 rows" in m for m in messages), messages
    assert messages[-1].startswith("checked the images of column 'image': 600 rows in")


def test_a_quick_image_check_says_nothing(tmp_path, caplog):
    path = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(path)
    with caplog.at_level(logging.INFO, logger="automm.data"):
        data.validate_images("image", [str(path)] * 600)
    assert not [r for r in caplog.records if r.name == "automm.data"]
