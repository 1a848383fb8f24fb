"""The training loop: callbacks, history, early stopping, deadline, device handling."""

import io
import math
import time

import numpy as np
import pytest
import torch
from torch import nn

import automm.training
from automm import AutoMM, InputError, create_encoder, create_fusion
from automm.data import BatchCollator, MultimodalDataset
from automm.model import MultimodalNet
from automm.training import Callback, ProgressBar, Trainer, TrainingConfig, make_loader, resolve_device
from helpers import VirtualClock, tiny


def _setup(n=64, seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    texts = [("red apple sweet" if y else "blue ocean deep") + f" {i}" for i, y in enumerate(labels)]
    encoder = create_encoder("hashed_ngram", n_buckets=1024, emb_dim=16, output_dim=16)
    encoder.fit(texts)
    encoders = {"text_0": encoder}
    model = MultimodalNet(encoders, create_fusion("concat", {"text_0": 16}, 2, proj_dim=16, hidden_dim=16), 2)
    dataset = MultimodalDataset({"text_0": texts}, encoders, labels.astype(np.int64))
    loader = make_loader(dataset, 16, True, 0, seed, BatchCollator(encoders))
    valid = make_loader(dataset, 32, False, 0, seed, BatchCollator(encoders))
    return model, loader, valid, labels


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, trainer):
        self.events.append("begin")

    def on_epoch_begin(self, trainer, epoch):
        self.events.append(f"epoch{epoch}")

    def on_batch_end(self, trainer, loss):
        self.events.append("batch")

    def on_epoch_end(self, trainer, record):
        self.events.append(f"end{record['epoch']}")

    def on_train_end(self, trainer):
        self.events.append("finish")


def test_callbacks_history_and_best_state():
    model, loader, valid, labels = _setup()
    recorder = Recorder()
    trainer = Trainer(model, TrainingConfig(max_epochs=3, problem_type="binary", learning_rate=5e-3),
                      torch.device("cpu"), [recorder])
    trainer.fit(loader, valid, labels)
    assert recorder.events[0] == "begin" and recorder.events[-1] == "finish"
    assert recorder.events.count("batch") == 3 * len(loader)
    assert [r["epoch"] for r in trainer.history] == [1, 2, 3]
    assert {"train_loss", "valid_loss", "valid_score", "lr", "seconds", "best"} <= set(trainer.history[0])
    settled = [r for r in trainer.history if r["settled"]] or trainer.history
    kept = min(settled, key=lambda r: r["valid_loss"])  # monitor="loss" by default
    assert (trainer.best_epoch, trainer.best_score) == (kept["epoch"], kept["valid_score"])
    assert trainer.best_score > 0.9


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_one_line_per_epoch_off_a_terminal_and_a_bar_on_one():
    # a bar's carriage returns pile up on one line in a log file; a log gets one line per epoch
    model, loader, valid, labels = _setup()
    log = io.StringIO()
    trainer = Trainer(model, TrainingConfig(max_epochs=3, problem_type="binary", learning_rate=5e-3),
                      torch.device("cpu"), [ProgressBar(3, stream=log)])
    trainer.fit(loader, valid, labels)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 3
    for epoch, (line, record) in enumerate(zip(lines, trainer.history), start=1):
        assert line.startswith(f"automm: epoch {epoch}/3  train_loss {record['train_loss']:.4f}")
        assert f"valid_score {record['valid_score']:.4f}" in line

    terminal = _Terminal()
    model, loader, valid, labels = _setup()
    Trainer(model, TrainingConfig(max_epochs=2, problem_type="binary"), torch.device("cpu"),
            [ProgressBar(2, stream=terminal)]).fit(loader, valid, labels)
    assert "\r" in terminal.getvalue() and "2/2" in terminal.getvalue() and "epoch 1/2" not in terminal.getvalue()


def test_a_bag_names_the_fold_of_each_epoch_line(capsys):
    # each fold trains from epoch 1 again: unnamed, a bag of 3 read as one run shown three times
    from automm import AutoMM

    texts = [f"{word} item {i}" for i in range(30) for word in ("good", "bad")]
    labels = [text.split()[0] for text in texts]
    AutoMM(max_epochs=2, random_state=0, num_workers=0, bag_folds=3, verbose=1).fit(texts, labels)
    lines = [line for line in capsys.readouterr().err.splitlines() if ": epoch " in line]
    assert [line.split(":")[0] for line in lines] == [f"automm fold {k}/3" for k in (1, 1, 2, 2, 3, 3)], lines
    assert [line.split()[4] for line in lines] == ["1/2", "2/2"] * 3


class _Watched(Callback):
    """Notes what the stream holds when each epoch has ended."""

    def __init__(self, stream):
        self.stream, self.seen = stream, []

    def on_epoch_end(self, trainer, record):
        self.seen.append(self.stream.getvalue())


