"""The feature cache (automm.feature_cache): keyed by content, atomic, safe between processes, never
wrong; what it holds shown and cleared (``automm cache``) without touching anything else."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import threading
import time
import unicodedata
import warnings

import pytest
import torch
from PIL import Image

from automm import MISSING, AutoMM, Encoder, hookimpl
from automm.cli import main
from automm.exceptions import InputError
from automm.feature_cache import MAGIC, FeatureCache, cache_usage, clear_cache, content_digest

DAY = 86400.0


def _png(path, colour):
    Image.new("RGB", (20, 20), colour).save(path)
    return str(path)


def test_content_digest_reads_file_bytes_not_the_path(tmp_path):
    a = _png(tmp_path / "a.png", (255, 0, 0))
    b = _png(tmp_path / "b.png", (255, 0, 0))
    c = _png(tmp_path / "c.png", (0, 0, 255))
    assert content_digest(a, paths=True) == content_digest(b, paths=True)
    assert content_digest(a, paths=True) != content_digest(c, paths=True)
    before = content_digest(a, paths=True)
    _png(tmp_path / "a.png", (0, 255, 0))  # the same path, new content
    os.utime(a, ns=(os.stat(a).st_atime_ns, os.stat(a).st_mtime_ns + 10_000_000))
    assert content_digest(a, paths=True) != before
    assert content_digest("a.png") != content_digest(a, paths=True)  # a text is keyed by its characters


def test_no_home_folder_names_what_to_set(tmp_path, monkeypatch, capsys):
    """No $HOME and a user id the user database lacks (a container run as --user 1000): the feature
    cache's default folder failed as "RuntimeError: Could not determine home directory." (automm
    predict of a pretrained model, automm cache: "unexpected"), naming nothing to set."""
    import pwd

    from automm.exceptions import AutoMMError
    from automm.feature_cache import default_cache_dir

    for name in ("HOME", "AUTOMM_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)

    def unknown(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")
    monkeypatch.setattr(pwd, "getpwuid", unknown)
    with pytest.raises(AutoMMError, match=r"no folder for the feature cache: \$AUTOMM_CACHE_DIR, \$XDG_CACHE_HOME and "
                                          r"\$HOME are not set, .* set \$AUTOMM_CACHE_DIR \(or HOME\), or give the folder"):
        FeatureCache(None, "ns", {})
    assert main(["cache"]) == 1
    err = capsys.readouterr().err
    assert "no folder for the feature cache" in err and "unexpected" not in err, err
    monkeypatch.setenv("AUTOMM_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path


def test_round_trip_and_rejection_of_damaged_or_foreign_files(tmp_path):
    cache = FeatureCache(tmp_path, "enc-test", {"size": 8}, memory=False)
    one, two = torch.arange(4.0), torch.arange(4.0) + 10
    key_one, key_two = cache.key("one"), cache.key("two")
    cache.put_by_key(key_one, one)
    cache.put_by_key(key_two, two)
    assert torch.equal(cache.get_by_key(key_one), one)
    # a file copied over another key's file is refused (the stored key digest differs)
    shutil.copyfile(cache.path_of(key_one), cache.path_of(key_two))
    assert cache.get_by_key(key_two) is None
    # a truncated file is refused
    data = cache.path_of(key_one).read_bytes()
    cache.path_of(key_one).write_bytes(data[:-3])
    assert cache.get_by_key(key_one) is None
    cache.path_of(key_one).write_bytes(b"junk")
    assert cache.get_by_key(key_one) is None
    cache.put_by_key(key_one, one)  # rewritten
    assert torch.equal(cache.get_by_key(key_one), one)
    assert cache.path_of(key_one).read_bytes().startswith(MAGIC)
    # a bit flipped inside the values (a bad disk) is refused too: it had been returned as features
    data = bytearray(cache.path_of(key_one).read_bytes())
    data[-1] ^= 0xFF
    cache.path_of(key_one).write_bytes(bytes(data))
    assert cache.get_by_key(key_one) is None
    cache.put_by_key(key_one, one)
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no temporary files left behind


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_cache_files_follow_the_umask_so_a_team_can_share_the_directory(tmp_path):
    cache = FeatureCache(tmp_path, "enc-test", {"size": 8}, memory=False)
    previous = os.umask(0o022)
    try:
        cache.put("one", torch.arange(4.0))
    finally:
        os.umask(previous)
    assert os.stat(cache.path_of(cache.key("one"))).st_mode & 0o777 == 0o644


def test_key_depends_on_preprocessing_and_namespace(tmp_path):
    base = FeatureCache(tmp_path, "enc-a", {"image_size": 224})
    assert base.key("x") != FeatureCache(tmp_path, "enc-a", {"image_size": 160}).key("x")
    assert base.key("x") != FeatureCache(tmp_path, "enc-b", {"image_size": 224}).key("x")
    assert base.key("x") == FeatureCache(tmp_path / "elsewhere", "enc-a", {"image_size": 224}).key("x")


def _writer(root, n, rounds):
    cache = FeatureCache(root, "enc-parallel", {}, memory=False)
    for _ in range(rounds):
        for i in range(n):
            cache.put(f"value {i}", torch.full((256,), float(i)))


def test_parallel_writers_and_readers_never_see_partial_or_wrong_features(tmp_path):
    n, rounds = 40, 5
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    writers = [context.Process(target=_writer, args=(str(tmp_path), n, rounds)) for _ in range(2)]
    for process in writers:
        process.start()
    reader = FeatureCache(tmp_path, "enc-parallel", {}, memory=False)
    seen = 0
    while any(p.is_alive() for p in writers):
        for i in range(n):
            found = reader.get(f"value {i}")
            if found is not None:
                seen += 1
                assert torch.equal(found, torch.full((256,), float(i)))
    for process in writers:
        process.join()
        assert process.exitcode == 0
    for i in range(n):
        assert torch.equal(reader.get(f"value {i}"), torch.full((256,), float(i)))
    assert not [p for p in tmp_path.rglob("*.tmp")]


# -- what the cache holds, and clearing it ---------------------------------------------

def _fill(root, namespace, n, age_days=0.0, first=0):
    """``n`` cached features in ``namespace`` (inputs ``first`` ...), last used ``age_days`` ago; their paths."""
    cache = FeatureCache(root, namespace, {}, memory=False)
    paths = []
    for i in range(first, first + n):
        key = cache.key(f"{namespace} {i}")
        cache.put_by_key(key, torch.full((16,), float(i)))
        path = cache.path_of(key)
        stamp = time.time() - age_days * DAY
        os.utime(path, (stamp, stamp))
        paths.append(path)
    return paths


def _orphan(beside, age_s):
    """A temporary file as a writer killed mid-write leaves it."""
    path = beside.parent / f".{beside.name}.0123456789ab.tmp"
    path.write_bytes(MAGIC)
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def test_usage_counts_each_encoders_files_and_ignores_what_is_not_the_caches(tmp_path):
    _fill(tmp_path, "minilm-aaaa", 3, age_days=5)
    _fill(tmp_path, "efficientnet_lite0-bbbb", 2)
    (tmp_path / "features" / "minilm-aaaa" / "notes.txt").write_text("mine")
    (tmp_path / "weights-sha256.json").write_text("{}")
    usage = {u.namespace: u for u in cache_usage(tmp_path)}
    assert sorted(usage) == ["efficientnet_lite0-bbbb", "minilm-aaaa"]
    assert usage["minilm-aaaa"].files == 3 and usage["efficientnet_lite0-bbbb"].files == 2
    assert usage["minilm-aaaa"].bytes == 3 * (48 + 16 * 4)  # header + 16 float32 values per file
    assert usage["minilm-aaaa"].last_use < time.time() - 4 * DAY < usage["efficientnet_lite0-bbbb"].first_use
    assert cache_usage(tmp_path / "absent") == []


def test_clear_by_encoder_and_age_keeps_the_rest_and_foreign_files(tmp_path):
    old = _fill(tmp_path, "minilm-aaaa", 3, age_days=40)
    recent = _fill(tmp_path, "minilm-aaaa", 2, first=3)  # other inputs, used today
    images = _fill(tmp_path, "efficientnet_lite0-bbbb", 2, age_days=40)
    foreign = tmp_path / "features" / "minilm-aaaa" / "notes.txt"
    foreign.write_text("mine")
    digests = tmp_path / "weights-sha256.json"
    digests.write_text("{}")

    preview = clear_cache(tmp_path, encoder="minilm", unused_days=30, dry_run=True)
    assert (preview.files, preview.orphans) == (3, 0) and all(p.exists() for p in old)
    removed = clear_cache(tmp_path, encoder="minilm", unused_days=30)
    assert removed.files == 3 and removed.bytes == preview.bytes
    assert not any(p.exists() for p in old) and all(p.exists() for p in recent + images)

    removed = clear_cache(tmp_path, encoder="efficientnet_lite0-*")
    assert removed.files == 2 and not any(p.exists() for p in images)
    assert not (tmp_path / "features" / "efficientnet_lite0-bbbb").exists()  # emptied folders go too
    removed = clear_cache(tmp_path)
    assert removed.files == 2 and cache_usage(tmp_path)[0].files == 0
    assert foreign.read_text() == "mine" and digests.read_text() == "{}"


def test_clear_removes_only_temporary_files_too_old_to_be_a_live_write(tmp_path):
    (path,) = _fill(tmp_path, "minilm-aaaa", 1)
    stale, live = _orphan(path, age_s=2 * 3600), _orphan(path.with_name("f" * 64 + ".f32"), age_s=5)
    assert cache_usage(tmp_path)[0].orphans == 1
    removed = clear_cache(tmp_path, unused_days=1)
    assert (removed.files, removed.orphans) == (0, 1)
    assert not stale.exists() and live.exists() and path.exists()


def test_a_read_marks_an_old_file_used_so_age_clearing_spares_it(tmp_path):
    (old,) = _fill(tmp_path, "minilm-aaaa", 1, age_days=40)
    (fresh,) = _fill(tmp_path, "minilm-aaaa-2", 1, age_days=0.5)
    fresh_stamp = os.stat(fresh).st_mtime
    assert FeatureCache(tmp_path, "minilm-aaaa", {}, memory=False).get("minilm-aaaa 0") is not None
    assert os.stat(old).st_mtime > time.time() - 60
    FeatureCache(tmp_path, "minilm-aaaa-2", {}, memory=False).get("minilm-aaaa-2 0")
    assert os.stat(fresh).st_mtime == fresh_stamp  # marked at most once a day: reads stay reads
    assert clear_cache(tmp_path, unused_days=30).files == 0 and old.exists()


def test_a_misspelt_encoder_or_a_bad_age_names_the_argument(tmp_path):
    _fill(tmp_path, "minilm-aaaa", 1)
    with pytest.raises(InputError, match=r"encoder: no features of 'minilmm'.*'minilm-aaaa'; did you mean 'minilm'"):
        clear_cache(tmp_path, encoder="minilmm")
    for days in (-1, "soon", float("nan"), True):
        with pytest.raises(InputError, match="unused_days: expected a number of days >= 0"):
            clear_cache(tmp_path, unused_days=days)
    assert cache_usage(tmp_path)[0].files == 1


def test_writers_survive_a_clear_running_beside_them(tmp_path):
    cache = FeatureCache(tmp_path, "enc-busy", {}, memory=False)
    stop = threading.Event()

    def clear_repeatedly():
        while not stop.is_set():
            clear_cache(tmp_path)

    clearer = threading.Thread(target=clear_repeatedly)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed write would warn "cannot write the feature cache"
        clearer.start()
        try:
            for i in range(300):
                features = torch.full((8,), float(i))
                cache.put(f"v{i}", features)
                found = cache.get(f"v{i}")
                assert found is None or torch.equal(found, features)
        finally:
            stop.set()
            clearer.join()
    assert cache.writes == 300


def _cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cache_command_shows_and_clears(tmp_path, capsys):
    _fill(tmp_path, "minilm-aaaa", 3, age_days=40)
    _fill(tmp_path, "efficientnet_lite0-bbbb", 2)
    code, out, _ = _cli(capsys, "cache", "--cache-dir", tmp_path)
    assert code == 0 and "minilm-aaaa" in out and "efficientnet_lite0-bbbb" in out and "5 files" in out
    code, out, _ = _cli(capsys, "cache", "--cache-dir", tmp_path, "--json")
    assert {n["namespace"]: n["files"] for n in json.loads(out)["namespaces"]} == {
        "efficientnet_lite0-bbbb": 2, "minilm-aaaa": 3}
    code, out, _ = _cli(capsys, "cache", "clear", "--cache-dir", tmp_path, "--unused-days", 30, "--dry-run")
    assert code == 0 and out.startswith("would delete 3 feature files")
    assert sum(u.files for u in cache_usage(tmp_path)) == 5
    code, out, _ = _cli(capsys, "cache", "clear", "--cache-dir", tmp_path, "--unused-days", 30)
    assert code == 0 and out.startswith("deleted 3 feature files")
    assert [(u.namespace, u.files) for u in cache_usage(tmp_path)] == [("efficientnet_lite0-bbbb", 2)]


def test_cache_command_refuses_bad_arguments_with_exit_2(tmp_path, capsys):
    _fill(tmp_path, "minilm-aaaa", 1)
    code, _, err = _cli(capsys, "cache", "clear", "--cache-dir", tmp_path, "--encoder", "minlm")
    assert code == 2 and "--encoder: no features of 'minlm'" in err and "did you mean 'minilm'" in err
    code, _, err = _cli(capsys, "cache", "--cache-dir", tmp_path, "--unused-days", 3)
    assert code == 2 and "go with 'automm cache clear'" in err
    (tmp_path / "file").write_text("x")
    code, _, err = _cli(capsys, "cache", "clear", "--cache-dir", tmp_path / "file")
    assert code == 2 and "is a file, not a cache directory" in err
    assert cache_usage(tmp_path)[0].files == 1



def test_a_cache_dir_inside_the_cache_or_not_there_is_said_not_shown_as_empty(tmp_path, capsys):
    """``--cache-dir ~/.cache/automm/features`` (or one encoder's folder in it) showed "0 B in 0 files"
    and cleared nothing with exit 0 beside megabytes of features (and ``predict --cache-dir`` would
    compute them all again into a cache nested inside); a folder that is not there looked empty."""
    _fill(tmp_path, "minilm-aaaa", 2)
    for inside in (tmp_path / "features", tmp_path / "features" / "minilm-aaaa"):
        for command in (("cache",), ("cache", "clear")):
            code, out, err = _cli(capsys, *command, "--cache-dir", inside)
            assert code == 2 and f"inside the feature cache {str(tmp_path)!r}" in err and not out
    assert cache_usage(tmp_path)[0].files == 2
    code, out, _ = _cli(capsys, "cache", "--cache-dir", tmp_path / "typo")
    assert code == 0 and "no such folder" in out
    code, out, _ = _cli(capsys, "cache", "clear", "--cache-dir", tmp_path / "typo")
    assert code == 0 and "no such folder" in out
    code, out, _ = _cli(capsys, "cache", "--cache-dir", tmp_path)
    assert code == 0 and "2 files" in out and "no such folder" not in out

def test_features_remembered_from_one_folder_are_stored_in_another_when_read_there(tmp_path):
    first = FeatureCache(tmp_path / "a", "enc-two", {})
    first.put("x", torch.arange(4.0))
    second = FeatureCache(tmp_path / "b", "enc-two", {})
    assert torch.equal(second.get("x"), torch.arange(4.0))  # from this process's memory: no recomputation
    assert cache_usage(tmp_path / "b")[0].files == 1  # and now in the second folder too, for other processes


def test_files_that_cannot_be_deleted_are_counted_out_and_named_in_a_warning(tmp_path, monkeypatch):
    (kept,) = _fill(tmp_path, "minilm-aaaa", 1)
    gone = _fill(tmp_path, "efficientnet_lite0-bbbb", 2)
    unlink = os.unlink

    def refuse_one(path, *args, **kwargs):  # as another user's file in a shared cache is refused
        if str(path) == str(kept):
            raise PermissionError(13, "Permission denied", str(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", refuse_one)
    with pytest.warns(RuntimeWarning, match=r"could not delete 1 of the cache's files \(the first, .*minilm-aaaa.*"
                                            r"Permission denied\); the other 2 were deleted"):
        removed = clear_cache(tmp_path)
    assert removed.files == 2 and removed.undeleted == 1 and kept.exists() and not any(p.exists() for p in gone)


def test_a_clear_that_deletes_nothing_says_so_and_fails(tmp_path, monkeypatch, capsys):
    """A read-only cache: 'automm cache clear' printed "deleted 0 feature files" beside a warning
    that "the others were deleted", and exited 0: a script could not tell it had failed."""
    _fill(tmp_path, "minilm-aaaa", 2)

    def read_only(path, *args, **kwargs):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(os, "unlink", read_only)
    code, out, err = _cli(capsys, "cache", "clear", "--cache-dir", tmp_path)
    assert code == 1 and "2 files could not be deleted" in out
    assert "Read-only file system" in err and "none was deleted" in err and "the others" not in err
    code, out, _ = _cli(capsys, "cache", "clear", "--cache-dir", tmp_path, "--json")
    assert code == 1 and json.loads(out)["undeleted"] == 2
    assert cache_usage(tmp_path)[0].files == 2


def test_memoised_file_digests_stay_bounded_in_a_long_lived_process(tmp_path, monkeypatch):
    import automm.feature_cache as feature_cache

    monkeypatch.setattr(feature_cache, "_MAX_FILE_DIGESTS", 10)
    monkeypatch.setattr(feature_cache, "_file_digests", {})
    paths = [_png(tmp_path / f"{i}.png", (i, 0, 0)) for i in range(25)]
    digests = [content_digest(path, paths=True) for path in paths]
    assert len(feature_cache._file_digests) <= 10 and len(set(digests)) == 25
    assert content_digest(paths[0], paths=True) == digests[0]  # forgotten, computed again alike


def test_usage_and_the_cache_command_say_what_the_files_take_on_disk(tmp_path, capsys):
    _fill(tmp_path, "minilm-aaaa", 3)
    files = list((tmp_path / "features").rglob("*.f32"))
    on_disk = sum(os.stat(f).st_blocks * 512 for f in files)  # whole blocks: more than the bytes written
    (usage,) = cache_usage(tmp_path)
    assert usage.disk_bytes == on_disk and usage.bytes == 3 * (48 + 16 * 4)
    code, out, _ = _cli(capsys, "cache", "--cache-dir", tmp_path)
    assert code == 0 and "on disk" in out.splitlines()[0] and "on disk" in out
    code, out, _ = _cli(capsys, "cache", "clear", "--cache-dir", tmp_path, "--dry-run")
    assert code == 0 and "on disk) under" in out


def test_a_bad_feature_memory_setting_is_named_and_does_not_break_the_import(monkeypatch):
    import subprocess
    import sys

    from automm.feature_cache import DEFAULT_FEATURE_MEMORY_MB, feature_memory_budget

    env = {**os.environ, "AUTOMM_FEATURE_MEMORY_MB": "2G"}
    done = subprocess.run([sys.executable, "-c", "import automm"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # it raised "could not convert string to float" at import
    for bad in ("2G", "-1", "inf"):
        monkeypatch.setenv("AUTOMM_FEATURE_MEMORY_MB", bad)
        with pytest.raises(ValueError, match=f"AUTOMM_FEATURE_MEMORY_MB must be a number of megabytes >= 0; "
                                             f"got '{bad}'"):
            feature_memory_budget()
    monkeypatch.setenv("AUTOMM_FEATURE_MEMORY_MB", "0.5")
    assert feature_memory_budget() == 2 ** 19
    monkeypatch.delenv("AUTOMM_FEATURE_MEMORY_MB")
    assert feature_memory_budget() == DEFAULT_FEATURE_MEMORY_MB * 2 ** 20


def test_clear_does_not_follow_links_into_another_folder(tmp_path):
    """A namespace or shard in a shared cache linked to another user's cache made clear delete there."""
    private = tmp_path / "private"
    theirs = _fill(private, "minilm-aaaa", 2)
    shared = tmp_path / "shared"
    (shared / "features").mkdir(parents=True)
    (shared / "features" / "minilm-aaaa").symlink_to(private / "features" / "minilm-aaaa")
    (shared / "features" / "minilm-bbbb").mkdir()
    shard = next(p.parent for p in theirs)
    (shared / "features" / "minilm-bbbb" / shard.name).symlink_to(shard)
    assert clear_cache(shared).files == 0
    assert all(p.exists() for p in theirs)


def test_clear_does_not_follow_a_features_folder_linked_to_another_cache(tmp_path):
    """The cache's ``features`` folder itself a link to another user's cache: clear deleted their files."""
    private = tmp_path / "private"
    theirs = _fill(private, "minilm-aaaa", 2)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "features").symlink_to(private / "features")
    said = "is a link .* not followed: its files are neither counted nor deleted here"  # (not a silent 0 files)
    with pytest.warns(UserWarning, match=said):
        assert clear_cache(shared).files == 0
    with pytest.warns(UserWarning, match=said):
        assert cache_usage(shared) == []
    assert all(p.exists() for p in theirs)


