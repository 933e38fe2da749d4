"""Shared classifier fixtures: the one model trained per test session (tests/conftest.py `model_dir`)."""
from __future__ import annotations

from pathlib import Path

import pytest

from classifier import Classifier


@pytest.fixture(scope="session")
def model_root(model_dir) -> Path:
    return Path(model_dir)   # read-only for tests: a test that changes a store copies it first


@pytest.fixture(scope="session")
def clf(model_root) -> Classifier:
    return Classifier.load(model_root)
