"""High-level operations for the CLI and the daemon (JSON-ready results)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .evaluate import evaluate
from .store import ModelStore
from .train import (Example, fingerprint, heldout_split, load_base_examples, read_examples, train,
                    training_examples)


def heldout_fingerprint() -> str:
    return fingerprint(heldout_split(load_base_examples())[1])


def _train_and_save(store: ModelStore, extra: Sequence[Example], progress: bool,
                    config: dict | None = None) -> tuple[str, dict]:
    heldout = heldout_split(load_base_examples())[1]
    examples = training_examples() + list(extra)
    model = train(examples, progress=progress, config=config)
    metrics = evaluate(model, heldout)
    metrics["heldout_fingerprint"] = fingerprint(heldout)
    version = store.save(model, metrics, fingerprint(examples))
    return version, metrics


def ensure_default_model(root: str | Path, progress: bool = False) -> str:
    """The current version, training one on the base training split if none."""
    store = ModelStore(root)
    current = store.current()
    if current is not None and store.compatible(current):
        return current
    # None yet, or one this code cannot read (saved before an upgrade): train a new default.
    version, _ = _train_and_save(store, [], progress)
    store.use(version)
    return version


def _comparable(store: ModelStore, version: str) -> dict:
    """Held-out metrics of a version, recomputed if its stored ones were taken
    on another held-out split (e.g. the base data changed since)."""
    metrics = store.meta(version)["metrics"]
    if metrics.get("heldout_fingerprint") == heldout_fingerprint():
        return metrics
    model = store.load_model(version)
    return evaluate(model, heldout_split(load_base_examples())[1])


def train_and_maybe_promote(root: str | Path, extra_examples: Sequence[Example] = (),
                            progress: bool = True, config: dict | None = None) -> dict:
    """Train on the training examples plus `extra_examples` (agents'
    corrections), score on the held-out split, save, and make it current
    unless it is worse than the current version. `config` overrides
    train.DEFAULT_CONFIG (e.g. {"tune": False} for a quick retrain)."""
    store = ModelStore(root)
    old = store.current()
    new, metrics = _train_and_save(store, extra_examples, progress, config)
    old_metrics = _comparable(store, old) if old is not None else None
    promoted, reason = store.promote_if_not_worse(new, old, old_metrics=old_metrics)
    return {
        "version": new,
        "previous": old,
        "promoted": promoted,
        "reason": reason,
        "current": store.current(),
        "n_extra_examples": len(extra_examples),
        "metrics": _summary(metrics),
    }


def _summary(metrics: dict) -> dict:
    keys = ("n", "category_macro_f1", "urgency_macro_f1", "p0_recall", "p0_precision")
    return {k: metrics[k] for k in keys}


def evaluate_version(root: str | Path, version: str | None = None,
                     csv_path: str | Path | None = None,
                     review_threshold: float | None = None) -> dict:
    """Metrics of a stored version (current by default) on the held-out
    split, or on any CSV with columns text,category,urgency; the review
    figures at `review_threshold` (the classifier's default if None)."""
    store = ModelStore(root)
    version = version or store.current()
    if version is None:
        raise FileNotFoundError(f"no current model in {root}")
    examples = read_examples(csv_path) if csv_path else heldout_split(load_base_examples())[1]
    metrics = evaluate(store.load_model(version), examples, review_threshold)
    metrics["version"] = version
    metrics["data"] = str(csv_path) if csv_path else "heldout"
    return metrics
