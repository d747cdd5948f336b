"""Gorila's gradients on their way from the bundles to the parameter server, and the rule that drops stale ones.

Nair et al. 2015, section 4.1 ("Stability"): the parameter server drops gradients computed on
parameters older than a threshold number of its own updates, so that a slow or stalled learner cannot
push the parameters back towards where they were long ago.

`GradientSlots` is the shared-memory transport of one machine: one slot per bundle, each a flat
float32 gradient the size of the network, the parameter version it was computed on and a `full` flag.
The handoff needs no lock because each field has one writer at a time: a bundle writes its slot only
while it is empty (gradient, then version, then the flag), the server reads it only while it is full,
then empties it. A bundle killed in the middle of a write leaves its slot empty, so the server never
reads a half-written gradient. (As `PublishedParams`, this counts on stores to shared memory becoming
visible in program order, which x86 guarantees.)
"""
from __future__ import annotations

import torch
from torch import nn


def is_fresh(made_at_update: int, server_updates: int, max_staleness: int) -> bool:
    """Apply a gradient whose parameters included `made_at_update` server updates, now that the server has
    made `server_updates`, only if it is at most `max_staleness` updates behind (0: only gradients of the
    current parameters)."""
    return 0 <= server_updates - made_at_update <= max_staleness


def num_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class GradientSlots:
    """One gradient slot per bundle in shared memory; pickles to `spawn`ed children as shared tensors."""

    def __init__(self, num_slots: int, num_params: int):
        self.grads = torch.zeros(num_slots, num_params, dtype=torch.float32).share_memory_()
        self.versions = torch.full((num_slots,), -1, dtype=torch.int64).share_memory_()
        self.full = torch.zeros(num_slots, dtype=torch.int64).share_memory_()
        self.discarded = torch.zeros(num_slots, dtype=torch.int64).share_memory_()  # each bundle writes its own

    def is_empty(self, slot: int) -> bool:
        return int(self.full[slot]) == 0

    def discard(self, slot: int) -> None:
        self.discarded[slot] += 1

    def num_discarded(self) -> int:
        return int(self.discarded.sum())

    def full_slots(self) -> list[int]:
        return self.full.clone().nonzero().flatten().tolist()  # a snapshot: bundles fill slots meanwhile

    @torch.no_grad()
    def put(self, slot: int, net: nn.Module, version: int) -> None:
        """Bundle: `net`'s parameter gradients (zeros where a parameter has none), flattened in
        `parameters()` order, computed on parameters of `version`; only into an empty slot."""
        if not self.is_empty(slot):
            raise RuntimeError(f"gradient slot {slot} is still full")
        row, offset = self.grads[slot], 0
        for p in net.parameters():
            size = p.numel()
            if p.grad is None:
                row[offset:offset + size].zero_()
            else:
                row[offset:offset + size].copy_(p.grad.reshape(-1))
            offset += size
        self.versions[slot] = version
        self.full[slot] = 1

    @torch.no_grad()
    def take(self, slot: int, into: nn.Module) -> int:
        """Server: the full slot's gradient into `into`'s `.grad` (on its device); returns its version.
        The slot stays full until `release`."""
        row, offset = self.grads[slot], 0
        for p in into.parameters():
            size = p.numel()
            grad = row[offset:offset + size].view_as(p)
            if p.grad is None:
                p.grad = grad.to(p.device, copy=True)
            else:
                p.grad.copy_(grad)
            offset += size
        return int(self.versions[slot])

    def release(self, slot: int) -> None:
        """Server: the slot is free for its bundle's next gradient."""
        self.full[slot] = 0
