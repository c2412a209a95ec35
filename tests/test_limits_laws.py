"""Boundary tests of the step laws' validation (``brw/laws/`` less ``fitted.py``, and the spec grammar
``brw/spec.py``): every refusal and limit exactly at its edge, the value at the limit taken and the one just past
it refused (or the other way round, as the code says), each message matched with the numbers it computes, the
defaults that change behaviour read back, and ``and``/``or`` told apart by inputs where only one side holds.

What is pinned, module by module:

- ``brw/laws/__init__.py``: ``parse_law``'s refusals of non-strings and blanks, the unknown-name message (name
  clipped to 40 characters, spec to 200, every known law listed, lazily loaded ones included) and which module each
  lazily loaded name imports.
- ``brw/laws/base.py``: ``tempered`` (T = 1 is the law itself, temperatures compose by product, a law without a
  T field refuses any other T, naming itself), the families' T checks (``gem``'s T = 1 taken and the next float
  refused), ``lattice_span`` (zero steps dropped, relative tolerance 1e-9, the degenerate span 1e-6 of the largest
  step), the base spine cdf and sampler's normalisation of the atoms' weights.
- ``brw/laws/parametric.py``: whole-number and real parameters (minimum, sign, bools, types, clipped quotes), the
  probability vector's checks (empty, 2-D, non-finite, negative, sum within 1e-9 both ways), the spec fields'
  minimums and signs, the memory checks of ``uniform`` and ``zipf`` (8 and 40 bytes per token: the largest k that
  fits and the next refused), the Dirichlet with one token, the kernels' 1 / T parameters.
- ``brw/laws/rows.py``: the Monte Carlo sample's sizes (MC_ROWS, MC_ATOMS, the floors of 256 and 1024 rows), the
  Dirichlet sample's refusal at 16 MC_ATOMS numbers, the stick-breaking sample's doubling and refusal, its seed,
  the sampled and empirical rows' treatment of -inf padding and empty tail groups, exact tempering of tail groups
  and the tempered trace's recorded temperature.
- ``brw/laws/trace.py`` and ``brw/laws/context.py`` (on a small synthetic trace: 3 contexts of 4 rows): the
  vocabulary room refusal above T = 1 at its edge, the spec's holdout and blank source, ``context=`` (first, last,
  one past, negative, held-out fold named or not), ``regimes`` and ``cap`` at the number of positions and one past,
  ``cap``'s default of 8, and the greedy-branch checks (a context id at 2^31 - 1 and 2^31, -1, bools, lengths,
  offsets, a branch past the last recorded position, steps from 1).
- ``brw/spec.py``: ``fmt`` at 1e15, ``parse_fields``, ``parse_float``, ``parse_int``, ``parse_holdout``,
  ``check_holdout``, ``check_temperature``, ``split_temperature`` and ``temperature_text`` at every edge.
"""

from __future__ import annotations

import inspect
import math
import sys
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest

import brw.laws
import brw.limits
from brw import BrwError, parse_law
from brw.errors import clip
from brw.laws import GEM, Dirichlet, Fixed, Uniform, Zipf
from brw.laws import rows as rows_mod
from brw.laws.base import Law, lattice_span
from brw.laws.rows import STICKS_ABOVE_ONE, EmpiricalRows, SampledRows, dirichlet_rows, stick_rows, temper_rows
from brw.spec import (check_holdout, check_temperature, fmt, holdout_text, parse_fields, parse_float, parse_holdout,
                      parse_int, split_temperature, temperature_text)

NEXT_ABOVE_1 = math.nextafter(1.0, 2.0)  # 1.0000000000000002


def _err(fn, *args, **kwargs) -> str:
    """The message of the BrwError that fn(*args, **kwargs) raises."""
    with pytest.raises(BrwError) as e:
        fn(*args, **kwargs)
    return str(e.value)


# ---------------------------------------------------------------------------------------------------------
# A small synthetic trace (3 contexts of 4 rows, contexts 0..2) and greedy branches from it.


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A synthetic trace file of 12 rows: contexts 0, 1, 2 of 4 rows each (tests/trace_data.py)."""
    from trace_data import synthetic

    from brw.traces import make_trace, save_trace

    arrays, meta = synthetic(contexts=3, lengths=4)
    return str(save_trace(make_trace(meta=meta, **arrays), tmp_path_factory.mktemp("laws") / "small.npz"))


def _branches(src: str, path, branches, meta_change=None, steps=((1, 2),)):
    """A greedy-branch trace of ``src`` saved at ``path``: branch b leaves context c at offset o (``branches``
    lists (c, o)) and holds rows at offsets o + s for s in ``steps[b]`` (the last entry for the branches past
    the list; copies of src rows, taking their top token); ``meta_change`` overrides metadata after the fact."""
    from brw.files import sha256
    from brw.traces import BRANCH_MODE, load_trace, make_trace, save_trace

    t = load_trace(src)
    keys = ("top_logp", "top_ids", "entropy", "log_moment2", "tail_mass", "taken", "taken_logp", "context", "offset")
    f = {key: [] for key in keys}
    toks, offs, plens = [], [0], []
    for b, (c, o) in enumerate(branches):
        ids = list(t.context_ids(c)[:o])
        ids += [0] * (o - len(ids))
        seq = ids + [int(t.top_ids[0, 1])]
        mine = steps[min(b, len(steps) - 1)]
        seq += [int(t.top_ids[s % t.positions, 0]) for s in range(1, max(mine) + 1)]
        for s in mine:
            r = s % t.positions
            for key in ("top_logp", "top_ids", "entropy", "log_moment2", "tail_mass"):
                f[key].append(getattr(t, key)[r])
            f["taken"].append(t.top_ids[r, 0])
            f["taken_logp"].append(t.top_logp[r, 0])
            f["context"].append(b)
            f["offset"].append(o + s)
        toks += seq
        offs.append(len(toks))
        plens.append(o)
    arr = {key: np.asarray(v) for key, v in f.items()}
    for key, dt in (("top_logp", np.float32), ("top_ids", np.uint16), ("taken", np.uint16), ("context", np.int32),
                    ("offset", np.int32)):
        arr[key] = arr[key].astype(dt)
    arr["context_tokens"] = np.asarray(toks, dtype=np.uint16)
    arr["context_offsets"] = np.asarray(offs, dtype=np.int64)
    arr["prompt_lengths"] = np.asarray(plens, dtype=np.int32)
    meta = dict(t.meta, mode=BRANCH_MODE, source_sha256=sha256(src), depth=max(map(max, steps)),
                branch_source_context=[c for c, _ in branches], branch_offset=[o for _, o in branches])
    g = make_trace(meta=meta, **arr)
    if meta_change:
        g = replace(g, meta={**g.meta, **meta_change}, path=None)
    return str(save_trace(g, path))


def _first_offsets(src):
    """Each context's first and last recorded offsets in the small trace (lists over contexts 0, 1, 2)."""
    from brw.traces import load_trace

    t = load_trace(src)
    return [int(t.offset[t.context == c].min()) for c in range(3)], [int(t.offset[t.context == c].max())
                                                                      for c in range(3)]


# ---------------------------------------------------------------------------------------------------------
# brw/laws/__init__.py: parse_law.


@pytest.mark.parametrize("bad, shown", [(5, "5"), ("   ", "'   '"), (None, "None")])
def test_a_spec_that_is_not_a_string_or_is_blank_is_refused_quoting_it(bad, shown):
    """Either side of ``not isinstance(spec, str) or not spec.strip()`` alone refuses."""
    assert _err(parse_law, bad) == f"law spec must be a non-empty string like 'dirichlet:alpha=0.5,k=8', got {shown}"


def test_a_spec_with_blanks_around_it_is_read_stripped_and_a_law_is_returned_as_it_is():
    law = parse_law("  uniform:k=3 \n")
    assert str(law) == "uniform:k=3" and parse_law(law) is law


