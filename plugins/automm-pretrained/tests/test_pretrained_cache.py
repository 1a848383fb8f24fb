"""The pretrained encoders on the feature cache (automm.feature_cache): each input computed once, features
equal to a fresh computation, progress kept at a deadline, an unwritable cache tolerated."""

from __future__ import annotations

import pytest  # noqa: E402

pytest.importorskip("automm_pretrained", reason="the automm-pretrained plugin is not installed (pip install ./plugins/automm-pretrained[test])")

import hashlib
import os
import warnings

import numpy as np
import torch
from PIL import Image

import automm
from automm_pretrained import clear_memory_cache


@pytest.fixture(autouse=True)
def empty_memory_layer():
    """Each test starts and ends with no features in memory: features are keyed by content, so another
    test's colours or texts were found there instead of computed, and the counts asserted here
    depended on the order the tests ran in."""
    clear_memory_cache()
    yield
    clear_memory_cache()


def _png(path, colour):
    Image.new("RGB", (20, 20), colour).save(path)
    return str(path)


def test_feature_extraction_stops_at_the_deadline_and_keeps_its_progress(tmp_path):
    """Inside a trial's deadline scope a frozen encoder stops between batches when time is up
    (the search then fails the trial at its deadline, not at the alarm seconds later), and the
    features it computed are cached for the next fit."""
    import time

    from automm.deadlines import deadline_scope

    texts = [f"product number {i} in the catalogue" for i in range(10)]
    cache_dir = str(tmp_path / "cache")
    encoder = automm.create_encoder("minilm", feature_batch_size=4)
    with deadline_scope(time.monotonic() - 1):
        with pytest.raises(automm.TimeLimitExceeded, match="minilm computed the features of 4 of 10 texts"):
            encoder.prepare(texts, cache_dir=cache_dir)
    assert encoder.last_prepare["computed"] == 4
    clear_memory_cache()
    again = automm.create_encoder("minilm", feature_batch_size=4)
    again.prepare(texts, cache_dir=cache_dir)  # no deadline: the rest
    assert again.last_prepare == {**again.last_prepare, "cached": 4, "computed": 6}
    fresh = automm.create_encoder("minilm").compute_features(texts)
    assert torch.allclose(torch.stack([again.preprocess(t) for t in texts]), fresh, atol=1e-5)


def test_frozen_encoder_computes_each_input_once_and_follows_content(tmp_path):
    red = _png(tmp_path / "red.png", (255, 0, 0))
    blue = _png(tmp_path / "blue.png", (0, 0, 255))
    cache_dir = tmp_path / "cache"
    encoder = automm.create_encoder("efficientnet_lite0", image_size=32)
    encoder.prepare([red, blue, red, automm.MISSING], cache_dir=str(cache_dir))
    assert encoder.last_prepare["computed"] == 2
    features = {p: encoder.preprocess(p) for p in (red, blue)}
    assert not torch.equal(features[red], features[blue])
    clear_memory_cache()
    again = automm.create_encoder("efficientnet_lite0", image_size=32)
    again.prepare([red, blue], cache_dir=str(cache_dir))
    assert again.last_prepare == {**again.last_prepare, "cached": 2, "computed": 0}
    assert torch.equal(again.preprocess(red), features[red])
    # rewrite red.png with blue pixels: same path, new content -> the blue features, not the red ones
    _png(tmp_path / "red.png", (0, 0, 255))
    os.utime(red, ns=(os.stat(red).st_atime_ns, os.stat(red).st_mtime_ns + 10_000_000))
    third = automm.create_encoder("efficientnet_lite0", image_size=32)
    third.prepare([red], cache_dir=str(cache_dir))
    assert third.last_prepare["computed"] == 0  # blue's features are already cached
    assert torch.equal(third.preprocess(red), features[blue])
    # another preprocessing (image size) is another cache entry
    bigger = automm.create_encoder("efficientnet_lite0", image_size=48)
    bigger.prepare([blue], cache_dir=str(cache_dir))
    assert bigger.last_prepare["computed"] == 1


