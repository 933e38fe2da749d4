"""Feature extraction: jieba words, character n-grams and rule hits.

Texts are prepared once (normalise, cut, match rules) and every feature
block reads the prepared form, so jieba runs once per text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from .normalize import display, has_content, normalize
from .rules import RULE_NAMES, RuleHit, match
from .tokenize import words

FEATURE_SETS = ("word", "char", "word+char")


@dataclass(frozen=True)
class Prepared:
    normalized: str
    words: tuple[str, ...]
    hits: tuple[RuleHit, ...]

    @property
    def has_content(self) -> bool:
        return has_content(self.normalized)


def prepare(text: object) -> Prepared:
    norm = normalize(text)
    return Prepared(norm, tuple(words(norm)), tuple(match(norm)))


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