def test_a_pipe_or_device_in_place_of_a_feature_file_is_computed_again_not_read(tmp_path):
    cache = FeatureCache(tmp_path, "enc", {"v": 1})
    for value, make in (("piped", os.mkfifo), ("zeros", lambda path: os.symlink("/dev/zero", path))):
        path = cache.path_of(cache.key(value))
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path)
        assert cache.get(value) is None  # at once: neither blocked on the pipe nor reading zeros for ever


def test_a_cache_pickles_with_the_encoder_holding_it(tmp_path):
    """DataLoader workers receive encoders pickled: one holding its cache failed to pickle."""
    import pickle

    cache = FeatureCache(tmp_path, "enc", {"size": 8})
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.key("a text") == cache.key("a text")


def test_clear_keeps_a_file_read_since_its_last_mark(tmp_path):
    # a read marks its file at most once a day: one marked 20 hours ago and read now is in use
    cache = FeatureCache(tmp_path, "enc-x", {"a": 1}, memory=False)
    key = cache.key("hello")
    cache.put_by_key(key, torch.ones(4))
    marked = time.time() - 20 * 3600
    os.utime(cache.path_of(key), (marked, marked))
    assert cache.get("hello") is not None
    assert clear_cache(tmp_path, unused_days=0.5).files == 0 and cache.path_of(key).exists()


