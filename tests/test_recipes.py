"""YAML recipes: schema ↔ AutoMM parameters, validation (all problems, key paths, did-you-mean),
overrides and environment variables, data loading, round trips, shipped recipes, fuzzing."""

from __future__ import annotations

import copy
import datetime
import math
import os
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from automm import AutoMM, AutoMMRegressor, hookimpl
from automm.exceptions import AutoMMWarning, InputError
from automm.evaluation import compute_metrics
from automm.recipes import (PARAM_PATHS, SECTION_KEYS, TOP_KEYS, Recipe, RecipeError, apply_overrides, dump_recipe,
                            fit_recipe, from_recipe_with_data, load_recipe, load_yaml, read_recipe_file,
                            validate_recipe)

from conftest import REPO, shared_data_dir

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))

#: Small enough for seconds on a contended CPU: pictures 16 px, tiny networks, 1 epoch.
TINY_COMPONENTS = {
    "encoders": {"image": {"name": "cnn", "image_size": 16, "width": 4, "depth": 1, "output_dim": 16},
                 "text": {"name": "hashed_ngram", "n_buckets": 1024, "emb_dim": 8, "output_dim": 16}},
    "fusion": {"name": "concat", "proj_dim": 16, "hidden_dim": 16},
    "augmentations": None,
}


def emoji_recipe(**sections):
    recipe = {
        "version": 1,
        "data": {"sample": "emoji", "label": "category", "split_column": "split", "columns": ["image", "name"],
                 "max_rows": 80},
        "problem": {"type": "multiclass", "metric": "accuracy"},
        "components": copy.deepcopy(TINY_COMPONENTS),
        "training": {"max_epochs": 1, "batch_size": 32, "num_workers": 0},
        "seed": 0,
    }
    recipe.update(sections)
    return recipe


def problems_of(recipe, **kwargs):
    return {p.path: p.message for p in validate_recipe(recipe, **kwargs)}


# ---------------------------------------------------------------------------------- the mapping
def test_every_automm_parameter_has_a_recipe_key_and_back():
    """A parameter added to AutoMM fails here until it is given a place in recipes (or, holding Python
    objects only, is named in PYTHON_ONLY_PARAMS)."""
    from automm.recipe_checks import PYTHON_ONLY_PARAMS

    assert set(PARAM_PATHS) | set(PYTHON_ONLY_PARAMS) == set(AutoMM().get_params(deep=False))
    assert not set(PARAM_PATHS) & set(PYTHON_ONLY_PARAMS)
    for path in PARAM_PATHS.values():
        section, _, key = path.partition(".")
        assert section in TOP_KEYS
        assert (key in SECTION_KEYS[section]) if key else section in ("seed",)
    assert len(set(PARAM_PATHS.values())) == len(PARAM_PATHS)


def _non_default_params():
    return dict(problem_type="multiclass", metric="macro_f1", column_types={"name": "text"},
                encoders={"image": {"name": "resnet", "width": 8}, "text": ["hashed_ngram", "gru"]},
                fusion=["concat", {"name": "gated", "hidden_dim": 32}],
                augmentations=["horizontal_flip", {"name": "mixup", "alpha": 0.4}], time_limit=60.5,
                max_epochs=3, batch_size=16, learning_rate=0.01, weight_decay=0.0, label_smoothing=0.0, patience=0,
                holdout_frac=0.2, class_weight={"Flags": 2.0, "Symbols": 0.5}, head_dropout=0.0, device="cpu",
                amp=False, num_workers=0, n_trials=7, search_space={"training": {"learning_rate": {"low": 0.001, "high": 0.01, "log": True}}},
                sampler="random", pruner="hyperband", storage="sqlite:///study.db", study_name="s1", n_jobs=2,
                ensemble_size=1, bag_folds=1, objectives=("score", "latency"), plot_dir="plots", cache_dir="cache",
                random_state=123, verbose=2)


def _normalise(value):
    if isinstance(value, tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("params", [{}, "non-default"], ids=["defaults", "non-defaults"])
def test_to_recipe_and_from_recipe_round_trip_every_parameter(params, tmp_path):
    from automm.recipe_checks import PYTHON_ONLY_PARAMS

    params = _non_default_params() if params == "non-default" else params
    assert set(_non_default_params()) | set(PYTHON_ONLY_PARAMS) == set(AutoMM().get_params())  # the test sets every parameter
    original = AutoMM(**params)
    recipe = original.to_recipe()
    file = tmp_path / "r.yaml"
    file.write_text(dump_recipe(recipe))
    assert yaml.safe_load(file.read_text()) == recipe
    rebuilt = AutoMM.from_recipe(str(file))
    assert _normalise(rebuilt.get_params()) == _normalise(original.get_params())
    assert _normalise(AutoMM.from_recipe(recipe).get_params()) == _normalise(original.get_params())


def test_to_recipe_of_a_regressor_says_regression():
    recipe = AutoMMRegressor(random_state=1).to_recipe()
    assert recipe["problem"]["type"] == "regression"
    assert isinstance(AutoMMRegressor.from_recipe(recipe), AutoMMRegressor)


def test_to_recipe_refuses_objects_it_cannot_write():
    with pytest.raises(RecipeError, match=r"search\.sampler: a object object cannot be written"):
        AutoMM(sampler=object()).to_recipe()


def test_to_recipe_escapes_dollar_braces():
    est = AutoMM(study_name="cost ${not a var}")
    assert AutoMM.from_recipe(est.to_recipe()).study_name == "cost ${not a var}"


# ---------------------------------------------------------------------------------- validation
def test_valid_recipe_gives_the_parameters():
    recipe = load_recipe(emoji_recipe(search={"n_trials": 3, "pruner": "none"}))
    params = recipe.params()
    assert params["n_trials"] == 3 and params["pruner"] == "none" and params["random_state"] == 0
    assert params["encoders"]["image"]["name"] == "cnn" and "time_limit" not in params
    assert recipe.label == "category" and recipe.metric == "accuracy"


def test_all_problems_are_reported_with_paths_expected_found_and_suggestions():
    recipe = emoji_recipe(
        search={"pruner": "medain", "samplr": "tpe", "n_trials": 0, "objectives": ["score", "latnecy"]},
        training={"max_epochs": "10", "learning_rate": -1, "holdout_frac": 1.5, "device": "gpu", "amp": "yes"},
        problem={"type": "multi", "metric": "acc"},
        output={"dir": 5},
        sed=1,
    )
    recipe["components"]["encoders"]["image"]["widht"] = 4
    recipe["components"]["encoders"]["text"]["name"] = "hashed_ngrams"
    recipe["components"]["fusion"] = "concatt"
    recipe["data"]["label"] = "categroy"
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe)
    error = info.value
    found = {p.path: p.message for p in error.problems}
    assert isinstance(error, ValueError)
    assert "search.pruner" in found and "did you mean 'median'" in found["search.pruner"]
    assert "expected one of 'median'" in found["search.pruner"] and "found 'medain'" in found["search.pruner"]
    assert "unknown key" in found["search.samplr"] and "did you mean 'sampler'" in found["search.samplr"]
    assert "positive integer" in found["search.n_trials"]
    assert "did you mean 'latency'" in found["search.objectives[1]"]
    assert "found '10'" in found["training.max_epochs"]
    assert {"training.learning_rate", "training.holdout_frac", "training.device", "training.amp"} <= set(found)
    assert "did you mean 'multiclass'" in found["problem.type"]
    assert "output.dir" in found
    assert "did you mean 'seed'" in found["sed"]
    assert "did you mean 'width'" in found["components.encoders.image.widht"]
    assert "unknown encoder 'hashed_ngrams'" in found["components.encoders.text.name"]
    assert "did you mean 'hashed_ngram'" in found["components.encoders.text.name"]
    assert "did you mean 'concat'" in found["components.fusion"]
    assert "did you mean 'category'" in found["data.label"]
    assert "did you mean" in found["problem.metric"] and len(error.problems) == 17
    assert str(error).count("\n  - ") == len(error.problems)


def test_unknown_keys_and_sections_are_errors():
    found = problems_of({"data": {"sample": "emoji", "label": "category", "lable": "x"}, "extra": {},
                         "trainig": {"max_epochs": 2}})
    assert "did you mean 'label'" in found["data.lable"]
    assert "unknown key" in found["extra"]
    assert "did you mean 'training'" in found["trainig"]


def test_a_key_of_another_section_says_where_it_goes():
    from automm.recipe_checks import recipe_key_path
    from automm.suggestions import unique_target

    found = problems_of({"data": {"sample": "emoji", "label": "category", "storage": "x.log"}, "max_epochs": 2,
                         "random_state": 0, "max_epoch": 2, "search": {"max_epochs": 2, "samplr": "tpe"}},
                        check_data=False)
    assert found["max_epochs"].endswith("expected one of: " + ", ".join(TOP_KEYS) + "; did you mean "
                                        "'training.max_epochs'?")
    assert "did you mean 'training.max_epochs'?" in found["max_epoch"]  # misspelt too
    assert "did you mean 'seed'?" in found["random_state"]  # an AutoMM parameter's name
    assert "did you mean 'search.storage'?" in found["data.storage"]
    assert "did you mean 'training.max_epochs'?" in found["search.max_epochs"]
    assert found["search.samplr"].endswith("did you mean 'sampler'?")  # its own section's key first
    assert recipe_key_path("max_epoch", fuzzy=False) is None and recipe_key_path("dir") == "output.dir"
    # a name of several places names none of them
    assert unique_target("dir", [("dir", "output.dir"), ("dir", "input.dir")]) is None
    assert unique_target("dri", [("dir", "output.dir"), ("path", "data.path")]) == "output.dir"


def test_required_and_conflicting_data_keys():
    assert "data.label" in problems_of({"data": {"sample": "emoji"}})
    assert "no data source" in problems_of({"data": {"label": "y"}})["data"]
    assert "only one data source" in problems_of({"data": {"sample": "emoji", "path": "x.csv", "label": "y"}},
                                                 check_data=False)["data"]
    assert "needs data.train" in problems_of({"data": {"path": "a.csv", "test": "b.csv", "label": "y"}},
                                             check_data=False)["data.test"]
    assert "needs data.split_column" in problems_of({"data": {"sample": "emoji", "label": "category",
                                                              "test_values": "test"}})["data.test_values"]
    assert "data" in problems_of({}, require_data=True)
    assert problems_of({}) == {}  # an estimator-only recipe is fine for from_recipe


def test_data_columns_are_checked_against_the_file(tmp_path):
    (tmp_path / "d.csv").write_text("text,price,label\nred shoe,3,a\nblue hat,4,b\n")
    base = {"data": {"path": str(tmp_path / "d.csv"), "label": "label", "columns": ["text", "prize"],
                     "column_types": {"txt": "text", "price": "numerc"}}}
    found = problems_of(base)
    assert "did you mean 'price'" in found["data.columns[1]"]
    assert "did you mean 'text'" in found["data.column_types.txt"]
    assert "did you mean 'numeric'" in found["data.column_types.price"]
    assert "file not found" in problems_of({"data": {"path": "nope.csv", "label": "y"}})["data.path"]
    assert "format" in problems_of({"data": {"path": "data.txt", "label": "y"}}, check_data=False)["data.path"]
    assert problems_of({"data": {"path": "data.txt", "label": "y", "format": "csv"}}, check_data=False) == {}


def test_encoder_keys_and_modalities_are_checked():
    recipe = emoji_recipe()
    recipe["components"]["encoders"] = {"imag": "cnn", "text": "cnn", "name": "gru"}
    found = problems_of(recipe)
    assert "did you mean 'image'" in found["components.encoders.imag"]
    assert "encodes 'image', not 'text'" in found["components.encoders.text"]
    assert "components.encoders.name" not in found  # a column may name its encoder


class _ShoutPlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("shout", lambda output_dim=8: None, modality="text", defaults={"output_dim": 8})


def test_component_names_of_installed_plugins_are_known_and_suggested(fresh_registry):
    fresh_registry(_ShoutPlugin())
    recipe = emoji_recipe()
    recipe["components"]["encoders"]["text"] = ["shout", {"name": "shout", "output_dim": 4}]
    assert validate_recipe(recipe) == []
    recipe["components"]["encoders"]["text"] = "shoot"
    assert "did you mean 'shout'" in problems_of(recipe)["components.encoders.text"]


def test_lists_of_component_choices_are_checked_item_by_item():
    recipe = emoji_recipe()
    recipe["components"]["fusion"] = ["concat", {"name": "gatd"}, 3, []]
    recipe["components"]["augmentations"] = ["horizontal_flip", "flipp"]
    found = problems_of(recipe)
    assert "did you mean 'gated'" in found["components.fusion[1].name"]
    assert "components.fusion[2]" in found and "components.fusion[3]" in found
    assert "components.augmentations[1]" in found


