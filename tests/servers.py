"""Helpers for tests that need a real server: with CI=true a missing server fails the run."""
from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def server_missing(what: str, why: str):
    """Fail in CI, skip on a developer's machine that lacks the server."""
    message = f"{what} is not available: {why}"
    if in_ci():
        pytest.fail(message + " (CI=true: a missing server is a failure)", pytrace=False)
    pytest.skip(message)
