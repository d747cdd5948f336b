"""Sum-tree: a hand-drawn tree with exact answers, and hypothesis properties against numpy."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.replay.sumtree import SumTree

pytestmark = pytest.mark.timeout(120)


def make_tree(priorities) -> SumTree:
    tree = SumTree(len(priorities))
    tree.update(np.arange(len(priorities)), np.asarray(priorities, dtype=np.float64))
    return tree


def test_small_tree_by_hand():
    # Leaves 0..4 hold 1, 2, 3, 4, 0.5; capacity 5 is padded to 8 leaves (zeros).
    #
    #                        [10.5]                      min: 0.5
    #                /                  \
    #            [10]                    [0.5]
    #          /      \                /      \
    #       [3]        [7]          [0.5]      [0]
    #      /   \      /   \        /   \      /   \
    #    [1]   [2]  [3]   [4]   [0.5]  [0]  [0]   [0]
    #
    # cumsum = [1, 3, 6, 10, 10.5]: u in [0,1) -> 0, [1,3) -> 1, [3,6) -> 2, [6,10) -> 3, [10,10.5) -> 4.
    tree = make_tree([1.0, 2.0, 3.0, 4.0, 0.5])
    assert tree.total == 10.5
    assert tree.min_priority == 0.5
    assert tree.sum_nodes[2] == 10.0 and tree.sum_nodes[3] == 0.5
    assert tree.sum_nodes[4] == 3.0 and tree.sum_nodes[5] == 7.0
    us = np.array([0.0, 0.999, 1.0, 2.5, 3.0, 5.999, 6.0, 9.999, 10.0, 10.49])
    assert tree.find(us).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]

    # Zero leaf 1 and lower leaf 4: cumsum = [1, 1, 4, 8, 8.25], leaf 1 is skipped.
    tree.update(np.array([1, 4]), np.array([0.0, 0.25]))
    assert tree.total == 8.25
    assert tree.min_priority == 0.25
    assert tree.find(np.array([0.5, 1.0, 3.99, 4.0, 8.0, 8.25])).tolist() == [0, 2, 2, 3, 4, 4]
    # u at the total (a rounding overshoot) still ends on the last positive leaf, never on padding.


def test_stratified_sample_hits_each_stratum():
    # Equal priorities and B = capacity: stratum k is exactly leaf k, whatever the uniforms are.
    tree = make_tree([2.0] * 6)
    indices, values = tree.sample(6, np.random.default_rng(0))
    assert indices.tolist() == [0, 1, 2, 3, 4, 5]
    assert values.tolist() == [2.0] * 6


def test_empty_tree_and_bad_input_raise():
    tree = SumTree(4)
    with pytest.raises(ValueError):
        tree.sample(2, np.random.default_rng(0))
    with pytest.raises(ValueError):
        tree.update(np.array([0]), np.array([-1.0]))
    with pytest.raises(IndexError):
        tree.update(np.array([4]), np.array([1.0]))


def test_chi_square_sampling_frequencies():
    # 40,000 stratified draws from p = [1, 2, ..., 8]/36; chi-square with 7 dof, 0.1% critical value 24.32.
    tree = make_tree(np.arange(1.0, 9.0))
    rng = np.random.default_rng(1234)
    counts = np.zeros(8)
    for _ in range(100):
        indices, _ = tree.sample(400, rng)
        counts += np.bincount(indices, minlength=8)
    expected = 40_000 * np.arange(1.0, 9.0) / 36.0
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 24.32, (counts, expected)


# Integer-valued priorities make every partial sum exact in float64, so the tree's sums (added in
# another order than cumsum) match numpy's bit for bit and the search comparison can be exact.
int_priorities = st.lists(st.integers(0, 50).map(float), min_size=1, max_size=40).filter(lambda p: sum(p) > 0)


@settings(max_examples=150, deadline=None)
@given(int_priorities)
def test_root_is_sum_of_leaves_and_min_is_min_positive(priorities):
    tree = make_tree(priorities)
    p = np.array(priorities)
    assert tree.total == p.sum()
    assert tree.min_priority == p[p > 0].min()
    assert tree.leaves().tolist() == priorities


@settings(max_examples=150, deadline=None)
@given(int_priorities, st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=20))
def test_find_matches_searchsorted(priorities, fractions):
    tree = make_tree(priorities)
    cumsum = np.cumsum(priorities)
    # Uniform points plus every boundary (cumsum values below the total) exactly.
    us = np.concatenate([np.array(fractions) * cumsum[-1], cumsum[cumsum < cumsum[-1]]])
    assert tree.find(us).tolist() == np.searchsorted(cumsum, us, side="right").tolist()


@settings(max_examples=100, deadline=None)
@given(int_priorities, st.integers(0, 2**32 - 1))
def test_zero_priority_never_sampled(priorities, seed):
    tree = make_tree(priorities)
    indices, values = tree.sample(256, np.random.default_rng(seed))
    p = np.array(priorities)
    assert np.all(p[indices] > 0)
    assert np.array_equal(values, p[indices])


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 20).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 9).map(float)), min_size=1, max_size=30),
        )
    )
)
def test_repeated_indices_last_write_wins(case):
    capacity, writes = case
    tree = SumTree(capacity)
    tree.update(np.arange(capacity), np.ones(capacity))
    indices = np.array([i for i, _ in writes])
    values = np.array([v for _, v in writes])
    tree.update(indices, values)
    expected = np.ones(capacity)
    for i, v in writes:  # sequential semantics: the last write to an index stays
        expected[i] = v
    assert tree.leaves().tolist() == expected.tolist()
    assert tree.total == expected.sum()
    positive = expected[expected > 0]
    assert tree.min_priority == (positive.min() if positive.size else np.inf)
