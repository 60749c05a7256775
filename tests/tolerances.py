"""How close the exact solver comes to a float64 reference solve, for the tests' assertions.

The exact half-step forms each row's Gram matrix from float32 products, summed in float64
chunk by chunk (:mod:`alsmf.solvers.gram`), so its factors agree with a float64
``numpy.linalg.solve`` of the same system to about 1e-6 (relative); these bounds keep a margin.
"""

EXACT_RTOL = 1e-5
EXACT_ATOL = 2e-6
EXACT = {"rtol": EXACT_RTOL, "atol": EXACT_ATOL}
"""Keyword arguments for ``numpy.testing.assert_allclose``."""
EXACT_APPROX = {"rel": EXACT_RTOL, "abs": EXACT_ATOL}
"""Keyword arguments for ``pytest.approx``."""
