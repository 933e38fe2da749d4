"""Feature extraction: jieba words, character n-grams and rule hits.

Texts are prepared once (normalise, match rules) and every feature block
reads the prepared form. The jieba cut is computed on first use and kept, so
jieba runs at most once per text, and never for a char-only model.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from .normalize import display, has_content, normalize
from .rules import RULE_NAMES, RuleHit, match
from .tokenize import words

FEATURE_SETS = ("word", "char", "word+char")


class Prepared:
    """Normalised text, its rule hits and (lazily) its jieba words."""

    __slots__ = ("normalized", "hits", "_words")

    def __init__(self, normalized: str, words: Sequence[str] | None = None,
                 hits: Sequence[RuleHit] = ()):
        self.normalized = normalized
        self.hits = tuple(hits)
        self._words = None if words is None else tuple(words)

    @property
    def words(self) -> tuple[str, ...]:
        if self._words is None:
            self._words = tuple(words(self.normalized))
        return self._words

    @property
    def has_content(self) -> bool:
        return has_content(self.normalized)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Prepared) and self.normalized == other.normalized
                and self.hits == other.hits)

    def __hash__(self) -> int:
        return hash((self.normalized, self.hits))

    def __repr__(self) -> str:
        return f"Prepared({self.normalized!r}, hits={self.hits!r})"


def prepare(text: object) -> Prepared:
    norm = normalize(text)
    return Prepared(norm, None, match(norm))


def prepare_many(texts: Iterable[object]) -> list[Prepared]:
    return [prepare(t) for t in texts]


def _word_ngrams(p: Prepared) -> list[str]:
    # Unigrams plus bigrams: "不 退" and "没 到账" carry what single words lose.
    w = p.words
    return list(w) + [f"{a} {b}" for a, b in zip(w, w[1:])]


def _chars(p: Prepared) -> str:
    return p.normalized.replace(" ", "")


class Featurizer:
    """TF-IDF over words and/or char 1-3-grams, plus one column per rule."""

    def __init__(self, feature_set: str = "char", rule_weight: float = 1.0):
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"unknown feature set {feature_set!r}")
        self.feature_set = feature_set
        self.rule_weight = rule_weight
        self.word = None
        self.char = None
        if "word" in feature_set:
            self.word = TfidfVectorizer(
                analyzer=_word_ngrams, min_df=2, sublinear_tf=True, dtype=np.float32
            )
        if "char" in feature_set:
            self.char = TfidfVectorizer(
                analyzer=_chars_analyzer, min_df=2, sublinear_tf=True, dtype=np.float32
            )

    def fit(self, prepared: Sequence[Prepared]) -> "Featurizer":
        if self.word is not None:
            self.word.fit(prepared)
        if self.char is not None:
            self.char.fit(prepared)
        self._names = None
        return self

    def transform(self, prepared: Sequence[Prepared]) -> sp.csr_matrix:
        blocks = []
        if self.word is not None:
            blocks.append(self.word.transform(prepared))
        if self.char is not None:
            blocks.append(self.char.transform(prepared))
        blocks.append(self._rules(prepared))
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    def _rules(self, prepared: Sequence[Prepared]) -> sp.csr_matrix:
        index = {name: i for i, name in enumerate(RULE_NAMES)}
        rows, cols = [], []
        for r, p in enumerate(prepared):
            for h in p.hits:
                rows.append(r)
                cols.append(index[f"{h.level}:{h.name}"])
        data = np.full(len(rows), self.rule_weight, dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(prepared), len(RULE_NAMES)))

    def feature_names(self) -> np.ndarray:
        """Readable name per column (rules as 规则:name), for explanations."""
        if getattr(self, "_names", None) is None:
            names: list[str] = []
            if self.word is not None:
                names += [display(n) for n in self.word.get_feature_names_out()]
            if self.char is not None:
                names += [display(n) for n in self.char.get_feature_names_out()]
            names += ["规则:" + n.split(":", 1)[1] for n in RULE_NAMES]
            self._names = np.array(names, dtype=object)
        return self._names


def _chars_analyzer(p: Prepared) -> list[str]:
    text = _chars(p)
    n = len(text)
    grams = list(text)
    grams += [text[i : i + 2] for i in range(n - 1)]
    grams += [text[i : i + 3] for i in range(n - 2)]
    return grams
