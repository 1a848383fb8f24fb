"""``automm init``: a recipe drafted from a data file runs under ``automm fit`` as written."""

from __future__ import annotations

import os
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from automm.cli import main
from automm.datasets import EMOJI_SAMPLE_DIR
from automm.drafting import _is_identifier, draft_recipe
from automm.exceptions import InputError
from automm.recipes import load_recipe



@pytest.fixture
def emoji_folder(tmp_path) -> Path:
    """The embedded emoji sample as a user's folder: the CSV (with an id column, a constant
    column and a product code added) beside its images."""
    folder = tmp_path / "data"
    shutil.copytree(EMOJI_SAMPLE_DIR, folder)
    frame = pd.read_csv(folder / "emoji_sample.csv")
    frame.insert(0, "emoji_id", np.arange(len(frame)) * 7 + 3)
    frame["source"] = "twemoji"
    frame["sku"] = [f"E-{i:05d}" for i in range(len(frame))]
    frame.to_csv(folder / "emoji.csv", index=False)
    return folder


def test_a_draft_infers_roles_split_and_problem_and_leaves_out_what_cannot_help(emoji_folder, tmp_path):
    draft = draft_recipe(emoji_folder / "emoji.csv", "category", recipe_dir=tmp_path, time_limit=120)
    data = draft.content["data"]
    assert data["path"] == "data/emoji.csv" and data["label"] == "category"
    assert (data["split_column"], data["train_values"], data["test_values"]) == ("split", ["train"], ["test"])
    assert data["columns"] == ["image", "name"]
    assert data["column_types"] == {"image": "image", "name": "text"}
    assert set(draft.left_out) == {"emoji_id", "source", "sku"}
    assert "identifier" in draft.left_out["emoji_id"] and "one value" in draft.left_out["source"]
    assert draft.content["problem"] == {"type": "multiclass", "metric": "auto"}
    assert draft.content["search"] == {"time_limit": 120}
    assert draft.content["output"] == {"dir": "automm-models/emoji"}
    # as 'automm fit' reads it: valid, data found relative to the recipe's folder
    load_recipe(draft.content, base_dir=tmp_path, check_data=True, require_data=True)
    text = draft.to_yaml("emoji.csv")
    assert "# Left out: 'emoji_id' (a distinct value per row: an identifier)" in text
    assert "Rows split by column 'split': 288 train, 108 test." in text
    assert yaml.safe_load(text) == draft.content


def test_a_draft_names_the_folder_images_were_found_in_when_only_the_current_directory_has_them(
        emoji_folder, tmp_path, monkeypatch):
    """Image paths relative to the working directory: the draft ran only from there."""
    frame = pd.read_csv(emoji_folder / "emoji.csv")
    frame["image"] = "data/" + frame["image"]
    (tmp_path / "tables").mkdir()
    (tmp_path / "recipes").mkdir()
    frame.to_csv(tmp_path / "tables" / "items.csv", index=False)
    monkeypatch.chdir(tmp_path)
    draft = draft_recipe(tmp_path / "tables" / "items.csv", "category", recipe_dir=tmp_path / "recipes")
    assert draft.content["data"]["files_dir"] == ".."
    monkeypatch.chdir(emoji_folder)
    data = load_recipe(draft.content, base_dir=tmp_path / "recipes").load_data()
    assert data.X_train["image"].iloc[0].startswith(str(emoji_folder))
    assert "files_dir" not in draft_recipe(emoji_folder / "emoji.csv", "category", recipe_dir=tmp_path).content["data"]


