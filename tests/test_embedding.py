"""What a program that embeds automm (a library, a service) relies on: automm's warnings have a
category of their own to filter by, its errors on bad arguments are ``AutoMMError``s naming the
argument, and the environment variables it reads are documented."""

import ast
import re
import warnings
from pathlib import Path

import pytest

import automm
from automm import AutoMM, AutoMMClassifier, AutoMMWarning, InputError
from automm.registry import PluginLoadWarning
from automm.settings import megabytes_setting, seconds_setting
from helpers import tiny

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "automm"


def _warn_calls():
    """(file, line, category source) of every ``warnings.warn`` call in automm's own package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "warn"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id.endswith("warnings")):  # (_warnings)
                category = node.args[1] if len(node.args) > 1 else next(
                    (k.value for k in node.keywords if k.arg == "category"), None)
                yield path.relative_to(ROOT), node.lineno, None if category is None else ast.unparse(category)


def test_no_warning_of_automm_is_a_bare_user_warning():
    """Every warning named the caller's line (user_stacklevel), so a program could not filter
    automm's by module, and each was a plain UserWarning (or had no category): only its message
    told it from any other library's."""
    bare = [f"{path}:{line}" for path, line, category in _warn_calls() if category in (None, "UserWarning")]
    assert bare == []


def test_a_program_silences_automms_warnings_by_their_category(emoji_split):
    train, _ = emoji_split
    X = train[["image", "name"]].assign(shop="main")  # a constant column: warned of
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        AutoMMClassifier(**tiny(max_epochs=1)).fit(X, train["category"])
    constant = [w for w in record if "holds one value in every row" in str(w.message)]
    assert len(constant) == 1 and constant[0].category is AutoMMWarning and constant[0].filename == __file__
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=automm.AutoMMWarning)
        AutoMMClassifier(**tiny(max_epochs=1)).fit(X, train["category"])
    assert [str(w.message) for w in record if "holds one value" in str(w.message)] == []
    assert issubclass(PluginLoadWarning, AutoMMWarning) and issubclass(AutoMMWarning, UserWarning)


@pytest.mark.parametrize("path", [None, 5, 2.5])
def test_a_path_that_is_no_path_is_an_input_error_naming_it(path, tmp_path):
    """save(None), load(None) and read_image_folder(None) raised Python's TypeError "expected str,
    bytes or os.PathLike object, not NoneType", naming neither the argument nor automm (and not
    an AutoMMError), where cache_dir=5 was an InputError naming cache_dir."""
    with pytest.raises(InputError, match=rf"^path: expected a folder's path \(str or os.PathLike\), got {path!r}$"):
        AutoMM.load(path)
    with pytest.raises(InputError, match=r"^path: expected a folder's path"):
        automm.read_image_folder(path)
    from automm.persistence import check_save_target

    with pytest.raises(InputError, match=r"^path: expected a folder's path"):
        check_save_target(path)


def test_a_url_as_a_models_or_caches_folder_is_refused_naming_it(tmp_path, monkeypatch):
    """save("s3://bucket/model") wrote the model to a local folder "s3:/bucket/model" (and `automm
    fit -o s3://...` did so after training); load("https://host/model") said "path:
    'https:/host/model' ... does not exist"; cache_dir="s3://..." made a local "s3:" folder."""
    monkeypatch.chdir(tmp_path)
    texts, labels = ["red apple", "blue sea"] * 6, ["a", "b"] * 6
    model = AutoMM(max_epochs=1, num_workers=0).fit(texts, labels)
    with pytest.raises(InputError, match=r"^path: 's3://bucket/model' is a URL; automm writes to local folders only "
                                         r"\(it never uploads\): give a local folder$"):
        model.save("s3://bucket/model")
    with pytest.raises(InputError, match=r"^path: 'https://host/model' is a URL; automm reads local files only"):
        AutoMM.load("https://host/model")
    with pytest.raises(InputError, match=r"^cache_dir: 'gs://bucket/cache' is a URL"):
        AutoMM(cache_dir="gs://bucket/cache", max_epochs=1).fit(texts, labels)
    with pytest.raises(InputError, match=r"^plot_dir: 's3://bucket/plots' is a URL"):
        AutoMM(plot_dir="s3://bucket/plots", n_trials=2, max_epochs=1).fit(texts, labels)
    assert list(tmp_path.iterdir()) == []


def test_load_refuses_a_cache_dir_that_is_a_file_as_fit_does(tmp_path):
    """AutoMM.load(path, cache_dir=<a file>) was taken: each prediction of new data then warned that
    the features could not be written, and computed them again (fit and the CLI refuse it)."""
    blocker = tmp_path / "cache"
    blocker.write_text("a file")
    with pytest.raises(InputError, match=r"^cache_dir: '.*cache' is a file, not a directory"):
        AutoMM.load(tmp_path / "no_model", cache_dir=blocker)


def test_a_bad_setting_in_the_environment_is_an_input_error(monkeypatch):
    """AUTOMM_IMAGE_CACHE_MB=2G stopped a fit with a bare ValueError, which `except AutoMMError` missed."""
    monkeypatch.setenv("AUTOMM_TEST_MB", "2G")
    with pytest.raises(InputError, match="AUTOMM_TEST_MB must be a number of megabytes >= 0; got '2G'"):
        megabytes_setting("AUTOMM_TEST_MB", 1)
    monkeypatch.setenv("AUTOMM_TEST_SECONDS", "soon")
    with pytest.raises(InputError, match="AUTOMM_TEST_SECONDS must be a number of seconds > 0"):
        seconds_setting("AUTOMM_TEST_SECONDS", 1)


def test_every_environment_variable_automm_reads_is_documented():
    """The feature cache's default folder follows $XDG_CACHE_HOME, which the README did not say
    (it said ~/.cache/automm): a container that sets it found its features elsewhere. Each variable
    is named in the README or a docs/ page."""
    readme = "\n".join(page.read_text(encoding="utf-8") for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    names = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r"""os\.(?:environ\.get|getenv)\(\s*["']([A-Z_][A-Z0-9_]*)["']""", text))
        names.update(re.findall(r"""["'](AUTOMM_[A-Z0-9_]+)["']""", text))
    assert names >= {"AUTOMM_CACHE_DIR", "XDG_CACHE_HOME", "AUTOMM_STORAGE"}  # (the scan finds them)
    assert sorted(name for name in names if f"${name}" not in readme and f"`{name}" not in readme) == []


def test_predict_before_fit_is_caught_as_scikit_learns_and_as_automms(tmp_path):
    """A host catching ``AutoMMError`` missed ``NotFittedError`` (scikit-learn's subclass only)."""
    from sklearn.exceptions import NotFittedError as SkNotFitted

    from automm import AutoMM, AutoMMError, NotFittedError

    for call in (lambda: AutoMM().predict(["a", "b"]), lambda: AutoMM().save(tmp_path / "m")):
        with pytest.raises(AutoMMError) as caught:
            call()
        assert isinstance(caught.value, NotFittedError) and isinstance(caught.value, SkNotFitted)
