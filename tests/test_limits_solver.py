"""Boundary tests of the validation in brw/checks.py, brw/limits.py and brw/solver.py.

Each test sits exactly on a limit (the value at it treated one way, the value just past it the other) or reads
the numbers a refusal computes, so that a mutant of a comparison, a constant, an ``and``/``or``, a default or a
message's number fails a test (sims/mutation.py). Memory is never this machine's: ``available_memory`` is
monkeypatched in brw.limits and in brw.solver (which imported the name) to a size chosen so that the budget
``USABLE * have`` is an exact float (have = 5 m gives 0.8 have = 4 m exactly: the product's rounding error,
1 part in 2e16, is below half an ulp), and the costs are written out from the byte counts the code documents.
"""

import inspect
import io
import math
import os
import re
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from brw import BrwError, frontier, frontier_tree, limits, solver, threshold, threshold_tree
from brw.checks import check_count, check_seed, check_threads, whole_number, whole_numbers
from brw.kernel_law import KIND_DIRICHLET, KIND_GEM, KIND_TABLE, gem_cut, kernel_args
from brw.laws import parse_law
from brw.laws.parametric import Uniform
from brw.limits import check_numba_environment, format_bytes, largest_fitting, require

U2 = "uniform:k=2"  # a table law: width 2, one vector row, mu = log 2; its tree at x holds 2^(d+1) - 2 nodes


def _memory(monkeypatch, nbytes):
    """Say the machine has ``nbytes`` available, for brw.limits.require and for brw.solver's own checks."""
    monkeypatch.setattr(limits, "available_memory", lambda: nbytes)
    monkeypatch.setattr(solver, "available_memory", lambda: nbytes)


def _have_for(need):
    """The available memory whose usable share (USABLE = 0.8) is exactly ``need`` bytes (need a multiple of 4)."""
    assert need % 4 == 0
    have = need * 5 // 4
    assert limits.USABLE * have == need  # the premise of every boundary below
    return have


def _numba_threads(monkeypatch, n):
    """Numba's thread count as ``n`` (thread_count caps at it), whatever this machine's cores."""
    solver.thread_count(None)  # loads the kernels and Numba
    import numba

    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", n)


# ---------------------------------------------------------------------------------------------------------
# brw/checks.py


def test_whole_number_accepts_its_minimum_and_refuses_one_below_naming_both():
    assert whole_number(3, "n", minimum=3) == 3
    with pytest.raises(BrwError, match=r"^n must be a whole number >= 3, got 2$"):
        whole_number(2, "n", minimum=3)


def test_whole_number_defaults_to_a_minimum_of_one():
    assert inspect.signature(whole_number).parameters["minimum"].default == 1
    assert whole_number(1, "n") == 1
    with pytest.raises(BrwError, match=r"^n must be a whole number >= 1, got 0$"):
        whole_number(0, "n")


@pytest.mark.parametrize("value, shown", [(True, "True"), (False, "False"), (2.0, "2.0"), ("3", "'3'"),
                                          (None, "None")])
def test_whole_number_refuses_bools_floats_and_text_quoting_them(value, shown):
    with pytest.raises(BrwError, match=rf"^k must be a whole number >= 0, got {re.escape(shown)}$"):
        whole_number(value, "k", minimum=0)


def test_whole_number_takes_a_numpy_integer_and_returns_a_plain_int():
    got = whole_number(np.int64(7), "n")
    assert got == 7 and type(got) is int


def test_whole_number_quotes_a_repr_of_40_characters_whole_and_clips_41():
    with pytest.raises(BrwError, match=r"got '" + "x" * 38 + r"'$"):
        whole_number("x" * 38, "n")  # repr: 40 characters
    with pytest.raises(BrwError, match=r"\.\.\.\(41 characters\)\.\.\."):
        whole_number("x" * 39, "n")


def test_check_count_accepts_its_minimum_and_refuses_one_below_naming_both():
    assert check_count(5, "R", minimum=5) == 5
    with pytest.raises(BrwError, match=r"^R must be >= 5, got 4$"):
        check_count(4, "R", minimum=5)


def test_check_count_defaults_to_a_minimum_of_one():
    assert inspect.signature(check_count).parameters["minimum"].default == 1
    assert check_count(1, "R") == 1
    with pytest.raises(BrwError, match=r"^R must be >= 1, got 0$"):
        check_count(0, "R")


@pytest.mark.parametrize("value, shown", [(True, "True"), (np.bool_(True), "np.True_"), (2.0, "2.0"),
                                          ("2", "'2'")])
def test_check_count_refuses_what_is_not_an_int_quoting_it(value, shown):
    with pytest.raises(BrwError, match=rf"^R must be a whole number, got {re.escape(shown)}$"):
        check_count(value, "R", minimum=0)


def test_check_count_takes_numpy_integers_and_returns_a_plain_int():
    for v in (np.int32(7), np.uint8(7)):
        got = check_count(v, "R")
        assert got == 7 and type(got) is int


def test_check_seed_accepts_zero_and_refuses_minus_one():
    assert check_seed(0) == 0
    with pytest.raises(BrwError, match=r"^seed must be a whole number >= 0, got -1$"):
        check_seed(-1)


@pytest.mark.parametrize("seed, shown", [(True, "True"), (np.bool_(False), "np.False_"), (2.5, "2.5"),
                                         ("3", "'3'")])
def test_check_seed_refuses_bools_floats_and_text(seed, shown):
    with pytest.raises(BrwError, match=rf"^seed must be a whole number >= 0, got {re.escape(shown)}$"):
        check_seed(seed)


def test_check_seed_returns_a_plain_int_and_draws_one_for_none():
    got = check_seed(np.int64(12))
    assert got == 12 and type(got) is int
    drawn = check_seed(None)
    assert type(drawn) is int and drawn >= 0


def test_whole_numbers_includes_both_ends_of_its_range():
    got = whole_numbers([2, 5], "P", 2, 5)
    assert got.tolist() == [2, 5] and got.dtype == np.int64


@pytest.mark.parametrize("values", [[1], [6], [1, 6], [3, 6], [1, 3]])
def test_whole_numbers_refuses_one_past_either_end_naming_the_range(values):
    with pytest.raises(BrwError, match=rf"^P must lie in 2\.\.5 for this result, got {re.escape(repr(values))}$"):
        whole_numbers(values, "P", 2, 5)


@pytest.mark.parametrize("values", [[[2, 3]], [True], [2.0], ["2"]])
def test_whole_numbers_refuses_tables_bools_floats_and_text(values):
    with pytest.raises(BrwError, match=r"^P must be whole numbers in 2\.\.5, got "):
        whole_numbers(values, "P", 2, 5)


def test_whole_numbers_takes_a_scalar_unsigned_values_and_an_empty_list():
    assert whole_numbers(3, "P", 2, 5).tolist() == [3]
    assert whole_numbers(np.array([4], dtype=np.uint8), "P", 2, 5).dtype == np.int64
    empty = whole_numbers([], "P", 2, 5)  # numpy makes [] a float array: no value, nothing to refuse
    assert empty.size == 0 and empty.dtype == np.int64


def test_check_threads_takes_none_and_one_and_refuses_zero_and_bools():
    assert check_threads(None) is None
    assert check_threads(1) == 1
    with pytest.raises(BrwError, match=r"^threads must be >= 1, got 0$"):
        check_threads(0)
    with pytest.raises(BrwError, match=r"^threads must be a whole number, got True$"):
        check_threads(True)


