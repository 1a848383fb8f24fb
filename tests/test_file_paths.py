"""Image (and audio) paths as real file systems hold them: links, shares, folders this user may not
open, names the system refuses, paths written on another machine. What is wrong is said as it is
("file not found" only where nothing is there), and one such row among many never stops a command."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

import automm.data as data
from automm import InputError
from automm.exceptions import AutoMMWarning
from automm.cli import main
from automm.datasets import EMOJI_SAMPLE_DIR
from automm.recipes import load_recipe
from automm.tables import image_folders, resolve_image_paths


def _photos(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(folder / f"{i}.png")
    return [f"{i}.png" for i in range(n)]


def test_a_path_the_system_cannot_look_up_is_named_for_what_it_is_not_as_a_missing_file(tmp_path):
    """Each was "file not found", though `ls` shows a link there, or the name could never be a file."""
    _photos(tmp_path, 1)
    (tmp_path / "moved.png").symlink_to(tmp_path / "gone" / "0.png")  # its photo moved away
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    (tmp_path / "photos.zip").write_bytes(b"PK\x03\x04")
    reasons = {name: data._image_path_problem(str(tmp_path / name))
               for name in ["moved.png", "a.png", "x" * 300 + ".png", "photos.zip/0.png", "nothing.png"]}
    reasons["deep"] = data._image_path_problem(str(tmp_path) + "/folder" * 700 + "/0.png")
    assert reasons["moved.png"] == f"a symbolic link to a missing file ({str(tmp_path / 'gone' / '0.png')!r})"
    assert reasons["a.png"] == "a loop of symbolic links (each names another, none a file)"
    assert reasons["x" * 300 + ".png"] == "a name too long for the system (a name of 304 bytes; most allow 255)"
    assert reasons["deep"].startswith("a name too long for the system (a path of ")
    assert reasons["photos.zip/0.png"] == f"file not found ({str(tmp_path / 'photos.zip')!r} is a file, not a folder)"
    assert reasons["nothing.png"] == "file not found"


def test_a_photo_in_a_folder_this_user_may_not_open_is_not_called_missing(tmp_path, monkeypatch):
    """A share's folder without search permission for this user (EACCES on stat; root passes any,
    so the system's answer is stood in for): it was "file not found", and the file is there."""
    names = _photos(tmp_path / "locked", 3)
    locked = str(tmp_path / "locked")
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if os.fspath(path).startswith(locked + os.sep):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    with pytest.raises(InputError, match=r"row 0 \('.*0.png'\): permission denied \(this user may not open a folder "
                                         r"on its path\)"):
        data.validate_images("image", [f"{locked}/{n}" for n in names])


def test_a_dangling_link_to_a_folder_is_named_in_the_error(tmp_path):
    """~/photos -> /mnt/share/photos with the share not mounted (or the folder moved since fit)."""
    (tmp_path / "photos").symlink_to(tmp_path / "share" / "photos")
    with pytest.raises(InputError, match=rf"; '{tmp_path / 'photos'}' is a symbolic link to a folder that is not "
                                         r"there \('.*share/photos'\): mount or put back that folder"):
        data.validate_images("image", [str(tmp_path / "photos" / f"{i}.png") for i in range(3)])


@pytest.mark.parametrize("path, said", [
    ("$HOME/photos/0.png", r"'\$HOME/photos/0.png' starts with an environment variable \(\$HOME\), which automm "
                           r"does not expand in data \(a shell does\)"),
    ("${DATA}/0.png", r"starts with an environment variable \(\$\{DATA\}\)"),
    ("C:\\Users\\ann\\photos\\0.png", r"is a Windows path \(a drive or a network share\), which names no file on "
                                      r"this system: give the files' paths on this machine"),
    ("\\\\server\\photos\\0.png", r"is a Windows path"),
])
def test_paths_written_for_a_shell_or_for_windows_say_so_not_that_they_are_relative(path, said, tmp_path,
                                                                                    monkeypatch):
    """They were told "relative paths are read from the working directory: make them absolute"."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=said) as caught:
        data.validate_images("image", [path] * 3)
    assert "relative paths are read from the working directory" not in str(caught.value)


def test_one_relative_path_the_system_refuses_leaves_the_others_read(tmp_path):
    """In a data file (automm predict/fit/init): a name over 255 bytes or in a folder this user may not
    open stopped the whole command with a bare OSError (no row, no column), where one unreadable
    row of many counts as missing."""
    names = _photos(tmp_path / "data", 30)
    frame = pd.DataFrame({"image": names + ["y" * 300 + ".png"]})
    resolved = resolve_image_paths(frame, image_folders(tmp_path / "data" / "items.csv"), {"image": "image"},
                                   source="items.csv", inputs=["image"])
    assert resolved["image"].tolist() == [str(tmp_path / "data" / n) for n in names + ["y" * 300 + ".png"]]
    with pytest.warns(AutoMMWarning, match=r"1 of 31 images cannot be read and count as missing: row 30 \(.*\): a name "
                                         r"too long for the system"):
        assert data.validate_images("image", resolved["image"].tolist()) == [30]


@pytest.fixture
def linked_emoji(tmp_path, monkeypatch) -> Path:
    """The emoji sample in a data lake's folder, its CSV linked into the user's work folder
    (`ln -s /mnt/lake/emoji/emoji.csv .`), run from there."""
    lake = tmp_path / "lake" / "emoji"
    shutil.copytree(EMOJI_SAMPLE_DIR, lake)
    work = tmp_path / "work"
    work.mkdir()
    (work / "emoji.csv").symlink_to(lake / "emoji_sample.csv")
    monkeypatch.chdir(work)
    return work / "emoji.csv"


def test_a_linked_data_file_has_its_relative_paths_read_from_the_file_it_names(linked_emoji, tmp_path, capsys):
    """They were looked up beside the link and in the working directory only: every row "in none of
    the folders tried", though the photos sit beside the CSV."""
    assert main(["init", str(linked_emoji), "--label", "category", "--no-search"]) == 0, capsys.readouterr().err
    draft = yaml.safe_load(capsys.readouterr().out)
    assert "files_dir" not in draft["data"]  # the data file's own folder: nothing to name
    assert image_folders(linked_emoji)[:2] == [linked_emoji.parent, tmp_path / "lake" / "emoji"]  # the link's first
    recipe = {"version": 1, "data": {"path": str(linked_emoji), "label": "category", "columns": ["image", "name"],
                                     "split_column": "split"}}
    images = load_recipe(recipe, require_data=True).load_data().X_train["image"].tolist()
    assert images and all(Path(p).parent == tmp_path / "lake" / "emoji" / "images" for p in images)


def test_an_audio_path_the_system_cannot_look_up_is_named_for_what_it_is(tmp_path):
    pytest.importorskip("automm_audio")
    from automm_audio.signal import audio_problem

    (tmp_path / "clip.wav").symlink_to(tmp_path / "gone.wav")
    assert audio_problem(str(tmp_path / "clip.wav")) == f"a symbolic link to a missing file ({str(tmp_path / 'gone.wav')!r})"
    assert audio_problem(str(tmp_path / "nothing.wav")) == "file not found"
