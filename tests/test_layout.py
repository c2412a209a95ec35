"""The house's walls: the core stands without the simulator, and the package face loads nothing heavy."""

import pickle
import subprocess
import sys
import textwrap

import pytest

from brw import parse_law


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_laws_and_theory_import_without_numba():
    """A meta-path finder refuses numba: the laws, the theory and the trace law still load and parse."""
    done = _run("""
        import sys

        class NoNumba:
            def find_spec(self, name, path=None, target=None):
                if name == "numba" or name.startswith("numba."):
                    raise ImportError("numba is blocked in this test")
                return None

        sys.meta_path.insert(0, NoNumba())
        import brw.theory
        import brw.laws
        law = brw.laws.parse_law("trace:chat")
        assert law.mu > 0 and str(law) == "trace:chat"
        assert brw.laws.parse_law("markov:trace=code,regimes=2").mu > 0
        try:
            import brw._kernels
        except ImportError:
            print("blocked")
        assert "numba" not in sys.modules
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "blocked"  # the finder really blocks the simulator


def test_import_brw_is_light():
    done = _run("""
        import sys
        import brw
        assert brw.__version__ and brw.BrwError
        heavy = sorted(m for m in ("numba", "scipy", "brw.laws", "brw.frontier", "brw.traces") if m in sys.modules)
        assert not heavy, heavy
        from brw.frontier import root_keys  # the submodule first: the function still owns the name
        from brw import frontier
        assert callable(frontier) and callable(brw.frontier)
        frontier("uniform:k=2", 2, replicates=1)  # the solver loads Numba on first use
        assert "numba" in sys.modules
    """)
    assert done.returncode == 0, done.stderr


def test_unknown_attribute_of_the_package_is_an_attribute_error():
    import brw

    with pytest.raises(AttributeError, match="no_such_name"):
        brw.no_such_name  # noqa: B018


@pytest.mark.parametrize("spec", ["trace:chat", "dirichlet:alpha=0.5,k=8", "fixed:p=0.7/0.3",
                                  "gemmix:s=0.9/0.2,theta=0.5/6,w=0.3/0.7", "markov:trace=math,regimes=3"])
def test_a_law_pickles_as_its_spec(spec):
    law = parse_law(spec)
    payload = pickle.dumps(law)
    assert len(payload) < 200 + len(spec)  # the spec, not the trace's arrays
    back = pickle.loads(payload)
    assert back == law and str(back) == spec
