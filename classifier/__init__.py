"""Complaint classifier: category and urgency suggestions for agents.

Pure and synchronous; imports nothing else of kesu.

    clf = Classifier.load(model_dir)          # the version marked current
    clf.suggest("外卖里吃出虫子，拉肚子了")   # -> Suggestion(category=..., urgency="P0", ...)
"""
from .evaluate import evaluate
from .labels import CATEGORIES, CATEGORY_LABELS, URGENCIES, URGENCY_LABELS
from .model import TrainedModel
from .ops import ensure_default_model, evaluate_version, train_and_maybe_promote
from .store import ModelStore
from .suggest import Classifier, Suggestion
from .train import Example, fingerprint, heldout_split, load_base_examples, read_examples, train

__all__ = [
    "CATEGORIES", "CATEGORY_LABELS", "URGENCIES", "URGENCY_LABELS",
    "Classifier", "Suggestion", "TrainedModel", "ModelStore", "Example",
    "load_base_examples", "read_examples", "heldout_split", "fingerprint", "train", "evaluate",
    "ensure_default_model", "train_and_maybe_promote", "evaluate_version",
]