def test_an_unknown_name_is_quoted_clipped_to_40_characters_listing_every_known_law():
    """The name is clipped to 40 (26 characters of head, 10 of tail), the spec to 200; the known laws include the
    lazily loaded families whether or not they are loaded yet."""
    name = "abcdefghij" * 5
    msg = _err(parse_law, name + ":k=1")
    assert msg == (f"unknown law 'abcdefghijabcdefghijabcdef...(50 characters)...abcdefghij' in spec '{name}:k=1'; "
                   "known laws: ctx, dirichlet, edge, fixed, gem, gemmix, markov, path, prefix, run, trace, uniform, "
                   "zipf")


def test_an_unknown_law_quotes_a_spec_of_more_than_200_characters_clipped():
    spec = "nolaw:" + "k=1," * 60 + "k=2"  # 249 characters
    head, tail = spec[:133], spec[-50:]
    assert f"in spec '{head}...(249 characters)...{tail}'; known laws" in _err(parse_law, spec)
    assert "in spec 'nolaw:k=1'" in _err(parse_law, "nolaw:k=1")


def test_a_long_spec_is_quoted_clipped_in_the_familys_own_messages():
    spec = "dirichlet:alpha=0" + " " * 300 + ",k=3"
    msg = _err(parse_law, spec)
    assert msg.startswith("alpha=0 in law spec 'dirichlet:alpha=0") and "...(321 characters)..." in msg
    assert len(msg) < 300


_LAZY = [("trace", "brw.laws.trace"), ("gemmix", "brw.laws.fitted"), ("markov", "brw.laws.fitted"),
         ("ctx", "brw.laws.context"), ("path", "brw.laws.context"), ("edge", "brw.laws.context"),
         ("run", "brw.laws.context"), ("prefix", "brw.laws.context")]


def _forget_lazy_families(monkeypatch):
    """As in a fresh process: no lazily loaded module imported, none of their names registered (restored after)."""
    import brw.laws.context
    import brw.laws.fitted
    import brw.laws.trace  # loaded, so that monkeypatch can restore them

    registry = brw.laws.REGISTRY
    for name, module in _LAZY:
        monkeypatch.delitem(registry, name)
        monkeypatch.delitem(sys.modules, module, raising=False)
        monkeypatch.setattr(brw.laws, module.rpartition(".")[2], getattr(brw.laws, module.rpartition(".")[2]))
    return registry


@pytest.mark.parametrize("name, module", _LAZY)
def test_each_lazily_loaded_name_imports_its_own_module(monkeypatch, name, module):
    from brw.laws import _load_family

    registry = _forget_lazy_families(monkeypatch)
    _load_family(name)
    assert name in registry and module in sys.modules
    others = {m for _, m in _LAZY} - {module} - ({"brw.laws.trace"} if module == "brw.laws.context" else set())
    assert not others & set(sys.modules), others & set(sys.modules)  # context imports trace, nothing else


def test_a_parametric_name_loads_no_lazy_module_and_parse_law_loads_one_on_first_use(monkeypatch):
    from brw.laws import _load_family

    registry = _forget_lazy_families(monkeypatch)
    _load_family("uniform")
    assert str(parse_law("uniform:k=3")) == "uniform:k=3"
    assert not {m for _, m in _LAZY} & set(sys.modules)
    assert str(parse_law("gemmix:s=0.5,theta=2,w=1")) == "gemmix:s=0.5,theta=2,w=1" and "gemmix" in registry


# ---------------------------------------------------------------------------------------------------------
# brw/laws/base.py: temperature.


@dataclass(frozen=True)
class _NoT(Law):
    """A law family without a T field (only T = 1)."""

    name: ClassVar[str] = "plain"

    @property
    def base_spec(self):
        return "plain:x=1"


class _Bare(Law):
    """A law that is not a dataclass and has no name."""

    @property
    def base_spec(self):
        return "bare:x=1"


def test_tempered_at_exactly_1_is_the_law_itself_and_temperatures_compose_by_product():
    law = Dirichlet(0.5, 8)
    assert law.tempered(1) is law and law.tempered(1.0) is law
    assert Dirichlet(0.5, 8, T=0.5).tempered(0.4) == Dirichlet(0.5, 8, T=0.2)
    assert Dirichlet(0.5, 8, T=0.5).tempered(0.4).T == 0.2
    assert parse_law("dirichlet:alpha=0.5,k=8,T=1") == law and parse_law("dirichlet:alpha=0.5,k=8,T=0.5").T == 0.5


def test_a_law_without_a_T_field_takes_T_1_and_refuses_any_other_naming_itself():
    plain = _NoT()
    assert plain.tempered(1.0) is plain
    assert _err(plain.tempered, 0.5) == "law plain:x=1 takes no temperature T"
    assert _err(_Bare().tempered, 2.0) == "law bare:x=1 takes no temperature T"


def test_a_bad_T_names_the_family_or_else_the_class():
    """``self.name or type(self).__name__``: the family's name when it has one."""
    tail = " law's T must be a finite number > 0 (a temperature), got 0"
    assert _err(Dirichlet(0.5, 8).tempered, 0) == "dirichlet" + tail
    assert _err(_Bare().tempered, 0) == "_Bare" + tail
    assert _err(Uniform, 3, T=-1) == "uniform law's T must be a finite number > 0 (a temperature), got -1"


def test_gem_takes_T_1_and_refuses_the_next_float_above_it_saying_why():
    assert GEM(2.0, T=1.0).T == 1.0 and GEM(2.0, T=0.999).T == 0.999
    assert _err(GEM, 2.0, T=NEXT_ABOVE_1) == f"gem law cannot take T=1.0000000000000002 > 1: {STICKS_ABOVE_ONE}"
    assert Dirichlet(0.5, 8, T=1e300).T == 1e300  # no bound by default


def test_a_familys_T_is_stored_as_a_float():
    law = Uniform(3, T=2)
    assert type(law.T) is float and law.T == 2.0 and str(law) == "uniform:k=3,T=2"
    assert type(Dirichlet(0.5, 8, T=np.float32(0.5)).T) is float


# ---------------------------------------------------------------------------------------------------------
# brw/laws/base.py: the lattice span and the base spine step.


def test_lattice_span_drops_zero_steps_and_is_0_without_a_positive_step():
    assert lattice_span(np.array([0.0, math.log(2), 2 * math.log(2)])) == math.log(2)
    assert lattice_span(np.array([0.0])) == 0.0 and lattice_span(np.array([])) == 0.0
    assert parse_law("fixed:p=1").lattice_span == 0.0


@pytest.mark.parametrize("steps, span", [
    ([1.0, 2 + 1.9e-9], 1.0), ([1.0, 2 + 2.1e-9], 0.0),   # remainder 1.9e-9 < 1e-9 * 2.0000000019: a multiple
    ([1.0, 3 - 2.9e-9], 1.0), ([1.0, 3 - 3.1e-9], 0.0),   # remainder one 2.9e-9 short of the span: a multiple
])
def test_lattice_span_treats_a_step_within_1e_minus_9_of_a_multiple_as_one(steps, span):
    assert lattice_span(np.array(steps)) == span


def test_lattice_span_gives_up_below_1e_minus_6_of_the_largest_step():
    """h = 1 divides 1e6 exactly: kept (1 is not < 1e-6 * 1e6 = 1.0); for 2e6 it is below that share: 0."""
    assert lattice_span(np.array([1.0, 1e6])) == 1.0
    assert lattice_span(np.array([1.0, 2e6])) == 0.0


@dataclass(frozen=True)
class _Atoms(Law):
    """A law with given spine atoms (weights need not sum to 1)."""

    steps: tuple = (1.0, 1.5)
    weights: tuple = (1.0, 0.0)
    name: ClassVar[str] = "atoms"

    def spine_atoms(self):
        return np.array(self.steps), np.array(self.weights)


