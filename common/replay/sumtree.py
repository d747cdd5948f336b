"""Sum-tree (and min-tree) over float64 priorities: numba kernels and a thin class around them.

Layout (the usual implicit binary heap): `capacity` leaves padded to `P`, a power of two; node 1 is the
root, node `i` has children `2i` and `2i+1`, leaf `j` is node `P + j`; node 0 is unused. The sum tree
holds sums, the min tree holds minima of the *positive* leaves (+inf for zero leaves and padding), so
`min_priority` is the smallest priority that can actually be sampled (the importance-weight normaliser).
Parents are recomputed from their children, never adjusted by deltas, so no rounding drift builds up.
Float64 throughout: float32 trees can let a search land on a zero-priority leaf (seen in rlpyt).
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def tree_update(sum_nodes, min_nodes, leaf_base, indices, values):
    """Set leaves `indices[k]` to `values[k]` in order (a repeated index: the last write wins).

    sum_nodes, min_nodes: [2P] float64; indices: [B] int64; values: [B] float64 (>= 0).
    """
    for k in range(indices.shape[0]):
        node = leaf_base + indices[k]
        sum_nodes[node] = values[k]
        min_nodes[node] = values[k] if values[k] > 0.0 else np.inf
    # Recompute each touched path from the children; repeated paths just recompute the same values.
    for k in range(indices.shape[0]):
        node = (leaf_base + indices[k]) >> 1
        while node >= 1:
            left, right = 2 * node, 2 * node + 1
            sum_nodes[node] = sum_nodes[left] + sum_nodes[right]
            min_nodes[node] = min(min_nodes[left], min_nodes[right])
            node >>= 1


@numba.njit(cache=True)
def tree_find(sum_nodes, leaf_base, u):
    """Leaf j with cumsum[j-1] <= u < cumsum[j] (`searchsorted(cumsum, u, side="right")`).

    Needs sum_nodes[1] > 0. Never returns a zero-priority leaf: a subtree is entered only if its sum
    is positive, so a `u` at or past the total (rounding) ends on the last positive leaf.
    """
    node = 1
    while node < leaf_base:
        left_sum = sum_nodes[2 * node]
        if u < left_sum or sum_nodes[2 * node + 1] <= 0.0:
            node = 2 * node
        else:
            u -= left_sum
            node = 2 * node + 1
    return node - leaf_base


@numba.njit(cache=True)
def tree_find_batch(sum_nodes, leaf_base, us, out_indices):
    """`tree_find` for each of us: [B] float64, into out_indices: [B] int64."""
    for k in range(us.shape[0]):
        out_indices[k] = tree_find(sum_nodes, leaf_base, us[k])


@numba.njit(cache=True)
def tree_sample_stratified(sum_nodes, leaf_base, uniforms, out_indices, out_values):
    """Stratified draw: u_k = (k + uniforms[k]) * total / B, one draw per equal-mass stratum.

    uniforms: [B] float64 in [0, 1); out_indices: [B] int64 leaves; out_values: [B] float64 their values.
    """
    batch = uniforms.shape[0]
    segment = sum_nodes[1] / batch
    for k in range(batch):
        leaf = tree_find(sum_nodes, leaf_base, (k + uniforms[k]) * segment)
        out_indices[k] = leaf
        out_values[k] = sum_nodes[leaf_base + leaf]


def leaf_base_for(capacity: int) -> int:
    """P: the smallest power of two >= capacity (at least 1)."""
    return 1 << max(int(capacity) - 1, 0).bit_length()


def tree_specs(capacity: int, prefix: str = "") -> list[tuple[str, tuple[int, ...], type]]:
    """Shared-array spec entries for a tree of `capacity` leaves: `<prefix>sum_nodes`, `<prefix>min_nodes`."""
    nodes = 2 * leaf_base_for(capacity)
    return [(prefix + "sum_nodes", (nodes,), np.float64), (prefix + "min_nodes", (nodes,), np.float64)]


class SumTree:
    """Sum- and min-tree over `capacity` float64 priorities; node arrays may live in shared memory.

    The class does no locking: the caller (a replay) holds its lock around every write.
    """

    def __init__(
        self,
        capacity: int,
        sum_nodes: np.ndarray | None = None,
        min_nodes: np.ndarray | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.leaf_base = leaf_base_for(capacity)
        fresh = sum_nodes is None
        self.sum_nodes = np.zeros(2 * self.leaf_base) if fresh else sum_nodes
        self.min_nodes = np.full(2 * self.leaf_base, np.inf) if min_nodes is None else min_nodes
        for arr in (self.sum_nodes, self.min_nodes):
            if arr.dtype != np.float64 or arr.shape != (2 * self.leaf_base,):
                raise ValueError(f"tree nodes must be float64[{2 * self.leaf_base}], got {arr.dtype}{arr.shape}")

    def reset(self) -> None:
        """All priorities to zero."""
        self.sum_nodes[:] = 0.0
        self.min_nodes[:] = np.inf

    def update(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set priorities; indices: [B] in [0, capacity), values: [B] >= 0; repeated index: last wins."""
        indices = np.ascontiguousarray(indices, dtype=np.int64)
        values = np.ascontiguousarray(values, dtype=np.float64)
        if indices.shape != values.shape:
            raise ValueError(f"indices {indices.shape} and values {values.shape} differ in shape")
        if indices.size and (indices.min() < 0 or indices.max() >= self.capacity):
            raise IndexError(f"index out of [0, {self.capacity})")
        if values.size and not (np.all(values >= 0.0) and np.all(np.isfinite(values))):
            raise ValueError("priorities must be finite and >= 0")
        tree_update(self.sum_nodes, self.min_nodes, self.leaf_base, indices, values)

    def find(self, us: np.ndarray) -> np.ndarray:
        """Leaves for prefix sums us: [B] in [0, total); same as searchsorted(cumsum(p), us, 'right')."""
        self._check_nonempty()
        us = np.ascontiguousarray(us, dtype=np.float64)
        out = np.empty(us.shape[0], dtype=np.int64)
        tree_find_batch(self.sum_nodes, self.leaf_base, us, out)
        return out

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Stratified sample of leaves in proportion to priority: (indices [B] int64, priorities [B])."""
        self._check_nonempty()
        indices = np.empty(batch_size, dtype=np.int64)
        values = np.empty(batch_size, dtype=np.float64)
        tree_sample_stratified(self.sum_nodes, self.leaf_base, rng.random(batch_size), indices, values)
        return indices, values

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self.sum_nodes[1])

    @property
    def min_priority(self) -> float:
        """Smallest positive priority (inf when none is positive)."""
        return float(self.min_nodes[1])

    def leaves(self) -> np.ndarray:
        """View of the `capacity` leaf priorities."""
        return self.sum_nodes[self.leaf_base:self.leaf_base + self.capacity]

    def _check_nonempty(self) -> None:
        if not self.sum_nodes[1] > 0.0:
            raise ValueError("cannot search or sample a tree whose total priority is 0")
