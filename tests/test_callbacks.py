"""Training callbacks given to the estimator (``AutoMM(callbacks=[...])``): when they are called, what
stopping from one keeps, how one that raises is named, and where they go (clones, searches, bags,
saved models, recipes)."""

import pytest
import torch
from sklearn.base import clone

import automm
from automm import AutoMM, InputError, SearchError
from automm.recipes import RecipeError
from automm.training import Callback
from helpers import tiny


class Recorder(Callback):
    def __init__(self):
        self.events, self.rates = [], []

    def on_train_begin(self, trainer):
        self.events.append("begin")

    def on_epoch_begin(self, trainer, epoch):
        self.events.append(f"epoch{epoch}")

    def on_batch_end(self, trainer, loss):
        if self.events[-1] != "batch":
            self.events.append("batch")

    def on_epoch_end(self, trainer, record):
        self.events.append(f"end{record['epoch']}")
        self.rates.append(trainer.current_learning_rate())

    def on_train_end(self, trainer):
        self.events.append("finish")


class StopAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, record):
        if record["epoch"] >= self.epoch:
            trainer.should_stop = True  # (no stop_reason: automm names the callback)


def _texts(emoji_split, rows=120):
    train, _ = emoji_split
    return train[["name"]].head(rows), train["category"].head(rows)


def test_the_estimators_callbacks_are_called_in_order_and_stop_training_at_the_best_epoch(emoji_split):
    """AutoMM took no callbacks (a TypeError): only a subclass overriding the private
    _extra_callbacks could extend training. A callback that stopped training without naming a
    reason left stop_reason_ saying "max_epochs reached" after 2 of 5 epochs."""
    assert automm.Callback is Callback  # (public: automm.Callback)
    X, y = _texts(emoji_split)
    recorder = Recorder()
    model = AutoMM(**tiny(max_epochs=5, callbacks=[recorder, StopAt(2)])).fit(X, y)
    assert recorder.events == ["begin", "epoch1", "batch", "end1", "epoch2", "batch", "end2", "finish"]
    assert recorder.rates == [record["lr"] for record in model.history_]
    assert len(model.history_) == 2 and model.stop_reason_ == "stopped by callback StopAt.on_epoch_end"
    assert model.history_[model.best_epoch_ - 1]["best"]
    assert model.fit_summary()["stop_reason"] == model.stop_reason_


@pytest.mark.parametrize("callbacks, message", [
    (Recorder(), r"callbacks: expected a list of automm.Callback instances, got one: pass \[Recorder\(...\)\]"),
    ([Recorder], r"callbacks\[0\]: Recorder is a class; pass an instance, Recorder\(\)"),
    ([Recorder(), object()], r"callbacks\[1\]: expected an automm.Callback instance, got <object object"),
    ("Recorder", r"callbacks: expected a list of automm.Callback instances or None, got 'Recorder'"),
])
def test_callbacks_that_are_not_a_list_of_callback_instances_are_refused_before_any_work(callbacks, message):
    with pytest.raises(InputError, match=message):
        AutoMM(callbacks=callbacks).fit(["a b c", "d e f"] * 10, ["x", "y"] * 10)


def test_a_method_named_like_a_hook_that_is_never_called_is_warned_about(emoji_split):
    class Misspelt(Callback):
        def on_epoch_ended(self, trainer, record): ...

    X, y = _texts(emoji_split, 60)
    with pytest.warns(UserWarning, match=r"callbacks\[0\]: Misspelt.on_epoch_ended is never called: the training "
                                         r"calls on_train_begin, .*; did you mean 'on_epoch_end'\?"):
        AutoMM(**tiny(max_epochs=1, callbacks=[Misspelt()])).fit(X, y)


def test_the_check_for_misnamed_hooks_runs_no_property_and_sees_static_and_class_methods(emoji_split):
    """The check read every on_* attribute: a property that raises before training (on_gpu) made
    fit raise its RuntimeError where at most a warning was meant."""
    class Flags(Callback):
        @property
        def on_gpu(self):
            raise RuntimeError("no trainer yet")

        @staticmethod
        def on_epoch_ended(trainer, record): ...

        @classmethod
        def on_fold_end(cls, trainer): ...

    X, y = _texts(emoji_split, 60)
    with pytest.warns(UserWarning) as caught:
        AutoMM(**tiny(max_epochs=1, callbacks=[Flags()])).fit(X, y)
    never = sorted(str(w.message).split(":")[1].strip() for w in caught if "is never called" in str(w.message))
    assert never == ["Flags.on_epoch_ended is never called", "Flags.on_fold_end is never called"]


def test_every_fold_of_a_bag_calls_the_callbacks(emoji_split):
    X, y = _texts(emoji_split)
    recorder = Recorder()
    AutoMM(**tiny(max_epochs=1, bag_folds=3, callbacks=[recorder])).fit(X, y)
    assert recorder.events.count("begin") == recorder.events.count("finish") == 3


class FailsInRun(Callback):
    def __init__(self, run):
        self.run, self.runs = run, 0

    def on_train_begin(self, trainer):
        self.runs += 1

    def on_epoch_end(self, trainer, record):
        if self.runs == self.run:
            raise ValueError("disk full")