def test_lattice_span_reads_only_atoms_of_positive_weight_and_is_0_for_a_continuous_step():
    assert _Atoms().lattice_span == 1.0  # 1.5 has weight 0: not a step
    assert _Atoms(weights=(1.0, 1.0)).lattice_span == 0.5
    assert _NoT().lattice_span == 0.0  # spine_atoms None


def test_the_base_spine_cdf_and_sampler_normalise_the_atoms_weights():
    law = _Atoms(steps=(2.0, 1.0), weights=(3.0, 1.0))
    np.testing.assert_array_equal(law.spine_cdf([0.5, 1.0, 1.5, 2.0, 9.0]), [0.0, 0.25, 0.25, 1.0, 1.0])
    np.testing.assert_array_equal(law.spine_cdf([1.0, 2.0, 2.5], strict=True), [0.0, 0.25, 1.0])
    x = law.spine_sample(np.random.default_rng(1), 400)
    assert set(np.unique(x)) == {1.0, 2.0} and 50 < np.count_nonzero(x == 1.0) < 150


# ---------------------------------------------------------------------------------------------------------
# brw/laws/parametric.py: constructor parameters.


@pytest.mark.parametrize("make, law", [(lambda k: Uniform(k), "uniform"), (lambda k: Zipf(1.0, k), "zipf"),
                                       (lambda k: Dirichlet(0.5, k), "dirichlet")])
def test_k_of_exactly_1_is_taken_and_0_refused_naming_the_law(make, law):
    assert make(1).k == 1
    assert _err(make, 0) == f"{law} law needs a whole number k >= 1, got k=0"


@pytest.mark.parametrize("bad, shown", [(True, "True"), (np.True_, "np.True_"), (2.0, "2.0"), ("3", "'3'"),
                                        (None, "None")])
def test_k_must_be_an_int_not_a_bool_or_a_float(bad, shown):
    assert _err(Uniform, bad) == f"uniform law needs a whole number k >= 1, got k={shown}"


def test_a_numpy_integer_k_is_taken_as_a_python_int():
    law = Uniform(np.int64(3))
    assert type(law.k) is int and law.k == 3 and str(law) == "uniform:k=3"


def test_a_bad_k_is_quoted_clipped_to_40_characters():
    assert _err(Uniform, "0123456789" * 10) == (
        "uniform law needs a whole number k >= 1, got k='0123456789012345678901234...(102 characters)...123456789'")


@pytest.mark.parametrize("make, key, law, least", [
    (lambda x: Dirichlet(x, 3), "alpha", "dirichlet", sys.float_info.min), (lambda x: GEM(x), "theta", "gem", 5e-324)])
def test_a_positive_parameter_takes_the_least_positive_float_and_refuses_0(make, key, law, least):
    """The least positive float (the least normal one for dirichlet, whose sampler divides by alpha)."""
    assert getattr(make(least), key) == least
    assert _err(make, 0) == f"{law} law needs a finite {key} > 0, got {key}=0"
    assert _err(make, 0.0) == f"{law} law needs a finite {key} > 0, got {key}=0.0"


def test_zipf_takes_s_of_0_and_refuses_the_least_negative_float():
    assert Zipf(0, 3).s == 0.0 and type(Zipf(0, 3).s) is float
    assert _err(Zipf, -5e-324, 3) == "zipf law needs a finite s >= 0, got s=-5e-324"


@pytest.mark.parametrize("bad, shown", [(math.nan, "nan"), (math.inf, "inf"), (True, "True"), ("1", "'1'"),
                                        (None, "None")])
def test_a_real_parameter_must_be_a_finite_number_not_a_bool_or_text(bad, shown):
    assert _err(Zipf, bad, 3) == f"zipf law needs a finite s >= 0, got s={shown}"
    assert _err(GEM, bad) == f"gem law needs a finite theta > 0, got theta={shown}"


def test_a_numpy_float_parameter_is_taken_as_a_python_float():
    law = Dirichlet(np.float32(0.5), 3)
    assert type(law.alpha) is float and law.alpha == 0.5


# ---------------------------------------------------------------------------------------------------------
# brw/laws/parametric.py: the fixed law's vector.


def test_an_empty_or_two_dimensional_vector_is_refused():
    """``p.ndim != 1 or p.size == 0``: each side alone."""
    assert _err(Fixed, ()) == "fixed law p=(): needs a non-empty vector of probabilities"
    assert _err(Fixed, ((0.5, 0.5),)) == "fixed law p=((0.5, 0.5),): needs a non-empty vector of probabilities"


@pytest.mark.parametrize("p", [(0.5, math.nan, 0.5), (1.0, math.inf), (1.0, -math.inf)])
def test_a_vector_with_nan_or_inf_is_refused_as_not_finite(p):
    assert _err(Fixed, p).endswith(": entries must be finite numbers (found NaN or inf)")


def test_a_zero_entry_is_taken_and_a_negative_one_refused_with_its_value():
    assert Fixed((1.0, 0.0)).probs == (1.0, 0.0)
    assert _err(Fixed, (1.25, -0.25)) == "fixed law p=(1.25, -0.25): entries must be >= 0 (found -0.25)"


@pytest.mark.parametrize("d, ok", [(0.9e-9, True), (-0.9e-9, True), (1.1e-9, False), (-1.1e-9, False)])
def test_a_vector_must_sum_to_1_within_1e_minus_9_either_way(d, ok):
    p = (0.5, 0.5 + d)
    if ok:
        assert Fixed(p).probs == ((0.5 + d, 0.5) if d > 0 else (0.5, 0.5 + d))
    else:
        s = math.fsum(p)
        assert _err(Fixed, p) == (f"fixed law p={p!r}: entries sum to {s!r}, not 1 (within 1e-9); brw never "
                                  f"renormalises input")


@pytest.mark.parametrize("bad", [("a",), ((1,), (1, 2)), ({},)])
def test_a_vector_that_is_not_numbers_is_refused_quoting_it(bad):
    assert _err(Fixed, bad) == f"fixed law needs a vector of probabilities, got p={bad!r}"


def test_a_bad_vector_is_quoted_clipped_to_60_characters():
    bad = tuple(f"x{i}" for i in range(30))
    text = repr(bad)
    want = f"{text[:40]}...({len(text)} characters)...{text[-15:]}"
    assert _err(Fixed, bad) == f"fixed law needs a vector of probabilities, got p={want}"
    assert _err(Fixed, tuple(range(-1, 30))).startswith(f"fixed law p={repr(tuple(range(-1, 30)))[:40]}...(")


def test_a_bad_fixed_spec_names_the_spec_and_the_vector():
    assert _err(parse_law, "fixed:p=0.7/0.2") == (
        "in law spec 'fixed:p=0.7/0.2': fixed law p=(0.7, 0.2): entries sum to 0.8999999999999999, not 1 (within "
        "1e-9); brw never renormalises input")
    assert _err(parse_law, "fixed:p=0.5/abc") == "p='abc' in law spec 'fixed:p=0.5/abc' is not a number"


def test_fixed_laws_at_different_temperatures_differ():
    a, b = Fixed((0.5, 0.5)), Fixed((0.5, 0.5), T=0.5)
    assert a != b and a == Fixed((0.5, 0.5)) and hash(a) == hash(Fixed((0.5, 0.5)))
    assert b == Fixed((0.5, 0.5), T=0.5) and hash(b) == hash(Fixed((0.5, 0.5), T=0.5))


# ---------------------------------------------------------------------------------------------------------
# brw/laws/parametric.py: spec fields.