def test_every_spelling_of_a_split_value_is_kept_and_rows_of_other_values_are_named(emoji_folder, tmp_path):
    """One row spelled "Train" made the draft train on that row alone (the last spelling seen)."""
    from automm.recipes import fit_recipe

    frame = pd.read_csv(emoji_folder / "emoji.csv")
    frame.loc[frame.index[-1], "split"] = "Train"
    frame.loc[frame.index[:5], "split"] = " test "
    frame.loc[frame.index[5:8], "split"] = "holdout"
    frame.to_csv(emoji_folder / "variants.csv", index=False)
    with pytest.warns(UserWarning, match=r"3 rows of column 'split' are neither train nor test \(values 'holdout' "
                                         r"\(3\)\) and are left out"):
        draft = draft_recipe(emoji_folder / "variants.csv", "category", recipe_dir=tmp_path, time_limit=None)
    data = draft.content["data"]
    assert sorted(data["train_values"]) == ["Train", "train"] and sorted(data["test_values"]) == [" test ", "test"]
    loaded = load_recipe(draft.content, base_dir=tmp_path).load_data()
    assert len(loaded.X_train) + len(loaded.X_test) == len(frame) - 3
    assert loaded.other_split_rows == {"holdout": 3}
    logged = []
    recipe = {**draft.content, "training": {"max_epochs": 1}, "data": {**data, "max_rows": 40}}
    fit_recipe(load_recipe(recipe, base_dir=tmp_path), log=logged.append, save=False)
    assert "left out rows of other split values: 3 'holdout'" in " ".join(logged)
    assert "test rows have the features of a training row" not in " ".join(logged)
    repeated = pd.concat([frame, frame[frame.split == "train"].head(4).assign(split="test")])  # 4 seen test rows
    repeated.to_csv(emoji_folder / "repeated.csv", index=False)
    logged.clear()
    recipe["data"] = {**recipe["data"], "path": str(emoji_folder / "repeated.csv"), "max_rows": None}
    fit_recipe(load_recipe(recipe, base_dir=tmp_path), log=logged.append, save=False)
    assert "note: 4 of " in " ".join(logged) and "test rows have the features of a training row" in " ".join(logged)