@pytest.mark.parametrize("stream", [io.StringIO, _Terminal])
def test_each_epochs_record_shows_as_the_epoch_ends(stream):
    # verbose=2 printed the records on stdout once training was over: nothing to watch in a long run
    log = stream()
    model, loader, valid, labels = _setup()
    watched = _Watched(log)
    trainer = Trainer(model, TrainingConfig(max_epochs=2, problem_type="binary"), torch.device("cpu"),
                      [ProgressBar(2, stream=log, records=True), watched])
    trainer.fit(loader, valid, labels)
    first = trainer.history[0]
    assert f"'epoch': 1, 'train_loss': {round(first['train_loss'], 4)}" in watched.seen[0]
    assert "'epoch': 2" not in watched.seen[0] and "'epoch': 2" in watched.seen[1]


@pytest.mark.parametrize("monitor, kept_epoch", [("loss", 3), ("score", 1)])
def test_monitor_picks_the_kept_epoch(monitor, kept_epoch):
    # A small holdout: epoch 1 is a lucky accuracy spike, epoch 3 the best log-loss.
    trainer = Trainer(nn.Linear(2, 2), TrainingConfig(monitor=monitor), torch.device("cpu"))
    for epoch, (loss, score) in enumerate([(0.98, 0.77), (1.10, 0.72), (0.91, 0.75), (0.95, 0.75)], start=1):
        trainer.keep_if_better(epoch, loss, score, None)
    assert trainer.best_epoch == kept_epoch


def test_a_settled_epoch_is_kept_over_a_lucky_one_at_a_high_learning_rate():
    # Fashion usage, default model, seed 2 (holdout loss, holdout accuracy, settled?): epoch 5
    # had the lowest loss at 90% of the peak rate; the settled epochs score higher.
    epochs = [(0.130, 0.952, False), (0.100, 0.967, False), (0.097, 0.970, False), (0.114, 0.970, True),
              (0.101, 0.977, True), (0.103, 0.978, True)]
    trainer = Trainer(nn.Linear(2, 2), TrainingConfig(), torch.device("cpu"))
    kept = [trainer.keep_if_better(epoch, loss, score, None, settled)
            for epoch, (loss, score, settled) in enumerate(epochs, start=1)]
    assert kept == [True, True, True, True, True, False]  # the first settled epoch replaces epoch 3
    assert (trainer.best_epoch, trainer.best_settled) == (5, True)
    assert not trainer.keep_if_better(7, 0.05, 0.99, None, settled=False)  # never back to an unsettled one
    # a run that never settles (cut short by time) keeps its lowest-loss epoch
    trainer = Trainer(nn.Linear(2, 2), TrainingConfig(), torch.device("cpu"))
    for epoch, (loss, score, _) in enumerate(epochs[:3], start=1):
        trainer.keep_if_better(epoch, loss, score, None, settled=False)
    assert trainer.best_epoch == 3


def test_settled_means_past_the_warm_up_and_below_the_fraction():
    model, loader, valid, labels = _setup()  # 4 batches per epoch
    # 100 epochs with a 20% warm-up: the rate ends epoch 1 at a fraction of its peak, still rising
    trainer = Trainer(model, TrainingConfig(max_epochs=100, warmup_fraction=0.2, problem_type="binary", patience=0),
                      torch.device("cpu"))
    trainer.configure_optimizer(len(loader))
    trainer.scheduler.last_epoch = 4  # after epoch 1
    assert trainer.lr_fraction() < 0.5 and not trainer.is_settled()
    trainer.scheduler.last_epoch = 4 * 20  # after the warm-up, at the peak
    assert trainer.lr_fraction() == pytest.approx(1.0) and not trainer.is_settled()
    trainer.scheduler.last_epoch = 4 * 70  # past the middle of the cosine
    assert trainer.lr_fraction() < 0.5 and trainer.is_settled() and not trainer.is_settled(0.1)


def test_monitor_never_prefers_a_diverged_epoch_and_rejects_unknown_values():
    trainer = Trainer(nn.Linear(2, 2), TrainingConfig(), torch.device("cpu"))
    assert trainer.is_improvement(float("nan"), 0.5)  # nothing kept yet: keep something
    trainer.best_epoch, trainer.best_loss, trainer.best_score = 1, 0.9, 0.5
    assert not trainer.is_improvement(float("nan"), 0.99)
    with pytest.raises(ValueError, match="monitor must be 'loss' or 'score'"):
        Trainer(nn.Linear(2, 2), TrainingConfig(monitor="accuracy"), torch.device("cpu"))


def test_early_stopping_stops_after_patience():
    model, loader, valid, labels = _setup()

    class NeverBetter(Callback):
        def on_epoch_end(self, trainer, record):
            trainer.best_epoch = 1  # pretend nothing after epoch 1 improved

    from automm.training import EarlyStopping

    trainer = Trainer(model, TrainingConfig(max_epochs=20, problem_type="binary"), torch.device("cpu"),
                      [NeverBetter(), EarlyStopping(2, lr_fraction=1.0)])
    trainer.fit(loader, valid, labels)
    assert len(trainer.history) == 3 and "no improvement" in trainer.stop_reason


