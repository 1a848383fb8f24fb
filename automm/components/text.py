"""Text encoders: a language-agnostic tokenizer, a vocabulary, and three encoders.

- ``hashed_ngram`` (default): hashed word unigrams/bigrams and character n-grams fed to
  an ``EmbeddingBag``; needs no vocabulary, so it handles any language and unseen words.
- ``gru``: learned vocabulary, bidirectional GRU, masked mean pooling.
- ``transformer``: learned vocabulary, small transformer encoder trained from scratch.

Augmentations receive the list of tokens produced by :func:`tokenize`.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import unicodedata
import zlib
from array import array
from collections import Counter
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..hookspecs import hookimpl
from .base import (UNFAMILIAR_MIN_VALUES, Encoder, collate_replaced, find_sorted, is_absent, true_or_false,
                   whole_at_least_one)

__all__ = [
    "tokenize",
    "Vocabulary",
    "HashedNgramEncoder",
    "GRUTextEncoder",
    "TransformerTextEncoder",
    "hashed_ngram_search_space",
    "gru_search_space",
    "transformer_search_space",
    "automm_register_encoders",
]

# ----------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------

#: The Unicode blocks of alphabets usually written without spaces between words (Thai, Lao, Tibetan,
#: Myanmar, Khmer, Tai, Balinese, Javanese), whose letters, unlike a Chinese character or a kana, seldom
#: make a word alone: ``hashed_ngram`` reads a run of them as one word (:func:`tokenize`'s
#: ``unspaced_alphabet_words``), whose character n-grams hold its words (fashion titles in Thai
#: letters, subCategory: 0.937 test accuracy a letter a token, 0.984 so, as in English; kana so read:
#: 0.972 against 0.980).
_UNSPACED_ALPHABET_RANGES = (
    (0x0E00, 0x0EFF),    # Thai, Lao
    (0x0F00, 0x0FFF),    # Tibetan
    (0x1000, 0x109F),    # Myanmar
    (0x1780, 0x17FF),    # Khmer
    (0x1950, 0x19FF),    # Tai Le, New Tai Lue, Khmer Symbols
    (0x1A20, 0x1AAF),    # Tai Tham
    (0x1B00, 0x1B7F),    # Balinese
    (0xA980, 0xA9FF),    # Javanese, Myanmar Extended-B
    (0xAA60, 0xAA7F),    # Myanmar Extended-A
)

#: Unicode blocks of scripts usually written without spaces between words: those alphabets and
#: the Chinese, Japanese and Yi characters; every character in them becomes its own token (but
#: for ``unspaced_alphabet_words``).
_NO_SPACE_RANGES = _UNSPACED_ALPHABET_RANGES + (
    (0x2E80, 0x2FDF),    # CJK Radicals, Kangxi Radicals
    (0x3005, 0x3007),    # ideographic iteration / closing mark, number zero
    (0x3021, 0x3029),    # Hangzhou numerals
    (0x3040, 0x30FF),    # Hiragana, Katakana
    (0x3100, 0x312F),    # Bopomofo
    (0x31A0, 0x31FF),    # Bopomofo Extended, CJK Strokes, Katakana Phonetic Extensions
    (0x3400, 0x4DBF),    # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),    # CJK Unified Ideographs
    (0xA000, 0xA4CF),    # Yi
    (0xF900, 0xFAFF),    # CJK Compatibility Ideographs
    (0xFF66, 0xFF9F),    # halfwidth Katakana (NFKC normally widens these)
    (0x16FE0, 0x16FFF),  # ideographic symbols
    (0x1B000, 0x1B16F),  # Kana Supplement / Extended
    (0x20000, 0x323AF),  # CJK Unified Ideographs Extensions B..H, Compatibility Supplement
)
#: Finds a character of :data:`_UNSPACED_ALPHABET_RANGES`.
_UNSPACED_ALPHABET = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _UNSPACED_ALPHABET_RANGES) + "]")

_WORD, _SINGLE, _SPACE, _SKIP, _MARK, _SCRIPT, _SCRIPT_MARK, _ALPHABET, _ALPHABET_MARK = range(9)
_ZERO_WIDTH_SPACE = "\u200b"


def _letter_forms() -> dict[int, str | None]:
    """The table of :func:`tokenize`'s ``fold_letter_forms``: each Greek letter with accents or
    breathings (tonos, dialytika, polytonic marks) to its bare letter, Turkish İ and ı to i, and the
    Arabic tatweel left out."""
    table: dict[int, str | None] = {0x0130: "i", 0x0131: "i", 0x0640: None}
    for code in [*range(0x0370, 0x0400), *range(0x1F00, 0x2000)]:
        char = chr(code)
        if unicodedata.category(char)[0] != "L":
            continue
        bare = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
        if bare != char and len(bare) == 1 and unicodedata.category(bare)[0] == "L":
            table[code] = bare
    return table


#: One word written in other forms, which ``fold_letter_forms`` reads as one (applied after NFKC,
#: before ``casefold``): Greek capitals are written without accents, so "ΠΑΠΟΥΤΣΙΑ" is "παπούτσια"
#: (accents and breathings left out of every Greek letter); Turkish capitals "KADIN" and "RESMİ" are
#: "kadın" and "resmi" (casefold made "kadin" and "resmi" + a combining dot: İ and ı read as i); and
#: the Arabic tatweel (U+0640) only stretches the line between letters ("قميـــص" is "قميص").
#: Titles of one catalogue in these other forms, fitted on 800 fashion titles with their key words
#: translated: Greek capitals, ``gru`` 0.644 accuracy against 0.952 as written (``transformer`` 0.696
#: against 0.96, the linear model 0.866 against 0.968); Turkish capitals 0.89 against 0.954; a tatweel
#: in the words 0.876 against 0.954.
_LETTER_FORMS = _letter_forms()
#: Finds a character of :data:`_LETTER_FORMS` (``str.translate`` took 6 µs a title, a third of its
#: tokenizing; a search, 0.3 µs, spares it the texts without one).
_LETTER_FORM = re.compile("[" + "".join(re.escape(chr(code)) for code in sorted(_LETTER_FORMS)) + "]")
#: The model format whose reader reads :data:`_LETTER_FORMS` as one (an older reader, which reads
#: them as other words, would miss the words of a model fitted on texts holding them).
LETTER_FORMS_FORMAT_VERSION = 8
#: The model format whose reader sizes ``hashed_ngram``'s network form by its fitted buckets
#: (``kept_buckets`` in its state; an older reader would build a row per bucket and fail to load it).
FITTED_ROWS_FORMAT_VERSION = 11
#: The vowel signs and other points that Arabic and Hebrew mostly leave unwritten, which
#: ``fold_vowel_marks`` leaves out (after NFKC): Arabic harakat, tanween, shadda and sukun (U+064B-U+0652)
#: and the superscript alef (U+0670), not the hamza (U+0653-U+0655, part of a word's spelling); Hebrew
#: niqqud and cantillation (the marks of U+0591-U+05C7, not maqaf or sof pasuq). "قَمِيصٌ" is "قميص", "חֻלְצָה"
#: "חלצה". Fashion titles in Arabic letters, a third of their words with one such mark: ``gru`` 0.910 test
#: accuracy against 0.981 without, ``hashed_ngram`` 0.964 against 0.980.
_VOWEL_MARKS: dict[int, None] = dict.fromkeys(
    [*range(0x064B, 0x0653), 0x0670, *(code for code in range(0x0591, 0x05C8) if unicodedata.category(chr(code)) == "Mn")])
#: Finds a character of :data:`_VOWEL_MARKS`.
_VOWEL_MARK = re.compile("[" + "".join(re.escape(chr(code)) for code in sorted(_VOWEL_MARKS)) + "]")
#: The model format whose reader reads a run of letters of :data:`_UNSPACED_ALPHABET_RANGES` as one
#: word in ``hashed_ngram`` and leaves out :data:`_VOWEL_MARKS` (an older reader, reading a letter a token
#: and a word with a vowel sign as another word, would miss the n-grams of a model fitted on texts
#: holding them).
ALPHABET_WORDS_FORMAT_VERSION = VOWEL_MARKS_FORMAT_VERSION = 12
#: Finds a decimal digit other than 0-9 (Unicode's category Nd: Arabic-Indic ٤, Extended Arabic-Indic ۴,
#: Devanagari ४, Thai ๔, ...), which NFKC leaves (but for full-width and mathematical digits) and
#: ``fold_digits`` reads as its 0-9 (``unicodedata.decimal``): "٤٢" is "42", and so is "๔๒" (two
#: tokens a letter a token before).
_OTHER_DIGIT = re.compile(r"(?![0-9])\d")
#: The model format whose reader reads :data:`_OTHER_DIGIT` as 0-9 (an older reader would read them
#: as other words than 0-9, missing the words of a model fitted on texts holding them), and whose
#: ``gru`` and ``transformer`` read a run of letters of :data:`_UNSPACED_ALPHABET_RANGES` in the pieces
#: they learned in fit (an older reader would read a letter a token).
DIGITS_FORMAT_VERSION = ALPHABET_PIECES_FORMAT_VERSION = 13


def _holds(characters: re.Pattern, texts: Sequence[str]) -> bool:
    """Whether one of ``texts`` (:func:`_non_ascii_texts`) holds one of ``characters`` (``_LETTER_FORM``,
    ``_VOWEL_MARK``, ``_UNSPACED_ALPHABET``, ``_OTHER_DIGIT``)."""
    return any(characters.search(text) is not None for text in texts)


def _non_ascii_texts(values: Sequence[Any]) -> list[str]:
    """The texts of ``values`` that are not plain ASCII, read after NFKC as :func:`tokenize` reads them."""
    return [unicodedata.normalize("NFKC", value) for value in values if isinstance(value, str) and not value.isascii()]


def _format_version_of_reading(encoder: Any) -> int:
    """The model format whose reader reads texts as ``encoder`` does, where its training texts held
    what an older reader reads otherwise: :data:`DIGITS_FORMAT_VERSION` for :data:`_OTHER_DIGIT`,
    ``encoder.alphabet_words_format_version`` for letters of :data:`_UNSPACED_ALPHABET_RANGES` (a run of
    them one word, or its learned pieces), :data:`VOWEL_MARKS_FORMAT_VERSION` for :data:`_VOWEL_MARKS`,
    :data:`LETTER_FORMS_FORMAT_VERSION` for :data:`_LETTER_FORMS`; else 1."""
    return max(DIGITS_FORMAT_VERSION if encoder.fold_digits and encoder.digits_in_fit else 1,
               encoder.alphabet_words_format_version
               if encoder.unspaced_alphabet_words and encoder.unspaced_alphabet_in_fit else 1,
               VOWEL_MARKS_FORMAT_VERSION if encoder.fold_vowel_marks and encoder.vowel_marks_in_fit else 1,
               LETTER_FORMS_FORMAT_VERSION if encoder.fold_letter_forms and encoder.letter_forms_in_fit else 1)


def _ascii_digit(match: re.Match) -> str:
    """The 0-9 of a decimal digit of :data:`_OTHER_DIGIT`."""
    return str(unicodedata.decimal(match.group()))


def _in_no_space_script(code: int) -> bool:
    return any(low <= code <= high for low, high in _NO_SPACE_RANGES)


@lru_cache(maxsize=1 << 16)
def _char_class(char: str) -> int:
    """How the tokenizer treats one (normalised) character."""
    code = ord(char)
    if char.isspace() or char == _ZERO_WIDTH_SPACE:
        # (a zero-width space, U+200B, is a format character but a word break: where a web page
        # or a Thai or Khmer text puts one between words, they were read as one word)
        return _SPACE
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF or 0x1F3FB <= code <= 0x1F3FF:
        return _SKIP  # variation selectors, skin-tone modifiers
    category = unicodedata.category(char)
    if _in_no_space_script(code):
        if category[0] in "LNM" and any(low <= code <= high for low, high in _UNSPACED_ALPHABET_RANGES):
            return _ALPHABET_MARK if category[0] == "M" else _ALPHABET
        return _SCRIPT_MARK if category[0] == "M" else _SCRIPT
    if category[0] in "LN":
        return _WORD
    if category[0] == "M":
        return _MARK  # combining mark: part of the word it follows
    if category in ("Co", "Cn") and not (0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE):
        # a private-use character (a vendor's logo, an old Japanese phone's emoji) or one newer than
        # this Python's Unicode (🩷 and 🫨 of Unicode 15 are unassigned to Python 3.11): a symbol,
        # kept as on a newer Python, not dropped (a text of new emoji read as empty)
        return _SINGLE
    if category[0] == "C":
        return _SKIP  # controls, zero-width joiners, surrogates, noncharacters
    return _SINGLE  # punctuation, symbols, emoji


def blank_text(text: str) -> bool:
    """Whether ``text`` has no character :func:`tokenize` keeps: only spaces, controls, zero-width
    and other format characters, variation selectors (``"\\u200b"``, ``"\\x00"``, ``"\\ufeff"``), and
    combining marks with no word to join (``"\\u0301"``, a spacing accent such as ``"´"``, which NFKC
    makes a space and a combining mark) and Arabic tatweels (which only stretch a line between letters),
    read as :func:`tokenize` reads them (NFKC, the forms of a letter read as one, ``casefold``); such a
    text is a missing one, as ``""`` is, not a present text of no tokens."""
    normalised = unicodedata.normalize("NFKC", text).translate(_LETTER_FORMS).casefold()
    return all(_char_class(char) in (_SPACE, _SKIP, _MARK) for char in normalised)


def tokenize(text: Any, limit: int | None = None, *, zero_width_space_breaks: bool = True,
             fold_letter_forms: bool = True, fold_vowel_marks: bool = True,
             fold_digits: bool = True, unspaced_alphabet_words: bool = False) -> list[str]:
    """Split ``text`` into lower-cased tokens, deterministically, for any language.

    NFKC normalisation and ``casefold``, with the forms of one word that case and typography make read
    as one (see :data:`_LETTER_FORMS`: Greek letters without their accents, Turkish İ and ı as i, the
    Arabic tatweel left out; ``fold_letter_forms=False`` reads them as automm did before, for models
    saved then) and without the vowel signs Arabic and Hebrew mostly leave unwritten (see
    :data:`_VOWEL_MARKS`; ``fold_vowel_marks=False``: as before), and every decimal digit as its 0-9
    (see :data:`_OTHER_DIGIT`; ``fold_digits=False``: as before); runs of letters/digits (with their combining
    marks) form words; each punctuation mark, symbol or emoji is one token; characters
    of scripts written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Myanmar,
    ...) are one token each (a letter with its vowel signs and tone marks); with
    ``unspaced_alphabet_words``, the letters of such an alphabet (Thai, Lao, Khmer, Myanmar, ...:
    :data:`_UNSPACED_ALPHABET_RANGES`, not Chinese characters or kana) form words as Latin letters do,
    a run of them between spaces and punctuation one word (``hashed_ngram``'s, whose character n-grams
    read the words in it; a vocabulary of such runs would hold each unspaced title once). Non-strings
    are converted with ``str()``; ``MISSING``, ``None`` and NaN give ``[]``. With ``limit``, only the
    first ``limit`` tokens are made and returned (``tokenize(text)[:limit]``, without reading the rest
    of a long text). A zero-width space (U+200B) separates words; ``zero_width_space_breaks=False`` reads it as automm did before
    (ignored: the words on either side one word), for models saved then.
    """
    if is_absent(text):
        return []
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = str(text)
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        if fold_letter_forms and _LETTER_FORM.search(text):
            text = text.translate(_LETTER_FORMS)
        if fold_vowel_marks and _VOWEL_MARK.search(text):
            text = text.translate(_VOWEL_MARKS)
        if fold_digits and _OTHER_DIGIT.search(text):
            text = _OTHER_DIGIT.sub(_ascii_digit, text)
    text = text.casefold()
    if not zero_width_space_breaks:
        text = text.replace(_ZERO_WIDTH_SPACE, "")
    tokens: list[str] = []
    word: list[str] = []  # characters of the word being read
    after_script_char = False  # last token is a character of a script written without spaces
    for char in text:
        kind = _char_class(char)
        if kind >= _ALPHABET:  # a letter or mark of Thai, Lao, Khmer, Myanmar, ...
            if not unspaced_alphabet_words:
                kind = _SCRIPT if kind == _ALPHABET else _SCRIPT_MARK
            else:  # (a vowel sign with no letter before it: a token, as a letter a token read it)
                kind = _WORD if kind == _ALPHABET else _MARK if word else _SCRIPT_MARK
        if kind == _WORD or (kind == _MARK and word):
            word.append(char)
            continue
        if kind == _SKIP and word:
            continue  # e.g. a zero-width joiner inside a word does not split it
        if word:
            tokens.append("".join(word))
            word.clear()
            after_script_char = False
        if limit is not None and len(tokens) > limit:
            return tokens[:limit]  # the first ``limit`` tokens are whole: the next one has begun
        if kind == _SCRIPT_MARK and after_script_char:
            tokens[-1] += char  # a vowel sign or tone mark stays with its consonant
        elif kind in (_SCRIPT, _SCRIPT_MARK, _SINGLE):
            tokens.append(char)
            after_script_char = kind == _SCRIPT
        elif kind == _SPACE:
            after_script_char = False
    if word:
        tokens.append("".join(word))
    return tokens if limit is None else tokens[:limit]


def _evenly_spaced(values: Sequence[Any], n: int) -> list[Any]:
    """Up to ``n`` of ``values``, evenly spaced from the first to the last (all when ``n`` or fewer)."""
    if len(values) <= n:
        return list(values)
    return [values[i] for i in np.unique(np.linspace(0, len(values) - 1, n).astype(int))]


def _truncated_share(lengths: Sequence[int], max_length: int) -> float:
    """The share of the present texts (token counts ``lengths``) longer than ``max_length``."""
    present = sum(n > 0 for n in lengths)
    return sum(n > max_length for n in lengths) / max(present, 1)


#: In training, a text augmentation is given a text's first ``AUGMENTED_LENGTH * max_length``
#: tokens, enough for token dropout to leave ``max_length`` of them: tokenizing the whole of every
#: long text again in every epoch (300 descriptions of 20,000 characters: 3 s per epoch instead of
#: 0.15 s) would read a tail that is cut off after it.
AUGMENTED_LENGTH = 4


def _reading(encoder: Any) -> dict[str, bool]:
    """The keywords of :func:`tokenize` with which ``encoder`` reads its texts: those of a model
    saved before a change of the tokenizer read them as then (see its ``set_state``)."""
    return {"zero_width_space_breaks": encoder.zero_width_space_breaks, "fold_letter_forms": encoder.fold_letter_forms,
            "fold_vowel_marks": encoder.fold_vowel_marks, "fold_digits": encoder.fold_digits,
            "unspaced_alphabet_words": encoder.unspaced_alphabet_words}


def _reading_state(encoder: Any) -> dict[str, bool]:
    """What a saved text encoder keeps of how it reads texts: :func:`_reading`, and whether its
    training texts held a letter of :data:`_LETTER_FORMS`, one of :data:`_VOWEL_MARKS`, a letter of
    :data:`_UNSPACED_ALPHABET_RANGES` or a digit of :data:`_OTHER_DIGIT` (its format version:
    :func:`_format_version_of_reading`)."""
    return {**_reading(encoder), "letter_forms_in_fit": encoder.letter_forms_in_fit,
            "vowel_marks_in_fit": encoder.vowel_marks_in_fit, "unspaced_alphabet_in_fit": encoder.unspaced_alphabet_in_fit,
            "digits_in_fit": encoder.digits_in_fit}


def _read_as_now(encoder: Any) -> None:
    """Set ``encoder``'s reading of texts as automm's newest: what the keys of :func:`_reading_state`
    say, whose absence from a model's state (saved before that change of the tokenizer) :func:`_set_reading`
    reads as the reading before; nothing held in fit yet."""
    encoder.zero_width_space_breaks = encoder.fold_letter_forms = encoder.fold_vowel_marks = True
    encoder.fold_digits = encoder.unspaced_alphabet_words = True
    encoder.letter_forms_in_fit = encoder.vowel_marks_in_fit = False
    encoder.unspaced_alphabet_in_fit = encoder.digits_in_fit = False


def _set_held_in_fit(encoder: Any, values: Sequence[Any]) -> None:
    """Record whether the training texts ``values`` held what an older reader reads otherwise (see
    :func:`_format_version_of_reading`)."""
    texts = _non_ascii_texts(values)  # (normalised once for the four)
    encoder.letter_forms_in_fit = _holds(_LETTER_FORM, texts)
    encoder.vowel_marks_in_fit = _holds(_VOWEL_MARK, texts)
    encoder.unspaced_alphabet_in_fit = _holds(_UNSPACED_ALPHABET, texts)
    encoder.digits_in_fit = _holds(_OTHER_DIGIT, texts)


def _set_reading(encoder: Any, state: Mapping[str, Any]) -> None:
    """Put back :func:`_reading_state`; each key is absent from models saved before its change of
    the tokenizer (a zero-width space separating words, the forms of a letter read as one, Arabic and
    Hebrew vowel signs left out, a run of Thai letters one word (``hashed_ngram``) or its learned pieces
    (``gru``, ``transformer``), every decimal digit read as 0-9), which read their texts as then."""
    for key in (*_reading(encoder), "letter_forms_in_fit", "vowel_marks_in_fit", "unspaced_alphabet_in_fit",
                "digits_in_fit"):
        setattr(encoder, key, bool(state.get(key, False)))


def _tokens_for(value: Any, augment: Callable[[list[str]], list[str]] | None, max_length: int,
                read: Callable[..., list[str]] = tokenize) -> list[str]:
    """Tokenize (``read(value, limit)``: an encoder's reading of :func:`tokenize`), apply ``augment`` to
    a non-empty token list, truncate to ``max_length``. A text of more than ``AUGMENTED_LENGTH *
    max_length`` tokens: ``augment`` is given that many, or, where it leaves fewer than ``max_length``
    of them (a high dropout), every token."""
    if augment is None:
        return read(value, max_length)  # a long text's tail is never read
    limit = AUGMENTED_LENGTH * max_length
    tokens = read(value, limit + 1)
    if len(tokens) > limit:  # a long text: augmented on its first ``limit`` tokens
        tokens = list(augment(tokens[:limit]))
        if len(tokens) >= max_length:
            return tokens[:max_length]
        tokens = read(value)
    if tokens:
        tokens = list(augment(tokens))
    return tokens[:max_length]


#: The most letters (each with its vowel signs and tone marks) of a piece that ``gru`` and
#: ``transformer`` read of a run of letters of :data:`_UNSPACED_ALPHABET_RANGES`: a word, mostly (test
#: accuracy, 2 seeds; fashion titles in Thai letters, subCategory, 10 epochs: gru 0.933 a letter a
#: token, 0.954 in pieces of up to 8 letters, 0.972 of up to 6; transformer 0.888, 0.968, 0.980; Thai
#: titles of 16 kinds, 5 epochs: gru 0.951, 0.962, 0.990 (0.861 of up to 12: pieces of two words),
#: transformer 0.925, 0.998, 0.996).
PIECE_LETTERS = 6


def _letter_runs(token: str, reading: Mapping[str, bool], limit: int | None = None) -> list[list[str]]:
    """The letters of ``token`` (of :func:`tokenize`'s ``unspaced_alphabet_words``) as :func:`tokenize`
    reads them a letter a token (each with its vowel signs and tone marks; with ``limit``, its first
    ``limit``), in runs of letters of :data:`_UNSPACED_ALPHABET_RANGES` of up to :data:`_RUN_LETTERS`
    letters (a longer one cut in runs of so many); a word of other letters or digits in it (a Latin
    brand, a number) a run of its own."""
    runs: list[list[str]] = []
    in_alphabet = False
    for letter in tokenize(token, limit, **{**reading, "unspaced_alphabet_words": False}):
        letter_in_alphabet = _UNSPACED_ALPHABET.match(letter) is not None
        if letter_in_alphabet and in_alphabet and len(runs[-1]) < _RUN_LETTERS:
            runs[-1].append(letter)
        else:
            runs.append([letter])
        in_alphabet = letter_in_alphabet
    return runs


def _best_pieces(letters: Sequence[str], cost: Callable[[str], float | None]) -> list[str]:
    """The split of ``letters`` into pieces of up to :data:`PIECE_LETTERS` letters whose ``cost``
    sums least (Viterbi; the longer piece on a tie). ``cost`` is None for no piece; a letter is one
    always, one with no cost at :data:`_UNKNOWN_LETTER_COST`."""
    n = len(letters)
    best, start = [0.0] + [math.inf] * n, [0] * (n + 1)
    for end in range(1, n + 1):
        for begin in range(max(end - PIECE_LETTERS, 0), end):
            piece_cost = cost("".join(letters[begin:end]))
            if piece_cost is None:
                if begin < end - 1:
                    continue
                piece_cost = _UNKNOWN_LETTER_COST
            if best[begin] + piece_cost < best[end]:
                best[end], start[end] = best[begin] + piece_cost, begin
    pieces: list[str] = []
    while n:
        pieces.append("".join(letters[start[n]:n]))
        n = start[n]
    return pieces[::-1]


#: The most letters of a run that ``gru`` and ``transformer`` split as one (:func:`_letter_runs`): a
#: word is some 2-10, a title 10-60; a text written with no space at all (Khmer, Myanmar) split
#: whole took 25 ms a 10,000 letters, to read its first ``max_length`` pieces.
_RUN_LETTERS = 256

#: The most words whose pieces a ``gru`` or ``transformer`` keeps (:meth:`_VocabularyTextEncoder.tokens`),
#: each of up to :data:`_RUN_LETTERS` characters (a longer one is not kept).
_PIECES_KEPT = 100_000

#: The cost of a letter that is no piece: above any piece's (a logarithm of counts under e**64).
_UNKNOWN_LETTER_COST = 64.0


def _in_pieces(tokens: Sequence[str], cost: Callable[[str], float | None], reading: Mapping[str, bool],
               limit: int | None = None) -> list[str]:
    """``tokens`` (of :func:`tokenize`'s ``unspaced_alphabet_words``) with each run of letters of
    :data:`_UNSPACED_ALPHABET_RANGES` in its :func:`_best_pieces` under ``cost``; with ``limit``, the
    first ``limit`` (the runs past them left unsplit)."""
    read: list[str] = []
    for token in tokens:
        if limit is not None and len(read) >= limit:
            break
        if token.isascii() or _UNSPACED_ALPHABET.search(token) is None:
            read.append(token)
            continue
        # (with limit, the letters of the pieces to read and a run more: the runs before the last, cut
        # maybe, whole, and split as in the whole token)
        letters_read = None if limit is None else PIECE_LETTERS * (limit - len(read)) + _RUN_LETTERS
        for letters in _letter_runs(token, reading, letters_read):
            read.extend(_best_pieces(letters, cost))
            if limit is not None and len(read) >= limit:
                break
    return read[:limit]


def _learn_pieces(texts: Iterable[Sequence[str]], reading: Mapping[str, bool],
                  pieces_read: int) -> Callable[[str], float | None]:
    """The cost of each piece that ``gru`` and ``transformer`` may read of a run of letters written
    without spaces (Thai, Lao, Khmer, Myanmar, ...: :func:`tokenize`'s ``unspaced_alphabet_words``)
    in ``texts`` (each a list of tokens), of which the first ``pieces_read`` pieces are read: every
    string of up to :data:`PIECE_LETTERS` letters found twice or more in the runs that hold them (a
    text's runs until they hold ``PIECE_LETTERS * pieces_read`` letters), its cost the negative
    logarithm of its count over the letters' (a unigram language model of the runs' substrings, as a
    subword tokenizer starts from: a word, frequent, costs less than its letters or pieces across its ends)."""
    letters_read = PIECE_LETTERS * pieces_read
    runs: Counter[tuple[str, ...]] = Counter()
    words: dict[str, list[list[str]]] = {}  # (the runs of each word but a long one, read once)
    for tokens in texts:
        n_read = 0
        for token in tokens:
            if n_read >= letters_read:
                break
            if token.isascii() or _UNSPACED_ALPHABET.search(token) is None:
                continue
            if len(token) > _RUN_LETTERS:  # (a long run: read as far as it counts, not kept)
                token_runs = _letter_runs(token, reading, letters_read - n_read)
            elif (token_runs := words.get(token)) is None:
                token_runs = words[token] = _letter_runs(token, reading)
            for letters in token_runs:
                if n_read >= letters_read:
                    break
                runs[tuple(letters)] += 1
                n_read += len(letters)
    counts: Counter[str] = Counter()
    n_letters = 0
    for letters, n in runs.items():
        n_letters += n * len(letters)
        for begin in range(len(letters)):
            for end in range(begin + 1, min(begin + PIECE_LETTERS, len(letters)) + 1):
                counts["".join(letters[begin:end])] += n
    log_letters = math.log(max(n_letters, 1))
    return {piece: log_letters - math.log(n) for piece, n in counts.items() if n > 1}.get


# ----------------------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------------------

class Vocabulary:
    """Token ↔ id mapping learned from training texts.

    Id 0 is padding, id 1 unknown; the learned tokens follow, most frequent first,
    ties broken alphabetically. ``max_size`` counts every entry, padding and unknown
    included; tokens seen fewer than ``min_freq`` times are dropped.
    """

    PAD = 0
    UNK = 1
    PAD_TOKEN = "<pad>"
    UNK_TOKEN = "<unk>"

    def __init__(self, tokens: Sequence[str] = (), min_freq: int = 1, max_size: int = 20000):
        if max_size < 2:
            raise ValueError("max_size must be at least 2 (padding and unknown)")
        self.min_freq = int(min_freq)
        self.max_size = int(max_size)
        self.tokens: list[str] = [self.PAD_TOKEN, self.UNK_TOKEN] + list(tokens)[: self.max_size - 2]
        self._index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1, max_size: int = 20000) -> "Vocabulary":
        """Learn a vocabulary from an iterable of token lists."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls(kept, min_freq=min_freq, max_size=max_size)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    @property
    def holds_every_token(self) -> bool:
        """Whether every token of the texts it was built from has an id of its own (``min_freq``
        1 and ``max_size`` not reached): the unknown id then stands for no training token."""
        return self.min_freq <= 1 and len(self.tokens) < self.max_size

    def token_to_id(self, token: str) -> int:
        return self._index.get(token, self.UNK)

    def id_to_token(self, index: int) -> str:
        return self.tokens[index]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        get = self._index.get
        return [get(token, self.UNK) for token in tokens]

    def to_dict(self) -> dict:
        """JSON-serialisable form (learned tokens only; the specials are implied)."""
        return {"tokens": self.tokens[2:], "min_freq": self.min_freq, "max_size": self.max_size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Vocabulary":
        return cls(list(data["tokens"]), min_freq=int(data.get("min_freq", 1)),
                   max_size=int(data.get("max_size", len(data["tokens"]) + 2)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, min_freq={self.min_freq}, max_size={self.max_size})"


# ----------------------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------------------

def _masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``states`` (B, T, D) over positions where ``mask`` (B, T) is True; zeros
    for rows without any such position."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(1) / weights.sum(1).clamp_min(1.0)


#: :meth:`_VocabularyTextEncoder.unfamiliar_values` speaks when at least this share of the texts to
#: predict (:data:`~automm.components.base.UNFAMILIAR_MIN_VALUES` or more) hold no word ``fit`` saw.
UNFAMILIAR_TEXT_SHARE = 0.5

#: It reads up to this many of the texts, evenly spaced: a share's estimate, at a small cost (10,000
#: titles all tokenized again: 0.28 s on top of a predict's own reading).
UNFAMILIAR_TEXT_SAMPLE = 500


class _TextReading:
    """How a text encoder reads its texts (:func:`_reading_state`'s keys), as automm read them before
    each change of the tokenizer: the class's values, which an encoder pickled before a key existed
    (``joblib.dump``) falls back on; ``__init__`` (:func:`_read_as_now`) and ``set_state`` set its own."""

    zero_width_space_breaks = fold_letter_forms = fold_vowel_marks = fold_digits = unspaced_alphabet_words = False
    letter_forms_in_fit = vowel_marks_in_fit = unspaced_alphabet_in_fit = digits_in_fit = False


class _VocabularyTextEncoder(_TextReading, Encoder):
    """Base for encoders over a learned vocabulary: fit/get_state/set_state, padded
    id preprocessing and a collate that trims to the longest text in the batch. Words never
    seen in fit are left out, unless ``min_freq`` or ``max_vocab_size`` made training words
    unknown (the unknown id is then trained on them, and stands for them). The state records
    which (``leave_out_unknown``): a model saved by an automm that predates it (no such key) reads
    new words as the unknown id, as that automm did, so it predicts as it did there."""

    modality = "text"
    reusable_samples = True
    #: What ``fit``'s warning of cut texts says a token is (a Thai title of 6 words is some 30 letters:
    #: a model saved before reads a letter a token).
    token_unit = "a word (in Thai, a piece learned in fit), a punctuation mark, or a Chinese or Japanese character each"
    #: The model format of its reading a run of Thai, Lao, Khmer, Myanmar, ... letters in pieces.
    alphabet_words_format_version = ALPHABET_PIECES_FORMAT_VERSION

    def __init__(self, max_length: int, output_dim: int, min_freq: int, max_vocab_size: int):
        super().__init__()
        self.max_length = whole_at_least_one("max_length", max_length)
        self.output_dim = whole_at_least_one("output_dim", output_dim)
        self.min_freq = int(min_freq)
        self.max_vocab_size = int(max_vocab_size)
        self.vocab: Vocabulary | None = None
        self.leave_out_unknown = False
        _read_as_now(self)  # (False in a model saved before: see tokenize and set_state)

    @property
    def min_format_version(self) -> int:
        """7 when it leaves out words never seen in fit, which a reader of an older format would
        read as the unknown id (see :data:`automm.persistence.FORMAT_VERSION`); 8 when it was fitted
        on texts holding a letter that it reads in another form (:data:`_LETTER_FORMS`), 12 on texts
        holding an Arabic or Hebrew vowel sign that it leaves out (:data:`_VOWEL_MARKS`), 13 on texts
        holding Thai, Lao, Khmer, Myanmar, ... letters (:data:`ALPHABET_PIECES_FORMAT_VERSION`) or a
        decimal digit other than 0-9 (:data:`_OTHER_DIGIT`); else 1."""
        return max(7 if self.leave_out_unknown else 1, _format_version_of_reading(self))

    def fit(self, values: Sequence[Any]) -> "_VocabularyTextEncoder":
        """Learn the vocabulary from the words the model reads: each training text's first
        ``max_length`` tokens (a word seen only past them has no id: it reads as a word never seen); a
        run of Thai, Lao, Khmer, Myanmar, ... letters in the pieces :func:`_learn_pieces` learns of the
        training texts' runs (see :meth:`tokens`)."""
        _set_held_in_fit(self, values)
        reading = _reading(self)
        in_pieces = self.unspaced_alphabet_words and self.unspaced_alphabet_in_fit
        read: Iterable[list[str]] = (tokenize(value, self.max_length + 1, **reading) for value in values)
        if in_pieces:  # (read twice: the pieces learned of the runs, then the words counted)
            read = list(read)
            cost = _learn_pieces(read, reading, self.max_length + 1)
        lengths: list[int] = []

        def counted() -> Iterator[list[str]]:  # each text tokenized once, its length kept
            # the words the model reads, its first max_length (one more tells a cut text): a word only
            # past them would get a vector no training step reaches, which a new text holding it
            # early would carry as noise; left unknown, it is left out (see preprocess)
            for tokens in read:
                if in_pieces:
                    tokens = _in_pieces(tokens, cost, reading, self.max_length + 1)
                lengths.append(len(tokens))
                yield tokens[:self.max_length]

        vocab = Vocabulary.build(counted(), self.min_freq, self.max_vocab_size)
        self._set_vocabulary(vocab)
        self.leave_out_unknown = vocab.holds_every_token
        self.truncated_share_ = _truncated_share(lengths, self.max_length)
        return self

    def tokens(self, value: Any, limit: int | None = None) -> list[str]:
        """The tokens of ``value`` the model reads (its first ``limit``): :func:`tokenize`'s, each
        run of letters of :data:`_UNSPACED_ALPHABET_RANGES` in the vocabulary's pieces (see
        :func:`_in_pieces`; where ``unspaced_alphabet_words``: a model saved before reads a letter a token)."""
        tokens = tokenize(value, limit, **_reading(self))
        if not self.unspaced_alphabet_words or all(token.isascii() for token in tokens):
            return tokens
        pieces = self._pieces  # (a word's pieces, kept: a training text is read again each epoch it is augmented)
        if len(pieces) > _PIECES_KEPT:
            pieces.clear()
        read: list[str] = []
        for token in tokens:
            if limit is not None and len(read) >= limit:
                break
            if len(token) > _RUN_LETTERS:  # (a long run: split as far as it is read, not kept)
                read.extend(_in_pieces([token], self._piece_cost, _reading(self),
                                       None if limit is None else limit - len(read)))
                continue
            token_pieces = pieces.get(token)
            if token_pieces is None:
                token_pieces = pieces[token] = _in_pieces([token], self._piece_cost, _reading(self))
            read.extend(token_pieces)
        return read[:limit]

    def __getstate__(self):
        return {**super().__getstate__(), "_pieces": {}}  # (a cache: rebuilt as texts are read)

    def _piece_cost(self, piece: str) -> float | None:
        """The cost of reading ``piece`` as one token (None for none of the vocabulary's): its
        probability's negative logarithm where the learned tokens' frequencies follow Zipf's law (the
        vocabulary keeps their order, not their counts), ``1 / (rank * H)``, ``H`` the harmonic number."""
        index = self.vocab._index.get(piece, Vocabulary.UNK)
        return None if index <= Vocabulary.UNK else math.log(index - Vocabulary.UNK) + self._log_harmonic

    def unfamiliar_values(self, values: Sequence[Any]) -> list[str]:
        """A message when at least :data:`UNFAMILIAR_TEXT_SHARE` of the texts in ``values`` (20 or
        more; up to :data:`UNFAMILIAR_TEXT_SAMPLE` of them read, evenly spaced) hold no word ``fit``
        saw in their first ``max_length``: such a text is read as a missing text (its words are left
        out), or, where rare training words were made unknown, as unknown words only (another script
        than fit's, or words joined by a character that is no space, such as a zero-width joiner)."""
        self._require_fitted()
        present = [v for v in values if not is_absent(v)]
        read = [(v, tokens) for v in _evenly_spaced(present, UNFAMILIAR_TEXT_SAMPLE)
                if (tokens := self.tokens(v, self.max_length))]
        known = self.vocab._index
        unseen = [v for v, tokens in read if not any(t in known for t in tokens)]
        if len(read) < UNFAMILIAR_MIN_VALUES or not unseen or len(unseen) < UNFAMILIAR_TEXT_SHARE * len(read):
            return []
        examples = ", ".join(repr(str(v)[:40]) for v in list(dict.fromkeys(unseen))[:1])
        counted = f"{len(unseen)} of {len(read)}" + (f" read, evenly spaced among {len(present)}"
                                                      if len(read) < len(present) else "")
        words = ", ".join(repr(t) for t in self.vocab.tokens[2:7])
        how = ("are read as missing texts (the model predicts them from its other inputs alone)"
               if self.leave_out_unknown else "are read as unknown words only")
        return [f"{len(unseen) / len(read):.0%} of the texts hold no word seen in fit (e.g. {examples}; {counted}) "
                f"and {how}; fit saw words such as {words}: are these in another script or language, or their "
                "words joined by a character that is no space, such as a zero-width joiner? (hashed_ngram reads "
                "the parts of words never seen)"]

    def get_state(self) -> dict:
        self._require_fitted()
        return {"vocab": self.vocab.to_dict(), "leave_out_unknown": self.leave_out_unknown, **_reading_state(self)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._set_vocabulary(Vocabulary.from_dict(state["vocab"]))
        # absent from models saved before words never seen in fit were left out: read as unknown, as then
        self.leave_out_unknown = bool(state.get("leave_out_unknown", False))
        _set_reading(self, state)

    def _set_vocabulary(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self._pieces: dict[str, list[str]] = {}
        self._log_harmonic = math.log(sum(1 / rank for rank in range(1, len(vocab))) or 1.0)
        self._build_layers(len(vocab))

    def _build_layers(self, vocab_size: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _require_fitted(self) -> None:
        if self.vocab is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(values) or set_state(state) first")

    def preprocess(self, value: Any, augment: Callable[[list[str]], list[str]] | None = None) -> dict:
        self._require_fitted()
        ids = self.vocab.encode(_tokens_for(value, augment, self.max_length, self.tokens))
        if self.leave_out_unknown:
            # No training word was read as unknown: the unknown id's embedding is a vector no
            # training step reached, which new words would all carry (a text with many of them
            # read as noise). Left out, they are read as token dropout's missing words in training.
            # Where min_freq or max_vocab_size made rare training words unknown, it is trained.
            ids = [i for i in ids if i != Vocabulary.UNK]
        padded = torch.zeros(self.max_length, dtype=torch.long)
        if ids:
            padded[: len(ids)] = torch.tensor(ids, dtype=torch.long)
        return {"ids": padded, "length": torch.tensor(len(ids), dtype=torch.long)}

    def collate(self, samples: list[dict]) -> dict:
        lengths = torch.stack([s["length"] for s in samples])
        longest = max(int(lengths.max()), 1)
        ids = torch.stack([s["ids"][:longest] for s in samples])
        return {"ids": ids, "length": lengths}

    def empty_rows(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """The texts of no word left (every word never seen in fit, see ``preprocess``): read as
        missing texts, which training met, not as texts of length 0, which it never did. An encoder
        that leaves out no word (a model saved before, see ``set_state``) reads a text of no tokens as
        that automm did: as a text (a blank one, which a model saved then reads as one)."""
        if collate_replaced(self, _VocabularyTextEncoder) or not self.leave_out_unknown:
            return None
        return batch["length"] == 0

    def select_rows(self, batch: Mapping[str, torch.Tensor], rows: torch.Tensor) -> dict | None:
        if collate_replaced(self, _VocabularyTextEncoder):
            return None  # a subclass's own collate: its batch is not this one's (every row is run)
        lengths = batch["length"].index_select(0, rows)
        longest = max(int(lengths.max()), 1) if len(rows) else 1
        return {"ids": batch["ids"].index_select(0, rows)[:, :longest], "length": lengths}


# ----------------------------------------------------------------------------------------
# GRU
# ----------------------------------------------------------------------------------------

class GRUTextEncoder(_VocabularyTextEncoder):
    """Embedding + bidirectional GRU + masked mean pooling + linear projection."""

    def __init__(self, max_length: int = 32, emb_dim: int = 64, hidden_dim: int = 64, num_layers: int = 1,
                 output_dim: int = 128, dropout: float = 0.1, min_freq: int = 1, max_vocab_size: int = 20000):
        super().__init__(max_length, output_dim, min_freq, max_vocab_size)
        self.emb_dim = whole_at_least_one("emb_dim", emb_dim)
        self.hidden_dim = whole_at_least_one("hidden_dim", hidden_dim)
        self.num_layers = whole_at_least_one("num_layers", num_layers)
        self.dropout_p = float(dropout)
        self.embedding: nn.Embedding | None = None
        self.gru = nn.GRU(self.emb_dim, self.hidden_dim, num_layers=self.num_layers, batch_first=True,
                          bidirectional=True, dropout=self.dropout_p if self.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(self.dropout_p)
        self.project = nn.Linear(2 * self.hidden_dim, self.output_dim)

    def _build_layers(self, vocab_size: int) -> None:
        self.embedding = nn.Embedding(vocab_size, self.emb_dim, padding_idx=Vocabulary.PAD)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.embedding is None:
            raise RuntimeError("GRUTextEncoder is not fitted: call fit(values) or set_state(state) first")
        ids, lengths = batch["ids"], batch["length"]
        embedded = self.dropout(self.embedding(ids))
        # Empty texts run over one padding step; pooling then ignores it (mask is all False).
        packed = pack_padded_sequence(embedded, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=ids.shape[1])
        mask = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0) < lengths.unsqueeze(1)
        return self.project(self.dropout(_masked_mean(states, mask)))


# ----------------------------------------------------------------------------------------
# Transformer
# ----------------------------------------------------------------------------------------

class TransformerTextEncoder(_VocabularyTextEncoder):
    """Small transformer encoder trained from scratch: token + learned positional
    embeddings, pre-norm encoder layers with a key padding mask, masked mean pooling,
    linear projection."""

    def __init__(self, max_length: int = 32, d_model: int = 64, n_heads: int = 4, n_layers: int = 2,
                 ff_dim: int = 128, output_dim: int = 128, dropout: float = 0.1, min_freq: int = 1,
                 max_vocab_size: int = 20000):
        super().__init__(max_length, output_dim, min_freq, max_vocab_size)
        for name, value in (("d_model", d_model), ("n_heads", n_heads), ("n_layers", n_layers), ("ff_dim", ff_dim)):
            whole_at_least_one(name, value)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model = int(d_model)
        self.n_heads = int(n_heads)
        self.n_layers = int(n_layers)
        self.ff_dim = int(ff_dim)
        self.dropout_p = float(dropout)
        self.token_embedding: nn.Embedding | None = None
        self.position_embedding = nn.Embedding(self.max_length, self.d_model)
        layer = nn.TransformerEncoderLayer(self.d_model, self.n_heads, self.ff_dim, self.dropout_p,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, self.n_layers, norm=nn.LayerNorm(self.d_model),
                                             enable_nested_tensor=False)
        self.dropout = nn.Dropout(self.dropout_p)
        self.project = nn.Linear(self.d_model, self.output_dim)
        nn.init.normal_(self.position_embedding.weight, std=0.02)

    def _build_layers(self, vocab_size: int) -> None:
        self.token_embedding = nn.Embedding(vocab_size, self.d_model, padding_idx=Vocabulary.PAD)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        with torch.no_grad():
            self.token_embedding.weight[Vocabulary.PAD].zero_()

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.token_embedding is None:
            raise RuntimeError("TransformerTextEncoder is not fitted: call fit(values) or set_state(state) first")
        ids, lengths = batch["ids"], batch["length"]
        positions = torch.arange(ids.shape[1], device=ids.device)
        hidden = self.dropout(self.token_embedding(ids) + self.position_embedding(positions).unsqueeze(0))
        mask = positions.unsqueeze(0) < lengths.unsqueeze(1)  # True at real tokens
        # An all-padding row would make attention NaN: let it attend to its first position.
        attend = mask.clone()
        attend[:, 0] = True
        hidden = self.encoder(hidden, src_key_padding_mask=~attend)
        return self.project(self.dropout(_masked_mean(hidden, mask)))


# ----------------------------------------------------------------------------------------
# Hashed n-grams
# ----------------------------------------------------------------------------------------

# crc32 start values separating the feature kinds (unigram, bigram, character n-gram).
_SEED_WORD, _SEED_BIGRAM, _SEED_CHAR = 0x5EED0001, 0x5EED0002, 0x5EED0003


#: (char_ngram_min, char_ngram_max, n_buckets) -> {word: bucket ids of its features}; a
#: plain module-level dict (faster than lru_cache, and never pickled with an encoder).
#: Bounded: at most :data:`_WORD_FEATURE_CACHE_SIZE` words of at most
#: :data:`_WORD_FEATURE_CACHE_MAX_CHARS` characters (about 1 KB each, at most 5 KB) for each of the
#: :data:`_WORD_FEATURE_CACHE_SETTINGS` settings added last (a process serving models with other
#: settings does not keep every one's words).
_WORD_FEATURE_CACHES: dict[tuple[int, int, int], dict[str, tuple[int, ...]]] = {}
_WORD_FEATURE_CACHE_SIZE = 100_000
#: Longer words (a hash, a base64 blob, a text with no spaces) are not kept: their features take
#: 4 ids a character (a 1-MB word kept 156 MB for the process's life), and such words seldom repeat.
_WORD_FEATURE_CACHE_MAX_CHARS = 32
_WORD_FEATURE_CACHE_SETTINGS = 4  # (a model may have texts of three settings: each keeps its words)
_WORD_FEATURE_CACHES_LOCK = threading.Lock()


def _word_feature_ids(word: str, char_min: int, char_max: int, n_buckets: int) -> tuple[int, ...]:
    """Bucket ids of a word's unigram and of the character n-grams of ``<word>``."""
    ids = [zlib.crc32(word.encode("utf-8"), _SEED_WORD) % n_buckets]
    padded = f"<{word}>"
    for n in range(char_min, min(char_max, len(padded)) + 1):
        for start in range(len(padded) - n + 1):
            ids.append(zlib.crc32(padded[start:start + n].encode("utf-8"), _SEED_CHAR) % n_buckets)
    return tuple(ids)


def _bigram_id(first: str, second: str, n_buckets: int) -> int:
    """Bucket id of the word bigram ``first second``."""
    return zlib.crc32(f"{first} {second}".encode("utf-8"), _SEED_BIGRAM) % n_buckets


def _word_feature_cache(char_min: int, char_max: int, n_buckets: int) -> dict[str, tuple[int, ...]]:
    key = (char_min, char_max, n_buckets)
    cache = _WORD_FEATURE_CACHES.get(key)
    if cache is not None and len(cache) <= _WORD_FEATURE_CACHE_SIZE:
        return cache  # (every sample asks: no lock on this path)
    with _WORD_FEATURE_CACHES_LOCK:
        cache = _WORD_FEATURE_CACHES.get(key)
        if cache is None:
            while len(_WORD_FEATURE_CACHES) >= _WORD_FEATURE_CACHE_SETTINGS:  # the settings added first go
                del _WORD_FEATURE_CACHES[next(iter(_WORD_FEATURE_CACHES))]
            cache = _WORD_FEATURE_CACHES[key] = {}
        elif len(cache) > _WORD_FEATURE_CACHE_SIZE:
            cache.clear()
        return cache


class HashedNgramEncoder(_TextReading, Encoder):
    """TF-IDF-weighted bag of hashed word n-grams and character n-grams.

    Each word ``w`` contributes its unigram and the character n-grams
    (``char_ngram_min`` <= n <= ``char_ngram_max``) of ``<w>``; each pair of adjacent
    words contributes a bigram. Features are hashed with a stable hash (crc32 of
    UTF-8) into ``n_buckets`` buckets. ``fit`` learns each bucket's inverse document
    frequency from the training texts; a text's word features and its character
    features are each IDF-weighted and L2-normalised as two blocks (so the many
    character n-grams do not drown the few words), summed through an ``EmbeddingBag``,
    then LayerNorm, an optional hidden layer (``hidden_dim`` > 0) and a linear
    projection. Needs no vocabulary, so any language and any unseen word works; a run of letters of
    Thai, Lao, Khmer, Myanmar, ... (alphabets written without spaces) is one word, whose character
    n-grams read the words in it (``unspaced_alphabet_words``; a model saved before reads a letter a
    token, as then). ``fit`` keeps
    one embedding row per bucket its texts hold, and of the bigrams its text augmentations make of
    them (``kept_buckets``, sorted), not ``n_buckets`` rows: a bucket no training text held reads as a zero vector, where a row of its own would
    keep its random start (noise in the texts to predict) and cost memory and optimizer time.

    With ``linear=True`` the output is the weighted bag itself, ``output_dim`` wide
    (``emb_dim``, ``hidden_dim`` and ``dropout`` unused; weights start at zero): a linear
    function of the normalised TF-IDF vector, what the search's linear model
    (:mod:`automm.linear`) is made of. Once its weight is set (``set_linear_weight``) it keeps
    only the rows of buckets with a non-zero weight (the n-grams of the training texts), so a
    linear model is as large as its vocabulary, not as ``n_buckets``.
    """

    modality = "text"
    reusable_samples = True
    #: What ``fit``'s warning of cut texts says a token is (a run of Thai letters is one word).
    token_unit = "a word, a punctuation mark, or a Chinese or Japanese character each"
    #: The model format of its reading a run of Thai, Lao, Khmer, Myanmar, ... letters as one word.
    alphabet_words_format_version = ALPHABET_WORDS_FORMAT_VERSION
    #: Hyperparameters of the linear form unless the user fixed them: 4x the buckets (fewer
    #: collisions; only the seen ones are kept). Logistic regression with image features made
    #: 60 / 11 / 64 test errors on fashion usage / subCategory / emoji against 62 / 11 / 65
    #: with 2**16 (RESULTS.md, session 13).
    #: ``max_length`` 256: the linear model reads 8x more of a long text than a network (1,500 texts of
    #: 2,000 words: 9 s and 1.8 GB; 1024 tokens: 29 s, 3.2 GB, cut by time_limit=40).
    linear_defaults = {"n_buckets": 2 ** 18, "max_length": 256}

    @property
    def min_format_version(self) -> int:
        """:data:`FITTED_ROWS_FORMAT_VERSION` for a fitted network form (its rows are the fitted
        buckets'); 8 when it was fitted on texts holding a letter that it reads in another form
        (:data:`_LETTER_FORMS`; see :data:`automm.persistence.FORMAT_VERSION`), 12 on texts holding
        Thai, Lao, Khmer, Myanmar, ... letters (:data:`ALPHABET_WORDS_FORMAT_VERSION`) or an Arabic or
        Hebrew vowel sign (:data:`_VOWEL_MARKS`), 13 on texts holding a decimal digit other than 0-9
        (:data:`_OTHER_DIGIT`); else 1."""
        rows = FITTED_ROWS_FORMAT_VERSION if not self.linear and self.kept_buckets is not None else 1
        return max(rows, _format_version_of_reading(self))

    def __init__(self, max_length: int = 32, n_buckets: int = 2 ** 16, emb_dim: int = 96,
                 char_ngram_min: int = 2, char_ngram_max: int = 5, word_bigrams: bool = True,
                 hidden_dim: int = 0, output_dim: int = 128, dropout: float = 0.1, linear: bool = False):
        super().__init__()
        if not 1 <= char_ngram_min <= char_ngram_max:
            raise ValueError("need 1 <= char_ngram_min <= char_ngram_max")
        self.max_length = whole_at_least_one("max_length", max_length)
        self.n_buckets = whole_at_least_one("n_buckets", n_buckets)
        self.emb_dim = whole_at_least_one("emb_dim", emb_dim)
        self.char_ngram_min = int(char_ngram_min)
        self.char_ngram_max = int(char_ngram_max)
        self.word_bigrams = true_or_false("word_bigrams", word_bigrams)
        self.hidden_dim = whole_at_least_one("hidden_dim", hidden_dim, least=0)  # 0: no hidden layer
        self.output_dim = whole_at_least_one("output_dim", output_dim)
        self.dropout_p = float(dropout)
        self.linear = true_or_false("linear", linear)
        _read_as_now(self)  # (False in a model saved before: see tokenize and set_state)
        # Inverse document frequency per bucket: learned by ``fit``, saved with the weights.
        self.register_buffer("idf", torch.ones(self.n_buckets))
        # The buckets with a row, sorted, the others read through a last zero row: after fit (network
        # form) or set_linear_weight (linear form); until then a row per bucket (a model saved before
        # automm kept the fitted buckets only has one too).
        self.register_buffer("kept_buckets", None)
        if self.linear:
            self.embedding = nn.EmbeddingBag(self.n_buckets, self.output_dim, mode="sum")
            nn.init.zeros_(self.embedding.weight)
            return
        self.embedding = nn.EmbeddingBag(self.n_buckets, self.emb_dim, mode="sum")
        nn.init.normal_(self.embedding.weight, std=0.1)
        # Each row is updated only by the few texts containing its n-grams: train it faster.
        self.embedding.learning_rate_scale = 5.0
        self.norm = nn.LayerNorm(self.emb_dim)
        self.dropout = nn.Dropout(self.dropout_p)
        if self.hidden_dim > 0:
            self.hidden = nn.Sequential(nn.Linear(self.emb_dim, self.hidden_dim), nn.GELU(), nn.Dropout(self.dropout_p))
            self.project = nn.Linear(self.hidden_dim, self.output_dim)
        else:
            self.hidden = nn.Identity()
            self.project = nn.Linear(self.emb_dim, self.output_dim)

    def feature_ids(self, tokens: Sequence[str]) -> tuple[array, array]:
        """Bucket ids (two ``array('q')``) of a token list: word features (unigrams, then
        bigrams) and character n-gram features."""
        words, chars = array("q"), array("q")
        cache = _word_feature_cache(self.char_ngram_min, self.char_ngram_max, self.n_buckets)
        for token in tokens:
            word_ids = cache.get(token)
            if word_ids is None:
                word_ids = _word_feature_ids(token, self.char_ngram_min, self.char_ngram_max, self.n_buckets)
                if len(token) <= _WORD_FEATURE_CACHE_MAX_CHARS:
                    cache[token] = word_ids
            words.append(word_ids[0])
            chars.extend(word_ids[1:])
        if self.word_bigrams:
            words.extend(_bigram_id(first, second, self.n_buckets) for first, second in zip(tokens, tokens[1:]))
        return words, chars

    def fit(self, values: Sequence[Any]) -> "HashedNgramEncoder":
        """Learn the inverse document frequency of every bucket from the training texts; the network
        form keeps the embedding rows of the buckets they hold (see :meth:`_keep_rows`)."""
        document_frequency = np.zeros(self.n_buckets, dtype=np.int64)
        n_documents = 0
        lengths = []
        augmented = array("q")  # the network's buckets of the bigrams its text augmentations make
        for value in values:
            tokens = tokenize(value, self.max_length + 1, **_reading(self))  # (one more: whether the text is cut)
            lengths.append(len(tokens))
            words, chars = self.feature_ids(tokens[: self.max_length])
            if words or chars:
                n_documents += 1
                document_frequency[np.unique(np.frombuffer(words + chars, dtype=np.int64))] += 1
            if not self.linear and self.word_bigrams:
                augmented.extend(self._augmented_bigram_ids(tokens[: self.max_length]))
        idf = np.log((1.0 + n_documents) / (1.0 + document_frequency)) + 1.0
        self.idf.copy_(torch.from_numpy(idf.astype(np.float32)))
        if not self.linear:  # (the linear form keeps the buckets its fitted weight reads: set_linear_weight)
            kept = np.union1d(np.flatnonzero(document_frequency), np.frombuffer(augmented, dtype=np.int64))
            self._keep_rows(torch.from_numpy(kept).to(self.idf.device))
        _set_held_in_fit(self, values)
        self.truncated_share_ = _truncated_share(lengths, self.max_length)
        return self

    def _augmented_bigram_ids(self, tokens: Sequence[str]) -> array:
        """Bucket ids of the bigrams that ``token_dropout`` (a word left out: ``a c`` of ``a b c``)
        and ``token_swap`` (``b a``) make of a training text. The network keeps their rows too: the
        trained rows of such bigrams read the texts to predict that lack a word or order two
        otherwise (fashion subCategory from titles, 20 epochs, seeds 0-4: 0.9910 with a row per
        bucket, 0.9902 with the rows of the texts' own buckets, 0.9912 with these as well)."""
        pairs = [*zip(tokens, tokens[2:]), *((second, first) for first, second in zip(tokens, tokens[1:]))]
        return array("q", (_bigram_id(first, second, self.n_buckets) for first, second in pairs))

    def preprocess(self, value: Any, augment: Callable[[list[str]], list[str]] | None = None) -> dict:
        words, chars = self.feature_ids(_tokens_for(value, augment, self.max_length,
                                                    functools.partial(tokenize, **_reading(self))))
        ids = words + chars
        if not ids:
            return {"ids": torch.zeros(0, dtype=torch.long), "n_words": 0}
        # frombuffer shares the array's memory; much faster than torch.tensor
        return {"ids": torch.frombuffer(ids, dtype=torch.long), "n_words": len(words)}

    def collate(self, samples: list[dict]) -> dict:
        lengths = torch.tensor([len(s["ids"]) for s in samples], dtype=torch.long)
        offsets = torch.zeros(len(samples), dtype=torch.long)
        if len(samples) > 1:
            offsets[1:] = torch.cumsum(lengths[:-1], 0)
        ids = torch.cat([s["ids"] for s in samples]) if samples else torch.zeros(0, dtype=torch.long)
        # block of each feature: 2 * sample index + (0 for word features, 1 for character n-grams)
        n_words = torch.tensor([s["n_words"] for s in samples], dtype=torch.long)
        position = torch.arange(len(ids)) - torch.repeat_interleave(offsets, lengths)
        is_char = position >= torch.repeat_interleave(n_words, lengths)
        block = torch.repeat_interleave(torch.arange(len(samples)) * 2, lengths) + is_char.long()
        return {"ids": ids.long(), "offsets": offsets, "block": block}

    def select_rows(self, batch: Mapping[str, torch.Tensor], rows: torch.Tensor) -> dict | None:
        """The flat ids of ``rows`` (their offsets and blocks renumbered), as ``collate`` makes them
        (``None``, every row run, for a subclass with its own ``collate``)."""
        if collate_replaced(self, HashedNgramEncoder):
            return None
        ids, offsets = batch["ids"], batch["offsets"]
        ends = torch.cat([offsets[1:], offsets.new_tensor([len(ids)])])
        starts = offsets.index_select(0, rows)
        lengths = ends.index_select(0, rows) - starts
        new_offsets = torch.zeros_like(lengths)
        if len(rows) > 1:
            new_offsets[1:] = torch.cumsum(lengths[:-1], 0)
        position = (torch.arange(int(lengths.sum()), device=ids.device)
                    + torch.repeat_interleave(starts - new_offsets, lengths))
        block = (torch.repeat_interleave(torch.arange(len(rows), device=ids.device) * 2, lengths)
                 + batch["block"].index_select(0, position) % 2)
        return {"ids": ids.index_select(0, position), "offsets": new_offsets, "block": block}

    def feature_weights(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The weight of each of ``batch["ids"]``: its IDF, the word and character blocks of
        each text each normalised to unit L2 norm (a bucket that occurs twice counts twice)."""
        weights = self.idf[batch["ids"]]
        block = batch["block"]
        norms = torch.zeros(2 * len(batch["offsets"]), device=weights.device, dtype=weights.dtype)
        norms = norms.index_add(0, block, weights * weights).sqrt()
        return weights / norms[block]

    def linear_design(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The weighted bags as a sparse (texts, ``n_buckets``) matrix (linear form)."""
        n_texts = len(batch["offsets"])
        lengths = torch.diff(torch.cat([batch["offsets"], torch.tensor([len(batch["ids"])])]))
        rows = torch.repeat_interleave(torch.arange(n_texts), lengths)
        with torch.no_grad():
            weights = self.feature_weights(batch).float()
        return torch.sparse_coo_tensor(torch.stack([rows, batch["ids"]]), weights, (n_texts, self.n_buckets),
                                       check_invariants=False).coalesce()  # ids < n_buckets by construction

    def set_linear_weight(self, weight: torch.Tensor) -> None:
        """Keep the rows of ``weight`` (``n_buckets``, ``output_dim``) that are not zero."""
        if not self.linear:
            raise RuntimeError("set_linear_weight needs hashed_ngram's linear form (linear=True)")
        kept = torch.nonzero(weight.detach().abs().sum(1) > 0).flatten()
        self._compact(len(kept))
        with torch.no_grad():
            self.kept_buckets.copy_(kept)
            self.embedding.weight[:len(kept)] = weight.detach()[kept].to(self.embedding.weight.dtype)

    def _keep_rows(self, kept: torch.Tensor) -> None:
        """The network form with the rows of the buckets ``kept`` (sorted) only: each keeps the
        vector it had (a bucket new to a second fit starts as a new row does, at random)."""
        with torch.no_grad():
            before = self.embedding.weight.detach()
            rows = self._rows(kept)
            weight = before[rows]
            if self.kept_buckets is not None:  # fitted before: its other buckets had no row
                new = rows == len(self.kept_buckets)
                weight[new] = torch.randn(int(new.sum()), self.emb_dim, device=before.device,
                                          dtype=before.dtype) * 0.1
            self._compact(len(kept))
            self.kept_buckets.copy_(kept)
            self.embedding.weight[:len(kept)] = weight

    def _compact(self, n_kept: int) -> None:
        """``n_kept`` rows (``kept_buckets`` says whose) and a last zero row for every other bucket:
        the linear form's weights (zero until set), or the network form's embedding (to be filled;
        its zero row, ``padding_idx``, never trained)."""
        device, dtype = self.idf.device, self.embedding.weight.dtype
        self.register_buffer("kept_buckets", torch.zeros(n_kept, dtype=torch.long, device=device))
        if self.linear:
            self.embedding = nn.EmbeddingBag(n_kept + 1, self.output_dim, mode="sum", device=device, dtype=dtype)
            nn.init.zeros_(self.embedding.weight)
            return
        self.embedding = nn.EmbeddingBag(n_kept + 1, self.emb_dim, mode="sum", padding_idx=n_kept,
                                         _weight=torch.zeros(n_kept + 1, self.emb_dim, device=device, dtype=dtype))
        self.embedding.learning_rate_scale = 5.0  # (see __init__)

    def get_state(self) -> dict:
        state: dict[str, Any] = _reading_state(self)
        if self.kept_buckets is not None:
            state["kept_buckets"] = len(self.kept_buckets)
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Size the weights before ``load_state_dict``: the rows of ``kept_buckets``; a network form
        saved before automm kept the fitted buckets only has no such key, and a row per bucket."""
        if "kept_buckets" in state:
            self._compact(int(state["kept_buckets"]))
        _set_reading(self, state)

    def _rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Embedding rows of bucket ids: the ids themselves, or, once only the kept buckets have
        one, their position among them (the zero row for the others)."""
        if self.kept_buckets is None:
            return ids
        position, found = find_sorted(self.kept_buckets, ids)
        return torch.where(found, position, torch.full_like(position, len(self.kept_buckets)))

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        weights = self.feature_weights(batch)
        bags = self.embedding(self._rows(batch["ids"]), batch["offsets"], per_sample_weights=weights)  # empty: zeros
        if self.linear:
            return bags
        return self.project(self.hidden(self.dropout(self.norm(bags))))


# ----------------------------------------------------------------------------------------
# Search spaces and registration
# ----------------------------------------------------------------------------------------

def hashed_ngram_search_space(trial: Any, prefix: str) -> dict:
    """Optuna search space for ``hashed_ngram`` (CPU-sized)."""
    return {
        "n_buckets": trial.suggest_categorical(f"{prefix}n_buckets", [2 ** 15, 2 ** 16, 2 ** 17]),
        "emb_dim": trial.suggest_categorical(f"{prefix}emb_dim", [48, 64, 96, 128]),
        "char_ngram_min": trial.suggest_int(f"{prefix}char_ngram_min", 1, 3),
        "char_ngram_max": trial.suggest_int(f"{prefix}char_ngram_max", 3, 6),
        "hidden_dim": trial.suggest_categorical(f"{prefix}hidden_dim", [0, 128, 256]),
        "output_dim": trial.suggest_categorical(f"{prefix}output_dim", [64, 128, 256]),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.4),
    }


def gru_search_space(trial: Any, prefix: str) -> dict:
    """Optuna search space for ``gru`` (CPU-sized)."""
    return {
        "max_length": trial.suggest_categorical(f"{prefix}max_length", [16, 32, 64]),
        "emb_dim": trial.suggest_categorical(f"{prefix}emb_dim", [32, 64, 128]),
        "hidden_dim": trial.suggest_categorical(f"{prefix}hidden_dim", [32, 64, 128]),
        "num_layers": trial.suggest_int(f"{prefix}num_layers", 1, 2),
        "output_dim": trial.suggest_categorical(f"{prefix}output_dim", [64, 128, 256]),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.4),
    }


def transformer_search_space(trial: Any, prefix: str) -> dict:
    """Optuna search space for ``transformer`` (CPU-sized)."""
    return {
        "max_length": trial.suggest_categorical(f"{prefix}max_length", [16, 32, 64]),
        "d_model": trial.suggest_categorical(f"{prefix}d_model", [32, 64, 128]),
        "n_heads": trial.suggest_categorical(f"{prefix}n_heads", [2, 4]),
        "n_layers": trial.suggest_int(f"{prefix}n_layers", 1, 3),
        "ff_dim": trial.suggest_categorical(f"{prefix}ff_dim", [64, 128, 256]),
        "output_dim": trial.suggest_categorical(f"{prefix}output_dim", [64, 128, 256]),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.3),
    }


_HASHED_NGRAM_DEFAULTS = {"max_length": 32, "n_buckets": 2 ** 16, "emb_dim": 96, "char_ngram_min": 2,
                          "char_ngram_max": 5, "word_bigrams": True, "hidden_dim": 0, "output_dim": 128,
                          "dropout": 0.1, "linear": False}
_GRU_DEFAULTS = {"max_length": 32, "emb_dim": 64, "hidden_dim": 64, "num_layers": 1, "output_dim": 128,
                 "dropout": 0.1, "min_freq": 1, "max_vocab_size": 20000}
_TRANSFORMER_DEFAULTS = {"max_length": 32, "d_model": 64, "n_heads": 4, "n_layers": 2, "ff_dim": 128,
                         "output_dim": 128, "dropout": 0.1, "min_freq": 1, "max_vocab_size": 20000}


def _output_dim(hyperparameters: Mapping[str, Any]) -> int:
    return int(hyperparameters["output_dim"])


@hookimpl
def automm_register_encoders(register: Callable[..., None]) -> None:
    """Register the built-in text encoders."""
    register("hashed_ngram", HashedNgramEncoder, modality="text", output_dim=_output_dim,
             defaults=dict(_HASHED_NGRAM_DEFAULTS), search_space=hashed_ngram_search_space, tags=("linear",),
             description="Hashed word uni/bigrams and character n-grams in an EmbeddingBag; "
                         "fast, vocabulary-free, any language (default text encoder).")
    register("gru", GRUTextEncoder, modality="text", output_dim=_output_dim, defaults=dict(_GRU_DEFAULTS),
             search_space=gru_search_space,
             description="Learned vocabulary, bidirectional GRU, masked mean pooling.")
    register("transformer", TransformerTextEncoder, modality="text", output_dim=_output_dim,
             defaults=dict(_TRANSFORMER_DEFAULTS), search_space=transformer_search_space,
             description="Small transformer encoder trained from scratch on a learned vocabulary.")
