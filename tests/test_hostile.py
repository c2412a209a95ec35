"""Hostile input never hangs, never exhausts memory, never prints a traceback.

The corpus (tests/hostile/cases.py) runs every case in a subprocess under an address-space, CPU-time and
file-size limit, a few at a time (tests/hostile/runner.py), and each case is one test here: exit status 2 and
one line for a command, BrwError with a one-line message for a Python call; nothing written, nothing printed
besides, no warning, no traceback, little CPU time. The cases that need their own set-up (interrupts, closed
pipes, signals during a write, numbers that must come back exact) follow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hostile.cases import CASES
from hostile.runner import ENTRY, ROOT, _env, run_all, run_process, snapshot


@pytest.fixture(scope="module")
def problems():
    return run_all(CASES)


def test_the_corpus_is_large():
    assert len(CASES) >= 300
    assert {c.argv[0] for c in CASES if c.argv} >= {"frontier", "theory", "trace-info", "import-logprobs",
                                                     "compare", "bench", "realtree", "record", "policies",
                                                     "sequoia", "speedup", "sweep"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused(case, problems):
    found = problems[case.id]
    shown = " ".join(case.argv) if case.argv is not None else case.code
    assert not found, f"{shown}\n" + "\n".join(found)