def test_two_cache_folders_read_in_turn_rewrite_nothing(tmp_path):
    # two models of one process (cache_dir A and B) predicting the same rows: each read from the
    # memory layer rewrote the feature file of the other folder
    a, b = (FeatureCache(tmp_path / name, "enc-x", {"p": 1}) for name in "ab")
    a.put("hello", torch.ones(4))
    assert b.get("hello") is not None and b.writes == 1  # kept in B's folder too, once
    a.writes = b.writes = 0
    for _ in range(3):
        assert a.get("hello") is not None and b.get("hello") is not None
    assert a.writes == b.writes == 0


def test_the_memory_layer_counts_each_entrys_overhead():
    """AUTOMM_FEATURE_MEMORY_MB counted the values only: RSS was 1.57 times the limit for MiniLM's."""
    from pathlib import Path

    import torch

    from automm import feature_cache as fc

    per_entry = 384 * 4 + fc.MEMORY_ENTRY_OVERHEAD  # a MiniLM vector takes 1,536 bytes, its entry ~2,400
    layer = fc._MemoryLayer(max_bytes=10 * per_entry)
    for i in range(20):
        layer.put(bytes([i]) * 32, torch.zeros(384), Path("/cache"))
    assert len(layer.items) == 10 and layer.nbytes == 10 * per_entry