# ---------------------------------------------------------------------------------------------------------
# brw/limits.py: what the machine has


def _files(monkeypatch, files):
    """brw.limits reads ``files`` (path -> text) instead of the machine's; any other path is missing."""
    def fake_open(path, *args, **kwargs):
        if path not in files:
            raise FileNotFoundError(path)
        return io.StringIO(files[path])

    monkeypatch.setattr(limits, "open", fake_open, raising=False)


def test_usable_share_is_four_fifths():
    assert limits.USABLE == 0.8


def test_meminfo_reads_its_field_in_kib_and_not_a_field_it_prefixes(monkeypatch):
    _files(monkeypatch, {"/proc/meminfo": "MemTotal:  100 kB\nMemAvailableSoon:  7 kB\nMemAvailable:  3 kB\n"})
    assert limits._meminfo("MemAvailable") == 3 * 1024
    assert limits._meminfo("MemFree") is None


@pytest.mark.parametrize("files", [{}, {"/proc/meminfo": "MemAvailable:  lots kB\n"},
                                   {"/proc/meminfo": "MemAvailable:\n"}])
def test_meminfo_is_none_without_a_readable_number(monkeypatch, files):
    _files(monkeypatch, files)
    assert limits._meminfo("MemAvailable") is None


def _cgroup(limit, current, rel="/user.slice/a:b"):
    base = "/sys/fs/cgroup" + rel
    return {"/proc/self/cgroup": f"1:cpu:/elsewhere\n0::{rel}\n", base + "/memory.max": f"{limit}\n",
            base + "/memory.current": f"{current}\n"}


def test_cgroup_room_is_its_limit_less_its_usage(monkeypatch):
    """The path holds a colon: the cgroup file's line splits at its first two colons only."""
    _files(monkeypatch, _cgroup(1000, 400))
    assert limits._cgroup_room() == 600


def test_cgroup_room_is_zero_not_negative_when_usage_passes_the_limit(monkeypatch):
    _files(monkeypatch, _cgroup(1000, 1400))
    assert limits._cgroup_room() == 0


@pytest.mark.parametrize("files", [
    _cgroup("max", 400),
    {"/proc/self/cgroup": "1:cpu:/x\n"},  # no cgroup v2 line
    {k: v for k, v in _cgroup(1000, 400).items() if not k.endswith("memory.current")},
    _cgroup(1000, "lots"),
    {},
])
def test_cgroup_room_is_none_when_unlimited_or_unknown(monkeypatch, files):
    _files(monkeypatch, files)
    assert limits._cgroup_room() is None


def _rlimit(monkeypatch, soft):
    monkeypatch.setattr(limits, "resource", SimpleNamespace(
        RLIMIT_AS=9, RLIM_INFINITY=-1, getrlimit=lambda which: (soft, -1) if which == 9 else (0, 0)))


def test_address_space_room_is_the_soft_limit_less_what_is_mapped(monkeypatch):
    _rlimit(monkeypatch, 10 * 2**20)
    _files(monkeypatch, {"/proc/self/status": "Name: x\nVmPeak:  9000 kB\nVmSize:  4096 kB\n"})
    assert limits._address_space_room() == 6 * 2**20


def test_address_space_room_is_zero_not_negative_and_none_when_unlimited(monkeypatch):
    _files(monkeypatch, {"/proc/self/status": "VmSize:  4096 kB\n"})
    _rlimit(monkeypatch, 2**20)
    assert limits._address_space_room() == 0
    _rlimit(monkeypatch, -1)
    assert limits._address_space_room() is None


def test_address_space_room_counts_nothing_mapped_when_status_is_unreadable(monkeypatch):
    _files(monkeypatch, {})
    _rlimit(monkeypatch, 5000)
    assert limits._address_space_room() == 5000


@pytest.mark.parametrize("rooms, expect", [((100, None, 50), 50), ((100, 70, None), 70), ((None, 80, 90), 80),
                                           ((30, 70, 90), 30)])
def test_available_memory_is_the_least_room_known(monkeypatch, rooms, expect):
    mem, cg, asr = rooms
    monkeypatch.setattr(limits, "_meminfo", lambda field: mem if field == "MemAvailable" else None)
    monkeypatch.setattr(limits, "_cgroup_room", lambda: cg)
    monkeypatch.setattr(limits, "_address_space_room", lambda: asr)
    assert limits.available_memory() == expect


def test_available_memory_falls_back_on_physical_memory_when_nothing_is_known(monkeypatch):
    monkeypatch.setattr(limits, "_meminfo", lambda field: None)
    monkeypatch.setattr(limits, "_cgroup_room", lambda: None)
    monkeypatch.setattr(limits, "_address_space_room", lambda: None)
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 1000}[name])
    assert limits.available_memory() == 4096 * 1000


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (0.4, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (2**20 - 1, "1024.0 KiB"),
    (2**20, "1.0 MiB"), (16 * 2**30, "16.0 GiB"), (2**40, "1.0 TiB"), (2**50, "1.0 PiB"), (2**60 - 2**40, "1024.0 PiB"),
    (2**60, "1 EiB"), (1.5 * 2**60, "1.5 EiB"), (1234.5 * 2**60, "1.23e+03 EiB"), (-5, "-5 B"), (-2048, "-2.0 KiB"),
    (math.inf, "an unbounded amount"), (-math.inf, "an unbounded amount"), (math.nan, "an unbounded amount"),
])
def test_format_bytes_changes_unit_at_exactly_1024(n, text):
    assert format_bytes(n) == text


def test_largest_fitting_agrees_with_a_plain_search_on_every_small_range():
    """cost(v) = v: the largest v in [lo, hi] with v <= budget, lo - 1 when none; budgets on and between values."""
    for lo in range(4):
        for hi in range(lo, 13):
            for budget in [b / 2 for b in range(-2, 28)]:
                fits = [v for v in range(lo, hi + 1) if v <= budget]
                assert largest_fitting(float, lo, hi, budget) == (fits[-1] if fits else lo - 1), (lo, hi, budget)


def test_largest_fitting_finds_a_step_in_a_wide_range():
    assert largest_fitting(lambda v: 0.0 if v <= 777 else 1.0, 1, 2**30, 0.0) == 777


def test_require_accepts_a_cost_exactly_at_the_usable_memory_and_refuses_one_byte_more(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 1280)  # usable: exactly 1024 bytes
    require("n", 1024, float, what="w")
    with pytest.raises(BrwError, match=r"^w with n=1025 needs about 1\.0 KiB of memory but 1\.2 KiB is available; "
                                       r"at most n=1024 fits$"):
        require("n", 1025, float, what="w")


def test_require_names_the_largest_value_that_fits(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 1280)
    with pytest.raises(BrwError, match=r"^w with n=5000 needs about 48\.8 KiB of memory but 1\.2 KiB is available; "
                                       r"at most n=102 fits$"):
        require("n", 5000, lambda v: 10.0 * v, what="w")


