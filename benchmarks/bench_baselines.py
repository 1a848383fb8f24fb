"""automm against the obvious scikit-learn model, task by task, beyond the three main tasks.

Each task is one kind of input a user brings: image + title where the title nearly gives the
answer (fashion baseColour), images alone (baseColour, the digits' pixel arrays), a text alone
(emoji names), table columns alone (fashion attributes), many small classes (emoji
subcategory). For each it prints the test accuracy of ``AutoMM(time_limit=T)`` (with whatever
plugins are installed) and of a plain scikit-learn model suited to the input (TF-IDF + logistic
regression for texts, a colour histogram or raw pixels + logistic regression for images,
gradient boosting for table columns), and their difference. The fixed ``split`` columns; the
digits: scikit-learn's ``load_digits`` split 70/30 with seed 0.

Takes about 6 x ``--time-limit`` and a minute or two more for the baselines (the colour histograms of
9,000 photos): about 8 minutes at the default 60 s; ``--task digits`` (a part of one task's name) runs one.

    PYTHONPATH=.:plugins/automm-pretrained python benchmarks/bench_baselines.py --time-limit 60
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from common import data_dir, describe_setup, load_task, task_parser


def _tfidf_lr(train_text, train_y, test_text, test_y, analyzer="word"):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    grams = (1, 2) if analyzer == "word" else (2, 4)
    model = make_pipeline(TfidfVectorizer(analyzer=analyzer, ngram_range=grams, sublinear_tf=True),
                          LogisticRegression(C=10, max_iter=3000))
    return model.fit(train_text, train_y).score(test_text, test_y)


def _colour_histograms(paths) -> np.ndarray:
    """The square root of each photo's 8 x 8 x 8 RGB histogram (64 x 64 pixels)."""
    from PIL import Image

    rows = []
    for path in paths:
        pixels = np.asarray(Image.open(path).convert("RGB").resize((64, 64))) // 32
        index = pixels[..., 0] * 64 + pixels[..., 1] * 8 + pixels[..., 2]
        counts = np.bincount(index.ravel(), minlength=512).astype(float)
        rows.append(np.sqrt(counts / counts.sum()))
    return np.array(rows)


def _scaled_lr(train_x, train_y, test_x, test_y, C=0.1):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))
    return model.fit(train_x, train_y).score(test_x, test_y)


def _emoji():
    folder = data_dir() / "emoji"
    frame = pd.read_csv(folder / "emoji.csv")
    frame["image"] = [str(folder / p) for p in frame["image"]]
    return frame[frame.split == "train"].reset_index(drop=True), frame[frame.split == "test"].reset_index(drop=True)


def tasks():
    """(name, baseline's name, inputs(frame) -> AutoMM's X, train, test, label, baseline())."""
    colour_train, colour_test, image, title, colour = load_task("fashion-basecolour")
    yield ("fashion baseColour, image + title", "TF-IDF + LR on the title",
           lambda f: f[[image, title]], colour_train, colour_test, colour,
           lambda: _tfidf_lr(colour_train[title], colour_train[colour], colour_test[title], colour_test[colour]))
    yield ("fashion baseColour, image only", "colour histogram + LR",
           lambda f: f[[image]], colour_train, colour_test, colour,
           lambda: _scaled_lr(_colour_histograms(colour_train[image]), colour_train[colour],
                              _colour_histograms(colour_test[image]), colour_test[colour]))
    emoji_train, emoji_test = _emoji()
    yield ("emoji category, name only", "character TF-IDF + LR",
           lambda f: f[["name"]], emoji_train, emoji_test, "category",
           lambda: _tfidf_lr(emoji_train["name"], emoji_train["category"], emoji_test["name"], emoji_test["category"],
                             analyzer="char_wb"))
    yield ("emoji subcategory (97 classes), picture + name", "character TF-IDF + LR on the name",
           lambda f: f[["image", "name"]], emoji_train, emoji_test, "subcategory",
           lambda: _tfidf_lr(emoji_train["name"], emoji_train["subcategory"], emoji_test["name"],
                             emoji_test["subcategory"], analyzer="char_wb"))
    sub_train, sub_test, _, _, sub = load_task("fashion-subcategory")
    attributes = ["gender", "baseColour", "season", "usage"]

    def boosting():
        from sklearn.ensemble import HistGradientBoostingClassifier

        def categories(frame):
            return pd.DataFrame({c: pd.Categorical(frame[c], categories=sorted(sub_train[c].dropna().unique()))
                                 for c in attributes})
        model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
        return model.fit(categories(sub_train), sub_train[sub]).score(categories(sub_test), sub_test[sub])
    yield ("fashion subCategory, 4 attribute columns only", "gradient boosting (HistGradientBoosting)",
           lambda f: f[attributes], sub_train, sub_test, sub, boosting)

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.images / 16.0, digits.target, test_size=0.3,
                                                        random_state=0)
    train = {"x": x_train, "y": y_train}
    test = {"x": x_test, "y": y_test}
    yield ("scikit-learn digits, 8 x 8 pixel arrays", "LR on the pixels",
           lambda f: f["x"], train, test, "y",
           lambda: _scaled_lr(x_train.reshape(len(x_train), -1), y_train, x_test.reshape(len(x_test), -1), y_test,
                              C=1.0))


def main() -> None:
    parser = task_parser(__doc__, task="all", time_limit=60.0)  # --task: "all" or a part of a task's name
    args = parser.parse_args()
    print(describe_setup(args), flush=True)
    from automm import AutoMM

    warnings.simplefilter("ignore")
    rows = []
    for name, baseline_name, inputs, train, test, label, baseline in tasks():
        if args.task != "all" and args.task.lower() not in name.lower():
            continue
        start = time.monotonic()
        model = AutoMM(time_limit=args.time_limit, random_state=args.seed).fit(inputs(train), train[label])
        seconds = time.monotonic() - start
        ours = model.score(inputs(test), test[label])
        theirs = baseline()
        kept = model.fit_summary()["components"]
        rows.append((name, ours, baseline_name, theirs))
        print(f"{name}: automm {ours:.4f} ({seconds:.0f} s; {kept['encoders']}, {kept['fusion']}) | "
              f"{baseline_name} {theirs:.4f} | difference {ours - theirs:+.4f}", flush=True)
    print("\n| task | automm | baseline | baseline's accuracy | difference |\n|---|---|---|---|---|")
    for name, ours, baseline_name, theirs in rows:
        print(f"| {name} | {ours:.4f} | {baseline_name} | {theirs:.4f} | {ours - theirs:+.4f} |")


if __name__ == "__main__":
    main()
