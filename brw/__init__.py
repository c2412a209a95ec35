"""brw: the speed of light of speculative decoding, measured on branching random walks.

Pankratov and Alistarh (arXiv 2512.11718) map a draft tree onto a branching random walk; brw simulates it
exactly, finds the optimal P-node draft tree for every P, and checks the theory against it.

The names below are loaded on first use (PEP 562): ``import brw`` imports neither Numba nor SciPy, and
``brw.theory`` or ``brw.laws`` never load the simulator.
"""

from __future__ import annotations

import importlib
import sys
import types

from brw._version import __version__
from brw.errors import BrwError

#: Public name -> the module that defines it.
_LAZY = {
    "Law": "brw.laws",
    "parse_law": "brw.laws",
    "FrontierResult": "brw.results",
    "ThresholdResult": "brw.results",
    "Tree": "brw.results",
    "frontier": "brw.frontier",
    "frontier_tree": "brw.frontier",
    "threshold": "brw.frontier",
    "threshold_tree": "brw.frontier",
    "kernel_threads": "brw.frontier",
    "root_keys": "brw.frontier",
    "sweep": "brw.sweep",
    "policies": "brw.policies",
    "PoliciesResult": "brw.policies",
}

__all__ = ["__version__", "BrwError", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'brw' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _Face(types.ModuleType):
    """The package module. Importing the submodule ``brw.frontier`` would bind the module over the function
    ``brw.frontier``: the function keeps the name, as ``from brw import frontier`` promises."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Face