def test_a_prediction_keys_each_value_once_and_a_rewritten_file_anew(tmp_path, monkeypatch):
    """``prepare`` keys each distinct path (or text) once and ``preprocess`` looks the features up
    by that key (a row's file was stat-ed and its key hashed twice per fold model, 20 times a row
    for a bag of 5: 37% of a prediction from cached features); the next ``prepare`` keys a file
    anew, so a file rewritten between two requests gets its new features."""
    from automm.feature_cache import FeatureCache

    red = _png(tmp_path / "red.png", (255, 0, 0))
    blue = _png(tmp_path / "blue.png", (0, 0, 255))
    cache_dir = str(tmp_path / "cache")
    # red's features cached by an earlier request (it passed alone only after a test that had put the
    # same red in memory: computed here, a value is keyed again when stored, in case it was rewritten)
    automm.create_encoder("efficientnet_lite0", image_size=32).prepare([red], cache_dir=cache_dir)
    encoder = automm.create_encoder("efficientnet_lite0", image_size=32)
    encoder.prepare([blue], cache_dir=cache_dir)
    blue_features = encoder.preprocess(blue).clone()
    keyed = []
    original = FeatureCache.key
    monkeypatch.setattr(FeatureCache, "key", lambda self, value: keyed.append(value) or original(self, value))
    encoder.prepare([red, red, automm.MISSING, red], cache_dir=cache_dir)
    red_features = [encoder.preprocess(red) for _ in range(3)]
    assert keyed == [red]
    assert not torch.equal(red_features[0], blue_features)
    # red.png rewritten with blue pixels between two requests: keyed anew, the blue features
    _png(tmp_path / "red.png", (0, 0, 255))
    os.utime(red, ns=(os.stat(red).st_atime_ns, os.stat(red).st_mtime_ns + 10_000_000))
    encoder.prepare([red], cache_dir=cache_dir)
    assert keyed == [red, red]
    assert torch.equal(encoder.preprocess(red), blue_features)
    assert torch.equal(encoder.preprocess(blue), blue_features)  # a value the last prepare was not given


def test_cached_features_equal_fresh_computation(tmp_path):
    texts = ["short", "a somewhat longer product title with words", "short"]
    encoder = automm.create_encoder("minilm")
    encoder.prepare(texts, cache_dir=str(tmp_path))
    cached = torch.stack([encoder.preprocess(t) for t in texts])
    fresh = encoder.compute_features(texts)  # batched by length internally, in another order
    assert torch.allclose(cached, fresh, atol=1e-5)
    alone = torch.cat([encoder.compute_features([t]) for t in texts])
    assert torch.allclose(cached, alone, atol=1e-5)


def test_pending_share_says_how_much_of_the_features_prepare_would_compute(tmp_path):
    from automm.data import MISSING

    texts = [f"product title number {i}" for i in range(100)] + [MISSING]
    encoder = automm.create_encoder("minilm")
    assert encoder.pending_share(texts, cache_dir=str(tmp_path)) == 1.0  # a cold cache: every feature
    encoder.prepare(texts[:50], cache_dir=str(tmp_path))
    clear_memory_cache()
    fresh = automm.create_encoder("minilm")  # nothing in memory: the disk cache answers
    assert 0.3 < fresh.pending_share(texts, cache_dir=str(tmp_path)) < 0.7
    fresh.prepare(texts, cache_dir=str(tmp_path))
    assert fresh.pending_share(texts, cache_dir=str(tmp_path)) == 0.0
    assert fresh.pending_share([MISSING], cache_dir=str(tmp_path)) == 0.0
    assert automm.create_encoder("minilm", trainable_layers=1).pending_share(["new words"]) == 0.0  # no one-off work