def test_require_searches_from_its_minimum_which_defaults_to_one(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 1280)
    assert inspect.signature(require).parameters["minimum"].default == 1
    with pytest.raises(BrwError, match=r"at most n=1 fits$"):  # cost(1) = 1000 <= 1024
        require("n", 50, lambda v: 1000.0 * v, what="w")
    with pytest.raises(BrwError, match=r"not even n=1 fits$"):  # cost(1) = 1100
        require("n", 50, lambda v: 1000.0 * v + 100, what="w")
    with pytest.raises(BrwError, match=r"at most n=20 fits$"):  # cost(20) = 1000, the minimum itself
        require("n", 50, lambda v: 50.0 * v, what="w", minimum=20)
    with pytest.raises(BrwError, match=r"not even n=20 fits$"):  # cost(20) = 1040
        require("n", 50, lambda v: 52.0 * v, what="w", minimum=20)


def test_require_appends_its_hint_only_when_not_even_the_minimum_fits(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 1280)
    assert inspect.signature(require).parameters["hint"].default == ""
    with pytest.raises(BrwError, match=r"not even n=1 fits \(shrink m\)$"):
        require("n", 5, lambda v: 2000.0, what="w", hint="shrink m")
    with pytest.raises(BrwError, match=r"at most n=4 fits$"):
        require("n", 2000, lambda v: 256.0 * v, what="w", hint="shrink m")


def test_require_takes_what_minimum_and_hint_by_keyword_only():
    params = inspect.signature(require).parameters
    assert [p for p in params if params[p].kind is inspect.Parameter.KEYWORD_ONLY] == ["what", "minimum", "hint"]
    with pytest.raises(TypeError):
        require("n", 1, float, "w")


