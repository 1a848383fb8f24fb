"""The ``automm`` command line: every subcommand end to end through ``main`` (what ``automm``
runs), with its error paths and exit codes; ``python -m automm`` and the console script
``automm`` in a subprocess of their own, where only a new process shows the behaviour.

Starting Python with torch costs seconds on a contended CPU, so the subprocesses that need no
other's result are started together (``runs`` fixture) and each test checks its own."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from automm import AutoMM
from automm.cli import main
from automm.datasets import EMOJI_SAMPLE_DIR

from conftest import REPO

QUICKSTART = REPO / "recipes" / "quickstart.yaml"
EMOJI_CSV = EMOJI_SAMPLE_DIR / "emoji_sample.csv"
#: The data part of TINY_SETS: what a worker takes besides its study (the study holds the rest).
DATA_SETS = ["--set", "data.max_rows=60"]
TINY_SETS = [
    "--set", "training.max_epochs=1",
    *DATA_SETS,
    "--set", "components.encoders.image={name: cnn, image_size: 16, width: 4, depth: 1, output_dim: 16}",
    "--set", "components.encoders.text={name: hashed_ngram, n_buckets: 1024, emb_dim: 8, output_dim: 16}",
    "--set", "components.fusion={name: concat, proj_dim: 16, hidden_dim: 16}",
    "--set", "components.augmentations=null",
]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def no_traceback(self) -> bool:
        return "Traceback" not in self.err and "Traceback" not in self.out


class Runs:
    """Subprocesses started at once, collected on demand."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.procs: dict[str, tuple[subprocess.Popen, Path, Path]] = {}
        self.results: dict[str, Result] = {}

    def start(self, name: str, *args: str, command: list[str] | None = None) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore",
                   AUTOMM_DISABLE_PLUGIN_AUTOLOAD="1")  # (third-party plugins only slow these runs down)
        out, err = self.folder / f"{name}.out", self.folder / f"{name}.err"
        with open(out, "w") as stdout, open(err, "w") as stderr:
            proc = subprocess.Popen((command or [sys.executable, "-m", "automm"]) + list(args), cwd=self.folder,
                                    stdout=stdout, stderr=stderr, env=env, stdin=subprocess.DEVNULL)
        self.procs[name] = (proc, out, err)

    def get(self, name: str, *args: str, timeout: float = 600, **options) -> Result:
        """The result of run ``name`` (started now with ``args`` if it was not started)."""
        if name not in self.procs:
            self.start(name, *args, **options)
        if name not in self.results:
            proc, out, err = self.procs[name]
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:  # pragma: no cover
                proc.kill()
                raise
            self.results[name] = Result(proc.returncode, out.read_text(), err.read_text())
        return self.results[name]

    def stop(self) -> None:
        for proc, _, _ in self.procs.values():
            if proc.poll() is None:  # pragma: no cover - only after a failed test
                proc.kill()
                proc.wait()


BAD_RECIPE = """\
data:
  sample: emoji
  label: categroy
search:
  pruner: medain
training:
  max_epochs: ten
"""


@pytest.fixture(scope="module", autouse=True)
def _started_runs(request, tmp_path_factory):
    """Starts the subprocess of ``python -m automm`` at the start of this module (when a selected
    test asks for ``runs``), so that it runs while the in-process tests do; the 'slow' tests add
    the console script's, started when they ask."""
    folder = tmp_path_factory.mktemp("cli")
    if not any("runs" in item.fixturenames for item in request.session.items):
        yield Runs(folder)
        return
    (folder / "bad.yaml").write_text(BAD_RECIPE)
    runs = Runs(folder)
    runs.start("validate_bad", "validate", "bad.yaml")  # an error path: its exit status through sys.exit
    yield runs
    runs.stop()


@pytest.fixture(scope="module")
def runs(_started_runs):
    return _started_runs


# ---------------------------------------------------------------------------------- in-process
def run(capsys, *args):
    code = main(list(map(str, args)))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


@pytest.fixture(scope="module")
def regression_files(tmp_path_factory):
    """A small regression table (numbers and a categorical column) and its recipe."""
    folder = tmp_path_factory.mktemp("regression")
    rng = np.random.RandomState(0)
    x = rng.uniform(0, 1, size=(120, 2))
    colour = rng.choice(["red", "green", "blue"], size=120)
    y = 3 * x[:, 0] - x[:, 1] + (colour == "red") + rng.normal(0, 0.05, 120)
    frame = pd.DataFrame({"id": np.arange(120), "a": x[:, 0], "b": x[:, 1], "colour": colour, "price": y,
                          "part": ["train"] * 90 + ["test"] * 30})
    frame.to_csv(folder / "houses.csv", index=False)
    (folder / "recipe.yaml").write_text(yaml.safe_dump({
        "data": {"path": "houses.csv", "label": "price", "columns": ["a", "b", "colour"], "split_column": "part"},
        "problem": {"type": "regression", "metric": "rmse"},
        "training": {"max_epochs": 3, "batch_size": 32, "num_workers": 0, "learning_rate": 0.01},
        "output": {"dir": str(folder / "model")},
        "seed": 0}))
    return folder


def test_fit_reads_a_csv_files_nat_in_number_and_date_columns_as_missing(capsys, tmp_path):
    """pandas reads "NaT" in a CSV file as a string (unlike "NaN" or "<NA>"): 10% of them in a
    recipe's number and date columns stopped the fit ("6 of 60 values are not numbers ('NaT' at
    d.csv row 0, ..."), and ``automm init`` drafted the columns as text."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"price": np.round(rng.uniform(1, 9, 60), 2).astype(str),
                          "when": [f"2024-03-{d:02d}" for d in rng.integers(1, 29, 60)],
                          "label": ["a", "b"] * 30})
    frame.loc[:5, ["price", "when"]] = "NaT"
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "data": {"path": "d.csv", "label": "label", "column_types": {"price": "numeric", "when": "datetime"}},
        "training": {"max_epochs": 1, "num_workers": 0}, "output": {"dir": str(tmp_path / "model")}, "seed": 0}))
    result = run(capsys, "fit", tmp_path / "r.yaml", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["columns"] == {"price": "numeric", "when": "datetime"}
    result = run(capsys, "init", tmp_path / "d.csv", "--label", "label", "--no-search", "-o", tmp_path / "drafted.yaml")
    assert result.code == 0, result.err
    drafted = yaml.safe_load((tmp_path / "drafted.yaml").read_text())
    assert drafted["data"]["column_types"] == {"price": "numeric", "when": "datetime"}


def test_fit_json_then_evaluate_and_predict_a_regression_in_process(capsys, regression_files):
    folder = regression_files
    result = run(capsys, "fit", folder / "recipe.yaml", "--json")
    assert result.code == 0 and result.err == ""
    summary = json.loads(result.out)
    assert summary["problem_type"] == "regression" and summary["metric"] == "rmse"
    assert summary["test"]["n"] == 30 and {"r2", "rmse", "mae"} <= set(summary["test"])
    assert summary["model_dir"] == str(folder / "model")

    result = run(capsys, "evaluate", folder / "model", folder / "houses.csv", "--filter", "part=test")
    assert result.code == 0 and "rmse" in result.out and "r2" in result.out
    result = run(capsys, "evaluate", folder / "model", folder / "houses.csv", "--label", "price", "--json")
    assert json.loads(result.out)["metrics"]["n"] == 120

    result = run(capsys, "predict", folder / "model", folder / "houses.csv", "--keep", "id", "--quiet")
    frame = pd.read_csv(__import__("io").StringIO(result.out))
    assert result.code == 0 and list(frame.columns) == ["id", "prediction"] and len(frame) == 120

    result = run(capsys, "predict", folder / "model", folder / "houses.csv", "--proba")
    assert result.code == 2 and "regression" in result.err
    result = run(capsys, "predict", folder / "model", folder / "houses.csv", "--filter", "prt=test")
    assert result.code == 2 and "did you mean 'part'" in result.err
    result = run(capsys, "evaluate", folder / "model", folder / "houses.csv", "--label", "prise")
    assert result.code == 2 and "did you mean 'price'" in result.err
    (folder / "no_a.csv").write_text("b,colour,price\n0.1,red,1.0\n")
    result = run(capsys, "predict", folder / "model", folder / "no_a.csv")
    assert result.code == 1 and "lacks the column(s) ['a']" in result.err and result.no_traceback()
    assert "(to predict without it, add it with every cell empty)" in result.err  # (the message said not how)
    (folder / "empty_a.csv").write_text("a,b,colour\n,0.1,red\n,0.3,blue\n")
    result = run(capsys, "predict", folder / "model", folder / "empty_a.csv")
    assert result.code == 0 and len(result.out.splitlines()) == 3, result.err
    (folder / "renamed.csv").write_text("A,b,Colour\n0.1,0.2,red\n")  # each renamed column named (was: none)
    result = run(capsys, "predict", folder / "model", folder / "renamed.csv")
    assert result.code == 1 and "lacks the column(s) ['a', 'colour']" in result.err
    assert "rename 'A' to 'a', 'Colour' to 'colour'?" in result.err

    # -o: a file that cannot be written is refused before predicting; an earlier file is replaced whole
    result = run(capsys, "predict", folder / "model", folder / "houses.csv", "-o", folder / "nowhere" / "p.csv")
    assert result.code == 2 and "-o: folder" in result.err and "does not exist" in result.err
    result = run(capsys, "predict", folder / "model", folder / "houses.csv", "-o", folder)
    assert result.code == 2 and "is a folder" in result.err
    (folder / "p.csv").write_text("an earlier file\n")
    result = run(capsys, "predict", folder / "model", folder / "houses.csv", "-o", folder / "p.csv", "--keep", "id")
    assert result.code == 0 and len(pd.read_csv(folder / "p.csv")) == 120
    assert not [p for p in folder.iterdir() if p.name.startswith(".p.csv")]  # no temporary file left


def test_a_url_given_as_a_file_is_named_as_one_not_as_missing(capsys, tmp_path, monkeypatch):
    """``automm predict MODEL https://host/data.csv`` said "'https://...' not found": automm reads
    local files only, and says so (fit, predict, evaluate, validate; data, model and recipe)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("a,y\n1,2\n")
    (tmp_path / "r.yaml").write_text("data: {path: 'https://host/data.csv', label: y}\n")
    local_only = "is a URL; automm reads local files only (it never downloads): download it and give its path"
    for args, shown in [(("predict", "no_model", "https://host/data.csv"), "DATA: 'https://host/data.csv'"),
                        (("evaluate", "no_model", "s3://bucket/data.parquet"), "DATA: 's3://bucket/data.parquet'"),
                        (("predict", "https://host/model", "d.csv"), "MODEL_DIR: 'https://host/model'"),
                        (("fit", "https://host/data.csv", "--label", "y"), "RECIPE: 'https://host/data.csv'"),
                        (("fit", "https://host/recipe.yaml"), "recipe: 'https://host/recipe.yaml'"),
                        (("validate", "r.yaml"), "data.path: 'https://host/data.csv'")]:
        result = run(capsys, *args)
        assert result.code == 2 and f"{shown} {local_only}" in result.err, (args, result.err)
    result = run(capsys, "evaluate", "no_model", "file:///srv/data.csv")
    assert "DATA: 'file:///srv/data.csv' is a file:// URL; give the file's path itself" in result.err


