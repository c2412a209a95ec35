"""Shared test settings: hypothesis never times examples, and is derandomized in CI (CI=true). Shared fixtures."""

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=60, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def trace_file(tmp_path):
    """A valid synthetic trace file (tests/trace_data.py)."""
    from trace_data import write_trace

    return write_trace(tmp_path / "t.npz")
