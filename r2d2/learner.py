"""The R2D2 learner: sample sequences, burn in, update, write sequence priorities back.

One update (Kapturowski et al. 2019, section 2.3): sample a batch of sequences by priority; unroll the
online and target networks from each sequence's stored state; the first `burn_in` steps only warm the
state up, without gradient (a sequence that starts an episode has the exact zero state and trains
from step 0); then the n-step double-Q loss on rescaled values (`r2d2.loss`), one Adam step, new
sequence priorities, and a target copy every `target_update_interval` updates (the runtime's
`finish_update`). It is a `common.distributed.learner_loop.Learner`, driven by the runtime's work objects.

Every `diagnostic_interval` updates the learner also measures the paper's Q-value discrepancy
(section 3): Q over a sequence's steps from step `length - overlap` on (the burn-in point with the
paper's 80/40/40), with the state there obtained by unrolling from the stored state, or from the zero
state, compared with the Q from the state the actor really had at that step (the next sequence's
stored state, kept with this sequence too).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from common.counters import RunCounters
from common.distributed.learner_loop import finish_update, learner_state, load_learner_state
from common.distributed.seams import ReplayClient
from common.distributed.sequences import DeviceSequences, SequenceSampling
from common.replay.sequence import SequenceBatch, SequenceBlock
from r2d2.config import Config
from r2d2.loss import r2d2_loss
from r2d2.network import R2D2Network, make_network


def q_discrepancy(q: torch.Tensor, q_true: torch.Tensor, valid: torch.Tensor) -> float:
    """Delta Q = ||q - q_true||_2 / max |q_true| (R2D2 section 3), averaged over valid steps and sequences.

    q, q_true: [T, B, A]; valid: [T, B] bool. Returns nan if no step is valid.
    """
    if not bool(valid.any()):
        return float("nan")
    distance = (q - q_true).norm(dim=-1)  # [T, B]
    scale = torch.where(valid.unsqueeze(-1), q_true.abs(), torch.zeros_like(q_true)).amax(dim=(0, 2))  # [B]
    per_step = distance / scale.clamp(min=1e-6)
    return float(per_step[valid].mean())


class Learner(SequenceSampling):
    def __init__(self, cfg: Config, obs_shape: tuple[int, ...], num_actions: int, device: torch.device,
                 replay: ReplayClient[SequenceBlock, SequenceBatch], counters: RunCounters):
        self.cfg, self.device, self.replay, self.counters = cfg, device, replay, counters
        torch.manual_seed(cfg.seed)
        self.net: R2D2Network = make_network(cfg, obs_shape, num_actions).to(device)
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.updates = 0
        self.rng = np.random.default_rng(cfg.seed + 7)
        self.diagnostics: list[dict[str, float]] = []  # Q discrepancy rows not yet logged

    def online_q(self, batch: DeviceSequences) -> torch.Tensor:
        """[T, B, A] online Q; no gradient through the burn-in steps of sequences that do not start an episode."""
        return self.net.unroll_after_burn_in(batch.obs, batch.prev_action, batch.prev_reward, batch.state,
                                             self.cfg.burn_in, batch.episode_start)

    def update(self, batch: DeviceSequences) -> np.ndarray:
        """One gradient step on `batch`; writes its new priorities; returns them, [B] float32."""
        q = self.online_q(batch)
        with torch.no_grad():
            q_target, _ = self.target.unroll(batch.obs, batch.prev_action, batch.prev_reward, batch.state)
        loss, priority = r2d2_loss(q, batch.action, batch.reward, batch.discount, batch.mask, q_target, q.detach(),
                                   batch.weight, self.burn_in_lengths(batch), self.cfg.n_step, self.cfg.eta)
        priority = priority.detach().cpu().numpy()
        finish_update(self, loss, self.cfg.max_grad_norm, self.cfg.target_update_interval, batch.key, priority)
        if self.updates % self.cfg.diagnostic_interval == 0:
            self.diagnostics.append({"updates": self.updates, "loss": float(loss.detach()),
                                     **self.measure_discrepancy(batch)})
        return priority

    @torch.no_grad()
    def measure_discrepancy(self, batch: DeviceSequences) -> dict[str, float]:
        """Delta Q from step `length - overlap` on, from the stored and from the zero state, against the
        actor's state there.

        Only sequences that do not start an episode (for those, stored = zero = the actor's state) and
        that still have steps there count.
        """
        mid = self.cfg.sequence_length - self.cfg.sequence_overlap
        q_stored, _ = self.net.unroll(batch.obs, batch.prev_action, batch.prev_reward, batch.state)
        zero = self.net.initial_state(batch.mask.shape[1])
        q_zero, _ = self.net.unroll(batch.obs, batch.prev_action, batch.prev_reward, zero)
        q_actor, _ = self.net.unroll(batch.obs[mid:], batch.prev_action[mid:], batch.prev_reward[mid:],
                                     batch.next_state)
        valid = batch.mask[mid:] & ~batch.episode_start.unsqueeze(0)
        return {"dq_stored": q_discrepancy(q_stored[mid:], q_actor, valid),
                "dq_zero": q_discrepancy(q_zero[mid:], q_actor, valid)}

    def state_dict(self) -> dict[str, Any]:
        return learner_state(self)

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        load_learner_state(self, saved)