def test_early_stopping_waits_for_the_learning_rate_to_decay():
    model, loader, valid, labels = _setup()

    class NeverBetter(Callback):
        def on_epoch_end(self, trainer, record):
            trainer.best_epoch = 1

    from automm.training import EarlyStopping

    trainer = Trainer(model, TrainingConfig(max_epochs=20, problem_type="binary"), torch.device("cpu"),
                      [NeverBetter(), EarlyStopping(3)])  # default: armed at half the peak rate
    trainer.fit(loader, valid, labels)
    peak = trainer.config.learning_rate
    armed = next(epoch for epoch in range(1, 21) if _next_lr(trainer, epoch) <= 0.5 * peak)
    assert len(trainer.history) == armed + 2 < 20 and "no improvement for 3 epochs" in trainer.stop_reason


def _next_lr(trainer, epoch):
    """The rate after ``epoch`` epochs (the next step's), from the trainer's own schedule."""
    return trainer.config.learning_rate * trainer._schedule(epoch * trainer.steps_per_epoch)


def test_deadline_stops_mid_epoch_and_keeps_a_model():
    import torch._dynamo  # noqa: F401  (the first fused AdamW imports it: 3-18 s, which the deadline once ran out in)

    model, loader, valid, labels = _setup()
    # the schedule is not fitted here (see the next test), so the deadline falls mid-epoch
    trainer = Trainer(model, TrainingConfig(max_epochs=1000, problem_type="binary", fit_schedule_to_deadline=False,
                                            deadline=time.monotonic() + 1.0), torch.device("cpu"))
    start = time.monotonic()
    trainer.fit(loader, valid, labels)
    assert time.monotonic() - start < 5
    assert trainer.stop_reason == "time limit reached"
    assert trainer.best_state is not None


def test_schedule_is_fitted_to_the_deadline(monkeypatch):
    # the trainer's clock moves only by the sleeps below: the epochs it plans are those of a machine
    # where an epoch takes 0.4 s, loaded or not (on a loaded one, real ones grew longer than planned)
    clock = VirtualClock().install(monkeypatch, automm.training)
    model, loader, valid, labels = _setup()  # 4 batches per epoch

    class Slow(Callback):
        def on_batch_end(self, trainer, loss):
            clock.sleep(0.1)  # an epoch takes 0.4 s

    start = clock.monotonic()
    trainer = Trainer(model, TrainingConfig(max_epochs=100, problem_type="binary", patience=0,
                                            deadline=start + 3.0), torch.device("cpu"), [Slow()])
    trainer.fit(loader, valid, labels)
    epochs = len(trainer.history)
    assert 6 <= epochs < 100 and trainer.planned_epochs == epochs  # 3 s of 0.4 s epochs, planned with 10% to spare
    assert "schedule fitted to the time limit" in trainer.stop_reason
    assert clock.monotonic() - start < 3.0 and all(r["complete"] for r in trainer.history)
    rates = [r["lr"] for r in trainer.history]
    assert rates[-1] == 0.0 and max(rates) > 0  # it ended annealed
    assert all(b <= a + 1e-12 for a, b in zip(rates[1:], rates[2:]))  # and decayed without jumps up

    # switched off, the same run keeps the long schedule and stops at the deadline mid-way
    model, loader, valid, labels = _setup()
    trainer = Trainer(model, TrainingConfig(max_epochs=100, problem_type="binary", patience=0,
                                            deadline=clock.monotonic() + 1.0, fit_schedule_to_deadline=False),
                      torch.device("cpu"), [Slow()])
    trainer.fit(loader, valid, labels)
    assert trainer.stop_reason == "time limit reached"
    rates = [r["lr"] for r in trainer.history]  # still warming up on the 100-epoch schedule: never annealed
    assert all(b >= a for a, b in zip(rates, rates[1:])) and rates[-1] > 0.3 * trainer.config.learning_rate


class SlowLoader:
    """A loader whose every batch takes ``seconds`` more to arrive (``sleep``: ``time.sleep`` or a
    :class:`VirtualClock`'s)."""

    def __init__(self, loader, seconds, sleep=time.sleep):
        self.loader, self.seconds, self.dataset, self.sleep = loader, seconds, loader.dataset, sleep

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            self.sleep(self.seconds)
            yield batch


