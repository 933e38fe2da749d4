"""Comparisons behind RESULTS.md: `python -m classifier.experiments`.

Held-out = the fixed 20 % split. Leave-one-source-out = train on two of the
three sources (waimai_10k, online_shopping_10_cats, stc3), test on the third.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
from sklearn.model_selection import StratifiedKFold

from .evaluate import evaluate
from .train import (DEFAULT_CONFIG, heldout_split, load_base_examples, load_more_examples, train,
                    training_examples)

FEATURE_SETS = ("word", "char", "word+char")
MODELS = ("lr", "svm", "cnb")
KEYS = ("category_macro_f1", "urgency_macro_f1", "p0_recall", "p0_precision")


def cross_source_eval(config: dict | None = None, examples=None) -> dict:
    """Train on two sources (base and later-labelled texts), test on the
    base texts of the third, for each source."""
    base = load_base_examples()
    examples = examples if examples is not None else base + load_more_examples()
    out = {}
    for source in sorted({e.source for e in base}):
        tr = [e for e in examples if e.source != source]
        te = [e for e in base if e.source == source]
        out[source] = evaluate(train(tr, progress=False, config=config), te)
    out["mean"] = {k: float(np.mean([out[s][k] for s in out])) for k in KEYS}
    return out


def cv_on_training(config: dict, folds: int = 3) -> dict:
    """Model selection figures: k-fold CV inside the training part only."""
    tr = training_examples()
    scores = []
    split = StratifiedKFold(folds, shuffle=True, random_state=7)
    for a, b in split.split(np.zeros(len(tr)), [e.urgency for e in tr]):
        m = train([tr[i] for i in a], progress=False, config=config)
        scores.append(evaluate(m, [tr[i] for i in b]))
    return {k: float(np.mean([s[k] for s in scores])) for k in KEYS}


def compare(feature_sets=FEATURE_SETS, models=MODELS) -> list[dict]:
    _, te = heldout_split(load_base_examples())
    tr = training_examples()
    rows = []
    for fs in feature_sets:
        for m in models:
            config = {"feature_set": fs, "model": m}
            start = time.time()
            held = evaluate(train(tr, progress=False, config=config), te)
            loso = cross_source_eval(config)["mean"]
            rows.append({"config": config, "heldout": {k: held[k] for k in KEYS},
                         "loso": loso, "seconds": round(time.time() - start, 1)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    head = ("| features | model | cat F1 | urg F1 | P0 recall | P0 prec | "
            "LOSO cat F1 | LOSO urg F1 | LOSO P0 recall | LOSO P0 prec |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        h, l = r["heldout"], r["loso"]
        mark = " **(shipped)**" if r["config"] == DEFAULT_CONFIG else ""
        lines.append(
            f"| {r['config']['feature_set']} | {r['config']['model']}{mark} | "
            + " | ".join(f"{h[k]:.3f}" for k in KEYS) + " | "
            + " | ".join(f"{l[k]:.3f}" for k in KEYS) + " |"
        )
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "compare"
    if what == "cv":
        for fs in FEATURE_SETS:
            for m in MODELS:
                print(fs, m, json.dumps(cv_on_training({"feature_set": fs, "model": m})), flush=True)
    else:
        print(markdown(compare()))