def test_a_url_as_a_folder_automm_writes_is_a_usage_error_before_any_work(capsys, tmp_path, monkeypatch):
    """``automm fit -o s3://bucket/m`` trained, then saved the model in a local folder "s3:/bucket/m"
    (exit 0); ``--cache-dir s3://...`` made a local "s3:" cache."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("t,y\n" + "".join(f"word{i % 3} thing,{i % 2}\n" for i in range(20)))
    (tmp_path / "r.yaml").write_text("data: {path: d.csv, label: y}\ntraining: {max_epochs: 1}\n"
                                     "output: {dir: 's3://bucket/r'}\n")
    writes_locally = "is a URL; automm writes to local folders only (it never uploads): give a local folder"
    for args, shown in [(("fit", "d.csv", "--label", "y", "-o", "s3://bucket/m"), "-o: 's3://bucket/m'"),
                        (("fit", "r.yaml"), "output.dir: 's3://bucket/r'"),
                        (("validate", "r.yaml"), "output.dir: 's3://bucket/r'"),
                        (("cache", "info", "--cache-dir", "gs://bucket/cache"), "--cache-dir: 'gs://bucket/cache'")]:
        result = run(capsys, *args)
        assert result.code == 2 and f"{shown} {writes_locally}" in result.err, (args, result.err)
        assert "fitting" not in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "r.yaml"]


def test_a_rename_hint_names_the_column_in_another_case_before_a_merely_similar_one():
    """A model's 'title' and 'image' given as 'Title' and 'Image' beside an 'image_2': the hint
    said to rename 'image_2' to 'image' (difflib's closer string), and one column could be named
    for two ('Titles' to 'title', 'Titles' to 'titles')."""
    from types import SimpleNamespace

    from automm.cli import _model_inputs
    from automm.exceptions import InputError
    from automm.suggestions import close_match, rename_hint

    assert close_match("image", ["Title", "Image", "image_2"]) == "Image"
    assert rename_hint(["title", "titles"], ["Titles"]) == "; rename 'Titles' to 'titles'?"
    model = SimpleNamespace(columns_=["title", "image", "price"], input_positional_=False)
    data = pd.DataFrame({"Title": ["a"], "Image": ["b.png"], "price": [1.0], "image_2": ["c.png"]})
    with pytest.raises(InputError, match=r"rename 'Title' to 'title', 'Image' to 'image'\?$"):
        _model_inputs(model, data, "items.csv")


def test_a_missing_column_is_not_said_to_be_one_the_model_reads_already():
    """A file lacking the model's 'usage' column: the error asked "did you mean 'image'?", a column
    the model reads already (one missing column was matched against every column of the file;
    several against the others only)."""
    from types import SimpleNamespace

    from automm.cli import _model_inputs
    from automm.exceptions import InputError

    model = SimpleNamespace(columns_=["image", "title", "usage"], input_positional_=False)
    data = pd.DataFrame({"id": [1], "image": ["b.png"], "title": ["a"]})
    with pytest.raises(InputError, match=r"lacks the column\(s\) \['usage'\]") as raised:
        _model_inputs(model, data, "items.csv")
    assert "did you mean" not in str(raised.value)
    with pytest.raises(InputError, match=r"did you mean 'usages'\?$"):  # one the model does not read: suggested
        _model_inputs(model, data.assign(usages=["x"]), "items.csv")


def test_a_weight_column_weighs_the_fit_and_the_test_metrics(capsys, regression_files, tmp_path):
    """data.weight_column: fit's sample_weight, the test metrics weighted; evaluate reads it from
    the saved recipe; a bad weight is a recipe error before any training."""
    frame = pd.read_csv(regression_files / "houses.csv")
    frame["w"] = np.where(frame["colour"] == "red", 5.0, 1.0)
    frame.loc[frame.index % 9 == 0, "w"] = 0.0
    frame.to_csv(tmp_path / "houses.csv", index=False)
    recipe = yaml.safe_load((regression_files / "recipe.yaml").read_text())
    recipe["data"] = {"path": "houses.csv", "label": "price", "split_column": "part", "weight_column": "w",
                      "columns": ["a", "b", "colour"]}
    recipe["output"] = {"dir": str(tmp_path / "model")}
    # on the CPU, where evaluate predicts by default: the metrics below are compared to 6 digits, and
    # mixed precision on a GPU changes the 4th
    recipe["training"]["device"] = "cpu"
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = run(capsys, "fit", tmp_path / "recipe.yaml", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["weight_column"] == "w" and summary["test_weighted"]
    from automm import AutoMM
    from automm.evaluation import compute_metrics

    model = AutoMM.load(tmp_path / "model", device="cpu")
    test = frame[frame.part == "test"]
    predictions = model.predict(test[["a", "b", "colour"]])
    weighted = compute_metrics("regression", test["price"], predictions, sample_weight=test["w"])
    assert summary["test"]["rmse"] == pytest.approx(weighted["rmse"], rel=1e-6)
    assert weighted["rmse"] != pytest.approx(compute_metrics("regression", test["price"], predictions)["rmse"],
                                             rel=1e-4)
    result = run(capsys, "evaluate", tmp_path / "model", tmp_path / "houses.csv", "--filter", "part=test", "--json")
    out = json.loads(result.out)
    assert out["weight_column"] == "w" and out["metrics"]["rmse"] == pytest.approx(weighted["rmse"], rel=1e-6)
    result = run(capsys, "evaluate", tmp_path / "model", tmp_path / "houses.csv", "--weight-column", "wt")
    assert result.code == 2 and "did you mean 'w'" in result.err

    frame.loc[3, "w"] = -1.0
    frame.to_csv(tmp_path / "houses.csv", index=False)
    result = run(capsys, "fit", tmp_path / "recipe.yaml", "-o", tmp_path / "other")
    assert result.code == 2 and "data.weight_column" in result.err and "-1.0" in result.err
    assert not (tmp_path / "other").exists()
    recipe["data"]["weight_column"] = "weight"
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = run(capsys, "validate", tmp_path / "recipe.yaml")
    assert result.code == 2 and "data.weight_column" in result.err


def test_validation_rows_from_the_split_column(capsys, regression_files, tmp_path):
    """data.valid_values: rows of the split column used as fit's X_val, y_val."""
    frame = pd.read_csv(regression_files / "houses.csv")
    frame.loc[60:89, "part"] = "valid"
    frame.to_csv(tmp_path / "houses.csv", index=False)
    recipe = yaml.safe_load((regression_files / "recipe.yaml").read_text())
    recipe["data"].update(path="houses.csv", valid_values="valid")
    recipe["output"] = {"dir": str(tmp_path / "model")}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = run(capsys, "fit", tmp_path / "recipe.yaml", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert (summary["train_rows"], summary["validation_rows"], summary["test_rows"]) == (60, 30, 30)
    result = run(capsys, "fit", tmp_path / "recipe.yaml", "--overwrite")
    assert "60 train, 30 validation, 30 test" in result.out

    recipe["data"]["valid_values"] = ["valid", "train"]
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = run(capsys, "validate", tmp_path / "recipe.yaml")
    assert result.code == 2 and "data.valid_values" in result.err and "also train values" in result.err
    recipe["data"] = {"path": "houses.csv", "label": "price", "valid": "houses.csv"}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = run(capsys, "validate", tmp_path / "recipe.yaml")
    assert result.code == 2 and "data.valid: needs data.train" in result.err


def test_quiet_silences_stderr_and_leaves_the_result(capsys, regression_files, tmp_path):
    """--quiet: nothing on stderr; stdout has the result (fit: the model directory, as its help says)."""
    result = run(capsys, "fit", regression_files / "recipe.yaml", "--quiet", "-o", tmp_path / "m",
                 "--set", "training.max_epochs=1")
    assert result.code == 0 and result.err == "" and result.out.strip() == str(tmp_path / "m")
    result = run(capsys, "validate", regression_files / "recipe.yaml", "--quiet")
    assert result.code == 0 and result.err == "" and "valid" in result.out
    fit_help = " ".join(run(capsys, "fit", "--help").out.split())
    assert "-q print only the model directory" in fit_help
    predict_help = " ".join(run(capsys, "predict", "--help").out.split())
    assert "nothing on stderr but errors" in predict_help and "the result on stdout is unchanged" in predict_help


def test_evaluate_needs_a_label_when_the_model_has_no_recipe(capsys, regression_files, tmp_path):
    model = regression_files / "model"
    if not (model / "automm.json").is_file():
        pytest.skip("needs the model of the test above")
    shutil.copytree(model, tmp_path / "bare")
    (tmp_path / "bare" / "recipe.yaml").unlink()
    result = run(capsys, "evaluate", tmp_path / "bare", regression_files / "houses.csv")
    assert result.code == 2 and "--label" in result.err


def test_validate_options(capsys, tmp_path, monkeypatch, refusals_remembered):
    result = run(capsys, "validate", QUICKSTART, "--json")
    assert result.code == 0 and json.loads(result.out) == {"recipe": str(QUICKSTART), "valid": True, "problems": []}
    result = run(capsys, "validate", QUICKSTART, "--show", "--set", "training.max_epochs=3")
    assert result.code == 0 and yaml.safe_load(result.out)["training"]["max_epochs"] == 3
    # what --show prints reads back as the same recipe: a literal ${ stays escaped (it was shown as ${HOME})
    result = run(capsys, "validate", QUICKSTART, "--show", "--set", "description=cost $${HOME}")
    shown = tmp_path / "shown.yaml"
    shown.write_text(result.out)
    assert yaml.safe_load(result.out)["description"] == "cost $${HOME}"
    from automm.recipes import load_recipe

    assert load_recipe(str(shown), check_data=False).content["description"] == "cost ${HOME}"
    (tmp_path / "bad.yaml").write_text(BAD_RECIPE)
    result = run(capsys, "validate", tmp_path / "bad.yaml", "--json")
    report = json.loads(result.out)
    assert result.code == 2 and not report["valid"] and result.err == ""  # the problems once, as JSON
    assert {p["path"] for p in report["problems"]} == {"data.label", "search.pruner", "training.max_epochs"}
    result = run(capsys, "validate", tmp_path / "missing.yaml")
    assert result.code == 2 and "not found" in result.err
    result = run(capsys, "validate", QUICKSTART, "--set", "training")
    assert result.code == 2 and "KEY.PATH=VALUE" in result.err
    monkeypatch.delenv("AUTOMM_STORAGE", raising=False)
    postgres = REPO / "recipes" / "fashion_postgres.yaml"
    result = run(capsys, "validate", postgres, "--no-data")
    assert result.code == 2 and "AUTOMM_STORAGE is not set" in result.err
    result = run(capsys, "validate", postgres, "--no-data", "--set", "search.storage=postgresql://u@h/db")
    assert result.code == 0, result.err


def test_plugins_table(capsys, monkeypatch):
    import automm
    from automm.registry import DISABLE_AUTOLOAD_ENV

    result = run(capsys, "plugins")
    assert result.code == 0 and "hashed_ngram" in result.out and "automm.components.text" in result.out
    assert DISABLE_AUTOLOAD_ENV not in result.out
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")  # where an author looks for a plugin that is not there
    automm.reset_registry()
    try:
        result = run(capsys, "plugins")
        assert result.out.startswith(f"{DISABLE_AUTOLOAD_ENV} is set: installed plugins are not loaded, only the "
                                     "built-ins")
        assert json.loads(run(capsys, "plugins", "--json").out)["autoload"] is False
    finally:
        monkeypatch.undo()
        automm.reset_registry()


def test_help_everywhere(capsys):
    for command in ([], ["init"], ["fit"], ["predict"], ["evaluate"], ["validate"], ["plugins"], ["cache"], ["worker"]):
        result = run(capsys, *command, "--help")
        assert result.code == 0 and "usage: automm" in result.out
    result = run(capsys)
    assert result.code == 2 and "SUBCOMMAND" in result.err
    # every exit code a script may test is said (130, of an interrupted run, was not)
    epilog = " ".join(run(capsys, "--help").out.split())
    from automm import cli

    for code in (cli.EXIT_OK, cli.EXIT_USAGE, cli.EXIT_FAILURE, cli.EXIT_INTERRUPTED):
        assert f" {code} " in epilog.split("Exit codes:")[1], (code, epilog)
    assert "130 interrupted (Ctrl-C or SIGTERM" in epilog


def test_every_positional_argument_is_described_and_named_in_capitals(capsys):
    from automm.cli import build_parser

    for name, parser in build_parser().subcommands.items():
        for action in parser._get_positional_actions():
            assert action.help, f"automm {name} {action.dest}: no description"
            assert action.choices or (action.metavar or "").isupper(), f"automm {name}: {action.dest}"
    assert "MODEL_DIR             a directory written by 'automm fit'" in run(capsys, "evaluate", "--help").out
    assert build_parser().subcommands["validate"].format_usage().rstrip().endswith("RECIPE")  # as fit's


def test_usage_and_recipe_errors_exit_2(capsys, tmp_path):
    result = run(capsys, "fitt", "x.yaml")
    assert result.code == 2 and "invalid choice" in result.err
    result = run(capsys, "predict", "model_only")
    assert result.code == 2 and "required" in result.err
    result = run(capsys, "fit", QUICKSTART, "--set", "training.max_epochs=0", "--set", "search.prunner=none",
                 "-o", tmp_path / "never")
    assert result.code == 2 and result.no_traceback() and "did you mean 'pruner'" in result.err
    assert "training.max_epochs" in result.err and not (tmp_path / "never").exists()


def test_a_wrong_option_shows_the_subcommands_usage_and_how_to_set_a_recipe_key(capsys):
    result = run(capsys, "fit", QUICKSTART, "--max-epochs", "1")
    assert result.code == 2 and result.err.startswith("usage: automm fit ")
    assert ("automm fit: error: unrecognized arguments: --max-epochs 1; recipe values are changed with --set: "
            "did you mean --set training.max_epochs=1?\n(see 'automm fit --help')") in result.err
    assert "did you mean --set search.time_limit=60?" in run(capsys, "validate", QUICKSTART, "--time-limit=60").err
    result = run(capsys, "fit", QUICKSTART, "--epochs", "2")  # no such key: how --set is written
    assert "recipe values are changed with --set KEY.PATH=VALUE (e.g. --set training.max_epochs=5)" in result.err
    result = run(capsys, "predict", "model", "data.csv", "--max-epochs", "2")  # no --set there
    assert result.err.startswith("usage: automm predict ") and "--set" not in result.err
    assert "(see 'automm predict --help')" in result.err
    result = run(capsys, "--bogus", "plugins")  # an option of automm itself
    assert result.err.startswith("usage: automm [") and "(see 'automm --help')" in result.err
    result = run(capsys, "fit", QUICKSTART, "--set", "max_epochs=1")
    assert result.code == 2 and "max_epochs: unknown key" in result.err
    assert result.err.rstrip().endswith("did you mean 'training.max_epochs'?")


def test_user_errors_have_no_traceback_unless_debug(capsys, tmp_path):
    (tmp_path / "notamodel").mkdir()
    result = run(capsys, "predict", tmp_path / "notamodel", EMOJI_CSV)
    assert result.code == 2 and result.no_traceback() and "MODEL_DIR: " in result.err
    assert "holds no automm model" in result.err
    result = run(capsys, "predict", tmp_path / "notamodel", EMOJI_CSV, "--debug")
    assert result.code == 2 and "Traceback" in result.err


def test_unexpected_errors_and_interrupts(capsys, monkeypatch):
    import automm.cli as cli

    def boom(args):
        raise RuntimeError("kaput")
    monkeypatch.setattr(cli, "cmd_plugins", boom)
    result = run(capsys, "plugins")
    assert result.code == 1 and "kaput" in result.err and "--debug" in result.err and result.no_traceback()

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "cmd_plugins", interrupted)
    assert run(capsys, "plugins").code == 130

    def undecodable(args):  # a path of a folder 'd\xe4ta' under LC_ALL=C, PYTHONUTF8=0, given to pyarrow
        raise UnicodeEncodeError("utf-8", "/srv/d\udcc3\udca4ta/1.png", 6, 8, "surrogates not allowed")
    monkeypatch.setattr(cli, "cmd_plugins", undecodable)
    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "ascii")
    result = run(capsys, "plugins")  # (it printed its traceback)
    assert result.code == 1 and result.no_traceback() and "(unexpected; rerun with --debug" in result.err
    assert "a file or folder name holds letters that this Python's file-name encoding, 'ascii' " \
           "(sys.getfilesystemencoding()), cannot read: run it with PYTHONUTF8=1" in result.err, result.err


