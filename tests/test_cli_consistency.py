"""Command line and recipes: data read by ``fit`` as ``predict`` and ``evaluate`` read them
(compressed files, split values, codes, kept columns, image folders), environment references
in the recipe saved beside a model, and a study's identity (class weights)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from automm.cli import main
from automm.datasets import EMOJI_SAMPLE_DIR
from helpers import study_a_worker_joins


def run(capsys, *args):
    code = main(list(map(str, args)))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_compressed_csv_is_read_as_its_text_says(tmp_path):
    """.csv.gz was sniffed by its compressed bytes: UTF-8 read as Latin-1 (with a warning that
    the file is not UTF-8), codes' leading zeros lost, a ';' file read as one column."""
    from automm.tables import read_header, read_table

    frame = pd.DataFrame({"name": ["Café crème", "Thé", "Crêpe"] * 20, "zip": ["00412", "12345", "07001"] * 20,
                          "label": ["a", "b", "a"] * 20})
    frame.to_csv(tmp_path / "items.csv.gz", index=False)
    frame.to_csv(tmp_path / "semi.csv.bz2", index=False, sep=";")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read = read_table(tmp_path / "items.csv.gz")
    assert read["name"].iloc[0] == "Café crème" and read["zip"].iloc[0] == "00412"
    assert list(read_table(tmp_path / "semi.csv.bz2").columns) == ["name", "zip", "label"]
    assert read_header(tmp_path / "semi.csv.bz2", "csv") == ["name", "zip", "label"]


def test_whole_split_values_match_a_fold_column_read_as_floats(tmp_path):
    from automm.recipes import load_recipe

    fold = np.array([0] * 30 + [1] * 10, dtype=object)
    fold[3] = None  # an empty cell: pandas reads the column as floats
    pd.DataFrame({"x": np.arange(40.0), "label": ["a", "b"] * 20, "fold": fold}).to_csv(tmp_path / "f.csv", index=False)
    recipe = load_recipe({"data": {"path": "f.csv", "label": "label", "split_column": "fold", "train_values": [0],
                                   "test_values": [1]}}, base_dir=tmp_path, require_data=True)
    data = recipe.load_data()
    assert len(data.X_train) == 29 and len(data.X_test) == 10


def test_a_variable_alone_in_a_text_key_gives_its_text(monkeypatch):
    from automm.recipes import load_recipe

    monkeypatch.setenv("RUN_ID", "20240305")
    monkeypatch.setenv("EPOCHS", "3")
    recipe = load_recipe({"data": {"sample": "emoji", "label": "category"}, "output": {"dir": "${RUN_ID}"},
                          "search": {"storage": "${STORE:-null}"}, "training": {"max_epochs": "${EPOCHS}"}},
                         check_data=False)
    assert recipe.output_dir == "20240305" and recipe.params() == {"max_epochs": 3, "storage": None}


def test_another_class_weight_is_another_search():
    from automm.study import describe_difference, search_fingerprint

    spec = {"space": {}, "objectives": ["score"], "bag_folds": 1, "params": {}, "class_weights": None,
            "inputs": [], "problem_type": "binary", "n_outputs": 2, "targets": [0, 1]}
    weighted = dict(spec, class_weights=[0.5, 1.5])
    assert search_fingerprint(spec, "d", "auto") != search_fingerprint(weighted, "d", "auto")
    assert "class_weight" in describe_difference(spec, weighted)


@pytest.fixture(scope="module")
def codes_model(tmp_path_factory):
    """A model whose label codes were read as text ('007'), its recipe's label a ${LABEL}."""
    folder = tmp_path_factory.mktemp("codes")
    rng = np.random.RandomState(0)
    x = rng.randn(120)
    pd.DataFrame({"x": x, "colour": np.where(x > 0, "red", "blue"), "code": np.where(x > 0, "007", "100")}
                 ).to_csv(folder / "train.csv", index=False)
    (folder / "r.yaml").write_text(yaml.safe_dump({
        "version": 1, "data": {"path": "train.csv", "label": "${LABEL}"},
        "training": {"max_epochs": 2, "num_workers": 0}, "output": {"dir": str(folder / "model")}, "seed": 0}))
    mp = pytest.MonkeyPatch()
    mp.setenv("LABEL", "code")
    try:
        assert main(["fit", str(folder / "r.yaml"), "-q"]) == 0
    finally:
        mp.undo()
    return folder


