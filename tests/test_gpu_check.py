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
    assert {report[name]["status"] for name in ("oom_retry", "pretrained", "pytest", "suite")} == {"SKIP"}  # they need CUDA