def test_fit_of_a_data_file_takes_the_columns_set_and_warns_of_those_alone(emoji_folder, tmp_path, capsys,
                                                                            monkeypatch):
    """`automm fit DATA --label y --set data.columns=[image,name]`, as the caution about a column
    that determines the label advises, was refused (exit 2: the draft's data.column_types named
    the columns left out), and the caution was still given about the column left out."""
    frame = pd.read_csv(emoji_folder / "emoji.csv")
    frame["group"] = frame["category"].str[:3] + "-x"  # one group per category: determines the label
    frame.to_csv(emoji_folder / "grouped.csv", index=False)
    monkeypatch.chdir(tmp_path)
    tiny = ["--set", "training.max_epochs=1", "--set", "data.max_rows=60", "--set", "search=null",
            "--set", "components.encoders.image={name: cnn, image_size: 16, width: 4, depth: 1, output_dim: 16}",
            "--set", "components.encoders.text={name: hashed_ngram, n_buckets: 1024, emb_dim: 8, output_dim: 16}"]
    with pytest.warns(UserWarning, match="column 'group' determines the label"):
        draft_recipe(emoji_folder / "grouped.csv", "category", recipe_dir=tmp_path)
    code = main(["fit", str(emoji_folder / "grouped.csv"), "--label", "category", *tiny,
                 "--set", "data.columns=[image, name]", "-o", "chosen"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "determines the label" not in captured.err and "from image (image), name (text)" in captured.err
    saved = yaml.safe_load((tmp_path / "chosen" / "recipe.yaml").read_text())["data"]
    assert saved["columns"] == ["image", "name"] and saved["column_types"] == {"image": "image", "name": "text"}
    # a column the draft leaves out (an identifier) is used when named; a misspelt one is named by the check
    draft = draft_recipe(emoji_folder / "grouped.csv", "category", recipe_dir=tmp_path, columns=["name", "emoji_id"])
    assert draft.content["data"]["column_types"] == {"name": "text", "emoji_id": "numeric"} and not draft.left_out
    code = main(["fit", str(emoji_folder / "grouped.csv"), "--label", "category", *tiny,
                 "--set", "data.columns=[image, nme]", "-o", "misspelt"])
    assert code == 2 and "data.columns[1]: no column 'nme' in the data" in capsys.readouterr().err


def test_init_writes_a_recipe_that_fit_runs(emoji_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    target = recipes / "emoji.yaml"
    assert main(["init", str(emoji_folder / "emoji.csv"), "--label", "category", "-o", str(target),
                 "--no-search"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(target) and f"next: automm fit {target}" in captured.err
    recipe = yaml.safe_load(target.read_text())
    assert recipe["data"]["path"] == "../data/emoji.csv" and "search" not in recipe
    tiny = ["--set", "training.max_epochs=1", "--set", "data.max_rows=60",
            "--set", "components.encoders.image={name: cnn, image_size: 16, width: 4, depth: 1, output_dim: 16}",
            "--set", "components.encoders.text={name: hashed_ngram, n_buckets: 1024, emb_dim: 8, output_dim: 16}"]
    assert main(["fit", str(target), "-q", *tiny]) == 0
    model_dir = Path(capsys.readouterr().out.strip())
    assert model_dir == tmp_path / "automm-models" / "emoji" and (model_dir / "recipe.yaml").is_file()

    # nothing already written is replaced unless asked
    before = target.read_text()
    assert main(["init", str(emoji_folder / "emoji.csv"), "--label", "category", "-o", str(target)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and target.read_text() == before
    assert main(["init", str(emoji_folder / "emoji.csv"), "--label", "category", "-o", str(target), "--force",
                 "--time-limit", "30"]) == 0
    assert yaml.safe_load(target.read_text())["search"] == {"time_limit": 30}
    for force in ([], ["--force"]):  # a folder: said before drafting (with --force it failed late, exit 1)
        assert main(["init", str(emoji_folder / "emoji.csv"), "--label", "category", "-o", str(tmp_path), *force]) == 2
        assert f"-o: {str(tmp_path)!r} is a folder; name the recipe file to write" in capsys.readouterr().err
    # without -o, the recipe goes to stdout, its data path relative to the working directory
    capsys.readouterr()
    assert main(["init", str(emoji_folder / "emoji.csv"), "--label", "category"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["path"] == "data/emoji.csv"


def test_init_through_a_link_or_to_a_stream_writes_paths_that_validate_reads(emoji_folder, tmp_path, capsys,
                                                                             monkeypatch):
    """`-o recipes/current.yaml`, a link to a file in another folder: the recipe is written there
    (the link followed), but its data path was made relative to the link's folder while validate
    and fit read it from the file's (data.path: file not found). `-o /dev/stdout` (a device)
    asked for --force ("exists") and wrote paths relative to /dev."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipes").mkdir()
    (tmp_path / "versions" / "v1").mkdir(parents=True)
    link = tmp_path / "recipes" / "current.yaml"
    link.symlink_to(tmp_path / "versions" / "v1" / "emoji.yaml")
    assert main(["init", str(emoji_folder / "emoji.csv"), "--label", "category", "-o", str(link), "--no-search",
                 "-q"]) == 0
    assert link.is_symlink() and yaml.safe_load(link.read_text())["data"]["path"] == "../../data/emoji.csv"
    assert main(["validate", str(link), "-q"]) == 0, capsys.readouterr().err

    fifo = tmp_path / "recipe.fifo"  # as /dev/stdout on a pipe
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    assert main(["init", str(emoji_folder / "emoji.csv"), "--label", "category", "-o", str(fifo),
                 "--no-search", "-q"]) == 0, capsys.readouterr().err
    reader.join(timeout=30)
    assert received and yaml.safe_load(received[0])["data"]["path"] == "data/emoji.csv"  # as on stdout


def test_a_label_that_is_not_a_column_is_named_with_a_suggestion(emoji_folder, capsys):
    with pytest.raises(InputError, match=r"no column 'Category'; did you mean 'category'\? Its columns: emoji_id, "):
        draft_recipe(emoji_folder / "emoji.csv", "Category")
    with pytest.raises(InputError, match=r"no column 'kind'\. Its columns: emoji_id, "):
        draft_recipe(emoji_folder / "emoji.csv", "kind")
    # on the command line, a usage error (exit code 2) for 'init' and 'fit' alike
    assert main(["init", str(emoji_folder / "emoji.csv"), "--label", "Category"]) == 2
    assert "did you mean 'category'" in capsys.readouterr().err
    assert main(["fit", str(emoji_folder / "emoji.csv"), "--label", "kind"]) == 2
    assert "--label: " in capsys.readouterr().err


def test_a_draft_of_a_wide_table_counts_its_columns_by_role(tmp_path, capsys):
    """``automm init`` of a table of 1,000 columns said each with its role on one line of 25,000
    characters, and the recipe's description named them all (125 lines); a label misspelt listed them."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"n{j:02d}": rng.normal(size=60).round(3) for j in range(40)})
    for j in range(10):
        frame[f"c{j}"] = rng.choice(["a", "b", "c"], 60)
    frame["label"] = rng.choice(["x", "y"], 60)
    frame.to_csv(tmp_path / "wide.csv", index=False)
    draft = draft_recipe(tmp_path / "wide.csv", "label", recipe_dir=tmp_path)
    assert draft.describe() == ("'label' from 50 columns: 40 numeric (n00, n01, n02, ...), 10 categorical (c0, c1, "
                                "c2, ...)")
    assert draft.content["description"] == ("label from n00, n01, n02, n03, n04, n05, n06, n07, n08, n09, ... "
                                            "(50 in all) (drafted by automm init from wide.csv)")
    assert len(draft.content["data"]["columns"]) == 50  # (the recipe itself names each)
    assert main(["init", str(tmp_path / "wide.csv"), "--label", "labl", "-o", str(tmp_path / "r.yaml")]) == 2
    said = next(line for line in capsys.readouterr().err.splitlines() if "Its columns" in line)
    assert said.endswith("did you mean 'label'? Its columns: n00, n01, n02, n03, n04, n05, n06, n07, n08, n09, ... "
                         "(51 in all)"), said


def test_no_split_column_a_regression_label_and_rare_classes(tmp_path):
    rng = np.random.default_rng(0)
    words = ["red", "blue", "green", "small", "large", "soft", "hard", "round"]
    frame = pd.DataFrame({
        "description": [" ".join(rng.choice(words, 4)) for _ in range(60)],
        "weight": rng.normal(10, 2, 60).round(2),
        "price": rng.uniform(1, 100, 60).round(2),
    })
    frame.to_csv(tmp_path / "items.csv", index=False)
    draft = draft_recipe(tmp_path / "items.csv", "price", recipe_dir=tmp_path)
    assert draft.content["problem"]["type"] == "regression"
    assert draft.content["data"]["column_types"] == {"description": "text", "weight": "numeric"}
    assert "split_column" not in draft.content["data"]
    assert any("No split column found" in note for note in draft.notes)

    frame["kind"] = ["common"] * 57 + ["rare", "rare", "odd"]
    frame.to_csv(tmp_path / "items.csv", index=False)
    draft = draft_recipe(tmp_path / "items.csv", "kind", recipe_dir=tmp_path)
    assert draft.content["problem"]["type"] == "multiclass"
    assert "price" in draft.content["data"]["columns"]
    assert any("2 of them have fewer than 5 training rows ('rare', 'odd')" in note for note in draft.notes)


def test_a_label_of_evenly_spaced_whole_numbers_is_pointed_out_as_maybe_a_regression(tmp_path):
    """A label of 12 years was drafted as 12 classes, with a hint to drop the rare ones, and not a word of
    regression; the type stays as inferred (class codes look alike), the draft says what to check."""
    rng = np.random.default_rng(0)
    years = np.r_[rng.choice(np.arange(2008, 2018), 115), [2018, 2018, 2019, 2019, 2019]]
    frame = pd.DataFrame({"price": rng.normal(100, 20, 120).round(2), "year": years})
    frame.loc[7, "year"] = None  # (a blank cell: read as floats, the years are whole numbers still)
    frame.to_csv(tmp_path / "cars.csv", index=False)
    with pytest.warns(UserWarning, match="problem.type: regression may be meant") as record:
        draft = draft_recipe(tmp_path / "cars.csv", "year", recipe_dir=tmp_path)
    assert not [w for w in record if "evenly spaced" in str(w.message) and "problem.type" not in str(w.message)]
    assert draft.content["problem"]["type"] == "multiclass"
    caution, = [c for c in draft.cautions if "regression" in c]
    assert caution.startswith("the label 'year' holds 12 evenly spaced whole numbers, 2008 to 2019, drafted as 12 "
                              "classes")
    assert f"# Check: {caution}" in draft.to_yaml("cars.csv")
    # scores by 5, 11 of 13 present: likewise; codes, few numbers, words: classes, said nothing of
    for label, said in ((rng.choice([v for v in range(40, 101, 5) if v not in (45, 90)], 120), " by 5"),
                        (rng.choice([101, 205, 310, 412, 530, 618, 707, 815, 920, 999], 120), None),
                        (rng.choice(np.arange(5), 120), None), (rng.choice(list("abcdefghijkl"), 120), None)):
        frame.assign(year=label).to_csv(tmp_path / "cars.csv", index=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cautions = [c for c in draft_recipe(tmp_path / "cars.csv", "year", recipe_dir=tmp_path).cautions
                        if "regression" in c]
        assert (said in cautions[0]) if said else not cautions


@pytest.mark.parametrize("name, values, expected", [
    ("id", [3, 1, 2], True),                    # named an id, distinct
    ("productId", ["a", "b", "c"], True),
    ("row", [1, 2, 5], True),                   # integers increasing down the file: a row number
    ("price_cents", [300, 120, 250], False),    # distinct numbers that are measurements
    ("sku", ["A-1", "B-2", "C-3"], True),       # codes holding digits
    ("short_name", ["grin", "smile", "wink"], False),  # distinct words: informative
    ("image", ["1.png", "2.png", "3.png"], False),
    ("id", [1, 1, 2], False),                   # repeats: not an identifier
    ("id", list(range(95)) + list(range(5)), True),  # a few rows repeated: their ids too
    ("row", list(range(95)) + list(range(5)), False),  # (not named an id: every value distinct needed)
    ("paid", [3, 1, 2], False),                 # 'id' inside a word is not a name saying id
    ("date", ["2024-03-05", "2024-03-06", "2024-03-07"], False),  # a daily series' dates: its features
    ("time", ["2024-03-05T14:00:00", "2024-03-05T15:00:00", "2024-03-05T16:00:00"], False),
    ("month", ["2024-01", "2024-02", "2024-03"], False),  # a monthly series' months (were codes: left out)
    ("ts", [1709596800, 1709683200, 1709769600], False),  # Unix times rise by 86,400 a row, not by one
    ("row", [3, 4, 5, 9, 10, 11, 12], True),    # a row number with rows deleted
    ("sqft", [510, 514, 521, 522, 530, 533, 541], False),  # a table sorted by a measurement
    ("timestamp", [1_700_000_000 + 5 * i for i in range(7)], False),  # a log every 5 seconds
    # titles of a script written without spaces, each with a number (a size, a year): phrases, not codes
    ("title", ["男士T恤42码", "女士休闲高跟鞋2024新款", "儿童运动鞋3双装"], False),
    ("title", ["メンズTシャツ2枚組", "レディース靴24cm", "キッズ靴下3足"], False),
    ("title", ["เสื้อยืดผู้ชาย2ตัว", "รองเท้าผู้หญิง38", "ถุงเท้า3คู่"], False),
    ("plate", ["京A12345", "沪B67890", "粤C24680"], True),  # one character of such a script in a code
])
def test_identifiers(name, values, expected):
    assert _is_identifier(name, values, len(values)) is expected


def test_a_draft_for_the_shared_fashion_file(fashion_dir, tmp_path):
    csv = fashion_dir / "fashion.csv"
    draft = draft_recipe(csv, "subCategory", recipe_dir=tmp_path)
    data = draft.content["data"]
    assert data["column_types"] == {"image": "image", "productDisplayName": "text", "gender": "categorical",
                                    "baseColour": "categorical", "season": "categorical", "usage": "categorical",
                                    "masterCategory": "categorical"}
    assert list(draft.left_out) == ["id"] and data["split_column"] == "split"
    assert any("fewer than 5 training rows" in note and "'Saree'" in note for note in draft.notes)
    assert draft.cautions == []  # masterCategory does not tell the sub-category
    load_recipe(draft.content, base_dir=tmp_path, check_data=True, require_data=True)


def test_a_draft_points_out_a_column_that_gives_the_answer_and_an_identifier_label(fashion_dir, tmp_path):
    csv = fashion_dir / "fashion.csv"
    with pytest.warns(UserWarning, match="column 'subCategory' determines the label: each of its 30 values goes "
                                         "with one 'masterCategory' value"):
        draft = draft_recipe(csv, "masterCategory", recipe_dir=tmp_path)
    assert len(draft.cautions) == 1 and "# Check: column 'subCategory' determines" in draft.to_yaml("fashion.csv")
    with pytest.warns(UserWarning, match="the label 'id' looks like an identifier"):
        draft_recipe(csv, "id", recipe_dir=tmp_path)


def test_fit_drafts_the_recipe_of_a_data_file_given_a_label(emoji_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = pd.read_csv(emoji_folder / "emoji.csv")
    frame.loc[[0, int((frame["split"] == "test").idxmax())], "category"] = None  # a train and a test row unlabelled
    frame.to_csv(emoji_folder / "emoji.csv", index=False)
    tiny = ["--set", "training.max_epochs=1", "--set", "search.n_trials=1", "--set", "data.max_rows=60",
            "--set", "components.encoders.image={name: cnn, image_size: 16, width: 4, depth: 1, output_dim: 16}",
            "--set", "components.encoders.text={name: hashed_ngram, n_buckets: 1024, emb_dim: 8, output_dim: 16}"]
    assert main(["fit", str(emoji_folder / "emoji.csv"), "--label", "category", "--set", "search.time_limit=null",
                 *tiny]) == 0
    captured = capsys.readouterr()
    assert "drafted a recipe from" in captured.err and "left out emoji_id, source, sku" in captured.err
    assert "left out rows without a label: 1 train, 1 test" in captured.err
    assert "test accuracy" in captured.out
    saved = yaml.safe_load((tmp_path / "automm-models" / "emoji" / "recipe.yaml").read_text())
    assert saved["data"]["label"] == "category" and saved["data"]["columns"] == ["image", "name"]

    # a data file needs --label; a recipe names its own
    assert main(["fit", str(emoji_folder / "emoji.csv")]) == 2
    assert "is a data file: name the column to predict with --label COLUMN" in capsys.readouterr().err
    recipe = tmp_path / "r.yaml"
    assert main(["init", str(emoji_folder / "emoji.csv"), "--label", "category", "-o", str(recipe)]) == 0
    assert main(["fit", str(recipe), "--label", "category"]) == 2
    assert "--label goes with a data file" in capsys.readouterr().err


def test_a_label_of_one_value_is_refused_before_any_draft(emoji_folder, tmp_path):
    """It was drafted as "1 classes: problem.type binary", and fit failed only after starting."""
    frame = pd.read_csv(emoji_folder / "emoji.csv").assign(category="Smileys")
    frame.to_csv(emoji_folder / "one.csv", index=False)
    with pytest.raises(InputError, match=r"--label: column 'category' holds one value \('Smileys'\) in the "
                                         r"training rows .*no model can learn"):
        draft_recipe(emoji_folder / "one.csv", "category", recipe_dir=tmp_path)


def test_a_split_column_of_other_values_and_a_shuffled_sku_are_left_out_and_said(emoji_folder, tmp_path):
    """init kept a column 'split' of 'fit'/'exam' as a feature ("No split column found": the test
    rows trained) and a shuffled distinct integer 'sku' as a number."""
    frame = pd.read_csv(emoji_folder / "emoji.csv")
    frame["split"] = frame["split"].map({"train": "fit", "test": "exam"})
    frame["sku"] = np.random.default_rng(0).permutation(len(frame)) + 1000
    frame.to_csv(emoji_folder / "mine.csv", index=False)
    with pytest.warns(UserWarning, match="named like a split"):
        draft = draft_recipe(emoji_folder / "mine.csv", "category", recipe_dir=tmp_path)
    assert "split" not in draft.content["data"]["columns"] and "sku" not in draft.content["data"]["columns"]
    assert any("data.split_column: split, data.train_values: [fit], data.test_values: [exam]" in c
               for c in draft.cautions)


def test_a_train_and_valid_split_column_is_read_by_its_names_and_a_dataset_column_kept(emoji_folder, tmp_path):
    frame = pd.read_csv(emoji_folder / "emoji.csv")
    frame["split"] = np.where(np.arange(len(frame)) % 2, "train", "valid")  # about as many rows each
    frame["dataset"] = np.where(np.arange(len(frame)) % 3, "twemoji", "noto")
    frame.to_csv(emoji_folder / "tv.csv", index=False)
    with pytest.warns(UserWarning, match="named like a split"):
        draft = draft_recipe(emoji_folder / "tv.csv", "category", recipe_dir=tmp_path)
    split = next(c for c in draft.cautions if c.startswith("column 'split'"))
    assert "'train' names training rows" in split and "data.train_values: [train], data.valid_values: [valid]" in split
    assert "split" not in draft.content["data"]["columns"] and "dataset" in draft.content["data"]["columns"]