def test_evaluate_reads_the_saved_recipes_label_reference(capsys, codes_model, monkeypatch):
    """recipe.yaml keeps data.label: ${LABEL}: evaluate looked for a column named '${LABEL}'."""
    rows = pd.DataFrame({"x": [1.0, -1.0], "colour": ["red", "blue"], "code": ["007", "100"]})
    rows.to_csv(codes_model / "test.csv", index=False)
    monkeypatch.setenv("LABEL", "code")
    code, out, err = run(capsys, "evaluate", codes_model / "model", codes_model / "test.csv", "--json")
    assert code == 0, err
    monkeypatch.delenv("LABEL")
    code, out, err = run(capsys, "evaluate", codes_model / "model", codes_model / "test.csv")
    assert code == 2 and "LABEL" in err and "--label" in err


def test_evaluate_compares_text_codes_with_codes_read_as_numbers(capsys, codes_model):
    """A test file whose codes have no leading zero reads them as numbers: evaluate refused
    ('no value ... is one of the model's classes') where fit's test score compared them."""
    pd.DataFrame({"x": [-1.0, -2.0, 0.5], "colour": ["blue", "blue", "red"], "code": [100, 100, 100]}
                 ).to_csv(codes_model / "hundreds.csv", index=False)
    code, out, err = run(capsys, "evaluate", codes_model / "model", codes_model / "hundreds.csv", "--label", "code",
                         "--json")
    assert code == 0, err


def test_predict_keeps_columns_as_the_file_writes_them(capsys, codes_model):
    (codes_model / "new.csv").write_text("sku,price,x,colour\n1001,1.50,0.3,red\n1002,2.00,-1,blue\n,3.10,2,red\n")
    code, out, err = run(capsys, "predict", codes_model / "model", codes_model / "new.csv", "--keep", "sku",
                         "--keep", "price")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].startswith("1001,1.50,") and lines[3].startswith(",3.10,")


def test_predict_and_evaluate_look_in_the_fits_files_dir(capsys, tmp_path):
    """fit found the images through data.files_dir; evaluate on the same file did not."""
    (tmp_path / "data").mkdir()
    shutil.copytree(EMOJI_SAMPLE_DIR / "images", tmp_path / "pics")
    frame = pd.read_csv(EMOJI_SAMPLE_DIR / "emoji_sample.csv").head(80)
    frame["image"] = frame["image"].str.replace("images/", "", regex=False)
    frame["split"] = ["train"] * 60 + ["test"] * 20
    frame.to_csv(tmp_path / "data" / "items.csv", index=False)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "version": 1, "data": {"path": "data/items.csv", "files_dir": "pics", "label": "category",
                               "split_column": "split", "columns": ["image"]},
        "components": {"encoders": {"image": {"name": "cnn", "image_size": 16, "width": 4, "depth": 1,
                                              "output_dim": 8}}, "augmentations": None},
        "training": {"max_epochs": 1, "num_workers": 0}, "output": {"dir": str(tmp_path / "m")}, "seed": 0}))
    assert main(["fit", str(tmp_path / "r.yaml"), "-q"]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "evaluate", tmp_path / "m", tmp_path / "data" / "items.csv", "--filter", "split=test")
    assert code == 0, err
    code, out, err = run(capsys, "predict", tmp_path / "m", tmp_path / "data" / "items.csv", "-q")
    assert code == 0 and len(out.splitlines()) == 81, err