def test_storage_passwords_are_not_printed(capsys):
    # nothing listens on port 9: the worker says where it goes, then fails to connect
    result = run(capsys, "worker", "--storage", "postgresql://automm:s3cret@127.0.0.1:9/x", "--study", "s",
                 "--wait", "0")
    assert result.code != 0
    assert "s3cret" not in result.out + result.err
    assert "joining study 's' on postgresql://automm:***@127.0.0.1:9/x" in result.err


def test_validate_and_fit_show_no_storage_password(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOMM_STORAGE", "postgresql://automm:s3cretPW@db.example.org:5432/automm")
    postgres = REPO / "recipes" / "fashion_postgres.yaml"
    for options in ([], ["--show"], ["--json"]):
        result = run(capsys, "validate", postgres, "--no-data", *options)
        assert result.code == 0 and "s3cretPW" not in result.out + result.err
    assert "storage=postgresql://automm:***@db.example.org:5432/automm" in run(capsys, "validate", postgres,
                                                                                "--no-data").out
    # fit: its log, its summary and the recipe.yaml it saves (the storage a journal file, named s3cretPW here)
    monkeypatch.setenv("AUTOMM_STORAGE", f"journal:///{tmp_path}/s3cretPW.log")
    for options in ([], ["--json", "--overwrite"]):  # (the second run resumes the study, over the first's model)
        result = run(capsys, "fit", QUICKSTART, *TINY_SETS, "--set", "search.storage=${AUTOMM_STORAGE}", "--set",
                     "search.n_trials=1", "--set", "search.search_space={warm_start: false, linear_model: false}",
                     "-o", tmp_path / "m", *options)
        assert result.code == 0 and "s3cretPW" not in result.out + result.err, result.err
    assert "storage: ${AUTOMM_STORAGE}" in (tmp_path / "m" / "recipe.yaml").read_text()


@pytest.mark.slow
def test_worker_joins_a_study_created_by_fit(tmp_path, capsys):
    """fit searches on a journal storage; a worker started afterwards joins, finds the study
    finished and exits 0 (a concurrent worker is exercised by the search's own tests)."""
    storage = f"journal:///{tmp_path}/study.log"
    result = run(capsys, "fit", QUICKSTART, *TINY_SETS, "--set", "search.n_trials=2", "--set",
                 f"search.storage={storage}", "--set", "search.study_name=cli-test", "-o", tmp_path / "m", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["leaderboard"]
    proc = subprocess.run([sys.executable, "-m", "automm", "worker", "--storage", storage, "--study", "cli-test",
                           "--recipe", str(QUICKSTART), *DATA_SETS, "--wait", "5", "--device", "cpu"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env=dict(os.environ, AUTOMM_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().isdigit()


def test_fit_trains_prints_a_summary_and_saves_the_model(capsys, tmp_path, builtin_only):
    result = run(capsys, "fit", QUICKSTART, *TINY_SETS, "-o", tmp_path / "model")
    fitted = tmp_path / "model"
    assert result.code == 0 and result.no_traceback(), result.err
    assert "summary" in result.out and "test accuracy" in result.out and "validation accuracy" in result.out
    assert "fitting" in result.err and "saved the model" in result.err  # progress on stderr
    assert sorted(p.name for p in fitted.iterdir()) == ["automm.json", "preprocessing.json", "recipe.yaml",
                                                        "weights.safetensors"]
    reproduced = yaml.safe_load((fitted / "recipe.yaml").read_text())
    assert reproduced["seed"] == 0 and reproduced["training"]["max_epochs"] == 1
    assert AutoMM.from_recipe(str(fitted / "recipe.yaml")).get_params() == AutoMM.load(fitted).get_params()


def test_predict_writes_labels_and_probabilities(capsys, emoji_model, tmp_path):
    result = run(capsys, "predict", emoji_model, EMOJI_CSV, "--filter", "split=test", "--proba", "--keep", "name",
                 "-o", tmp_path / "predictions.csv")
    assert result.code == 0, result.err
    frame = pd.read_csv(tmp_path / "predictions.csv")
    assert len(frame) == 108 and list(frame.columns[:2]) == ["name", "prediction"]
    probabilities = frame[[c for c in frame.columns if c.startswith("proba_")]].to_numpy()
    assert probabilities.shape == (108, 9)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-4)


def test_evaluate_prints_json_metrics(capsys, emoji_model):
    result = run(capsys, "evaluate", emoji_model, EMOJI_CSV, "--filter", "split=test", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["label"] == "category" and report["problem_type"] == "multiclass"  # label from recipe.yaml
    assert report["metrics"]["n"] == 108 and set(report["metrics"]) >= {"accuracy", "macro_f1"}


def test_validate_accepts_a_good_recipe(capsys):
    result = run(capsys, "validate", QUICKSTART)
    assert result.code == 0 and "valid" in result.out and "category" in result.out


def test_fit_with_a_bad_override_does_nothing_and_exits_2(capsys, tmp_path):
    result = run(capsys, "fit", QUICKSTART, "--set", "training.max_epochs=0", "--set", "search.prunner=none",
                 "-o", tmp_path / "never")
    assert result.code == 2 and result.no_traceback()
    assert "training.max_epochs" in result.err and "did you mean 'pruner'" in result.err
    assert not (tmp_path / "never").exists()


def test_plugins_lists_every_component_with_its_source(capsys):
    result = run(capsys, "plugins", "--json")
    assert result.code == 0, result.err
    inventory = json.loads(result.out)
    builtin = {p["name"] for p in inventory["plugins"] if p["builtin"]}
    assert {"automm.components.image", "automm.components.text"} <= builtin
    components = {(c["kind"], c["name"]): c for c in inventory["components"]}
    assert components[("encoder", "cnn")]["modality"] == "image"
    assert components[("encoder", "cnn")]["package"].startswith("automm ")
    assert components[("fusion", "concat")]["plugin"] == "automm.components.fusions"
    assert components[("dataset", "emoji")]["plugin"] == "automm.datasets"
    assert all(c["plugin"] and c["package"] for c in inventory["components"])


def test_worker_on_a_missing_storage_file_fails_cleanly_and_creates_none(capsys, tmp_path):
    result = run(capsys, "worker", "--storage", f"journal:///{tmp_path}/missing.log", "--study", "nope", "--wait", "0")
    assert result.code == 2 and result.no_traceback()
    assert "--storage: " in result.err and "missing.log" in result.err and "does not exist" in result.err
    assert not (tmp_path / "missing.log").exists()


def test_usage_errors_exit_2_with_usage(capsys):
    result = run(capsys, "fitt", "x.yaml")
    assert result.code == 2 and "usage:" in result.err and "invalid choice" in result.err


def test_predict_with_a_missing_model_exits_2_without_traceback(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(capsys, "predict", "no_such_model", EMOJI_CSV, "-o", "p.csv")
    assert result.code == 2 and result.no_traceback() and "MODEL_DIR: 'no_such_model' not found" in result.err


# ---------------------------------------------------------------------------------- subprocesses (last: they ran meanwhile)
def test_validate_reports_every_problem_and_exits_2(runs):
    result = runs.get("validate_bad")
    assert result.code == 2 and result.no_traceback() and result.out == ""
    for text in ("data.label", "did you mean 'category'", "search.pruner", "did you mean 'median'",
                 "training.max_epochs", "3 problems"):
        assert text in result.err


@pytest.mark.slow
def test_console_script(runs):
    script = shutil.which("automm")
    if not script:
        pytest.skip("the automm console script is not on PATH")
    result = runs.get("script", "--version", command=[script])
    assert result.code == 0 and result.out.startswith("automm ")




def test_warnings_are_short_messages_on_stderr(capsys, monkeypatch):
    import warnings

    import automm.cli as cli

    def warns(args):
        warnings.warn("search interrupted: kept what finished")
        warnings.warn("overflow", RuntimeWarning)
        return cli.EXIT_OK
    monkeypatch.setattr(cli, "cmd_plugins", warns)
    result = run(capsys, "plugins")
    assert result.code == 0 and result.out == ""
    assert result.err.splitlines() == ["automm: warning: search interrupted: kept what finished",
                                       "automm: warning (RuntimeWarning): overflow"]
    with warnings.catch_warnings(record=True) as caught:  # --debug: left to Python's warnings
        warnings.simplefilter("always")
        result = run(capsys, "plugins", "--debug")
    assert "automm: warning" not in result.err and [w.category for w in caught] == [UserWarning, RuntimeWarning]
    result = run(capsys, "plugins", "--quiet")
    assert result.code == 0 and result.err == ""


def test_warnings_made_errors_fail_a_command_quiet_or_not_saying_so(capsys, monkeypatch):
    """Under PYTHONWARNINGS=error a warning failed `automm predict ...` with "error: AutoMMWarning: ...
    (unexpected; rerun with --debug ...)", while `automm predict ... -q` (and --json) ignored it and
    succeeded: --quiet changed what the command did, not only what it printed."""
    import warnings

    import automm.cli as cli
    from automm.exceptions import AutoMMWarning

    def warns(args):
        warnings.warn("column 'sku': unseen values", AutoMMWarning)
        return cli.EXIT_OK
    monkeypatch.setattr(cli, "cmd_plugins", warns)
    for quiet in ([], ["--quiet"], ["--json"]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # as PYTHONWARNINGS=error sets it
            result = run(capsys, "plugins", *quiet)
        assert result.code == 1 and result.out == "" and result.no_traceback(), (quiet, result)
        assert result.err == ("automm: error: column 'sku': unseen values (a warning, AutoMMWarning, made an error by "
                              "the warnings filters: PYTHONWARNINGS or python -W)\n"), (quiet, result.err)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PYTHONWARNINGS=ignore: nothing said, quiet or not
            assert run(capsys, "plugins", *quiet) == Result(0, "", "")


def test_the_fit_report_counts_a_wide_tables_columns_by_role():
    """The report's columns row named each column with its role: 22,000 characters on one line for
    a table of 1,000 columns."""
    from automm.cli import _fit_report

    columns = {"image": "image", "title": "text", **{f"f{j:03d}": "numeric" for j in range(30)}, "colour": "categorical"}
    summary = {"problem_type": "multiclass", "n_classes": 3, "recipe": "r.yaml", "data": "d.csv", "label": "y",
               "train_rows": 90, "test_rows": 10, "columns": columns,
               "components": {"encoders": {"image_0": "cnn"}, "fusion": "concat"}, "validation_score": 0.9,
               "fit_seconds": 3.0, "model_dir": "m", "epochs_run": 2, "best_epoch": 2, "stop_reason": "max_epochs reached"}
    row = next(line for line in _fit_report(summary, None).splitlines() if line.strip().startswith("columns"))
    assert row.split(None, 1)[1] == ("33 columns: 1 image (image), 1 text (title), 30 numeric (f000, f001, f002, ...), "
                                     "1 categorical (colour)")
    few = {**summary, "columns": {"image": "image", "title": "text"}}
    assert "image: image, title: text" in _fit_report(few, None)


def test_the_fit_report_says_how_the_kept_model_was_trained():
    from automm.cli import _training_line

    base = {"epochs_run": 7, "best_epoch": 5, "stop_reason": "l2 grid done"}
    assert _training_line({**base, "solver": "lbfgs", "kept_setting": {"l2_c": 100.0}}) == (
        "L2 penalty", "C = 100 kept of 7 strengths tried (l2 grid done)")
    assert _training_line({**base, "stop_reason": "max_epochs reached"}) == ("epochs", "7 run, best 5 (max_epochs reached)")
    # in the report of an ensemble, the rows about one model say which trial they describe
    from automm.cli import _fit_report

    summary = {"problem_type": "multiclass", "n_classes": 3, "recipe": "r.yaml", "data": "d.csv", "label": "y",
               "train_rows": 90, "test_rows": 10, "components": {"encoders": {"text_0": "hashed_ngram"},
                                                                  "fusion": "sum"},
               "validation_score": 0.9, "fit_seconds": 3.0, "model_dir": "m", "best_trial": 2,
               "ensemble": {"models": 2, "pooling": "linear", "members": [{"trial": 2, "weight": 0.6},
                                                                          {"trial": 0, "weight": 0.4}]},
               **base, "solver": "lbfgs", "kept_setting": {"l2_c": 100.0}}
    report = _fit_report(summary, None)
    assert "encoders (trial 2)" in report and "L2 penalty (trial 2)" in report and "fusion (trial 2)" in report
    # a bag without a search (recipes/pretrained_emoji.yaml: frozen encoders, bag_folds="auto") has
    # five fold models and no trial: it showed "encoders (trial None)" and "ensemble  trial 0 (1.00)"
    bag = {**summary, "ensemble": {"models": 5, "pooling": "linear", "members": [{"trial": 0, "weight": 1.0,
                                                                                  "models": 5}]}}
    del bag["best_trial"], bag["solver"], bag["kept_setting"]
    report = _fit_report(bag, None)
    assert "trial" not in report
    assert "5 fold models averaged (bag_folds); linear pooling" in report
    # the rows line counts the data's own validation split only: a holdout taken from the training
    # rows read "288 train, 43 validation, 108 test", as if the 43 were rows besides the 288
    holdout = {**bag, "validation_on": "holdout", "validation_rows": 9, "validation_split_rows": 0}
    assert "90 train, 10 test" in _fit_report(holdout, None)
    given = {**bag, "validation_on": "out-of-fold", "validation_rows": 99, "validation_split_rows": 9}
    assert "90 train, 9 validation, 10 test" in _fit_report(given, None)


def test_fit_refuses_an_output_folder_it_cannot_save_to_before_fitting(capsys, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a model")
    monkeypatch.setattr(AutoMM, "fit", lambda *args, **kwargs: pytest.fail("fitted a model it could not save"))
    result = run(capsys, "fit", QUICKSTART, "-o", blocker)
    assert result.code == 2 and "-o: " in result.err and "exists and is not a directory" in result.err
    result = run(capsys, "fit", QUICKSTART, "-o", blocker / "model")
    assert result.code == 2 and "-o: cannot write a model in " in result.err and result.no_traceback()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    result = run(capsys, "fit", QUICKSTART, "--set", f"output.dir={tmp_path / 'notes'}")
    assert result.code == 2 and "output.dir: " in result.err and "not an automm model" in result.err
    assert blocker.read_text() == "not a model"


def test_a_second_fit_keeps_the_model_an_earlier_run_saved_unless_told_to_overwrite(capsys, regression_files,
                                                                                    tmp_path, monkeypatch):
    """A second ``automm fit`` with the same -o (or output.dir) replaced the model the first run
    saved, silently: a user iterating over days lost a better model to a worse later run. It is
    refused before the data are read, naming the folder and the ways out; --overwrite or
    output.overwrite: true replaces it (atomically, the folder's other files kept); a folder of
    the user's files or a file is refused even then, untouched."""
    recipe, target = regression_files / "recipe.yaml", tmp_path / "model"
    assert run(capsys, "fit", recipe, "-o", target, "-q").code == 0
    (target / "notes.txt").write_text("the good one")
    saved = (target / "weights.safetensors").read_bytes()
    fitted = []
    monkeypatch.setattr(AutoMM, "fit", lambda *args, **kwargs: fitted.append(1) or pytest.fail("fitted"))
    for given in (["-o", target], ["--set", f"output.dir={target}"]):
        result = run(capsys, "fit", recipe, *given, "--set", "seed=1")
        assert result.code == 2 and result.no_traceback(), result.err
        assert f"{str(target)!r} holds a model already (saved " in result.err
        assert "--overwrite" in result.err and "output.overwrite: true" in result.err and "-o DIR" in result.err
    assert (target / "weights.safetensors").read_bytes() == saved and not fitted
    monkeypatch.undo()
    for switch in (["--overwrite"], ["--set", "output.overwrite=true"]):
        result = run(capsys, "fit", recipe, "-o", target, "-q", "--set", f"seed={len(switch)}", *switch)
        assert result.code == 0, result.err
        assert (target / "weights.safetensors").read_bytes() != saved
        saved = (target / "weights.safetensors").read_bytes()
    assert (target / "notes.txt").read_text() == "the good one"
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no replaced model or staging folder left beside it
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "todo.txt").write_text("mine")
    (tmp_path / "a-file").write_text("not a model")
    for path in (mine, tmp_path / "a-file"):
        result = run(capsys, "fit", recipe, "-o", path, "--overwrite")
        assert result.code == 2 and str(path) in result.err and "not overwriting it" in result.err
    assert os.listdir(mine) == ["todo.txt"] and (mine / "todo.txt").read_text() == "mine"
    assert (tmp_path / "a-file").read_text() == "not a model"
    result = run(capsys, "validate", recipe, "--set", "output.overwrite=maybe")
    assert result.code == 2 and "output.overwrite: expected true or false, found 'maybe'" in result.err


def test_a_model_saved_into_the_output_folder_while_fit_runs_keeps_this_fits_model_beside_it(
        capsys, regression_files, tmp_path, monkeypatch):
    """Another process that saved a model into `automm fit`'s folder while the fit ran (after the
    check before the data) made the final save refuse it, and the fitted model was lost ("holds a
    model already ...; not replacing it", exit 1). It is saved beside the folder, in a new one
    named by the time, said on stderr even under -q, exit 1; the other model stays."""
    recipe, targets = regression_files / "recipe.yaml", []
    fit = AutoMM.fit

    def fit_while_another_saves(self, *args, **kwargs):
        fitted = fit(self, *args, **kwargs)
        self.save(targets[-1])  # another process's save, into the folder this fit checked
        return fitted

    monkeypatch.setattr(AutoMM, "fit", fit_while_another_saves)
    for options in (["-q"], ["--json"]):
        targets.append(tmp_path / options[0].strip("-"))
        before = set(os.listdir(tmp_path))
        result = run(capsys, "fit", recipe, "-o", targets[-1], *options)
        assert result.code == 1 and result.no_traceback(), result.err
        [saved] = set(os.listdir(tmp_path)) - before - {targets[-1].name}
        kept = tmp_path / saved
        assert saved.startswith(f"{targets[-1].name}.20") and len(saved) == len(f"{targets[-1].name}.20261207-083004")
        assert f"not saved to {str(targets[-1])!r}" in result.err and f"beside it, to {str(kept)!r}" in result.err
        assert (result.out.strip() if options == ["-q"] else json.loads(result.out)["model_dir"]) == str(kept)
        if options == ["--json"]:
            assert json.loads(result.out)["saved_instead_of"] == str(targets[-1])
        assert yaml.safe_load((kept / "recipe.yaml").read_text())["output"]["dir"] == str(kept)
        rows = pd.read_csv(regression_files / "houses.csv")[["a", "b", "colour"]]
        assert AutoMM.load(kept).predict(rows).shape == (120,)
        assert not (targets[-1] / "recipe.yaml").exists()  # the other process's model stays where it was saved
    assert len(os.listdir(tmp_path)) == 4 and not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_a_failed_fit_leaves_no_folder_its_output_check_made(capsys, regression_files, tmp_path, monkeypatch):
    """`automm fit` checks its output folder before reading the data by making its parents; a fit
    that failed after that left them, empty: an `automm-models/` in the working directory (the test
    suite left one in the repository root). Only the empty folders the check made are removed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    monkeypatch.setattr(AutoMM, "fit", lambda *args, **kwargs: (_ for _ in ()).throw(ValueError("data broken")))
    for output in ([], ["-o", "deep/er/model"], ["-o", "mine/new/model"]):
        result = run(capsys, "fit", regression_files / "recipe.yaml", "--set", "output.dir=null", *output)
        assert result.code == 1 and "data broken" in result.err, result.err
        assert sorted(os.listdir(tmp_path)) == ["mine"] and os.listdir(tmp_path / "mine") == []
    result = run(capsys, "fit", QUICKSTART, "--set", "training.device=cuda:99")  # refused after the output check
    assert result.code == 2 and os.listdir(tmp_path) == ["mine"]

    def someone_elses_file(self, *args, **kwargs):  # a folder the check made, used by someone else meanwhile
        (tmp_path / "deep" / "notes.txt").write_text("theirs")
        raise ValueError("data broken")

    monkeypatch.setattr(AutoMM, "fit", someone_elses_file)
    assert run(capsys, "fit", regression_files / "recipe.yaml", "-o", "deep/er/model").code == 1
    assert sorted(os.listdir(tmp_path)) == ["deep", "mine"] and os.listdir(tmp_path / "deep") == ["notes.txt"]


# ---------------------------------------------------------------------------------- input errors, rows, paths
@pytest.fixture(scope="module")
def emoji_model(tmp_path_factory):
    """A tiny classifier of the emoji sample's categories from their pictures alone (seconds),
    saved with its recipe.yaml."""
    from automm.recipes import fit_recipe

    folder = tmp_path_factory.mktemp("emoji_model")
    overrides = [a for a in TINY_SETS if a != "--set" and "encoders.text" not in a] + ["data.columns=[image]"]
    fit_recipe(QUICKSTART, overrides, output_dir=str(folder / "model"), verbose=0)
    return folder / "model"


def emoji_rows(folder: Path, n: int, **columns) -> Path:
    """``n`` rows of the emoji sample (columns replaced by ``columns``) written to ``folder/items.csv``."""
    frame = pd.read_csv(EMOJI_CSV).head(n).copy()
    frame["image"] = [str(EMOJI_SAMPLE_DIR / p) for p in frame["image"]]
    for name, values in columns.items():
        frame[name] = values
    frame.to_csv(folder / "items.csv", index=False)
    return folder / "items.csv"


def test_mistakes_in_arguments_exit_2_naming_the_argument(capsys, emoji_model, tmp_path):
    """Missing files, an unusable --device, a --filter that keeps no row: exit 2 before any work,
    the argument named (and the filter's column values listed)."""
    for args, named in [(("fit", tmp_path / "nope.csv", "--label", "x"), "RECIPE: "),
                        (("init", tmp_path / "nope.csv", "--label", "x"), "DATA: "),
                        (("init", EMOJI_CSV, "--label", "category", "-o", tmp_path / "no" / "r.yaml"), "-o: folder"),
                        (("predict", emoji_model, tmp_path / "nope.csv"), "DATA: "),
                        (("evaluate", emoji_model, tmp_path / "nope.csv"), "DATA: "),
                        (("predict", tmp_path / "nomodel", EMOJI_CSV), "MODEL_DIR: "),
                        (("predict", emoji_model, EMOJI_CSV, "--device", "gpu"), "--device: 'gpu'"),
                        (("fit", QUICKSTART, "--set", "training.device=cuda:99"), "training.device: 'cuda:99'")]:
        result = run(capsys, *args)
        assert result.code == 2 and named in result.err and result.no_traceback(), (args, result.err)
    result = run(capsys, "evaluate", emoji_model, EMOJI_CSV, "--filter", "split=tset")
    assert result.code == 2 and "--filter split=tset: no row has 'tset' in column 'split'" in result.err
    assert "'test', 'train'" in result.err and "did you mean 'test'" in result.err


def test_evaluate_refuses_a_label_column_of_no_numbers_for_a_regression_before_predicting(capsys, regression_files,
                                                                                          tmp_path, monkeypatch):
    """`automm evaluate REGRESSION_MODEL data.csv --label colour` predicted every row, then failed with
    "error: ValueError: could not convert string to float: 'red' (unexpected; rerun with --debug ...)"."""
    from automm import AutoMM

    folder = regression_files
    if not (folder / "model").exists():
        assert run(capsys, "fit", folder / "recipe.yaml", "--quiet").code == 0
    frame = pd.read_csv(folder / "houses.csv")
    frame["price"] = ["about 3", "about 3", "cheap", *frame["price"][3:]]
    frame.to_csv(tmp_path / "houses.csv", index=False)
    monkeypatch.setattr(AutoMM, "predict", lambda *args: pytest.fail("predicted before the labels were checked"))
    result = run(capsys, "evaluate", folder / "model", folder / "houses.csv", "--label", "colour")
    assert result.code == 2 and result.out == "" and "unexpected" not in result.err
    assert ("error: --label: 120 of 120 values of column 'colour' are no numbers, and the model is a regression, which "
            "predicts amounts: is it the column the model predicts? Values that are no numbers: ") in result.err
    result = run(capsys, "evaluate", folder / "model", tmp_path / "houses.csv")
    assert result.code == 2 and f"data.label of {folder / 'model' / 'recipe.yaml'}: 3 of 120 values of column 'price' " \
                                "are no numbers" in result.err and "'about 3', 'cheap' (2)" in result.err


def test_an_empty_cache_dir_is_refused_not_read_as_the_current_directory(capsys, emoji_model, tmp_path,
                                                                          monkeypatch):
    """`--cache-dir "$CACHE"` with CACHE unset (a cron job) put a `features` folder into the current
    directory (predict, evaluate) or showed and cleared the features there (`automm cache`)."""
    monkeypatch.chdir(tmp_path)
    for args in (("predict", emoji_model, EMOJI_CSV), ("evaluate", emoji_model, EMOJI_CSV, "--filter", "split=test"),
                 ("cache",), ("cache", "clear")):
        for empty in ("", " "):
            result = run(capsys, *args, "--cache-dir", empty)
            assert result.code == 2 and result.out == "" and result.err == (
                "automm: error: --cache-dir: an empty path; give the feature cache's folder, or leave --cache-dir out "
                "for the default\n"), (args, result)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_refuses_a_label_column_that_holds_none_of_the_classes(capsys, emoji_model, tmp_path):
    result = run(capsys, "evaluate", emoji_model, EMOJI_CSV, "--label", "name")
    assert result.code == 2 and result.out == "" and "--label: no value of column 'name'" in result.err
    assert "Model classes: " in result.err and "'keycap 4'" in result.err  # classes vs the column's values
    # some labels the model never saw: scored, with a warning saying how many rows
    categories = pd.read_csv(EMOJI_CSV).head(30)["category"].tolist()
    data = emoji_rows(tmp_path, 30, category=["Unheard of"] * 3 + categories[3:])
    result = run(capsys, "evaluate", emoji_model, data)
    assert result.code == 0 and "accuracy" in result.out
    assert "warning: 3 of 30 rows have a label in column 'category' that the model never saw" in result.err
    result = run(capsys, "evaluate", emoji_model, data, "--json")
    assert result.code == 0 and json.loads(result.out)["unseen_label_rows"] == 3 and result.err == ""


def test_evaluate_refuses_a_label_column_most_of_whose_values_are_no_class(capsys, emoji_model, tmp_path):
    """Another column that shares a few values with the classes (masterCategory on a subCategory
    model) was scored (0.0037) with a warning that --quiet hides: a --label column whose rows'
    values are mostly no class stops evaluate now (exit 2), naming --label, how many rows and a
    few of the values. The model's own label column is scored, with the warning (its rows may be
    of classes the model never saw), as is a column with fewer such rows."""
    categories = pd.read_csv(EMOJI_CSV).head(30)["category"].tolist()
    mostly_unknown = ["Unheard of", "Elsewhere"] * 8 + categories[16:]
    data = emoji_rows(tmp_path, 30, group=mostly_unknown)
    for extra in ([], ["--quiet"], ["--json"]):
        result = run(capsys, "evaluate", emoji_model, data, "--label", "group", *extra)
        assert result.code == 2 and result.out == "" and result.no_traceback(), (extra, result.out)
        assert "--label: 16 of 30 rows hold a value of column 'group' that is none of the model's classes" \
            in result.err and "'Unheard of', 'Elsewhere' (2)" in result.err and "model classes: " in result.err
    data = emoji_rows(tmp_path, 30, group=["Unheard of", "Elsewhere"] * 7 + categories[14:], category=mostly_unknown)
    result = run(capsys, "evaluate", emoji_model, data, "--label", "group")  # not most: scored
    assert result.code == 0 and "accuracy" in result.out and "14 of 30 rows have a label" in result.err
    for own in ([], ["--label", "category"]):  # the model's own label (its recipe.yaml's): scored
        result = run(capsys, "evaluate", emoji_model, data, *own)
        assert result.code == 0 and "accuracy" in result.out and "16 of 30 rows have a label" in result.err, own


def test_evaluate_scores_the_label_of_a_model_saved_without_a_recipe_whatever_its_classes(capsys, tmp_path):
    """A model saved by AutoMM.save has no recipe.yaml naming its label, so evaluate needs --label:
    its own label column, mostly of classes the model never saw, was refused as another column (exit
    2), where the same model fitted by 'automm fit' was scored, with the warning."""
    from automm import AutoMM

    frame = pd.read_csv(EMOJI_CSV)
    seen = frame[frame["category"].isin(["Flags", "Symbols"])]
    AutoMM(max_epochs=1, num_workers=0, random_state=0, encoders={"text": "hashed_ngram"}).fit(
        seen[["name"]], seen["category"]).save(tmp_path / "model")
    frame[["name", "category"]].to_csv(tmp_path / "all.csv", index=False)  # 7 of 9 categories unseen
    result = run(capsys, "evaluate", tmp_path / "model", tmp_path / "all.csv", "--label", "category", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["unseen_label_rows"] == len(frame) - len(seen)
    result = run(capsys, "evaluate", tmp_path / "model", tmp_path / "all.csv", "--label", "category")
    assert result.code == 0 and "accuracy" in result.out
    assert f"{len(frame) - len(seen)} of {len(frame)} rows have a label in column 'category'" in result.err


def test_messages_name_rows_of_the_data_file_whatever_the_filter_kept(capsys, emoji_model, tmp_path):
    """Bad images at data rows 24.. (the 4th and later rows kept by --filter): named as rows 24.."""
    images = pd.read_csv(EMOJI_CSV).head(40)["image"].map(lambda p: str(EMOJI_SAMPLE_DIR / p)).tolist()
    data = emoji_rows(tmp_path, 40, split=["a"] * 20 + ["b"] * 20,
                      image=images[:24] + [str(tmp_path / "gone.png")] * 4 + images[28:])
    result = run(capsys, "predict", emoji_model, data, "--filter", "split=b")
    assert result.code == 1 and result.no_traceback()
    assert "items.csv row 24 (" in result.err and "items.csv row 27 (" in result.err and "row 4 (" not in result.err
    data = emoji_rows(tmp_path, 40, split=["a"] * 20 + ["b"] * 20, image=images[:39] + [str(tmp_path / "gone.png")])
    result = run(capsys, "predict", emoji_model, data, "--filter", "split=b", "--keep", "name")
    assert result.code == 0 and "warning: column 'image': 1 of 20 images" in result.err
    assert "items.csv row 39 (" in result.err


def test_relative_image_paths_are_looked_up_in_the_data_folder_then_the_current_one(capsys, emoji_model,
                                                                                     tmp_path, monkeypatch):
    """Paths relative to the current directory in a data file of another folder: predict and fit
    read them alike; where they are in neither folder, the error names both."""
    (tmp_path / "pics").mkdir()
    (tmp_path / "tables").mkdir()
    frame = pd.read_csv(EMOJI_CSV).head(40)
    for name in frame["image"]:
        shutil.copy(EMOJI_SAMPLE_DIR / name, tmp_path / "pics" / Path(name).name)
    frame["image"] = [f"pics/{Path(name).name}" for name in frame["image"]]
    frame["split"] = ["train"] * 30 + ["test"] * 10
    frame.to_csv(tmp_path / "tables" / "items.csv", index=False)
    monkeypatch.chdir(tmp_path)
    result = run(capsys, "predict", emoji_model, "tables/items.csv", "--quiet")
    assert result.code == 0 and len(pd.read_csv(__import__("io").StringIO(result.out))) == 40
    result = run(capsys, "fit", "tables/items.csv", "--label", "category", "--quiet", *TINY_SETS,
                 "--set", "search=null", "-o", "m")
    assert result.code == 0, result.err
    monkeypatch.chdir(tmp_path / "tables")
    result = run(capsys, "predict", emoji_model, "items.csv")
    assert result.code == 1 and "relative paths are in none of the folders tried" in result.err
    assert str(tmp_path / "tables") in result.err and "row 0 ('pics/" in result.err


def test_predict_keeps_columns_as_the_file_has_them_and_writes_no_rows_for_an_empty_file(capsys, emoji_model,
                                                                                         tmp_path):
    """``--keep image`` gave the resolved absolute path, not the file's value; a file with a header
    and no rows (a day without new rows) failed a batch job instead of giving no predictions."""
    frame = pd.read_csv(EMOJI_CSV).head(5)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    for name in frame["image"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(EMOJI_SAMPLE_DIR / name, tmp_path / name)
    result = run(capsys, "predict", emoji_model, tmp_path / "rows.csv", "--keep", "image", "--quiet")
    assert result.code == 0
    assert pd.read_csv(io.StringIO(result.out))["image"].tolist() == frame["image"].tolist()
    frame.head(0).to_csv(tmp_path / "empty.csv", index=False)
    result = run(capsys, "predict", emoji_model, tmp_path / "empty.csv", "--keep", "name", "--proba",
                 "-o", tmp_path / "out.csv")
    assert result.code == 0 and "has no rows: no predictions" in result.err
    written = pd.read_csv(tmp_path / "out.csv")
    assert len(written) == 0 and list(written.columns)[:2] == ["name", "prediction"]
    assert [c for c in written.columns if c.startswith("proba_")]
    frame[["name"]].head(0).to_csv(tmp_path / "wrong.csv", index=False)  # an empty file still has the columns
    result = run(capsys, "predict", emoji_model, tmp_path / "wrong.csv")
    assert result.code == 1 and "lacks the column(s) ['image']" in result.err
    result = run(capsys, "evaluate", emoji_model, tmp_path / "empty.csv")
    assert result.code == 1 and "no rows" in result.err


def test_tables_align_their_columns_as_a_terminal_shows_wide_characters():
    """A leaderboard's encoders named a Chinese column (``text_0 (商品名称)=hashed_ngram``) and a binary
    model's test F1 its class (``f1 of '正品'``): each such character takes two columns in a terminal,
    where the table counted one, and pushed the columns after it out of line."""
    from automm.cli import _display_width, _table

    rows = [("text_0 (商品名称)=hashed_ngram", "concat"), ("text_0 (title)=gru", "attention"),
            ("f1 of '正品'", "x"), ("قَمِيص", "y")]
    lines = _table(rows, headers=("encoders", "fusion")).splitlines()
    starts = {_display_width(line[:line.index(column)]) for line, column in zip(lines[2:], ("concat", "attention", "x", "y"))}
    assert starts == {_display_width(lines[0][:lines[0].index("fusion")])} == {len("  text_0 (商品名称)=hashed_ngram  ") + 4}


def test_predict_writes_a_byte_order_mark_where_its_data_file_has_one(capsys, emoji_model, tmp_path):
    """Predictions were UTF-8 without a byte-order mark, which Excel reads in the system's legacy code
    page (a Chinese or Arabic class name as mojibake) even where the data file was Excel's own "CSV
    UTF-8" (or "Unicode text"): such a file's predictions start with one; others' do not."""
    plain = emoji_rows(tmp_path, 4, name=["男士衬衫", "قميص رجالي", "red shirt", "шапка"])
    text = plain.read_text(encoding="utf-8")
    for name, encoding, marked in [("plain", None, False), ("excel", "utf-8-sig", True), ("unicode", "utf-16", True)]:
        data = plain if encoding is None else tmp_path / f"{name}.csv"
        if encoding is not None:
            data.write_text(text, encoding=encoding)
        result = run(capsys, "predict", emoji_model, data, "--keep", "name", "-o", tmp_path / f"{name}-out.csv")
        assert result.code == 0, result.err
        written = (tmp_path / f"{name}-out.csv").read_bytes()
        assert written.startswith(b"\xef\xbb\xbf") == marked, name
        assert pd.read_csv(tmp_path / f"{name}-out.csv")["name"].tolist() == ["男士衬衫", "قميص رجالي", "red shirt", "шапка"]
    result = run(capsys, "predict", emoji_model, tmp_path / "excel.csv")  # (stdout: never one)
    assert result.code == 0 and result.out.startswith("prediction")


def test_evaluate_compares_label_codes_with_a_models_numeric_classes(capsys, tmp_path):
    """Label codes '001' are now read as written; a model fitted when they were read as numbers
    has classes 1, 2, ...: evaluate found none of them among the labels."""
    from automm import AutoMM

    frame = pd.read_csv(EMOJI_CSV).head(80)
    codes = {c: f"{i + 1:03d}" for i, c in enumerate(sorted(frame["category"].unique()))}
    frame["label"] = frame["category"].map(codes)
    AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(frame[["name"]], frame["label"].astype(int)).save(
        tmp_path / "model")
    frame[["name", "label"]].to_csv(tmp_path / "codes.csv", index=False)
    result = run(capsys, "evaluate", tmp_path / "model", tmp_path / "codes.csv", "--label", "label", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["unseen_label_rows"] == 0


def test_evaluate_reads_whole_number_labels_of_a_column_with_an_empty_cell_as_the_models_int_classes(capsys,
                                                                                                       tmp_path):
    """An empty label cell makes pandas read the column as floats: 1.0 was compared with 1 as
    the strings '1.0' and '1', and every metric was 0."""
    from automm import AutoMM

    frame = pd.read_csv(EMOJI_CSV).head(80)
    frame["label"] = frame["category"].map({c: i for i, c in enumerate(sorted(frame["category"].unique()))})
    model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(frame[["name"]], frame["label"])
    model.save(tmp_path / "model")
    frame[["name", "label"]].to_csv(tmp_path / "whole.csv", index=False)
    gap = pd.concat([frame[["name", "label"]], pd.DataFrame({"name": ["grinning face"], "label": [None]})])
    gap.to_csv(tmp_path / "gap.csv", index=False)
    scores = []
    for name in ("whole.csv", "gap.csv"):
        result = run(capsys, "evaluate", tmp_path / "model", tmp_path / name, "--label", "label", "--json")
        assert result.code == 0, result.err
        scores.append(json.loads(result.out)["metrics"]["accuracy"])
    assert scores[1] == scores[0] == pytest.approx(model.score(frame[["name"]], frame["label"]))



def test_evaluate_gives_the_f1_of_bool_labels_in_a_column_with_an_empty_cell(capsys, tmp_path):
    """True/False labels with an empty cell are read as objects, compared with the bool predictions
    as the strings 'True' and 'False': the positive class True has to be one as well (f1 was 0)."""
    from automm.evaluation import compute_metrics

    frame = pd.read_csv(EMOJI_CSV).head(80)
    frame["label"] = frame["category"] == frame["category"].iloc[0]
    model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(frame[["name"]], frame["label"])
    model.save(tmp_path / "model")
    frame[["name", "label"]].to_csv(tmp_path / "whole.csv", index=False)
    gap = pd.concat([frame[["name", "label"]], pd.DataFrame({"name": ["grinning face"], "label": [None]})])
    gap.to_csv(tmp_path / "gap.csv", index=False)
    expected = compute_metrics("binary", frame["label"].to_numpy(), model.predict(frame[["name"]]), positive=True)
    assert expected["f1"] > 0
    for name in ("whole.csv", "gap.csv"):
        result = run(capsys, "evaluate", tmp_path / "model", tmp_path / name, "--label", "label", "--json")
        assert result.code == 0, result.err
        assert json.loads(result.out)["metrics"]["f1"] == pytest.approx(expected["f1"]), name


def test_fit_and_evaluate_name_the_class_whose_f1_they_report(capsys, tmp_path):
    """A binary test F1 is the positive class's, the second of classes_: with labels 'defect' and
    'ok' that is 'ok', the majority, and a bare 'test f1 0.99' read as the rare defects' F1
    (fashion, 'sandal' / 'shoe or other': 0.997 printed, the sandals' 0.71). The report names the
    class, as --json does (positive_class)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "part": ["train"] * 150 + ["test"] * 50})
    frame["label"] = np.where(frame["a"] > 1.5, "defect", "ok")
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "data": {"path": "d.csv", "label": "label", "columns": ["a"], "split_column": "part"},
        "problem": {"type": "binary", "metric": "f1"}, "training": {"max_epochs": 1, "num_workers": 0},
        "output": {"dir": str(tmp_path / "model")}, "seed": 0}))
    result = run(capsys, "fit", tmp_path / "r.yaml")
    assert result.code == 0, result.err
    lines = [line.split() for line in result.out.splitlines()]
    assert ["test", "f1", "of", "'ok'"] in [line[:4] for line in lines]
    assert ["validation", "f1", "of", "'ok'"] in [line[:4] for line in lines]
    assert not any(line[:2] == ["test", "f1"] and line[2] != "of" for line in lines)
    summary = json.loads(run(capsys, "fit", tmp_path / "r.yaml", "--json", "--overwrite").out)
    assert summary["positive_class"] == "ok" and "f1" in summary["test"]

    result = run(capsys, "evaluate", tmp_path / "model", tmp_path / "d.csv", "--filter", "part=test")
    assert result.code == 0, result.err
    assert any(line.split()[:3] == ["f1", "of", "'ok'"] for line in result.out.splitlines()), result.out
    evaluated = json.loads(run(capsys, "evaluate", tmp_path / "model", tmp_path / "d.csv", "--json").out)
    assert evaluated["positive_class"] == "ok" and "f1" in evaluated["metrics"]


def test_predict_on_a_folder_of_images_says_which_image(capsys, emoji_model, tmp_path):
    for name in pd.read_csv(EMOJI_CSV).head(3)["image"]:
        shutil.copy(EMOJI_SAMPLE_DIR / name, tmp_path / Path(name).name)
    result = run(capsys, "predict", emoji_model, tmp_path, "--quiet")
    frame = pd.read_csv(__import__("io").StringIO(result.out))
    assert result.code == 0 and list(frame.columns) == ["image", "prediction"]
    assert sorted(Path(p).name for p in frame["image"]) == sorted(p.name for p in tmp_path.glob("*.png"))


def test_the_cache_dir_help_names_the_folder_the_cache_defaults_to(capsys, tmp_path, monkeypatch):
    """The --cache-dir help of cache, predict and evaluate said "default: $AUTOMM_CACHE_DIR, else
    ~/.cache/automm", while the cache (and the README) reads $XDG_CACHE_HOME/automm in between: a
    user with XDG_CACHE_HOME set looked for the features in the wrong folder."""
    monkeypatch.delenv("AUTOMM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    result = run(capsys, "cache", "--json")
    assert result.code == 0 and json.loads(result.out)["cache_dir"] == str(tmp_path / "xdg" / "automm")
    for command in ("cache", "predict", "evaluate"):
        shown = " ".join(run(capsys, command, "--help").out.split())  # (argparse wraps the help's lines)
        assert "$AUTOMM_CACHE_DIR, else $XDG_CACHE_HOME/automm, else ~/.cache/automm" in shown, command


def test_small_wording_and_format_mends(capsys, tmp_path):
    from automm.cli import _leaderboard_table

    result = run(capsys, "cache", "clear", "--unused-days", "-3", "--cache-dir", tmp_path)
    assert result.code == 2 and "--unused-days: expected a number of days >= 0, found '-3'" in result.err
    assert "None" not in result.err
    board = pd.DataFrame({"number": [0, 1], "state": ["COMPLETE", "RUNNING"], "score": [1.0, None],
                          "epochs": [7.0, None], "best_epoch": [5.0, None]})
    first_row = _leaderboard_table(board).splitlines()[2].split()
    assert first_row == ["0", "COMPLETE", "1.0000", "7", "5"]
    # as leaderboard_frame gives it: counts as Int64, a running trial's missing (pd.NA), shown empty
    board = board.astype({"epochs": "Int64", "best_epoch": "Int64"})
    table = _leaderboard_table(board)
    assert "<NA>" not in table and table.splitlines()[3].split() == ["1", "RUNNING"]


def test_the_printed_leaderboard_shows_the_rows_that_rank_a_lower_score_first():
    """A bag's out-of-fold 0.9750 (240 rows) ranks above 1.0000 on a 24-row holdout (rank_key):
    `automm fit` printed that order without the rows, so the top trial looked misplaced."""
    from automm.cli import _leaderboard_table

    board = pd.DataFrame({"number": [1, 0], "state": ["COMPLETE", "COMPLETE"], "score": [0.975, 1.0],
                          "rows": pd.array([240, 24], dtype="Int64"), "epochs": pd.array([1, 1], dtype="Int64")})
    lines = _leaderboard_table(board).splitlines()
    assert lines[0].split() == ["number", "state", "score", "rows", "epochs"]
    assert lines[2].split() == ["1", "COMPLETE", "0.9750", "240", "1"] and lines[3].split()[3] == "24"
    # a regression's scores have no rows: no empty column
    regression = board.assign(rows=pd.array([None, None], dtype="Int64"))
    assert "rows" not in _leaderboard_table(regression).splitlines()[0]


def test_a_worker_does_not_create_the_storage_it_was_to_join(capsys, tmp_path):
    for storage in (f"sqlite:///{tmp_path}/nosuch.db", str(tmp_path / "nosuch.log")):
        result = run(capsys, "worker", "--storage", storage, "--study", "s", "--wait", "0")
        assert result.code == 2 and "--storage: " in result.err and "does not exist" in result.err
    assert list(tmp_path.iterdir()) == []


def test_a_worker_given_a_study_the_storage_lacks_names_the_ones_it_holds(capsys, tmp_path):
    import optuna

    from automm.storage import make_storage

    log = tmp_path / "study.log"
    optuna.create_study(study_name="shared", storage=make_storage("journal", str(log)))
    result = run(capsys, "worker", "--storage", log, "--study", "shard", "--wait", "0")
    assert result.code == 2, result.err  # a misspelt name, as a misspelt storage is (it exited 1)
    assert ("--study: no automm study 'shard' in the storage (waited 0 s); the storage holds 'shared'; did you mean "
            "'shared'?") in result.err


def test_a_worker_refuses_a_set_that_it_would_ignore(capsys, tmp_path):
    """A worker reads only its recipe's data: ``--set training.max_epochs=1`` was accepted and the
    study's settings used."""
    import optuna

    from automm.storage import make_storage

    log = tmp_path / "study.log"
    optuna.create_study(study_name="shared", storage=make_storage("journal", str(log)))
    (tmp_path / "r.yaml").write_text("data:\n  path: nowhere.csv\n  label: y\n")
    result = run(capsys, "worker", "--storage", log, "--study", "shared", "--wait", "0", "--recipe",
                 tmp_path / "r.yaml", "--set", "training.max_epochs=1")
    assert result.code == 2 and "--set training.max_epochs: a worker reads only the recipe's data" in result.err


def test_a_worker_names_the_settings_of_its_recipe_that_it_does_not_use(capsys, tmp_path):
    """A worker's recipe with its own ``search.time_limit: 15`` and ``training.max_epochs: 2``: the
    worker ran the study's (2 epochs, until the study's fits ended, 75 s) without a word; and its
    ``--help`` gave ``--set training.max_epochs=5`` as the example, which it refuses."""
    frame = pd.read_csv(EMOJI_CSV).head(40)
    frame.to_csv(tmp_path / "items.csv", index=False)
    log = tmp_path / "study.log"
    AutoMM(encoders={"text": {"name": "hashed_ngram", "n_buckets": 256, "emb_dim": 4, "output_dim": 4}},
           fusion={"name": "concat", "proj_dim": 4, "hidden_dim": 4}, max_epochs=1, num_workers=0, random_state=0,
           n_trials=1, ensemble_size=1, storage=str(log), study_name="shared").fit(frame[["name"]], frame["category"])
    recipe = {"data": {"path": "items.csv", "label": "category", "columns": ["name"]},
              "training": {"max_epochs": 2, "num_workers": 0}, "search": {"time_limit": 15}, "seed": 0}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    result = run(capsys, "worker", "--storage", log, "--study", "shared", "--wait", "0", "--recipe", tmp_path / "r.yaml")
    assert ("warning: study 'shared': the recipe's training.max_epochs 2 (the study's: 1), search.time_limit 15 (the "
            "study's: None) are not used: a worker trains with the study's settings") in result.err, result.err
    assert "seed" not in result.err and "num_workers" not in result.err  # the same as the study's; the worker's own
    helped = run(capsys, "worker", "--help").out
    assert "--set data.path=" in helped and "training.max_epochs" not in helped


def test_a_model_fitted_on_unnamed_inputs_predicts_a_data_file_with_columns(capsys, tmp_path):
    from helpers import tiny

    frame = pd.read_csv(EMOJI_CSV).head(40)
    images = [str(EMOJI_SAMPLE_DIR / p) for p in frame["image"]]
    model = AutoMM(**tiny(max_epochs=1)).fit(images, frame["name"].tolist(), frame["category"].tolist())
    model.save(tmp_path / "model")
    data = emoji_rows(tmp_path, 12)
    result = run(capsys, "predict", tmp_path / "model", data)
    assert result.code == 2 and result.no_traceback(), result.err
    assert ("the model was fitted on unnamed inputs (x0: image, x1: text); name the data's columns that hold them, "
            "in order (its image column, then its text column), with --columns") in result.err
    # the suggestion is in the model's order, not the file's (name,image suggested "--columns name,image")
    pd.read_csv(data)[["name", "image"]].to_csv(tmp_path / "reversed.csv", index=False)
    result = run(capsys, "predict", tmp_path / "model", tmp_path / "reversed.csv")
    assert result.code == 2 and "(e.g. --columns image,name); its columns are name, image" in result.err, result.err
    result = run(capsys, "predict", tmp_path / "model", data, "--columns", "image,name")
    assert result.code == 0, result.err
    expected = model.predict(images[:12], frame["name"].tolist()[:12])
    assert pd.read_csv(pd.io.common.StringIO(result.out))["prediction"].tolist() == list(expected)
    result = run(capsys, "evaluate", tmp_path / "model", data, "--label", "category", "--columns", "image,name",
                 "--json")
    assert result.code == 0 and json.loads(result.out)["metrics"]["n"] == 12, result.err
    for columns, message in [("image", "the model has 2 inputs (x0: image, x1: text); give as many distinct"),
                             ("image,image", "give as many distinct columns"),
                             # (it exited 1 saying the file "lacks the column(s) ['nme'] the model was trained on
                             # (to predict without it, add it with every cell empty)")
                             ("image,nme", f"--columns: {data} has no column(s) ['nme']; its columns are "
                                           "image, name, category, split; did you mean 'name'?")]:
        result = run(capsys, "predict", tmp_path / "model", data, "--columns", columns)
        assert result.code == 2 and message in result.err, result.err


@pytest.mark.parametrize("args, message", [
    (("init", EMOJI_CSV, "--label", "category", "--time-limit", "-5"), "--time-limit: expected a number of seconds "
                                                                       "> 0, found '-5'"),
    (("init", EMOJI_CSV, "--label", "category", "--time-limit", "inf"), "--time-limit: expected a number of seconds"),
    (("worker", "--storage", "j.log", "--study", "s", "--wait", "-1"), "--wait: expected a number of seconds >= 0, "
                                                                       "found '-1'"),
])
def test_a_number_of_seconds_below_its_least_is_a_usage_error_naming_the_option(capsys, args, message):
    """`automm init --time-limit -5` read the data file, drafted the recipe, then refused its
    "search.time_limit" (an option the user did not type); `automm worker --wait -1` was taken."""
    result = run(capsys, *args)
    assert result.code == 2 and message in result.err and "search.time_limit" not in result.err, result.err


def test_predict_checks_that_its_output_can_be_written_before_any_work(capsys, emoji_model, tmp_path, monkeypatch):
    import tempfile

    def unwritable(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", unwritable)
    monkeypatch.setattr(AutoMM, "load", no_loading)
    result = run(capsys, "predict", emoji_model, EMOJI_CSV, "-o", tmp_path / "out.csv")
    assert result.code == 2 and f"-o: folder {str(tmp_path)!r} cannot be written (Permission denied)" in result.err


def test_data_of_no_known_format_or_a_folder_without_images_exit_2_before_any_work(capsys, emoji_model, tmp_path):
    """A mistake in what a command was given, as a missing file is (they exited 1, and `fit x.txt
    --label y` said "--label goes with a data file")."""
    text = tmp_path / "items.txt"
    text.write_text("image,name\n")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    for command, argument in ((["predict", emoji_model], "DATA"), (["evaluate", emoji_model], "DATA"),
                              (["init"], "DATA"), (["fit"], "RECIPE")):
        label = [] if command[0] in ("predict", "evaluate") else ["--label", "label"]
        result = run(capsys, *command, text, *label)
        assert result.code == 2 and f"{argument}: {str(text)!r}: cannot tell the format from the name" in result.err
        result = run(capsys, *command, tmp_path / "empty", *label)
        assert result.code == 2 and f"{argument}: '{tmp_path / 'empty'}' holds no image files" in result.err, result.err


def test_predict_refuses_to_write_over_its_data_file_or_its_model(capsys, emoji_model, tmp_path):
    """`automm predict MODEL items.csv -o items.csv` had replaced the data with one column of
    predictions; -o into the model's own files would have broken the model."""
    data = emoji_rows(tmp_path, 5)
    before = data.read_bytes()
    result = run(capsys, "predict", emoji_model, data, "-o", data)
    assert result.code == 2 and f"-o: {str(data)!r} is the data file DATA" in result.err
    assert data.read_bytes() == before
    manifest = Path(emoji_model) / "automm.json"
    saved = manifest.read_bytes()
    result = run(capsys, "predict", emoji_model, data, "-o", manifest)
    assert result.code == 2 and "is a file of the model" in result.err and manifest.read_bytes() == saved
    import shutil

    copy = tmp_path / "copy"  # an ensemble member's file, in the model's members/ folder
    shutil.copytree(emoji_model, copy)
    (copy / "members" / "trial-1").mkdir(parents=True)
    member = copy / "members" / "trial-1" / "model.safetensors"
    member.write_bytes(b"weights")
    result = run(capsys, "predict", copy, data, "-o", member)
    assert result.code == 2 and "is a file of the model" in result.err and member.read_bytes() == b"weights"
    # automm init -o DATA --force would have replaced the data file with the recipe
    result = run(capsys, "init", data, "--label", "category", "-o", data, "--force")
    assert result.code == 2 and f"-o: {str(data)!r} is the data file DATA" in result.err
    assert data.read_bytes() == before
    recipe = tmp_path / "recipe.yaml"  # a recipe the user edited: replaced only with --force
    recipe.write_text("# my edits\n")
    result = run(capsys, "init", EMOJI_CSV, "--label", "category", "-o", recipe)
    assert result.code == 2 and f"-o: {str(recipe)!r} exists; pass --force to replace it" in result.err
    assert recipe.read_text() == "# my edits\n"
    assert run(capsys, "init", EMOJI_CSV, "--label", "category", "-o", recipe, "--force").code == 0
    assert "label: category" in recipe.read_text()
    earlier = tmp_path / "predictions.csv"  # an earlier run's predictions are replaced, as > does
    earlier.write_text("old\n")
    assert run(capsys, "predict", emoji_model, data, "-o", earlier).code == 0
    assert pd.read_csv(earlier).columns.tolist() == ["prediction"]


def test_predict_writes_to_a_pipe_or_through_a_link_rather_than_replace_it(capsys, emoji_model, tmp_path):
    """`-o /dev/stdout` (a link to a pipe or a device), `-o /dev/null` or a FIFO: predict had put
    a regular file in the pipe's place (for root, /dev/stdout and /dev/full were replaced), and a
    link `latest.csv` by a file, where the shell's `>` writes to them."""
    import threading

    data = emoji_rows(tmp_path, 5)
    fifo = tmp_path / "predictions.fifo"
    os.mkfifo(fifo)
    stdout_like = tmp_path / "stdout"  # as /dev/stdout -> /proc/self/fd/1
    stdout_like.symlink_to(fifo)
    for target in (fifo, stdout_like):
        received = []
        reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
        reader.start()
        result = run(capsys, "predict", emoji_model, data, "-o", target)
        reader.join(timeout=30)
        assert result.code == 0, result.err
        assert received and received[0].splitlines()[0] == "prediction" and len(received[0].splitlines()) == 6
        assert fifo.is_fifo() and stdout_like.is_symlink()
    dated = tmp_path / "predictions-2024-06-01.csv"
    dated.write_text("old\n")
    latest = tmp_path / "latest.csv"
    latest.symlink_to(dated.name)
    assert run(capsys, "predict", emoji_model, data, "-o", latest).code == 0
    assert latest.is_symlink() and pd.read_csv(dated).columns.tolist() == ["prediction"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["items.csv", fifo.name, "stdout", dated.name, "latest.csv"])


def test_predict_to_dev_stdout_writes_through_stdout(capsys, emoji_model, tmp_path):
    """`-o /dev/stdout` opened the path again: on a socket (journald) that fails, and where stdout
    appends to a file (`>> log`), the file was replaced. It is stdout, as without -o."""
    data = emoji_rows(tmp_path, 5)
    result = run(capsys, "predict", emoji_model, data, "-o", "/dev/stdout")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == "prediction" and len(result.out.splitlines()) == 6


def test_a_full_disk_is_said_so_not_reported_as_unexpected(capsys, emoji_model, tmp_path, monkeypatch):
    """A predictions file (or model) that a full disk cut short said "error: OSError: [Errno 28]
    ... (unexpected; rerun with --debug for the traceback)", as a bug in automm would."""
    import errno

    data = emoji_rows(tmp_path, 5)
    earlier = tmp_path / "predictions.csv"
    earlier.write_text("old\n")

    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    result = run(capsys, "predict", emoji_model, data, "-o", earlier)
    assert result.code == 1 and "error: No space left on device: free some space" in result.err, result.err
    assert "unexpected" not in result.err and earlier.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.csv", "predictions.csv"]


def test_predict_with_proba_runs_the_model_once(capsys, emoji_model, monkeypatch, tmp_path):
    calls = []
    raw_outputs = AutoMM._raw_outputs

    def counted(self, X, *rest):
        calls.append(len(X[0]))
        return raw_outputs(self, X, *rest)

    monkeypatch.setattr(AutoMM, "_raw_outputs", counted)
    data = emoji_rows(tmp_path, 10)
    result = run(capsys, "predict", emoji_model, data, "--proba")
    assert result.code == 0 and calls == [10], (calls, result.err)
    frame = pd.read_csv(pd.io.common.StringIO(result.out))
    proba = frame[[c for c in frame.columns if c.startswith("proba_")]].to_numpy()
    model = AutoMM.load(emoji_model, device="cpu")  # (where automm predict runs by default)
    assert frame["prediction"].tolist() == [model.classes_[i] for i in proba.argmax(axis=1)]
    # each column is named by its class: proba_<c> holds the probability of c (read by name, not place)
    named = frame[[f"proba_{c}" for c in model.classes_]].to_numpy()
    np.testing.assert_allclose(named, model.predict_proba(pd.read_csv(data)[list(model.columns_)]), atol=1e-5)


def test_fit_refuses_an_empty_output_path_rather_than_fall_back_to_the_recipes(capsys, tmp_path):
    result = run(capsys, "fit", QUICKSTART, *TINY_SETS, "-o", "")
    assert result.code == 2 and "-o: an empty path" in result.err


def test_predict_refuses_an_empty_output_path_by_that_name(capsys, emoji_model):
    """It said "-o: '.' is a folder" for an -o the user left empty."""
    result = run(capsys, "predict", emoji_model, str(EMOJI_CSV), "-o", "")
    assert result.code == 2 and "-o: an empty path" in result.err


def _emoji_recipe(folder, change):
    """A recipe over a copy of the emoji sample (absolute image paths) that ``change(frame)`` edited."""
    frame = pd.read_csv(EMOJI_CSV)
    frame["image"] = [str(EMOJI_SAMPLE_DIR / p) for p in frame["image"]]
    change(frame)
    frame.to_csv(folder / "data.csv", index=False)
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"path": "data.csv", "label": "category", "split_column": "split",
                                               "columns": ["image", "name"]},
                                      "training": {"max_epochs": 1, "num_workers": 0}}))
    return recipe


def test_fit_checks_the_test_rows_images_before_training_and_keeps_the_model_there(capsys, tmp_path):
    def lose_images(frame):
        test = frame["split"] == "test"
        frame.loc[test[test].index[:20], "image"] = str(tmp_path / "gone.png")  # 20 of the test rows' images

    recipe = _emoji_recipe(tmp_path, lose_images)
    result = run(capsys, "fit", recipe, *TINY_SETS[2:], "-o", tmp_path / "model")
    assert result.code != 0 and "the test rows: column 'image'" in result.err
    assert "fitting" not in result.err and not (tmp_path / "model").exists()


def test_an_interrupted_fit_saves_what_it_has_and_exits_130(capsys, tmp_path, monkeypatch):
    from automm.training import Trainer

    original = Trainer.training_step

    def interrupted_at_the_second_epoch(self, batch):
        if len(self.history) >= 1:
            raise KeyboardInterrupt
        return original(self, batch)
    monkeypatch.setattr(Trainer, "training_step", interrupted_at_the_second_epoch)
    result = run(capsys, "fit", QUICKSTART, *TINY_SETS, "--set", "training.max_epochs=5", "-o", tmp_path / "m",
                 "--json")
    assert result.code == 130, result.err
    assert json.loads(result.out)["interrupted"] is True
    assert "interrupted: the model saved to" in result.err and (tmp_path / "m" / "automm.json").exists()


def test_fit_says_a_test_set_without_labels_is_none_rather_than_absent(capsys, tmp_path):
    def drop_test_labels(frame):
        frame.loc[frame["split"] == "test", "category"] = None

    recipe = _emoji_recipe(tmp_path, drop_test_labels)
    result = run(capsys, "fit", recipe, *TINY_SETS[2:], "-o", tmp_path / "model")
    assert result.code == 0, result.err
    assert "none: its 108 rows have no label" in result.out and "no test set in the recipe" not in result.out


def test_predict_refuses_to_keep_a_column_its_output_would_replace(capsys, emoji_model, tmp_path):
    """``--keep prediction`` (yesterday's predictions, kept to compare) was silently replaced by
    the model's; ``--keep id --keep id`` wrote the column twice."""
    frame = pd.read_csv(EMOJI_CSV).head(4)
    frame["image"] = [str(EMOJI_SAMPLE_DIR / name) for name in frame["image"]]
    frame["prediction"] = "old"
    frame.to_csv(tmp_path / "rows.csv", index=False)
    result = run(capsys, "predict", emoji_model, tmp_path / "rows.csv", "--keep", "prediction")
    assert result.code == 2 and "--keep" in result.err and "'prediction'" in result.err
    result = run(capsys, "predict", emoji_model, tmp_path / "rows.csv", "--keep", "name", "--keep", "name", "-q")
    assert result.code == 0 and list(pd.read_csv(io.StringIO(result.out)).columns) == ["name", "prediction"]


def test_evaluate_warns_when_the_data_holds_the_rows_the_model_was_fitted_on(capsys, emoji_model, tmp_path):
    """The README's `automm evaluate MODEL data.csv` on the whole file scored the training rows
    with the test rows (0.82 against 0.53 on the test rows alone) without a word."""
    frame = pd.read_csv(EMOJI_CSV).head(60).copy()
    frame["image"] = [str(EMOJI_SAMPLE_DIR / p) for p in frame["image"]]
    frame["split"] = ["train"] * 40 + ["test"] * 20
    frame.to_csv(tmp_path / "items.csv", index=False)
    result = run(capsys, "evaluate", emoji_model, tmp_path / "items.csv")
    assert result.code == 0, result.err
    assert "40 of 60 rows are of the split the model was fitted on ('split' 'train'" in result.err
    assert "--filter split=test" in result.err
    result = run(capsys, "evaluate", emoji_model, tmp_path / "items.csv", "--filter", "split=test")
    assert result.code == 0 and "fitted on" not in result.err, result.err


def test_sigterm_stops_a_command_as_ctrl_c_does():
    """A scheduler's SIGTERM killed 'automm fit' at once: no model saved of the trials finished,
    nothing said, exit status -15."""
    import signal
    import time

    from automm.cli import _terminate_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with _terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_stops_a_background_job_of_a_script_as_ctrl_c_does():
    """A script's background job (`automm fit recipe.yaml &`, as entrypoint scripts that forward
    SIGTERM start it) has SIGINT ignored: SIGTERM killed it at once (exit 143), nothing saved nor
    said. (A subprocess: the old code killed the process it ran in.)"""
    code = (
        "import os, signal, time\n"
        "from automm.cli import _terminate_as_interrupt\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "try:\n"
        "    with _terminate_as_interrupt():\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(5)\n"
        "except KeyboardInterrupt:\n"
        "    print('stopped as on Ctrl-C', signal.getsignal(signal.SIGINT) is signal.SIG_IGN)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, AUTOMM_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert proc.returncode == 0 and proc.stdout.strip() == "stopped as on Ctrl-C True", (proc.returncode, proc.stderr)
    assert "terminated (SIGTERM): stopping as on Ctrl-C" in proc.stderr


def test_a_regression_recipe_on_numeric_folds_says_nothing_false_and_evaluate_matches_its_folds(capsys, tmp_path):
    """fit noted that every test row of a regression had 'a label no training row has'; evaluate's
    split warning compared '0.0' with '0' (a fold column with an empty cell is read as floats)
    and missed the training rows, and its --filter fold=2 raised a TypeError."""
    rng = np.random.RandomState(1)
    x = rng.uniform(0, 1, size=(90, 2))
    folds = [0.0, 1.0, 2.0] * 30
    folds[5] = np.nan
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "price": 3 * x[:, 0] - x[:, 1] + rng.normal(0, 0.05, 90),
                  "fold": folds}).to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({
        "data": {"path": "rows.csv", "label": "price", "columns": ["a", "b"], "split_column": "fold",
                 "train_values": [0, 1], "test_values": [2]},
        "training": {"max_epochs": 2, "batch_size": 32, "num_workers": 0},
        "output": {"dir": str(tmp_path / "model")}, "seed": 0}))
    result = run(capsys, "fit", tmp_path / "recipe.yaml")
    assert result.code == 0, result.err
    assert "no training row has" not in result.err + result.out
    result = run(capsys, "evaluate", tmp_path / "model", tmp_path / "rows.csv")
    assert result.code == 0 and "60 of 90 rows are of the split the model was fitted on" in result.err, result.err
    result = run(capsys, "evaluate", tmp_path / "model", tmp_path / "rows.csv", "--filter", "fold=2", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["metrics"]["n"] == 29 and "fitted on" not in result.err


def test_filter_on_a_string_column_with_blank_cells_lists_its_values(capsys, emoji_model, tmp_path):
    """A split column with empty cells made --filter raise TypeError ('<' between str and float)."""
    path = emoji_rows(tmp_path, 12, part=["fit"] * 5 + [None] * 2 + ["exam"] * 5)
    result = run(capsys, "predict", emoji_model, path, "--filter", "part=exam", "-q")
    assert result.code == 0 and len(pd.read_csv(io.StringIO(result.out))) == 5, result.err
    result = run(capsys, "predict", emoji_model, path, "--filter", "part=test")
    assert result.code == 2 and "its values in the rows of" in result.err and "'exam', 'fit'" in result.err
    assert "nan" not in result.err


def test_validate_names_a_misspelt_column_under_the_search_spaces_encoders(capsys, tmp_path):
    """validate said 'valid' and fit then refused search_space['encoders']: keys ['foto']."""
    path = emoji_rows(tmp_path, 12)
    recipe = {"data": {"path": str(path), "label": "category", "columns": ["image", "name"]},
              "search": {"n_trials": 2, "search_space": {"encoders": {"imag": ["cnn"], "name": ["hashed_ngram"],
                                                                      "image_0": ["cnn"]}}}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    result = run(capsys, "validate", tmp_path / "r.yaml")
    assert result.code == 2 and "search.search_space.encoders.imag" in result.err and "did you mean" in result.err
    assert "encoders.name" not in result.err and "encoders.image_0" not in result.err


def test_fit_names_the_recipe_key_of_what_fit_refuses(capsys, tmp_path):
    """'problem_type: binary needs two classes' named AutoMM's argument, not the key the user edits."""
    frame = pd.read_csv(EMOJI_CSV)
    path = emoji_rows(tmp_path, len(frame))
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "data": {"path": str(path), "label": "category", "columns": ["name"]},
        "training": {"max_epochs": 1, "num_workers": 0}}))
    result = run(capsys, "fit", tmp_path / "r.yaml", "--set", "problem.type=binary", "-o", tmp_path / "m")
    assert result.code == 1 and "problem.type (problem_type): 'binary' needs two classes" in result.err, result.err
    result = run(capsys, "fit", tmp_path / "r.yaml", "--set", "problem.type=regression", "-o", tmp_path / "m")
    assert result.code == 1 and "data.label 'category' (y): regression needs numeric labels" in result.err, result.err


def test_the_summary_names_the_columns_each_input_reads(capsys, tmp_path):
    """'image_2: cnn' left the user to work out which of three image columns image_2 was."""
    frame = pd.read_csv(EMOJI_CSV).head(60)
    frame["image"] = [str(EMOJI_SAMPLE_DIR / p) for p in frame["image"]]
    frame["back"] = frame["image"][::-1].tolist()
    frame.to_csv(tmp_path / "two.csv", index=False)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "data": {"path": str(tmp_path / "two.csv"), "label": "category", "columns": ["image", "back", "name"]},
        "training": {"max_epochs": 1, "num_workers": 0}}))
    result = run(capsys, "fit", tmp_path / "r.yaml", "-o", tmp_path / "m")
    assert result.code == 0, result.err
    assert "image_0 (image): cnn, image_1 (back): cnn, text_0 (name): hashed_ngram" in result.out


def test_windows_separators_in_image_paths_are_named(capsys, emoji_model, tmp_path):
    frame = pd.read_csv(EMOJI_CSV).head(12)
    shutil.copytree(EMOJI_SAMPLE_DIR / "images", tmp_path / "images")
    frame["image"] = [p.replace("/", "\\") for p in frame["image"]]
    frame.to_csv(tmp_path / "win.csv", index=False)
    result = run(capsys, "predict", emoji_model, tmp_path / "win.csv")
    assert result.code != 0 and "(Windows) separators" in result.err and "write them with '/'" in result.err


def test_a_role_set_in_the_recipe_that_the_values_refuse_names_its_key(capsys, tmp_path):
    path = emoji_rows(tmp_path, 40, split=["train"] * 30 + ["test"] * 10)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "data": {"path": str(path), "label": "category", "columns": ["image", "name"], "split_column": "split",
                 "column_types": {"name": "numeric"}},
        "training": {"max_epochs": 1, "num_workers": 0}}))
    result = run(capsys, "fit", tmp_path / "r.yaml", "-o", tmp_path / "m")
    assert result.code == 1 and "data.column_types.name says 'numeric'" in result.err, result.err


