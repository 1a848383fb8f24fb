"""Long texts (read to max_length only, said when most are cut), phrases read as categories, whole
numbers written as strings read as text."""

import random
import warnings

import numpy as np
import pandas as pd
import pytest

from automm import AutoMM
from automm import roles
from automm.components import text as text_encoders
from automm.components.text import HashedNgramEncoder, _tokens_for, tokenize


def test_tokenize_with_a_limit_is_the_prefix_of_the_whole():
    rng = random.Random(1)
    alphabet = list("ab c.,!  ") + ["東", "京", "\u0e01", "\u0e34", "\u0e48", "😀", "\u200d", "\ufe0f", "\u0301", "é"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        whole = tokenize(text)
        for limit in range(8):
            assert tokenize(text, limit) == whole[:limit]


def _long_texts(n=200, seed=0):
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(500)]
    labels = [rng.choice(["pos", "neg"]) for _ in range(n)]
    texts = []
    for label in labels:
        words = [rng.choice(vocab) for _ in range(120)]
        words[80:85] = ["excellent" if label == "pos" else "terrible"] * 5  # the signal: past the first 32 tokens
        texts.append(" ".join(words))
    return texts, labels


def test_fit_says_when_most_texts_are_cut_at_max_length():
    texts, labels = _long_texts()
    with pytest.warns(UserWarning, match=r"column 'x0': 100% of the training texts are longer than "
                                         r"hashed_ngram's max_length=32 tokens.*'max_length': 256"):
        AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(texts, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # texts that fit: no word
        AutoMM(max_epochs=1, random_state=0, num_workers=0).fit([t[:60] for t in texts], labels)


@pytest.mark.parametrize("encoder", ["gru", "hashed_ngram"])
def test_the_warning_of_cut_texts_says_what_a_token_of_an_unspaced_script_is(encoder):
    """It said a token was "a word or a punctuation mark": a Thai or Chinese user read max_length=32 as
    32 words, where gru reads a Thai title of 6 words as some 30 letters (a quarter of the fashion
    titles so written were cut); hashed_ngram reads a run of Thai letters as one word, gru its pieces."""
    texts = ["男士纯棉短袖T恤衫夏季新款" * 3, "女士真丝连衣裙" * 5] * 10
    with pytest.warns(UserWarning, match=r"max_length=8 tokens \(a word" + (r" \(in Thai, a piece learned in fit\)"
                                                                           if encoder == "gru" else "")
                      + r", a punctuation mark, or a Chinese or Japanese character each\)"):
        AutoMM(max_epochs=1, random_state=0, num_workers=0,
               encoders={"text": {"name": encoder, "max_length": 8}}).fit(texts, ["a", "b"] * 10)


def test_a_bag_or_a_search_says_texts_are_cut_once_per_fit():
    # each fold and trial builds the encoder again; its cut share differs from fold to fold (so
    # Python's once-per-line filter showed it once per fold: three times in a notebook cell)
    texts, labels = _long_texts(90)
    texts = [t if i % 3 else t[:40] for i, t in enumerate(texts)]
    for settings in ({"bag_folds": 3}, {"n_trials": 2, "encoders": {"text": "hashed_ngram"},
                                        "search_space": {"warm_start": False}}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            AutoMM(max_epochs=1, random_state=0, num_workers=0, **settings).fit(texts, labels)
        said = [w for w in caught if "of the training texts are longer" in str(w.message)]
        assert len(said) == 1, (settings, [str(w.message)[:60] for w in said])


def test_the_linear_form_reads_long_texts_whole():
    encoder = HashedNgramEncoder(**{**HashedNgramEncoder.linear_defaults, "linear": True, "output_dim": 2})
    assert encoder.max_length == 256


def test_words_read_as_categories_are_named():
    colours = ["red", "blue", "green", "black", "white", "navy"]
    items = ["shirt", "jeans", "skirt", "boots", "scarf"]
    titles = [f"{c} {i}" for c in colours for i in items] * 3
    with pytest.warns(UserWarning, match=r"column 'title': read as categorical \(30 distinct values made of 11 "
                                         r"distinct words.*column_types=\{'title': 'text'\}"):
        model = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(pd.DataFrame({"title": titles}),
                                                                          [t.split()[1] for t in titles])
    assert model.column_roles_ == {"title": "categorical"}


def test_words_read_as_categories_are_named_in_scripts_without_spaces():
    colours = ["黒い", "白い", "緑の", "赤い", "青い", "灰色の"]  # "black shoes" is "黒い靴": no space
    items = ["靴", "シャツ", "バッグ", "時計", "帽子"]
    titles = [c + i for c in colours for i in items] * 3
    with pytest.warns(UserWarning, match=r"column 'title': read as categorical \(30 distinct values made of 20 "
                                         r"distinct words.*column_types=\{'title': 'text'\}"):
        model = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(pd.DataFrame({"title": titles}),
                                                                          [t[-1] for t in titles])
    assert model.column_roles_ == {"title": "categorical"}


def test_role_inference_does_not_read_long_texts_through(monkeypatch):
    def word_count(text):
        raise AssertionError("long texts tokenized to count their words")

    monkeypatch.setattr(roles, "_word_count", word_count)
    assert roles.text_or_categorical(["Größe " * 4000] * 30) == "text"  # 24,000 characters each


def test_text_augmentations_read_a_long_texts_head_only():
    given = []

    def keep(tokens):
        given.append(len(tokens))
        return tokens

    text = " ".join(f"w{i}" for i in range(10_000))
    head = getattr(text_encoders, "AUGMENTED_LENGTH", 4) * 8
    assert _tokens_for(text, keep, 8) == tokenize(text)[:8]
    assert given == [head]
    given.clear()
    assert _tokens_for("a short text", keep, 8) == ["a", "short", "text"] and given == [3]  # whole, as before
    given.clear()
    # an augmentation leaving fewer than max_length of the head's tokens is given the whole text
    assert _tokens_for(text, lambda tokens: keep(tokens)[::100], 8) == tokenize(text)[::100][:8]
    assert given == [head, 10_000]


def test_numbers_written_as_strings_read_as_text_are_named():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"price": rng.integers(100, 5000, 60)}).astype(str)  # whole numbers: maybe codes
    with pytest.warns(UserWarning, match=r"column 'price': every value is a number written as a string"):
        model = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(frame, ["a", "b"] * 30)
    assert model.column_roles_ == {"price": "text"}
    with_cents = frame.assign(price=rng.uniform(1, 500, 60).round(2).astype(str))  # amounts: numbers
    assert AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(with_cents, ["a", "b"] * 30).column_roles_ == \
        {"price": "numeric"}