def test_a_batch_claimed_by_one_process_is_left_to_it_until_done(tmp_path):
    """Jobs started at once on one cache: the claim of a batch's features (a lock that goes with its
    process) tells the others to wait instead of computing them too; its file goes when it is done,
    and one left by a killed process is an orphan that clear removes."""
    cache = FeatureCache(tmp_path, "minilm-aaaa", {})
    keys = [cache.key(f"text {i}") for i in range(3)]
    with cache.claim(keys) as mine:
        assert mine and cache.claim_path(keys).exists()
        with cache.claim(list(reversed(keys))) as theirs:  # another process (another open file): refused
            assert theirs is False
        start = time.monotonic()
        with cache.claim(keys, wait=0.3) as theirs:  # waited for, then computed all the same
            assert theirs is True and time.monotonic() - start >= 0.3
        with cache.claim(keys[:2]) as other_batch:
            assert other_batch
    assert not cache.claim_path(keys).exists()
    with cache.claim(keys) as again:
        assert again
    left = cache.claim_path(keys)
    left.touch()  # left by a process killed while computing
    os.utime(left, (time.time() - 2 * 3600,) * 2)
    assert cache_usage(tmp_path)[0].orphans == 1 and clear_cache(tmp_path).orphans == 1 and not left.exists()