def test_a_search_calls_the_callbacks_in_every_trial_and_a_trial_whose_callback_raised_fails_naming_it(
        emoji_split, builtin_only):
    """The trial's reason was "ValueError: disk full": neither the callback nor its hook was named."""
    X, y = _texts(emoji_split)
    failing = FailsInRun(2)
    model = AutoMM(**tiny(max_epochs=1, n_trials=3, ensemble_size=1, callbacks=[failing],
                          search_space={"linear_model": False})).fit(X, y)
    assert failing.runs == 3
    board = model.leaderboard_
    assert list(board["state"]).count("FAIL") == 1
    assert board.loc[board["state"] == "FAIL", "reason"].item() == (
        "callback FailsInRun.on_epoch_end raised ValueError: disk full")
    with pytest.raises(SearchError, match=r"callback FailsInRun.on_epoch_end raised ValueError: disk full"):
        AutoMM(**tiny(max_epochs=1, n_trials=2, callbacks=[FailsInRun(1), FailsInRun(2)],
                      search_space={"linear_model": False})).fit(X, y)


def test_a_fit_whose_callback_raised_raises_its_own_exception_naming_the_callback(emoji_split):
    X, y = _texts(emoji_split, 60)
    with pytest.raises(ValueError, match="disk full") as raised:
        AutoMM(**tiny(max_epochs=2, callbacks=[FailsInRun(1)])).fit(X, y)
    if hasattr(raised.value, "__notes__"):  # Python 3.11+
        assert raised.value.__notes__ == ["(raised by the training callback FailsInRun.on_epoch_end)"]


class AddsToTheRecord(Callback):
    def on_epoch_end(self, trainer, record):
        record["weight_norm"] = torch.linalg.vector_norm(next(trainer.model.parameters()).detach())


def test_callbacks_are_cloned_not_saved_nor_written_to_a_recipe_and_a_record_they_spoil_is_named(
        emoji_split, tmp_path):
    recorder = Recorder()
    model = AutoMM(**tiny(max_epochs=1, callbacks=[recorder, AddsToTheRecord()]))
    copied = clone(model).callbacks
    assert type(copied[0]) is Recorder and copied[0] is not recorder  # GridSearchCV's fits get copies
    with pytest.raises(RecipeError, match=r"callbacks: callbacks are Python objects, which a recipe cannot hold"):
        model.to_recipe()
    X, y = _texts(emoji_split, 60)
    model.fit(X, y)
    assert set(model.history_[0]) > {"epoch", "valid_loss", "weight_norm"}
    with pytest.raises(TypeError, match=r"history_\[0\]\['weight_norm'\] \(epoch 1\) is a Tensor, which automm.json "
                                        r"cannot store; a callback that adds to an epoch's record"):
        model.save(tmp_path / "model")
    assert not (tmp_path / "model").exists()
    for record in model.history_:
        record["weight_norm"] = float(record["weight_norm"])
    model.save(tmp_path / "model")
    loaded = AutoMM.load(tmp_path / "model")
    assert loaded.callbacks is None and loaded.history_ == model.history_


def test_an_error_in_automms_own_callback_is_not_named_as_a_users_callback():
    """The search's reporter writing to a storage that fails is automm's doing: its error carries no
    callback name, which the search would show as the user's callback having raised."""
    from automm.training import _name_callback, callback_origin

    class Reporter(Callback):
        pass

    class UsersCallback(Callback):
        pass

    Reporter.__module__ = "automm.search"
    own, users = OSError("database is locked"), ValueError("disk full")
    _name_callback(own, Reporter(), "on_epoch_end")
    _name_callback(users, UsersCallback(), "on_epoch_end")
    assert callback_origin(own) is None
    assert callback_origin(users) == "UsersCallback.on_epoch_end"


def test_a_callback_shows_its_class_and_settings_in_the_estimators_repr():
    """A notebook shows the estimator holding callbacks: they showed as
    `<__main__.Stopper object at 0x7f...>`, a memory address that differs between two equal models."""
    class Stopper(Callback):
        def __init__(self, patience, names):
            self.patience, self.names, self._seen = patience, names, []

    shown = repr(AutoMM(callbacks=[Stopper(3, ["a" * 100, "b", "c", "d", "e"])]))
    assert "Stopper(patience=3, names=['aaaa" in shown and "...]" in shown and "object at 0x" not in shown
    assert "_seen" not in shown and len(repr(Stopper(3, list(range(1000))))) < 80
    assert repr(Callback()) == "Callback()"


def test_a_worker_calls_the_callbacks_it_is_given_in_its_trials(emoji_split, tmp_path):
    """``run_worker`` took no callbacks: a worker's trials (``automm worker``, another machine's
    process) trained with none, while the fit's own trials called the fit's."""
    import optuna

    from automm import search
    from automm.worker import run_worker

    X, y = _texts(emoji_split, rows=60)
    journal = str(tmp_path / "study.log")
    AutoMM(**tiny(max_epochs=1, n_trials=1, ensemble_size=1, storage=journal, study_name="w",
                  search_space={"linear_model": False})).fit(X, y)
    study = optuna.load_study(study_name="w", storage=search.make_storage("journal", journal))
    search.register_fit(study, "elsewhere:1", "running", n_trials=2)  # (a fit still running on another machine)
    recorder = Recorder()
    assert run_worker(journal, "w", wait=5, device="cpu", callbacks=[recorder]) == 1
    assert recorder.events[0] == "begin" and "end1" in recorder.events and recorder.events[-1] == "finish"
    with pytest.raises(InputError, match=r"callbacks\[0\]: Recorder is a class; pass an instance"):
        run_worker(journal, "w", wait=0, callbacks=[Recorder])
