"""What automm does with inputs from others: a model folder's recipe.yaml, class names written to CSV."""

import time

import pytest

from automm import cli


def _laughs(depth: int, key: str) -> str:
    lines = ['x0: &a0 ["x"]'] + [f"x{i}: &a{i} [*a{i-1}, *a{i-1}]" for i in range(1, depth + 1)]
    return "\n".join(lines + ["data:", f"  {key}: *a{depth}"]) + "\n"


def test_model_recipe_with_billion_laughs_is_ignored_quickly(tmp_path):
    (tmp_path / "recipe.yaml").write_text(_laughs(40, "files_dir"))
    start = time.monotonic()
    assert cli._recipe_files_dirs(str(tmp_path)) == []
    assert time.monotonic() - start < 5


def test_model_recipe_label_reference_is_shown_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_API_TOKEN", "tok_live_8f3a9c")
    (tmp_path / "recipe.yaml").write_text('data:\n  label: "${MY_API_TOKEN}"\n')
    assert cli._recipe_data_key(str(tmp_path), "label") == "tok_live_8f3a9c"
    assert cli._recipe_data_written(str(tmp_path), "label") == "${MY_API_TOKEN}"


def test_model_recipe_that_is_a_pipe_a_device_or_not_text_is_ignored(tmp_path):
    """A model folder's recipe.yaml made a pipe blocked predict/evaluate for ever, /dev/zero read
    until memory ran out, and bytes that are not UTF-8 or a bad date failed with an unexpected error."""
    import os

    for name, make in (("latin1", lambda path: path.write_bytes(b"data:\n  label: \xff\xfe\n")),
                       ("date", lambda path: path.write_text("data:\n  label: 2024-13-45\n")),
                       ("pipe", os.mkfifo), ("zeros", lambda path: os.symlink("/dev/zero", path))):
        folder = tmp_path / name
        folder.mkdir()
        make(folder / "recipe.yaml")
        start = time.monotonic()
        assert cli._recipe_data_key(str(folder), "label") is None
        assert cli._recipe_files_dirs(str(folder)) == []
        assert time.monotonic() - start < 5


def test_spreadsheet_formulas_are_escaped():
    assert cli._spreadsheet_safe('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert cli._spreadsheet_safe("@SUM(1)") == "'@SUM(1)"
    assert cli._spreadsheet_safe("+cmd|' /C calc'!A0") == "'+cmd|' /C calc'!A0"
    assert cli._spreadsheet_safe("-1.5") == "-1.5"
    assert cli._spreadsheet_safe("-ve") == "-ve"
    assert cli._spreadsheet_safe("+1 star") == "+1 star"
    assert cli._spreadsheet_safe("=1+1") == "'=1+1"
    assert cli._spreadsheet_safe("shirt") == "shirt"
    assert cli._spreadsheet_safe("-") == "-"
    assert cli._spreadsheet_safe(3) == 3


def test_ssl_key_passphrase_is_redacted():
    from automm.storage import redact_url

    assert redact_url("postgresql://u@h/db?sslpassword=S3cret&sslkey=/k.pem") == \
        "postgresql://u@h/db?sslpassword=***&sslkey=/k.pem"
    assert redact_url("postgresql://u:pw@h/db?password=x") == "postgresql://u:***@h/db?password=***"


@pytest.mark.parametrize("password, piece", [("S3cr@tPW", "tPW"), ("p@sec/ret", "sec/ret")])
def test_password_with_an_unescaped_at_is_not_shown_in_part(password, piece):
    """``user:S3cr@tPW@host``: the redaction kept ``tPW``, and the driver's error named ``tPW@host`` as its
    host; ``user:p@sec/ret@host`` (SQLAlchemy: host ``sec``, database ``ret@host/db``) passed the check."""
    from automm import AutoMM
    from automm.exceptions import InputError
    from automm.storage import parse_storage, redact_url

    url = f"postgresql://alice:{password}@127.0.0.1:1/db"
    assert redact_url(url) == "postgresql://alice:***@127.0.0.1:1/db"
    assert piece not in repr(AutoMM(storage=url))
    with pytest.raises(InputError, match="written %40") as caught:
        parse_storage(url)
    assert piece not in str(caught.value)


def test_storage_urls_that_are_fine_or_unreadable():
    from automm.exceptions import InputError
    from automm.storage import parse_storage, redact_url

    assert redact_url("postgresql://alice@corp:pw@h/db") == "postgresql://alice@corp:***@h/db"  # Azure's user@server
    assert parse_storage("postgresql://alice@corp:pw@h/db")[0] == "rdb"
    assert parse_storage("postgresql://alice:S3cr%40tPW@h/db")[0] == "rdb"
    assert parse_storage("postgresql://alice:pa/ss@h/db")[0] == "rdb"  # a '/' alone is SQLAlchemy's password
    assert redact_url("postgresql://alice:pa/ss@h/db") == "postgresql://alice:***@h/db"
    with pytest.raises(InputError, match=r"storage: 'postgresql://alice:\*\*\*@h:notaport/db' is not a valid URL"):
        parse_storage("postgresql://alice:S3cretPW@h:notaport/db")  # (a bare ValueError naming no argument)
    assert parse_storage("postgresql://h:5432/db?application_name=a@b")[0] == "rdb"  # no password: no '@' to check


def test_plots_replace_a_planted_link_instead_of_writing_through_it(tmp_path):
    import warnings

    import optuna
    import pytest

    pytest.importorskip("matplotlib")
    from automm.leaderboard import write_plots

    victim = tmp_path / "victim.txt"
    victim.write_text("important")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "optimization_history.png").symlink_to(victim)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_plots(study, plots)
    assert victim.read_text() == "important"
    assert not (plots / "optimization_history.png").is_symlink()
    assert (plots / "optimization_history.png").read_bytes()[:4] == b"\x89PNG"


def test_an_image_path_that_is_a_pipe_or_a_device_is_named_as_one(tmp_path, monkeypatch):
    """A pipe or a device given as an image was refused as "file not found" (a relative pipe with
    the hint to make paths absolute), though it is there: the message says what it is."""
    import os

    from automm import InputError
    from automm.data import validate_images

    os.mkfifo(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as error:
        validate_images("image", ["photo.jpg", "/dev/zero"])
    message = str(error.value)
    assert "row 0 ('photo.jpg'): a pipe (FIFO), not an image file" in message, message
    assert "row 1 ('/dev/zero'): a device, not an image file" in message, message
    assert "file not found" not in message and "relative paths are read" not in message, message


def test_a_long_word_leaves_no_features_behind_in_memory():
    """hashed_ngram kept the features of every word it read for the process's life, 4 ids a
    character: a service given texts of one long token (a hash, a base64 blob, no spaces) grew by
    156 MB per 1-MB token. Long words are no longer kept; their features are the same."""
    import gc
    import tracemalloc

    from automm.components.text import HashedNgramEncoder, _word_feature_ids

    encoder = HashedNgramEncoder(n_buckets=2 ** 12)
    word = "q" * 50_000
    encoder.preprocess("warm up")
    gc.collect()
    tracemalloc.start()
    try:
        encoder.preprocess(word)
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept < 2 ** 20, f"{kept / 2 ** 20:.0f} MB kept after the text's features were made"
    assert encoder.preprocess(word)["ids"].tolist() == list(
        _word_feature_ids(word, encoder.char_ngram_min, encoder.char_ngram_max, encoder.n_buckets))
