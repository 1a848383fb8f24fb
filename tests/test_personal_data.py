"""What personal data in the training or predicted rows reaches messages: a row's whole text quoted in
a warning lands in every log that keeps it; an excerpt names the value well enough to find it."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from automm import AutoMM
from automm.suggestions import quoted_values

REVIEW = ("Jane Doe (jane.doe@example.org, +1 555 0134 9876), 12 Elm Street, Springfield: "
          "the shirt shrank after one wash")


@pytest.fixture(scope="module")
def colour_model():
    rng = np.random.default_rng(0)
    colour = rng.choice(["Red", "Blue", "Green"], 120)
    frame = pd.DataFrame({"colour": colour, "size": rng.normal(size=120)})
    labels = np.where(colour == "Red", "warm", "cool")
    return AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(frame, labels), frame


def _messages(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught]


def test_a_label_that_is_no_class_is_quoted_as_an_excerpt(colour_model):
    model, frame = colour_model
    labels = np.where(frame["colour"].head(30) == "Red", "warm", "cool").tolist()
    labels[3] = REVIEW  # (a column of reviews given as y)
    said = [m for m in _messages(lambda: model.score(frame.head(30), labels)) if "no class of the model" in m]
    assert len(said) == 1 and "jane.doe@example.org" not in said[0] and "Springfield" not in said[0]
    assert f"({len(repr(REVIEW))} characters)" in said[0] and repr(REVIEW)[:20] in said[0]


def test_categories_never_seen_are_quoted_as_excerpts(colour_model):
    model, frame = colour_model
    rows = frame.head(30).assign(colour=[f"{REVIEW} #{i}" for i in range(30)])
    said = [m for m in _messages(lambda: model.predict(rows)) if "categories never seen" in m]
    assert len(said) == 1 and "jane.doe@example.org" not in said[0] and "shrank" not in said[0]
    assert said[0].count("characters)") == 3


def test_the_categories_fit_saw_are_quoted_as_excerpts_too():
    """The warning about unseen categories cut the new values but listed the training rows' whole:
    each prediction's log held the names and e-mail addresses of the training data."""
    rng = np.random.default_rng(0)
    people = [f"{REVIEW} #{i}" for i in range(3)]
    frame = pd.DataFrame({"contact": rng.choice(people, 120), "size": rng.normal(size=120)})
    model = AutoMM(max_epochs=1, num_workers=0, random_state=0, column_types={"contact": "categorical"})
    model.fit(frame, np.where(frame["contact"] == people[0], "a", "b"))
    rows = frame.head(30).assign(contact=[f"new {i}" for i in range(30)])
    said = [m for m in _messages(lambda: model.predict(rows)) if "categories never seen" in m]
    assert len(said) == 1 and "fit saw '" in said[0] and said[0].count("characters)") == 3, said
    assert "jane.doe@example.org" not in said[0] and "Springfield" not in said[0]


def test_quoted_values_cuts_a_long_text_and_keeps_short_values_whole():
    """``automm evaluate --label`` naming a column of texts listed 8 of them whole."""
    shown = quoted_values(["Red", REVIEW, np.int64(3)])
    assert shown.startswith("'Red', '") and shown.endswith("characters), 3")
    assert "jane.doe@example.org" not in shown and len(shown) < 80


def test_a_binary_problem_refusing_its_labels_quotes_them_as_excerpts():
    """``problem_type='binary'`` with reviews given as ``y`` listed four whole reviews."""
    from automm.exceptions import InputError

    frame = pd.DataFrame({"size": np.arange(6.0)})
    with pytest.raises(InputError, match="'binary' needs two classes") as caught:
        AutoMM(problem_type="binary", max_epochs=1).fit(frame, [f"{REVIEW} #{i}" for i in range(6)])
    assert "jane.doe@example.org" not in str(caught.value) and str(caught.value).count("characters)") == 4


def test_a_recipes_note_on_unseen_test_labels_quotes_them_as_excerpts(tmp_path):
    """The note that test rows hold labels no training row has quoted them whole."""
    from automm.recipes import fit_recipe

    rng = np.random.default_rng(0)
    n = 60
    table = pd.DataFrame({"size": rng.normal(size=n), "split": ["train"] * 50 + ["test"] * 10,
                          "label": ["a", "b"] * 25 + [f"{REVIEW} #{i}" for i in range(10)]})
    table.to_csv(tmp_path / "rows.csv", index=False)
    recipe = {"data": {"path": str(tmp_path / "rows.csv"), "label": "label", "split_column": "split"},
              "training": {"max_epochs": 1}, "output": {"dir": str(tmp_path / "model")}}
    lines: list[str] = []
    fit_recipe(recipe, log=lines.append)
    said = [line for line in lines if "label no training row has" in line]
    assert len(said) == 1 and "jane.doe@example.org" not in said[0] and "characters)" in said[0], said
