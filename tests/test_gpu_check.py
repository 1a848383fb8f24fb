"""``benchmarks/gpu_check.py``, the script a session lent a GPU runs once, works on the CPU too:
its checks that CUDA does not change (placement, save and reload, the one-trial-per-GPU threads
with two CPU slots) pass here, so it does not rot between the rare sessions that have a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_the_gpu_check_runs_on_the_cpu(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["placement"]["status"] == "PASS" and report["gpu_threads"]["status"] == "PASS"
    assert report["gpu_threads"]["threads"] == ["automm-gpu-0", "automm-gpu-1"]
    assert {report[name]["status"] for name in ("pickle_load", "oom_retry", "bagging", "pretrained", "search_models",
                                                "retrain", "audio", "predict_workers", "pytest", "suite")} == {"SKIP"}
    assert result.stdout.strip().splitlines()[-1].startswith("SUMMARY on cpu: 2 PASS, 0 FAIL, 10 SKIP")


@pytest.fixture
def gpu_check(monkeypatch):
    """The script's module, imported by name, gone again after."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import gpu_check as module

    yield module
    sys.modules.pop("gpu_check", None)


def test_a_wrong_check_name_fails_before_any_check_runs(gpu_check, monkeypatch, capsys):
    """A lease's minutes are not spent on the checks before a typo: ``--checks placement,sute``
    ran ``placement`` (a fit) and only then stopped at ``sute``."""
    ran = []
    monkeypatch.setitem(gpu_check.CHECKS, "placement", lambda device: ran.append(device) or {})
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main(["--device", "cpu", "--checks", "placement,sute"])
    assert exit_.value.code == 2 and ran == []
    assert "unknown check 'sute'" in capsys.readouterr().err


def test_the_report_ends_with_a_summary_and_is_written_after_each_check(gpu_check, monkeypatch, capsys, tmp_path):
    """One line to read at the end of a GPU session's output, a failure's innermost frames (where it
    failed, not the check's first lines), and a report on disk for a run its time limit cuts short."""
    written = []

    def failing(device):
        def deep_inside():
            raise ValueError("stft input and window must be on the same device")
        written.append(json.loads((tmp_path / "gpu_check.json").read_text()))  # the first check's, already there
        deep_inside()

    def skipped(device):
        raise gpu_check.Skip("needs CUDA")

    monkeypatch.setattr(gpu_check, "CHECKS", {"first": lambda device: {"figure": 1}, "second": failing,
                                              "third": skipped})
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "SUMMARY on cpu: 1 PASS, 1 FAIL, 1 SKIP; FAILED: second; skipped: third"
    assert written[0]["first"]["status"] == "PASS" and "second" not in written[0]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [report[name]["status"] for name in ("first", "second", "third")] == ["PASS", "FAIL", "SKIP"]
    assert "in deep_inside" in report["second"]["traceback"]