def test_an_encoders_findings_in_fit_are_said_once_per_fit_naming_its_column(fresh_registry):
    """A pretrained encoder cut its texts at max_length word pieces without a word, and said that
    most word pieces were unknown to its vocabulary once per fold (6 times in one fit), as a plain
    UserWarning: it leaves ``truncated_share_`` (with ``token_unit``) and ``fit_warnings_`` for
    the core, which says each once per fit, naming the column."""
    from automm import AutoMMWarning, hookimpl

    class Pieces(HashedNgramEncoder):
        token_unit = "word pieces"
        fits = 0

        def fit(self, values):
            super().fit(values)
            type(self).fits += 1
            self.fit_warnings_ = [f"{40 + type(self).fits}% of the word pieces are unknown"]
            return self

    class Plugin:
        @hookimpl
        def automm_register_encoders(self, register):
            register("pieces", Pieces, modality="text", output_dim=lambda hp: hp.get("output_dim", 128))

    fresh_registry(Plugin())
    texts, labels = _long_texts(90)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AutoMM(encoders={"text": "pieces"}, bag_folds=3, max_epochs=1, random_state=0,
               num_workers=0).fit({"body": texts}, labels)
    said = [(w.category, str(w.message)) for w in caught if "word pieces" in str(w.message)]
    assert Pieces.fits >= 3 and [s[0] for s in said] == [AutoMMWarning] * 2, said
    assert said[0][1].startswith("column 'body': 100% of the training texts are longer than pieces's max_length=32 "
                                 "tokens (word pieces); only their first 32 are read")
    assert said[1][1] == "column 'body': 41% of the word pieces are unknown"


def test_a_finding_whose_example_differs_from_fold_to_fold_is_said_once():
    """minilm names a word of the training texts it cannot read, which differs from one fold's (or
    trial's) rows to another's: each fold said it again (twice in one fit of 800 titles, '休' and '恤')."""
    from types import SimpleNamespace

    from automm.data import InputSpec
    from automm.pipeline import _warn_fit_findings

    spec, warned = InputSpec("text_0", "text", ["title"]), set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for share, word in [(98, "'休'"), (97, "'恤'"), (98, '"ז\'קט"')]:
            finding = f"{share}% of the training texts hold words it cannot read (e.g. {word}, [UNK])"
            _warn_fit_findings(spec, SimpleNamespace(fit_warnings_=[finding]), warned)
        _warn_fit_findings(spec, SimpleNamespace(fit_warnings_=["another finding (e.g. 'x')"]), warned)
    assert [str(w.message) for w in caught] == [
        "column 'title': 98% of the training texts hold words it cannot read (e.g. '休', [UNK])",
        "column 'title': another finding (e.g. 'x')"]


@pytest.mark.parametrize("length, limit, says", [
    (32, None, "'max_length': 256}"), (256, None, "'max_length': 512}"), (128, 512, "'max_length': 256}"),
    (400, 512, "'max_length': 512}"), (512, 512, "minilm reads at most 512: to read more, another text encoder"),
])
def test_the_cut_texts_warning_suggests_a_length_longer_than_the_one_read(length, limit, says):
    """"To read more: ... 'max_length': 256" was said to an encoder already reading 256 (or
    minilm's 512, the longest it can)."""
    from types import SimpleNamespace

    from automm import AutoMMWarning
    from automm.data import InputSpec
    from automm.pipeline import _warn_truncated

    encoder = SimpleNamespace(truncated_share_=0.5, max_length=length)
    if limit is not None:
        encoder.max_length_limit = limit
    with pytest.warns(AutoMMWarning, match=f"only their first {length} are read. ") as caught:
        _warn_truncated(InputSpec("text_0", "text", ["title"]), encoder, "minilm")
    assert says in str(caught[0].message)
