"""brw: the speed of light of speculative decoding, measured on branching random walks.

Pankratov and Alistarh (arXiv 2512.11718) map a draft tree onto a branching random walk; brw simulates it
exactly, finds the optimal P-node draft tree for every P, and checks the theory against it.

The names below are loaded on first use (PEP 562): ``import brw`` imports neither Numba nor SciPy, and
``brw.theory`` or ``brw.laws`` never load the simulator. The solver lives in ``brw.solver``, so the function
``brw.frontier`` never meets a module of the same name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

from brw._version import __version__
from brw.errors import BrwError

#: Public name -> the module that defines it.
_LAZY = {
    "Law": "brw.laws",
    "parse_law": "brw.laws",
    "FrontierResult": "brw.results",
    "ThresholdResult": "brw.results",
    "Tree": "brw.results",
    "frontier": "brw.solver",
    "frontier_tree": "brw.solver",
    "threshold": "brw.solver",
    "threshold_tree": "brw.solver",
    "kernel_threads": "brw.solver",
    "root_keys": "brw.solver",
    "sweep": "brw.sweeps",
    "policies": "brw.drafting",
    "PoliciesResult": "brw.drafting",
}

__all__ = ["__version__", "BrwError", *_LAZY]

#: Modules that moved into the ``brw.real`` and ``brw.laws`` subpackages (version 0.2): their old names still
#: import, with a DeprecationWarning, for one release.
MOVED = {**{f"brw.{name}": f"brw.real.{name}" for name in
            ("models", "recording", "expansion", "realtree", "realdrafter", "costcurve", "importers")},
         "brw.trace_law": "brw.laws.trace", "brw.fitted": "brw.laws.fitted", "brw.context_laws": "brw.laws.context"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        if f"brw.{name}" in MOVED:
            return importlib.import_module(f"brw.{name}")
        raise AttributeError(f"module 'brw' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a moved module's old name as the module itself (the same object), with a DeprecationWarning."""

    _specs: dict = {}

    def find_spec(self, name, path=None, target=None):
        if name not in MOVED:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        warnings.warn(f"{spec.name} is now {MOVED[spec.name]}; the old name goes in the next release",
                      DeprecationWarning, stacklevel=3)
        module = importlib.import_module(MOVED[spec.name])
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module):
        """Nothing to run: the new module is loaded already; it keeps its own spec (the import system has just
        set the alias's)."""
        module.__spec__ = self._specs[module.__name__]


if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedFinder())