@pytest.mark.parametrize("family, rest", [("uniform", ""), ("zipf", "s=1,"), ("dirichlet", "alpha=1,")])
def test_a_spec_k_of_1_is_taken_and_0_refused_by_the_spec_grammar(family, rest):
    assert parse_law(f"{family}:{rest}k=1").k == 1
    spec = f"{family}:{rest}k=0"
    assert _err(parse_law, spec) == f"k=0 in law spec '{spec}' must be >= 1"


def test_spec_signs_are_the_grammars_own_messages():
    assert parse_law("zipf:s=0,k=3").s == 0.0
    assert _err(parse_law, "zipf:s=-1,k=3") == "s=-1 in law spec 'zipf:s=-1,k=3' must be >= 0"
    assert _err(parse_law, "dirichlet:alpha=0,k=3") == "alpha=0 in law spec 'dirichlet:alpha=0,k=3' must be > 0"
    assert _err(parse_law, "gem:theta=0") == "theta=0 in law spec 'gem:theta=0' must be > 0"
    assert parse_law("gem:theta=5e-324").theta == 5e-324


# ---------------------------------------------------------------------------------------------------------
# brw/laws/parametric.py: memory checks (the machine says it has a few bytes).


def test_uniform_vectors_cost_8_bytes_a_token_at_most_the_largest_k_that_fits(monkeypatch):
    monkeypatch.setattr(brw.limits, "available_memory", lambda: 1000)  # 800 usable
    assert Uniform(100).kernel_law().width == 100
    assert _err(Uniform(101).kernel_law) == ("the uniform law's vector with k=101 needs about 808 B of memory but "
                                             "1000 B is available; at most k=100 fits")


def test_zipf_vectors_cost_40_bytes_a_token_checked_when_the_law_is_built(monkeypatch):
    monkeypatch.setattr(brw.limits, "available_memory", lambda: 4000)  # 3200 usable
    assert Zipf(1.5, 80).k == 80
    assert _err(Zipf, 1.5, 81) == ("the zipf law's vector (s=1.5) with k=81 needs about 3.2 KiB of memory but "
                                   "3.9 KiB is available; at most k=80 fits")


# ---------------------------------------------------------------------------------------------------------
# brw/laws/parametric.py: the one-token Dirichlet, the kernels' temperature parameters.


def test_a_one_token_dirichlet_is_exact_at_any_T():
    """``T == 1 or k == 1``: a one-token law has no Monte Carlo sample, tempered or not."""
    for law in (Dirichlet(0.5, 1, T=0.5), Dirichlet(0.5, 1)):
        assert law.spine_atoms() is None and law.moment_stderr == (0.0, 0.0)
        assert law.mu == 0.0 and law.mu2 == 0.0 and law.lattice_span == math.inf
        np.testing.assert_array_equal(law.spine_sample(np.random.default_rng(0), 3), np.zeros(3))
    two = Dirichlet(0.5, 2)
    assert two.lattice_span == 0.0 and np.all(two.spine_sample(np.random.default_rng(0), 50) > 0)
    assert Dirichlet(0.5, 8).moment_stderr == (0.0, 0.0) and min(Dirichlet(0.5, 8, T=0.5).moment_stderr) > 0
    assert Dirichlet(0.5, 8, T=0.5).spine_atoms() is not None


def test_the_kernels_get_1_over_T_and_0_at_T_1():
    np.testing.assert_array_equal(Dirichlet(0.5, 8).kernel_law().params, [0.5, 8, 0.0, 0.0])
    np.testing.assert_array_equal(Dirichlet(0.5, 8, T=0.5).kernel_law().params, [0.5, 8, 2.0, 0.0])
    np.testing.assert_array_equal(Dirichlet(0.5, 8, T=4).kernel_law().params, [0.5, 8, 0.25, 0.0])
    np.testing.assert_array_equal(GEM(2.0).kernel_law().params, [1.0, 0.0, 2.0, 1.0])
    np.testing.assert_array_equal(GEM(2.0, T=0.5).kernel_law().params, [1.0, 0.0, 2.0, 1.0, 2.0])
    assert GEM(2.0).moment_stderr == (0.0, 0.0) and GEM(2.0).spine_atoms() is None


# ---------------------------------------------------------------------------------------------------------
# brw/laws/rows.py: the Monte Carlo samples.


def test_a_dirichlet_sample_holds_MC_ROWS_vectors_fewer_when_long_at_least_256(monkeypatch):
    """n = max(256, min(MC_ROWS, MC_ATOMS // k)); with MC_ROWS = 1000 and MC_ATOMS = 4096: k = 2 gives 1000,
    k = 8 gives 512, k = 32 gives 256 (the floor, not 128)."""
    monkeypatch.setattr(rows_mod, "MC_ROWS", 1000)
    monkeypatch.setattr(rows_mod, "MC_ATOMS", 4096)
    assert [dirichlet_rows(0.5, k, 0.5).shape for k in (2, 8, 32)] == [(1000, 2), (512, 8), (256, 32)]
    assert dirichlet_rows(0.5, 8, 0.5, n=3).shape == (3, 8)


def test_the_real_sample_sizes_and_seed():
    assert dirichlet_rows(0.5, 8, 0.5).shape == (1 << 14, 8)  # MC_ROWS
    a = dirichlet_rows(0.5, 3, 0.5, n=4)
    np.testing.assert_array_equal(a, dirichlet_rows(0.5, 3, 0.5, n=4, seed=20251224))
    assert not np.array_equal(a, dirichlet_rows(0.5, 3, 0.5, n=4, seed=1))


def test_a_dirichlet_sample_is_refused_past_16_MC_ATOMS_numbers(monkeypatch):
    """With MC_ATOMS = 4096 the limit is 65536 numbers: 256 vectors (the floor) of k = 256 are exactly that,
    k = 257 is refused, naming k = 16 MC_ATOMS / 256."""
    monkeypatch.setattr(rows_mod, "MC_ATOMS", 4096)
    assert dirichlet_rows(0.5, 256, 0.5).shape == (256, 256)
    assert _err(dirichlet_rows, 0.5, 257, 0.5) == (
        "dirichlet law with k=257: its quantities at T != 1 come from 256 sampled vectors, 65792 numbers, too many; "
        "at T != 1 at most k=256 works")


def test_a_tempered_dirichlet_past_k_65536_is_refused_before_it_samples():
    assert _err(lambda: Dirichlet(0.5, 65537, T=0.5).mu) == (
        "dirichlet law with k=65537: its quantities at T != 1 come from 256 sampled vectors, 16777472 numbers, too "
        "many; at T != 1 at most k=65536 works")


class _StuckRng:
    """Uniforms U next to 1 (sticks that break off almost nothing), except row 0's U = 1/2 (it breaks fast)."""

    def __init__(self, *args):
        pass

    def choice(self, n, size, p):
        return np.zeros(size, dtype=np.int64)

    def random(self, shape):
        u = np.full(shape, 1.0 - 2.0**-40)
        u[0] = 0.5
        return u


def test_a_stick_sample_doubles_its_sticks_and_is_refused_past_16_MC_ATOMS(monkeypatch):
    """GEM(1) at T = 1 starts with m = 54 sticks and 1024 rows (the floor: MC_ATOMS // m = 256). With
    MC_ATOMS = 13824 the limit 2 rows m <= 16 MC_ATOMS = 221184 holds at m = 54 and m = 108 exactly, so the
    sample is refused at m = 216. One row's sticks that do break leave the others' unbroken mass: still refused."""
    monkeypatch.setattr(rows_mod, "MC_ATOMS", 13824)
    monkeypatch.setattr(np.random, "default_rng", _StuckRng)
    assert _err(stick_rows, (0.0,), (1.0,), (1.0,), 1.0) == (
        "a stick-breaking law with theta up to 1 needs more than 221184 sticks for its quantities at T=1; use a "
        "smaller theta")


