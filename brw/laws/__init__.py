"""Step laws: the law D of a node's next-token probability vector (theory.md section 2).

A law is a small frozen object named by one spec string (conventions.md, "Law specs"):
``parse_law(spec)`` builds it and ``str(law)`` prints the same spec back. Every law knows, exactly,

- ``mu``  = E[H(p)], the expected entropy (nats),
- ``mu2`` = E[sum p_i (log p_i)^2], the expected second log-moment,
- ``psi(theta)`` = log E[sum_i p_i^theta],
- the spine step law (draw p ~ D, then J ~ p, step = -log p_J): ``spine_cdf``, ``spine_atoms`` (discrete
  laws) and ``spine_sample``,

and what the kernels need to draw a node's vector (``kernel_law``, see ``brw.kernel_law``). A law pickles as its
spec string. The families live in this package's modules: ``parametric`` (uniform, fixed, zipf, dirichlet, gem), ``trace``
(a recorded trace's empirical law), ``fitted`` (gemmix, markov) and ``context`` (ctx, path, edge, run, prefix);
the last three are imported on the first use of one of their names, so parsing a parametric law never loads
trace files or fitting code.
"""

from __future__ import annotations

from brw.errors import BrwError, clip
from brw.laws.base import REGISTRY, Law, register_law
from brw.laws.parametric import GEM, Dirichlet, Fixed, Uniform, Zipf

__all__ = ["Law", "Uniform", "Fixed", "Dirichlet", "Zipf", "GEM", "parse_law", "register_law"]

#: Law names defined in a module of their own, imported on their first use.
_TRACE, _FITTED, _CONTEXT = ("trace",), ("gemmix", "markov"), ("ctx", "path", "edge", "run", "prefix")


def _load_family(name: str) -> None:
    """Import the module that registers the law ``name`` (parsing a parametric law loads none of them)."""
    if name in _TRACE:
        import brw.laws.trace  # noqa: F401
    elif name in _FITTED:
        import brw.laws.fitted  # noqa: F401
    elif name in _CONTEXT:
        import brw.laws.context  # noqa: F401


def parse_law(spec) -> Law:
    """Build the law named by a spec string, or return a law as is.

    Parameters
    ----------
    spec : str or Law
        A law spec such as ``dirichlet:alpha=0.5,k=8`` or ``trace:chat`` (conventions, "Law specs"); every law
        takes ``T=`` (``trace:chat,T=0.7``), its temperature.

    Returns
    -------
    Law
        The law; ``str(law)`` prints the spec back.

    Raises
    ------
    BrwError
        When the spec names no known law or its parameters are malformed.
    """
    if isinstance(spec, Law):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise BrwError(f"law spec must be a non-empty string like 'dirichlet:alpha=0.5,k=8', got {spec!r}")
    spec = spec.strip()
    name = spec.partition(":")[0]
    if name not in REGISTRY:
        _load_family(name)
    cls = REGISTRY.get(name)
    shown = clip(spec)  # messages quote the spec, which may be any length
    if cls is None:
        known = ", ".join(sorted(set(REGISTRY) | set(_TRACE + _FITTED + _CONTEXT)))
        raise BrwError(f"unknown law {clip(name, 40)!r} in spec {shown!r}; known laws: {known}")
    return cls.from_spec(spec)
