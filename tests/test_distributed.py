"""A search shared by several processes or machines: what a team sharing a study runs into
(misspelt or read-only storages, a worker lacking a plugin or the data's files, two searches
given one study name) is refused before any trial, naming the argument and what is wrong."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import automm
from automm import AutoMM, Encoder, InputError, hookimpl, search
from automm import storage as automm_storage
from automm.cli import main
from automm.worker import run_worker

REPO = Path(__file__).resolve().parents[1]
TINY = dict(encoders={"text": {"name": "hashed_ngram", "n_buckets": 1024, "emb_dim": 8, "output_dim": 8}},
            fusion={"name": "concat", "proj_dim": 8, "hidden_dim": 8}, max_epochs=1, batch_size=32, num_workers=0,
            random_state=0, ensemble_size=1, pruner="none")


@pytest.fixture(scope="module")
def rows():
    from automm.datasets import load_emoji_sample

    frame = load_emoji_sample()
    return frame[frame.split == "train"].head(60).reset_index(drop=True)


def _trials(storage: str, name: str) -> list:
    return optuna.load_study(study_name=name, storage=search.make_storage(*search.parse_storage(storage))).trials


def _reopen(storage: str, name: str, n_trials: int) -> None:
    """As while the study's fit still runs, with room for ``n_trials`` trials."""
    study = optuna.load_study(study_name=name, storage=search.make_storage(*search.parse_storage(storage)))
    search.register_fit(study, "elsewhere:1", "running", n_trials=n_trials)


# ------------------------------------------------------------------------------- storages

@pytest.mark.parametrize("typed, meant", [("journal:/shared/study.log", "journal:///shared/study.log"),
                                           ("journal:study.log", "journal://study.log"),
                                           ("postgresql:/u:pw@db.example.org/automm", "postgresql://u:***@db.example.org/automm"),
                                           # SQLAlchemy's sqlite URLs take three slashes (four for an absolute path)
                                           ("sqlite:/shared/study.db", "sqlite:////shared/study.db"),
                                           ("sqlite:study.db", "sqlite:///study.db")])
def test_a_storage_scheme_without_its_slashes_is_refused(typed, meant, tmp_path, monkeypatch):
    # read as a path, 'journal:/shared/study.log' made a folder 'journal:' in the working directory
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=re.escape(f"did you mean {meant!r}")) as info:
        automm_storage.parse_storage(typed)
    assert "pw" not in str(info.value) and not os.listdir(tmp_path)


@pytest.mark.parametrize("name", ["study.log", "study.journal", "study.jsonl"])
def test_a_path_with_a_journal_extension_is_a_journal_file(name, tmp_path):
    assert automm_storage.parse_storage(str(tmp_path / name)) == ("journal", str(tmp_path / name))
    assert automm_storage.parse_storage(tmp_path / "study.db") == ("rdb", f"sqlite:///{tmp_path / 'study.db'}")


def test_the_heartbeat_interval_and_grace_are_each_read_from_their_own_setting(monkeypatch):
    monkeypatch.setenv("AUTOMM_HEARTBEAT_INTERVAL", "3")
    monkeypatch.setenv("AUTOMM_HEARTBEAT_GRACE", "45")
    assert (automm_storage.heartbeat_interval(), automm_storage.heartbeat_grace()) == (3.0, 45.0)
    monkeypatch.delenv("AUTOMM_HEARTBEAT_INTERVAL")
    monkeypatch.delenv("AUTOMM_HEARTBEAT_GRACE")
    assert (automm_storage.heartbeat_interval(), automm_storage.heartbeat_grace()) == (
        automm_storage.HEARTBEAT_INTERVAL, automm_storage.HEARTBEAT_GRACE)


def test_a_journal_that_cannot_be_written_is_refused_before_any_trial(rows, tmp_path, monkeypatch):
    """A journal on a read-only disk (here: its lock cannot be made) fails with the storage named,
    not with an OSError from deep inside Optuna once the data have been prepared."""
    from optuna.storages.journal import JournalFileSymlinkLock

    def read_only(self):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "study.log"))

    monkeypatch.setattr(JournalFileSymlinkLock, "acquire", read_only)
    with pytest.raises(InputError, match=r"storage: cannot write the journal folder .*study\.log.*Read-only"):
        AutoMM(**TINY, n_trials=2, storage=str(tmp_path / "study.log")).fit(rows["name"].tolist(),
                                                                              rows["category"].tolist())


def _journal_study(path: str, trials: int):
    study = optuna.create_study(study_name="full", storage=search.make_storage("journal", path), load_if_exists=True)
    for value in range(trials):
        study.add_trial(optuna.trial.create_trial(value=float(value)))
    return study


