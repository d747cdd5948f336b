"""The NGU learner: sample sequences, burn in, a transformed-Retrace update of the Q-network, an
update of the embedding and RND, priorities back.

One update (Badia et al. 2020, section 3 and Appendix E): sample a batch of sequences by priority;
unroll the online and target Q-networks from each sequence's stored state, fed each step's policy
one-hot j and previous intrinsic reward (the replay's extras); the first `burn_in` steps only warm the
state up (`R2D2Network.unroll_after_burn_in`); the reward of step t is r_e + beta_j r_i and its
discount gamma_j (both from the sequence's j); the targets are transformed Retrace with the target
policy greedy on the online Q and the traces cut by the stored behaviour probabilities
(`ngu.loss`); one Adam step, new priorities, a target copy every `target_update_interval` updates.

The embedding's inverse-dynamics model and RND's predictor train on the last `aux_steps` transitions
of each sampled sequence (Appendix A: 5) with their own Adam (lr 5e-4); RND's observation statistics
take in the same observations first (`ngu.intrinsic.IntrinsicTrainer`). `finish_update` then clips
and steps the Q-network's gradients; the auxiliary networks' were stepped and cleared before.
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
from ngu.config import Config
from ngu.family import betas
from ngu.intrinsic import IntrinsicTrainer
from ngu.loss import ngu_loss, retrace_targets, retrace_traces
from ngu.network import NGUModel, make_model


class Learner(SequenceSampling):
    def __init__(self, cfg: Config, obs_shape: tuple[int, ...], num_actions: int, device: torch.device,
                 replay: ReplayClient[SequenceBlock, SequenceBatch], counters: RunCounters):
        self.cfg, self.device, self.replay, self.counters = cfg, device, replay, counters
        torch.manual_seed(cfg.seed)
        self.net: NGUModel = make_model(cfg, obs_shape, num_actions).to(device)
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.net.q.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.intrinsic = IntrinsicTrainer(self.net.embedding, self.net.rnd, cfg.aux_lr, cfg.aux_steps,
                                          cfg.max_grad_norm)
        self.betas = torch.tensor(betas(cfg.num_policies, cfg.intrinsic_beta), dtype=torch.float32, device=device)
        self.updates = 0
        self.rng = np.random.default_rng(cfg.seed + 7)

    def q_values(self, batch: DeviceSequences) -> tuple[torch.Tensor, torch.Tensor]:
        """Online Q (gradient after the burn-in) and target Q, [T, B, A] each."""
        intrinsic, _, policy = batch.extra.unbind(-1)
        extra = self.net.q.extra_inputs(batch.prev_extra[..., 0], policy.long())
        q = self.net.q.unroll_after_burn_in(batch.obs, batch.prev_action, batch.prev_reward, batch.state,
                                            self.cfg.burn_in, batch.episode_start, extra)
        with torch.no_grad():
            q_target, _ = self.target.q.unroll(batch.obs, batch.prev_action, batch.prev_reward, batch.state, extra)
        return q, q_target

    def retrace_loss(self, batch: DeviceSequences, q: torch.Tensor,
                     q_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The importance-weighted Retrace loss and the sequences' priorities [B]."""
        intrinsic, behaviour_prob, policy = batch.extra.unbind(-1)
        action = batch.action.unsqueeze(-1)
        greedy = q.detach().argmax(-1)  # [T, B]: the target policy pi
        v = q_target.gather(-1, greedy.unsqueeze(-1)).squeeze(-1)
        v_next = torch.cat([v[1:], torch.zeros_like(v[:1])])
        traces = retrace_traces((batch.action == greedy).float(), behaviour_prob, self.cfg.retrace_lambda)
        reward = batch.reward + self.betas[policy.long()] * intrinsic
        y, trainable = retrace_targets(q_target.gather(-1, action).squeeze(-1), v_next, reward, batch.discount,
                                       traces, batch.mask)
        return ngu_loss(q.gather(-1, action).squeeze(-1), y, trainable, batch.weight, self.burn_in_lengths(batch),
                        self.cfg.eta)

    def update(self, batch: DeviceSequences) -> np.ndarray:
        """One gradient step on `batch`; writes its new priorities; returns them, [B] float32."""
        self.intrinsic.update(batch.obs, batch.action, batch.mask)
        loss, priority = self.retrace_loss(batch, *self.q_values(batch))
        priority = priority.detach().cpu().numpy()
        finish_update(self, loss, self.cfg.max_grad_norm, self.cfg.target_update_interval, batch.key, priority)
        return priority

    def state_dict(self) -> dict[str, Any]:
        return {**learner_state(self), "aux_optimizer": self.intrinsic.state_dict()}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        load_learner_state(self, saved)
        self.intrinsic.load_state_dict(saved["aux_optimizer"])
