"""The README's and the docs' Python code runs as written (a newcomer pastes it): the quickstart,
the scikit-learn and search examples, the plugin author's guide from encoder to conformance check,
and the examples and tables of docs/; their links lead somewhere, and the README stays short."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import automm

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
ESTIMATOR_DOC = DOCS / "estimator.md"
CLI_DOC = DOCS / "cli-and-recipes.md"


def _section(after: str, until: str = "\0", page: Path = README) -> str:
    """The text of ``page`` (the README or a docs page) between headings ``after`` and ``until``."""
    text = page.read_text(encoding="utf-8")
    assert after in text, f"{page.name} has no {after!r}"
    return text.split(after, 1)[1].split(until, 1)[0]


def _python_blocks(after: str, until: str, page: Path = README) -> list[str]:
    """The ```python blocks of ``page`` between headings ``after`` and ``until``."""
    return re.findall(r"```python\n(.*?)```", _section(after, until, page), re.S)


def test_the_python_quickstart_runs(tmp_path, monkeypatch, capsys):
    (quickstart,) = _python_blocks("## Python quickstart", "## scikit-learn")
    (cross_validation,) = _python_blocks("## scikit-learn", "## Searching")
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
    (block,) = _python_blocks("## Searching", "## Recipes and the command line")
    monkeypatch.chdir(tmp_path)
    # as written, on fewer rows and one-epoch trials (the test checks that the code works)
    small = block.replace("frame = load_emoji_sample()", "frame = load_emoji_sample().head(60)")
    small = small.replace("time_limit=60, random_state=0)\nclf.fit", "n_trials=2, max_epochs=1, random_state=0)\nclf.fit")
    assert small.count("head(60)") == 1 and "n_trials=2, max_epochs=1" in small
    namespace: dict = {}
    exec(compile(small, "README search", "exec"), namespace)
    leaderboard = namespace["clf"].leaderboard_
    assert len(leaderboard) >= 2 and set(leaderboard["state"]) <= {"COMPLETE", "PRUNED", "FAIL"}


def test_the_callbacks_example_runs_as_written():
    (block,) = _python_blocks("## Callbacks and the history", "## CPUs, threads and memory", ESTIMATOR_DOC)
    # as written, on fewer rows and epochs (the test checks that the code works)
    small = block.replace("frame = load_emoji_sample()", "frame = load_emoji_sample().head(60)")
    small = small.replace("max_epochs=10", "max_epochs=2")
    assert small.count("head(60)") == 1 and "max_epochs=2" in small
    namespace: dict = {}
    exec(compile(small, "docs/estimator.md callbacks", "exec"), namespace)
    clf, rows = namespace["clf"], namespace["log"].rows
    assert [(r["epoch"], r["lr"], r["train_loss"]) for r in clf.history_] == rows
    import pandas as pd

    assert list(pd.DataFrame(clf.history_)["epoch"]) == list(range(1, len(rows) + 1))


def test_the_which_column_mattered_example_runs_as_written(capsys):
    """An analyst asking which input mattered pastes it: each repeat's score is the model's own
    accuracy on the test rows with that column shuffled, and the report names every class."""
    (block,) = _python_blocks("### Which column mattered", "## Several columns of one modality", ESTIMATOR_DOC)
    # as written, but two epochs instead of a 20 s search (the test checks that the code works)
    assert block.count("time_limit=20") == 1
    namespace: dict = {}
    exec(compile(block.replace("time_limit=20", "max_epochs=2"), "docs/estimator.md which column", "exec"), namespace)
    clf, result, test, columns = (namespace[name] for name in ("clf", "result", "test", "columns"))
    assert result.importances.shape == (len(columns), 3)
    right_when_shuffled = (clf.score(test[columns], test["category"]) - result.importances) * len(test)
    assert np.allclose(right_when_shuffled, np.round(right_when_shuffled))
    assert ((right_when_shuffled >= 0) & (right_when_shuffled <= len(test))).all()
    printed = capsys.readouterr().out
    assert all(column in printed for column in columns) and all(label in printed for label in clf.classes_)


def test_the_parameter_table_names_every_parameter_with_its_default():
    """The "Parameters" table (README's, now docs/estimator.md's) had no row for weight_decay, label_smoothing,
    head_dropout, class_weight, column_types, cache_dir, study_name nor plot_dir: a reader
    could not learn they exist, nor their defaults. Each parameter is named in a row, and a
    row's defaults, when it gives them, are get_params()'s, in order."""
    import ast

    section = _section("## Parameters", page=ESTIMATOR_DOC).split("\n\n", 2)[1]
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
    output.verbose exist, nor where training and search settings go. The table (now in
    docs/cli-and-recipes.md) names each section's keys, as automm/recipe_checks.py accepts them, and
    no other."""
    from automm.recipe_checks import SCALAR_TOP_KEYS, SECTION_KEYS

    text = _section("A recipe's keys,", page=CLI_DOC)
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


def test_the_coming_from_autogluon_table_runs_and_each_autogluon_name_gets_a_hint(tmp_path, capsys):
    """The "Coming from AutoGluon" table: every automm code of its rows runs (an estimator it
    builds is fitted, as a tiny model, so that its parameters are checked), and every AutoGluon
    keyword, method or attribute of its rows is automm's too or, given to automm, raises an error
    that says what to use instead."""
    import ast

    import pandas as pd

    from automm.evaluation import compute_metrics, positive_class
    from automm.migrating import FOREIGN_KEYWORDS

    section = _section("## Coming from AutoGluon", "\n## ", ESTIMATOR_DOC)
    rows = [row.split("|")[1:3] for row in section.splitlines() if row.startswith("| `")]
    assert len(rows) >= 15

    tiny = dict(encoders={"text": {"name": "hashed_ngram", "n_buckets": 4096, "emb_dim": 32, "output_dim": 32}},
                fusion={"name": "concat", "proj_dim": 32, "hidden_dim": 32}, max_epochs=1, num_workers=0,
                random_state=0)

    class AutoMM:  # the README's AutoMM, tiny and quick
        load = staticmethod(automm.AutoMM.load)

        def __new__(cls, **params):
            return automm.AutoMM(**{**tiny, **params})

    kinds = ["navy blue cotton shirt", "black leather running shoes", "silver analog steel watch"]
    frame = pd.DataFrame({"title": [f"{kinds[i % 3]} model {i}" for i in range(48)],
                          "label": ["shirt", "shoes", "watch"] * 16})
    train_df, val_df, test_df = frame[:30], frame[30:39], frame[39:]
    X, y = test_df.drop(columns=["label"]), test_df["label"]
    model = AutoMM(n_trials=2).fit(train_df.drop(columns=["label"]), train_df["label"])
    base = dict(AutoMM=AutoMM, pd=pd, model=model, train_df=train_df, val_df=val_df, test_df=test_df, X=X, y=y,
                path=str(tmp_path / "model"), compute_metrics=compute_metrics, positive_class=positive_class)
    ran = 0
    for autogluon, ours in rows:
        namespace = dict(base)
        for code in re.findall(r"`([^`]+)`", ours):
            try:
                tree = ast.parse(code)
            except SyntaxError:  # a fragment: search_space=
                continue
            if isinstance(tree.body[-1], ast.Expr) and isinstance(tree.body[-1].value, (ast.Name, ast.Constant)):
                continue  # a name or a value: balanced_accuracy, "auto"
            *statements, last = tree.body
            exec(compile(ast.Module(statements, []), "README", "exec"), namespace)
            if isinstance(last, ast.Expr):
                result = eval(compile(ast.Expression(last.value), "README", "eval"), namespace)
            else:
                exec(compile(ast.Module([last], []), "README", "exec"), namespace)
                result = None
            if isinstance(result, automm.AutoMM) and "model_" not in vars(result):  # built: fit it, briefly
                result.set_params(time_limit=None, n_trials=2 if result.n_trials else None)
                result.fit(train_df.drop(columns=["label"]), train_df["label"])
            ran += 1
        for code in re.findall(r"`([^`]+)`", autogluon):
            for keyword in re.findall(r"(\w+)=", code):
                if keyword in automm.AutoMM._get_param_names():
                    continue
                method = next((m for m in ("", "fit", "predict", "predict_proba", "transform", "score")
                               if keyword in FOREIGN_KEYWORDS.get(m, {})), None)
                assert method is not None, f"AutoGluon's {keyword}= has no hint"
                call = (lambda: automm.AutoMM(**{keyword: None})) if method == "" else (
                    lambda: getattr(automm.AutoMM(), method)(X, **{keyword: None}))
                with pytest.raises(TypeError, match=rf"unexpected keyword argument '{keyword}'; "):
                    call()
            names = re.findall(r"(\w+)\(", code) + ([code] if re.fullmatch(r"\w+", code) else [])
            for name in (n for n in names if n != "MultiModalPredictor"):
                if not hasattr(model, name):
                    with pytest.raises(AttributeError, match=rf"no attribute '{name}'; "):
                        getattr(model, name)
    assert ran >= 20
    capsys.readouterr()