def test_training_stops_in_time_for_the_holdout_evaluation_to_end_by_the_deadline(monkeypatch):
    clock = VirtualClock().install(monkeypatch, automm.training)  # (as above: the same on a loaded machine)
    model, loader, valid, labels = _setup()  # 4 training batches, 2 holdout batches

    class Slow(Callback):
        def on_batch_end(self, trainer, loss):
            clock.sleep(0.1)

    start = clock.monotonic()
    deadline = start + 2.75  # epoch 1: 0.4 s training + 1 s evaluation; epoch 2 cannot end its training
    trainer = Trainer(model, TrainingConfig(max_epochs=100, problem_type="binary", patience=0, deadline=deadline,
                                            fit_schedule_to_deadline=False), torch.device("cpu"), [Slow()])
    trainer.fit(loader, SlowLoader(valid, 0.5, clock.sleep), labels)
    assert trainer.stop_reason == "time limit reached" and trainer.history[0]["complete"]
    assert len(trainer.history) == 1 or trainer.history[1]["batches"] < 4  # epoch 2 stopped part-way, if begun
    assert clock.monotonic() <= deadline  # before: an evaluation began at the deadline and ended 1 s past it


@pytest.mark.parametrize("fitted", [True, False], ids=["schedule fitted", "schedule kept"])
def test_slow_epoch_end_callbacks_count_towards_the_deadline(monkeypatch, fitted):
    """A callback that takes 1 s at each epoch's end (a checkpoint saved): its time was left out of the
    epochs' planned length and of the time kept for an epoch's end, so training ran its last
    callbacks past the deadline (by up to a callback's time: time_limit=12 took 13.4 s with a 2 s one, 15.4 s with 4 s)."""
    clock = VirtualClock().install(monkeypatch, automm.training)
    model, loader, valid, labels = _setup()  # 4 batches per epoch

    class Checkpoint(Callback):
        def on_batch_end(self, trainer, loss):
            clock.sleep(0.1)  # an epoch's training takes 0.4 s

        def on_epoch_end(self, trainer, record):
            clock.sleep(1.0)

    start = clock.monotonic()
    deadline = start + 5.0
    trainer = Trainer(model, TrainingConfig(max_epochs=100, problem_type="binary", patience=0, deadline=deadline,
                                            fit_schedule_to_deadline=fitted), torch.device("cpu"), [Checkpoint()])
    trainer.fit(loader, valid, labels)
    assert clock.monotonic() <= deadline
    assert len(trainer.history) == 3  # 1.4 s each
    if fitted:
        assert trainer.planned_epochs == 3 and trainer.history[-1]["lr"] == 0.0  # and it ended annealed


def test_a_callback_that_raises_is_named_on_its_exception_and_one_that_stops_training_in_its_reason():
    from automm.training import callback_origin

    class Boom(Callback):
        def on_epoch_end(self, trainer, record):
            raise OSError("disk full")

    model, loader, valid, labels = _setup()
    trainer = Trainer(model, TrainingConfig(max_epochs=3, problem_type="binary"), torch.device("cpu"), [Boom()])
    with pytest.raises(OSError, match="disk full") as raised:
        trainer.fit(loader, valid, labels)
    assert callback_origin(raised.value) == "Boom.on_epoch_end"
    try:
        raise RuntimeError("the trial failed") from raised.value
    except RuntimeError as wrapped:  # (found in the chain too)
        assert callback_origin(wrapped) == "Boom.on_epoch_end"

    class Enough(Callback):
        def on_batch_end(self, trainer, loss):
            trainer.should_stop = True

    model, loader, valid, labels = _setup()
    trainer = Trainer(model, TrainingConfig(max_epochs=3, problem_type="binary"), torch.device("cpu"), [Enough()])
    trainer.fit(loader, valid, labels)
    assert len(trainer.history) == 1 and trainer.history[0]["complete"]  # the epoch in progress ends
    assert trainer.stop_reason == "stopped by callback Enough.on_batch_end"


def test_nan_loss_is_reported():
    model, loader, valid, labels = _setup()
    with torch.no_grad():
        model.head[1].weight.fill_(float("nan"))
    trainer = Trainer(model, TrainingConfig(max_epochs=1, problem_type="binary"), torch.device("cpu"))
    with pytest.raises(FloatingPointError, match="loss became nan"):
        trainer.fit(loader, valid, labels)


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("device, message", [
    ("gpu", r"'gpu' is not a device: expected 'auto', 'cpu', 'cuda' or 'cuda:N' \(did you mean 'cuda'\?\)"),
    ("meta", "'meta' holds no data and cannot train"),
    ("vulkan", r"'vulkan' cannot be used here \(Could not run"),
])
def test_a_device_this_machine_cannot_train_on_is_named_before_training(device, message):
    with pytest.raises(InputError, match="device: " + message):
        AutoMM(device=device).fit(["a long text", "another long text"], [0, 1])


def test_loading_a_model_for_a_device_this_machine_lacks_fails_before_reading_it(tmp_path):
    with pytest.raises(InputError, match=r"device: 'gpu' is not a device.*did you mean 'cuda'"):
        AutoMM.load(tmp_path / "no-model-here", device="gpu")  # the device is checked first


