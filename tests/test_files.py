"""Files written whole or not at all (automm.files): predictions, recipes, the cache's files."""

from __future__ import annotations

import pytest

from automm.files import replace_whole


def test_a_failed_write_keeps_the_earlier_file_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "predictions.csv"
    target.write_text("earlier\n")

    def fails_half_way(path):
        path.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        replace_whole(target, fails_half_way)
    assert target.read_text() == "earlier\n" and sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]
    replace_whole(target, lambda path: path.write_text("new\n"))
    assert target.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]


def test_a_folder_is_no_stream_and_a_pipe_or_device_is(tmp_path):
    """``-o`` naming a folder is not written into as a stream is (it is refused as a file would be)."""
    import os

    from automm.files import is_stream

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert is_stream(fifo) and is_stream("/dev/null")
    assert not is_stream(tmp_path) and not is_stream(tmp_path / "new.csv")
    (tmp_path / "old.csv").write_text("a\n")
    assert not is_stream(tmp_path / "old.csv")
