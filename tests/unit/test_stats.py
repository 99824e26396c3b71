"""The shared statistics agree with themselves: the vectorized Wilson bound is the scalar one."""

from __future__ import annotations

import numpy as np

from deploylearn.serving.stats import wilson_interval, wilson_lower_bounds


def test_the_vectorized_lower_bound_is_the_scalar_interval() -> None:
    runs = np.array([0, 1, 1, 5, 10, 10, 263, 1000])
    successes = np.array([0, 0, 1, 2, 0, 10, 81, 999])
    vector = wilson_lower_bounds(successes, runs)
    scalar = [
        (wilson_interval(int(s), int(n)) or (0.0, 1.0))[0]
        for s, n in zip(successes, runs, strict=True)
    ]
    np.testing.assert_allclose(vector, scalar, rtol=0, atol=1e-12)
    assert vector[0] == 0.0 and vector[4] == 0.0  # no runs, no successes: exactly 0