def test_a_stick_sample_too_large_for_its_first_draw_is_refused_before_it(monkeypatch):
    """GEM(1) at T = 1: m = 54 sticks, 1024 rows, 55296 sticks in the first draw. With 16 MC_ATOMS = 55296 the draw
    is made; one fewer and it is refused before any random number is drawn (GEM(theta = 1e5) at T = 0.5 once asked
    numpy for 27 GiB and died of a MemoryError)."""
    draws = []

    def counting_rng(*args, **kwargs):
        draws.append(1)
        return _StuckRng(*args, **kwargs)

    monkeypatch.setattr(np.random, "default_rng", counting_rng)
    monkeypatch.setattr(rows_mod, "MC_ATOMS", 3455)
    assert _err(stick_rows, (0.0,), (1.0,), (1.0,), 1.0) == (
        "a stick-breaking law with theta up to 1 needs more than 55296 sticks for its quantities at T=1; use a "
        "smaller theta")
    assert draws == []
    monkeypatch.setattr(rows_mod, "MC_ATOMS", 3456)
    _err(stick_rows, (0.0,), (1.0,), (1.0,), 1.0)  # the stuck draw's sticks never break: refused when doubling
    assert draws == [1]


def test_a_stick_sample_holds_MC_ATOMS_over_its_sticks_rows(monkeypatch):
    """GEM(2) at T = 0.6: m = int(2 (0.6 * 27.63 + log 3 + 10)) + 16 = 71 sticks; with MC_ATOMS = 2^17 the
    sample has 2^17 // 71 = 1846 rows (between the floor of 1024 and MC_ROWS), each the spike's column and m
    sticks."""
    monkeypatch.setattr(rows_mod, "MC_ATOMS", 1 << 17)
    assert stick_rows((0.0,), (2.0,), (1.0,), 0.6).shape == (1846, 72)


def test_sampled_rows_leave_out_padding_and_their_stderr_is_the_spread_over_root_n():
    """Two rows: (1/2, 1/2, pad) and (1/4, 3/4, pad). With two values the sample's std (ddof 1) is |h1 - h2| /
    sqrt 2, so the standard error is |h1 - h2| / 2."""
    table = np.log(np.array([[0.5, 0.5, 1.0], [0.25, 0.75, 1.0]]))
    table[:, 2] = -np.inf
    r = SampledRows(table)
    steps, w = r.spine_atoms()
    assert steps.size == 4 and np.all(np.isfinite(steps)) and math.fsum(w) == pytest.approx(1.0, abs=1e-15)
    h = [math.log(2), -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))]
    assert r.stderr[0] == pytest.approx(abs(h[0] - h[1]) / 2, rel=1e-12)
    assert r.mu == pytest.approx((h[0] + h[1]) / 2, rel=1e-14)
    assert r.psi(0.0) == pytest.approx(math.log(2), rel=1e-14)  # 4 atoms over 2 rows
    assert abs(r.psi(1.0)) < 1e-15
    steps, w = SampledRows(np.array([[0.0, -800.0]])).spine_atoms()  # e^-800 underflows: weight 0, no atom
    assert steps.tolist() == [0.0] and w.tolist() == [1.0]


def test_empirical_rows_count_no_atom_in_an_empty_tail_group_or_in_padding():
    """Row (1/2, 3/10, pad) with tail groups (1/10 x 2) and (1/20 x 0): four atoms, weights summing to 1."""
    rows = EmpiricalRows()
    rows._table = np.array([[math.log(0.5), math.log(0.3), -np.inf]])
    rows._tails = np.array([[[math.log(0.1), 2.0], [math.log(0.05), 0.0]]])
    steps, w = rows.spine_atoms()
    assert steps.size == 3 and np.all(np.isfinite(steps))  # the two tail atoms are one group: one step
    assert math.fsum(w) == pytest.approx(1.0, abs=1e-15)
    assert float(rows.psi(0.0)) == pytest.approx(math.log(4), rel=1e-14)
    assert abs(float(rows.psi(1.0))) < 1e-15


def test_tempering_leaves_an_empty_tail_group_and_padding_as_they_are():
    table = np.array([[math.log(0.5), math.log(0.3), -np.inf]])
    tails = np.array([[[math.log(0.1), 2.0], [-5.0, 0.0]]])
    tt, st, _ = temper_rows(table, tails, 0.5)
    assert tt[0, 2] == -np.inf and st[0, 1, 0] == -5.0 and st[0, 1, 1] == 0.0
    assert st[0, 0, 0] != math.log(0.1)


def test_a_tempered_trace_records_the_product_of_temperatures_1_when_none_was_recorded(small):
    from brw.laws.rows import temper_trace
    from brw.laws.trace import fitted_rows

    trace, table, tails, _, _ = fitted_rows(small, None)
    bare = replace(trace, meta={k: v for k, v in trace.meta.items() if k != "temperature"})
    assert temper_trace(bare, table, tails, 0.5)[0].meta["temperature"] == 0.5
    hot = replace(trace, meta={**trace.meta, "temperature": 0.8})
    out = temper_trace(hot, table, tails, 0.5)[0].meta
    assert out["temperature"] == 0.4 and out["tempered_by"] == 0.5


# ---------------------------------------------------------------------------------------------------------
# brw/laws/trace.py.


def _fake_trace(vocab, k):
    return SimpleNamespace(meta={} if vocab == "missing" else {"vocab_size": vocab}, k=k)


def test_above_T_1_a_row_may_hold_as_many_tail_tokens_as_the_vocabulary_has_room_for_and_not_one_more():
    """vocabulary 100, top 4: room for 96 tail atoms per row."""
    from brw.laws.trace import _check_room

    tails = np.zeros((2, 2, 2))
    tails[:, 0, 1] = 50
    tails[:, 1, 1] = 46
    _check_room(_fake_trace(100, 4), tails, 1.5, "p.npz")
    tails[1, 1, 1] = 47
    assert _err(_check_room, _fake_trace(100, 4), tails, 1.5, "p.npz") == (
        "trace p.npz cannot take T=1.5 > 1: 1 of its 2 rows' fitted tails hold more tokens than its vocabulary of "
        "100 has beyond the top 4, so their tempered mass has no bound above T = 1 (use T <= 1)")


@pytest.mark.parametrize("vocab", ["missing", True, 100.0, None])
def test_above_T_1_a_trace_without_a_whole_vocabulary_size_is_refused_every_row(vocab):
    """No room known: every row is over, even with no tail atom at all (and a top-k of 0: True is not 1)."""
    from brw.laws.trace import _check_room

    msg = _err(_check_room, _fake_trace(vocab, 0), np.zeros((3, 1, 2)), 2.0, "p.npz")
    shown = None if vocab == "missing" else vocab
    assert msg.startswith(f"trace p.npz cannot take T=2 > 1: 3 of its 3 rows' fitted tails hold more tokens than "
                          f"its vocabulary of {shown} has beyond the top 0")


def test_a_trace_law_checks_the_room_just_above_T_1_and_not_below(small):
    from brw.laws.trace import TraceLaw

    assert TraceLaw(small, T=0.9).T == 0.9  # its tails outgrow the vocabulary: only refused above 1
    msg = _err(TraceLaw, small, T=NEXT_ABOVE_1)
    assert msg.startswith(f"trace {small} cannot take T=1 > 1: 2 of its 12 rows' fitted tails hold more tokens")


def test_a_trace_spec_reads_its_source_and_holdout_stripped(small):
    assert str(parse_law(f"trace: {small} ")) == f"trace:{small}"
    law = parse_law(f"trace: {small} ,holdout= 1/2")
    assert law.holdout == (1, 2) and str(law) == f"trace:{small},holdout=1/2"
    assert _err(parse_law, "trace: ,holdout=1/2").startswith(
        "law spec 'trace: ,holdout=1/2' needs a trace: trace:PATH or one of trace:{chat, ")


