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
take in the same observations first. `finish_update` then clips and steps the Q-network's gradients;
the auxiliary networks' were stepped and cleared before.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from common.counters import RunCounters
from common.distributed.learner_loop import finish_update, learner_state, load_learner_state
from common.distributed.seams import ReplayClient
from common.distributed.sequences import DeviceSequences, to_device
from common.replay.sequence import SequenceBatch, SequenceBlock
from ngu.config import Config
from ngu.family import betas
from ngu.loss import aux_loss, aux_transitions, ngu_loss, retrace_targets, retrace_traces
from ngu.network import NGUModel, make_model


class Learner:
    def __init__(self, cfg: Config, obs_shape: tuple[int, ...], num_actions: int, device: torch.device,
                 replay: ReplayClient[SequenceBlock, SequenceBatch], counters: RunCounters):
        self.cfg, self.device, self.replay, self.counters = cfg, device, replay, counters
        torch.manual_seed(cfg.seed)
        self.net: NGUModel = make_model(cfg, obs_shape, num_actions).to(device)
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.net.q.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.aux_parameters = [*self.net.embedding.parameters(), *self.net.rnd.predictor.parameters()]
        self.aux_optimizer = torch.optim.Adam(self.aux_parameters, lr=cfg.aux_lr)
        self.betas = torch.tensor(betas(cfg.num_policies, cfg.intrinsic_beta), dtype=torch.float32, device=device)
        self.updates = 0
        self.rng = np.random.default_rng(cfg.seed + 7)

    def ready(self) -> bool:
        return len(self.replay) >= max(self.cfg.learning_starts, self.cfg.batch_size)

    def sample(self) -> DeviceSequences:
        return to_device(self.replay.sample(self.cfg.batch_size, self.cfg.beta, self.rng), self.device)

    def burn_in_lengths(self, batch: DeviceSequences) -> torch.Tensor:
        """[B] int64: cfg.burn_in, or 0 for sequences that start an episode (their zero state is exact)."""
        return torch.where(batch.episode_start, 0, self.cfg.burn_in).long()

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

    def update_aux(self, batch: DeviceSequences) -> float:
        """One step of the embedding's inverse model and RND's predictor; returns their summed loss."""
        obs, next_obs, action = aux_transitions(batch.obs, batch.action, batch.mask, self.cfg.aux_steps)
        self.net.rnd.update_obs_stats(next_obs)
        loss = aux_loss(self.net.embedding, self.net.rnd, obs, next_obs, action)
        self.aux_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.aux_parameters, self.cfg.max_grad_norm)
        self.aux_optimizer.step()
        self.aux_optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def update(self, batch: DeviceSequences) -> np.ndarray:
        """One gradient step on `batch`; writes its new priorities; returns them, [B] float32."""
        self.update_aux(batch)
        loss, priority = self.retrace_loss(batch, *self.q_values(batch))
        priority = priority.detach().cpu().numpy()
        finish_update(self, loss, self.cfg.max_grad_norm, self.cfg.target_update_interval, batch.key, priority)
        return priority

    def state_dict(self) -> dict[str, Any]:
        return {**learner_state(self), "aux_optimizer": self.aux_optimizer.state_dict()}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        load_learner_state(self, saved)
        self.aux_optimizer.load_state_dict(saved["aux_optimizer"])