def test_a_gpu_index_this_machine_lacks_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match=r"'cuda:2': this machine has 2 CUDA device\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")
    assert resolve_device("cuda:1") == torch.device("cuda:1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_asking_for_cuda_without_a_gpu_fails_before_training():
    with pytest.raises(InputError, match="device: .*CUDA is not available"):
        AutoMM(device="cuda").fit(["a long text", "another long text"], [0, 1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_with_mixed_precision():  # runs on GPU machines only
    from automm.datasets import load_emoji_sample

    frame = load_emoji_sample().head(64)
    clf = AutoMM(device="cuda", amp=True, max_epochs=1, random_state=0).fit(frame[["image", "name"]], frame["category"])
    assert next(clf.model_.parameters()).device.type == "cuda"
    assert len(clf.predict(frame[["image", "name"]])) == 64


def test_calibrated_log_loss_ignores_confidence_and_ranks_accuracy():
    from automm.training import calibrated_log_loss

    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 4, (300,), generator=generator)
    noise = torch.randn(300, 4, generator=generator)
    good = noise.clone()
    good[torch.arange(300), targets] += 2.0  # mostly right, but grossly overconfident below
    weak = noise.clone()
    weak[torch.arange(300), targets] += 0.5
    overconfident, timid = good * 20, weak * 0.1  # timid: near-uniform, like a first epoch
    raw = torch.nn.functional.cross_entropy
    assert raw(overconfident, targets) > raw(timid, targets)  # the plain log-loss prefers the timid model
    assert calibrated_log_loss(overconfident, targets) < calibrated_log_loss(timid, targets)
    # invariant to the logits' scale, and never above the plain log-loss
    assert calibrated_log_loss(good * 8, targets) == pytest.approx(calibrated_log_loss(good, targets), rel=1e-4)
    assert calibrated_log_loss(timid, targets) <= float(raw(timid, targets)) + 1e-7
    assert math.isnan(calibrated_log_loss(torch.full((2, 3), float("nan")), torch.tensor([0, 1])))


class LookedUpFeatures(nn.Module):
    """An encoder whose samples are feature vectors looked up per value (like cached frozen features)."""

    modality = "text"
    output_dim = 4

    def __init__(self, static):
        super().__init__()
        self.static_preprocess = static
        self.calls = []

    def preprocess(self, value, augment=None):
        self.calls.append((value, augment))
        return torch.full((4,), float(len(value)))

    def collate(self, samples):
        return torch.stack(samples)


@pytest.mark.parametrize("static", [True, False])
def test_static_samples_are_preprocessed_once_per_row_and_never_augmented(static):
    from automm.components.augmentations import TokenDropout

    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    encoder = LookedUpFeatures(static)
    dataset = MultimodalDataset({"text_0": texts}, {"text_0": encoder}, np.zeros(5, dtype=np.int64),
                                augmentations={"text": [TokenDropout(0.5)]}, seed=0)
    loader = make_loader(dataset, 3, True, 0, 0, BatchCollator({"text_0": encoder}))
    for epoch in range(3):
        dataset.epoch = epoch
        for batch in loader:
            expected = torch.tensor([float(len(texts[i])) for i in batch["index"]])
            assert torch.equal(batch["inputs"]["text_0"][:, 0], expected)
    if static:
        assert sorted(v for v, _ in encoder.calls) == sorted(texts)  # once per row, for all epochs
        assert all(augment is None for _, augment in encoder.calls)
    else:
        assert len(encoder.calls) == 3 * len(texts)
        assert all(augment is not None for _, augment in encoder.calls)


def test_a_training_loader_never_ends_an_epoch_with_a_batch_of_one():
    """A last batch of one sample failed the fit of any encoder with batch normalisation
    (\"Expected more than 1 value per channel when training\"), e.g. 45 training rows in batches of 4."""
    def sizes(n, batch_size, shuffle):
        loader = make_loader(list(range(n)), batch_size, shuffle, 0, 0, torch.tensor)
        return [len(batch) for batch in loader], len(loader)

    assert sizes(9, 4, True) == ([4, 4], 2)  # one sample left out, a different one each epoch
    assert sizes(9, 4, False) == ([4, 4, 1], 3)  # prediction and holdout: every row
    assert sizes(10, 4, True) == ([4, 4, 2], 3)
    assert sizes(1, 4, True) == ([1], 1)  # one row in all: nothing else to train on
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).train()
    for batch in make_loader(list(torch.randn(45, 3)), 4, True, 0, 0, torch.stack):
        model(batch)


@pytest.mark.parametrize("augmentations, per_epoch", [([], False), (["token_dropout"], True)])
def test_text_and_table_samples_are_computed_once_unless_augmented(monkeypatch, augmentations, per_epoch):
    from automm.components.tabular import TabularEncoder
    from automm.components.text import HashedNgramEncoder

    calls = {"text": 0, "tabular": 0}
    for cls, kind in ((HashedNgramEncoder, "text"), (TabularEncoder, "tabular")):
        original = cls.preprocess

        def counted(self, value, augment=None, _original=original, _kind=kind):
            calls[_kind] += 1
            return _original(self, value, augment)
        monkeypatch.setattr(cls, "preprocess", counted)
    rng = np.random.default_rng(0)
    n = 60
    words = np.array(["red", "blue", "green", "large", "small", "round"])
    texts = [" ".join(rng.choice(words, 3)) for _ in range(n)]
    X = {"text": texts, "size": rng.normal(size=n).tolist()}
    y = ["a" if "red" in t else "b" for t in texts]
    epochs = 4
    AutoMM(max_epochs=epochs, patience=epochs, random_state=0, augmentations=augmentations,
           encoders={"text": {"name": "hashed_ngram", "n_buckets": 256, "emb_dim": 8, "output_dim": 8},
                     "tabular": {"name": "tabular", "emb_dim": 4, "hidden_dim": 8, "output_dim": 8}},
           fusion={"name": "concat", "proj_dim": 8, "hidden_dim": 8}).fit(X, y)
    # the table has no augmentation: each row once (plus a few for fit's checks), never once per epoch
    assert calls["tabular"] < 2 * n
    assert (calls["text"] >= epochs * 0.7 * n) == per_epoch


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_fit_trains_under_a_callers_no_grad_or_inference_mode(mode):
    rng = np.random.default_rng(0)
    X = {"a": rng.normal(size=40).tolist(), "b": rng.normal(size=40).tolist()}
    y = ["p" if a > 0 else "n" for a in X["a"]]
    def model():
        return AutoMM(max_epochs=3, random_state=0, encoders={"tabular": {"name": "tabular", "hidden_dim": 8}},
                      fusion={"name": "concat", "proj_dim": 8, "hidden_dim": 8})

    with mode():
        trained = model().fit(X, y)
        assert not torch.is_grad_enabled()  # the caller's mode is back
    np.testing.assert_array_equal(trained.predict_proba(X), model().fit(X, y).predict_proba(X))


def test_the_autocast_type_is_bfloat16_only_where_the_gpu_computes_it_natively(monkeypatch):
    """torch.cuda.is_bf16_supported() also says yes where bfloat16 is emulated (T4, V100), where
    float16 with a gradient scaler is the fast path."""
    from automm import training

    device = torch.device("cuda")
    for major, expected in ((7, torch.float16), (8, torch.bfloat16), (9, torch.bfloat16)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None, m=major: (m, 5))
        assert training.autocast_dtype(device) == expected
    assert training.autocast_dtype(torch.device("cpu")) == torch.float16


def test_a_model_on_the_current_gpu_is_not_moved_again(monkeypatch):
    from automm.training import _on

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert _on(torch.device("cuda:0"), torch.device("cuda")) and not _on(torch.device("cuda:1"), torch.device("cuda"))
    assert _on(torch.device("cpu"), torch.device("cpu")) and not _on(torch.device("cpu"), torch.device("cuda"))


def test_a_schedule_shortened_during_the_warm_up_still_reaches_the_peak():
    model, loader, valid, labels = _setup()  # 4 batches per epoch
    trainer = Trainer(model, TrainingConfig(max_epochs=100, problem_type="binary", deadline=time.monotonic() + 100),
                      torch.device("cpu"))
    trainer.configure_optimizer(len(loader))  # warm-up: 5% of 400 steps, 5 epochs
    trainer.scheduler.last_epoch = 4  # after epoch 1, at a quarter of the peak
    trainer.history = [{"epoch": 1, "complete": True, "seconds": 10.0}]  # the deadline leaves ~9 more epochs
    trainer.plan_remaining_epochs(1)
    assert trainer.planned_epochs == 10
    assert max(trainer._schedule(step) for step in range(4, 40)) == pytest.approx(1.0)
    assert trainer._schedule(39) < 0.05  # and it still ends annealed


def test_a_small_holdout_the_model_gets_all_right_does_not_ask_for_certainty():
    from automm.ensemble import calibrate

    logits = np.array([[2.0, -2.0]] * 8 + [[-1.5, 1.5]] * 7, dtype=np.float32)
    targets = np.array([0] * 8 + [1] * 7)
    # before: the largest temperature, 1e2, so every new row's answer had a probability of ~1.0
    assert 0.5 < calibrate([logits], targets, "binary")[0] < 3


def test_the_history_reports_the_learning_rate_set_not_a_scaled_groups():
    """``hashed_ngram``'s embedding trains at 5x ``learning_rate`` and may be the first parameter
    group: the history showed 4.1e-3 for ``learning_rate=1e-3``."""
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["red", "blue", "big", "soft", "wool"], 3)) for _ in range(120)]
    labels = ["a" if "red" in text else "b" for text in texts]
    model = AutoMM(random_state=0, max_epochs=3, learning_rate=1e-3, num_workers=0,
                   encoders={"text": "hashed_ngram"}).fit(texts, labels)
    rates = [record["lr"] for record in model.history_]
    assert 0 < max(rates) <= 1e-3 * (1 + 1e-6)