@pytest.mark.parametrize("cls, name", [("TraceLaw", "trace"), ("ContextTrace", "ctx"), ("PathTrace", "path"),
                                       ("EdgeTrace", "edge"), ("RunTrace", "run"), ("PrefixTrace", "prefix")])
def test_a_bad_holdout_or_T_argument_names_the_law(small, cls, name):
    from brw.laws import context, trace

    make = getattr(context, cls, None) or getattr(trace, cls)
    assert _err(make, small, (2, 2)) == (f"{name} law needs holdout=None or (j, K), fold j of K folds with K >= 2 "
                                         f"and 0 <= j < K, got holdout=(2, 2)")
    assert _err(make, small, T=0) == f"{name} law's T must be a finite number > 0 (a temperature), got 0"
    assert make(small, (1, 2)).holdout == (1, 2)


# ---------------------------------------------------------------------------------------------------------
# brw/laws/context.py.


def test_ctx_takes_its_first_and_last_context_and_refuses_one_past_them(small):
    from brw.laws.context import ContextTrace

    assert ContextTrace(small, None, 0).context == 0 and ContextTrace(small, None, 2).rows == 4
    assert type(ContextTrace(small, None, np.int64(1)).context) is int
    assert ContextTrace(small).weights.tolist() == [1 / 3] * 3
    assert _err(ContextTrace, small, None, 3) == (f"ctx law: context=3 has no rows in trace {small!r}; its contexts "
                                                  f"are 0..2")
    assert _err(ContextTrace, small, None, -1) == "context must be a whole number >= 0, got -1"
    assert _err(ContextTrace, small, None, True) == "context must be a whole number >= 0, got True"


def test_ctx_says_when_the_holdout_left_the_context_out_and_only_then(small):
    """holdout=1/2 leaves out contexts 1 (and 3, 5, ...): their refusal says so; context 4 (fold 0) does not."""
    from brw.laws.context import ContextTrace

    assert ContextTrace(small, (1, 2), 2).context == 2
    assert _err(ContextTrace, small, (1, 2), 1) == (f"ctx law: context=1 has no rows in trace {small!r} (holdout=1/2 "
                                                    f"leaves out its fold); its contexts are 0..2")
    assert _err(ContextTrace, small, (1, 2), 4) == (f"ctx law: context=4 has no rows in trace {small!r}; its contexts "
                                                    f"are 0..2")


def test_ctx_spec_context_must_be_at_least_0(small):
    assert parse_law(f"ctx:trace={small},context=0").context == 0
    spec = f"ctx:trace={small},context=-1"
    assert _err(parse_law, spec) == f"context=-1 in law spec {spec!r} must be >= 0"


def test_edge_regimes_may_be_as_many_as_the_positions_and_not_one_more(small):
    from brw.laws.context import EdgeTrace

    assert EdgeTrace(small, None, 12).groups == 12 and EdgeTrace(small, None, 1).groups == 1
    assert type(EdgeTrace(small, None, np.int64(3)).regimes) is int  # a numpy count is kept as a Python int
    assert _err(EdgeTrace, small, None, 13) == "edge law: regimes=13 is more than the 12 positions of the trace"
    assert _err(EdgeTrace, small, (1, 2), 9) == "edge law: regimes=9 is more than the 8 positions of the trace"
    assert _err(EdgeTrace, small, None, 0) == "regimes must be a whole number >= 1, got 0"
    spec = f"edge:trace={small},regimes=0"
    assert _err(parse_law, spec) == f"regimes=0 in law spec {spec!r} must be >= 1"


@pytest.mark.parametrize("cls, name", [("RunTrace", "run"), ("PrefixTrace", "prefix")])
def test_cap_may_be_as_large_as_the_positions_and_not_one_more(small, cls, name):
    from brw.laws import context

    make = getattr(context, cls)
    assert make(small, None, 12).cap == 12 and make(small, None, 1).cap == 1
    assert make(small, (1, 2), 8).cap == 8 and type(make(small, None, np.int64(3)).cap) is int
    assert _err(make, small, None, 13) == f"{name} law: cap=13 is more than the 12 positions of the trace"
    assert _err(make, small, (1, 2), 9) == f"{name} law: cap=9 is more than the 8 positions of the trace"
    assert _err(make, small, None, 0) == "cap must be a whole number >= 1, got 0"
    spec = f"{name}:trace={small},cap=0"
    assert _err(parse_law, spec) == f"cap=0 in law spec {spec!r} must be >= 1"


def test_cap_defaults_to_8(small):
    from brw.laws.context import RUN_CAP, RunTrace

    assert RUN_CAP == 8 and RunTrace(small).cap == 8
    assert str(parse_law(f"run:trace={small}")) == f"run:trace={small},cap=8"
    assert inspect.signature(RunTrace).parameters["cap"].default == 8


def test_greedy_branches_from_the_trace_are_taken(small, tmp_path):
    """From each context's first recorded position, and from the trace's very last one (its lookup key is the
    last of all)."""
    first, last = _first_offsets(small)
    g = _branches(small, tmp_path / "g.npz", [(c, first[c]) for c in range(3)] + [(2, last[2])])
    law = parse_law(f"prefix:trace={small},greedy={g},cap=3")
    assert law._table.shape[0] == 12 + 8 and str(law) == f"prefix:trace={small},greedy={g},cap=3"


def test_a_greedy_branch_from_a_context_id_of_2_to_the_31_minus_1_is_dropped(small, tmp_path):
    """Source context ids lie in 0..2^31 - 1: an id the trace lacks (as a held-out fold's) drops its branch."""
    first, _ = _first_offsets(small)
    ok = _branches(small, tmp_path / "ok.npz", [(0, first[0]), (1, first[1])],
                   {"branch_source_context": [0, (1 << 31) - 1]})
    assert parse_law(f"run:trace={small},greedy={ok},cap=3")._table.shape[0] == 12 + 2


_ONE_PER_BRANCH = "its metadata must list one source context and offset per branch"


@pytest.mark.parametrize("change", [
    lambda o: {"branch_source_context": [0, 1 << 31]}, lambda o: {"branch_source_context": [0, -1]},
    lambda o: {"branch_source_context": [0, True]}, lambda o: {"branch_source_context": [0]},
    lambda o: {"branch_source_context": 0}, lambda o: {"branch_offset": [o]},
    lambda o: {"branch_offset": [o, True]}, lambda o: {"branch_offset": [o, 1 << 31]},
], ids=["context 2^31", "context -1", "context True", "one context short", "context not a list",
        "one offset short", "offset True", "offset 2^31"])
def test_greedy_branch_metadata_must_list_one_whole_number_below_2_to_the_31_per_branch(small, tmp_path, change):
    """Given context 0's first offset o: each change alone breaks the metadata of two good branches."""
    first, _ = _first_offsets(small)
    g = _branches(small, tmp_path / "bad.npz", [(0, first[0]), (1, first[1])], change(first[0]))
    assert _err(parse_law, f"prefix:trace={small},greedy={g},cap=3") == f"prefix law: greedy={g!r}: {_ONE_PER_BRANCH}"


def test_greedy_branch_offsets_must_be_their_contexts_prompt_lengths(small, tmp_path):
    first, _ = _first_offsets(small)
    g = _branches(small, tmp_path / "off.npz", [(0, first[0]), (1, first[1])], {"branch_offset": [first[0],
                                                                                                   first[1] + 1]})
    assert _err(parse_law, f"prefix:trace={small},greedy={g},cap=3") == (
        f"prefix law: greedy={g!r}: its branch offsets are not its contexts' prompt lengths")