def test_a_role_declared_as_the_values_read_is_not_blamed_for_missing_files(capsys, tmp_path):
    """fashion.yaml declares column_types {image: image}: its missing test images were blamed on it."""
    frame = pd.read_csv(EMOJI_CSV).head(40)
    frame["image"] = [str(EMOJI_SAMPLE_DIR / p) for p in frame["image"]]
    frame["split"] = ["train"] * 30 + ["test"] * 10
    frame.loc[30:, "image"] = [str(tmp_path / f"gone{i}.png") for i in range(10)]
    frame.to_csv(tmp_path / "items.csv", index=False)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "data": {"path": str(tmp_path / "items.csv"), "label": "category", "columns": ["image", "name"],
                 "split_column": "split", "column_types": {"image": "image"}},
        "training": {"max_epochs": 1, "num_workers": 0}}))
    result = run(capsys, "fit", tmp_path / "r.yaml", "-o", tmp_path / "m")
    assert result.code != 0 and "file not found" in result.err and "data.column_types" not in result.err, result.err


def test_filter_matches_a_value_as_written_too(capsys, emoji_model, tmp_path):
    path = emoji_rows(tmp_path, 12, fold=[1.0, 2.0, None] * 4)
    for value in ("2", "2.0"):
        result = run(capsys, "predict", emoji_model, path, "--filter", f"fold={value}", "-q")
        assert result.code == 0 and len(pd.read_csv(io.StringIO(result.out))) == 4, (value, result.err)