def test_label_smoothing_spreads_its_share_of_each_target_over_every_class():
    model, *_ = _setup()
    smoothed = Trainer(model, TrainingConfig(problem_type="binary", label_smoothing=0.2), torch.device("cpu"))
    assert torch.allclose(smoothed.soft_targets(torch.tensor([0, 1])), torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    plain = Trainer(model, TrainingConfig(problem_type="binary", label_smoothing=0.0), torch.device("cpu"))
    assert torch.equal(plain.soft_targets(torch.tensor([1])), torch.tensor([[0.0, 1.0]]))


def test_the_first_warm_up_step_already_trains():
    model, *_ = _setup()
    trainer = Trainer(model, TrainingConfig(problem_type="binary", max_epochs=10, warmup_fraction=0.1),
                      torch.device("cpu"))
    trainer.configure_optimizer(10)  # a warm-up of 10 steps
    assert trainer.lr_fraction() == pytest.approx(0.1)  # (step 1 of 10), not 0: no step is wasted
    assert trainer.optimizer.param_groups[0]["lr"] > 0


def test_a_schedule_fitted_to_the_deadline_anneals_from_the_rate_it_had():
    model, *_ = _setup()
    trainer = Trainer(model, TrainingConfig(problem_type="binary", max_epochs=10,
                                            deadline=time.monotonic() + 25.0), torch.device("cpu"))
    trainer.configure_optimizer(10)
    for _ in range(50):  # half way: the cosine at about half the peak
        trainer.optimizer.step()
        trainer.scheduler.step()
    before = trainer.lr_fraction()
    assert 0.3 < before < 0.7
    trainer.history = [{"complete": True, "seconds": 10.0}] * 3  # 2 more epochs fit before the deadline
    trainer.plan_remaining_epochs(5)
    assert trainer.planned_epochs == 7
    assert trainer.lr_fraction() == pytest.approx(before)  # continuous: no jump back to the peak
    for _ in range(20):
        trainer.optimizer.step()
        trainer.scheduler.step()
    assert trainer.lr_fraction() == pytest.approx(0.0, abs=1e-9)  # annealed at the new end


def test_fit_ends_with_the_kept_epochs_weights_not_the_last_ones():
    model, loader, valid, labels = _setup()
    trainer = Trainer(model, TrainingConfig(max_epochs=3, problem_type="binary", learning_rate=5e-3),
                      torch.device("cpu"))
    trainer.is_improvement = lambda *args, **kwargs: trainer.best_epoch == 0  # keep epoch 1 whatever follows
    trainer.fit(loader, valid, labels)
    assert trainer.best_epoch == 1 and len(trainer.history) == 3
    # the model predicts as the kept epoch did on the holdout (which temperature and ensemble are fitted on)
    np.testing.assert_allclose(trainer.predict_outputs(valid), trainer.best_valid_outputs, rtol=1e-5, atol=1e-6)


def test_the_training_rows_weights_count_relative_to_each_other_not_by_their_scale():
    losses = []
    for scale in (1.0, 1000.0):
        model, loader, valid, labels = _setup()
        weights = np.where(labels == 1, 2.0, 1.0) * scale
        trainer = Trainer(model, TrainingConfig(max_epochs=2, problem_type="binary"), torch.device("cpu"))
        trainer.fit(loader, valid, labels, train_weights=weights)
        losses.append([r["train_loss"] for r in trainer.history])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_the_holdout_loss_and_score_of_each_epoch_weigh_the_rows_by_their_weights():
    from automm.training import validation_metrics

    model, loader, valid, labels = _setup()
    weights = np.random.default_rng(1).uniform(0.1, 5.0, len(labels))
    trainer = Trainer(model, TrainingConfig(max_epochs=1, problem_type="binary"), torch.device("cpu"))
    trainer.fit(loader, valid, labels, valid_weights=weights)
    record, outputs = trainer.history[0], trainer.best_valid_outputs
    expected = validation_metrics(outputs, labels, True, weights)
    assert (record["valid_loss"], record["valid_score"]) == pytest.approx(expected, rel=1e-6)
    assert record["valid_loss"] != pytest.approx(validation_metrics(outputs, labels, True)[0], rel=1e-6)


def test_table_rows_are_preprocessed_as_a_whole_column_and_batches_taken_from_it(monkeypatch):
    """A table input's samples come from one batch of its whole column (``preprocess_batch``),
    training and prediction datasets alike: a sample per row (100,000 rows: 30 s to predict)
    no more; the loader's batches are those of the rows preprocessed one by one."""
    from automm.components.base import MISSING
    from automm.components.tabular import TabularEncoder

    rng = np.random.default_rng(0)
    rows = [{"size": float(x), "colour": str(c)} for x, c in zip(rng.normal(size=40), rng.choice(["r", "g", "b"], 40))]
    rows[3], rows[7] = MISSING, {"size": MISSING, "colour": MISSING}
    encoder = TabularEncoder({"size": "numeric", "colour": "categorical"}).fit(rows)
    expected = [encoder.preprocess(row) for row in rows]
    monkeypatch.setattr(TabularEncoder, "preprocess", lambda *a, **k: pytest.fail("a table row preprocessed alone"))
    encoders = {"tabular": encoder}
    for reuse, targets in ((True, np.zeros(40, dtype=np.int64)), (False, None)):
        dataset = MultimodalDataset({"tabular": rows}, encoders, targets, reuse=reuse)
        for batch in make_loader(dataset, 6, reuse, 0, 0, BatchCollator(encoders)):
            index = batch["index"].tolist()
            for key in ("numeric", "numeric_missing", "categorical"):
                assert torch.equal(batch["inputs"]["tabular"][key], torch.stack([expected[i][key] for i in index]))
            assert batch["masks"]["tabular"].tolist() == [i not in (3, 7) for i in index]
        one = dataset[5]
        assert torch.equal(one["inputs"]["tabular"]["numeric"], expected[5]["numeric"]) and one["masks"]["tabular"]
        assert dataset[3]["masks"]["tabular"] is False


def test_a_subclass_replacing_preprocess_is_not_read_by_its_base_class_preprocess_batch():
    """A plugin's table encoder deriving from ``tabular`` with a ``preprocess`` of its own (numbers
    log-scaled first) gets its own samples: the inherited ``preprocess_batch`` does not know that
    ``preprocess`` (it gave the base class's numbers, 10.0 for log1p(1000)'s 0.46)."""
    from automm.components.tabular import TabularEncoder

    class LogTabular(TabularEncoder):
        def preprocess(self, value, augment=None):
            return super().preprocess({k: math.log1p(v) for k, v in value.items()}, augment)

    rows = [{"a": float(10 ** (i % 4))} for i in range(12)]
    encoder = LogTabular({"a": "numeric"}).fit([{"a": math.log1p(row["a"])} for row in rows])
    encoders = {"tabular": encoder}
    batch = next(iter(make_loader(MultimodalDataset({"tabular": rows}, encoders), 4, False, 0, 0,
                                  BatchCollator(encoders))))
    expected = torch.stack([encoder.preprocess(row)["numeric"] for row in rows[:4]])
    assert torch.equal(batch["inputs"]["tabular"]["numeric"], expected)


def test_head_dropout_is_the_dropout_of_the_kept_models_head():
    texts = [f"item {i} " + ("with a longer description" if i % 2 else "short") for i in range(24)]
    for rate in (0.0, 0.4):
        model = AutoMM(**tiny(max_epochs=1, head_dropout=rate)).fit(texts, [i % 2 for i in range(24)])
        dropouts = [m.p for m in model.model_.head.modules() if isinstance(m, torch.nn.Dropout)]
        assert dropouts == [rate]


def test_a_candidate_trains_with_every_training_setting_of_its_configuration(monkeypatch):
    """train_candidate hands the configuration's weight decay, label smoothing, patience, head
    dropout and seed offset (a replicate's) to the network and the trainer, and scores the
    holdout in its order (a shuffled holdout loader would pair outputs with other rows' targets)."""
    import automm.pipeline as pipeline
    from automm.data import InputSpec
    from automm.pipeline import PreparedData, train_candidate

    seen = {}

    class Recording(Trainer):
        def __init__(self, model, config, *args, **kwargs):
            seen["config"], seen["model"] = config, model
            super().__init__(model, config, *args, **kwargs)

        def fit(self, train_loader, valid_loader, *args, **kwargs):
            seen["valid_sampler"] = type(valid_loader.sampler).__name__
            return super().fit(train_loader, valid_loader, *args, **kwargs)

    monkeypatch.setattr(pipeline, "Trainer", Recording)
    texts = [f"word{i % 3} thing{i}" for i in range(24)]
    rows = np.arange(24)
    data = PreparedData(inputs=[InputSpec("text_0", "text", ["name"], {"name": "text"})], values={"text_0": texts},
                        targets=rows % 3, problem_type="multiclass", n_outputs=3, train_index=rows[rows % 4 != 0],
                        valid_index=rows[rows % 4 == 0], seed=7, device=torch.device("cpu"), num_workers=0)
    config = {"encoders": {"text_0": {"name": "hashed_ngram", "n_buckets": 256, "emb_dim": 8, "output_dim": 8}},
              "fusion": {"name": "concat", "proj_dim": 8, "hidden_dim": 8}, "augmentations": [],
              "training": {"learning_rate": 0.01, "weight_decay": 0.3, "batch_size": 8, "max_epochs": 1,
                           "label_smoothing": 0.2, "head_dropout": 0.4, "patience": 3, "seed_offset": 5}}
    train_candidate(data, config)
    trained = seen["config"]
    assert (trained.weight_decay, trained.label_smoothing, trained.patience, trained.seed) == (0.3, 0.2, 3, 12)
    assert seen["model"].head[0].p == 0.4
    assert seen["valid_sampler"] == "SequentialSampler"
