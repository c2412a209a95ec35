"""The constants of the kernels' counter-based random streams, for the kernels and their pure-Python twin.

Every node of a random tree has a 64-bit key; its children's keys and its random stream are hashes of it
(splitmix64's finaliser, with the constants below), so a tree is a function of its root key alone. The kernels
(``brw._kernels``) and the plain-Python reference (``brw.reference``) read these same constants, which is what
makes them walk the same trees. NumPy only: importing this module never loads Numba.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["GOLDEN", "M1", "M2", "CHILD", "STREAM", "REGIME", "COMPONENT", "NOISE", "DRAFTER", "TWO_M53",
           "ZIGGURAT_X", "ZIGGURAT_F", "ZIGGURAT_R", "ziggurat_tables"]

#: The stream's increment (the golden ratio in 64 bits, splitmix64's gamma).
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
#: splitmix64's two multipliers.
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
#: A child's key: mix64(key + (rank + 1) * CHILD).
CHILD = np.uint64(0xD1B54A32D192ED03)
#: A node's stream starts at key ^ STREAM.
STREAM = np.uint64(0x6A09E667F3BCC909)
#: A node's regime and its mixture component are hashes of their own: key ^ REGIME, key ^ COMPONENT.
REGIME = np.uint64(0xBB67AE8584CAA73B)
COMPONENT = np.uint64(0x3C6EF372FE94F82B)
#: A node's drafter noise stream and its drafter's own vector (brw.policies): key ^ NOISE, key ^ DRAFTER.
NOISE = np.uint64(0xA54FF53A5F1D36F1)
DRAFTER = np.uint64(0x510E527FADE682D1)
#: 2^-53: a uniform on (0, 1) is ((u64 >> 11) + 0.5) * TWO_M53.
TWO_M53 = 1.0 / 9007199254740992.0
#: The right edge of the base strip of Marsaglia and Tsang's 256-layer ziggurat for the half-normal.
ZIGGURAT_R = 3.6541528853610088


def ziggurat_tables(n: int = 256, r: float = ZIGGURAT_R, v: float = 0.00492867323399):
    """Layer edges and heights of Marsaglia and Tsang's ziggurat for the half-normal.

    Parameters
    ----------
    n : int, optional
        Layers (256).
    r : float, optional
        The right edge of the base strip.
    v : float, optional
        The area of each layer.

    Returns
    -------
    tuple of numpy.ndarray
        ``(X, F)``: edges X[0..n] and heights F = exp(-X^2/2); layer 0 is the base strip [0, r] plus the tail
        (X[0] = v / f(r)).
    """
    x = np.empty(n + 1)
    x[0] = v / math.exp(-0.5 * r * r)
    x[1] = r
    for i in range(2, n):
        x[i] = math.sqrt(-2.0 * math.log(v / x[i - 1] + math.exp(-0.5 * x[i - 1] ** 2)))
    x[n] = 0.0
    return x, np.exp(-0.5 * x * x)


#: The ziggurat's edges and heights (256 layers).
ZIGGURAT_X, ZIGGURAT_F = ziggurat_tables()