def test_image_paths_from_home_or_with_spaces_around_them_are_read(capsys, emoji_model, tmp_path, monkeypatch):
    """`~/images/1.png` (README: `~` is expanded in image paths) and a spreadsheet's "images/1.png "
    were taken for relative paths of the data file's folder: "in none of the folders tried"."""
    frame = pd.read_csv(EMOJI_CSV).head(12)
    shutil.copytree(EMOJI_SAMPLE_DIR / "images", tmp_path / "home" / "images")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    frame["image"] = ["~/" + p if i % 2 else p + " " for i, p in enumerate(frame["image"])]
    (tmp_path / "home" / "items.csv").write_text(frame.to_csv(index=False))
    result = run(capsys, "predict", emoji_model, tmp_path / "home" / "items.csv")
    assert result.code == 0 and len(result.out.splitlines()) == 13, result.err


def test_evaluate_names_labels_that_are_a_class_written_otherwise(capsys, emoji_model, tmp_path):
    """Labels with a trailing space (or in another Unicode form: identical to the eye) were refused
    as "no value ... is one of the model's classes", listing the same-looking names side by side."""
    path = emoji_rows(tmp_path, 12)
    frame = pd.read_csv(path)
    frame["category"] = frame["category"] + " "
    frame.to_csv(path, index=False)
    result = run(capsys, "evaluate", emoji_model, path, "--label", "category")
    assert result.code == 2 and "12 of them are a class written otherwise (e.g. 'Symbols ' for the class 'Symbols'" \
        in result.err, result.err


