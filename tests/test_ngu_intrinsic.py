"""NGU's episodic novelty (Badia et al. 2020, Algorithm 1 and Table 6) against hand-computed values."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngu.episodic import EpisodicMemory, EpisodicParams, episodic_rewards


def test_ten_neighbours_identical_to_the_query_give_one_over_sqrt_ten_plus_c():
    """Every distance 0: d_n = max(0 - 0.008, 0) = 0, each kernel eps / (0 + eps) = 1, s = sqrt(10) + 0.001,
    r = 1 / 3.163278 = 0.3161."""
    memory = EpisodicMemory(1, 4, capacity=100)
    x = np.array([[0.5, -1.0, 2.0, 0.0]], np.float32)
    for _ in range(10):
        memory.step(x)
    r = memory.step(x)[0]
    assert r == pytest.approx(1 / (math.sqrt(10) + 0.001)) and round(r, 4) == 0.3161


def test_the_kernel_on_hand_computed_distances():
    """Neighbours of the query 0 at squared distances 1 and 4 (k = 2): d2_m = (1 + 4) / 2 = 2.5, so
    d_n = max(0.4 - 0.008, 0) = 0.392 and max(1.6 - 0.008, 0) = 1.592; kernels 1e-4 / (d_n + 1e-4);
    s = sqrt(sum) + 0.001 and r = 1 / s."""
    memory = np.zeros((1, 4, 1), np.float32)
    memory[0, :2, 0] = [1.0, 2.0]
    mean_state = np.zeros((1, 2))
    r = episodic_rewards(memory, np.array([2]), np.zeros((1, 1), np.float32), mean_state, 2, 0.008, 1e-4, 0.001, 8.0)
    kernels = 1e-4 / (0.392 + 1e-4) + 1e-4 / (1.592 + 1e-4)
    assert r[0] == pytest.approx(1 / (math.sqrt(kernels) + 0.001))
    assert mean_state[0].tolist() == [2.5, 2.0]


def test_ten_neighbours_at_the_mean_distance_give_about_thirty():
    """The typical step of a short episode, whose neighbours are as far as the running mean: every
    d2 / d2_m = 1, d_n = 1 - 0.008 = 0.992, each kernel 1e-4 / 0.9921 = 1.00796e-4, s = sqrt(1.00796e-3)
    + 0.001 = 0.0327484, r = 30.536: two orders of magnitude above the points a MinAtar game pays per
    step, which is why NGU's small-image beta is a thirtieth of the paper's (ngu/config.py)."""
    memory = np.zeros((1, 16, 1), np.float32)
    memory[0, :10, 0] = 1.0
    r = episodic_rewards(memory, np.array([10]), np.zeros((1, 1), np.float32), np.zeros((1, 2)), 10, 0.008, 1e-4,
                         0.001, 8.0)
    assert r[0] == pytest.approx(1 / (math.sqrt(10 * 1e-4 / 0.9921) + 0.001)) and round(r[0], 2) == 30.54


def test_a_similarity_above_s_m_gives_no_reward():
    """With k = 100 identical neighbours s = sqrt(100) + c = 10.001 > 8: r = 0 (Algorithm 1, line 9)."""
    memory = EpisodicMemory(1, 2, capacity=200, params=EpisodicParams(k=100))
    for _ in range(100):
        memory.step(np.ones((1, 2), np.float32))
    assert memory.step(np.ones((1, 2), np.float32))[0] == 0.0


def test_a_revisited_state_earns_less_than_a_new_one_and_an_episode_start_empties_the_memory():
    rng = np.random.default_rng(0)
    memory = EpisodicMemory(2, 8, capacity=1000)
    states = rng.standard_normal((50, 8)).astype(np.float32)
    assert memory.step(np.stack([states[0], states[0]])).tolist() == [0.0, 0.0]  # nothing to compare with yet
    for s in states[1:]:
        memory.step(np.stack([s, s]))
    revisit, new = memory.step(np.stack([states[10], rng.standard_normal(8).astype(np.float32) * 3]))
    assert revisit < new
    memory.reset(0)
    assert memory.sizes.tolist() == [0, 51]
    assert memory.step(np.stack([states[10], states[10]]))[0] == 0.0  # env 0's memory is empty again


def brute_force(memory, sizes, queries, mean_state, k, xi, eps, c, s_m):
    out = []
    for e in range(len(sizes)):
        n = min(sizes[e], memory.shape[1])
        if n == 0:
            out.append(0.0)
            continue
        d = np.sort(((memory[e, :n].astype(np.float64) - queries[e]) ** 2).sum(-1))[:k]
        count = mean_state[e, 1] + len(d)
        mean = (mean_state[e, 0] * mean_state[e, 1] + d.sum()) / count
        mean_state[e] = (mean, count)
        d_n = np.maximum((d / mean if mean > 0 else np.zeros_like(d)) - xi, 0.0)
        s = math.sqrt((eps / (d_n + eps)).sum()) + c
        out.append(0.0 if s > s_m else 1.0 / s)
    return np.array(out)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(0, 60), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_the_numba_kernel_matches_a_numpy_brute_force(num_envs, filled, k, seed):
    rng = np.random.default_rng(seed)
    memory = rng.standard_normal((num_envs, 40, 5)).astype(np.float32)
    sizes = rng.integers(0, filled + 1, num_envs)
    queries = rng.standard_normal((num_envs, 5)).astype(np.float32)
    start = np.abs(rng.standard_normal((num_envs, 2))) * [1.0, 5.0]
    expected_state = start.copy()
    expected = brute_force(memory, sizes, queries, expected_state, k, 0.008, 1e-4, 0.001, 8.0)
    state = start.copy()
    got = episodic_rewards(memory, sizes, queries, state, k, 0.008, 1e-4, 0.001, 8.0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(state, expected_state, rtol=1e-6)


def test_the_life_long_modulator_is_clipped_into_1_and_L():
    """alpha = 1 + (err - mu_e) / sigma_e with mu_e = 1, sigma_e = 0.5 (NGU section 2): errors 0, 1.5 and 10
    give alpha -1, 2 and 19, clipped to 1, 2 and 5 (L = 5)."""
    from ngu.network import RunningMeanStd, modulated_intrinsic

    stats = RunningMeanStd()
    stats.mean, stats.var, stats.count = np.float64(1.0), np.float64(0.25), 10.0
    r = modulated_intrinsic(np.array([0.3, 0.3, 0.3]), np.array([0.0, 1.5, 10.0]), stats)
    assert r.tolist() == pytest.approx([0.3, 0.6, 1.5])
    assert stats.count == 13.0  # the batch joined the statistics after it was judged


def test_running_statistics_merge_batches_exactly():
    from ngu.network import RunningMeanStd

    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((n, 3)) * 2 + 1 for n in (1, 7, 20)]
    stats = RunningMeanStd((3,))
    for b in batches:
        stats.update(b)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean, everything.mean(0))
    np.testing.assert_allclose(stats.var, everything.var(0))


def test_the_q_network_reads_the_policy_index():
    import torch

    from ngu.network import NGUNetwork

    torch.manual_seed(0)
    net = NGUNetwork((4,), 3, num_policies=8, hidden_size=16, lstm_size=8)
    obs, zeros = torch.ones(1, 2, 4), torch.zeros(1, 2)
    q, state = net.unroll_ngu(obs, zeros.long(), zeros, zeros, torch.tensor([[0, 7]]), net.initial_state(2))
    assert q.shape == (1, 2, 3) and state.h.shape == (2, 8)
    assert not torch.allclose(q[0, 0], q[0, 1])  # the same observation, two policies, two answers