def test_a_greedy_branch_past_the_last_recorded_position_is_refused_naming_it(small, tmp_path):
    """Branch 2 leaves context 2 one position after its last recorded row (past every recorded key: the lookup
    is clipped to the last); branch 0's context id is not the trace's, so branch 2 is the third of the file."""
    first, last = _first_offsets(small)
    g = _branches(small, tmp_path / "g.npz", [(0, first[0]), (1, first[1]), (2, last[2] + 1)],
                  {"branch_source_context": [99, 1, 2]})
    assert _err(parse_law, f"run:trace={small},greedy={g},cap=3") == (
        f"run law: greedy={g!r}: branch 2 does not leave from a recorded position of trace={small!r}")


def test_greedy_branch_rows_must_be_their_steps_from_1(small, tmp_path):
    """``unique(first steps) == [1]`` and every later step one more: a branch starting at step 2, or skipping
    one, is refused (the other branch being right)."""
    first, _ = _first_offsets(small)
    for steps in (((1, 2), (2, 3)), ((2, 3), (1, 2)), ((1, 2), (1, 3))):
        g = _branches(small, tmp_path / "g.npz", [(0, first[0]), (1, first[1])], steps=steps)
        assert _err(parse_law, f"run:trace={small},greedy={g},cap=3") == (
            f"run law: greedy={g!r}: a branch's rows are not its consecutive steps from 1"), steps
    g = _branches(small, tmp_path / "ok.npz", [(0, first[0]), (1, first[1])], steps=((1, 2, 3), (1,)))
    assert parse_law(f"run:trace={small},greedy={g},cap=3")._table.shape[0] == 12 + 4


def test_greedy_branches_must_be_a_branch_trace_of_this_very_trace(small, tmp_path):
    first, _ = _first_offsets(small)
    g = _branches(small, tmp_path / "g.npz", [(0, first[0])], {"source_sha256": "0" * 64})
    assert _err(parse_law, f"run:trace={small},greedy={g},cap=3") == (
        f"run law: greedy={g!r} branches from another trace than trace={small!r} (its source's SHA-256 differs)")
    assert _err(parse_law, f"run:trace={small},greedy={small},cap=3") == (
        f"run law: greedy={small!r} is not a trace of greedy branches (its mode is 'sampled', not 'greedy-branches'; "
        f"record one with brw record --branches)")


# ---------------------------------------------------------------------------------------------------------
# brw/spec.py: fmt and parse_fields.


@pytest.mark.parametrize("x, text", [(1e15 - 1, "999999999999999"), (1e15, "1000000000000000.0"),
                                     (-1e15 + 1, "-999999999999999"), (-1e15, "-1000000000000000.0"),
                                     (3, "3"), (2.5, "2.5"), (-0.0, "0")])
def test_fmt_prints_whole_numbers_below_1e15_without_a_point(x, text):
    assert fmt(x) == text


def test_parse_fields_refuses_an_empty_body_listing_the_required_keys_only():
    assert _err(parse_fields, "", "s", ("a", "b"), ("c",)) == "law spec 's' needs parameters: a=..., b=..."


@pytest.mark.parametrize("part", ["a", "=1", " = 1", "a=", "a= "])
def test_a_field_without_a_key_an_equals_sign_or_a_value_is_refused(part):
    """``not eq or not key or not value.strip()``: each alone."""
    assert _err(parse_fields, part, "s", ("a",)) == f"bad parameter {part!r} in law spec 's': write key=value"


def test_parse_fields_names_unknown_repeated_and_missing_keys():
    assert _err(parse_fields, "x=1", "s", ("a", "b"), ("c", "d")) == (
        "unknown parameter 'x' in law spec 's'; expected a, b, [c], [d]")
    assert _err(parse_fields, "a=1,b=2,c=3,c=4", "s", ("a", "b"), ("c",)) == "parameter 'c' given twice in law spec 's'"
    assert _err(parse_fields, "a=1,a=2", "s", ("a",)) == "parameter 'a' given twice in law spec 's'"
    assert _err(parse_fields, "c=1", "s", ("a", "b"), ("c",)) == "law spec 's' is missing a, b"
    assert _err(parse_fields, "b=1", "s", ("a", "b")) == "law spec 's' is missing a"


def test_parse_fields_strips_keys_and_values_and_takes_optional_keys_once():
    assert parse_fields(" a = 1 , b=2 ", "s", ("a", "b")) == {"a": "1", "b": "2"}
    assert parse_fields("a=1,c=3", "s", ("a",), ("c",)) == {"a": "1", "c": "3"}
    assert parse_fields("a=1", "s", ("a",), ("c",)) == {"a": "1"}


# ---------------------------------------------------------------------------------------------------------
# brw/spec.py: numbers.


def test_parse_float_signs_at_their_edges():
    assert parse_float("5e-324", "x", "s", positive=True) == 5e-324
    assert _err(parse_float, "0.0", "x", "s", positive=True) == "x=0.0 in law spec 's' must be > 0"
    assert math.copysign(1, parse_float("-0", "x", "s", nonnegative=True)) == -1.0
    assert _err(parse_float, "-5e-324", "x", "s", nonnegative=True) == "x=-5e-324 in law spec 's' must be >= 0"
    assert parse_float("-1", "x", "s") == -1.0  # no sign required by default


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e999"])
def test_parse_float_refuses_a_non_finite_number(text):
    assert _err(parse_float, text, "x", "s") == f"x={text!r} in law spec 's' must be finite"


def test_parse_float_quotes_text_that_is_no_number_clipped_to_40():
    assert _err(parse_float, "1.5x", "x", "s") == "x='1.5x' in law spec 's' is not a number"
    assert _err(parse_float, "abcdefghij" * 5, "x", "s") == (
        "x='abcdefghijabcdefghijabcdef...(50 characters)...abcdefghij' in law spec 's' is not a number")


def test_parse_int_minimum_and_whole_numbers():
    assert parse_int("1", "k", "s", minimum=1) == 1 and parse_int("0", "k", "s", minimum=0) == 0
    assert _err(parse_int, "0", "k", "s", minimum=1) == "k=0 in law spec 's' must be >= 1"
    assert _err(parse_int, "-1", "k", "s", minimum=0) == "k=-1 in law spec 's' must be >= 0"
    assert _err(parse_int, "2.5", "k", "s", minimum=1) == "k='2.5' in law spec 's' must be a whole number"
    assert _err(parse_int, "abcdefghij" * 5, "k", "s", minimum=1) == (
        "k='abcdefghijabcdefghijabcdef...(50 characters)...abcdefghij' in law spec 's' must be a whole number")


def test_the_number_parsers_flags_are_keyword_only_and_off_by_default():
    p = inspect.signature(parse_float).parameters
    assert p["positive"].kind is p["nonnegative"].kind is inspect.Parameter.KEYWORD_ONLY
    assert p["positive"].default is False and p["nonnegative"].default is False
    q = inspect.signature(parse_int).parameters["minimum"]
    assert q.kind is inspect.Parameter.KEYWORD_ONLY and q.default is inspect.Parameter.empty


# ---------------------------------------------------------------------------------------------------------
# brw/spec.py: holdouts.


@pytest.mark.parametrize("text, fold", [("0/2", (0, 2)), ("1/2", (1, 2)), ("3/4", (3, 4)), ("01/4", (1, 4))])
def test_parse_holdout_takes_every_fold_of_two_or_more(text, fold):
    assert parse_holdout(text, "s") == fold


@pytest.mark.parametrize("text", ["1", "2/2", "0/1", "-1/4", "a/4", "1/b", "1/4/5", "/4"])
def test_parse_holdout_refuses_anything_but_a_fold_of_two_or_more(text):
    assert _err(parse_holdout, text, "s") == (f"holdout={text!r} in law spec 's' must be j/K, fold j of K folds "
                                              f"(K >= 2, 0 <= j < K), e.g. holdout=1/4")


