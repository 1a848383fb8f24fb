"""Several inputs of one modality: how encoders= keys choose, and the neighbors fusion's build."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from automm import AutoMM
from automm.data import InputSpec, choice_key
from automm.exceptions import InputError


def _specs():
    return [InputSpec("image_0", "image", ["photo"], {"photo": "image"}),
            InputSpec("image_1", "image", ["image_0"], {"image_0": "image"}),
            InputSpec("text_0", "text", ["image"], {"image": "text"}),
            InputSpec("tabular", "tabular", ["a", "b"], {"a": "numeric", "b": "numeric"})]


def test_a_column_name_wins_over_an_input_name_and_a_modality_of_another_kind():
    specs = _specs()
    keys = {"image_0": "resnet"}
    assert [choice_key(s, keys, specs) for s in specs] == [None, "image_0", None, None]
    keys = {"image": "gru"}  # the text column named "image", not the image inputs
    assert [choice_key(s, keys, specs) for s in specs] == [None, None, "image", None]
    keys = {"text_0": "gru", "tabular": "tabular"}  # input names that are no column
    assert [choice_key(s, keys, specs) for s in specs] == [None, None, "text_0", "tabular"]


def _frame(n=24):
    rng = np.random.default_rng(0)
    return {"t1": [f"word{i % 3} thing number {i}" for i in range(n)], "t2": [f"other{i % 4} kind of {i}" for i in range(n)],
            "a": rng.normal(size=n), "b": rng.normal(size=n)}, [f"c{i % 3}" for i in range(n)]


def test_encoders_may_name_an_input_as_config_names_it():
    X, y = _frame()
    model = AutoMM(max_epochs=1, random_state=0, column_types={"t1": "text", "t2": "text"},
                   encoders={"text_1": "gru"}).fit(X, y)
    assert model.config_["encoders"]["text_1"]["name"] == "gru"
    assert model.config_["encoders"]["text_0"]["name"] == "hashed_ngram"


def test_table_columns_naming_different_encoders_are_refused():
    X, y = _frame()
    with pytest.raises(InputError, match="share one 'tabular' input"):
        AutoMM(max_epochs=1, encoders={"a": {"name": "tabular", "emb_dim": 8},
                                       "b": {"name": "tabular", "emb_dim": 4}}).fit(X, y)


def test_a_neighbors_fusion_on_untrained_encoders_warns_and_repeats_with_its_seed():
    X, y = _frame()
    outputs = []
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = AutoMM(fusion="neighbors", random_state=0).fit(X, y)
        assert any("trains no encoder" in str(w.message) for w in caught)
        outputs.append(model.predict_proba(X))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_an_input_named_twice_with_different_encoders_is_refused():
    X, y = _frame()
    with pytest.raises(InputError, match="name the same input"):
        AutoMM(max_epochs=1, column_types={"t1": "text", "t2": "text"},
               encoders={"t2": "gru", "text_1": "hashed_ngram"}).fit(X, y)


def test_an_image_column_that_copies_another_is_named_as_a_copy_and_paths_are_no_identifiers(emoji_split):
    """A back-photo column filled with the front photos is a second input of the same values, as a
    copied text column is: fit says so. Distinct photos (each row its own file) are no identifier,
    another photo per row (some missing) is no copy, and pixel arrays are not compared."""
    from automm.data import as_table
    from automm.estimator import _columns_that_cannot_help

    from helpers import tiny

    train = emoji_split[0].head(40)
    roles = {"front": "image", "back": "image", "name": "text"}
    frame = pd.DataFrame({"front": train["image"], "back": train["image"], "name": train["name"]})
    said = _columns_that_cannot_help(as_table([frame]), roles)
    assert len(said) == 1 and said[0].startswith("column 'back' (of 'front') holds the values of an earlier column"), said
    other = frame.assign(back=[None if i % 3 == 0 else p for i, p in enumerate(train["image"][::-1])])
    assert _columns_that_cannot_help(as_table([other]), roles) == []
    pixels = [np.zeros((4, 4, 3), np.uint8)] * 40
    assert _columns_that_cannot_help(as_table([frame.assign(front=pixels, back=pixels)]), roles) == []
    with pytest.warns(UserWarning, match=r"'back' \(of 'image'\) holds the values of an earlier column"):
        AutoMM(**tiny(max_epochs=1)).fit(train[["image", "name"]].assign(back=train["image"]), train["category"])


def test_a_search_names_each_inputs_column_in_its_progress_lines_and_keeps_its_records(capsys):
    """With two text columns, `trial 0: accuracy ... (text_0=hashed_ngram, text_1=hashed_ngram; ...)`
    left the user to guess which of their columns each input was; config_ and leaderboard_ keep
    the input names (code and saved models read them)."""
    X, y = _frame()
    model = AutoMM(n_trials=1, max_epochs=1, random_state=0, verbose=1, ensemble_size=1,
                   column_types={"t1": "text", "t2": "text"},
                   encoders={"text": {"name": "hashed_ngram", "n_buckets": 1024, "emb_dim": 8, "output_dim": 8}},
                   search_space={"warm_start": False, "linear_model": False, "neighbors_model": False}).fit(X, y)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[automm] trial 0: ")]
    assert lines and "(text_0 (t1)=hashed_ngram, text_1 (t2)=hashed_ngram, tabular=tabular; fusion=" in lines[-1], lines
    assert set(model.config_["encoders"]) == {"text_0", "text_1", "tabular"}
    assert model.leaderboard_["encoders"].iloc[0] == "text_0=hashed_ngram, text_1=hashed_ngram, tabular=tabular"


def test_the_compare_fusion_fits_saves_and_predicts_two_text_columns_alike(tmp_path):
    """fusion="compare" on two text columns: their pair compared in the model, kept by save and load."""
    X, y = _frame()
    X = {"t1": X["t1"], "t2": X["t2"]}
    model = AutoMM(fusion="compare", max_epochs=2, random_state=0, column_types={"t1": "text", "t2": "text"}).fit(X, y)
    assert model.config_["fusion"]["name"] == "compare"
    assert model.model_.fusion.pairs == [(0, 1)]
    model.save(tmp_path / "model")
    loaded = AutoMM.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=0, atol=1e-6)


def test_a_compared_pairs_from_scratch_encoders_are_one_module_fitted_on_both_columns(tmp_path):
    """Each title column had an encoder of its own, which learns its words apart from the other's:
    on fashion title pairs ("same subCategory?", fusion="compare", no search, 8 epochs) one shared
    hashed_ngram took test accuracy from 0.882 to 0.943 (seeds 0-2), one shared cnn on photo pairs
    0.794 -> 0.837. The weights are saved under each input's name, so an older automm, which
    builds an encoder per input, predicts the same."""
    from automm.persistence import WEIGHTS, read_model_files
    from safetensors.torch import load_file

    X, y = _frame()
    X = {"t1": X["t1"], "t2": X["t2"]}
    gru = {"name": "gru", "emb_dim": 8, "hidden_dim": 8, "output_dim": 8}
    model = AutoMM(fusion="compare", encoders={"text": gru}, max_epochs=2, random_state=0,
                   column_types={"t1": "text", "t2": "text"}).fit(X, y)
    assert model.config_["shared_encoders"] == [["text_0", "text_1"]]
    shared = model.model_.encoders["text_0"]
    assert model.model_.encoders["text_1"] is shared
    assert {"word0", "other0"} <= set(shared.vocab.tokens)  # fitted on both columns' words
    path = tmp_path / "model"
    loaded = AutoMM.load(model.save(path))
    assert loaded.model_.encoders["text_1"] is loaded.model_.encoders["text_0"]
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=0, atol=1e-6)
    saved = load_file(path / WEIGHTS)  # each input's copy
    assert {key.split(".")[1] for key in saved if key.startswith("encoders.")} == {"text_0", "text_1"}
    separate = {k: v for k, v in model.config_.items() if k != "shared_encoders"}  # as an older automm builds it
    apart = read_model_files(path, model.inputs_, separate, len(model.classes_))
    assert apart.encoders["text_1"] is not apart.encoders["text_0"]
    for name in ("text_0", "text_1"):
        assert apart.encoders[name].vocab.tokens == shared.vocab.tokens

    # a search's trials fused by compare share them too, and its leaderboard says so
    searched = AutoMM(encoders={"text": gru}, n_trials=1, max_epochs=1, random_state=0, ensemble_size=1,
                      column_types={"t1": "text", "t2": "text"},
                      search_space={"fusion": ["compare"], "linear_model": False, "neighbors_model": False}).fit(X, y)
    assert searched.leaderboard_["config"].iloc[0]["shared_encoders"] == [["text_0", "text_1"]]
    # concat keeps an encoder per column; other encoder choices cannot be one module
    assert "shared_encoders" not in AutoMM(encoders={"text": gru}, max_epochs=1, random_state=0,
                                           column_types={"t1": "text", "t2": "text"}).fit(X, y).config_
    other = AutoMM(fusion="compare", encoders={"t1": gru, "t2": {**gru, "hidden_dim": 4}}, max_epochs=1, random_state=0,
                   column_types={"t1": "text", "t2": "text"}).fit(X, y)
    assert "shared_encoders" not in other.config_


def test_shared_encoders_that_cannot_be_one_module_are_refused_naming_them():
    from automm.pipeline import build_model

    specs = [InputSpec("text_0", "text", ["a"], {"a": "text"}), InputSpec("text_1", "text", ["b"], {"b": "text"})]
    gru = {"name": "gru", "emb_dim": 8, "hidden_dim": 8, "output_dim": 8}
    config = {"encoders": {"text_0": gru, "text_1": gru}, "fusion": {"name": "compare"}, "augmentations": [],
              "training": {}}
    values = {"text_0": ["a b", "c d"], "text_1": ["e f", "g h"]}
    with pytest.raises(InputError, match=r"shared_encoders: each group must name two or more of the configuration's "
                                         r"inputs \(text_0, text_1\), each in one group; "
                                         r"got \[\['text_0', 'text_2'\]\]"):
        build_model(specs, {**config, "shared_encoders": [["text_0", "text_2"]]}, 2, fit_values=values)
    different = {**config, "encoders": {"text_0": gru, "text_1": {**gru, "hidden_dim": 4}},
                 "shared_encoders": [["text_0", "text_1"]]}
    with pytest.raises(InputError, match=r"the inputs \['text_0', 'text_1'\] share one encoder, so their encoder "
                                         "choices must be the same"):
        build_model(specs, different, 2, fit_values=values)
