"""Shared test settings: hypothesis never times examples, and is derandomized in CI (CI=true). Shared fixtures."""

import os

# Numba's OpenMP threads wait for work without spinning: a spinning thread burns a core that the other pytest-xdist
# worker needs (a test of many small parallel calls took 6 times the CPU and wall time it takes waiting passively).
# Set before any test module imports Numba; subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=60, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

if os.environ.get("BRW_TEST_OTHER_LIBM"):  # the suite as on another CPU (tests/other_libm.py)
    import other_libm

    other_libm.install()


@pytest.fixture
def trace_file(tmp_path):
    """A valid synthetic trace file (tests/trace_data.py)."""
    from trace_data import write_trace

    return write_trace(tmp_path / "t.npz")