def test_parse_holdout_quotes_its_text_clipped_to_40():
    assert _err(parse_holdout, "abcdefghij" * 5, "s").startswith(
        "holdout='abcdefghijabcdefghijabcdef...(50 characters)...abcdefghij' in law spec 's' must be j/K")


def test_holdout_text():
    assert holdout_text(None) == "" and holdout_text((1, 4)) == ",holdout=1/4"


@pytest.mark.parametrize("good, back", [(None, None), ((0, 2), (0, 2)), ((1, 2), (1, 2)),
                                        ((np.int64(2), np.int32(3)), (2, 3))])
def test_check_holdout_takes_none_or_a_fold_of_two_or_more(good, back):
    got = check_holdout(good, "trace")
    assert got == back and (got is None or all(type(v) is int for v in got))


@pytest.mark.parametrize("bad", [(2, 2), (-1, 2), (0, 1), [0, 2], (0, 2, 3), (0,), (True, 2), (0, np.True_),
                                 (0.0, 2), (0, 2.0), "0/2"])
def test_check_holdout_refuses_anything_else_naming_the_law(bad):
    assert _err(check_holdout, bad, "ctx") == ("ctx law needs holdout=None or (j, K), fold j of K folds with K >= 2 "
                                               f"and 0 <= j < K, got holdout={bad!r}")


# ---------------------------------------------------------------------------------------------------------
# brw/spec.py: temperatures.


@pytest.mark.parametrize("good", [5e-324, 1, 0.5, 1e300, np.float32(0.5), np.int64(2)])
def test_check_temperature_takes_any_finite_positive_number_as_a_float(good):
    got = check_temperature(good)
    assert type(got) is float and got == float(good)


@pytest.mark.parametrize("bad, shown", [(0, "0"), (-0.0, "-0.0"), (-1, "-1"), (math.nan, "nan"), (math.inf, "inf"),
                                        (True, "True"), (np.True_, "np.True_"), ("0.5", "'0.5'"), (None, "None")])
def test_check_temperature_refuses_anything_else_by_its_default_name_T(bad, shown):
    assert _err(check_temperature, bad) == f"T must be a finite number > 0 (a temperature), got {shown}"


def test_check_temperature_quotes_clipped_to_40_and_uses_the_name_given():
    assert _err(check_temperature, "abcdefghij" * 5, "the temperature") == (
        "the temperature must be a finite number > 0 (a temperature), got "
        "'abcdefghijabcdefghijabcde...(52 characters)...bcdefghij'")


def test_split_temperature_takes_T_out_wherever_it_stands():
    assert split_temperature("k=3", "s") == ("k=3", 1.0)
    assert split_temperature("T=0.5,k=3", "s") == ("k=3", 0.5)
    assert split_temperature("k=3, T =0.5", "s") == ("k=3", 0.5)
    assert split_temperature("k=3,t=2", "s") == ("k=3,t=2", 1.0)  # t is not T
    assert split_temperature("k=3,T=5e-324", "s") == ("k=3", 5e-324)
    assert split_temperature("", "s") == ("", 1.0)


@pytest.mark.parametrize("body, words", [
    ("k=3,T=", "T= in law spec 's' must be a temperature > 0 (T=1 is the law itself)"),
    ("k=3,T= ", "T= in law spec 's' must be a temperature > 0 (T=1 is the law itself)"),
    ("k=3,T=0", "T=0 in law spec 's' must be a temperature > 0 (T=1 is the law itself)"),
    ("k=3,T=-0.5", "T=-0.5 in law spec 's' must be a temperature > 0 (T=1 is the law itself)"),
    ("k=3,T=nan", "T='nan' in law spec 's' must be finite"),
    ("T=0.5,k=3,T=2", "parameter 'T' given twice in law spec 's'"),
    ("k=3,T=-" + "abcdefghij" * 5, ("T='-abcdefghijabcdefghijabcde...(51 characters)...abcdefghij' in law spec 's' "
                                    "is not a number")),
    ("k=3,T=-" + "1" * 50, ("T=-1111111111111111111111111...(51 characters)...1111111111 in law spec 's' must be "
                            "a temperature > 0 (T=1 is the law itself)")),
])
def test_split_temperature_refuses_a_bad_or_repeated_T(body, words):
    assert _err(split_temperature, body, "s") == words


def test_temperature_text_is_empty_at_exactly_1():
    assert temperature_text(1.0) == "" and temperature_text(1) == ""
    assert temperature_text(NEXT_ABOVE_1) == ",T=1.0000000000000002" and temperature_text(0.5) == ",T=0.5"


# ---------------------------------------------------------------------------------------------------------
# Error lines quote user input clipped (tests/hostile: at most 1000 characters); an out-of-range number of a
# thousand digits once came back whole.


@pytest.mark.parametrize("spec, value", [("uniform:k=-" + "9" * 1000, "-" + "9" * 1000),
                                         ("dirichlet:alpha=-" + "0" * 1000 + "1,k=3", "-" + "0" * 1000 + "1")])
def test_an_out_of_range_number_of_a_thousand_digits_is_quoted_clipped(spec, value):
    msg = _err(parse_law, spec)
    assert clip(value, 40) in msg and len(msg) < 400


# ---------------------------------------------------------------------------------------------------------
# Temperatures and parameters at the ends of the floats: the greedy limit, not NaN.


def test_a_fixed_law_at_a_temperature_so_small_that_every_log_p_over_T_overflows_is_its_greedy_limit():
    """log(1/2) / 1e-320 is -inf for both tokens (NaN once); from the largest log p the tie stays a tie, and a
    unique largest token takes all the mass."""
    tie = parse_law("fixed:p=0.5/0.5,T=1e-320")
    assert tie.mu == pytest.approx(math.log(2), rel=1e-15) and tie.psi(2.0) == pytest.approx(-math.log(2), rel=1e-15)
    one = parse_law("fixed:p=0.7/0.3,T=1e-320")
    assert one.mu == 0.0 and one.psi(2.0) == 0.0
    assert parse_law("fixed:p=0.7/0.3,T=0.5").mu == pytest.approx(  # an ordinary T keeps the plain arithmetic
        -sum(q * math.log(q) for q in (0.49 / 0.58, 0.09 / 0.58)), rel=1e-14)


def test_a_zipf_law_whose_s_over_T_overflows_puts_all_mass_on_token_1():
    """s / T = inf: 1^-inf is 1 (inf * log 1 was NaN), every other token 0."""
    law = parse_law("zipf:s=1e308,k=2,T=0.5")
    assert law.mu == 0.0 and law.psi(2.0) == 0.0 and law.p.tolist() == [1.0, 0.0]


def test_tempered_rows_whose_every_log_p_over_T_overflows_are_taken_from_their_largest():
    rows = np.log(np.array([[0.5, 0.5], [0.7, 0.3]]))
    out = rows_mod._tempered(rows.copy(), 1e-320)
    assert np.allclose(np.exp(out), [[0.5, 0.5], [1.0, 0.0]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(rows_mod._tempered(rows.copy(), 0.5),  # p^2 / sum p^2 elsewhere (to round-off)
                               rows / 0.5 - np.log(np.exp(rows / 0.5).sum(axis=1, keepdims=True)), rtol=1e-14)


def test_a_dirichlet_alpha_below_the_least_normal_float_is_refused():
    """The sampler draws log(U) / alpha: 1 / alpha overflows below the least normal float (a ValueError deep in
    the tempered sample once)."""
    least = sys.float_info.min
    assert parse_law(f"dirichlet:alpha={least!r},k=2").alpha == least
    with pytest.raises(BrwError, match=r"^dirichlet law needs alpha >= 2\.22507e-308 \(the least normal float\), "
                                       r"got alpha=1e-320$"):
        parse_law("dirichlet:alpha=1e-320,k=2,T=0.5")
