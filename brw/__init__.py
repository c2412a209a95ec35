"""brw: the speed of light of speculative decoding, measured on branching random walks.

Pankratov and Alistarh (arXiv 2512.11718) map a draft tree onto a branching random walk; brw simulates it
exactly, finds the optimal P-node draft tree for every P, and checks the theory against it.
"""

__version__ = "0.1.0"

from brw.errors import BrwError  # noqa: E402
from brw.laws import Law, parse_law  # noqa: E402
from brw.frontier import (  # noqa: E402
    FrontierResult, ThresholdResult, Tree, frontier, frontier_tree, threshold, threshold_tree,
)

__all__ = [
    "__version__", "BrwError", "Law", "parse_law", "FrontierResult", "ThresholdResult", "Tree", "frontier",
    "frontier_tree", "threshold", "threshold_tree",
]

import brw.traces  # noqa: E402,F401  registers the ``trace:`` law with parse_law
import brw.fitted  # noqa: E402,F401  registers the fitted laws (gemmix, markov)
