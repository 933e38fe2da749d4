"""Scores a model the same way everywhere (tests, store promotion, RESULTS.md)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

from .features import prepare
from .labels import CATEGORIES, URGENCIES
from .model import DEFAULT_REVIEW_THRESHOLD


def _per_class(y_true, y_pred, labels) -> dict:
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=list(labels), zero_division=0
    )
    return {
        lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
              "support": int(s[i])}
        for i, lab in enumerate(labels)
    }


def score(cat_true, cat_pred, urg_true, urg_pred, needs_review=None) -> dict:
    cat_true, cat_pred = list(cat_true), list(cat_pred)
    urg_true, urg_pred = np.asarray(urg_true), np.asarray(urg_pred)
    # Macro-F1 over the labels present in truth or prediction (sklearn default).
    per_urg = _per_class(urg_true, urg_pred, URGENCIES)
    out = {
        "n": len(cat_true),
        "category_macro_f1": float(f1_score(cat_true, cat_pred, average="macro",
                                            zero_division=0)),
        "urgency_macro_f1": float(f1_score(urg_true, urg_pred, average="macro",
                                           zero_division=0)),
        "p0_recall": per_urg["P0"]["recall"],
        "p0_precision": per_urg["P0"]["precision"],
        "per_class": {
            "category": _per_class(cat_true, cat_pred, CATEGORIES),
            "urgency": per_urg,
        },
    }
    if needs_review is not None:
        # What an agent sees first: P0 texts suggested P0 or put in the review queue.
        needs_review = np.asarray(needs_review, dtype=bool)
        p0 = urg_true == "P0"
        seen = p0 & ((urg_pred == "P0") | needs_review)
        out["p0_recall_with_review"] = float(seen.sum() / max(1, int(p0.sum())))
        out["review_share"] = float(needs_review.mean()) if len(needs_review) else 0.0
    return out


def evaluate(model_or_classifier, examples: Sequence,
             review_threshold: float | None = None) -> dict:
    """Metrics of a TrainedModel or Classifier on labelled examples (the
    review figures at the classifier's review threshold, else the default)."""
    model = getattr(model_or_classifier, "model", model_or_classifier)
    if review_threshold is None:
        review_threshold = getattr(model_or_classifier, "review_threshold", DEFAULT_REVIEW_THRESHOLD)
    prepared = [prepare(e.text) for e in examples]
    decisions, _ = model.decide(prepared)
    return score([e.category for e in examples], decisions.category,
                 [e.urgency for e in examples], decisions.urgency,
                 decisions.needs_review(review_threshold))