@pytest.mark.parametrize("value", [None, "1", " 3 ", "64"])
def test_numba_environment_accepts_unset_and_counts_of_one_or_more(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("NUMBA_NUM_THREADS", value)
    assert check_numba_environment() is None


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5", ""])
def test_numba_environment_refuses_zero_negatives_and_text_quoting_it(monkeypatch, value):
    monkeypatch.setenv("NUMBA_NUM_THREADS", value)
    with pytest.raises(BrwError, match=rf"^the environment variable NUMBA_NUM_THREADS={re.escape(repr(value))} must "
                                       r"be a whole number >= 1 \(or unset\)$"):
        check_numba_environment()


def test_numba_environment_quotes_40_characters_whole_and_clips_41(monkeypatch):
    monkeypatch.setenv("NUMBA_NUM_THREADS", "x" * 40)
    with pytest.raises(BrwError, match="NUMBA_NUM_THREADS='" + "x" * 40 + "' must"):
        check_numba_environment()
    monkeypatch.setenv("NUMBA_NUM_THREADS", "x" * 41)
    with pytest.raises(BrwError, match=r"\.\.\.\(41 characters\)\.\.\."):
        check_numba_environment()


# ---------------------------------------------------------------------------------------------------------
# brw/solver.py: keys, threads, chunks


def test_root_keys_takes_zero_replicates_and_refuses_negative_counts():
    assert root_keys_len(0) == 0
    with pytest.raises(BrwError, match=r"^replicates must be >= 0, got -1$"):
        solver.root_keys(1, -1)
    with pytest.raises(BrwError, match=r"^first must be >= 0, got -1$"):
        solver.root_keys(1, 2, -1)
    with pytest.raises(BrwError, match=r"^seed must be a whole number >= 0, got -1$"):
        solver.root_keys(-1, 2)


def root_keys_len(n):
    keys = solver.root_keys(1, n)
    assert keys.dtype == np.uint64
    return keys.size


def test_root_keys_start_at_replicate_first_which_defaults_to_zero():
    assert inspect.signature(solver.root_keys).parameters["first"].default == 0
    keys = solver.root_keys(5, 3)
    assert keys.tolist() == [int(np.random.SeedSequence(5, spawn_key=(j,)).generate_state(1, np.uint64)[0])
                             for j in range(3)]
    assert solver.root_keys(5, 2, 1).tolist() == keys[1:].tolist()


def test_thread_count_caps_at_numbas_count_and_takes_it_for_none(monkeypatch):
    _numba_threads(monkeypatch, 3)
    assert [solver.thread_count(t) for t in (None, 1, 2, 3, 4, 10**6)] == [3, 1, 2, 3, 3, 3]
    with solver.kernel_threads() as n:
        assert n == 3
    with solver.kernel_threads(2) as n:
        assert n == 2


def test_thread_count_refuses_zero_threads():
    with pytest.raises(BrwError, match=r"^threads must be >= 1, got 0$"):
        solver.thread_count(0)


def _recorder():
    calls = []
    lock = threading.Lock()

    def kernel(a, b, lo, hi):
        assert (a, b) == ("x", 7)
        with lock:
            calls.append((lo, hi))

    return kernel, calls


@pytest.mark.parametrize("replicates, threads, step", [
    (64, 2, 2), (93, 2, 2), (96, 2, 3), (65, 2, 2), (10, 2, 1), (100, 3, 2), (95, 3, 1),
])
def test_run_replicates_hands_out_ranges_of_a_sixteenth_of_a_threads_share(replicates, threads, step):
    """step = max(1, replicates // (16 threads)); the last range ends at replicates."""
    kernel, calls = _recorder()
    solver.run_replicates(kernel, replicates, threads, "x", 7)
    assert sorted(calls) == [(lo, min(lo + step, replicates)) for lo in range(0, replicates, step)]


@pytest.mark.parametrize("replicates, threads", [(5, 1), (5, 0), (1, 4), (0, 3)])
def test_run_replicates_calls_once_in_the_calling_thread_for_one_thread_or_one_replicate(monkeypatch, replicates,
                                                                                          threads):
    """threads = max(1, min(threads, replicates)): one thread starts no helper and makes one call."""
    started = []

    class Counting(threading.Thread):
        def __init__(self, *a, **k):
            started.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(threading, "Thread", Counting)
    kernel, calls = _recorder()
    solver.run_replicates(kernel, replicates, threads, "x", 7)
    assert calls == [(0, replicates)] and not started


def test_run_replicates_starts_one_helper_less_than_its_threads(monkeypatch):
    started = []

    class Counting(threading.Thread):
        def __init__(self, *a, **k):
            started.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(threading, "Thread", Counting)
    kernel, calls = _recorder()
    solver.run_replicates(kernel, 100, 3, "x", 7)
    assert len(started) == 2 and len(calls) == 50


@pytest.mark.parametrize("threads", [1, 2])
def test_run_replicates_raises_what_a_range_raised(threads):
    def kernel(lo, hi):
        if lo <= 40 < hi:
            raise ZeroDivisionError(f"range {lo}")

    with pytest.raises(ZeroDivisionError, match="range"):
        solver.run_replicates(kernel, 64, threads)


@pytest.mark.parametrize("replicates, pmax, threads, chunk", [
    (10**6, 1, 1, 2**16), (10**6, 0, 1, 2**16), (10**6, 2**16, 1, 4), (10**6, 2**14, 1, 4), (10**6, 2**13, 1, 8),
    (10**6, 12288, 1, 6), (10**6, 2**13 + 1, 1, 8), (10**6, 2**16, 3, 12), (10**6, 12288, 2, 8), (5, 1, 1, 5),
    (3, 2**16, 4, 3), (0, 1, 1, 1),
])
def test_chunk_size_is_four_per_thread_and_at_least_2_to_the_16_nodes(replicates, pmax, threads, chunk):
    """max(1, min(replicates, max(4 threads, ceil(2^16 / max(pmax, 1))))): 12288 nodes make ceil(5.33) = 6."""
    assert solver.chunk_size(replicates, pmax, threads) == chunk


@pytest.mark.parametrize("mu, pmax, start", [
    (2.0, 3, math.log(2.0 * 4) + 0.05 + 3.0 / math.sqrt(3)),
    (1e-3, 8, math.log(1e-3 * 9) + 0.05 + 3.0 / math.sqrt(8)),
    (1e-4, 8, math.log(1e-3 * 9) + 0.05 + 3.0 / math.sqrt(8)),  # mu floored at 1e-3
    (0.0, 1, math.log(1e-3 * 2) + 0.05 + 3.0),
])
def test_frontier_start_is_log_mu_p_plus_one_and_its_margin(mu, pmax, start):
    """The same operations in the same order as the code: equal to the last bit."""
    assert solver.frontier_start(SimpleNamespace(mu=mu), pmax) == start


# ---------------------------------------------------------------------------------------------------------
# brw/solver.py: the size of a law's vectors and sticks


def test_vector_rows_are_one_for_table_laws_and_a_stack_of_256_otherwise():
    assert solver._vector_rows(KIND_TABLE) == 1
    assert solver._vector_rows(KIND_DIRICHLET) == solver._vector_rows(KIND_GEM) == 256 == solver.STACK_LEVELS


def test_a_drawn_vector_costs_a_row_per_stack_level_and_thread(monkeypatch):
    """dirichlet k=8 on one thread: 8 k bytes per level, 256 levels: 16384 bytes, exactly the usable memory."""
    law = parse_law("dirichlet:alpha=0.5,k=8")
    _memory(monkeypatch, _have_for(16384))
    solver._check_vector_size(law, 1, "a frontier")
    with pytest.raises(BrwError, match=r"^a frontier of the dirichlet law with k=8 needs about 32\.0 KiB of memory "
                                       r"but 20\.0 KiB is available; at most k=4 fits$"):
        solver._check_vector_size(law, 2, "a frontier")
    _memory(monkeypatch, _have_for(16384) - 1)
    with pytest.raises(BrwError, match=r"^a frontier of the dirichlet law with k=8 needs about 16\.0 KiB of memory "
                                       r"but 20\.0 KiB is available; at most k=7 fits$"):
        solver._check_vector_size(law, 1, "a frontier")


def test_a_table_vector_costs_itself_and_one_buffer_row_per_thread(monkeypatch):
    """uniform k=16: k (8 + 8 threads) bytes: 256 on one thread, 384 on two."""
    law = parse_law("uniform:k=16")
    _memory(monkeypatch, _have_for(256))
    solver._check_vector_size(law, 1, "a threshold tree")
    with pytest.raises(BrwError, match=r"^a threshold tree of the uniform law with k=16 needs about 384 B .* "
                                       r"at most k=10 fits$"):
        solver._check_vector_size(law, 2, "a threshold tree")
    _memory(monkeypatch, _have_for(256) - 1)
    with pytest.raises(BrwError, match=r"with k=16 needs about 256 B of memory but 319 B is available; "
                                       r"at most k=15 fits$"):
        solver._check_vector_size(law, 1, "a threshold tree")


def test_a_law_without_a_whole_k_has_no_vector_check(monkeypatch):
    _memory(monkeypatch, 1)
    for spec in ("fixed:p=0.7/0.3", "gem:theta=2"):
        solver._check_vector_size(parse_law(spec), 4, "a frontier")


@pytest.mark.parametrize("call, what", [
    (lambda: frontier("dirichlet:alpha=0.5,k=8", 10, threads=1), "a frontier"),
    (lambda: frontier_tree("dirichlet:alpha=0.5,k=8", 10), "a frontier tree"),
    (lambda: threshold("dirichlet:alpha=0.5,k=8", [1.0], threads=1), "a threshold tree"),
    (lambda: threshold_tree("dirichlet:alpha=0.5,k=8", 1.0), "a threshold tree"),
])
def test_each_entry_point_checks_the_vector_first_naming_itself(monkeypatch, call, what):
    _memory(monkeypatch, _have_for(16384) - 1)
    with pytest.raises(BrwError, match=rf"^{what} of the dirichlet law with k=8 needs about 16\.0 KiB .* "
                                       r"at most k=7 fits$"):
        call()


def test_the_tree_functions_check_the_vector_for_one_thread(monkeypatch):
    """Exactly the memory one thread's rows need: the single-tree functions run (threshold and frontier would
    refuse it for two threads)."""
    _numba_threads(monkeypatch, 4)
    _memory(monkeypatch, _have_for(16384))
    assert len(frontier_tree("dirichlet:alpha=0.5,k=8", 1, seed=0)) == 1
    assert threshold_tree("dirichlet:alpha=0.5,k=8", 0.5, seed=0).position.size >= 0
    with pytest.raises(BrwError, match=r"at most k=4 fits"):
        threshold("dirichlet:alpha=0.5,k=8", [0.5], seed=0, threads=2)


def _gem(theta, cut=10.0):
    law = parse_law(f"gem:theta={theta}")
    return law, kernel_args(law, cut)


def test_sticks_that_fill_the_usable_memory_exactly_fit_and_one_byte_less_is_refused(monkeypatch):
    """gem:theta=2 to x = 10 breaks 105 sticks a node, 8 bytes each per level (256) and thread: 215040 bytes."""
    law, args = _gem(2)
    assert args.width == 105
    _memory(monkeypatch, _have_for(105 * 2048))
    solver._check_sticks(law, args, 1, "a threshold tree")
    with pytest.raises(BrwError, match=r"breaks about 105 sticks per node, which need about 420\.0 KiB"):
        solver._check_sticks(law, args, 2, "a threshold tree")
    _memory(monkeypatch, _have_for(105 * 2048) - 1)
    with pytest.raises(BrwError, match=r"^a threshold tree of gem:theta=2 breaks about 105 sticks per node, which need "
                                       r"about 210\.0 KiB of memory but 262\.5 KiB is available; at most theta=1\.97 "
                                       r"fits \(theta=2 given\)$"):
        solver._check_sticks(law, args, 1, "a threshold tree")


def test_the_largest_theta_named_is_the_largest_that_fits(monkeypatch):
    """1000 sticks fit: lam + 12 sqrt(lam) + 32 = 1000 gives lam = 659.8, theta = lam / cut = 66, whose width is
    exactly 1000 (it fits); theta = 67 breaks 1012 sticks."""
    _memory(monkeypatch, _have_for(1000 * 2048))
    law, args = _gem(66)
    assert args.width == 1000
    solver._check_sticks(law, args, 1, "a threshold tree")
    law, args = _gem(67)
    with pytest.raises(BrwError, match=r"breaks about 1\.01e\+03 sticks .* at most theta=66 fits \(theta=67 given\)$"):
        solver._check_sticks(law, args, 1, "a threshold tree")


@pytest.mark.parametrize("sticks, theta", [(1000, "66"), (40, "0.0401"), (32, "0"), (10, "0")])
def test_the_largest_theta_solves_lam_plus_12_sqrt_lam_plus_32_equal_to_the_sticks_that_fit(monkeypatch, sticks,
                                                                                            theta):
    """theta = lam / cut, cut = 10: 40 sticks give lam = ((-12 + sqrt(176)) / 2)^2 = 0.401; 32 or fewer none."""
    _memory(monkeypatch, _have_for(sticks * 2048))
    law, args = _gem(100)
    with pytest.raises(BrwError, match=rf"at most theta={re.escape(theta)} fits \(theta=100 given\)$"):
        solver._check_sticks(law, args, 1, "a frontier")


def test_a_mixture_names_its_largest_theta(monkeypatch):
    _memory(monkeypatch, 1)
    law = parse_law("gemmix:s=0.9/0.2,theta=0.5/6,w=0.3/0.7")
    with pytest.raises(BrwError, match=r"\(theta=6 given\)$"):
        solver._check_sticks(law, kernel_args(law, 10.0), 1, "a frontier")


def test_only_stick_breaking_laws_have_their_sticks_checked(monkeypatch):
    laws = [parse_law(spec) for spec in ("dirichlet:alpha=0.5,k=8", U2)]
    args = [kernel_args(law, 10.0) for law in laws]  # before memory is scarce: the uniform law checks its vector
    _memory(monkeypatch, 1)
    for law, a in zip(laws, args):
        solver._check_sticks(law, a, 4, "a frontier")


def test_frontier_tree_checks_its_sticks_for_one_thread(monkeypatch):
    law = parse_law("gem:theta=2")
    width = kernel_args(law, gem_cut(law, 10)).width
    _memory(monkeypatch, _have_for(width * 2048))
    assert len(frontier_tree(law, 10, seed=0)) == 10
    _memory(monkeypatch, _have_for(width * 2048) - 1)
    with pytest.raises(BrwError, match=rf"^a frontier tree of gem:theta=2 breaks about {width} sticks"):
        frontier_tree(law, 10, seed=0)


def test_threshold_tree_checks_its_sticks_for_one_thread(monkeypatch):
    law, args = _gem(2, cut=3.0)
    _memory(monkeypatch, _have_for(args.width * 2048))
    assert threshold_tree(law, 3.0, seed=0).position.max() <= 3.0
    _memory(monkeypatch, _have_for(args.width * 2048) - 1)
    with pytest.raises(BrwError, match=rf"^a threshold tree of gem:theta=2 breaks about {args.width} sticks"):
        threshold_tree(law, 3.0, seed=0)


@pytest.mark.parametrize("entry", ["frontier", "threshold"])
def test_frontier_and_threshold_check_sticks_and_vectors_for_each_thread(monkeypatch, entry):
    """Memory for one thread's sticks (or vector rows) refuses two threads, naming theta (or k)."""
    def call(law):
        if entry == "frontier":
            return frontier(law, 10, seed=0, threads=2)
        return threshold(law, [3.0], seed=0, threads=2)

    _numba_threads(monkeypatch, 4)
    law = parse_law("gem:theta=2")
    width = kernel_args(law, gem_cut(law, 10) if entry == "frontier" else 3.0).width
    _memory(monkeypatch, _have_for(width * 2048))
    what = "a frontier" if entry == "frontier" else "a threshold tree"
    with pytest.raises(BrwError, match=rf"^{what} of gem:theta=2 breaks about {width} sticks per node.*"
                                       r"\(theta=2 given\)$"):
        call(law)
    _memory(monkeypatch, _have_for(16384))  # one thread's rows of dirichlet k=8
    with pytest.raises(BrwError, match=r"of the dirichlet law with k=8 needs about 32\.0 KiB .* at most k=4 fits$"):
        call(parse_law("dirichlet:alpha=0.5,k=8"))


# ---------------------------------------------------------------------------------------------------------
# brw/solver.py: the frontier


@pytest.mark.parametrize("kwargs, words", [
    (dict(pmax=0), r"^P must be >= 1, got 0$"),
    (dict(pmax=10, replicates=0), r"^replicates must be >= 1, got 0$"),
    (dict(pmax=10, first_replicate=-1), r"^first_replicate must be >= 0, got -1$"),
    (dict(pmax=10, threads=0), r"^threads must be >= 1, got 0$"),
    (dict(pmax=10, keep=[[1, 2]]), r"^keep must be a list of whole numbers P, got \[\[1, 2\]\]$"),
    (dict(pmax=10, keep=[2.0]), r"^keep must be a list of whole numbers P, got \[2\.0\]$"),
    (dict(pmax=10, keep="5"), r"^keep must be a list of whole numbers P, got '5'$"),
    (dict(pmax=10, keep=[0]), r"^keep values must lie in 1\.\.pmax = 1\.\.10, got \[0\]$"),
    (dict(pmax=10, keep=[11]), r"^keep values must lie in 1\.\.pmax = 1\.\.10, got \[11\]$"),
    (dict(pmax=10, keep=[5, 11]), r"^keep values must lie in 1\.\.pmax = 1\.\.10, got \[5, 11\]$"),
])
def test_frontier_refuses_each_argument_at_its_boundary(kwargs, words):
    with pytest.raises(BrwError, match=words):
        frontier(U2, seed=1, **kwargs)


def test_frontier_keeps_p_of_1_and_pmax_in_the_order_given_and_a_scalar():
    res = frontier(U2, 10, replicates=2, seed=1, first_replicate=0, keep=[10, 1])
    assert res.keep == (10, 1) and res.replicate_values.shape == (2, 2)
    assert np.array_equal(res.replicate_values[0], res.accepted[[9, 0]])  # a deterministic law: every tree alike
    assert frontier(U2, 10, seed=1, keep=np.uint8(3)).keep == (3,)


def test_an_empty_keep_keeps_nothing():
    res = frontier(U2, 10, seed=1, keep=[])
    assert res.keep == () and res.replicate_values is None
    assert solver._check_keep(None, 10).tolist() == []


def test_one_replicate_has_no_standard_error_and_two_have_one():
    assert np.isnan(frontier(U2, 5, replicates=1, seed=1).stderr).all()
    two = frontier(U2, 5, replicates=2, seed=1)
    assert np.array_equal(two.stderr, np.zeros(5)) and np.array_equal(two.accepted, frontier(U2, 5, seed=1).accepted)


# The frontier of uniform:k=2 at P = 100 on one thread: a heap of (P + P // 4 + 64) 12 + 256 x 48 + 1 x 2 x 8
# = 14572 bytes and 40 bytes per P: 18572 bytes (18508 at P = 99); each replicate adds 24 bytes and 8 per kept P.
HEAP_100 = (100 + 25 + 64) * 12 + 256 * 48 + 2 * 8


def test_frontier_fits_p_exactly_at_the_usable_memory_and_names_the_p_that_fits_below(monkeypatch):
    _memory(monkeypatch, _have_for(HEAP_100 + 4000) - 1)
    with pytest.raises(BrwError, match=r"^a frontier of uniform:k=2 with P=100 needs about 18\.1 KiB of memory but "
                                       r"22\.7 KiB is available; at most P=99 fits$"):
        frontier(U2, 100, seed=1, threads=1)
    _memory(monkeypatch, _have_for(HEAP_100 + 4000))  # P fits; one replicate's 24 bytes do not
    with pytest.raises(BrwError, match=r"^a frontier of uniform:k=2 with replicates=1 needs .* not even replicates=1 "
                                       r"fits$"):
        frontier(U2, 100, seed=1, threads=1)


def test_frontier_p_costs_a_heap_per_thread(monkeypatch):
    _numba_threads(monkeypatch, 4)
    _memory(monkeypatch, _have_for(2 * HEAP_100 + 4000) - 1)
    with pytest.raises(BrwError, match=r"with P=100 needs about 32\.4 KiB .* at most P=99 fits$"):
        frontier(U2, 100, seed=1, threads=2)
    _memory(monkeypatch, _have_for(2 * HEAP_100 + 4000 + 24))
    assert frontier(U2, 100, seed=1, threads=2).pmax == 100
    _memory(monkeypatch, _have_for(2 * HEAP_100 + 4000 + 24) - 4)
    with pytest.raises(BrwError, match=r"with replicates=1 needs"):
        frontier(U2, 100, seed=1, threads=2)


@pytest.mark.parametrize("replicates, keep, per", [(1, None, 24), (2, None, 24), (2, [1, 2], 40)])
def test_frontier_replicates_fit_exactly_at_the_usable_memory(monkeypatch, replicates, keep, per):
    need = HEAP_100 + 4000 + per * replicates
    _memory(monkeypatch, _have_for(need))
    assert frontier(U2, 100, replicates, seed=1, keep=keep, threads=1).replicates == replicates
    _memory(monkeypatch, _have_for(need) - 1)
    fits = "at most replicates=1 fits" if replicates > 1 else "not even replicates=1 fits"
    with pytest.raises(BrwError, match=rf"with replicates={replicates} needs .* {fits}$"):
        frontier(U2, 100, replicates, seed=1, keep=keep, threads=1)


def test_a_drawn_vector_adds_a_row_per_stack_level_to_the_frontiers_heap(monkeypatch):
    """dirichlet k=8: 256 rows of 8 x 8 bytes (16384) where the table law's one row of 2 had 16."""
    need = HEAP_100 - 16 + 256 * 64 + 4000
    _memory(monkeypatch, _have_for(need) - 1)
    with pytest.raises(BrwError, match=r"with P=100 needs about 34\.1 KiB .* at most P=99 fits$"):
        frontier("dirichlet:alpha=0.5,k=8", 100, seed=1, threads=1)


_RUN_REPLICATES = solver.run_replicates


def _chunks(monkeypatch, have):
    """The replicates handed to the kernels per chunk by frontier(uniform:k=2, P=100, 8 replicates, 1 thread)."""
    sizes = []
    real = _RUN_REPLICATES

    def spy(kernel, n, threads, *args):
        sizes.append(n)
        real(kernel, n, threads, *args)

    monkeypatch.setattr(solver, "run_replicates", spy)
    _memory(monkeypatch, have)
    res = frontier(U2, 100, replicates=8, seed=1, threads=1)
    return sizes, res


def test_frontier_halves_its_chunk_once_8_curves_need_more_than_half_the_memory(monkeypatch):
    """8 replicates x (100 x 8 + heap) + 32 x 100 = 126176 bytes: a chunk of 8 fits in half of 252352 bytes, and
    in half of one byte less it is halved to 4 (the results are the same)."""
    assert solver.chunk_size(8, 100, 1) == 8
    need = 8 * (100 * 8 + HEAP_100) + 32 * 100
    whole, a = _chunks(monkeypatch, 2 * need)
    halved, b = _chunks(monkeypatch, 2 * need - 1)
    assert whole == [8] and halved == [4, 4]
    assert np.array_equal(a.accepted, b.accepted)


def test_frontier_tree_fits_p_exactly_at_the_usable_memory(monkeypatch):
    """(P + 2) x 28 bytes of heap, 24 per node and the width's 8 x 2: 5272 bytes at P = 100, 5220 at 99."""
    need = 102 * 28 + 100 * 24 + 16
    _memory(monkeypatch, _have_for(need))
    assert len(frontier_tree(U2, 100, seed=1)) == 100
    _memory(monkeypatch, _have_for(need) - 1)
    with pytest.raises(BrwError, match=r"^a frontier tree of uniform:k=2 with P=100 needs about 5\.1 KiB of memory "
                                       r"but 6\.4 KiB is available; at most P=99 fits$"):
        frontier_tree(U2, 100, seed=1)


@pytest.mark.parametrize("kwargs, words", [
    (dict(P=0), r"^P must be >= 1, got 0$"),
    (dict(P=3, replicate=-1), r"^replicate must be >= 0, got -1$"),
    (dict(P=3, seed=-1), r"^seed must be a whole number >= 0, got -1$"),
])
def test_frontier_tree_refuses_each_argument_at_its_boundary(kwargs, words):
    with pytest.raises(BrwError, match=words):
        frontier_tree(U2, **{"seed": 1, **kwargs})


def test_frontier_tree_replicate_defaults_to_zero():
    law = "dirichlet:alpha=0.5,k=8"
    assert inspect.signature(frontier_tree).parameters["replicate"].default == 0
    assert np.array_equal(frontier_tree(law, 20, seed=3).position, frontier_tree(law, 20, seed=3, replicate=0).position)


# ---------------------------------------------------------------------------------------------------------
# brw/solver.py: threshold levels and counts


@pytest.mark.parametrize("xs", [0.0, [0.0], [0, 1], np.array([0.5, 2.0], dtype=np.float32), np.uint8(3), [1.0, 1.5]])
def test_threshold_levels_take_numbers_from_zero_up(xs):
    got = solver._check_levels(xs)
    assert got.dtype == np.float64 and got.ndim == 1 and got.tolist() == np.atleast_1d(xs).astype(float).tolist()


@pytest.mark.parametrize("xs, shown", [("0", "'0'"), (True, "True"), ([True, False], "[True, False]"), (None, "None"),
                                       ([1j], "[1j]"), ([1, "2"], "[1, '2']"), ({1: 2}, "{1: 2}")])
def test_threshold_levels_refuse_what_is_not_a_number_quoting_it(xs, shown):
    with pytest.raises(BrwError, match=rf"^threshold levels x must be numbers, got {re.escape(shown)}$"):
        solver._check_levels(xs)


class _Unconvertible:
    """An object that numpy cannot make an array of: its conversion raises TypeError."""

    def __array__(self, *args, **kwargs):
        raise TypeError("not an array")

    def __repr__(self):
        return "<unconvertible>"


def test_threshold_levels_refuse_an_object_whose_conversion_raises_type_error():
    with pytest.raises(BrwError, match=r"^threshold levels x must be numbers, got <unconvertible>$"):
        solver._check_levels(_Unconvertible())


def test_threshold_levels_quote_60_characters_whole_and_clip_61():
    with pytest.raises(BrwError, match="got '" + "a" * 58 + "'$"):
        solver._check_levels("a" * 58)
    with pytest.raises(BrwError, match=r"\.\.\.\(61 characters\)\.\.\."):
        solver._check_levels("a" * 59)


@pytest.mark.parametrize("xs", [[], [[1.0, 2.0]], [math.nan], [1.0, math.inf], [-1e-300], [-1.0, 2.0]])
def test_threshold_levels_refuse_empty_tables_non_finite_and_negative_levels(xs):
    with pytest.raises(BrwError, match=r"^threshold levels x must be finite numbers >= 0$"):
        solver._check_levels(xs)


@pytest.mark.parametrize("xs", [[1.0, 1.0], [2.0, 1.0], [0.0, 1.0, 1.0]])
def test_threshold_levels_must_strictly_increase(xs):
    with pytest.raises(BrwError, match=r"^threshold levels x must be strictly increasing$"):
        solver._check_levels(xs)


def test_mean_count_curve_looks_no_further_than_40_nats_and_ends_at_x():
    law = parse_law("dirichlet:alpha=0.5,k=8")
    grid, m = solver._mean_count_curve(law, 50.0)
    assert grid[-1] == 50.0 and grid[-2] == 40.0 and m[-1] == m[-2]
    assert np.all(m >= grid / law.mu)  # Wald's bound holds everywhere
    with pytest.raises(ValueError):
        grid[0] = 1.0  # shared by later calls: read-only
    with pytest.raises(ValueError):
        m[0] = 1.0


def test_mean_count_curve_falls_back_on_walds_bound_where_the_renewal_numerics_fail(monkeypatch):
    """m(x) >= x / mu: uniform:k=2 at x = 7 without its renewal grid is bounded by 7 / log 2 alone."""
    from brw import theory

    def fails(*args, **kwargs):
        raise BrwError("no grid")

    monkeypatch.setattr(theory, "renewal", fails)
    grid, m = solver._mean_count_curve.__wrapped__(parse_law(U2), 7.0)  # uncached
    assert grid.tolist() == [7.0] and m.tolist() == [7.0 / math.log(2)]


def _curve(monkeypatch, grid, m):
    """The threshold's lower bound of m(x) as given, at any x."""
    def fake(law, x):
        return np.array(grid, dtype=float), np.array(m, dtype=float)

    fake.__wrapped__ = fake
    monkeypatch.setattr(solver, "_mean_count_curve", fake)


def test_check_nodes_accepts_a_mean_count_equal_to_max_nodes_and_refuses_one_node_more(monkeypatch):
    """m(x) counts the root, max_nodes does not (nor does a tree): m = 31 is 30 nodes, which max_nodes=30 holds."""
    _curve(monkeypatch, [1.0, 2.0, 3.0], [11.0, 21.0, 31.0])
    law = parse_law(U2)
    assert solver._check_nodes(law, 3.0, 30) == 31.0
    with pytest.raises(BrwError, match=r"^the threshold tree of uniform:k=2 at x=3 holds at least 30 nodes besides the "
                                       r"root on average \(identity 3\), more than max_nodes=29; at most x=2 fits$"):
        solver._check_nodes(law, 3.0, 29)


@pytest.mark.parametrize("max_nodes, best", [(20, "at most x=2 fits"), (19, "at most x=1 fits"),
                                             (10, "at most x=1 fits"), (9, "no level fits")])
def test_check_nodes_names_the_last_level_whose_count_fits(monkeypatch, max_nodes, best):
    _curve(monkeypatch, [1.0, 2.0, 3.0], [11.0, 21.0, 31.0])
    with pytest.raises(BrwError, match=rf"max_nodes={max_nodes}; {best}$"):
        solver._check_nodes(parse_law(U2), 3.0, max_nodes)


def test_check_nodes_prints_the_count_and_levels_to_their_digits(monkeypatch):
    _curve(monkeypatch, [1.23456, 2.5], [10.0, 12345.678])
    with pytest.raises(BrwError, match=r"at x=2\.5 holds at least 1\.23e\+04 nodes .* at most x=1\.235 fits$"):
        solver._check_nodes(parse_law(U2), 2.5, 100)


def test_check_nodes_holds_a_tree_to_the_memory_at_its_bytes_per_node(monkeypatch):
    """16 bytes a node: 600 bytes available (480 usable) hold 30 nodes, 599 do not, and the message names memory."""
    _curve(monkeypatch, [1.0, 2.0, 3.0], [11.0, 21.0, 31.0])
    law = parse_law(U2)
    _memory(monkeypatch, 600)
    assert solver._check_nodes(law, 3.0, 10**9, bytes_per_node=16.0) == 31.0
    _memory(monkeypatch, 599)
    with pytest.raises(BrwError, match=r"at least 30 nodes besides the root on average \(identity 3\), more than the "
                                       r"479 B of memory available hold; at most x=2 fits$"):
        solver._check_nodes(law, 3.0, 10**9, bytes_per_node=16.0)
    with pytest.raises(BrwError, match=r"more than max_nodes=20; at most x=2 fits$"):  # the smaller limit is named
        solver._check_nodes(law, 3.0, 20, bytes_per_node=16.0)


def test_check_nodes_ignores_memory_without_bytes_per_node(monkeypatch):
    _curve(monkeypatch, [1.0, 2.0, 3.0], [11.0, 21.0, 31.0])
    _memory(monkeypatch, 1)
    assert inspect.signature(solver._check_nodes).parameters["bytes_per_node"].default == 0.0
    assert solver._check_nodes(parse_law(U2), 3.0, 30) == 31.0


def test_check_nodes_refuses_a_law_with_mu_zero_and_takes_any_positive_mu(monkeypatch):
    with pytest.raises(BrwError, match=r"^law fixed:p=1 has mu = 0: every node has a child at its own position, so "
                                       r"the tree \{V <= x\} is infinite for every x$"):
        threshold("fixed:p=1", [1.0], max_nodes=10)  # (a small limit: a mutant walks the infinite tree briefly)
    _curve(monkeypatch, [1.0], [5.0])
    assert solver._check_nodes(SimpleNamespace(mu=1e-300), 1.0, 5) == 5.0


class _Unhashable(Uniform):
    """uniform:k=2 that cannot be a cache key."""

    __hash__ = None


def test_check_nodes_computes_the_curve_for_a_law_that_cannot_be_a_cache_key():
    law = _Unhashable(2)
    with pytest.raises(TypeError):
        hash(law)
    assert solver._check_nodes(law, 3.0, 10**6) == solver._check_nodes(parse_law(U2), 3.0, 10**6)


@pytest.mark.parametrize("kwargs, words", [
    (dict(xs=[-1.0]), r"^threshold levels x must be finite numbers >= 0$"),
    (dict(xs=[1.0], replicates=0), r"^replicates must be >= 1, got 0$"),
    (dict(xs=[1.0], first_replicate=-1), r"^first_replicate must be >= 0, got -1$"),
    (dict(xs=[1.0], max_nodes=0), r"^max_nodes must be >= 1, got 0$"),
    (dict(xs=[1.0], threads=0), r"^threads must be >= 1, got 0$"),
    (dict(xs=[1.0], seed=-1), r"^seed must be a whole number >= 0, got -1$"),
])
def test_threshold_refuses_each_argument_at_its_boundary(kwargs, words):
    with pytest.raises(BrwError, match=words):
        threshold(U2, **{"seed": 1, **kwargs})


def test_threshold_checks_the_mean_count_at_its_last_level():
    """uniform:k=2 holds about 2^15 nodes at x = 10 (and 3 at x = 1): refused before the walk, on average."""
    with pytest.raises(BrwError, match=r"^the threshold tree of uniform:k=2 at x=10 holds at least \S+ nodes besides "
                                       r"the root on average \(identity 3\), more than max_nodes=1000; at most x=\S+ "
                                       r"fits$"):
        threshold(U2, [1.0, 10.0], seed=1, max_nodes=1000)


def test_threshold_takes_a_level_of_zero_and_a_first_replicate_of_zero():
    res = threshold(U2, [0.0], replicates=2, seed=1, first_replicate=0)
    assert res.count.tolist() == [[0], [0]]


def test_threshold_replicates_fit_exactly_at_the_usable_memory(monkeypatch):
    """24 bytes a replicate and 16 per level: 3 replicates at 2 levels need 168 bytes."""
    _memory(monkeypatch, _have_for(168))
    assert threshold(U2, [1.0, 2.0], replicates=3, seed=1, threads=1).count.shape == (3, 2)
    _memory(monkeypatch, _have_for(168) - 1)
    with pytest.raises(BrwError, match=r"^a threshold of uniform:k=2 with replicates=3 needs about 168 B of memory but "
                                       r"209 B is available; at most replicates=2 fits$"):
        threshold(U2, [1.0, 2.0], replicates=3, seed=1, threads=1)


def test_threshold_blames_its_levels_when_not_one_replicate_fits(monkeypatch):
    _memory(monkeypatch, 50)  # 40 usable: the vector's 32 bytes fit, one replicate's 56 do not
    with pytest.raises(BrwError, match=r"with replicates=3 needs .* not even replicates=1 fits \(xs holds 2 levels\)$"):
        threshold(U2, [1.0, 2.0], replicates=3, seed=1, threads=1)


def test_threshold_refuses_a_tree_found_larger_than_max_nodes_and_takes_one_exactly_that_large(monkeypatch):
    """uniform:k=2 at x = 5 holds 2 + 4 + ... + 128 = 254 non-root nodes (the mean-count check is set aside)."""
    _curve(monkeypatch, [5.0], [1.0])
    assert threshold(U2, [5.0], replicates=2, seed=1, max_nodes=254).count.tolist() == [[254], [254]]
    with pytest.raises(BrwError, match=r"^the threshold tree at x=5 holds more than max_nodes=253 nodes; lower x or "
                                       r"raise max_nodes$"):
        threshold(U2, [5.0], replicates=2, seed=1, max_nodes=253)


def test_threshold_tree_refuses_a_tree_found_larger_than_max_nodes_and_takes_one_exactly_that_large(monkeypatch):
    _curve(monkeypatch, [5.0], [1.0])
    assert len(threshold_tree(U2, 5.0, seed=1, max_nodes=254)) == 254
    with pytest.raises(BrwError, match=r"^the threshold tree at x=5 holds more than max_nodes=253 nodes; lower x$"):
        threshold_tree(U2, 5.0, seed=1, max_nodes=253)


@pytest.mark.parametrize("kwargs, words", [
    (dict(x=-0.5), r"^threshold levels x must be finite numbers >= 0$"),
    (dict(x=math.nan), r"^threshold levels x must be finite numbers >= 0$"),
    (dict(x=1.0, replicate=-1), r"^replicate must be >= 0, got -1$"),
    (dict(x=1.0, max_nodes=0), r"^max_nodes must be >= 1, got 0$"),
    (dict(x=1.0, seed=-1), r"^seed must be a whole number >= 0, got -1$"),
])
def test_threshold_tree_refuses_each_argument_at_its_boundary(kwargs, words):
    with pytest.raises(BrwError, match=words):
        threshold_tree(U2, **{"seed": 1, **kwargs})


def test_threshold_tree_holds_at_most_ten_million_nodes_by_default(monkeypatch):
    """uniform:k=2 at x = 20 holds about 2^29 nodes; memory is said to be plenty, so the default limit is named."""
    assert inspect.signature(threshold_tree).parameters["max_nodes"].default == 10**7
    assert inspect.signature(threshold).parameters["max_nodes"].default == 10**9
    _memory(monkeypatch, 2**50)
    with pytest.raises(BrwError, match=r"more than max_nodes=10000000; at most x="):
        threshold_tree(U2, 20.0, seed=1)


def test_threshold_tree_holds_its_nodes_to_16_bytes_each(monkeypatch):
    _curve(monkeypatch, [1.0, 2.0, 3.0], [11.0, 21.0, 31.0])  # 30 nodes besides the root
    _memory(monkeypatch, 600)  # 480 usable: 30 nodes of 16 bytes
    assert len(threshold_tree(U2, 3.0, seed=1)) == 30  # 2 + 4 + 8 + 16 nodes at or below x = 3
    _memory(monkeypatch, 599)
    with pytest.raises(BrwError, match=r"more than the 479 B of memory available hold; at most x=2 fits$"):
        threshold_tree(U2, 3.0, seed=1)


def _threshold_passes(monkeypatch, expect):
    """Calls of the single-tree kernel by threshold_tree(uniform:k=2, x = 8) when the mean count is ``expect``."""
    calls = []
    kernels = solver._kernels()

    def counted(*args):
        calls.append(1)
        return kernels.threshold_one(*args)

    monkeypatch.setattr(solver, "_kernels", lambda: SimpleNamespace(threshold_one=counted))
    _curve(monkeypatch, [8.0], [expect])
    tree = threshold_tree(U2, 8.0, seed=1)
    monkeypatch.undo()
    return len(calls), tree


def test_threshold_tree_sizes_its_arrays_to_four_times_the_mean_count_and_1024(monkeypatch):
    """The tree holds 2^12 - 2 = 4094 nodes: arrays of 4 x 767.5 + 1024 = 4094 hold it in one pass, of
    4 x 767.25 + 1024 = 4093 (rounded down) do not, and a second pass sized to the tree finds the same tree."""
    one, a = _threshold_passes(monkeypatch, 767.5)
    two, b = _threshold_passes(monkeypatch, 767.25)
    assert (one, two) == (1, 2) and len(a) == len(b) == 4094
    assert np.array_equal(a.position, b.position) and np.array_equal(a.parent, b.parent)


def test_the_mean_count_bound_of_a_lattice_law_holds_at_x_itself():
    """uniform:k=2 at x = 5 holds exactly 254 nodes besides the root: a limit of 254 holds it, 253 does not. The
    renewal grid of a lattice law ends on the first lattice point at or past x, whose m (511) was once taken for
    m(x), refusing this tree as 'at least 511 nodes'; and at x = 0 it was '3 nodes' where the tree has none."""
    assert len(threshold_tree(U2, 5.0, seed=0, max_nodes=254)) == 254
    with pytest.raises(BrwError, match=r"at x=5 holds at least 254 nodes besides the root on average \(identity 3\), "
                                       r"more than max_nodes=253; at most x=4\.159 fits$"):  # 6 log 2: 126 nodes
        threshold_tree(U2, 5.0, seed=0, max_nodes=253)
    assert threshold(U2, [0.0], max_nodes=1, seed=0).count.tolist() == [[0]]


def test_sticks_that_do_not_fit_at_level_zero_are_refused_with_a_brw_error(monkeypatch):
    """gem at x = 0 breaks 32 sticks a node (65536 bytes on one thread); 60000 bytes available hold fewer."""
    _memory(monkeypatch, 60000)
    with pytest.raises(BrwError, match=r"breaks about 32 sticks per node, .* is available; no theta fits "
                                       r"\(theta=2 given\)$"):
        threshold_tree("gem:theta=2", 0.0, seed=1)  # (a ZeroDivisionError once: the sticks' cut is 0 at x = 0)
