"""NGU's family of N policies: pairs (beta_j, gamma_j) from exploitative to exploratory.

Badia et al. 2020 ("Never Give Up"), Appendix A, equations for beta_i and gamma_i (N = 32, beta = 0.3,
gamma_max = 0.997, gamma_min = 0.99, Table 6):

    beta_j  = 0                                             j = 0
            = beta                                          j = N - 1
            = beta * sigmoid(10 * (2 j - (N - 2)) / (N - 2)) otherwise
    gamma_j = 1 - exp(((N - 1 - j) log(1 - gamma_max) + j log(1 - gamma_min)) / (N - 1))

Policy j is trained on r_e + beta_j r_i with discount gamma_j; j = 0 is pure exploitation.
"""
from __future__ import annotations

import math

import numpy as np


def betas(num_policies: int = 32, beta: float = 0.3) -> np.ndarray:
    """[N] float64: beta_j by Appendix A's formula."""
    n = num_policies
    out = np.empty(n)
    for j in range(n):
        if j == 0:
            out[j] = 0.0
        elif j == n - 1:
            out[j] = beta
        else:
            out[j] = beta / (1.0 + math.exp(-10.0 * (2 * j - (n - 2)) / (n - 2)))
    return out


def gammas(num_policies: int = 32, gamma_max: float = 0.997, gamma_min: float = 0.99) -> np.ndarray:
    """[N] float64: gamma_j by Appendix A's formula, gamma_0 = gamma_max down to gamma_{N-1} = gamma_min."""
    n = num_policies
    j = np.arange(n)
    if n == 1:
        return np.array([gamma_max])
    return 1.0 - np.exp(((n - 1 - j) * math.log(1.0 - gamma_max) + j * math.log(1.0 - gamma_min)) / (n - 1))
