"""NGU's policy family (Badia et al. 2020, Appendix A) at hand-computed points."""
import math

import pytest

from ngu.config import make_config
from ngu.family import betas, gammas


def test_betas_run_from_pure_exploitation_to_beta_along_a_sigmoid():
    b = betas(32, 0.3)
    assert b[0] == 0.0 and b[31] == 0.3
    # j = 8: 10 (16 - 30) / 30 = -14/3, so 0.3 / (1 + e^(14/3)) = 0.3 / 107.34 = 0.0027948
    assert b[8] == pytest.approx(0.3 / (1 + math.exp(14 / 3))) and round(b[8], 7) == 0.0027948
    assert b[15] == pytest.approx(0.15)  # 2 * 15 - 30 = 0: the sigmoid's middle
    # j = 16: 10 * 2 / 30 = 2/3, so 0.3 / (1 + e^(-2/3)) = 0.3 / 1.51342 = 0.19823
    assert round(b[16], 5) == 0.19823
    assert all(b[j] < b[j + 1] for j in range(31))


def test_gammas_interpolate_the_log_horizons_from_0_997_to_0_99():
    """1 - gamma_j = 0.003^((31 - j) / 31) * 0.01^(j / 31)."""
    g = gammas(32, 0.997, 0.99)
    assert g[0] == pytest.approx(0.997) and g[31] == pytest.approx(0.99)
    assert round(g[8], 4) == 0.9959  # 1 - 0.003^(23/31) 0.01^(8/31) = 1 - 0.004093
    assert round(g[15], 4) == 0.9946 and round(g[16], 4) == 0.9944
    assert g[8] == pytest.approx(1 - 0.003 ** (23 / 31) * 0.01 ** (8 / 31))
    assert all(g[j] > g[j + 1] for j in range(31))


def test_small_images_take_a_thirtieth_of_the_papers_beta_and_vectors_keep_it():
    """beta 0.3 is Table 6's; on MinAtar the episodic reward outweighs the game's points (see
    test_ngu_intrinsic), so small images take 0.01. A flag still sets it."""
    assert make_config({"env_id": "CartPole-v1"}).intrinsic_beta == 0.3
    assert make_config({"env_id": "common.catch:MiniCatch-v0"}).intrinsic_beta == 0.01
    assert make_config({"env_id": "common.catch:MiniCatch-v0", "intrinsic_beta": 0.2}).intrinsic_beta == 0.2
