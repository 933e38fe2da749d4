"""The run-time face of the package: load a stored model, suggest."""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .features import Prepared, prepare
from .labels import CATEGORY_LABELS, URGENCY_LABELS
from .model import DEFAULT_REVIEW_THRESHOLD, TrainedModel, linear_weights
from .store import ModelStore
from .tokenize import tokenizer

MAX_REASONS = 5
_WORDLIKE = re.compile(r"^(?:[\u4e00-\u9fffa-z0-9]|\[[^\]]+\])+( (?:[\u4e00-\u9fffa-z0-9]|\[[^\]]+\])+)?$")


def _readable(name: str) -> bool:
    """A feature an agent can read as a reason: a word, a word pair or a
    character n-gram of two or more characters, no punctuation."""
    return name.startswith("规则:") or (len(name) >= 2 and bool(_WORDLIKE.match(name)))


@dataclass(frozen=True)
class Suggestion:
    category: str
    category_confidence: float
    urgency: str
    urgency_confidence: float
    needs_review: bool
    reasons: tuple[str, ...]
    model_version: str
    p0_watch: bool = False  # suggested P1/P2, but possibly P0: an agent should check first

    def to_dict(self) -> dict:
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        d["category_label"] = CATEGORY_LABELS[self.category]
        d["urgency_label"] = URGENCY_LABELS[self.urgency]
        return d


class Classifier:
    """Suggests category and urgency; never raises on bad text."""

    def __init__(self, model: TrainedModel, version: str,
                 review_threshold: float = DEFAULT_REVIEW_THRESHOLD):
        self.model = model
        self.version = version
        self.review_threshold = review_threshold
        self.load_seconds = 0.0
        names = model.featurizer.feature_names()
        self._names = names
        self._cat_w = linear_weights(model.category_model)
        # Single characters explain little to an agent; prefer words and n-grams.
        self._explainable = np.array([_readable(n) for n in names], dtype=bool)
        self._cat_classes = list(getattr(model.category_model, "classes_", []))

    @classmethod
    def load(cls, model_dir: str | Path, version: str | None = None,
             review_threshold: float = DEFAULT_REVIEW_THRESHOLD) -> "Classifier":
        start = time.perf_counter()
        store = ModelStore(model_dir)
        version = version or store.current()
        if version is None:
            raise FileNotFoundError(f"no current model in {model_dir}")
        if not store.compatible(version):
            raise ValueError(f"model {version} in {model_dir} was saved in another format: "
                             "run `kesu model ensure` or `kesu train` to train one for this version of kesu")
        tokenizer()  # pay jieba's start-up here, not on the first complaint
        clf = cls(store.load_model(version), version, review_threshold)
        clf.load_seconds = time.perf_counter() - start
        return clf

    def suggest(self, text: object) -> Suggestion:
        return self.suggest_many([text])[0]

    def suggest_many(self, texts: Iterable[object]) -> list[Suggestion]:
        prepared = [prepare(t) for t in texts]
        if not prepared:
            return []
        d, X = self.model.decide(prepared)
        reasons = self._reasons(prepared, d.category, X)
        needs_review = d.needs_review(self.review_threshold)
        out = []
        for i, p in enumerate(prepared):
            if not p.has_content:
                out.append(Suggestion("non_complaint", 0.0, "P2", 0.0, True,
                                      ("规则:无有效文字",), self.version))
                continue
            cat_conf = float(d.category_confidence[i])
            urg_conf = float(d.urgency_confidence[i])
            out.append(Suggestion(
                category=d.category[i],
                category_confidence=round(cat_conf, 4),
                urgency=d.urgency[i],
                urgency_confidence=round(urg_conf, 4),
                needs_review=bool(needs_review[i]),
                reasons=reasons[i],
                model_version=self.version,
                p0_watch=bool(d.p0_watch[i]),
            ))
        return out

    def _reasons(self, prepared: Sequence[Prepared], categories: list[str], X) -> list[tuple]:
        """Rule hits first, then the terms adding most to the chosen category."""
        X = X.tocsr()
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        cls_idx = np.array([self._cat_classes.index(c) for c in categories])
        contrib = X.data * self._cat_w[cls_idx[rows], X.indices]
        out = []
        for i, p in enumerate(prepared):
            chosen = [h.reason for h in p.hits][:MAX_REASONS]
            lo, hi = X.indptr[i], X.indptr[i + 1]
            cols, vals = X.indices[lo:hi], contrib[lo:hi]
            keep = self._explainable[cols] & (vals > 0)
            cols, vals = cols[keep], vals[keep]
            for j in cols[np.argsort(-vals)]:
                if len(chosen) >= MAX_REASONS:
                    break
                term = self._names[j]
                if term.startswith("规则:"):
                    continue  # rule hits are already listed with their match
                term = term.replace(" ", "")  # word bigrams read as one phrase
                if any(term in c or c in term for c in chosen):
                    continue
                chosen.append(term)
            out.append(tuple(chosen))
        return out
