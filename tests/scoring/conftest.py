"""A QAGen trained once per test session, for tests that need real generation."""

from __future__ import annotations

import pytest

from .qagen_fixture import build_trained_qagen_dir


@pytest.fixture(scope="session")
def trained_qagen_dir(tmp_path_factory):
    return build_trained_qagen_dir(tmp_path_factory.mktemp("trained-qagen"))
