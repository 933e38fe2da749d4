"""Shared classifier fixtures: one model trained per test session."""
from __future__ import annotations

import pytest

from classifier import Classifier, ensure_default_model


@pytest.fixture(scope="session")
def model_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier-models")
    ensure_default_model(root)
    return root


@pytest.fixture(scope="session")
def clf(model_root) -> Classifier:
    return Classifier.load(model_root)
