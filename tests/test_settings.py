"""Settings from the environment: a bad value is named, never read as something else."""

import os
import subprocess
import sys

import pytest

from automm.settings import megabytes_setting, seconds_setting


def test_seconds_setting(monkeypatch):
    monkeypatch.delenv("AUTOMM_TEST_SECONDS", raising=False)
    assert seconds_setting("AUTOMM_TEST_SECONDS", 10) == 10.0
    monkeypatch.setenv("AUTOMM_TEST_SECONDS", " 2.5 ")
    assert seconds_setting("AUTOMM_TEST_SECONDS", 10) == 2.5
    for bad in ("abc", "0", "-1", "inf", "nan"):
        monkeypatch.setenv("AUTOMM_TEST_SECONDS", bad)
        with pytest.raises(ValueError, match=f"AUTOMM_TEST_SECONDS must be a number of seconds > 0; got '{bad}'"):
            seconds_setting("AUTOMM_TEST_SECONDS", 10)


def test_megabytes_setting(monkeypatch):
    monkeypatch.setenv("AUTOMM_TEST_MB", "")
    assert megabytes_setting("AUTOMM_TEST_MB", 123) == 123
    monkeypatch.setenv("AUTOMM_TEST_MB", "0.5")
    assert megabytes_setting("AUTOMM_TEST_MB", 123) == 2 ** 19
    monkeypatch.setenv("AUTOMM_TEST_MB", "0")
    assert megabytes_setting("AUTOMM_TEST_MB", 123) == 0
    for bad in ("2G", "-1", "inf"):
        monkeypatch.setenv("AUTOMM_TEST_MB", bad)
        with pytest.raises(ValueError, match="AUTOMM_TEST_MB must be a number of megabytes >= 0"):
            megabytes_setting("AUTOMM_TEST_MB", 123)


def test_a_bad_heartbeat_setting_is_said_when_a_shared_storage_opens_not_at_import(monkeypatch, tmp_path):
    """It failed `import automm` with float()'s message."""
    from automm.storage import make_storage

    env = {**os.environ, "AUTOMM_HEARTBEAT_GRACE": "abc"}
    assert subprocess.run([sys.executable, "-c", "import automm"], env=env).returncode == 0
    monkeypatch.setenv("AUTOMM_HEARTBEAT_GRACE", "abc")
    with pytest.raises(ValueError, match="AUTOMM_HEARTBEAT_GRACE must be a number of seconds > 0; got 'abc'"):
        make_storage("journal", str(tmp_path / "study.log"))
