"""The README's Python code runs as written (a newcomer pastes it): the quickstart, the
scikit-learn example, and the plugin author's guide from encoder to conformance check."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import automm

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks(after: str, until: str) -> list[str]:
    """The ```python blocks of the README between headings ``after`` and ``until``."""
    text = README.read_text(encoding="utf-8")
    section = text.split(after, 1)[1].split(until, 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_python_quickstart_runs(tmp_path, monkeypatch, capsys):
    quickstart, cross_validation = _python_blocks("## Python quickstart", "### Main parameters")[:2]
    monkeypatch.chdir(tmp_path)  # it saves "emoji_model" in the current folder
    # as written, but fewer epochs (the test checks that the code works, not how well it learns)
    quickstart = quickstart.replace("max_epochs=10", "max_epochs=2")
    assert "max_epochs=2" in quickstart
    namespace: dict = {}
    exec(compile(quickstart, "README quickstart", "exec"), namespace)
    printed = capsys.readouterr().out
    assert re.search(r"accuracy: 0\.\d+", printed)
    assert (tmp_path / "emoji_model" / "automm.json").is_file()
    assert list(namespace["same"].classes_) == list(namespace["clf"].classes_)
    exec(compile(cross_validation, "README cross-validation", "exec"), namespace)
    assert namespace["scores"].shape == (3,)


def test_the_plugin_authors_guide_runs(fresh_registry, tmp_path, monkeypatch):
    encoder_code, fusion_code, conformance_code = _python_blocks("## Plugin author's guide",
                                                                 "## Data used by tests")[:3]
    path = tmp_path / "automm_shout.py"  # the guide's file, imported as an installed module would be
    path.write_text(encoder_code + "\n\n" + fusion_code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("automm_shout", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "automm_shout", module)  # (removed again after the test)
    spec.loader.exec_module(module)
    fresh_registry(module)
    assert "shout" in automm.list_encoders()
    namespace: dict = {}
    exec(compile(conformance_code, "README conformance", "exec"), namespace)
    namespace["test_shout_conforms"]()
    clf = automm.AutoMM(encoders={"text": "shout"}, max_epochs=1, num_workers=0, random_state=0)
    texts = [f"HEY THERE FRIEND {i}!!" if i % 2 else f"hello there friend {i}" for i in range(20)]
    clf.fit(texts, ["loud" if i % 2 else "quiet" for i in range(20)])
    assert [choice["name"] for choice in clf.config_["encoders"].values()] == ["shout"]
    # the fusion and the augmentation of the same module
    from automm.testing import check_augmentation, check_fusion

    assert check_fusion("mean").output_dim == 32
    check_augmentation("darken")
    clf = automm.AutoMM(encoders={"text": "shout"}, fusion="mean", max_epochs=1, num_workers=0, random_state=0)
    clf.fit(texts, ["loud" if i % 2 else "quiet" for i in range(20)])
    assert clf.config_["fusion"]["name"] == "mean"


def test_the_frozen_encoder_sketch_caches_its_features_and_joins_a_search(fresh_registry, tmp_path, monkeypatch,
                                                                          emoji_split):
    from automm.feature_cache import cache_usage
    from automm.testing import check_encoder

    code = _python_blocks("### A frozen pretrained encoder", "## Data used by tests")[0]
    path = tmp_path / "automm_colours.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("automm_colours", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "automm_colours", module)
    spec.loader.exec_module(module)
    fresh_registry(module)
    train, test = emoji_split
    check_encoder("colours", train["image"].tolist()[:4])
    cache = tmp_path / "cache"
    clf = automm.AutoMM(encoders={"image": "colours", "text": "hashed_ngram"}, max_epochs=2, num_workers=0,
                        random_state=0, cache_dir=str(cache))
    clf.fit(train[["image", "name"]], train["category"])
    (usage,) = cache_usage(cache)
    assert usage.namespace == "colours-v1" and usage.files == distinct_pictures(train)  # by content, not path
    encoder = clf.model_.encoders["image_0"]
    assert encoder.pending_share(train["image"].tolist(), cache_dir=str(cache)) == 0.0
    assert encoder.pending_share(test["image"].tolist(), cache_dir=str(cache)) > 0.0  # not prepared yet
    clf.predict(test[["image", "name"]])
    assert cache_usage(cache)[0].files == distinct_pictures(train, test)


def distinct_pictures(*frames) -> int:
    from automm.feature_cache import content_digest

    return len({content_digest(path, paths=True) for frame in frames for path in frame["image"]})


def test_the_search_example_runs_as_written(tmp_path, monkeypatch):
    (block,) = _python_blocks("## Searching: `AutoMM` as AutoML", "## What to expect")[:1]
    monkeypatch.chdir(tmp_path)
    # as written, on fewer rows and one-epoch trials (the test checks that the code works)
    small = block.replace("frame = load_emoji_sample()", "frame = load_emoji_sample().head(60)")
    small = small.replace("time_limit=60, random_state=0)\nclf.fit", "n_trials=2, max_epochs=1, random_state=0)\nclf.fit")
    assert small.count("head(60)") == 1 and "n_trials=2, max_epochs=1" in small
    namespace: dict = {}
    exec(compile(small, "README search", "exec"), namespace)
    leaderboard = namespace["clf"].leaderboard_
    assert len(leaderboard) >= 2 and set(leaderboard["state"]) <= {"COMPLETE", "PRUNED", "FAIL"}


def test_the_parameter_table_names_every_parameter_with_its_default():
    """The README's "Main parameters" table had no row for weight_decay, label_smoothing,
    head_dropout, class_weight, column_types, cache_dir, study_name nor plot_dir: a reader
    could not learn they exist, nor their defaults. Each parameter is named in a row, and a
    row's defaults, when it gives them, are get_params()'s, in order."""
    import ast

    section = README.read_text(encoding="utf-8").split("### Main parameters", 1)[1].split("\n\n", 2)[1]
    defaults = automm.AutoMM().get_params()
    named = {}
    for row in section.splitlines()[2:]:
        names_cell, default_cell = row.split("|")[1:3]
        names = re.findall(r"`(\w+)`", names_cell)
        values = [ast.literal_eval(v.strip().strip("`")) for v in default_cell.split(", ")] if default_cell.strip() else []
        assert not values or len(values) == len(names), row
        named.update(zip(names, values or [defaults.get(name) for name in names]))
    assert sorted(named) == sorted(defaults)
    assert named == defaults


def test_the_recipe_key_table_names_every_key_the_recipe_checks_accept():
    """The README named recipe keys only in passing (data.weight_column, data.valid, ...): a newcomer
    writing a recipe could not learn that data.max_rows, data.min_class_rows, data.format or
    output.verbose exist, nor where training and search settings go. Its table names each section's
    keys, as automm/recipe_checks.py accepts them, and no other."""
    from automm.recipe_checks import SCALAR_TOP_KEYS, SECTION_KEYS

    text = README.read_text(encoding="utf-8").split("A recipe's keys,", 1)[1]
    table = text.split("\n\n", 2)[1]
    named = {}
    for row in table.splitlines()[2:]:
        section_cell, keys_cell = row.split("|")[1:3]
        while re.search(r"\([^()]*\)", keys_cell):  # (what a parenthesis names is no key: `random_state`, `csv`)
            keys_cell = re.sub(r"\([^()]*\)", "", keys_cell)
        section = section_cell.strip().strip("`")
        named[section] = re.findall(r"`(\w+)`", keys_cell)
    assert named.pop("(top)") == list(SCALAR_TOP_KEYS)
    assert {section: sorted(keys) for section, keys in named.items()} == {
        section: sorted(keys) for section, keys in SECTION_KEYS.items()}