def test_the_several_targets_example_runs_as_written(capsys):
    """A user with several targets, or tags, per row pastes it."""
    (code,) = _python_blocks("## Several targets, or tags per row", "## Callbacks and the history", ESTIMATOR_DOC)
    # as written, but a few epochs instead of a 30 s search per target (the test checks that the code works)
    assert code.count("AutoMMClassifier(time_limit=30)") == 2
    code = code.replace("AutoMMClassifier(time_limit=30)", "AutoMMClassifier(max_epochs=1, random_state=0)")
    namespace: dict = {}
    exec(compile(code, "docs/estimator.md several targets", "exec"), namespace)
    model, tagger, test = namespace["model"], namespace["tagger"], namespace["test"]
    assert model.predict(test[["image"]]).shape == (len(test), 2)
    assert [p.shape[1] for p in namespace["proba"]] == [9, 2]
    assert list(namespace["binarizer"].classes_) == ["face", "flag", "man", "woman"]
    assert len(tagger.estimators_) == 4
    printed = capsys.readouterr().out
    assert printed.count("[") >= 2


def test_the_readme_recipe_is_valid():
    """The README shows one recipe: a newcomer who copies it gets a recipe ``automm validate``
    accepts, its data (the embedded sample) included."""
    from automm.recipes import load_yaml, validate_recipe

    (recipe,) = re.findall(r"```yaml\n(.*?)```", _section("## Recipes and the command line", "\n## "), re.S)
    assert validate_recipe(load_yaml(recipe)) == []


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces as ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_of_the_readme_and_the_docs_leads_somewhere():
    """The README's reference material moved into docs/ pages that link to each other and back: a
    link to a page that is not there, or to a heading that a page does not have, would leave the
    reader at the top of a long page or nowhere."""
    pages = [README, *sorted(DOCS.glob("*.md"))]
    anchors = {page.resolve(): {_slug(h) for h in re.findall(r"^#+ (.*)$", re.sub(r"```.*?```", "", page.read_text(
        encoding="utf-8"), flags=re.S), re.M)} for page in pages}
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # a URL
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page.resolve()
            if not linked.exists() or (anchor and anchor not in anchors.get(linked, set())):
                broken.append(f"{page.name}: {target}")
    assert broken == []
    assert {page.name for page in DOCS.glob("*.md")} <= set(re.findall(r"\(docs/([\w-]+\.md)\)", README.read_text(
        encoding="utf-8")))  # the README's "Documentation" list names every page


def test_the_readme_is_a_page_a_newcomer_reads():
    """The README had grown to 1,350 lines, a paragraph of up to 40 lines (save atomicity, digests,
    trust) between the quickstart and its parameters. It holds what the project's rules name, in
    this order, and its prose comes in short paragraphs (a list item counts alone); the reference
    is in docs/."""
    text = README.read_text(encoding="utf-8")
    assert re.findall(r"^## (.*)$", text, re.M) == [
        "Install", "The two commands", "Python quickstart", "scikit-learn", "Searching",
        "Recipes and the command line", "Plugin author's guide", "Data used by tests and benchmarks", "Layout",
        "Documentation"]
    assert len(text.splitlines()) <= 500
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    paragraphs = [item for block in prose.split("\n\n") for item in re.split(r"\n(?=- )", block.strip())]
    assert max(len(paragraph.splitlines()) for paragraph in paragraphs) <= 8