def test_a_journal_write_that_fails_leaves_no_line_cut_short(tmp_path, monkeypatch):
    """A full disk cut a record short; the next process's first record then joined it into a
    line no reader could parse, and the whole study (its finished trials) failed to load."""
    path = str(tmp_path / "study.log")
    _journal_study(path, 3)
    before = Path(path).read_bytes()
    write = os.write

    def full_disk(descriptor, data):  # half the record, then no space left
        if len(data) > 8:
            write(descriptor, bytes(data[:len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(automm_storage.StorageError, match=r"storage: cannot write the journal file .*study\.log.*"
                                                          r"No space left on device.*the trials it holds are kept"):
        _journal_study(path, 0).add_trial(optuna.trial.create_trial(value=9.0))
    monkeypatch.undo()
    assert Path(path).read_bytes() == before
    assert [t.value for t in _trials(path, "full")] == [0.0, 1.0, 2.0]


def test_a_journal_left_with_a_line_cut_short_is_mended_before_the_next_record(tmp_path):
    """As a process of an older automm, or Optuna itself, may have left it."""
    path = str(tmp_path / "study.log")
    _journal_study(path, 2)
    with open(path, "ab") as file:
        file.write(b'{"op_code": 5, "worker_id": "a", "study_id": 0, "datetime_sta')
    assert [t.value for t in _trials(path, "full")] == [0.0, 1.0]  # Optuna skips it while it is last
    with pytest.warns(RuntimeWarning, match=r"study\.log' ended in a line cut short .* last 61 bytes"):
        _journal_study(path, 0).add_trial(optuna.trial.create_trial(value=5.0))
    assert [t.value for t in _trials(path, "full")] == [0.0, 1.0, 5.0]


@pytest.mark.parametrize("content", [b"my notes, no newline at the end", b"SQLite format 3\x00\x10\x00\n\xfb\xfb"])
def test_a_file_that_is_no_journal_is_refused_not_cut(tmp_path, content):
    """A one-line file given as a journal was cut to nothing and made a journal, with a warning
    about a 'line cut short'; a SQLite file raised a bare UnicodeDecodeError."""
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(automm_storage.StorageError, match=r"notes\.txt' is not an Optuna journal file"):
        automm_storage.make_storage("journal", str(path))
    assert path.read_bytes() == content


def test_a_journal_with_a_damaged_line_is_named(tmp_path):
    path = str(tmp_path / "study.log")
    _journal_study(path, 3)
    lines = Path(path).read_bytes().splitlines(keepends=True)
    Path(path).write_bytes(b"".join(lines[:2] + [b'{"op_code": 5, garbage\n'] + lines[2:]))
    with pytest.raises(automm_storage.StorageError, match=r"journal file .*study\.log' is damaged .*line 3 is not"):
        automm_storage.make_storage("journal", path)


def test_a_fit_whose_journal_cannot_be_written_says_so(rows, tmp_path, monkeypatch):
    """Optuna's own bookkeeping hid the full disk behind 'AssertionError: Should not reach'."""
    calls, append = [], automm_storage._append_whole

    def fills_up(path, data):
        calls.append(path)
        if len(calls) > 12:
            raise automm_storage.StorageError(f"storage: cannot write the journal file {path!r} (OSError: "
                                              "No space left on device)")
        append(path, data)

    monkeypatch.setattr(automm_storage, "_append_whole", fills_up)
    with pytest.raises(automm_storage.StorageError, match="No space left on device"):
        AutoMM(**TINY, n_trials=4, storage=str(tmp_path / "study.log")).fit(rows["name"].tolist(),
                                                                              rows["category"].tolist())


def test_fit_opens_its_storage_before_reading_the_data(tmp_path, capsys):
    missing = tmp_path / "no-such-folder" / "study.db"
    code = main(["fit", str(REPO / "recipes" / "quickstart.yaml"), "--set", f"search.storage=sqlite:///{missing}",
                 "-o", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "search.storage: cannot open the database" in err and "data:" not in err and "fitting" not in err


def test_fit_in_python_opens_its_storage_before_checking_the_data(tmp_path):
    missing = tmp_path / "no-such-folder" / "study.db"
    with pytest.raises(InputError, match=r"storage: cannot open the database"):  # not the data's error below
        AutoMM(**TINY, n_trials=2, storage=f"sqlite:///{missing}").fit(["a text", "another"], ["x"])


def _open_files(path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_the_storage_check_before_the_data_closes_its_connections(tmp_path):
    """fit (and automm fit) open the storage before the data checks only to check it: its
    connection pool is closed again, not left to the garbage collector (on PostgreSQL, two
    server connections per check for the whole fit)."""
    import gc

    from automm.cli import _check_storage

    path = tmp_path / "study.db"
    gc.disable()  # what is left open stays open (the engine sits in reference cycles)
    try:
        with pytest.raises(InputError, match=r"^y: "):  # the data's error, after the storage check
            AutoMM(**TINY, n_trials=2, storage=str(path)).fit(["a text", "another"], ["x"])
        assert path.exists() and _open_files(path) == 0
        _check_storage(f"sqlite:///{path}")
        assert _open_files(path) == 0
    finally:
        gc.enable()


def test_a_worker_whose_storage_cannot_be_written_exits_with_2(tmp_path, capsys, monkeypatch):
    """As README says (exit 2: a storage that cannot be opened or written, worker --storage);
    it exited with 1, as for a failure during the work."""
    from optuna.storages.journal import JournalFileSymlinkLock

    journal = tmp_path / "study.log"
    journal.touch()  # there (a worker never creates it), but its folder is read-only

    def read_only(self):
        raise OSError(errno.EROFS, "Read-only file system", str(journal))

    monkeypatch.setattr(JournalFileSymlinkLock, "acquire", read_only)
    code = main(["worker", "--storage", str(journal), "--study", "s", "--wait", "0"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--storage: cannot write the journal folder" in err


def test_a_worker_reaches_its_storage_before_reading_its_recipes_data(capsys, monkeypatch):
    import automm.recipes

    def read(*args, **kwargs):
        raise AssertionError("the recipe's data were read before the storage was checked")

    monkeypatch.setattr(automm.recipes.Recipe, "load_data", read)
    code = main(["worker", "--storage", "postgresql://automm:pw@127.0.0.1:1/automm", "--study", "s", "--wait", "0",
                 "--recipe", str(REPO / "recipes" / "quickstart.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "--storage: cannot open the database" in err and "pw" not in err, err
    # a storage file that is not there: said before the data are read too (it was said after)
    code = main(["worker", "--storage", "/nonexistent/study.log", "--study", "s", "--wait", "0",
                 "--recipe", str(REPO / "recipes" / "quickstart.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "--storage: '/nonexistent/study.log' does not exist" in err, err


def test_a_worker_names_a_misspelt_storage_as_its_option(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["worker", "--storage", "journal:/shared/study.log", "--study", "s", "--wait", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "--storage: 'journal:' must be followed by '//'" in err
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------------------------- workers

class WordCount(Encoder):
    """A plugin's text encoder: the number of words."""

    modality = "text"
    static_preprocess = True

    def __init__(self, output_dim=4):
        super().__init__()
        self.output_dim = output_dim
        self.linear = torch.nn.Linear(1, output_dim)

    def preprocess(self, value, augment=None):
        return torch.tensor([0.0 if value is automm.MISSING else float(len(str(value).split()))])

    def forward(self, batch):
        return self.linear(batch)


class WordCountPlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("word_count", WordCount, modality="text", output_dim=lambda hp: hp["output_dim"],
                 defaults={"output_dim": 4})


def test_a_worker_lacking_a_plugin_of_the_study_refuses_before_any_trial(rows, tmp_path, fresh_registry):
    journal = str(tmp_path / "study.log")
    fresh_registry(WordCountPlugin())
    params = dict(TINY, encoders={"text": ["hashed_ngram", "word_count"]})
    AutoMM(**params, n_trials=1, storage=journal, study_name="plug").fit(rows["name"].tolist(),
                                                                          rows["category"].tolist())
    _reopen(journal, "plug", 6)
    before = len(_trials(journal, "plug"))
    fresh_registry()  # the worker's machine: without the plugin
    with pytest.raises(InputError, match=r"searches over encoder 'word_count' \(plugin '.*WordCountPlugin.*'\), "
                                         r"which this process lacks"):
        run_worker(journal, "plug", wait=0)
    assert len(_trials(journal, "plug")) == before  # no trial failed for it


def test_a_worker_without_the_studys_files_refuses_before_any_trial(tmp_path, emoji_split):
    train, _ = emoji_split
    folder = tmp_path / "images"
    folder.mkdir()
    images = []
    for path in train["image"].head(40):
        shutil.copy(path, folder)
        images.append(str(folder / Path(path).name))
    journal = str(tmp_path / "study.log")
    params = dict(TINY, encoders={"image": {"name": "cnn", "image_size": 16, "width": 4, "depth": 1, "output_dim": 8},
                                  "text": TINY["encoders"]["text"]}, augmentations=[])
    AutoMM(**params, n_trials=1, storage=journal, study_name="files").fit(
        images, train["name"].head(40).tolist(), train["category"].head(40).tolist())
    _reopen(journal, "files", 6)
    before = len(_trials(journal, "files"))
    shutil.rmtree(folder)  # the worker's machine lacks them
    with pytest.raises(InputError, match=r"the data of study 'files' cannot be read here \(column 'x0': 40 of 40 "
                                         r"images cannot be read.*file not found.*same files at the same paths"):
        run_worker(journal, "files", wait=0)
    assert len(_trials(journal, "files")) == before


def test_a_study_of_other_data_says_what_differs(rows, tmp_path):
    """Two users give one study name to searches of other labels: the second fit and a worker
    given other data name what differs, before any trial."""
    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    AutoMM(**TINY, n_trials=1, storage=journal, study_name="shared").fit(names, labels)
    others = [label[:3] if i % 2 else label for i, label in enumerate(labels)]
    n_classes, n_others = len(set(labels)), len(set(others))
    with pytest.raises(InputError, match=rf"study_name: study 'shared' holds a search over other data .*: its label is "
                                         rf"multiclass, {n_classes} classes; here multiclass, {n_others} classes"):
        AutoMM(**TINY, n_trials=1, storage=journal, study_name="shared").fit(names, others)
    with pytest.raises(InputError, match=r"its encoder choices for text_0 are \['hashed_ngram'\]; here \['gru', "
                                         r"'hashed_ngram'\]"):
        AutoMM(**dict(TINY, encoders={"text": ["hashed_ngram", "gru"]}), n_trials=1, storage=journal,
               study_name="shared").fit(names, labels)
    _reopen(journal, "shared", 4)
    with pytest.raises(InputError, match=r"differ from those of study 'shared': its label is multiclass"):
        run_worker(journal, "shared", names, y=others, wait=0)
    assert len(_trials(journal, "shared")) == 1


def test_a_study_of_an_older_automm_says_so_not_other_settings(rows, tmp_path):
    """A study created by an older automm (its built-in choices or presets were other ones) and
    resumed with the same data and settings after an upgrade was refused as "a search over other
    data or another search space ... (or give the same data and settings to resume it)", which they
    were: the message says the study is another automm's and what to do."""
    from automm.study import FINGERPRINT_ATTR, SPEC_ATTR

    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    AutoMM(**TINY, n_trials=1, storage=journal, study_name="old").fit(names, labels)
    study = optuna.load_study(study_name="old", storage=search.make_storage(*search.parse_storage(journal)))
    spec = study.user_attrs[SPEC_ATTR]  # as an older automm stored it: its default configuration was another
    spec["space"]["default"]["fusion"]["hidden_dim"] = 16
    study.set_user_attr(SPEC_ATTR, spec)
    study.set_user_attr(FINGERPRINT_ATTR, "0" * 64)
    with pytest.raises(InputError, match=r"study_name: study 'old' was created by another automm version, whose search "
                                         r"space for these data and settings differs from this one's \(its search "
                                         r"space differs in default .*\): finish it with the automm that created it, or "
                                         r"choose another study_name"):
        AutoMM(**TINY, n_trials=2, storage=journal, study_name="old", verbose=1).fit(names, labels)
    with pytest.raises(InputError, match=r"study 'old' holds a search over other data .*: its encoder choices"):
        AutoMM(**dict(TINY, encoders={"text": ["hashed_ngram", "gru"]}), n_trials=2, storage=journal,
               study_name="old").fit(names, labels)  # other settings: said as before
    assert len(_trials(journal, "old")) == 1


def test_cross_validation_under_one_study_name_is_told_to_leave_it_unset(rows, tmp_path):
    """cross_val_score of an AutoMM with a storage and a study_name refused its second fold (other
    rows under the study's name) without saying that, unset, the name gives each fold its own study."""
    from sklearn.model_selection import cross_val_score

    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].head(36).tolist(), rows["category"].head(36).tolist()
    with pytest.raises(InputError, match=r"study_name: study 'cv' holds a search over other data .*; choose another "
                                         r"study_name, or leave study_name unset: each fit of other data or settings "
                                         r"then has its own study \(each fold of a cross_val_score"):
        cross_val_score(AutoMM(**TINY, problem_type="multiclass", n_trials=1, storage=journal, study_name="cv"),
                        names, labels, cv=2, error_score="raise")
    # as it says: unset, each fold searches in a study of its own
    cross_val_score(AutoMM(**TINY, problem_type="multiclass", n_trials=1, storage=journal), names, labels, cv=2,
                    error_score="raise")
    studies = optuna.get_all_study_names(search.make_storage(*search.parse_storage(journal)))
    assert len([name for name in studies if name != "cv"]) == 2


def test_a_study_of_the_same_labels_but_other_inputs_is_refused(rows, tmp_path):
    """Texts cleaned between two runs, same rows and labels: resuming the study would mix trials
    scored on the old texts with the new ones (and a worker given them would train on other
    data); both are refused, naming the column."""
    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    AutoMM(**TINY, n_trials=1, storage=journal, study_name="shared").fit(names, labels)
    cleaned = [name.upper() if i == 7 else name for i, name in enumerate(names)]  # one value differs
    first = rf"first at row 7: {re.escape(repr(names[7]))} in the study, {re.escape(repr(cleaned[7]))} here\)"
    with pytest.raises(InputError, match=r"study_name: study 'shared' holds a search over other data .*: the values "
                                         r"of column 'x0' differ here \(the same rows and labels, other inputs; "
                                         + first):
        AutoMM(**TINY, n_trials=1, storage=journal, study_name="shared").fit(cleaned, labels)
    _reopen(journal, "shared", 4)
    with pytest.raises(InputError, match=r"differ from those of study 'shared': the values of column 'x0'.*" + first):
        run_worker(journal, "shared", cleaned, y=labels, wait=0)
    assert len(_trials(journal, "shared")) == 1
    AutoMM(**TINY, n_trials=2, storage=journal, study_name="shared").fit(names, labels)  # the same texts resume it
    assert len(_trials(journal, "shared")) == 2


def test_a_copy_of_the_images_in_another_folder_is_named_by_its_folders(tmp_path):
    """The same image files copied to another folder were refused as "other inputs" without
    naming a path: the message names the study's folder and this one (and, for other values,
    the first pair that differs)."""
    from automm.study import describe_difference

    spec = {"inputs": [{"name": "image_0", "modality": "image", "columns": ["image"],
                        "column_roles": {"image": "image"}}], "problem_type": "binary", "n_outputs": 2,
            "targets": [0, 1], "value_digests": {"image": "a"}}
    stored = {"columns": {"image": ["/data/a.png", "/old/images/b.png"]}}
    here = {"columns": {"image": ["/data/a.png", "/new/images/b.png"]}}
    said = describe_difference(spec, dict(spec, value_digests={"image": "b"}), stored, here)
    assert said.endswith("(the same rows and labels, other inputs; the study's files are in '/old/images', here in "
                         "'/new/images': first at row 1, 'b.png')"), said
    here = {"columns": {"image": ["/data/a.png", "/data/c.png"]}}
    said = describe_difference(spec, dict(spec, value_digests={"image": "b"}), stored, here)
    assert said.endswith("other inputs; first at row 1: '/old/images/b.png' in the study, '/data/c.png' here)"), said
    assert describe_difference(spec, dict(spec, value_digests={"image": "b"})).endswith("other inputs)")


def test_where_long_values_differ_is_shown_and_a_text_is_cut_as_every_message_cuts_one():
    """Long values were cut at their end (``short_repr``, 80 characters): two photos of one long folder
    (or titles edited near their end) read alike in the message that should say where they differ, and a
    title's name and e-mail address were quoted whole; the one excerpt every message shows (``elided_repr``)
    keeps the end, and says from which character values differing in the part left out do."""
    from automm.study import describe_difference

    folder = "/mnt/shared/datasets/customer_uploads/2026/december/batch_0007/photos/originals"
    spec = {"inputs": [{"name": "image_0", "modality": "image", "columns": ["image"],
                        "column_roles": {"image": "image"}}], "problem_type": "binary", "n_outputs": 2,
            "targets": [0, 1], "value_digests": {"image": "a"}}
    said = describe_difference(spec, dict(spec, value_digests={"image": "b"}),
                               {"columns": {"image": [f"{folder}/1.jpg"]}}, {"columns": {"image": [f"{folder}/2.jpg"]}})
    assert re.search(r"first at row 0: '/mnt.*/1\.jpg' \(87 characters\) in the study, "
                     r"'/mnt.*/2\.jpg' \(87 characters\) here\)$", said), said
    title = "Jane Doe (jane.doe@example.org, +1 555 0134 9876): the shirt shrank after one wash"
    spec = dict(spec, inputs=[{"name": "text_0", "modality": "text", "columns": ["title"],
                               "column_roles": {"title": "text"}}], value_digests={"title": "a"})
    said = describe_difference(spec, dict(spec, value_digests={"title": "b"}), {"columns": {"title": [title]}},
                               {"columns": {"title": [title.replace("shrank", "shrunk")]}})
    assert "first at row 0, from character 64: 'Jane Doe" in said and "0134 9876" not in said, said


def test_a_study_of_a_wide_table_names_the_first_column_that_differs():
    """A study's input columns and the search's were each listed whole with their roles: two lines of
    25,000 characters for 1,000 columns, where the one column that differed was lost."""
    from automm.study import describe_difference

    roles = {f"f{j:03d}": "numeric" for j in range(40)}
    spec = {"inputs": [{"name": "tabular", "modality": "tabular", "columns": list(roles), "column_roles": roles}],
            "problem_type": "binary", "n_outputs": 2}
    other = {**spec, "inputs": [{**spec["inputs"][0], "column_roles": {**roles, "f031": "categorical"}}]}
    assert describe_difference(spec, other) == (
        "its input columns are 40 columns: 40 numeric (f000, f001, f002, ...); here 40 columns: 39 numeric (f000, "
        "f001, f002, ...), 1 categorical (f031) (the first to differ, column 32: 'f031' (numeric) in the study, "
        "'f031' (categorical) here)")


def test_a_search_without_storage_does_not_digest_its_values(rows, monkeypatch):
    # nothing resumes or joins it; the digests of in-memory pictures would decode and hash every one
    from automm import study as study_module

    def refuse(data):
        raise AssertionError("the values were digested")

    monkeypatch.setattr(study_module, "value_digests", refuse)
    AutoMM(**TINY, n_trials=2).fit(rows["name"].tolist(), rows["category"].tolist())


def test_value_digests_tell_dates_apart():
    """Dates are not plain JSON (the study holds no copy of such data): their digest still reads
    their values, so a worker given other dates is refused."""
    import numpy as np
    import pandas as pd

    from automm.data import InputSpec
    from automm.pipeline import PreparedData
    from automm.study import value_digests

    def digests(dates) -> dict:
        rows = [{"when": when, "text": text} for when, text in zip(pd.to_datetime(dates), ["a b", "c d", "e"])]
        spec = InputSpec("tabular", "tabular", ["when", "text"], {"when": "datetime", "text": "categorical"})
        return value_digests(PreparedData(inputs=[spec], values={"tabular": rows}, targets=np.zeros(3),
                                          problem_type="binary", n_outputs=2, train_index=np.arange(2),
                                          valid_index=np.arange(2, 3), seed=0, device=torch.device("cpu"),
                                          num_workers=0))

    first = digests(["2024-01-01", "2024-02-03", "2024-03-04"])
    assert first == digests(["2024-01-01", "2024-02-03", "2024-03-04"])
    other = digests(["2024-01-01", "2024-02-03", "2024-03-05"])
    assert first["when"] != other["when"] and first["text"] == other["text"]


def test_a_worker_reading_the_studys_copy_of_relative_image_paths_joins(emoji_split, tmp_path, monkeypatch):
    """The study stores image paths made absolute; the values check reads them as the same data."""
    train, _ = emoji_split
    train = train.head(40)
    monkeypatch.chdir(Path(train["image"].iloc[0]).parent.parent)
    relative = [os.path.relpath(p) for p in train["image"]]
    journal = str(tmp_path / "study.log")
    params = dict(TINY, encoders={"image": {"name": "cnn", "image_size": 16, "width": 4, "depth": 1, "output_dim": 8}},
                  augmentations=[])
    AutoMM(**params, n_trials=1, storage=journal, study_name="pics").fit(relative, train["category"].tolist())
    _reopen(journal, "pics", 2)
    run_worker(journal, "pics", wait=0)  # the study's own copy: absolute paths
    run_worker(journal, "pics", relative, y=train["category"].tolist(), wait=0)  # fit's data again
    assert [t.state.name for t in _trials(journal, "pics")] == ["COMPLETE", "COMPLETE"]


# ------------------------------------------------------------------------------- the final model

def test_fit_warns_when_a_better_trial_of_another_worker_cannot_make_the_model(rows, tmp_path):
    """The fit process builds the model; a better trial that another machine's worker trained (no
    artifact_dir) and that the time limit leaves no time to retrain is passed over with a warning
    naming it, not silently."""
    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    params = dict(TINY, storage=journal, study_name="final")
    first = AutoMM(**params, n_trials=1).fit(names, labels)
    study = optuna.load_study(study_name="final", storage=search.make_storage("journal", journal))
    config = first.config_
    study.add_trial(optuna.trial.create_trial(value=0.99, user_attrs={  # another machine's better trial
        "automm:score": 0.99, "automm:config": config, "automm:seconds": 1e6, "automm:worker": "elsewhere:17"}))
    with pytest.warns(UserWarning, match=r"best trial 1 \(holdout accuracy 0\.9900, worker elsewhere:17\) ran in "
                                         r"another process.*no time to retrain it: the model is built from trial [02] "
                                         r"\(holdout accuracy [01]\.\d{4}\)"):
        model = AutoMM(**params, n_trials=3, time_limit=60).fit(names, labels)
    assert model.best_trial_ in (0, 2)


def test_a_better_trial_of_an_earlier_fit_passed_over_says_what_applies(rows, tmp_path):
    """A trial that an earlier run of the same fit trained, with no time to retrain it: the
    warning told the user to start workers with --artifact-dir, which no worker ran; it names the
    earlier fit and the one way out, a longer time_limit."""
    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    params = dict(TINY, storage=journal, study_name="again")
    first = AutoMM(**params, n_trials=1).fit(names, labels)
    study = optuna.load_study(study_name="again", storage=search.make_storage("journal", journal))
    tag = study.trials[0].user_attrs["automm:worker"]  # the first fit's process
    study.add_trial(optuna.trial.create_trial(value=0.99, user_attrs={  # that fit's better trial
        "automm:score": 0.99, "automm:config": first.config_, "automm:seconds": 1e6, "automm:worker": tag}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AutoMM(**params, n_trials=3, time_limit=60).fit(names, labels)
    said = [str(w.message) for w in caught if "no time to retrain" in str(w.message)]
    assert len(said) == 1, said
    assert re.search(rf"best trial \d+ \(holdout accuracy 0\.9900, fit {re.escape(tag)}\) ran in an earlier fit of "
                     r"the study, whose model .*; an earlier fit's models end with it, so a fit resuming its study "
                     r"retrains them: run fit again with a longer time_limit", said[0]), said[0]
    assert "artifact" not in said[0]


def test_a_refused_resume_names_the_classes_gained_and_lost(rows, tmp_path):
    """A resumed study refused because the data gained a class said "9 classes; here 10" without
    naming the new class; it names it, and a class gone."""
    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    AutoMM(**TINY, n_trials=1, storage=journal, study_name="classes").fit(names, labels)
    n_classes, renamed = len(set(labels)), sorted(set(labels))[-1]  # (renamed 'Eyewear': the class indices change)
    gained = ["Eyewear" if i % 7 == 0 else label for i, label in enumerate(labels)]
    with pytest.raises(InputError, match=rf"its label is multiclass, {n_classes} classes; here multiclass, "
                                         rf"{n_classes + 1} classes: 'Eyewear' new \(another label column"):
        AutoMM(**TINY, n_trials=1, storage=journal, study_name="classes").fit(names, gained)
    swapped = ["Eyewear" if label == renamed else label for label in labels]
    with pytest.raises(InputError, match=rf"the labels of \d+ of its \d+ rows differ here; classes 'Eyewear' new, "
                                         rf"{re.escape(repr(renamed))} gone \(another label column"):
        AutoMM(**TINY, n_trials=1, storage=journal, study_name="classes").fit(names, swapped)
    assert len(_trials(journal, "classes")) == 1


def test_a_multi_objective_fit_that_passes_the_chosen_trial_over_says_which_model_it_kept(rows, tmp_path):
    """The Pareto rule's choice trained by another process, with no time to retrain it: the model
    was another trial's, but pareto_front_ still marked the rule's choice and fit_summary (and the
    CLI) said "chose trial 1 (score 0.9900, n_params 10)" of a model that was not kept."""
    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    params = dict(TINY, storage=journal, study_name="front", objectives=("score", "params"))
    first = AutoMM(**params, n_trials=1).fit(names, labels)
    study = optuna.load_study(study_name="front", storage=search.make_storage("journal", journal))
    study.add_trial(optuna.trial.create_trial(values=[0.99, 10.0], user_attrs={  # best and cheapest, elsewhere
        "automm:score": 0.99, "automm:n_params": 10, "automm:config": first.config_, "automm:seconds": 1e6,
        "automm:worker": "elsewhere:17"}))
    with pytest.warns(UserWarning, match=r"best trial 1 .* no time to retrain it: the model is built from trial [02] "):
        model = AutoMM(**params, n_trials=3, time_limit=60).fit(names, labels)
    front = model.pareto_front_
    assert 1 in front["number"].tolist() and not front.loc[front["number"] == 1, "chosen"].any()
    assert front["chosen"].sum() == (model.best_trial_ in front["number"].tolist())
    chosen = model.fit_summary()["pareto"]["chosen"]
    kept = model.leaderboard_.set_index("number").loc[model.best_trial_]
    assert chosen == {"trial": model.best_trial_, "score": kept["score"], "n_params": float(kept["n_params"])}


def test_a_resumed_study_retrains_the_ensembles_members_of_the_earlier_run(rows, tmp_path):
    """Run again on a finished study, fit retrains the models the ensemble chooses from, which the
    earlier process trained: the ensemble had kept only the best trial's (and the linear model's),
    the others left out without a word. With no time to retrain one, a warning names it."""
    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    # (random draws: TPE's draws differ between Optuna versions, and under 4.3 the ensemble kept one model)
    # (a holdout of 12 rows: one of fewer than 10, MIN_SELECTION_ROWS, weighs no ensemble)
    params = dict(TINY, storage=journal, study_name="again", n_trials=6, ensemble_size=3, max_epochs=3,
                  sampler="random", search_space={"linear_model": False, "neighbors_model": False}, holdout_frac=0.2)
    first = AutoMM(**params).fit(names, labels)
    members = sorted({m.trial for m in first.ensemble_.members})
    assert len(members) > 1
    again = AutoMM(**params).fit(names, labels)  # n_trials reached: no new trial, every model retrained
    assert sorted({m.trial for m in again.ensemble_.members}) == members
    study = optuna.load_study(study_name="again", storage=search.make_storage("journal", journal))
    best = study.trials[again.best_trial_].user_attrs
    study.add_trial(optuna.trial.create_trial(value=best["automm:score"], user_attrs={  # second best, elsewhere
        **{k: best[k] for k in ("automm:score", "automm:config", "automm:rows") if k in best},
        "automm:loss": best["automm:loss"] + 1e-6, "automm:seconds": 1e6, "automm:worker": "elsewhere:17"}))
    with pytest.warns(UserWarning, match=r"trial 6 \(among the best\) ran in another process.*no time to retrain "
                                         r"it: the ensemble is chosen without it"):
        AutoMM(**{**params, "n_trials": 7, "time_limit": 60}).fit(names, labels)


# ------------------------------------------------------------------------------- serving

PREPARED_IN: list = []


class CachedCount(WordCount):
    """A frozen encoder whose one-off work is recorded: the cache folder it was given."""

    frozen = True

    def prepare(self, values, *, cache_dir=None):
        PREPARED_IN.append(None if cache_dir is None else str(cache_dir))


class CachedCountPlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("cached_count", CachedCount, modality="text", output_dim=lambda hp: hp["output_dim"],
                 defaults={"output_dim": 4})


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_predict_and_evaluate_take_the_serving_machines_cache_dir(command, rows, tmp_path, fresh_registry, capsys):
    fresh_registry(CachedCountPlugin())
    model = tmp_path / "model"
    AutoMM(encoders={"text": "cached_count"}, max_epochs=1, num_workers=0, random_state=0,
           cache_dir=str(tmp_path / "training-cache")).fit(rows[["name"]], rows["category"]).save(model)
    rows[["name", "category"]].to_csv(tmp_path / "new.csv", index=False)
    extra = ["--label", "category"] if command == "evaluate" else []
    PREPARED_IN.clear()
    code = main([command, str(model), str(tmp_path / "new.csv"), *extra, "--cache-dir", str(tmp_path / "serving")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert PREPARED_IN and set(PREPARED_IN) == {str(tmp_path / "serving")}
    (tmp_path / "a-file").write_text("")
    assert main([command, str(model), str(tmp_path / "new.csv"), *extra, "--cache-dir", str(tmp_path / "a-file")]) == 2
    assert "--cache-dir: " in capsys.readouterr().err


# ------------------------------------------------------------------------------- lost workers, leaderboard

POSTGRES_URL = os.environ.get("AUTOMM_TEST_POSTGRES_URL", "postgresql://automm:automm@127.0.0.1:5432/automm")


def _postgres_or_skip() -> str:
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 is not installed (pip install automm[test])")
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(search.parse_storage(POSTGRES_URL)[1], connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no PostgreSQL server at {POSTGRES_URL.rsplit('@', 1)[-1]} ({type(exc).__name__}); "
                    ".ci/services starts one")
    return POSTGRES_URL


def test_on_postgresql_a_killed_workers_trial_on_this_machine_is_retried_at_once(rows, tmp_path):
    """As with a journal: not after Optuna's 60 s heartbeat grace, which a search shorter than
    that never reaches (the trial stayed RUNNING in the leaderboard)."""
    import socket
    import subprocess
    import sys

    url = _postgres_or_skip()
    name = f"automm-lost-{uuid.uuid4().hex[:10]}"
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    params = dict(TINY, storage=url, study_name=name)
    AutoMM(**params, n_trials=1).fit(names, labels)
    storage = search.make_storage(*search.parse_storage(url))
    try:
        ended = subprocess.Popen([sys.executable, "-c", "pass"])
        ended.wait()
        lost = optuna.load_study(study_name=name, storage=storage).ask()  # the killed worker's trial
        lost.set_user_attr("automm:worker", f"{socket.gethostname()}:{ended.pid}")
        lost.set_user_attr("automm:process_space", search._process_space())
        board = AutoMM(**params, n_trials=3).fit(names, labels).leaderboard_.set_index("number")
        reason = board.loc[lost.number, "reason"]
        assert board.loc[lost.number, "state"] == "FAIL" and "its process on this machine has ended" in reason
        assert "retried as trial" in reason
    finally:
        optuna.delete_study(study_name=name, storage=storage)


@pytest.mark.parametrize("source", ["journal", "sqlite"])
def test_a_study_copied_into_a_database_with_a_running_trial_retrains_it(source, rows, tmp_path, monkeypatch):
    """optuna.copy_study copies no Optuna heartbeat: a trial running when the study was copied (its
    fit killed on another machine) stayed RUNNING in the database copy for good, counted towards
    n_trials and never trained again. automm's own heartbeat, which the copy keeps, finds it lost
    once the fit has seen it unchanged for the grace (here 0.1 s: about a trial's time)."""
    import datetime
    import time

    names, labels = rows["name"].tolist(), rows["category"].tolist()
    origin = str(tmp_path / "study.log") if source == "journal" else f"sqlite:///{tmp_path / 'study.db'}"
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    params = dict(TINY, study_name="moved")
    AutoMM(**params, storage=origin, n_trials=1).fit(names, labels)
    study = optuna.load_study(study_name="moved", storage=search.make_storage(*search.parse_storage(origin)))
    # (a database's trials carry automm's heartbeat too, beside Optuna's, which a copy loses)
    assert "automm:heartbeat" in study.trials[0].system_attrs
    search.register_fit(study, "elsewhere:1/0", "running", n_trials=2)  # the fit killed on the other machine
    started = datetime.datetime.now() - datetime.timedelta(hours=1)
    study.add_trial(optuna.trial.FrozenTrial(
        number=1, state=optuna.trial.TrialState.RUNNING, value=None, datetime_start=started, datetime_complete=None,
        params={}, distributions={}, user_attrs={"automm:worker": "elsewhere:1", "automm:process_space": "elsewhere"},
        system_attrs={"automm:heartbeat": time.time() - 3600}, intermediate_values={}, trial_id=0))
    optuna.copy_study(from_study_name="moved", from_storage=study._storage, to_storage=copy)

    monkeypatch.setenv("AUTOMM_HEARTBEAT_INTERVAL", "0.05")
    monkeypatch.setenv("AUTOMM_HEARTBEAT_GRACE", "0.1")
    board = AutoMM(**params, storage=copy, n_trials=4).fit(names, labels).leaderboard_.set_index("number")
    assert board.loc[1, "state"] == "FAIL", board[["state", "reason"]]
    assert board.loc[1, "reason"].startswith("worker lost: no heartbeat for") and "retried as trial" in board.loc[1, "reason"]
    assert (board["state"] == "COMPLETE").sum() == 4  # the first trial, the retry and two more


def _running_trial(storage, started_ago: float):
    """A study of one trial running on another machine, started ``started_ago`` seconds ago."""
    import datetime

    study = optuna.create_study(study_name="elsewhere", storage=storage)
    started = datetime.datetime.now() - datetime.timedelta(seconds=started_ago)
    study.add_trial(optuna.trial.FrozenTrial(
        number=0, state=optuna.trial.TrialState.RUNNING, value=None, datetime_start=started, datetime_complete=None,
        params={}, distributions={}, user_attrs={"automm:worker": "elsewhere:1", "automm:process_space": "elsewhere"},
        system_attrs={}, intermediate_values={}, trial_id=0))
    return study, study.trials[0]._trial_id


def test_on_a_database_a_running_trial_of_a_machine_whose_clock_is_behind_is_not_lost(tmp_path, monkeypatch):
    """A worker machine's clock 90 s behind the fit's: its trial, beating every interval, was declared lost
    ("no heartbeat for 90 s") at the fit's first look, and again each retry, where Optuna's heartbeats, in
    the database's time, kept it. One that stops beating is still lost, after the grace seen here."""
    import time

    monkeypatch.setenv("AUTOMM_HEARTBEAT_INTERVAL", "0.1")
    monkeypatch.setenv("AUTOMM_HEARTBEAT_GRACE", "0.3")
    storage = search.make_storage("rdb", f"sqlite:///{tmp_path / 'study.db'}")
    study, trial_id = _running_trial(storage, started_ago=600)
    for _ in range(6):  # the worker beats by its clock, and the fit looks, 0.6 s in all: twice the grace
        storage.set_trial_system_attr(trial_id, "automm:heartbeat", time.time() - 90)
        search._fail_lost_trials(study, storage, heartbeats=False)
        assert storage.get_trial(trial_id).state == optuna.trial.TrialState.RUNNING
        time.sleep(0.1)
    for _ in range(4):  # it stops
        search._fail_lost_trials(study, storage, heartbeats=False)
        time.sleep(0.1)
    assert storage.get_trial(trial_id).state == optuna.trial.TrialState.FAIL
    assert storage.get_trial(trial_id).user_attrs["automm:reason"].startswith("worker lost: no heartbeat for")


def test_a_heartbeat_goes_on_after_a_write_that_failed(tmp_path):
    """One heartbeat write the storage failed (SQLite's "database is locked", a database failing over)
    ended the heartbeats of a trial that went on training, which the others then declared lost."""
    import time

    storage = search.make_storage("rdb", f"sqlite:///{tmp_path / 'study.db'}")
    _, trial_id = _running_trial(storage, started_ago=0)
    write, tried = storage.set_trial_system_attr, []

    def flaky(*args):
        tried.append(args)
        if len(tried) == 2:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit")
        return write(*args)

    storage.set_trial_system_attr = flaky
    with search._Heartbeat(storage, trial_id, 0.02):  # until 6 writes are tried (a loaded machine's 0.3 s: 4 or 5)
        deadline = time.monotonic() + 30
        while len(tried) <= 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(tried) > 5
    storage.set_trial_system_attr = write
    storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    with search._Heartbeat(storage, trial_id, 0.02) as heartbeat:  # a finished trial's heartbeat stops
        heartbeat.thread.join(timeout=2)
        assert not heartbeat.thread.is_alive()


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_study_deleted_while_its_fit_runs_is_named(kind, rows, tmp_path, monkeypatch):
    # (it was Optuna's bare KeyError 'Record does not exist.', from deep inside the trial loop)
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    storage = str(tmp_path / "study.log") if kind == "journal" else f"sqlite:///{tmp_path / 'study.db'}"
    train = search._train

    def deleted_meanwhile(ctx, *args, **kwargs):  # someone runs `optuna delete-study` during the first trial
        optuna.delete_study(study_name=ctx.study_name, storage=ctx.storage)
        return train(ctx, *args, **kwargs)

    monkeypatch.setattr(search, "_train", deleted_meanwhile)
    with pytest.raises(automm.SearchError, match=re.escape("study 'gone ü' was deleted from its storage while this "
                                                           "fit ran its trials (optuna.delete_study?)")):
        AutoMM(**TINY, storage=storage, study_name="gone ü", n_trials=2).fit(names, labels)


def test_a_trial_the_storage_failed_says_its_worker_was_lost():
    from automm.leaderboard import leaderboard_frame

    failed = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL)  # Optuna's heartbeat: no reason of ours
    assert leaderboard_frame([failed]).loc[0, "reason"] == ("failed with no reason recorded (its worker was probably "
                                                          "lost: no heartbeat)")


def test_the_printed_leaderboard_of_two_objectives_shows_the_second():
    import pandas as pd

    from automm.cli import _leaderboard_table, _pareto_line

    frame = pd.DataFrame({"number": [0], "state": ["COMPLETE"], "score": [0.5], "latency_ms": [0.25], "reason": [""]})
    assert "latency_ms" in _leaderboard_table(frame).splitlines()[0]
    line = _pareto_line({"objectives": ["score", "latency_ms"], "size": 1,
                         "chosen": {"trial": 0, "score": 0.5, "latency_ms": 0.25}})
    assert line.startswith("1 trial on the front")


def test_the_printed_parameter_count_stays_an_integer_beside_a_trial_without_one():
    import pandas as pd

    from automm.cli import _leaderboard_table

    # a failed or running trial has no count: pandas then holds the column as floats
    frame = pd.DataFrame({"number": [0, 1], "state": ["COMPLETE", "FAIL"], "score": [0.5, None],
                          "n_params": [1234567, None], "reason": ["", "boom"]})
    assert frame["n_params"].dtype == float
    table = _leaderboard_table(frame)
    assert "COMPLETE  0.5000  1234567\n" in table and "1234567.0" not in table


def test_a_journal_or_sqlite_path_expands_the_home_folder(tmp_path, monkeypatch):
    from automm.storage import parse_storage

    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_storage("~/study.log") == ("journal", str(tmp_path / "study.log"))
    assert parse_storage("journal://~/study.log") == ("journal", str(tmp_path / "study.log"))
    assert parse_storage("~/study.db") == ("rdb", f"sqlite:///{tmp_path / 'study.db'}")


def test_a_storage_path_with_spaces_or_percent_signs_is_the_file_opened_and_the_one_workers_wait_for(tmp_path):
    """sqlite:///my%20studies/s.db opened 'my studies/s.db' (SQLAlchemy decodes it) while a worker
    waited for 'my%20studies/s.db' and gave up: does not exist; journal:///my%20studies/s.log made a
    folder 'my%20studies'; a bare path 'a?b.db' opened 'a'."""
    from automm.storage import make_storage, parse_storage, storage_file, wait_for_storage_file

    folder = tmp_path / "my studies"
    folder.mkdir()
    for storage, name in ((f"sqlite:///{tmp_path}/my%20studies/s.db", "s.db"),
                          (f"journal://{tmp_path}/my%20studies/s.log", "s.log"),
                          (str(folder / "100%25 a?b.db"), "100%25 a?b.db")):
        ref = parse_storage(storage)
        assert storage_file(*ref) == str(folder / name)
        optuna.create_study(study_name="s", storage=make_storage(*ref))
        wait_for_storage_file(*ref, 0)  # the worker finds the file the fit made
    assert sorted(os.listdir(folder)) == ["100%25 a?b.db", "s.db", "s.log"]
    assert sorted(os.listdir(tmp_path)) == ["my studies"]


def test_a_worker_waits_for_the_storage_file_and_never_creates_a_misspelt_one(tmp_path):
    import threading
    import time

    from automm.storage import StorageNotFoundError, wait_for_storage_file

    missing = tmp_path / "typo.log"
    with pytest.raises(StorageNotFoundError, match="does not exist"):
        wait_for_storage_file("journal", str(missing), 0.2)
    assert not missing.exists()
    later = tmp_path / "study.log"
    timer = threading.Timer(0.3, later.write_text, args=("",))
    timer.start()
    start = time.monotonic()
    wait_for_storage_file("journal", str(later), 10)  # made by the fit meanwhile
    assert later.exists() and 0.25 <= time.monotonic() - start < 5
    timer.join()


def test_other_sample_weights_are_another_studys_data():
    from automm.pipeline import PreparedData
    from automm.study import data_fingerprint

    def data(weights):
        return PreparedData(inputs=[], values={}, targets=np.array([0, 1, 0, 1]), problem_type="binary", n_outputs=2,
                            train_index=np.arange(3), valid_index=np.arange(3, 4), seed=0, device=torch.device("cpu"),
                            num_workers=0, sample_weights=None if weights is None else np.asarray(weights, np.float32))

    fingerprints = {data_fingerprint(data(w)) for w in (None, [1, 1, 1, 1], [1, 2, 1, 1])}
    assert len(fingerprints) == 3
    assert data_fingerprint(data([1, 2, 1, 1])) == data_fingerprint(data([1, 2, 1, 1]))


def test_a_storage_password_is_hidden_in_the_estimators_repr():
    from automm import AutoMM

    text = repr(AutoMM(storage="postgresql://user:s3cret@db.example/automm", study_name="s"))
    assert "s3cret" not in text and "***" in text
    assert "journal" in repr(AutoMM(storage="journal:///tmp/x.log"))
    # a notebook shows the HTML display, saved into the .ipynb; a Pipeline's diagram shows it too
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline

    model = AutoMM(storage="postgresql://user:s3cret@db.example/automm", study_name="s")
    assert "s3cret" not in model._repr_html_() and "user:***@db.example" in model._repr_html_()
    # (a Pipeline's diagram shows its steps' parameter tables so; its text fallback prints
    # get_params(), which must stay whole for clone: the README says to keep the password out of the URL)
    diagram = make_pipeline(model)._repr_html_()
    assert "user:***@db.example" in diagram and "&#x27;postgresql://user:***@db.example/automm&#x27;" in diagram
    assert clone(model).storage == "postgresql://user:s3cret@db.example/automm"  # the parameter itself is whole


def test_the_html_display_hides_a_storage_password_under_scikit_learn_1_7_too(monkeypatch):
    """scikit-learn 1.7 (the floor) takes and passes ``deep`` alone to ``_get_params_html``, but
    automm's override passed 1.8's ``doc_link`` on: each HTML display of an ``AutoMM`` with a
    storage (a notebook cell's) raised "TypeError: BaseEstimator._get_params_html() takes from 1
    to 2 positional arguments but 3 were given"."""
    from sklearn.base import BaseEstimator

    newer = BaseEstimator._get_params_html
    monkeypatch.setattr(BaseEstimator, "_get_params_html", lambda self, deep=True: newer(self, deep))
    model = AutoMM(storage="postgresql://user:s3cret@db.example/automm", study_name="s")
    for params in (model._get_params_html(), model._get_params_html(deep=False)):  # (as 1.7's display calls it)
        assert params["storage"] == "postgresql://user:***@db.example/automm"


def test_a_worker_takes_its_storage_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOMM_STORAGE", f"journal:///{tmp_path}/missing.log")
    from automm.cli import build_parser

    args = build_parser().parse_args(["worker", "--study", "s"])
    assert args.storage == f"journal:///{tmp_path}/missing.log"


def test_processes_opening_a_new_database_at_once_all_open_it(monkeypatch):
    """A fit and its workers started together on a new database race to create Optuna's tables:
    the one that loses the race opens the tables the other made, not 'cannot open the database'."""
    calls = []
    real = optuna.storages.RDBStorage

    class Racing(Exception):
        orig = 'duplicate key value violates unique constraint "pg_type_typname_nsp_index"'

    Racing.__name__ = "IntegrityError"

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise Racing()
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    opened = automm_storage.make_storage("rdb", "sqlite:///:memory:")
    assert len(calls) == 2 and opened is not None


@pytest.mark.filterwarnings("ignore")  # (Optuna 4.9 and later: the old names are deprecated)
def test_optuna_before_4_9_retries_lost_trials_under_the_callbacks_old_name(monkeypatch):
    """Optuna 4.3-4.8 name the retry callback RetryFailedTrialCallback (4.9 renamed it
    RetryHeartbeatStaleTrialCallback, 6 removes the old name): a database storage opens, and a
    failed trial is queued again, under either name."""
    callback = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    monkeypatch.delattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", raising=False)
    monkeypatch.setattr(optuna.storages, "RetryFailedTrialCallback", callback, raising=False)
    opened = automm_storage.make_storage("rdb", "sqlite:///:memory:")
    study = optuna.create_study(storage=opened)
    trial = study.ask()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    automm_storage.retry_callback()(study, study.trials[0])
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]


def test_a_worker_of_another_automm_version_refuses_before_any_trial(rows, tmp_path, monkeypatch):
    journal = str(tmp_path / "study.log")
    AutoMM(**TINY, n_trials=1, storage=journal, study_name="version").fit(rows["name"].tolist(),
                                                                           rows["category"].tolist())
    before = len(_trials(journal, "version"))
    monkeypatch.setattr(automm, "__version__", "999.0")
    with pytest.raises(InputError, match=r"created with automm .* \(here 999\.0\)"):
        run_worker(journal, "version", wait=0)
    assert len(_trials(journal, "version")) == before


def test_a_worker_or_fit_of_other_automm_code_under_the_same_version_is_warned_about(rows, tmp_path, monkeypatch):
    """automm's version is 0.1.0 at every commit: a worker (or a fit resuming the study) running other
    code joined the study without a word, its trials ranked with the others as one search."""
    from automm import study as study_module

    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    AutoMM(**TINY, n_trials=1, storage=journal, study_name="code").fit(names, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error", automm.AutoMMWarning)  # the same code: nothing said
        assert run_worker(journal, "code", wait=0) == 0
    monkeypatch.setattr(study_module, "code_digest", lambda module: "another commit", raising=False)
    message = (r"study 'code' was created with other code of automm 0\.1\.0 \(the same version, other source files: "
               r"another commit or an edited install\): the trials run here may be trained otherwise")
    with pytest.warns(automm.AutoMMWarning, match=message):
        run_worker(journal, "code", wait=0)
    with pytest.warns(automm.AutoMMWarning, match=message):
        AutoMM(**TINY, n_trials=2, storage=journal, study_name="code").fit(names, labels)
    # a plugin package of the same version but other code, likewise
    spec = {"automm_version": automm.__version__, "automm_code": "another commit", "space": {"fusion": {"lowrank": {}}},
            "components": [{"kind": "fusion", "name": "lowrank", "package": "automm-lowrank 0.2.0", "code": "old"}]}
    registered = type("Spec", (), {"package": "automm-lowrank 0.2.0"})()
    monkeypatch.setattr(automm.registry.get_registry(), "get", lambda kind, name: registered)
    monkeypatch.setattr(study_module, "_plugin_code", lambda spec: "new", raising=False)
    with pytest.warns(automm.AutoMMWarning, match=r"created with other code of automm-lowrank 0\.2\.0 \(the same version"):
        study_module.check_components(spec, "plugin")


def test_code_with_no_source_here_is_not_called_other_code(monkeypatch):
    """Where automm (or a plugin) has no .py source here (a compiled or zipped install: no digest),
    every worker and resumed fit was warned of "other code", which nothing had shown; only two
    known digests that differ are."""
    from automm import study as study_module

    spec = {"automm_version": automm.__version__, "automm_code": "abc", "space": {"fusion": {"lowrank": {}}},
            "components": [{"kind": "fusion", "name": "lowrank", "package": "automm-lowrank 0.2.0", "code": "old"}]}
    registered = type("Spec", (), {"package": "automm-lowrank 0.2.0"})()
    monkeypatch.setattr(automm.registry.get_registry(), "get", lambda kind, name: registered)
    monkeypatch.setattr(study_module, "code_digest", lambda module: None)
    monkeypatch.setattr(study_module, "_plugin_code", lambda spec: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        study_module.check_components(spec, "s")
    monkeypatch.setattr(study_module, "code_digest", lambda module: "abd")
    monkeypatch.setattr(study_module, "_plugin_code", lambda spec: "new")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (nor does a study that recorded none)
        study_module.check_components({**spec, "automm_code": None, "components": [
            {**spec["components"][0], "code": None}]}, "s")
    both = rf"other code of automm {re.escape(automm.__version__)}, automm-lowrank 0\.2\.0 \(the same version"
    with pytest.warns(automm.AutoMMWarning, match=both):
        study_module.check_components(spec, "s")


def test_a_fit_of_another_automm_version_or_lacking_a_plugin_is_refused_as_a_worker_is(rows, tmp_path, monkeypatch,
                                                                                        fresh_registry):
    """The same fit run again (or on a second machine) with a newer automm mixed its trials into
    the study that refuses its workers; one lacking a plugin of the study was told only that the
    encoder choices differ, and to choose another study_name."""
    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    fresh_registry(WordCountPlugin())
    params = dict(TINY, encoders={"text": ["hashed_ngram", "word_count"]}, storage=journal, study_name="upgrade")
    AutoMM(**params, n_trials=1).fit(names, labels)
    with monkeypatch.context() as patched:
        patched.setattr(automm, "__version__", "999.0")
        with pytest.raises(InputError, match=r"study_name: study 'upgrade' was created with automm .* \(here 999\.0\)"):
            AutoMM(**params, n_trials=2).fit(names, labels)
    fresh_registry()  # this machine lacks the plugin: its default space would be another search
    with pytest.raises(InputError, match=r"study_name: study 'upgrade' searches over encoder 'word_count' \(plugin "
                                         r"'.*WordCountPlugin.*'\), which this process lacks"):
        AutoMM(**dict(params, encoders=None), n_trials=2).fit(names, labels)
    assert len(_trials(journal, "upgrade")) == 1


def test_a_fits_summary_counts_as_its_own_only_the_trials_it_ran(rows, tmp_path, monkeypatch, capsys):
    """A worker's trial started while the fit ran was counted as the fit's ("9 trials, 8 of them by
    this fit" from a fit that ran 5 beside another fit)."""
    journal = str(tmp_path / "study.log")
    register = search.register_fit

    def with_a_workers_trial(study, tag, status, *args, **kwargs):
        register(study, tag, status, *args, **kwargs)
        if status == "running":  # another worker's trial, started after this fit began
            study.add_trial(optuna.trial.create_trial(value=0.1, user_attrs={
                "automm:score": 0.1, "automm:config": {}, "automm:worker": "elsewhere:17"}))

    monkeypatch.setattr(search, "register_fit", with_a_workers_trial)
    AutoMM(**TINY, n_trials=3, storage=journal, study_name="count", verbose=1).fit(rows["name"].tolist(),
                                                                                   rows["category"].tolist())
    last = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[automm] search done")][-1]
    assert re.match(r"\[automm\] search done: 3 trials \(3 finished\) in \d+ s, 2 of them by this fit;", last), last


def test_a_fit_waits_for_the_trials_other_processes_are_running(rows, tmp_path):
    """n_trials counts the trials other processes run: the model is chosen once they have finished."""
    import threading
    import time

    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    params = dict(TINY, storage=journal, study_name="wait")
    AutoMM(**params, n_trials=1).fit(names, labels)
    study = optuna.load_study(study_name="wait", storage=search.make_storage("journal", journal))
    other = study.ask()  # a worker's trial, still running
    other.set_user_attr("automm:worker", "elsewhere:17")
    finished = threading.Timer(3.0, lambda: study.tell(other, 0.5))
    finished.start()
    start = time.monotonic()
    board = AutoMM(**params, n_trials=2).fit(names, labels).leaderboard_.set_index("number")
    assert time.monotonic() - start >= 2.5
    assert board.loc[other.number, "state"] == "COMPLETE"


def test_a_worker_started_before_a_resuming_fit_waits_for_it_and_says_why_it_stops(rows, tmp_path, caplog):
    """A study whose fits have all finished: the worker waits ``wait`` seconds for the fit that
    resumes it (it ended at once with 0 trials and no reason), then says what it waited for."""
    import logging
    import time

    journal = str(tmp_path / "study.log")
    AutoMM(**TINY, n_trials=1, storage=journal, study_name="done").fit(rows["name"].tolist(),
                                                                        rows["category"].tolist())
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="automm.worker"):
        assert run_worker(journal, "done", wait=2) == 0
    assert time.monotonic() - start >= 2
    assert "no fit is running it" in caplog.text and "run the fit again to resume the study" in caplog.text


def test_a_shared_fit_names_its_study_while_workers_can_still_join(rows, tmp_path, capsys):
    """The study's name (``automm-<fingerprint>`` unless given) was only printed when the fit ended."""
    journal = str(tmp_path / "my study.log")
    AutoMM(**dict(TINY, verbose=1), n_trials=1, storage=journal).fit(rows["name"].tolist(), rows["category"].tolist())
    err = capsys.readouterr().err
    started = err.index("more processes join it with: automm worker --storage")
    assert "<this fit's storage> --study automm-" in err[started:] and started < err.index("search done")
    assert journal not in err[started:err.index("search done")]  # (a recipe may hide it behind ${NAME})


def test_a_journal_url_with_a_windows_drive_names_the_drive(tmp_path):
    """journal:///C:/Users/me/study.log was read whole on Windows, as \\C:\\Users\\me\\study.log: no valid path."""
    import ntpath

    assert automm_storage._journal_file("/C:/Users/me/study.log", ntpath) == "C:\\Users\\me\\study.log"
    assert automm_storage._journal_file("/c:\\study one.log", ntpath) == "c:\\study one.log"
    assert automm_storage._journal_file("//server/share/study.log", ntpath) == "\\\\server\\share\\study.log"
    path = tmp_path / "Mes modèles ü" / "study.log"  # POSIX: the path as written
    assert automm_storage.parse_storage(f"journal://{path}") == ("journal", str(path))
    assert automm_storage._journal_file("/C:/study.log") == "/C:/study.log"


def test_a_study_begun_before_a_plugin_was_installed_says_so_not_another_automm(rows, tmp_path, fresh_registry):
    """A study created with the built-in components only, resumed with the same data and settings
    by the same automm once a plugin adding a default choice was installed, was refused as "created
    by another automm version ... finish it with the automm that created it": the plugin is named."""
    journal = str(tmp_path / "study.log")
    names, labels = rows["name"].tolist(), rows["category"].tolist()
    params = {k: v for k, v in TINY.items() if k != "encoders"}  # the default choices: every text encoder
    fresh_registry()
    AutoMM(**params, n_trials=1, storage=journal, study_name="before").fit(names, labels)
    fresh_registry(WordCountPlugin())
    with pytest.raises(InputError, match=r"study_name: study 'before' was created without encoder 'word_count' "
                                         r"\(plugin '.*WordCountPlugin.*'\), which this process's plugins add to its "
                                         r"search space \(its encoder choices for text_0 are .*; here .*'word_count'.*"
                                         r"\): finish it with the plugins it was created with"):
        AutoMM(**params, n_trials=2, storage=journal, study_name="before").fit(names, labels)
    assert [t.state.name for t in _trials(journal, "before")].count("COMPLETE") == 1  # no trial ran