def test_predict_reads_the_users_images_before_those_of_the_fits_files_dir(capsys, tmp_path, monkeypatch):
    """A colleague's photos, named as the trainer's were, in the working directory: predict read
    the trainer's (the saved recipe's data.files_dir came before the working directory), so the
    command and AutoMM.load(...).predict, which reads the working directory, disagreed."""
    from automm import AutoMM

    (tmp_path / "data").mkdir()
    shutil.copytree(EMOJI_SAMPLE_DIR / "images", tmp_path / "pics")
    frame = pd.read_csv(EMOJI_SAMPLE_DIR / "emoji_sample.csv").head(40)
    frame["image"] = frame["image"].str.replace("images/", "", regex=False)
    frame.to_csv(tmp_path / "data" / "items.csv", index=False)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "version": 1, "data": {"path": "data/items.csv", "files_dir": "pics", "label": "category",
                               "columns": ["image"]},
        "components": {"encoders": {"image": {"name": "cnn", "image_size": 16, "width": 4, "depth": 1,
                                              "output_dim": 8}}, "augmentations": None},
        "training": {"max_epochs": 1, "num_workers": 0}, "output": {"dir": str(tmp_path / "m")}, "seed": 0}))
    assert main(["fit", str(tmp_path / "r.yaml"), "-q"]) == 0
    capsys.readouterr()
    colleague = tmp_path / "colleague"
    colleague.mkdir()
    for i, name in enumerate(frame["image"]):  # other pictures under the same names
        shutil.copy(tmp_path / "pics" / frame["image"].iloc[(i + 7) % len(frame)], colleague / name)
    monkeypatch.chdir(colleague)
    code, out, err = run(capsys, "predict", tmp_path / "m", tmp_path / "data" / "items.csv", "--proba", "-q")
    assert code == 0, err
    written = pd.read_csv(pd.io.common.StringIO(out)).filter(like="proba_").to_numpy()
    model = AutoMM.load(tmp_path / "m", device="cpu")  # (where automm predict runs by default)
    np.testing.assert_allclose(written, model.predict_proba(frame[["image"]]), atol=1e-6)  # the working directory's
    trainers = model.predict_proba(frame[["image"]].assign(image=[str(tmp_path / "pics" / n) for n in frame["image"]]))
    assert np.abs(written - trainers).max() > 1e-4
    monkeypatch.chdir(tmp_path)  # no such files here: the fit's folder still serves
    code, out, err = run(capsys, "predict", tmp_path / "m", tmp_path / "data" / "items.csv", "--proba", "-q")
    assert code == 0, err
    np.testing.assert_allclose(pd.read_csv(pd.io.common.StringIO(out)).filter(like="proba_").to_numpy(), trainers,
                               atol=1e-6)


def test_fit_honours_output_verbose_0(capsys, codes_model, monkeypatch):
    monkeypatch.setenv("LABEL", "code")
    code, out, err = run(capsys, "fit", codes_model / "r.yaml", "--set", "output.verbose=0", "-o",
                         codes_model / "quiet")
    assert code == 0 and "epoch 1/2" not in err, err
    assert "verbose: 0" in (codes_model / "quiet" / "recipe.yaml").read_text()


def test_a_worker_given_n_jobs_minus_1_runs_one_process_per_cpu(tmp_path, monkeypatch, capsys):
    """-1 reached the trial loops as it was, which ran one process on the CPU."""
    import automm.worker as worker
    from automm import search

    study_a_worker_joins(tmp_path)
    given = []
    monkeypatch.setattr(worker, "run_trial_loops", lambda ctx, study, ref, n_jobs, devices: given.append(n_jobs))
    worker.run_worker(str(tmp_path / "s.log"), "s", n_jobs=-1, device="cpu")
    assert given == [search.usable_cpus()]
    code, out, err = run(capsys, "worker", "--storage", tmp_path / "s.log", "--study", "s", "--n-jobs", "0")
    assert code == 2 and "--n-jobs" in err