def test_a_path_keys_the_feature_cache_by_the_files_bytes(tmp_path):
    """A cache of image paths (``paths=True``, as the pretrained encoders make it) keyed by the
    path's characters gave a photo replaced under the same name the old photo's features."""
    from automm.feature_cache import FeatureCache

    cache = FeatureCache(tmp_path / "cache", "enc-test", {"size": 8}, memory=False, paths=True)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"first photo")
    b.write_bytes(b"first photo")
    assert cache.key(str(a)) == cache.key(str(b))  # the same bytes: one entry
    cache.put(str(a), torch.arange(4.0))
    a.write_bytes(b"other photo")
    os.utime(a, ns=(os.stat(a).st_atime_ns, os.stat(a).st_mtime_ns + 10_000_000))
    assert cache.key(str(a)) != cache.key(str(b))
    assert cache.get(str(a)) is None
    assert torch.equal(cache.get(str(b)), torch.arange(4.0))


def test_a_file_rewritten_in_place_with_as_many_bytes_gets_a_new_digest(tmp_path):
    """The memoised file digests are keyed by the file's stamp: keyed by its path and size only,
    an image rewritten with as many bytes (a re-exported photo) kept the old digest, and so the
    old image's cached features."""
    from automm.feature_cache import content_digest

    path = tmp_path / "photo.jpg"
    path.write_bytes(b"A" * 64)
    before = content_digest(str(path), paths=True)
    path.write_bytes(b"B" * 64)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10_000_000))
    assert content_digest(str(path), paths=True) != before


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("umask", [0o002, 0o077])
def test_a_claim_file_follows_the_umask_as_the_features_do(tmp_path, umask):
    """A cache shared by a group (umask 002): the claim of a batch was made 0o644, so the group's
    other members could not open it to wait for the batch and computed it too; under umask 077 it
    stays private."""
    cache = FeatureCache(tmp_path, "minilm-aaaa", {}, memory=False)
    keys = [cache.key("text")]
    previous = os.umask(umask)
    try:
        cache.put_by_key(keys[0], torch.arange(4.0))
        with cache.claim(keys) as mine:
            claim_mode = os.stat(cache.claim_path(keys)).st_mode & 0o777
    finally:
        os.umask(previous)
    assert mine
    assert claim_mode == os.stat(cache.path_of(keys[0])).st_mode & 0o777 == 0o666 & ~umask