def test_weights_digests_are_remembered_between_processes(tmp_path, monkeypatch):
    import json

    from automm_pretrained import weights

    monkeypatch.setenv("AUTOMM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "_digests", {})
    blob = tmp_path / "weights.bin"
    blob.write_bytes(b"some weights" * 1000)
    digest = weights.file_sha256(blob)
    assert digest == hashlib.sha256(blob.read_bytes()).hexdigest()
    stored = json.loads((tmp_path / "cache" / weights.DIGESTS_FILE).read_text())
    assert list(stored.values()) == [digest]
    # a new process (no in-process memo) takes it from the file without reading the weights
    monkeypatch.setattr(weights, "_digests", {})
    monkeypatch.setattr(weights.hashlib, "sha256", None)
    assert weights.file_sha256(blob) == digest
    monkeypatch.undo()
    monkeypatch.setenv("AUTOMM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "_digests", {})
    # replaced weights (new content, mtime, size) are hashed again; a damaged file only costs hashing
    blob.write_bytes(b"other weights")
    assert weights.file_sha256(blob) == hashlib.sha256(b"other weights").hexdigest()
    (tmp_path / "cache" / weights.DIGESTS_FILE).write_text("{not json")
    monkeypatch.setattr(weights, "_digests", {})
    assert weights.file_sha256(blob) == hashlib.sha256(b"other weights").hexdigest()


def test_a_cache_dir_given_is_enough_without_a_home_folder(tmp_path, monkeypatch):
    """No $HOME and a user id the user database lacks (a container's --user 1000): the weights' digests,
    remembered in the default cache folder, raised "no folder for the feature cache ... give the folder:
    AutoMM(cache_dir=...)" where that folder was given (fit, AutoMM.load(path, cache_dir=...), automm
    predict --cache-dir): each process hashes the weights instead."""
    import pwd

    from automm_pretrained import weights

    for name in ("HOME", "AUTOMM_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)

    def unknown(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")
    monkeypatch.setattr(pwd, "getpwuid", unknown)
    monkeypatch.setattr(weights, "_digests", {})
    encoder = automm.create_encoder("minilm")
    cache = encoder.feature_cache(str(tmp_path))
    assert cache.root == tmp_path
    assert cache.namespace == f"minilm-{encoder.weights_sha256()[:16]}"
    with pytest.raises(automm.AutoMMError, match="no folder for the feature cache"):
        encoder.feature_cache(None)  # (the default folder: there is none)


def test_a_pipe_in_place_of_the_weights_digests_file_is_not_read(tmp_path, monkeypatch):
    """A pipe (or a link to /dev/zero) at the cache's weights-sha256.json blocked every process that
    looked up the weights' digest (read until memory ran out): it is passed over, the weights hashed."""
    import threading

    from automm_pretrained import weights

    monkeypatch.setenv("AUTOMM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "_digests", {})
    (tmp_path / "cache").mkdir()
    pipe = tmp_path / "cache" / weights.DIGESTS_FILE
    os.mkfifo(pipe)
    blob = tmp_path / "weights.bin"
    blob.write_bytes(b"some weights")
    found = []
    worker = threading.Thread(target=lambda: found.append(weights.file_sha256(blob)), daemon=True)
    worker.start()
    worker.join(5)
    blocked = worker.is_alive()
    if blocked:  # opening the pipe: a writer's open and close lets it go on
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
    assert not blocked, "blocked reading a pipe for 5 s"
    assert found == [hashlib.sha256(b"some weights").hexdigest()]


def test_preprocess_without_prepare_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOMM_CACHE_DIR", str(tmp_path))
    encoder = automm.create_encoder("minilm")
    vector = encoder.preprocess("never prepared")
    assert vector.shape == (384,)
    assert list((tmp_path / "features").rglob("*.f32"))


def test_unwritable_cache_only_costs_recomputation_and_says_so_once(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    encoder = automm.create_encoder("minilm")
    with pytest.warns(RuntimeWarning, match=r"cannot write the feature cache under '.*not-a-dir'.*every fit "
                                            r"or prediction of these inputs computes them again.*AUTOMM_CACHE_DIR"):
        encoder.prepare(["hello", "world"], cache_dir=str(blocker))
    assert encoder.preprocess("hello").shape == (384,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per directory: not for every feature, nor every fit
        automm.create_encoder("minilm").prepare(["again", "more"], cache_dir=str(blocker))


def test_array_images_are_keyed_by_pixels(tmp_path):
    encoder = automm.create_encoder("efficientnet_lite0", image_size=32)
    black = np.zeros((8, 8, 3), dtype=np.uint8)
    white = np.full((8, 8, 3), 255, dtype=np.uint8)
    encoder.prepare([black, white], cache_dir=str(tmp_path))
    assert encoder.last_prepare["computed"] == 2
    assert not torch.equal(encoder.preprocess(black), encoder.preprocess(white))


def test_computing_features_is_logged_where_a_verbose_fit_shows_it(tmp_path, caplog):
    import logging

    from automm_pretrained.encoders import QUIET_BELOW

    texts = [f"hello there number {i}" for i in range(QUIET_BELOW)]
    encoder = automm.create_encoder("minilm")
    with caplog.at_level(logging.INFO, logger="automm"):
        encoder.prepare(texts, cache_dir=str(tmp_path))
        automm.create_encoder("minilm").prepare(texts[:1], cache_dir=str(tmp_path))  # cached: nothing to say
        # a few new values (a service's request) are debug detail, not a line per request
        automm.create_encoder("minilm").prepare(["general kenobi"], cache_dir=str(tmp_path))
    messages = [(r.name, r.getMessage()) for r in caplog.records]
    assert messages[0] == ("automm.pretrained", f"minilm: computing the features of {QUIET_BELOW} texts (0 found in "
                                                f"the cache under {tmp_path})")
    assert messages[-1][1].startswith(f"minilm: {QUIET_BELOW} of {QUIET_BELOW} computed") and len(messages) == 2
    assert messages[-1][1].endswith("; later fits and predictions read them from the cache")
    blocker = tmp_path / "not-a-dir"  # features that could not be kept: the log said later fits would read them
    blocker.write_text("a file where the cache directory should be")
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="automm"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        automm.create_encoder("minilm").prepare(["you were the chosen one"], cache_dir=str(blocker))
    assert caplog.records[-1].levelno == logging.DEBUG
    assert caplog.records[-1].getMessage().endswith("; none of them could be kept in the feature cache")


def test_a_model_predicting_batch_after_batch_holds_one_batchs_features(tmp_path):
    """A service predicts request after request: the encoder keeps the features of the last
    call's values only (before, every input ever seen stayed in memory), and earlier values
    still work, read back from the disk cache."""
    encoder = automm.create_encoder("minilm")
    first = [f"request one, text {i}" for i in range(6)]
    second = [f"request two, text {i}" for i in range(4)]
    encoder.prepare(first, cache_dir=str(tmp_path))
    before = encoder.preprocess(first[0]).clone()
    encoder.prepare(second + first[:1], cache_dir=str(tmp_path))
    assert len(encoder._features) == 5 and encoder.last_prepare["computed"] == 4
    assert torch.equal(encoder.preprocess(first[0]), before)
    assert torch.equal(encoder.preprocess(first[3]), encoder.feature_cache().get(first[3]))


def _cached_files(root):
    return sum(1 for p in (root / "features").rglob("*.f32")) if (root / "features").exists() else 0


def test_set_params_cache_dir_none_moves_a_fitted_models_features_to_the_default_place(tmp_path, monkeypatch):
    """The README's way to serve a model on another machine: ``set_params(cache_dir=None)``. The
    encoder kept writing to the folder the fit named instead (it may not exist there)."""
    trained_in, default = tmp_path / "trained", tmp_path / "default"
    monkeypatch.setenv("AUTOMM_CACHE_DIR", str(default))
    texts = [f"a red cotton shirt number {i}" for i in range(12)] + [f"blue denim jeans {i}" for i in range(12)]
    model = automm.AutoMM(encoders={"text": "minilm"}, max_epochs=1, cache_dir=str(trained_in), num_workers=0,
                          column_types={"x0": "text"}).fit(texts, ["shirt"] * 12 + ["jeans"] * 12)
    before = _cached_files(trained_in)
    assert before > 0 and _cached_files(default) == 0
    model.set_params(cache_dir=None)
    model.predict([f"a green wool jumper {i}" for i in range(5)])
    assert _cached_files(trained_in) == before
    assert _cached_files(default) == 5


def test_an_encoders_own_cache_dir_overrides_the_estimators(tmp_path):
    """As the plugin's README says: the encoder's own ``cache_dir`` wins for that encoder."""
    shared, own = tmp_path / "shared", tmp_path / "own"
    texts = [f"a red cotton shirt number {i}" for i in range(12)] + [f"blue denim jeans {i}" for i in range(12)]
    automm.AutoMM(encoders={"text": {"name": "minilm", "cache_dir": str(own)}}, max_epochs=1, cache_dir=str(shared),
                  num_workers=0, column_types={"x0": "text"}).fit(texts, ["shirt"] * 12 + ["jeans"] * 12)
    assert _cached_files(own) == 24
    assert _cached_files(shared) == 0


def test_a_deadline_with_an_unwritable_cache_does_not_claim_the_features_were_kept(tmp_path):
    import time

    from automm.deadlines import deadline_scope

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    encoder = automm.create_encoder("minilm", feature_batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the unwritable cache's own warning
        with deadline_scope(time.monotonic() - 1):
            with pytest.raises(automm.TimeLimitExceeded, match=r"4 of 10 texts \(not kept: its feature cache cannot "
                                                               r"be written\)"):
                encoder.prepare([f"product number {i}" for i in range(10)], cache_dir=str(blocker))


def test_load_with_a_cache_dir_replaces_an_encoders_own(tmp_path):
    """The README's serving advice, AutoMM.load(path, cache_dir=...), was ignored by an encoder
    fitted with its own cache_dir (the training machine's folder)."""
    own, serving = tmp_path / "own", tmp_path / "serving"
    texts = [f"a red cotton shirt number {i}" for i in range(12)] + [f"blue denim jeans {i}" for i in range(12)]
    model = automm.AutoMM(encoders={"text": {"name": "minilm", "cache_dir": str(own)}}, max_epochs=1, num_workers=0,
                          column_types={"x0": "text"}).fit(texts, ["shirt"] * 12 + ["jeans"] * 12)
    loaded = automm.AutoMM.load(model.save(tmp_path / "model"), cache_dir=str(serving))
    loaded.predict([f"a green wool jumper {i}" for i in range(5)])
    assert _cached_files(own) == 24 and _cached_files(serving) == 5
    assert loaded.config_["encoders"]["text_0"]["cache_dir"] == str(serving)


def test_jobs_started_at_once_on_one_cache_compute_each_batch_once(tmp_path):
    """A batch of features another process is computing (its claim held) is waited for, then read
    from the cache, not computed a second time (3 jobs on 200 emoji: each computed all of them)."""
    import threading
    import time

    texts = [f"catalogue item {i}" for i in range(6)]
    cache_dir = str(tmp_path / "cache")
    expected = automm.create_encoder("minilm").compute_features(texts)
    encoder = automm.create_encoder("minilm")
    cache = encoder.feature_cache(cache_dir)
    keys = [cache.key(text) for text in texts]
    (batch,) = encoder._batches(texts)
    errors = []

    def prepare():
        try:
            encoder.prepare(texts, cache_dir=cache_dir)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    with cache.claim([keys[i] for i in batch]) as mine:  # "another process" computing them
        assert mine
        waiting = threading.Thread(target=prepare)
        waiting.start()
        time.sleep(1.0)
        assert waiting.is_alive()  # waits for the other process
        for key, vector in zip(keys, expected):
            cache.put_by_key(key, vector)
    waiting.join(30)
    assert not waiting.is_alive() and not errors
    assert encoder.last_prepare == {**encoder.last_prepare, "cached": 6, "computed": 0}
    assert torch.equal(torch.stack([encoder.preprocess(t) for t in texts]), expected)


def test_minilm_features_read_at_another_max_length_are_another_cache_entry(tmp_path):
    """Texts cut at 8 word pieces and at 32 give other features: a cache keyed without
    ``max_length`` would hand a longer-reading encoder the features of the cut texts."""
    texts = [f"navy blue cotton shirt number {i} with long sleeves and a pocket on the chest" for i in range(3)]
    cache_dir = str(tmp_path / "cache")
    short = automm.create_encoder("minilm", max_length=8)
    short.prepare(texts, cache_dir=cache_dir)
    clear_memory_cache()
    long = automm.create_encoder("minilm", max_length=32)
    long.prepare(texts, cache_dir=cache_dir)
    assert long.last_prepare["computed"] == 3
    assert not torch.allclose(long.preprocess(texts[0]), short.preprocess(texts[0]), atol=1e-3)
    clear_memory_cache()
    again = automm.create_encoder("minilm", max_length=8)
    again.prepare(texts, cache_dir=cache_dir)
    assert again.last_prepare == {**again.last_prepare, "cached": 3, "computed": 0}
    assert torch.equal(again.preprocess(texts[0]), short.preprocess(texts[0]))


def test_a_file_rewritten_while_its_features_are_computed_is_not_cached_under_its_old_bytes(tmp_path, monkeypatch):
    """A photo replaced on disk after ``prepare`` keyed it and before the network read it (a sync job
    during a long extraction) was read with its new bytes, whose features were written under the old
    bytes' key: a copy of the old photo elsewhere then got the new photo's features from the cache."""
    photo = _png(tmp_path / "photo.png", (255, 0, 0))
    copy = _png(tmp_path / "copy.png", (255, 0, 0))  # the same red photo under another path
    cache_dir = str(tmp_path / "cache")
    encoder = automm.create_encoder("efficientnet_lite0", image_size=32)
    original = type(encoder).iter_features

    def rewritten_first(self, values, *args, **kwargs):
        _png(tmp_path / "photo.png", (0, 0, 255))  # now blue, under the same path
        return original(self, values, *args, **kwargs)

    monkeypatch.setattr(type(encoder), "iter_features", rewritten_first)
    encoder.prepare([photo], cache_dir=cache_dir)
    monkeypatch.setattr(type(encoder), "iter_features", original)
    blue = encoder.preprocess(photo)  # this call's features are what it read: the new photo's
    clear_memory_cache()
    later = automm.create_encoder("efficientnet_lite0", image_size=32)
    later.prepare([copy], cache_dir=cache_dir)
    red = later.compute_features([copy])[0]
    assert later.last_prepare["computed"] == 1
    assert torch.equal(later.preprocess(copy), red) and not torch.allclose(red, blue, atol=1e-3)


def test_a_file_deleted_after_it_was_read_keeps_the_features_read_uncached(tmp_path, monkeypatch):
    """A photo deleted (a sync job's ``--delete``) after the network read it and before its features
    were stored failed ``prepare``, and so the fit, with a FileNotFoundError when it was keyed again."""
    photo, other = _png(tmp_path / "photo.png", (255, 0, 0)), _png(tmp_path / "other.png", (0, 255, 0))
    cache_dir = str(tmp_path / "cache")
    encoder = automm.create_encoder("efficientnet_lite0", image_size=32)
    original = type(encoder).iter_features

    def deleted_once_read(self, values, *args, **kwargs):
        for batch in original(self, values, *args, **kwargs):
            os.remove(photo)
            yield batch

    monkeypatch.setattr(type(encoder), "iter_features", deleted_once_read)
    encoder.prepare([photo, other], cache_dir=cache_dir)
    assert encoder.last_prepare["computed"] == 2
    assert encoder.preprocess(photo).shape == (encoder.feature_dim,)  # what was read serves this call
    assert len(list((tmp_path / "cache").rglob("*.f32"))) == 1  # the other photo's only


def test_features_kept_from_the_last_prepare_count_as_found(tmp_path, caplog):
    """A prediction after fit (one of its 149 photos also a training photo) said "computing the
    features of 148 images (0 found in the cache ...)": the one feature kept in memory from the
    fit's prepare was not counted, so the two numbers did not add up to the photos given."""
    import logging

    red, blue, green = (_png(tmp_path / f"{c}.png", rgb) for c, rgb in
                        (("red", (201, 3, 7)), ("blue", (5, 9, 203)), ("green", (11, 207, 13))))
    encoder = automm.create_encoder("efficientnet_lite0", image_size=32)
    encoder.prepare([red, blue], cache_dir=str(tmp_path / "cache"))
    with caplog.at_level(logging.DEBUG, logger="automm"):
        encoder.prepare([blue, green], cache_dir=str(tmp_path / "cache"))
    assert encoder.last_prepare == {**encoder.last_prepare, "cached": 1, "computed": 1}
    assert "computing the features of 1 images (1 found in the cache" in caplog.text


def test_forget_features_finds_what_the_pretrained_encoders_cached(tmp_path):
    """``forget_features`` (``automm cache forget``) finds a photo's and a text's features as EfficientNet-Lite0
    and MiniLM key them (a file's bytes; the NFKC-normalised text) and deletes only theirs: the next prepare
    computes those alone again."""
    from automm.feature_cache import forget_features

    jane, other = _png(tmp_path / "jane.png", (255, 0, 0)), _png(tmp_path / "other.png", (0, 0, 255))
    texts = ["Jane Doe ﬁne shirt", "a plain shirt"]  # (the ligature: MiniLM reads and keys "fine")
    cache_dir = str(tmp_path / "cache")
    images, words = automm.create_encoder("efficientnet_lite0", image_size=32), automm.create_encoder("minilm")
    images.prepare([jane, other], cache_dir=cache_dir)
    words.prepare(texts, cache_dir=cache_dir)
    forgotten = forget_features([jane], texts=[texts[0]], cache_dir=cache_dir)
    assert forgotten.files == 2 and all(len(found) == 1 for found in forgotten.found)
    images, words = automm.create_encoder("efficientnet_lite0", image_size=32), automm.create_encoder("minilm")
    images.prepare([jane, other], cache_dir=cache_dir)
    words.prepare(texts, cache_dir=cache_dir)
    assert images.last_prepare["computed"] == 1 and words.last_prepare["computed"] == 1
    assert images.last_prepare["cached"] == 1 and words.last_prepare["cached"] == 1
