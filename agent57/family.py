"""Agent57's family of N policies: NGU's betas with a discount schedule that reaches 0.9999.

Badia et al. 2020 ("Agent57: Outperforming the Atari Human Benchmark"), Appendix A (the betas are
NGU's, `ngu.family.betas`); with gamma_0 = 0.9999, gamma_1 = 0.997, gamma_2 = 0.99 and N = 32:

    gamma_j = gamma_0                                                   j = 0
            = gamma_1 + (gamma_0 - gamma_1) sigmoid(10 (2 j - 6) / 6)  j = 1 .. 6
            = gamma_1                                                   j = 7
            = 1 - exp(((N - 1 - j) log(1 - gamma_1) + (j - 8) log(1 - gamma_2)) / (N - 9))
                                                                        j = 8 .. N - 1

The last case is NGU's log-linear interpolation of the horizons, from gamma_1 at j = 8 to gamma_2 at
j = N - 1 (the weights N - 1 - j and j - 8 sum to N - 9). So the most exploitative policy looks
30 times further ahead than the most exploratory one, and the policies 1 .. 6, which the bandit
can pick for a long-horizon exploiter with a little intrinsic reward, sit near gamma_0.
"""
from __future__ import annotations

import math

import numpy as np


def gammas(num_policies: int = 32, gamma_0: float = 0.9999, gamma_1: float = 0.997,
           gamma_2: float = 0.99) -> np.ndarray:
    """[N] float64: gamma_j by Agent57's schedule (needs N >= 10: j = 8 .. N - 1 must hold two arms)."""
    n = num_policies
    if n < 10:
        raise ValueError(f"Agent57's discount schedule needs at least 10 policies, got {n}")
    out = np.empty(n)
    for j in range(n):
        if j == 0:
            out[j] = gamma_0
        elif j <= 6:
            out[j] = gamma_1 + (gamma_0 - gamma_1) / (1.0 + math.exp(-10.0 * (2 * j - 6) / 6))
        elif j == 7:
            out[j] = gamma_1
        else:
            out[j] = 1.0 - math.exp(((n - 1 - j) * math.log(1.0 - gamma_1) + (j - 8) * math.log(1.0 - gamma_2))
                                    / (n - 9))
    return out