# -- forgetting one input's features -----------------------------------------------------

def test_forget_deletes_one_inputs_features_under_every_setting_and_keeps_the_rest(tmp_path):
    """A person asks for their photo and their review to be deleted: their features go from every encoder
    configuration that cached them (a photo given by path, as encoded bytes or opened with PIL), found by
    content; the other inputs' features and this process's memory of them stay. (There was no way short of
    clearing a whole encoder's features.)"""
    from automm.feature_cache import forget_features

    photo, other = _png(tmp_path / "jane.png", (255, 0, 0)), _png(tmp_path / "other.png", (0, 0, 255))
    review = "Jane Doe (jane@example.org): ﬁne shirt"  # (a ligature: MiniLM keys its NFKC form, "fine")
    cache_dir = tmp_path / "cache"
    images = [FeatureCache(cache_dir, "efficientnet_lite0-aaaa", {"image_size": size}, paths=True)
              for size in (224, 160)]
    for cache in images:
        cache.put(photo, torch.ones(4))
        cache.put(open(photo, "rb").read(), torch.ones(4))
        with Image.open(photo) as opened:
            cache.put(opened, torch.ones(4))
        cache.put(other, torch.zeros(4))
    texts = FeatureCache(cache_dir, "minilm-bbbb", {"max_length": 128})
    texts.put(unicodedata.normalize("NFKC", review), torch.ones(3))
    texts.put("another review", torch.zeros(3))

    preview = forget_features([photo], texts=[review], cache_dir=cache_dir, dry_run=True)
    assert preview.files == 7 and sum(u.files for u in cache_usage(cache_dir)) == 10
    forgotten = forget_features([photo], texts=[review], cache_dir=cache_dir)
    assert (forgotten.files, forgotten.undeleted, forgotten.unsearched) == (7, 0, ())
    assert forgotten.found == (("efficientnet_lite0-aaaa",), ("minilm-bbbb",))
    assert {u.namespace: u.files for u in cache_usage(cache_dir)} == {"efficientnet_lite0-aaaa": 2, "minilm-bbbb": 1}
    assert all(cache.get(photo) is None and torch.equal(cache.get(other), torch.zeros(4)) for cache in images)
    assert texts.get(unicodedata.normalize("NFKC", review)) is None  # (the memory layer forgot them too)
    assert forget_features([photo], cache_dir=cache_dir).found == ((),)

    forget_features([other], texts=["another review"], cache_dir=cache_dir)  # the last ones: no empty folders left
    assert cache_usage(cache_dir) == [] and not any((cache_dir / "features").iterdir())