def test_metric_must_suit_the_problem_type():
    assert "regression metric" in problems_of(emoji_recipe(problem={"type": "multiclass",
                                                                    "metric": "rmse"}))["problem.metric"]
    assert "classification metric" in problems_of(emoji_recipe(problem={"type": "regression",
                                                                        "metric": "macro_f1"}))["problem.metric"]


# ---------------------------------------------------------------------------------- files, overrides, env
def test_recipes_saved_by_windows_editors_are_read_or_named_with_what_to_do(tmp_path):
    """Notepad's "Unicode" (UTF-16 with its byte-order mark, which YAML allows) was refused with
    "'utf-8' codec can't decode byte 0xff in position 0", a Windows-1252 recipe with a byte offset
    only, and a tab indenting a key with PyYAML's "found character '\\t' that cannot start any token"."""
    text = "data:\n  path: items.csv\n  label: Kategorie\r\n  columns: [Gr\u00f6\u00dfe, image]\n"
    (tmp_path / "notepad.yaml").write_bytes(text.encode("utf-16"))
    (tmp_path / "bom.yaml").write_bytes(text.encode("utf-8-sig"))
    for name in ("notepad.yaml", "bom.yaml"):
        assert read_recipe_file(tmp_path / name) == {"data": {"path": "items.csv", "label": "Kategorie",
                                                              "columns": ["Gr\u00f6\u00dfe", "image"]}}
    (tmp_path / "ansi.yaml").write_bytes(text.encode("cp1252"))
    with pytest.raises(RecipeError, match=r"cannot read .*ansi.yaml': it is not UTF-8 text \(byte \d+, on line 4, is "
                                          r"b'\\xf6': .* Windows-1252\); save it as UTF-8"):
        read_recipe_file(tmp_path / "ansi.yaml")
    (tmp_path / "tabs.yaml").write_text("data:\n\tlabel: x\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"line 2, column 1: .*\(YAML indents with spaces, never tabs"):
        read_recipe_file(tmp_path / "tabs.yaml")



def test_a_damaged_utf16_recipe_is_not_called_another_encoding_than_utf8(tmp_path):
    """A UTF-16 recipe (Notepad's "Unicode") cut short by one byte was refused as "not UTF-8 text
    ... a file saved in another encoding, such as Windows-1252": it says what it is, UTF-16."""
    (tmp_path / "cut.yaml").write_bytes("data:\n  label: y\n".encode("utf-16") + b"\n")
    with pytest.raises(RecipeError, match=r"cut.yaml': it starts as UTF-16 text \(its byte-order mark\) but is not "
                                          r"valid UTF-16 from byte \d+ \(truncated data: a file cut short or damaged\)"):
        read_recipe_file(tmp_path / "cut.yaml")

def test_yaml_files_are_read_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("data: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(RecipeError, match="not valid YAML at line 1"):
        read_recipe_file(evil)
    broken = tmp_path / "broken.yaml"
    broken.write_text("data:\n  label: [a, b\n")
    with pytest.raises(RecipeError, match="line"):
        load_recipe(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(RecipeError, match="expected a mapping of sections"):
        load_recipe(listing)
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert load_recipe(empty).params() == {}


def test_overrides_set_nested_keys_with_yaml_values():
    recipe = apply_overrides({"training": {"max_epochs": 5}}, [
        "training.max_epochs=2", "search.n_trials=3", "components.fusion={name: gated, hidden_dim: 8}",
        "search.storage=sqlite:///a=b.db", "training.device=cpu", "search.study_name=null"])
    assert recipe["training"] == {"max_epochs": 2, "device": "cpu"}
    assert recipe["search"] == {"n_trials": 3, "storage": "sqlite:///a=b.db", "study_name": None}
    assert recipe["components"]["fusion"] == {"name": "gated", "hidden_dim": 8}
    with pytest.raises(RecipeError) as info:
        apply_overrides({"components": {"fusion": "concat"}}, ["components.fusion.proj_dim=4", "novalue", "=3"])
    assert len(info.value.problems) == 3 and "not a mapping" in str(info.value)
    assert "did you mean 'max_epochs'" in str(pytest.raises(
        RecipeError, load_recipe, emoji_recipe(), ["training.max_epoch=3"]).value)


def test_environment_variables_in_values(monkeypatch):
    monkeypatch.setenv("AUTOMM_TEST_DB", "postgresql://u:p@h/db")
    monkeypatch.delenv("AUTOMM_TEST_UNSET", raising=False)
    recipe = load_recipe(emoji_recipe(search={"storage": "${AUTOMM_TEST_DB}", "study_name": "${AUTOMM_TEST_UNSET:-s}",
                                              "pruner": "none"}, description="costs $${price}"))
    assert recipe.params()["storage"] == "postgresql://u:p@h/db" and recipe.params()["study_name"] == "s"
    assert recipe.content["description"] == "costs ${price}"
    found = problems_of(emoji_recipe(search={"storage": "${AUTOMM_TEST_UNSET}"}))
    assert "AUTOMM_TEST_UNSET is not set" in found["search.storage"]
    assert validate_recipe(emoji_recipe(search={"storage": "${AUTOMM_TEST_UNSET}"}),
                           ["search.storage=sqlite:///x.db"]) == []
    # a value that is one reference alone is typed as --set values are: a number, a boolean, null
    monkeypatch.setenv("AUTOMM_TEST_EPOCHS", "3")
    recipe = load_recipe(emoji_recipe(training={"max_epochs": "${AUTOMM_TEST_EPOCHS}"},
                                      search={"storage": "${AUTOMM_TEST_UNSET:-null}", "time_limit": "${X_UNSET:-30}"},
                                      description="run ${AUTOMM_TEST_EPOCHS}"))
    assert recipe.params()["max_epochs"] == 3 and recipe.params()["storage"] is None
    assert recipe.params()["time_limit"] == 30 and recipe.content["description"] == "run 3"


def test_numbers_in_exponent_notation_without_a_dot_are_numbers(tmp_path, monkeypatch):
    """YAML 1.1 (PyYAML) reads 1e-3 as a string: 'training.learning_rate: expected a positive
    number, found '1e-3'', in a file, a --set and a variable alike, though the README writes 2e-3."""
    file = tmp_path / "recipe.yaml"
    file.write_text("data: {sample: emoji, label: category}\ntraining: {learning_rate: 2e-3, weight_decay: 0}\n"
                    "search:\n  time_limit: 1E2\n  search_space:\n    training:\n"
                    "      learning_rate: {low: 1e-4, high: 3e-3, log: true}\n", encoding="utf-8")
    recipe = load_recipe(str(file), check_data=False)
    assert recipe.params()["learning_rate"] == 2e-3 and recipe.params()["time_limit"] == 100.0
    assert recipe.params()["search_space"]["training"]["learning_rate"] == {"low": 1e-4, "high": 3e-3, "log": True}
    monkeypatch.setenv("AUTOMM_TEST_DECAY", "1e-5")
    recipe = load_recipe(str(file), ["training.learning_rate=5e-4", "training.weight_decay=${AUTOMM_TEST_DECAY}"],
                         check_data=False)
    assert recipe.params()["learning_rate"] == 5e-4 and recipe.params()["weight_decay"] == 1e-5
    assert load_yaml("description: '1e-3'\nnote: 1e3x") == {"description": "1e-3", "note": "1e3x"}
    # and what automm writes reads back the same: such a string is quoted (a label '1e3', a column '5E2')
    written = {"data": {"label": "1e3", "column_types": {"5E2": "numeric"}}, "training": {"learning_rate": 1e-3}}
    assert load_yaml(dump_recipe(written)) == written


def test_a_storage_password_is_never_shown_nor_written_to_a_recipe(monkeypatch):
    from automm.recipes import to_recipe

    url, shown = "postgresql://automm:s3cretPW@db:5432/automm", "postgresql://automm:***@db:5432/automm"
    monkeypatch.setenv("AUTOMM_TEST_DB", url)
    recipe = load_recipe(emoji_recipe(search={"storage": "${AUTOMM_TEST_DB}"}), check_data=False)
    assert recipe.params()["storage"] == url  # used as given
    assert dict(recipe.describe())["search"] == f"storage={shown}"  # automm validate
    assert "s3cretPW" not in dump_recipe(recipe.shown())  # automm validate --show
    # the recipe's own reference is written back, also by a loaded Recipe read again with overrides
    assert to_recipe(recipe.estimator())["search"]["storage"] == "${AUTOMM_TEST_DB}"
    again = load_recipe(recipe, ["training.max_epochs=2"], check_data=False)
    assert to_recipe(again.estimator())["search"]["storage"] == "${AUTOMM_TEST_DB}"
    changed = load_recipe(recipe, ["search.storage=sqlite:///x.db"], check_data=False)
    assert to_recipe(changed.estimator())["search"]["storage"] == "sqlite:///x.db"
    # any other password: written as ***, with a warning
    estimator = recipe.estimator().set_params(storage="postgresql://u:other@h/db")
    with pytest.warns(UserWarning, match=r"search.storage: the password of the storage URL is written as \*\*\*"):
        assert to_recipe(estimator)["search"]["storage"] == "postgresql://u:***@h/db"
    with pytest.warns(UserWarning, match="password"):
        assert AutoMM(storage=url).to_recipe()["search"]["storage"] == shown
    with pytest.warns(UserWarning, match="password"):
        literal = to_recipe(load_recipe(emoji_recipe(search={"storage": url}), check_data=False).estimator())
    assert "s3cretPW" not in dump_recipe(literal)


def test_redact_url_hides_every_form_of_password():
    from automm.storage import redact_url

    assert redact_url("postgresql://:pw@h/db") == "postgresql://:***@h/db"  # no user name
    assert redact_url("postgresql://h/db?user=u&password=pw&sslmode=require") == \
        "postgresql://h/db?user=u&password=***&sslmode=require"
    assert redact_url("postgresql://u@h:5432/db") == "postgresql://u@h:5432/db"  # nothing to hide
    # an Azure-style login holds '@'; SQLAlchemy reads the user up to ':' and the password up to the next '@'
    assert redact_url("postgresql://user@srv:s3cret@h:5432/db") == "postgresql://user@srv:***@h:5432/db"
    assert redact_url("journal:///tmp/study.log") == "journal:///tmp/study.log"


def test_the_saved_recipe_keeps_the_storage_reference_not_its_value(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOMM_TEST_STORE", f"journal:///{tmp_path}/s3cret.log")
    recipe = emoji_recipe(components=TINY_COMPONENTS, training={"max_epochs": 1}, output={"dir": str(tmp_path / "m")},
                          search={"storage": "${AUTOMM_TEST_STORE}", "n_trials": 1,
                                  "search_space": {"warm_start": False, "linear_model": False}})
    fit_recipe(recipe)
    saved = (tmp_path / "m" / "recipe.yaml").read_text()
    assert "storage: ${AUTOMM_TEST_STORE}" in saved and "s3cret" not in saved
    assert load_recipe(str(tmp_path / "m" / "recipe.yaml")).params()["storage"] == f"journal:///{tmp_path}/s3cret.log"


# ---------------------------------------------------------------------------------- data
def test_data_from_one_file_with_a_split_column_and_relative_images(tmp_path, emoji_sample):
    data_dir = tmp_path / "data"
    (data_dir / "pics").mkdir(parents=True)
    frame = emoji_sample.head(40).copy()
    names = []
    for i, path in enumerate(frame["image"]):
        target = data_dir / "pics" / f"{i}.png"
        target.write_bytes(Path(path).read_bytes())
        names.append(f"pics/{i}.png")
    frame["image"] = names
    frame["split"] = ["fit"] * 30 + ["hold"] * 10
    frame.to_csv(data_dir / "items.csv", index=False)
    recipe_dir = tmp_path / "recipes"
    recipe_dir.mkdir()
    (recipe_dir / "r.yaml").write_text(yaml.safe_dump({
        "data": {"path": "../data/items.csv", "label": "category", "split_column": "split",
                 "train_values": "fit", "test_values": ["hold"]}}))
    data = load_recipe(recipe_dir / "r.yaml", require_data=True).load_data()
    assert len(data.X_train) == 30 and len(data.X_test) == 10
    assert list(data.X_train.columns) == ["image", "name"]
    assert all(os.path.isfile(p) and os.path.isabs(p) for p in data.X_train["image"])
    with pytest.raises(RecipeError, match="no rows of column 'split'"):
        load_recipe(recipe_dir / "r.yaml", ["data.train_values=[train]"]).load_data()


def test_rows_without_a_label_are_left_out_of_every_part(tmp_path, emoji_sample):
    # a data file with a few blank labels: they can neither train nor be scored
    frame = emoji_sample.head(40).copy()
    frame["split"] = ["train"] * 30 + ["test"] * 6 + ["valid"] * 4
    frame.loc[[2, 5], "category"] = None
    frame.loc[31, "category"] = "  "
    frame.loc[37, "category"] = float("nan")
    frame.to_csv(tmp_path / "items.csv", index=False)
    recipe = {"data": {"path": "items.csv", "label": "category", "split_column": "split", "valid_values": "valid"}}
    data = load_recipe(recipe, base_dir=tmp_path, require_data=True).load_data()
    assert (len(data.X_train), len(data.X_test), len(data.X_val)) == (28, 5, 3)
    assert data.unlabelled_rows == {"train": 2, "test": 1, "validation": 1}
    assert not data.y_train.isna().any() and not data.y_test.isna().any()


def test_integer_labels_with_blank_cells_stay_integers(tmp_path):
    # pandas reads a column of integers with an empty cell as floats: once the rows without a label
    # are left out, the classes are those of the same file without them (3, not 3.0; not regression)
    import pandas as pd

    from automm.drafting import draft_recipe

    rng = np.random.default_rng(0)
    labels = [str(v) for v in rng.integers(0, 15, 60)]
    labels[5] = labels[50] = ""  # a blank training and test label
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "y": labels,
                          "split": ["train"] * 45 + ["test"] * 15})
    frame.to_csv(tmp_path / "items.csv", index=False)
    assert pd.read_csv(tmp_path / "items.csv")["y"].dtype == float
    recipe = {"data": {"path": "items.csv", "label": "y", "split_column": "split"}}
    data = load_recipe(recipe, base_dir=tmp_path, require_data=True).load_data()
    assert data.unlabelled_rows == {"train": 1, "test": 1}
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert data.y_train.tolist() == [int(v) for v in labels[:45] if v]
    draft = draft_recipe(tmp_path / "items.csv", "y", recipe_dir=tmp_path)
    assert draft.content["problem"]["type"] == "multiclass"  # 15 integer classes, as without the blanks
    frame.assign(y=[v and v + ".5" for v in labels]).to_csv(tmp_path / "items.csv", index=False)
    data = load_recipe(recipe, base_dir=tmp_path, require_data=True).load_data()
    assert data.y_train.dtype == float  # numbers that are not whole stay floats


def test_data_from_train_and_test_files_with_images_relative_to_the_recipe(tmp_path, emoji_sample):
    (tmp_path / "images").mkdir()
    (tmp_path / "tables").mkdir()
    frame = emoji_sample.head(24).copy()
    frame["image"] = [f"images/{Path(p).name}" for p in frame["image"]]
    for path in emoji_sample.head(24)["image"]:
        (tmp_path / "images" / Path(path).name).write_bytes(Path(path).read_bytes())
    frame.head(16).to_csv(tmp_path / "tables" / "train.csv", index=False)
    frame.tail(8).to_csv(tmp_path / "tables" / "test.csv", index=False)
    recipe = load_recipe({"data": {"train": "tables/train.csv", "test": "tables/test.csv", "label": "category",
                                   "columns": ["image", "name"], "max_rows": 12}}, base_dir=tmp_path)
    data = recipe.load_data()
    assert len(data.X_train) == 12 and len(data.X_test) == 8
    assert all(p.startswith(str(tmp_path / "images")) for p in data.X_test["image"])



def test_split_values_that_no_row_has_are_errors_listing_the_values_found(tmp_path, emoji_sample):
    """A misspelt train, test or validation value is a problem at its key when the data are
    checked (automm validate), not a test or validation set silently left empty."""
    for key, value in (("test_values", "[tset]"), ("valid_values", "tets"), ("train_values", "[train, trian]")):
        found = problems_of(emoji_recipe(), overrides=[f"data.{key}={value}"])
        assert list(found) == [f"data.{key}"], found
        assert "no rows of column 'split' have the value" in found[f"data.{key}"]
        assert "values found: 'test', 'train'" in found[f"data.{key}"] and "did you mean" in found[f"data.{key}"]
    assert problems_of(emoji_recipe(), overrides=["data.test_values=[tset]"], check_data=False) == {}
    frame = emoji_sample.head(20).copy()
    frame["split"] = ["fit"] * 15 + ["hold"] * 5
    frame.to_csv(tmp_path / "items.csv", index=False)
    recipe = {"data": {"path": "items.csv", "label": "category", "split_column": "split", "train_values": "fit"}}
    data = load_recipe(recipe, base_dir=tmp_path).load_data()  # the default test value may be absent
    assert len(data.X_train) == 15 and data.X_test is None
    loaded = load_recipe(recipe, ["data.test_values=hodl"], base_dir=tmp_path, check_data=False)
    with pytest.raises(RecipeError, match=r"data.test_values: .*'hodl'.*did you mean 'hold'"):
        loaded.load_data()


def test_relative_image_paths_fall_back_to_the_current_directory_and_errors_name_the_folders(
        tmp_path, emoji_sample, monkeypatch):
    """Looked up in the data file's folder, the recipe's, then the current directory."""
    for folder in ("pics", "tables", "recipes"):
        (tmp_path / folder).mkdir()
    frame = emoji_sample.head(20).copy()
    for path in frame["image"]:
        (tmp_path / "pics" / Path(path).name).write_bytes(Path(path).read_bytes())
    frame["image"] = [f"pics/{Path(p).name}" for p in frame["image"]]
    frame.to_csv(tmp_path / "tables" / "items.csv", index=False)
    recipe = {"data": {"path": "../tables/items.csv", "label": "category", "columns": ["image", "name"]}}
    monkeypatch.chdir(tmp_path)
    data = load_recipe(recipe, base_dir=tmp_path / "recipes").load_data()
    assert all(p == str(tmp_path / "pics" / Path(p).name) for p in data.X_train["image"])
    monkeypatch.chdir(tmp_path / "tables")
    with pytest.raises(InputError) as caught:
        load_recipe(recipe, base_dir=tmp_path / "recipes").load_data()
    message = str(caught.value)
    assert "20 of 20 relative paths are in none of the folders tried" in message
    assert f"({tmp_path / 'tables'}, {tmp_path / 'recipes'})" in message and "row 0 ('pics/" in message


def test_the_saved_recipe_finds_images_found_through_the_current_directory_from_anywhere(
        tmp_path, emoji_sample, monkeypatch):
    """Image paths relative to the directory ``automm fit`` ran in: the model's ``recipe.yaml`` ran
    again only from there. It now names that folder as ``data.files_dir``; ``files_dir`` given in a
    recipe is looked up first, and a folder that is not there is a problem at its key."""
    for folder in ("pics", "tables", "recipes", "elsewhere"):
        (tmp_path / folder).mkdir()
    frame = emoji_sample.head(40).copy()
    for path in frame["image"]:
        (tmp_path / "pics" / Path(path).name).write_bytes(Path(path).read_bytes())
    frame["image"] = [f"pics/{Path(p).name}" for p in frame["image"]]
    frame[["image", "name", "category"]].to_csv(tmp_path / "tables" / "items.csv", index=False)
    recipe = emoji_recipe(data={"path": "../tables/items.csv", "label": "category"},
                          output={"dir": str(tmp_path / "model")})
    monkeypatch.chdir(tmp_path)
    fit_recipe(load_recipe(recipe, base_dir=tmp_path / "recipes"))
    saved = load_yaml((tmp_path / "model" / "recipe.yaml").read_text())
    assert saved["data"]["files_dir"] == str(tmp_path)
    monkeypatch.chdir(tmp_path / "elsewhere")
    data = load_recipe(tmp_path / "model" / "recipe.yaml").load_data()
    assert data.X_train["image"].tolist()[0] == str(tmp_path / "pics" / Path(frame["image"].iloc[0]).name)
    # given in a recipe: relative to its folder, looked up first
    given = {"path": "../tables/items.csv", "label": "category", "files_dir": ".."}
    data = load_recipe({**recipe, "data": given}, base_dir=tmp_path / "recipes").load_data()
    assert data.X_train["image"].tolist()[0].startswith(str(tmp_path / "pics"))
    (tmp_path / "recipes" / "bad.yaml").write_text(dump_recipe({**recipe, "data": {**given, "files_dir": "../pics2"}}))
    assert problems_of(str(tmp_path / "recipes" / "bad.yaml")) == {
        "data.files_dir": f"folder not found: {str(tmp_path / 'recipes' / '../pics2')!r} (relative paths "
                          f"are resolved against {tmp_path / 'recipes'})"}
    assert "data.files_dir" in problems_of({**recipe, "data": {**given, "files_dir": [3]}}, check_data=False)


def test_fit_names_bad_images_by_their_rows_in_the_data_file(tmp_path, emoji_sample):
    """Train rows are the data file's rows 10..; an error about them names those rows."""
    frame = emoji_sample.head(40).copy()
    frame["split"] = ["test"] * 10 + ["train"] * 30
    frame.loc[12:15, "image"] = str(tmp_path / "gone.png")
    frame.to_csv(tmp_path / "items.csv", index=False)
    recipe = emoji_recipe(data={"path": "items.csv", "label": "category", "split_column": "split"})
    with pytest.raises(InputError) as caught:
        fit_recipe(load_recipe(recipe, base_dir=tmp_path), save=False)
    message = str(caught.value)
    assert "items.csv row 12 (" in message and "items.csv row 15 (" in message and "row 2 (" not in message



def test_recipes_fitted_in_two_threads_at_once_leave_the_warning_filters_as_they_were(monkeypatch):
    """fit_recipe's "ignore every warning" blocks were warnings.catch_warnings(): the first of two
    overlapping threads to end put back the filters it found, the second then the first's
    "ignore" (its own saved copy), which stayed for good and hid every later warning."""
    import threading
    import warnings

    from automm.estimator import AutoMM as Estimator

    from helpers import run_in_threads

    class Started(Exception):
        """In place of the fit: the blocks before it are what this test is about."""

    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    resolve = Estimator._resolve_problem_type
    names = {}

    def sequenced(self, y):  # inside fit_recipe's block that reads the problem type
        if threading.current_thread().name == names["first"]:
            first_in.set()
            assert second_in.wait(10)
        else:
            second_in.set()
            assert first_out.wait(10)  # the first thread has left its blocks
        return resolve(self, y)

    def fit(self, *args, **kwargs):
        if threading.current_thread().name == names["first"]:
            first_out.set()
        raise Started

    monkeypatch.setattr(Estimator, "_resolve_problem_type", sequenced)
    monkeypatch.setattr(Estimator, "fit", fit)
    recipe = emoji_recipe(problem={"type": "auto"})

    def first():
        names["first"] = threading.current_thread().name
        with pytest.raises(Started):
            fit_recipe(recipe, save=False)

    def second():
        assert first_in.wait(10)
        with pytest.raises(Started):
            fit_recipe(recipe, save=False)

    before = list(warnings.filters)
    run_in_threads(first, second)
    assert warnings.filters == before

def test_data_from_a_parquet_file_with_image_records(tmp_path, emoji_sample):
    """A Parquet file as a ``datasets`` export writes it: images as {bytes, path} records."""
    frame = emoji_sample.head(30).copy()
    frame["image"] = [{"bytes": Path(p).read_bytes(), "path": Path(p).name} for p in frame["image"]]
    frame.to_parquet(tmp_path / "items.parquet")
    recipe = {"data": {"path": "items.parquet", "label": "category", "split_column": "split"}}
    data = load_recipe(recipe, base_dir=tmp_path, require_data=True).load_data()
    assert list(data.X_train.columns) == ["image", "name"] and len(data.X_train) + len(data.X_test) == 30
    with pytest.raises(RecipeError, match=r"data.label: .*did you mean 'category'"):  # the header read, not the rows
        load_recipe({"data": {"path": "items.parquet", "label": "categroy"}}, base_dir=tmp_path)
    estimator = load_recipe(recipe, ["training.max_epochs=1"], base_dir=tmp_path).estimator()
    estimator.fit(data.X_train, data.y_train)
    assert estimator.column_roles_ == {"image": "image", "name": "text"}



def test_a_parquet_files_saved_index_names_no_rows_and_a_named_one_is_a_column(tmp_path, emoji_sample):
    """pandas saves a frame's index in its Parquet file. A filtered frame's row labels (0, 3, 6, ...)
    are no column of the data (the header listed '__index_level_0__') and number no rows: messages
    name the file's rows. A named index (``set_index("sku")``) is a column, as the header said: the
    recipe validated, then the fit found no column 'sku'."""
    from automm.tables import read_header, read_table

    frame = emoji_sample.head(60).drop(columns=["split"])
    frame["sku"] = [f"A-{i}" for i in range(60)]
    kept = frame.iloc[::3].copy()  # its index: 0, 3, 6, ...
    kept.iloc[1:4, kept.columns.get_loc("image")] = str(tmp_path / "gone.png")
    kept.to_parquet(tmp_path / "items.parquet")
    kept.set_index("sku").to_parquet(tmp_path / "by_sku.parquet")
    columns = ["image", "name", "category", "sku"]
    assert read_header(tmp_path / "items.parquet", "parquet") == list(read_table(tmp_path / "items.parquet").columns) \
        == columns
    assert read_header(tmp_path / "by_sku.parquet", "parquet") == list(read_table(tmp_path / "by_sku.parquet").columns) \
        == ["sku", "image", "name", "category"]
    assert read_table(tmp_path / "by_sku.parquet").index.tolist() == list(range(20))

    recipe = emoji_recipe(data={"path": "items.parquet", "label": "category", "columns": ["image", "name"]})
    with pytest.raises(InputError) as caught:
        fit_recipe(load_recipe(recipe, base_dir=tmp_path), save=False)
    assert "items.parquet row 1 (" in str(caught.value) and "row 3 (" in str(caught.value)
    assert "row 9 (" not in str(caught.value)  # (the saved index of the file's row 3)
    recipe["data"] = {"path": "by_sku.parquet", "label": "category", "columns": ["name", "sku"]}
    data = load_recipe(recipe, base_dir=tmp_path, require_data=True).load_data()
    assert data.X_train["sku"].tolist() == kept["sku"].tolist()

def test_compute_metrics():
    m = compute_metrics("multiclass", np.array(["a", "b", "b", "c"]), np.array(["a", "b", "c", "c"]))
    assert m["n"] == 4 and m["accuracy"] == 0.75 and 0 < m["macro_f1"] < 1
    r = compute_metrics("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert math.isclose(r["mae"], 1 / 3) and math.isclose(r["rmse"], math.sqrt(1 / 3)) and r["r2"] == 0.5


# ---------------------------------------------------------------------------------- reproducibility
def test_fitted_model_to_recipe_reproduces_it_on_cpu():
    recipe = emoji_recipe()
    recipe["data"]["max_rows"] = 40
    del recipe["seed"]  # the fitted model's recipe records the seed it drew
    estimator, data = from_recipe_with_data(recipe)
    estimator.fit(data.X_train, data.y_train)
    written = estimator.to_recipe()
    assert written["seed"] == estimator.seed_ and written["data"]["label"] == "category"
    again, data_again = from_recipe_with_data(yaml.safe_load(dump_recipe(written)))
    again.fit(data_again.X_train, data_again.y_train)
    np.testing.assert_array_equal(data.X_test, data_again.X_test)
    np.testing.assert_allclose(again.predict_proba(data.X_test), estimator.predict_proba(data.X_test), atol=1e-6)


# ---------------------------------------------------------------------------------- shipped recipes
def _fashion_available() -> bool:
    return (shared_data_dir() / "fashion" / "fashion.csv").is_file() and \
        shared_data_dir().resolve() == (REPO.parent / "shared" / "data").resolve()


def _needs_plugins(path: Path) -> list[str]:
    """Component names a recipe uses that are not installed (plugin recipes skip without them)."""
    from automm import get_registry

    reg = get_registry()
    content = yaml.safe_load(path.read_text())
    components = content.get("components") or {}
    wanted = []
    for choice in (components.get("encoders") or {}).values():
        for item in choice if isinstance(choice, list) else [choice]:
            wanted.append(("encoder", item if isinstance(item, str) else item["name"]))
    return [name for kind, name in wanted if name not in reg.names(kind)]


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_validates(path, monkeypatch):
    monkeypatch.setenv("AUTOMM_STORAGE", "postgresql://automm:secret@localhost:5432/automm")
    missing = _needs_plugins(path)
    if missing:
        pytest.skip(f"{path.name} needs components {missing} from a plugin that is not installed")
    uses_fashion = "shared/data/fashion" in path.read_text()
    recipe = load_recipe(path, check_data=not uses_fashion or _fashion_available(), require_data=True)
    assert recipe.label and recipe.output_dir
    assert recipe.content.get("description")


def test_aliases_cannot_blow_up_a_recipe(tmp_path):
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i, name in enumerate("bcdefgh"):
        previous = "abcdefgh"[i]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    (tmp_path / "laughs.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(RecipeError, match="more than 100000 values"):
        load_recipe(tmp_path / "laughs.yaml")


def test_shipped_recipes_cover_the_issue():
    names = {p.name for p in RECIPES}
    assert {"quickstart.yaml", "fashion.yaml", "fashion_search.yaml", "fashion_postgres.yaml"} <= names
    postgres = load_recipe(REPO / "recipes" / "fashion_postgres.yaml", ["search.storage=postgresql://h/db"],
                           check_data=False)
    assert postgres.params()["storage"] == "postgresql://h/db" and postgres.params()["study_name"]
    search = load_recipe(REPO / "recipes" / "fashion_search.yaml", check_data=False).params()
    assert search["time_limit"] and search["ensemble_size"] > 1 and isinstance(search["fusion"], list)


def test_quickstart_recipe_runs_with_a_tiny_budget(tmp_path):
    overrides = [f"components.{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
                 for k, v in TINY_COMPONENTS.items()] + ["training.max_epochs=1", "data.max_rows=60"]
    result = fit_recipe(REPO / "recipes" / "quickstart.yaml", overrides, output_dir=str(tmp_path / "m"))
    assert result.test_metrics["n"] == 60 and 0 <= result.test_metrics["accuracy"] <= 1
    assert (tmp_path / "m" / "recipe.yaml").is_file() and result.summary()["n_classes"] == 9
    rebuilt = AutoMM.from_recipe(str(tmp_path / "m" / "recipe.yaml"))
    assert rebuilt.get_params() == result.estimator.get_params()


def test_fit_recipe_replaces_a_saved_model_only_when_told_to(tmp_path, monkeypatch):
    """fit_recipe saved over the model a recipe's earlier run left in output.dir, silently; it
    is refused before the data are read, naming the key, unless output.overwrite: true or
    overwrite=True; output.overwrite takes true or false only."""
    overrides = [f"components.{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
                 for k, v in TINY_COMPONENTS.items()] + ["training.max_epochs=1", "data.max_rows=60",
                                                        f"output.dir={tmp_path / 'm'}"]
    quickstart = REPO / "recipes" / "quickstart.yaml"
    fit_recipe(quickstart, overrides)
    saved = (tmp_path / "m" / "weights.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match=r"^output\.dir: .* holds a model already \(saved .*\); not replacing "
                                              r"it: set output\.overwrite: true .* or set another output\.dir"):
        with monkeypatch.context() as patched:  # refused before the data are read
            patched.setattr(Recipe, "load_data", lambda self: pytest.fail("read the data"))
            fit_recipe(quickstart, overrides)
    assert (tmp_path / "m" / "weights.safetensors").read_bytes() == saved
    fit_recipe(quickstart, overrides + ["seed=1", "output.overwrite=true"])
    assert (tmp_path / "m" / "weights.safetensors").read_bytes() != saved
    saved = (tmp_path / "m" / "weights.safetensors").read_bytes()
    fit_recipe(quickstart, overrides + ["seed=2"], overwrite=True)
    assert (tmp_path / "m" / "weights.safetensors").read_bytes() != saved
    with pytest.raises(RecipeError, match=r"output\.overwrite: expected true or false, found 'sure'"):
        load_recipe(quickstart, ["output.overwrite=sure"], check_data=False)


def test_fit_recipe_keeps_its_model_beside_a_folder_taken_meanwhile_and_leaves_no_folder_when_it_fails(
        tmp_path, monkeypatch):
    """fit_recipe lost its fitted model when another process saved one into output.dir while it
    ran (FileExistsError at the end); it saves it beside, in ``<output.dir>.<UTC time>``, with a
    warning. A fit_recipe that failed left the parent folders its output check made, empty."""
    overrides = [f"components.{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
                 for k, v in TINY_COMPONENTS.items()] + ["training.max_epochs=1", "data.max_rows=60"]
    quickstart, target = REPO / "recipes" / "quickstart.yaml", tmp_path / "new" / "m"
    fit = AutoMM.fit

    def fit_while_another_saves(self, *args, **kwargs):
        fit(self, *args, **kwargs)
        self.save(target)  # another process's save, into the folder this fit checked
        return self

    monkeypatch.setattr(AutoMM, "fit", fit_while_another_saves)
    with pytest.warns(AutoMMWarning, match=r"holds a model already .*it was saved there while this fit ran; this "
                                           r"fit's model is saved beside it instead, to '.*/new/m\.20\d{6}-\d{6}'"):
        result = fit_recipe(quickstart, overrides + [f"output.dir={target}"])
    assert result.saved_instead_of == str(target) and Path(result.model_dir).parent == target.parent
    assert (Path(result.model_dir) / "recipe.yaml").is_file() and not (target / "recipe.yaml").exists()
    assert result.summary()["saved_instead_of"] == str(target)
    monkeypatch.setattr(AutoMM, "fit", lambda *args, **kwargs: (_ for _ in ()).throw(ValueError("data broken")))
    with pytest.raises(ValueError, match="data broken"):
        fit_recipe(quickstart, overrides, output_dir=str(tmp_path / "a" / "b" / "m"))
    assert sorted(os.listdir(tmp_path)) == ["new"]


@pytest.mark.slow
def test_fashion_recipe_runs_with_a_tiny_budget(tmp_path):
    if not _fashion_available():
        pytest.skip("../shared/data/fashion is absent")
    overrides = ["training.max_epochs=1", "data.max_rows=64", "training.num_workers=0",
                 "components.encoders.image={name: cnn, image_size: 16, width: 4, depth: 1, output_dim: 16}"]
    result = fit_recipe(REPO / "recipes" / "fashion.yaml", overrides, output_dir=str(tmp_path / "m"))
    assert result.test_metrics["n"] == 64 and "macro_f1" in result.test_metrics


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fashion_search.yaml"])
def test_search_recipe_runs_with_a_tiny_budget(name, tmp_path):
    if not _fashion_available():
        pytest.skip("../shared/data/fashion is absent")
    overrides = ["search.n_trials=2", "search.time_limit=120", "search.ensemble_size=2", "training.max_epochs=1",
                 "data.max_rows=64", "training.num_workers=0", "output.plot_dir=null"]
    result = fit_recipe(REPO / "recipes" / name, overrides, output_dir=str(tmp_path / "m"))
    assert result.test_metrics["n"] == 64


PLUGIN_RECIPES = [p for p in RECIPES if p.name.startswith(("pretrained", "audio"))]


@pytest.mark.slow
@pytest.mark.parametrize("path", PLUGIN_RECIPES, ids=[p.name for p in PLUGIN_RECIPES])
def test_plugin_recipes_run_with_a_tiny_budget(path, tmp_path):
    missing = _needs_plugins(path)
    if missing:
        pytest.skip(f"{path.name} needs components {missing} from a plugin that is not installed")
    overrides = ["training.max_epochs=1", "data.max_rows=32", f"training.cache_dir={tmp_path / 'cache'}"]
    result = fit_recipe(path, overrides, output_dir=str(tmp_path / "m"))
    assert result.test_metrics["n"] == 32


# ---------------------------------------------------------------------------------- fuzzing
_VALUES = [None, True, False, 0, 1, -1, 2.5, -0.5, float("nan"), float("inf"), 10**40, "", " ", "x", "auto",
           "default", "cnn", "concat", "median", "balanced", "score", "category", "image", "${AUTOMM_FUZZ_UNSET}",
           [], [None], [1, "a"], ["cnn", "resnet"], ["score", "params"], {}, {"name": 5}, {"name": "cnn"},
           {"name": "cnn", "widht": 3}, {"a": {"b": [1]}}, {1: 2}, {None: "x"}, {True: 1},
           datetime.date(2024, 1, 2), b"bytes", [[["deep"]]]]


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield prefix + (i,)
            yield from _paths(value, prefix + (i,))


def _parent(root, path):
    node = root
    for key in path[:-1]:
        node = node[key]
    return node


def _typo(rng: random.Random, word: str) -> str:
    if not word:
        return "x"
    i = rng.randrange(len(word))
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1:] or "y"
    if kind == 1:
        return word[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz_") + word[i:]
    return word[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + word[i + 1:]


def _mutate(rng: random.Random, recipe: dict) -> dict:
    recipe = copy.deepcopy(recipe)
    for _ in range(rng.randint(1, 3)):
        paths = list(_paths(recipe))
        op = rng.randrange(6)
        if not paths or op == 0:  # a whole section or the recipe's top level gets a random value
            key = rng.choice(list(TOP_KEYS) + ["extra"])
            recipe[key] = copy.deepcopy(rng.choice(_VALUES))
            continue
        path = rng.choice(paths)
        parent = _parent(recipe, path)
        key = path[-1]
        if op == 1:  # wrong type / random value
            parent[key] = copy.deepcopy(rng.choice(_VALUES))
        elif op == 2:  # deleted key or item
            del parent[key]
        elif op == 3 and isinstance(parent, dict) and isinstance(key, str):  # misspelled key
            parent[_typo(rng, key)] = parent.pop(key)
        elif op == 4 and isinstance(parent, dict):  # unknown or non-string key added
            parent[rng.choice(["bogus", 3, None, True, _typo(rng, str(key))])] = copy.deepcopy(rng.choice(_VALUES))
        elif isinstance(parent[key], str):  # misspelled value
            parent[key] = _typo(rng, parent[key])
    return recipe


def _fuzz_base() -> dict:
    recipe = emoji_recipe(
        search={"n_trials": 2, "time_limit": 30, "sampler": "tpe", "pruner": "median", "storage": None,
                "study_name": "s", "n_jobs": 1, "ensemble_size": 1, "objectives": ["score", "latency"],
                "search_space": {"training": {"learning_rate": [0.001, 0.01]},
                                 "encoders": {"image": ["cnn", "resnet"]}}},
        output={"dir": "out", "plot_dir": None, "verbose": 0}, description="fuzz")
    recipe["training"].update({"learning_rate": 0.01, "weight_decay": 0.0, "label_smoothing": 0.1, "patience": 2,
                               "holdout_frac": 0.2, "class_weight": {"Flags": 2.0}, "head_dropout": 0.1,
                               "device": "cpu", "amp": False, "cache_dir": None})
    recipe["components"]["augmentations"] = ["horizontal_flip", {"name": "mixup", "alpha": 0.3}]
    recipe["components"]["encoders"]["text"] = ["hashed_ngram", {"name": "gru", "hidden_dim": 8}]
    recipe["data"]["column_types"] = {"name": "text"}
    recipe["data"]["min_class_rows"] = 2
    return recipe


def test_fuzzed_recipes_give_recipe_errors_never_tracebacks(refusals_remembered):
    """Hundreds of seeded mutations of a valid recipe: each either validates (and then AutoMM's own
    checks accept the parameters) or raises RecipeError with key paths, never anything else."""
    rng = random.Random(20240501)
    base = _fuzz_base()
    assert validate_recipe(base) == []
    outcomes = {"valid": 0, "invalid": 0}
    for i in range(300):
        mutated = _mutate(rng, base)
        try:
            recipe = load_recipe(mutated, require_data=rng.random() < 0.5)
        except RecipeError as exc:
            assert exc.problems and all(isinstance(p.path, str) and p.message for p in exc.problems), mutated
            outcomes["invalid"] += 1
            continue
        except Exception as exc:  # pragma: no cover - the failure this test looks for
            raise AssertionError(f"mutation {i} raised {type(exc).__name__}: {exc}\nrecipe: {mutated!r}") from exc
        recipe.estimator()._validate_params()  # what the recipe accepts, AutoMM accepts
        outcomes["valid"] += 1
    assert outcomes["invalid"] > 150 and outcomes["valid"] > 10, outcomes


def test_remembered_refusals_are_each_components_own(refusals_remembered):
    """The fuzzing tests' memo of refusals was keyed by ``id(component)`` alone: a component built
    after another was freed (a registry rebuilt) could take its id, and with it its answer."""
    from automm import search_space
    from automm.registry import ComponentSpec

    def refuses(width=1):
        raise ValueError("refused")

    for factory, expected in [(refuses, "ValueError: refused"), (lambda width=1: None, None)] * 20:
        component = ComponentSpec(kind="encoder", name="made", factory=factory, provider="test")
        assert search_space.component_refusal(component, {"width": 2}) == expected
        del component


def test_fuzzed_yaml_text_gives_recipe_errors_never_tracebacks(tmp_path, refusals_remembered):
    rng = random.Random(7)
    text = (REPO / "recipes" / "quickstart.yaml").read_text()
    alphabet = ":-[]{}#&*!|>'\"%@`,?\n\t  abcxyz019.$"
    file = tmp_path / "r.yaml"
    for i in range(100):
        chars = list(text)
        for _ in range(rng.randint(1, 6)):
            j = rng.randrange(len(chars))
            op = rng.randrange(3)
            if op == 0:
                del chars[j]
            elif op == 1:
                chars.insert(j, rng.choice(alphabet))
            else:
                chars[j] = rng.choice(alphabet)
        file.write_text("".join(chars))
        try:
            load_recipe(file)
        except RecipeError:
            pass
        except Exception as exc:  # pragma: no cover
            raise AssertionError(f"text mutation {i} raised {type(exc).__name__}: {exc}\n{''.join(chars)}") from exc


def test_image_paths_of_a_column_the_model_does_not_read_are_not_checked(tmp_path):
    import pandas as pd

    from automm.tables import image_folders, resolve_image_paths

    frame = pd.DataFrame({"name": ["a b", "c d"], "old_thumbnail": ["thumbs/1.jpg", "thumbs/2.jpg"]})
    folders = image_folders(tmp_path / "items.csv")
    kept = resolve_image_paths(frame, folders, {"name": "text"}, source="items.csv", inputs=["name"])
    assert len(kept) == 2  # an unused column may point anywhere
    with pytest.raises(InputError, match="column 'old_thumbnail': 2 of 2 relative paths are in none"):
        resolve_image_paths(frame, folders, {"name": "text"}, source="items.csv", inputs=["name", "old_thumbnail"])


def test_a_plugin_modalitys_strings_are_paths_only_when_they_name_files(tmp_path):
    import pandas as pd

    from automm.tables import image_folders, resolve_image_paths

    folders = image_folders(tmp_path / "items.csv")
    sequences = pd.DataFrame({"seq": ["ACGT", "GGCA", "TTAG"]})  # a plugin's modality of plain strings
    kept = resolve_image_paths(sequences, folders, {"seq": "dna"}, source="items.csv", inputs=["seq"])
    assert kept["seq"].tolist() == ["ACGT", "GGCA", "TTAG"]
    tracks = pd.DataFrame({"track": [f"song_{i}.mp3" for i in range(3)]})  # no role known: text, left alone
    assert resolve_image_paths(tracks, folders, {}, source="items.csv", inputs=["track"]).equals(tracks)
    (tmp_path / "song_0.mp3").write_bytes(b"ID3")
    resolved = resolve_image_paths(tracks.head(1), folders, {"track": "music"}, source="items.csv", inputs=["track"])
    assert resolved["track"].tolist() == [str(tmp_path / "song_0.mp3")]  # a plugin's media: looked up


@pytest.mark.parametrize("override, path, message", [
    ("search.search_space.encoders.image.cnn.width={low: 16, high: 8}", "search.search_space.encoders.image.cnn.width",
     "low 16 is above high 8"),
    ("search.search_space.encoders.image.cnn.widht=[8, 16]", "search.search_space.encoders.image.cnn",
     "no hyperparameter 'widht' (did you mean 'width'?)"),
    ("search.search_space.fusion.concat.hiden_dim=64", "search.search_space.fusion.concat",
     "no hyperparameter 'hiden_dim' (did you mean 'hidden_dim'?)"),
    ("search.search_space.augmentations={horizontal_flip: {pp: 0.5}}", "search.search_space.augmentations.horizontal_flip",
     "no hyperparameter 'pp' (did you mean 'p'?)"),
    # a name no plugin registered, said at its key path (was "search.search_space" alone)
    ("search.search_space.augmentations={horizontal_flipp: true}", "search.search_space.augmentations.horizontal_flipp",
     "unknown augmentation 'horizontal_flipp'. Did you mean 'horizontal_flip'?"),
    ("search.search_space.augmentations=[horizontal_flipp]", "search.search_space.augmentations",
     "unknown augmentation 'horizontal_flipp'. Did you mean 'horizontal_flip'?"),
    ("search.search_space.fusion={concat: {}, gatted: {}}", "search.search_space.fusion",
     "unknown fusion 'gatted'. Did you mean 'gated'?"),
    ("search.search_space.encoders.text=[hashed_ngrm]", "search.search_space.encoders.text",
     "unknown encoder 'hashed_ngrm'. Did you mean 'hashed_ngram'?"),
    # what fit refused only once the data were read
    ("search.search_space.encoders.text=[hashed_ngram, cnn]", "search.search_space.encoders.text",
     "'cnn' encodes 'image', not 'text'"),
    ("search.search_space.augmentations={horizontal_flip: 'yes'}", "search.search_space.augmentations.horizontal_flip",
     "expected true, false, 'search', null or a dict of parameter specs, got 'yes'"),
    # what failed every sampled trial, or was read as another value
    ("search.search_space.encoders.image.cnn.width={low: 8, high: 16, step: -4}",
     "search.search_space.encoders.image.cnn.width", "step must be above 0, got -4"),  # each trial: a PluginError
    ("search.search_space.encoders.image.cnn.width={low: 8, high: 16, step: 0}",
     "search.search_space.encoders.image.cnn.width", "step must be above 0, got 0"),  # read as step 1
    ("search.search_space.training.max_epochs={low: 2, high: 4, step: 0}",
     "search.search_space.training.max_epochs", "step must be above 0, got 0"),
    ("search.search_space.encoders.image.cnn.width={low: 8, high: 16.0}", "search.search_space.encoders.image.cnn.width",
     "refuses width=12.5 (InputError: width must be a whole number >= 1, got 12.5), a value the range samples (a float "
     "bound or step makes a range of floats); give {'low': 8, 'high': 16} to sample whole numbers"),
    ("search.search_space.encoders.image.cnn.width={low: 8, high: 16, step: 0.5}",
     "search.search_space.encoders.image.cnn.width", "refuses width=8.5"),
    ("search.search_space.encoders.text.hashed_ngram.word_bigrams=[true, 'no']",
     "search.search_space.encoders.text.hashed_ngram.word_bigrams",
     "refuses word_bigrams='no' (InputError: word_bigrams must be true or false, got 'no')"),  # was on
    # values the component refuses (they failed every trial that sampled them)
    ("search.search_space.encoders.image.cnn.width={low: -8, high: 8}", "search.search_space.encoders.image.cnn.width",
     "encoder 'cnn' refuses width=-8 (InputError: width must be a whole number >= 1, got -8)"),
    ("search.search_space.augmentations={horizontal_flip: {p: 3}}", "search.search_space.augmentations.horizontal_flip.p",
     "augmentation 'horizontal_flip' refuses p=3"),
    ("search.search_space.training.learning_rate={low: 0.001, high: 0.01, log: 'false'}",
     "search.search_space.training.learning_rate", "log must be true or false, got 'false'"),  # was read as true
])
def test_validate_checks_the_components_of_a_search_space_without_data(override, path, message):
    from automm.recipes import load_recipe

    with pytest.raises(RecipeError) as caught:
        load_recipe(str(REPO / "recipes" / "quickstart.yaml"), [override], check_data=False)
    problems = {p.path: p.message for p in caught.value.problems}
    assert path in problems and message in problems[path], problems


@pytest.mark.parametrize("override, path, message", [
    ("components.fusion={name: concat, proj_dim: -3}", "components.fusion.proj_dim", "fusion 'concat' refuses proj_dim=-3"),
    ("components.encoders.image={name: cnn, width: -8}", "components.encoders.image.width",
     "encoder 'cnn' refuses width=-8 (InputError: width must be a whole number >= 1, got -8)"),
    ("components.augmentations=[{name: horizontal_flip, p: 1.5}]", "components.augmentations[0].p",
     "augmentation 'horizontal_flip' refuses p=1.5"),
    ("components.encoders.text={name: hashed_ngram, word_bigrams: 'false'}", "components.encoders.text.word_bigrams",
     "refuses word_bigrams='false' (InputError: word_bigrams must be true or false, got 'false')"),  # was on
])
def test_validate_checks_the_values_given_with_the_components_without_data(override, path, message):
    """validate passed values that fit then refused after reading the data."""
    from automm.recipes import load_recipe

    with pytest.raises(RecipeError) as caught:
        load_recipe(str(REPO / "recipes" / "quickstart.yaml"), [override], check_data=False)
    problems = {p.path: p.message for p in caught.value.problems}
    assert path in problems and message in problems[path], problems


@pytest.mark.parametrize("key", ["name", "text_0"])
def test_validate_refuses_a_search_space_encoder_of_another_modality_than_its_column_or_input(key):
    """A column whose role data.column_types gives, or an input: fit refused the choice once the data were read."""
    recipe = emoji_recipe(search={"search_space": {"encoders": {key: {"gru": {}, "resnet": {}}}}})
    recipe["data"]["column_types"] = {"name": "text"}
    role = " (data.column_types.name: 'text')" if key == "name" else ""
    for check_data in (False, True):
        found = problems_of(recipe, check_data=check_data)
        assert list(found) == [f"search.search_space.encoders.{key}"], found
        assert found[f"search.search_space.encoders.{key}"].startswith(
            f"encoder 'resnet' encodes 'image', not 'text'{role}; 'text' encoders: gru, hashed_ngram")
    recipe["search"]["search_space"]["encoders"][key] = ["gru", "hashed_ngram"]
    assert problems_of(recipe) == {}


def test_an_unset_environment_variable_is_said_once_at_its_key(monkeypatch):
    """Not also as a value of the wrong kind: "expected a positive integer or null, found '${AUTOMM_UNSET_X}'"."""
    monkeypatch.delenv("AUTOMM_UNSET_X", raising=False)
    recipe = emoji_recipe(search={"n_trials": "${AUTOMM_UNSET_X}"}, output={"dir": "${AUTOMM_UNSET_X}/model"})
    problems = validate_recipe(recipe, check_data=False)
    assert [p.path for p in problems] == ["search.n_trials", "output.dir"], problems
    assert all("environment variable AUTOMM_UNSET_X is not set" in p.message for p in problems)


def test_a_default_may_name_variables_and_a_brace_that_starts_no_reference_is_refused(monkeypatch):
    """`output.dir: ${MODELS:-${HOME}/models}/r2` saved the model under a folder named
    `${HOME/models}/r2` (the default ended at the first `}`), and `${HOME/models}`, `${NAME-x}`
    or a `${NAME` never closed were kept as they were written: folders named so, silently."""
    monkeypatch.setenv("AUTOMM_TEST_HOME", "/srv/ops")
    monkeypatch.setenv("AUTOMM_TEST_EPOCHS", "2")
    monkeypatch.delenv("AUTOMM_TEST_UNSET", raising=False)
    recipe = load_recipe(emoji_recipe(output={"dir": "${AUTOMM_TEST_UNSET:-${AUTOMM_TEST_HOME}/models}/r2"},
                                      training={"max_epochs": "${AUTOMM_TEST_UNSET:-${AUTOMM_TEST_EPOCHS}}"},
                                      description="${AUTOMM_TEST_HOME:-${AUTOMM_TEST_UNSET}} $${kept}"),
                         check_data=False)
    assert recipe.content["output"]["dir"] == "/srv/ops/models/r2"
    assert recipe.params()["max_epochs"] == 2  # one reference alone: typed, its default's too
    assert recipe.content["description"] == "/srv/ops ${kept}"  # a default not used is not read
    found = problems_of(emoji_recipe(output={"dir": "${AUTOMM_TEST_UNSET:-${AUTOMM_TEST_UNSET}}/m"}), check_data=False)
    assert found == {"output.dir": "environment variable AUTOMM_TEST_UNSET is not set (referenced as "
                                   "${AUTOMM_TEST_UNSET}); set it, or give the value with --set output.dir=..."}
    for written in ("${AUTOMM_TEST_HOME/models}/r2", "${AUTOMM_TEST_HOME-x}", "~/${AUTOMM_TEST_HOME",
                    "${AUTOMM_TEST_UNSET:-${AUTOMM_TEST_HOME}", "${ AUTOMM_TEST_HOME }",
                    "${AUTOMM_TEST_HOME:-${AUTOMM_TEST_HOME/x}}/rest"):  # (in a default not used, too)
        found = problems_of(emoji_recipe(output={"dir": written}), check_data=False)
        assert list(found) == ["output.dir"] and "is not an environment variable reference automm reads: write " \
            "${NAME} or ${NAME:-default}" in found["output.dir"] and "$${ for a literal ${" in found["output.dir"]
    assert "'${AUTOMM_TEST_HOME/models}'" in problems_of(
        emoji_recipe(output={"dir": "${AUTOMM_TEST_HOME/models}/r2"}), check_data=False)["output.dir"]


def test_a_data_path_this_python_cannot_name_says_how_to_run_it(tmp_path, monkeypatch):
    """Under LC_ALL=C with UTF-8 mode off, `data.path: d\xe4t\xe4.csv` was "file not found" alone,
    also where the file is there, which this Python cannot name (image paths so named said why)."""
    import sys

    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "ascii")
    recipe = {"data": {"path": str(tmp_path / "d\u00e4t\u00e4.csv"), "label": "category"}}
    message = problems_of(recipe)["data.path"]
    assert message.startswith("file not found: ") and "this Python names files in ASCII only " \
        "(sys.getfilesystemencoding() is 'ascii'" in message and "run it with PYTHONUTF8=1" in message


def test_a_key_given_twice_in_a_recipe_is_refused_naming_both_lines(tmp_path):
    from automm.recipes import load_recipe

    (tmp_path / "dup.yaml").write_text("version: 1\ndata:\n  sample: emoji\n  label: category\ntraining:\n"
                                       "  max_epochs: 1\ntraining:\n  max_epochs: 50\n")
    with pytest.raises(RecipeError, match=r"found the key 'training' twice \(line 5 and line 7\): keep one"):
        load_recipe(str(tmp_path / "dup.yaml"), check_data=False)


def test_set_says_a_list_item_cannot_be_reached_and_what_to_set_instead():
    recipe = {"components": {"encoders": {"image": ["cnn", {"name": "resnet", "width": 8}]}}}
    with pytest.raises(RecipeError, match=r"--set cannot reach into a list \('image\[1\]'\): set the whole list, "
                                          r"--set components.encoders.image=\[...\]"):
        apply_overrides(recipe, ["components.encoders.image[1].width=16"])
    with pytest.raises(RecipeError, match=r"components.encoders.image is .*, not a mapping; --set cannot reach into a "
                                          r"list: set the whole list"):
        apply_overrides(recipe, ["components.encoders.image.1.width=16"])


def test_the_saved_recipe_keeps_a_literal_dollar_brace_in_the_model_folder(tmp_path):
    from automm.recipes import fit_recipe, load_recipe

    recipe = emoji_recipe(training={"max_epochs": 1}, output={"dir": str(tmp_path / "lit$${HOME}")})
    result = fit_recipe(load_recipe(recipe, base_dir=tmp_path))
    assert result.model_dir == str(tmp_path / "lit${HOME}")
    saved = load_recipe(str(tmp_path / "lit${HOME}" / "recipe.yaml"))
    assert saved.content["output"]["dir"] == str(tmp_path / "lit${HOME}")  # not $HOME expanded


def test_validate_shows_what_the_search_space_replaces():
    from automm.recipes import load_recipe

    recipe = emoji_recipe(components={"encoders": {"image": ["cnn", "resnet"], "text": "hashed_ngram"},
                                      "fusion": ["concat", "late"]},
                          search={"search_space": {"encoders": {"image": ["resnet"]}, "fusion": {"late": {}}}})
    rows = dict(load_recipe(recipe, check_data=False).describe())
    assert rows["encoders"].endswith("(search_space.encoders replaces image)")  # text keeps hashed_ngram
    assert rows["fusion"].endswith("(replaced by search_space.fusion)")
    assert rows["search_space.encoders"] == '{"image": ["resnet"]}'
    assert "replace" not in dict(load_recipe(emoji_recipe(), check_data=False).describe()).get("encoders", "")


def test_validate_says_a_searched_recipe_given_fusion_concat_tries_every_fusion():
    """AutoMM's default fusion searches every one; a recipe that names it looks narrowed (validate showed "concat"),
    and a search_space.fusion of null replaces nothing (validate said it did)."""
    from automm.recipes import load_recipe

    recipe = emoji_recipe(components={**TINY_COMPONENTS, "fusion": "concat"},
                          search={"n_trials": 4, "search_space": {"fusion": None}})
    rows = dict(load_recipe(recipe, check_data=False).describe())
    assert rows["fusion"] == "concat  (the default: the search tries every fusion; [concat] keeps it)"
    for fusion in (["concat"], {"name": "concat"}):  # what keeps it
        recipe["components"]["fusion"] = fusion
        assert "every fusion" not in dict(load_recipe(recipe, check_data=False).describe())["fusion"]
    recipe = emoji_recipe(components={**TINY_COMPONENTS, "fusion": "concat"})  # no search: concat it is
    assert dict(load_recipe(recipe, check_data=False).describe())["fusion"] == "concat"


def test_words_a_csv_reader_takes_for_missing_values_are_named(tmp_path):
    """Namibia's code "NA" and the answer "None" became missing values without a word (and
    automm init then called a column of NA/None/null/ok "one value, 'ok'")."""
    import warnings

    import pandas as pd

    from automm.tables import read_table

    pd.DataFrame({"country": ["NA", "US", "DE"] * 4, "answer": ["None", "Yes", ""] * 4, "n": [1.0, None, 2.0] * 4,
                  "label": ["a", "b", "c"] * 4}).to_csv(tmp_path / "c.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_table(tmp_path / "c.csv")
    said = [str(w.message) for w in caught]
    assert frame["country"].isna().sum() == 4  # read as pandas reads it, and said
    assert any("column 'country' has 4 values written as words that are read as missing ('NA' (4))" in m for m in said)
    assert any("column 'answer' has 4 values" in m and "'None' (4)" in m for m in said)  # (not the 4 empty cells)
    assert not any("'n'" in m for m in said)  # a number column's NA is a missing number


def test_scikit_learn_conventions_round_trip_through_a_recipe():
    from automm.recipes import load_recipe, to_recipe

    recipe = to_recipe(AutoMM(random_state=np.random.RandomState(0), n_jobs=None))
    assert recipe.get("seed") is None and recipe["search"]["n_jobs"] is None  # an unfitted generator: no seed
    assert load_recipe(recipe, check_data=False).estimator().n_jobs is None


def test_csv_files_as_spreadsheets_write_them_are_read_with_their_codes_kept(tmp_path):
    """Semicolon-separated and Windows-1252 CSV files failed to read (a one-column table, or a
    UnicodeDecodeError), and codes with leading zeros became numbers ("001" labels came back as 1)."""
    import warnings

    import pandas as pd

    from automm.tables import read_column, read_header, read_table

    rows = pd.DataFrame({"zip": ["00412", "10001", None, "00007"], "amount": [1, 2, None, 4],
                         "label": ["001", "002", "010", "002"], "name": ["Café crème", "Thé", "x, y", "z"],
                         "flag": ["True", "False", "True", "True"], "count": [1, 2, 3, 4]})
    rows.to_csv(tmp_path / "plain.csv", index=False)
    frame = read_table(tmp_path / "plain.csv")
    assert frame["zip"].tolist()[:2] == ["00412", "10001"] and frame["label"].tolist() == ["001", "002", "010", "002"]
    assert frame["amount"].dtype == np.float64 and frame["count"].dtype == np.int64 and frame["flag"].dtype == bool
    assert read_column(tmp_path / "plain.csv", "csv", "label").tolist() == ["001", "002", "010", "002"]
    reference = pd.read_csv(tmp_path / "plain.csv")  # the rest as pandas reads it
    assert frame[["amount", "name", "flag", "count"]].equals(reference[["amount", "name", "flag", "count"]])
    rows.to_csv(tmp_path / "excel.csv", index=False, sep=";", encoding="cp1252")
    with pytest.warns(UserWarning, match=r"excel.csv' is not UTF-8 text: read as cp1252"):
        spreadsheet = read_table(tmp_path / "excel.csv")
    assert read_header(tmp_path / "excel.csv", "csv") == list(rows.columns)
    assert spreadsheet["name"].tolist() == ["Café crème", "Thé", "x, y", "z"]
    assert spreadsheet["label"].tolist() == frame["label"].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_table(tmp_path / "plain.csv")  # UTF-8: nothing to say
    (tmp_path / "prices.csv").write_text("name;price\nTee;84,63\nCap;5\n", encoding="utf-8")
    assert read_table(tmp_path / "prices.csv")["price"].tolist() == [84.63, 5.0]  # decimal commas, as written
    late = "name,code\n" + "plain,1\n" * 20000 + "caf\u00e9,2\n"  # the one Windows-1252 byte past the first 64 KiB
    (tmp_path / "late.csv").write_bytes(late.encode("cp1252"))
    with pytest.warns(UserWarning, match="is not UTF-8 text: read as cp1252"):
        assert read_table(tmp_path / "late.csv")["name"].iloc[-1] == "caf\u00e9"
    for sep, name in ((",", "utf16.csv"), ("\t", "unicode_text.csv")):  # UTF-16, as Excel's "Unicode text" saves
        rows.to_csv(tmp_path / name, index=False, sep=sep, encoding="utf-16")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing to check: UTF-16 says what it is
            assert read_table(tmp_path / name)["name"].tolist() == ["Café crème", "Thé", "x, y", "z"]
        assert read_header(tmp_path / name, "csv") == list(rows.columns)


def test_a_semicolon_csv_file_with_a_comma_in_a_column_name_is_read_by_semicolons(tmp_path):
    """A spreadsheet's semicolon-separated file quotes no column name for a comma (``Name, lang``):
    its header had a comma, so it was read by commas, as two columns ``image;Name`` and
    `` lang;price;label``, and `automm init --label label` said there was no column 'label'."""
    from automm.tables import read_header, read_table

    (tmp_path / "semi.csv").write_text("image;Name, lang;price;label\na.png;Red shirt;4,5;x\nb.png;Cap;5;y\n",
                                       encoding="utf-8")
    assert read_header(tmp_path / "semi.csv", "csv") == ["image", "Name, lang", "price", "label"]
    frame = read_table(tmp_path / "semi.csv")
    assert frame["Name, lang"].tolist() == ["Red shirt", "Cap"] and frame["price"].tolist() == [4.5, 5.0]
    (tmp_path / "header.csv").write_text("image;Name, lang;label\n", encoding="utf-8")  # a header alone too
    assert read_header(tmp_path / "header.csv", "csv") == ["image", "Name, lang", "label"]
    # a comma-separated file with a semicolon in a name, or in its values, stays read by commas
    (tmp_path / "comma.csv").write_text("id,size;fit,label\n1,M;slim,x\n2,L,y\n", encoding="utf-8")
    assert read_header(tmp_path / "comma.csv", "csv") == ["id", "size;fit", "label"]
    (tmp_path / "both.csv").write_text("name;alias,label\np;q,x\nr;s,y\n", encoding="utf-8")
    assert read_header(tmp_path / "both.csv", "csv") == ["name;alias", "label"]


def test_a_two_column_semicolon_csv_file_with_decimal_commas_is_read_by_semicolons(tmp_path):
    """``id;Preis, EUR`` over ``1;3,5``: each line splits in two by semicolons and by commas alike,
    and the file was read by commas, as columns ``id;Preis`` and `` EUR`` holding ``1;3`` and ``5``."""
    from automm.tables import read_header, read_table

    (tmp_path / "prices.csv").write_text("id;Preis, EUR\n1;3,5\n2;4,25\n3;1.234,5\n", encoding="utf-8")
    assert read_header(tmp_path / "prices.csv", "csv") == ["id", "Preis, EUR"]
    assert read_table(tmp_path / "prices.csv")["id"].tolist() == [1, 2, 3]
    (tmp_path / "both.csv").write_text("name;alias,label\np;q,x\nr;s,y\n", encoding="utf-8")  # commas in words
    assert read_header(tmp_path / "both.csv", "csv") == ["name;alias", "label"]


def test_a_csv_file_whose_rows_end_with_a_delimiter_keeps_its_columns_in_place(tmp_path):
    """Rows ending with a delimiter the header lacks ("a,b," under "title,shop"): pandas took the
    titles for the index and every column shifted one to the left, so `automm predict` read the
    shop names as the titles, silently."""
    from automm.tables import read_as_written, read_column, read_table

    (tmp_path / "trailing.csv").write_text("title,shop\n黑色手机 特价,s1,\nrunning shoes,s2,\n", encoding="utf-8")
    (tmp_path / "semi.csv").write_text("title;price\nTee;4,5;\nCap;5;\n", encoding="utf-8")
    frame = read_table(tmp_path / "trailing.csv")
    assert list(frame.columns) == ["title", "shop"] and frame["title"].tolist() == ["黑色手机 特价", "running shoes"]
    assert frame["shop"].tolist() == ["s1", "s2"] and frame.index.tolist() == [0, 1]
    assert read_column(tmp_path / "trailing.csv", "csv", "title").tolist() == ["黑色手机 特价", "running shoes"]
    assert read_as_written(tmp_path / "trailing.csv", ["shop"])["shop"].tolist() == ["s1", "s2"]
    assert read_table(tmp_path / "semi.csv")["price"].tolist() == [4.5, 5.0]
    (tmp_path / "row_names.csv").write_text("title,shop\nr1,tee,s1\nr2,cap,s2\n", encoding="utf-8")  # R's write.table
    assert read_table(tmp_path / "row_names.csv")["title"].tolist() == ["tee", "cap"]  # as pandas reads it


def test_a_csv_file_with_one_field_more_on_some_lines_only_is_refused_naming_the_lines(tmp_path):
    """Header of 3 fields, some rows of 4: pandas took the first column for the index and shifted every
    name (the 'name' column held colours), or automm failed with "IndexingError: Unalignable boolean
    Series" where a first field was empty; a row of 4 after one of 3 was pandas' "C error"."""
    from automm.exceptions import InputError
    from automm.tables import read_header, read_table

    files = {"value.csv": ("name,colour,label\nred shirt,red,a,x\n,,b\ngreen hat,NA,a,y\n", "line 2 has 4 fields, one "
                           "more than the header's 3, while line 3 has 3; its last field, 'x', has no column"),
             "later.csv": ("name,colour,label\nred shirt,red,a\nblue shoe,,b,zz\n", "line 3 has 4 fields, .*line 2 "
                           "has 3; its last field, 'zz'"),
             "ends.csv": ("name,colour,label\nred shirt,red,a,\nblue shoe,,b\n", "line 2 .*a delimiter ends some lines "
                          "but not all")}
    for name, (text, message) in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        for read in (read_table, lambda file: read_header(file, "csv")):
            with pytest.raises(InputError, match=rf"^'.*{name}': {message}"):
                read(tmp_path / name)
    (tmp_path / "row_names.csv").write_text("title,shop,price\nr1,tee,s1,007\n,cap,NA,010\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="column 'shop' has 1 values written as words"):  # an empty row name
        frame = read_table(tmp_path / "row_names.csv")
    assert frame["title"].tolist() == ["tee", "cap"] and frame["price"].tolist() == ["007", "010"]


def test_a_csv_file_in_a_legacy_encoding_of_another_script_is_refused_not_read_as_nonsense(tmp_path):
    """A GBK (or Shift-JIS, Windows-1256, ...) file was read as Windows-1252 or Latin-1, its titles
    turned into nonsense, with a warning about "accented letters": predictions silently wrong."""
    from automm.exceptions import InputError
    from automm.tables import read_table

    titles = {"gbk": "黑色手机 特价正品\n运动鞋 包邮\n", "shift_jis": "Sony靴人気送料無料\nスマホケース 新品\n",
              "euc_kr": "검정 시계 정품\n신상 휴대폰\n", "cp1256": "هاتف ذكي جديد\nحذاء أسود\n",
              "cp1251": "Телефон новый\nКроссовки\n"}
    for encoding, text in titles.items():
        (tmp_path / f"{encoding}.csv").write_bytes(("title\n" + text * 5).encode(encoding))
        with pytest.raises(InputError, match=rf"{encoding}.csv' is not UTF-8 text.*save the file as UTF-8"):
            read_table(tmp_path / f"{encoding}.csv")
    western = ["Café crème", "Informações não incluídas", "Calçados Größe Übergröße", "¿Qué tamaño? Añadió"]
    (tmp_path / "western.csv").write_bytes(("title\n" + "\n".join(western * 20)).encode("cp1252"))
    with pytest.warns(UserWarning, match="is not UTF-8 text: read as cp1252"):  # read, as before
        assert read_table(tmp_path / "western.csv")["title"].tolist() == western * 20


def test_a_utf8_file_with_a_few_bytes_of_another_encoding_is_refused_naming_where_they_are(tmp_path):
    """A UTF-8 file of Chinese titles with one row pasted from a Windows-1252 file was refused as a
    legacy encoding, with the advice to convert it from GBK (iconv would garble its UTF-8 text)."""
    from automm.exceptions import InputError
    from automm.tables import _utf8_but_for, read_table

    text = "title,shop\n" + "".join(f"黑色手机 特价正品 {i},s\n" for i in range(200))
    data = text.encode("utf-8") + "café crème,t\n".encode("cp1252")
    (tmp_path / "pasted.csv").write_bytes(data)
    at = data.index(b"caf\xe9") + 3
    with pytest.raises(InputError, match=rf"is UTF-8 text but for bytes that are not, the first at byte {at} "
                                         r"\(line 202 of the file\)") as caught:
        read_table(tmp_path / "pasted.csv")
    assert "GBK" not in str(caught.value)
    assert _utf8_but_for(tmp_path / "pasted.csv", chunk=7) == (at, 202)  # (characters cut between blocks)
    (tmp_path / "gbk.csv").write_bytes(text.encode("gbk"))
    with pytest.raises(InputError, match="legacy encoding"):
        read_table(tmp_path / "gbk.csv")


def test_the_legacy_encoding_scan_reads_past_a_large_western_start(tmp_path):
    """The scan compares each chunk's bytes at once (a 35 MB Windows-1252 file: 1.5 s one match
    at a time, 0.08 s now; benchmarks/RESULTS.md, session 43); its verdict is the rule's: accented
    letters apart are Western, words of runs are another script, wherever in the file they come."""
    from automm.tables import _in_legacy_non_latin_encoding

    western = (b"id,title\n" + b"1,plain ascii text of a product title here\n" * 40
               + "2,caf\u00e9 cr\u00e8me\n".encode("cp1252")) * 2000
    (tmp_path / "western.csv").write_bytes(western)
    assert not _in_legacy_non_latin_encoding(tmp_path / "western.csv")
    chinese = "".join(f"{i},\u9ed1\u8272\u624b\u673a \u7279\u4ef7\n" for i in range(50)).encode("gbk")
    (tmp_path / "late.csv").write_bytes(b"id,title\n" + b"0,ascii\n" * 200_000 + chinese)  # past the first 1 MB
    assert _in_legacy_non_latin_encoding(tmp_path / "late.csv")


def test_split_values_given_as_whole_numbers_match_a_fold_column_read_as_floats():
    from automm.recipe_checks import split_value_problems

    found = [0.0, 1.0, float("nan"), 1.0]  # a fold column with an empty cell
    assert split_value_problems(found, {"split_column": "fold", "train_values": [0], "test_values": [1]}) == []
    problems = split_value_problems(found, {"split_column": "fold", "train_values": [2]})
    assert len(problems) == 1 and "values found: '0', '1', 'nan'" in problems[0].message


def test_a_study_name_written_as_a_number_is_that_name(monkeypatch):
    from automm.recipes import load_recipe

    monkeypatch.setenv("STUDY", "2024")
    recipe = load_recipe(str(REPO / "recipes" / "quickstart.yaml"), ["search.study_name=${STUDY}"], check_data=False)
    assert recipe.params()["study_name"] == "2024"


def test_the_recipe_beside_a_model_keeps_every_environment_reference_not_its_value(tmp_path, monkeypatch):
    """A token a recipe put in description or study_name was written, expanded, beside the model."""
    from automm.recipes import fit_recipe, load_recipe

    monkeypatch.setenv("TEAM_TOKEN", "ghp_s3cret")
    monkeypatch.setenv("EPOCHS", "1")
    recipe = emoji_recipe(description="notes ${TEAM_TOKEN}", training={"max_epochs": "${EPOCHS}", "num_workers": 0},
                          output={"dir": str(tmp_path / "m")})
    result = fit_recipe(load_recipe(recipe, base_dir=tmp_path))
    written = (tmp_path / "m" / "recipe.yaml").read_text()
    assert "ghp_s3cret" not in written and "notes ${TEAM_TOKEN}" in written and "${EPOCHS}" in written
    assert result.estimator.max_epochs == 1


def test_min_class_rows_drops_test_rows_of_classes_without_training_rows(tmp_path):
    """The recipe comment says min_class_rows drops rare classes "from train and test": a class of
    1-29 training rows was dropped from the test rows, one of 0 training rows was kept (and
    always counted as errors)."""
    import pandas as pd

    from automm.recipes import load_recipe

    frame = pd.DataFrame({"text": [f"item {i}" for i in range(40)],
                          "label": ["a"] * 15 + ["b"] * 12 + ["c"] * 3 + ["a"] * 4 + ["c"] * 2 + ["d"] * 4,
                          "split": ["train"] * 30 + ["test"] * 10})
    frame.to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({
        "data": {"path": "rows.csv", "label": "label", "split_column": "split", "min_class_rows": 5}}))
    data = load_recipe(tmp_path / "recipe.yaml").load_data()
    assert sorted(set(data.y_train)) == ["a", "b"]
    assert sorted(set(data.y_test)) == ["a"] and len(data.y_test) == 4
    assert data.dropped_classes == ["c", "d"]


def test_rows_with_an_empty_split_value_are_counted_among_those_left_out(tmp_path):
    import pandas as pd

    from automm.recipes import load_recipe

    frame = pd.DataFrame({"text": [f"item {i}" for i in range(30)], "label": ["a", "b"] * 15,
                          "part": ["train"] * 20 + ["test"] * 5 + [None] * 4 + ["later"]})
    frame.to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({
        "data": {"path": "rows.csv", "label": "label", "split_column": "part"}}))
    data = load_recipe(tmp_path / "recipe.yaml").load_data()
    assert data.other_split_rows == {"(empty)": 4, "later": 1}


def test_a_min_class_rows_that_drops_every_class_says_so(tmp_path):
    import pandas as pd

    from automm.recipes import RecipeError, load_recipe

    pd.DataFrame({"text": [f"item {i}" for i in range(20)], "label": ["a", "b"] * 10}).to_csv(tmp_path / "rows.csv",
                                                                                            index=False)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({
        "data": {"path": "rows.csv", "label": "label", "min_class_rows": 1000}}))
    with pytest.raises(RecipeError, match=r"data.min_class_rows.*1000 drops every class: the most frequent has 10"):
        load_recipe(tmp_path / "recipe.yaml").load_data()


def test_a_number_or_boolean_where_a_text_belongs_says_to_quote_it(tmp_path):
    """--set output.dir=2024 and data.label=no were refused as 'found 2024 (an integer)' without
    saying that YAML read the text as a number or a boolean."""
    from automm.recipes import RecipeError, load_recipe

    (tmp_path / "recipe.yaml").write_text("data:\n  sample: emoji\n  label: no\noutput:\n  dir: 2024\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(tmp_path / "recipe.yaml")
    message = str(caught.value)
    assert "data.label: expected a non-empty column name, found false (a boolean) (YAML reads it as a boolean: " \
           "quote the text you meant" in message
    assert "output.dir" in message and "quote the text you meant, '2024'" in message


def test_a_number_among_choices_is_not_told_to_be_quoted(tmp_path):
    from automm.recipes import RecipeError, load_recipe

    (tmp_path / "recipe.yaml").write_text("data:\n  sample: emoji\n  label: category\n  column_types:\n    name: 5\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(tmp_path / "recipe.yaml")
    assert "data.column_types.name" in str(caught.value) and "quote" not in str(caught.value)


def test_a_relative_path_found_in_several_folders_is_said(tmp_path):
    """`automm evaluate` looks in the data file's folder, the working directory, then the model's
    files_dir: a copy of the training file beside placeholder images of the same names read the
    placeholders silently (0.333 against 0.658)."""
    import warnings

    import pandas as pd
    from PIL import Image

    from automm.tables import resolve_image_paths

    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    for folder, colour in ((mine, "red"), (theirs, "blue")):
        folder.mkdir()
        Image.new("RGB", (4, 4), colour).save(folder / "a.png")
    Image.new("RGB", (4, 4), "green").save(theirs / "b.png")
    frame = pd.DataFrame({"image": ["a.png", "b.png"]})
    with pytest.warns(UserWarning, match=r"column 'image': 'a.png' names a file both in .*mine and in .*theirs"):
        resolved = resolve_image_paths(frame, [mine, theirs], {"image": "image"}, source="data.csv")
    assert resolved["image"].tolist() == [str(mine / "a.png"), str(theirs / "b.png")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_image_paths(frame, [theirs, theirs], {"image": "image"}, source="data.csv")  # the same files
        resolve_image_paths(frame.iloc[1:], [mine, theirs], {"image": "image"}, source="data.csv")


def test_a_class_weight_of_zero_is_accepted_as_in_python_and_a_negative_one_refused():
    """``AutoMM(class_weight={"Flags": 0})`` (leave a class's rows out of the loss) was accepted
    in Python but refused by a recipe as 'expected a positive number': one rule for both."""
    training = {"max_epochs": 1, "batch_size": 32, "num_workers": 0}
    assert problems_of(emoji_recipe(training={**training, "class_weight": {"Flags": 0, "Symbols": 2}})) == {}
    found = problems_of(emoji_recipe(training={**training, "class_weight": {"Flags": -1}}))
    assert list(found) == ["training.class_weight.Flags"] and ">= 0" in found["training.class_weight.Flags"]
    AutoMM(class_weight={"Flags": 0, "Symbols": 2})._check_class_weight()


def test_scikit_learns_metric_names_are_translated_in_a_recipe_and_in_python():
    """``metric: recall_macro`` (scikit-learn's name of balanced accuracy) was refused with no
    suggestion; a probability metric (``roc_auc``) with nothing on how to measure it."""
    found = problems_of(emoji_recipe(problem={"type": "multiclass", "metric": "recall_macro"}))
    assert "scikit-learn's 'recall_macro' is 'balanced_accuracy' here" in found["problem.metric"]
    with pytest.raises(InputError, match="scikit-learn's 'neg_mean_absolute_error' is 'mae' here"):
        AutoMM(metric="neg_mean_absolute_error")._check_metric("regression")
    with pytest.raises(InputError, match=r"measure it on predict_proba \(e.g. cross_val_score\(model, X, y, "
                                         r"scoring='roc_auc'\)\)"):
        AutoMM(metric="roc_auc")._check_metric("binary")
    with pytest.raises(InputError, match="did you mean 'macro_f1'"):  # anything else: the did-you-mean as before
        AutoMM(metric="macro_f")._check_metric("multiclass")


def test_a_probability_metric_is_told_a_scorer_scikit_learn_accepts():
    """``metric="log_loss"`` was told to measure it with ``scoring='log_loss'``, which scikit-learn
    refuses ("'log_loss' is not a valid scoring value"): its scorer is ``'neg_log_loss'``."""
    import re

    from sklearn.metrics import get_scorer

    from automm.training import SCIKIT_LEARN_METRIC_NAMES

    for name in [n for n, ours in SCIKIT_LEARN_METRIC_NAMES.items() if ours is None]:
        with pytest.raises(InputError, match="measure it on predict_proba") as raised:
            AutoMM(metric=name)._check_metric("binary")
        get_scorer(re.search(r"scoring='([^']+)'", str(raised.value)).group(1))  # raises if scikit-learn lacks it
    with pytest.raises(InputError, match=r"scoring='neg_log_loss'\)\)"):
        AutoMM(metric="log_loss")._check_metric("multiclass")


def test_an_empty_variable_takes_its_default_and_a_variable_alone_at_a_text_key_stays_text(monkeypatch):
    monkeypatch.setenv("AUTOMM_TEST_EMPTY", "")
    recipe = load_recipe(emoji_recipe(search={"study_name": "${AUTOMM_TEST_EMPTY:-study}", "pruner": "none"}))
    assert recipe.params()["study_name"] == "study"  # ${NAME:-default}: set but empty takes the default, as in sh
    monkeypatch.setenv("AUTOMM_TEST_WORD", "no")
    recipe = load_recipe(emoji_recipe(description="${AUTOMM_TEST_WORD}"))
    assert recipe.content["description"] == "no"  # text, not YAML's False


def test_validate_finds_what_the_data_files_and_keys_say_against_each_other(tmp_path):
    """The checks between keys and files: a test file without the label or a feature column, a
    column type of a column left out, a search-space key naming the label, a recipe version this
    automm does not read, split values given to two parts (the default train value included)."""
    import pandas as pd

    pd.DataFrame({"image": ["a.png"], "name": ["x"], "extra": [1], "category": ["c"]}).to_csv(tmp_path / "train.csv",
                                                                                            index=False)
    pd.DataFrame({"image": ["b.png"], "name": ["y"]}).to_csv(tmp_path / "test.csv", index=False)
    recipe = {"version": 2, "data": {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv"),
                                     "label": "category", "columns": ["name", "extra"],
                                     "column_types": {"image": "image"}},
              "search": {"search_space": {"encoders": {"category": ["hashed_ngram"]}}}}
    found = problems_of(recipe)
    assert found["version"].startswith("expected one of 1, found 2")
    assert found["data.test"].startswith("the test file has no label column 'category'")
    assert found["data.columns[1]"] == "'extra' is not in the test file"
    assert found["data.column_types.image"] == "'image' is not one of data.columns"
    assert found["search.search_space.encoders.category"].startswith("'category' is neither a modality")
    one_file = {"path": "items.csv", "label": "category", "split_column": "split"}
    found = problems_of({"data": {**one_file, "train_values": ["a"], "test_values": ["a", "b"]}}, check_data=False)
    assert found == {"data.test_values": "values ['a'] are also train values"}
    found = problems_of({"data": {**one_file, "valid_values": "train"}}, check_data=False)
    assert found == {"data.valid_values": "values ['train'] are also train values"}


def test_split_values_given_to_training_and_test_rows_are_refused_with_the_defaults_too(tmp_path, emoji_sample):
    """A split value in the training and the test values is refused whichever of the two is left at its
    default ("train", "test"): train_values [train, test] made the default test rows training rows as well, and
    the test score counted rows the model had trained on (emoji: 0.97 against 0.55), as "valid"."""
    one_file = {"path": "items.csv", "label": "category", "split_column": "split"}
    found = problems_of({"data": {**one_file, "train_values": ["train", "test"]}}, check_data=False)
    assert list(found) == ["data.train_values"]
    assert found["data.train_values"].startswith("values ['test'] are also the test values (data.test_values "
                                                 "defaults to 'test'): the test score would count rows the model")
    found = problems_of({"data": {**one_file, "test_values": "train"}}, check_data=False)
    assert found == {"data.test_values": "values ['train'] are also train values (data.train_values defaults to "
                                         "'train')"}
    # the loaded rows: refused before they are read, where they had made every test row a training row
    frame = emoji_sample.head(20).copy()
    frame["split"] = ["train"] * 15 + ["test"] * 5
    frame.to_csv(tmp_path / "items.csv", index=False)
    with pytest.raises(RecipeError, match=r"data.train_values: values \['test'\] are also the test values"):
        load_recipe({"data": {**one_file, "train_values": ["train", "test"]}}, base_dir=tmp_path).load_data()
    # apart, or without a split column, nothing is said
    assert problems_of({"data": {**one_file, "train_values": ["train"]}}, check_data=False) == {}
    assert problems_of({"data": {**one_file, "train_values": "fit", "test_values": "test"}}, check_data=False) == {}
    assert problems_of({"data": {"path": "items.csv", "label": "category"}}, check_data=False) == {}


def test_reading_a_recipe_leaves_torchs_random_generator_as_found(capsys):
    """The check of a recipe's components builds each once, drawing its initial weights from torch's
    global generator: AutoMM.from_recipe, automm validate (and automm fit's Python entry point, whose
    fit itself kept the generators) moved a program's own seeded torch draws on."""
    import torch

    from automm.cli import main

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    AutoMM.from_recipe(str(REPO / "recipes" / "quickstart.yaml"))
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(0)
    assert main(["validate", str(REPO / "recipes" / "quickstart.yaml")]) == 0
    assert torch.equal(torch.rand(3), expected)


def test_a_shells_bare_variable_in_a_path_is_refused_naming_the_braces(monkeypatch):
    """`output.dir: $HOME/models` (a shell's spelling; automm reads ${HOME}) saved the model under a
    folder named `$HOME` in the working directory, without a word."""
    monkeypatch.setenv("AUTOMM_TEST_MODELS", "/srv/models")
    monkeypatch.delenv("AUTOMM_TEST_UNSET", raising=False)
    found = problems_of(emoji_recipe(output={"dir": "$AUTOMM_TEST_MODELS/r1"}))
    assert found == {"output.dir": "'$AUTOMM_TEST_MODELS/r1' holds $AUTOMM_TEST_MODELS without braces, which automm "
                                   "does not expand (it would name a folder '$AUTOMM_TEST_MODELS'): write "
                                   "${AUTOMM_TEST_MODELS}"}
    assert "training.cache_dir" in problems_of(emoji_recipe(training={"cache_dir": "$AUTOMM_TEST_MODELS"}))
    # braces, a name no variable has, text that is no path, and a literal $$ are as before
    for recipe in (emoji_recipe(output={"dir": "${AUTOMM_TEST_MODELS}/r1"}),
                   emoji_recipe(output={"dir": "runs/$AUTOMM_TEST_UNSET"}),
                   emoji_recipe(description="costs $AUTOMM_TEST_MODELS")):
        assert problems_of(recipe) == {}
    assert load_recipe(emoji_recipe(output={"dir": "${AUTOMM_TEST_MODELS}/r1"})).content["output"]["dir"] == \
        "/srv/models/r1"
