"""Progress that plugins log (``logging.getLogger("automm.<plugin>")``) is shown by a verbose
fit, nowhere otherwise, and an application's own logging configuration is left alone."""

from __future__ import annotations

import logging

import torch

import automm
from automm import MISSING
from automm.progress import verbose_logging

from helpers import tiny


class SlowStart(automm.Encoder):
    """Stands for a frozen pretrained encoder whose one-off work is worth telling the user about."""

    modality = "text"
    static_preprocess = True
    frozen = True

    def __init__(self):
        super().__init__()
        self.output_dim = 8

    def prepare(self, values, *, cache_dir=None):
        logging.getLogger("automm.slowstart").info("slow_start: computing the features of %d texts", len(values))

    def preprocess(self, value, augment=None):
        return torch.full((8,), float(len("" if value is MISSING else str(value))))

    def forward(self, batch):
        return batch.float()


class SlowStartPlugin:
    @automm.hookimpl
    def automm_register_encoders(self, register):
        register("slow_start", SlowStart, modality="text", output_dim=8, tags=("pretrained",))


def _fit(verbose):
    texts = [f"item {i} " + ("with a longer description" if i % 2 else "short") for i in range(40)]
    labels = [i % 2 for i in range(40)]
    params = tiny(max_epochs=1, verbose=verbose)
    params["encoders"] = {"text": "slow_start"}
    return automm.AutoMM(**params).fit(texts, labels)


def test_a_verbose_fit_prints_what_a_plugin_logs_and_a_quiet_one_does_not(fresh_registry, capsys):
    fresh_registry(SlowStartPlugin())
    _fit(verbose=1)
    out = capsys.readouterr().err
    assert "[automm] slow_start: computing the features of 40 texts" in out
    _fit(verbose=0)
    assert "slow_start" not in capsys.readouterr().err
    logger = logging.getLogger("automm")
    assert logger.handlers == [] and logger.level == logging.NOTSET and logger.propagate  # as it was


def test_an_application_that_configured_the_automm_logger_keeps_its_configuration(fresh_registry, capsys):
    fresh_registry(SlowStartPlugin())
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("automm")
    handler = Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        _fit(verbose=1)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert "slow_start: computing the features of 40 texts" in records  # where the application sends them
    assert "[automm] slow_start" not in capsys.readouterr().err  # and not printed a second time


def test_nested_verbose_scopes_print_each_record_once_and_restore_the_logger(capsys):
    log = logging.getLogger("automm.test")
    with verbose_logging(1):
        with verbose_logging(2):
            log.info("inner")
        log.info("outer")
        log.debug("detail")  # DEBUG only from verbose 3
    log.info("after")
    assert capsys.readouterr().err.splitlines() == ["[automm] inner", "[automm] outer"]
    assert logging.getLogger("automm").handlers == []


def test_automm_predict_reports_a_plugins_work_on_stderr_and_keeps_stdout_for_the_csv(fresh_registry, tmp_path,
                                                                                      capsys):
    import pandas as pd

    from automm.cli import main

    fresh_registry(SlowStartPlugin())
    _fit(verbose=0).save(tmp_path / "model")
    data = tmp_path / "new.csv"
    pd.DataFrame({"x0": [f"new text {i}" for i in range(5)]}).to_csv(data, index=False)
    assert main(["predict", str(tmp_path / "model"), str(data)]) == 0
    captured = capsys.readouterr()
    assert "[automm] slow_start: computing the features of 5 texts" in captured.err
    assert captured.out.splitlines()[0] == "prediction" and len(captured.out.splitlines()) == 6
    assert main(["predict", str(tmp_path / "model"), str(data), "--quiet"]) == 0
    assert "slow_start" not in capsys.readouterr().err


def test_debug_records_show_from_verbose_3_only(capsys):
    """verbose=1 and 2 print progress (INFO), verbose=3 debugging detail too (DEBUG)."""
    logger = logging.getLogger("automm.slowstart")
    for verbose, shown in ((2, False), (3, True)):
        with verbose_logging(verbose):
            logger.info("progress")
            logger.debug("detail")
        err = capsys.readouterr().err
        assert "[automm] progress" in err and ("[automm] detail" in err) == shown


def test_the_epoch_line_counts_the_epochs_the_schedule_plans_once_cut_to_the_time_limit():
    """A time limit fitted the schedule to 3 of max_epochs=20 epochs: the lines still said "epoch 3/20"."""
    import io
    from types import SimpleNamespace

    from automm.training import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar(total=20, stream=stream)
    trainer = SimpleNamespace(planned_epochs=20)
    bar.on_train_begin(trainer)
    record = {"train_loss": 1.0, "valid_loss": 1.0, "valid_score": 0.5}
    bar.on_epoch_end(trainer, {**record, "epoch": 1})
    trainer.planned_epochs = 3  # (Trainer fits its schedule to the time left after an epoch)
    bar.on_epoch_end(trainer, {**record, "epoch": 2})
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("automm: epoch 1/20 ") and lines[1].startswith("automm: epoch 2/3 ")