def test_forget_refuses_what_it_cannot_find_by_content_and_says_what_it_could_not_search(tmp_path):
    from automm.feature_cache import forget_features

    photo = _png(tmp_path / "jane.png", (255, 0, 0))
    with pytest.raises(InputError, match=r"paths: '.*gone.png': no such file\. Features are kept under a digest of a "
                                         r"file's bytes, not its name: forget them before the file is deleted"):
        forget_features([str(tmp_path / "gone.png")], cache_dir=tmp_path)
    with pytest.raises(InputError, match=r"paths: '.*' is a directory, not a file"):
        forget_features([tmp_path], cache_dir=tmp_path)
    with pytest.raises(InputError, match=r"paths: expected a list, got str .*; give one as \["):
        forget_features(photo, cache_dir=tmp_path)
    with pytest.raises(InputError, match="values: .* is a str; give files as paths= .* and texts as texts="):
        forget_features(values=[photo], cache_dir=tmp_path)
    # features written before settings were recorded (an older automm), not used since
    (path,) = _fill(tmp_path, "minilm-old", 1)
    shutil.rmtree(tmp_path / "features" / "minilm-old" / "settings")
    with pytest.warns(UserWarning, match=r"'minilm-old' were written by an automm that did not record their settings.*"
                                         r"automm cache clear --encoder minilm-old"):
        forgotten = forget_features(texts=["minilm-old 0"], cache_dir=tmp_path)
    assert forgotten.unsearched == ("minilm-old",) and path.exists()
    FeatureCache(tmp_path, "minilm-old", {}, memory=False).get("minilm-old 0")  # a use records them
    assert forget_features(texts=["minilm-old 0"], cache_dir=tmp_path).files == 1 and not path.exists()


def test_a_cache_that_cannot_record_its_settings_tries_once_not_on_each_feature_read(tmp_path, monkeypatch):
    """Features of an older automm in a cache this user may only read (a team's, a read-only
    mount): each feature read from disk tried (a stat, a temporary file, a folder) to write the
    settings record again, and failed again: 5 reads, 5 tries; now one per cache object."""
    from automm import feature_cache as feature_cache_module

    writer = FeatureCache(tmp_path, "minilm-old", {}, memory=False)
    for k in range(5):
        writer.put(f"text {k}", torch.ones(4))
    shutil.rmtree(tmp_path / "features" / "minilm-old" / "settings")  # (written before settings were recorded)
    tries = []

    def refused(path, write):
        tries.append(path)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(feature_cache_module, "replace_whole", refused)
    reader = FeatureCache(tmp_path, "minilm-old", {}, memory=False)
    assert all(reader.get(f"text {k}") is not None for k in range(5))
    assert len(tries) == 1, len(tries)