def test_a_data_folder_named_in_letters_the_file_name_encoding_lacks_is_read(tmp_path):
    """Under LC_ALL=C with UTF-8 mode off, the paths of a data file in a folder 'd\xe4t\xe4' hold the
    escapes of its name's bytes: `automm init` and `automm fit` ended in a traceback (pyarrow: "surrogates
    not allowed"), though the files open; now they run."""
    folder = tmp_path / "d\u00e4t\u00e4"
    (folder / "pics").mkdir(parents=True)
    frame = pd.read_csv(EMOJI_CSV).head(60)
    for name in frame["image"]:
        shutil.copy(EMOJI_SAMPLE_DIR / name, folder / "pics" / Path(name).name)
    frame["image"] = [f"pics/{Path(name).name}" for name in frame["image"]]
    frame.to_csv(folder / "items.csv", index=False)
    env = dict(os.environ, LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", PYTHONWARNINGS="ignore",
               OMP_NUM_THREADS="1", AUTOMM_DISABLE_PLUGIN_AUTOLOAD="1")
    command = [sys.executable, "-m", "automm"]
    done = subprocess.run(command + ["init", "d\u00e4t\u00e4/items.csv", "--label", "category", "--no-search"],
                          cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0 and b"image: image" in done.stdout, done.stderr.decode(errors="replace")
    done = subprocess.run(command + ["fit", "d\u00e4t\u00e4/items.csv", "--label", "category", *TINY_SETS,
                                     "--set", "search=null", "-o", "m", "-q"],
                          cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0 and (tmp_path / "m" / "automm.json").is_file(), done.stderr.decode(errors="replace")


def test_results_that_standard_output_cannot_encode_are_an_error_saying_what_to_do(capsys, emoji_model, tmp_path,
                                                                                  monkeypatch):
    """LC_ALL=C with PYTHONUTF8=0: stdout writes ASCII, and a class 'Caf\\xe9' or a column 'Gr\\xf6\\xdfe' in
    the results ended the command with "UnicodeEncodeError ... (unexpected)"."""
    import automm.cli as cli

    def report(summary, leaderboard):
        return "columns  Gr\u00f6\u00dfe: text"

    monkeypatch.setattr(cli, "_fit_report", report)
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")
    monkeypatch.setattr(sys, "stdout", stdout)
    code = main(["fit", str(QUICKSTART), *TINY_SETS, "-o", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 1 and "standard output writes ascii only (sys.stdout.encoding), and the output holds '\\xf6': run " \
        "automm with PYTHONIOENCODING=utf-8" in err and "unexpected" not in err, err


def test_a_worker_given_a_study_the_storage_lacks_lists_long_study_names_whole(capsys, tmp_path):
    """Study names are what a user types again: a long one is listed whole, not cut as row values are."""
    import optuna

    from automm.storage import make_storage

    log = tmp_path / "study.log"
    name = "catalogue-" + "x" * 70
    optuna.create_study(study_name=name, storage=make_storage("journal", str(log)))
    result = run(capsys, "worker", "--storage", log, "--study", "shard", "--wait", "0")
    assert result.code == 2, result.err
    assert f"the storage holds {name!r}" in result.err


def test_the_printed_leaderboard_names_the_column_of_each_input_of_one_column():
    """`automm fit`'s leaderboard showed `text_0=hashed_ngram, text_1=hashed_ngram`: which column was which?"""
    from automm.cli import _leaderboard_table

    encoders = {"text_0": {"name": "hashed_ngram"}, "text_1": {"name": "gru"}, "tabular": {"name": "tabular"}}
    board = pd.DataFrame({"number": [0], "state": ["COMPLETE"], "score": [0.9],
                          "encoders": ["text_0=hashed_ngram, text_1=gru, tabular=tabular"],
                          "config": [{"encoders": encoders, "fusion": {"name": "concat"}}]})
    inputs = {"text_0": ["productDisplayName"], "text_1": ["attributes"], "tabular": ["a", "b"]}
    row = _leaderboard_table(board, inputs).splitlines()[2]
    assert "text_0 (productDisplayName)=hashed_ngram, text_1 (attributes)=gru, tabular=tabular" in row
    assert board["encoders"].iloc[0] == "text_0=hashed_ngram, text_1=gru, tabular=tabular"  # (its frame unchanged)
