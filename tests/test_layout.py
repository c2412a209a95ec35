"""The house's walls: the import graph of the whole package against the layer table of docs/layout.md, the core
without the simulator, and a package face that loads nothing heavy."""

import ast
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from brw import parse_law

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "brw"
#: The private kernel modules: what the simulator calls, by design.
KERNELS = ("brw._kernels", "brw._sampled_kernels")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name ('brw', 'brw.laws', 'brw.laws.base', ...)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules) -> list[tuple[str, str, int]]:
    """(imported module, imported name or '', line) for every import of the package in one module, at any depth
    (inside functions too). ``from brw.x import y`` names the module ``brw.x.y`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names if a.name.split(".")[0] == "brw"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "brw":
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub, "", node.lineno) if sub in modules else (base, a.name, node.lineno))
    return out


def _layers() -> dict[str, int]:
    """Module -> layer index, read from the table of docs/layout.md (layer 0 at the top)."""
    text = (ROOT / "docs" / "layout.md").read_text()
    rows = text.split("<!-- layers:", 1)[1].splitlines()
    out = {}
    index = 0
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if not row.startswith("|") or len(cells) < 2 or cells[0] in ("layer", "") or set(cells[0]) <= {"-"}:
            if out and not row.startswith("|"):
                break
            continue
        for mod in re.findall(r"`([\w.]+)`", cells[1]):
            out["brw" if mod == "brw" else f"brw.{mod}"] = index
        index += 1
    return out


def test_every_module_has_a_layer_and_no_import_climbs():
    modules, layers = _modules(), _layers()
    assert set(modules) == set(layers), (sorted(set(modules) - set(layers)), sorted(set(layers) - set(modules)))
    climbs = []
    for name, path in modules.items():
        for target, _, line in _imports(name, path, modules):
            target = target if target in modules else "brw"
            if layers[target] > layers[name]:
                climbs.append(f"{name}:{line} imports {target}")
    assert not climbs, climbs


def test_the_import_graph_has_no_cycle():
    modules = _modules()
    graph = {name: {t for t, _, _ in _imports(name, path, modules) if t in modules and t != name}
             for name, path in modules.items()}
    # Importing brw.x.y runs brw.x first: a package's own face is not a dependency of its modules' imports of
    # their siblings, so only the edges written in the source count.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_module_imports_another_modules_private_name():
    modules = _modules()
    private = []
    for name, path in modules.items():
        for target, imported, line in _imports(name, path, modules):
            leaf = imported or target.rpartition(".")[2]
            if leaf.startswith("_") and not leaf.startswith("__") and target not in KERNELS:
                private.append(f"{name}:{line} imports {target} {imported}")
    assert not private, private


def test_the_checker_sees_what_it_must():
    """The graph builder finds an import inside a function, resolves ``from brw.x import module``, and the
    table parser knows every layer: a checker that saw nothing would pass everything."""
    modules = _modules()
    found = _imports("brw.laws.fitted", modules["brw.laws.fitted"], modules)
    assert ("brw.laws.context", "greedy_runs") in {(t, n) for t, n, _ in found}  # inside a function
    found = _imports("brw.studies.reproduce", modules["brw.studies.reproduce"], modules)
    assert ("brw.figures", "") in {(t, n) for t, n, _ in found}  # from brw import figures
    layers = _layers()
    assert layers["brw.errors"] == 0 and layers["brw.cli"] == max(layers.values()) >= 9
    assert layers["brw.laws.base"] == layers["brw.laws"] < layers["brw.theory"] < layers["brw._kernels"]
    assert layers["brw.real.models"] > layers["brw.solver"]


def test_no_function_is_over_100_lines_outside_the_kernels():
    long = []
    for name, path in _modules().items():
        if name in KERNELS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 100:
                long.append(f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long, long


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
        import brw.reference
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


def test_import_brw_is_light_and_the_function_owns_its_name():
    done = _run("""
        import sys, types
        import brw
        assert brw.__version__ and brw.BrwError
        assert type(sys.modules["brw"]) is types.ModuleType  # no module subclass guards any name
        heavy = sorted(m for m in ("numba", "scipy", "brw.laws", "brw.solver", "brw.traces") if m in sys.modules)
        assert not heavy, heavy
        import brw.solver
        from brw import frontier
        assert callable(frontier) and callable(brw.frontier) and frontier is brw.solver.frontier
        frontier("uniform:k=2", 2, replicates=1)  # the solver loads Numba on first use
        assert "numba" in sys.modules
        # The other public functions own their names whatever was imported first (brw.sampled imports the
        # policies' module; a module named like its function would rebind brw.policies to itself).
        import brw.sampled, brw.sweeps, brw.drafting
        assert brw.policies is brw.drafting.policies and brw.sweep is brw.sweeps.sweep
        assert all(callable(getattr(brw, name)) for name in ("frontier", "frontier_tree", "threshold", "policies", "sweep"))
    """)
    assert done.returncode == 0, done.stderr


def test_old_module_names_are_deprecated_aliases():
    import warnings

    import brw
    import brw.real.realtree

    for old, new in brw.MOVED.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sys.modules.pop(old, None)
            module = __import__(old, fromlist=["_"])
        assert module is sys.modules[new] and module.__spec__.name == new, old
        assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught), old


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