def test_cache_forget_command(tmp_path, capsys):
    photo = _png(tmp_path / "jane.png", (255, 0, 0))
    cache_dir = tmp_path / "cache"
    FeatureCache(cache_dir, "efficientnet_lite0-aaaa", {}, paths=True).put(photo, torch.ones(4))
    FeatureCache(cache_dir, "minilm-bbbb", {}).put("Jane Doe", torch.ones(4))
    _fill(cache_dir, "minilm-bbbb", 2)
    code, out, _ = _cli(capsys, "cache", "forget", photo, "--text", "Jane Doe", "--text", "nobody", "--cache-dir",
                        cache_dir, "--dry-run")
    assert code == 0 and out.splitlines()[:3] == [
        f"{photo}: would delete its features of efficientnet_lite0-aaaa",
        "text 'Jane Doe': would delete its features of minilm-bbbb", "text 'nobody': no features in the cache"]
    assert re.fullmatch(rf"would delete 2 feature files \(128 B, .* on disk\) under {re.escape(str(cache_dir))}",
                        out.splitlines()[3])
    assert sum(u.files for u in cache_usage(cache_dir)) == 4
    code, out, _ = _cli(capsys, "cache", "forget", photo, "--text", "Jane Doe", "--cache-dir", cache_dir, "--json")
    assert code == 0 and json.loads(out)["files"] == 2 and json.loads(out)["found"] == [["efficientnet_lite0-aaaa"],
                                                                                        ["minilm-bbbb"]]
    assert [(u.namespace, u.files) for u in cache_usage(cache_dir)] == [("minilm-bbbb", 2)]
    for args, said in (((), "give the files (PATH ...) or texts (--text TEXT)"),
                       ((tmp_path / "gone.png",), "PATH: '"),
                       ((photo, "--encoder", "minlm"), "--encoder: no features of 'minlm'"),
                       ((photo, "--unused-days", 3), "--unused-days goes with 'automm cache clear'")):
        code, out, err = _cli(capsys, "cache", "forget", *args, "--cache-dir", cache_dir)
        assert code == 2 and said in err and not out
    code, _, err = _cli(capsys, "cache", "clear", photo, "--cache-dir", cache_dir)
    assert code == 2 and "PATH arguments go with 'automm cache forget'" in err
    assert sum(u.files for u in cache_usage(cache_dir)) == 2


def test_cache_forget_takes_its_paths_after_its_options(tmp_path, capsys):
    """argparse takes a command's positionals once, before its first option: 'automm cache forget
    --cache-dir DIR photo.jpg' and '... --text T photo.jpg' ended in "unrecognized arguments"."""
    photo, other = _png(tmp_path / "jane.png", (255, 0, 0)), _png(tmp_path / "john.png", (0, 0, 255))
    cache_dir = tmp_path / "cache"
    images = FeatureCache(cache_dir, "efficientnet_lite0-aaaa", {}, paths=True)
    images.put(photo, torch.ones(4))
    images.put(other, torch.ones(4))
    FeatureCache(cache_dir, "minilm-bbbb", {}).put("Jane Doe", torch.ones(4))
    code, out, err = _cli(capsys, "cache", "forget", "--cache-dir", cache_dir, photo, "--text", "Jane Doe", other)
    assert code == 0, err
    assert out.splitlines()[:3] == [f"{photo}: deleted its features of efficientnet_lite0-aaaa",
                                    f"{other}: deleted its features of efficientnet_lite0-aaaa",
                                    "text 'Jane Doe': deleted its features of minilm-bbbb"]
    assert cache_usage(cache_dir) == []
    code, _, err = _cli(capsys, "cache", "forget", "--cache-dir", cache_dir, photo, "--no-such-option")
    assert code == 2 and re.search(r"unrecognized arguments: .*--no-such-option", err)  # (an unknown option still)


class _CacheDirSpy(Encoder):
    """Records the type of each ``cache_dir`` the core gives ``prepare``."""

    modality = "text"
    static_preprocess = True
    seen: list[type] = []

    def __init__(self):
        super().__init__()
        self.output_dim = 2
        self.linear = torch.nn.Linear(1, 2)

    def prepare(self, values, *, cache_dir: str | None = None) -> None:
        type(self).seen.append(type(cache_dir))

    def preprocess(self, value, augment=None):
        return torch.tensor([0.0 if value is MISSING else float(len(str(value)))])

    def forward(self, batch):
        return self.linear(batch)


class _CacheDirSpyPlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("cache_dir_spy", _CacheDirSpy, modality="text", output_dim=2)


def test_encoders_get_cache_dir_as_a_str_when_it_was_given_as_a_path(tmp_path, fresh_registry):
    """``Encoder.prepare(values, cache_dir: str | None)``, the contract, got the ``Path`` a user gave
    ``AutoMM(cache_dir=...)`` in fit and predict (but a str after ``load``): a plugin that joined
    it to a name as a str failed with a TypeError."""
    fresh_registry(_CacheDirSpyPlugin())
    _CacheDirSpy.seen = []
    texts = ["a b c", "d e f g", "h i", "j k l m n"] * 4
    model = AutoMM(encoders={"text": "cache_dir_spy"}, max_epochs=1, num_workers=0, random_state=0,
                   cache_dir=tmp_path / "cache").fit(texts, ["x", "y"] * 8)
    model.predict(texts[:2])
    assert _CacheDirSpy.seen and set(_CacheDirSpy.seen) == {str}
