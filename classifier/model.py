"""A trained model: features, two linear classifiers and the urgency policy.

Urgency policy (why it is not a plain argmax): missing a P0 is the worst
error, so a suggestion is P0 when a P0 safety rule fires OR the P0 score
reaches `p0_threshold`. The P0 score comes from a dedicated binary
P0-vs-rest model when the model has one (`p0_model`, the default since it
ranks P0 texts better in cross-validation), else from the three-level
urgency model. Both thresholds are tuned by cross-validation on the
training part only (see train.py).

Below the P0 threshold lies a watch band: a text whose P0 score reaches
`p0_review_threshold` but not `p0_threshold` keeps its P1/P2 suggestion and
is flagged for an agent to look at first (`p0_watch`). The suggestion stays
precise enough to trust; the review queue is where the rest of P0 recall is
bought, at a bounded share of the inbox.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .features import Featurizer, Prepared
from .labels import CATEGORIES, URGENCIES

DEFAULT_REVIEW_THRESHOLD = 0.5  # a suggestion less confident than this needs review


def linear_weights(clf) -> np.ndarray:
    """Per-class feature weights of a fitted linear model (for reasons)."""
    if hasattr(clf, "calibrated_classifiers_"):
        coefs = [c.estimator.coef_ for c in clf.calibrated_classifiers_]
        w = np.mean(coefs, axis=0)
    elif hasattr(clf, "coef_"):
        w = clf.coef_
    else:  # ComplementNB: larger weight = more typical of the class
        w = clf.feature_log_prob_
        w = w - w.mean(axis=0, keepdims=True)
    w = np.asarray(w, dtype=np.float32)
    if w.shape[0] == 1:  # binary models keep one row
        w = np.vstack([-w, w])
    return w


def class_proba(clf, X, classes: Sequence[str]) -> np.ndarray:
    """predict_proba with columns in our fixed label order."""
    proba = clf.predict_proba(X)
    out = np.zeros((X.shape[0], len(classes)), dtype=np.float64)
    for j, c in enumerate(clf.classes_):
        out[:, classes.index(c)] = proba[:, j]
    return out


@dataclass
class Decisions:
    category: list[str]
    category_confidence: np.ndarray
    urgency: list[str]
    urgency_confidence: np.ndarray
    rule_forced_p0: np.ndarray
    category_proba: np.ndarray
    urgency_proba: np.ndarray
    p0_score: np.ndarray
    p0_watch: np.ndarray  # not suggested P0, but close enough that an agent should check

    def needs_review(self, review_threshold: float) -> np.ndarray:
        """Low confidence in either suggestion, or a possible P0."""
        return low_confidence(self.category_confidence, self.urgency_confidence,
                              review_threshold) | self.p0_watch


def low_confidence(category_confidence, urgency_confidence, review_threshold: float) -> np.ndarray:
    return np.minimum(category_confidence, urgency_confidence) < review_threshold


def watch_band(suggested_p0: np.ndarray, p0_score: np.ndarray, start: float) -> np.ndarray:
    """Texts not suggested P0 whose P0 score reaches the watch band's start."""
    return ~suggested_p0 & (p0_score >= start)


@dataclass
class TrainedModel:
    featurizer: Featurizer
    category_model: object
    urgency_model: object
    p0_threshold: float
    p1_threshold: float
    rule_p0_precision: float  # measured on the training part; confidence of a forced P0
    config: dict = field(default_factory=dict)
    n_examples: int = 0
    p0_model: object = None  # binary P0-vs-rest; None: P(P0) of urgency_model
    p0_review_threshold: float = 1.0  # start of the P0 watch band; 1.0: no band

    def p0_score(self, X, urg_p: np.ndarray) -> np.ndarray:
        p0_model = getattr(self, "p0_model", None)  # models pickled before it existed
        if p0_model is None:
            return urg_p[:, 0]
        return class_proba(p0_model, X, (False, True))[:, 1]

    def decide(self, prepared: Sequence[Prepared]) -> tuple[Decisions, sp.csr_matrix]:
        X = self.featurizer.transform(prepared)
        cat_p = class_proba(self.category_model, X, CATEGORIES)
        urg_p = class_proba(self.urgency_model, X, URGENCIES)
        cat_idx = cat_p.argmax(axis=1)
        forced = np.array([any(h.level == "P0" for h in p.hits) for p in prepared], dtype=bool)
        p0 = self.p0_score(X, urg_p)
        urg, urg_conf = decide_urgency(urg_p, forced, self.p0_threshold, self.p1_threshold,
                                       self.rule_p0_precision, p0)
        watch_from = getattr(self, "p0_review_threshold", 1.0)  # models pickled before it existed
        d = Decisions(
            category=[CATEGORIES[i] for i in cat_idx],
            category_confidence=cat_p[np.arange(len(cat_idx)), cat_idx],
            urgency=urg,
            urgency_confidence=urg_conf,
            rule_forced_p0=forced,
            category_proba=cat_p,
            urgency_proba=urg_p,
            p0_score=p0,
            p0_watch=watch_band(np.asarray(urg) == "P0", p0, watch_from),
        )
        return d, X


def decide_urgency(urg_p: np.ndarray, forced: np.ndarray, p0_threshold: float,
                   p1_threshold: float, rule_precision: float = 0.0,
                   p0_score: np.ndarray | None = None):
    """P0 if a rule fires or the P0 score (default P(P0)) >= p0_threshold;
    else P1 if P1's share of P1+P2 reaches p1_threshold; else P2. Confidence
    is the probability of the chosen level (for P0 the P0 score; a forced P0
    at least the rules' measured precision)."""
    p1, p2 = urg_p[:, 1], urg_p[:, 2]
    p0 = urg_p[:, 0] if p0_score is None else np.asarray(p0_score, dtype=np.float64)
    is_p0 = forced | (p0 >= p0_threshold)
    is_p1 = ~is_p0 & (p1 / np.maximum(p1 + p2, 1e-12) >= p1_threshold)
    labels = np.where(is_p0, "P0", np.where(is_p1, "P1", "P2"))
    conf = np.where(is_p0, p0, np.where(is_p1, p1, p2))
    conf = np.where(forced, np.maximum(conf, rule_precision), conf)
    return labels.tolist(), conf
