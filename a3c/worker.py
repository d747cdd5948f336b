"""One asynchronous actor-learner (Mnih et al. 2016, Algorithms S1-S3).

Each worker keeps a local copy of the shared model, refreshed from it before every window of at most
t_max steps. It acts with the copy, computes the window's gradients on it, and applies them to the
shared parameters with the shared RMSProp, with no lock (Hogwild). Windows end early at an episode's
end, so a window never spans two episodes and an LSTM state never crosses an episode boundary.

REINFORCE runs on these same workers with a window that is the whole episode, since its Monte-Carlo
return needs every reward to the end: an update after each episode, on the shared model and optimizer,
so that it differs from A3C only in the return it weights log pi by. A whole episode is held in memory
and goes through one forward, which is fine on control tasks and costly on long Atari games.
"""
from __future__ import annotations

import copy
import itertools
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from a3c import loss as L
from a3c import schedules
from a3c.config import Config
from a3c.optim import SharedOptimizer
from common.counters import RunCounters
from common.envs import episode_return, make_env


class Window(NamedTuple):
    """Up to t_max consecutive steps of one episode."""
    obs: torch.Tensor        # [T+1, *obs_shape]: s_0 .. s_T (s_T is the observation after the last step)
    actions: torch.Tensor    # [T] int64
    next_actions: torch.Tensor  # [T] int64: the action chosen at s_{t+1} (SARSA), -1 where none was
    rewards: torch.Tensor    # [T] float32
    discounts: torch.Tensor  # [T] float32: gamma * (1 - terminated)
    ended: bool              # the episode ended (terminated or truncated) at the last step


class SharedParts(NamedTuple):
    """Objects owned by train.main and shared with every worker."""
    model: nn.Module
    target: nn.Module | None
    target_epoch: torch.Tensor  # [1] int64: target refreshes done so far
    optimizer: SharedOptimizer
    counters: RunCounters


class Actor:
    """Steps one env, carrying its observation, recurrent state and pending action across windows."""

    def __init__(self, cfg: Config, rank: int, seed: int, policy: Callable):
        self.cfg, self.rank, self.policy = cfg, rank, policy
        self.env = make_env(cfg.env_id, seed, training=True, sticky_actions=cfg.sticky_actions,
                            frame_stack=cfg.frame_stack)
        obs, _ = self.env.reset(seed=seed)
        self.obs = torch.as_tensor(obs)
        self.pending_action: int | None = None
        self.state = None
        self.start_state = None  # the recurrent state at the start of the last window

    def collect(self, model: nn.Module, counters: RunCounters) -> Window:
        obs, actions, next_actions, rewards, discounts = [self.obs], [], [], [], []
        ended = False
        start_state = self.state
        for _ in itertools.count() if self.cfg.algo == "reinforce" else range(self.cfg.t_max):
            action = self.pending_action if self.pending_action is not None else self.policy(model, self)
            next_obs, reward, terminated, truncated, info = self.env.step(action)
            finished = episode_return(info)
            if finished is not None:
                counters.add_episode(self.rank, finished)
            self.obs = torch.as_tensor(next_obs)
            self.pending_action = None
            ended = terminated or truncated
            if self.cfg.algo == "sarsa1":  # SARSA commits to its next action now: a_{t+1} is in the target
                self.pending_action = self.policy(model, self)
            obs.append(self.obs)
            actions.append(action)
            next_actions.append(-1 if self.pending_action is None else self.pending_action)
            rewards.append(float(reward))
            discounts.append(0.0 if terminated else self.cfg.gamma)
            if ended:
                break
        window = Window(torch.stack(obs), torch.tensor(actions), torch.tensor(next_actions),
                        torch.tensor(rewards, dtype=torch.float32), torch.tensor(discounts, dtype=torch.float32),
                        ended)
        self.start_state = start_state
        counters.steps[self.rank] += len(actions)
        return window

    def reset_if_ended(self, window: Window, model: nn.Module) -> None:
        if window.ended:
            obs, _ = self.env.reset()
            self.obs = torch.as_tensor(obs)
            self.pending_action = None
            self.state = model.initial_state()


def sample_policy_action(model: nn.Module, actor: Actor) -> int:
    """A3C: a ~ pi(.|s), advancing the actor's recurrent state."""
    with torch.no_grad():
        logits, _, actor.state = model(actor.obs.unsqueeze(0), actor.state)
        return sample_categorical(logits[0])


def sample_categorical(logits: torch.Tensor) -> int:
    """a ~ softmax(logits) by the Gumbel-max trick: argmax(logits - log E), E ~ Exp(1) iid.

    The same distribution as torch.multinomial on the softmax, in a few elementwise ops: inside a
    worker's loop multinomial cost about 45 us a step.
    """
    return int((logits - torch.empty_like(logits).exponential_().log_()).argmax())


class EpsilonGreedy:
    """epsilon-greedy on Q; epsilon anneals on the frames of all workers together.

    The worker refreshes epsilon once per window (`anneal`), not per step: reading the counters that
    the other workers write, every step, costs more than the five-step lag changes the schedule.
    """

    def __init__(self, cfg: Config, final_epsilon: float, rng: np.random.Generator):
        self.cfg, self.final_epsilon, self.rng = cfg, final_epsilon, rng
        self.epsilon = 1.0

    def anneal(self, counters: RunCounters) -> None:
        frames = counters.total_steps() * self.cfg.frames_per_step
        self.epsilon = schedules.epsilon(frames, self.final_epsilon, self.cfg.eps_anneal_frames)

    def __call__(self, model: nn.Module, actor: Actor) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(actor.env.action_space.n))
        with torch.no_grad():
            return int(model(actor.obs.unsqueeze(0)).argmax(-1))


def a3c_window_loss(cfg: Config, model: nn.Module, window: Window, start_state) -> torch.Tensor:
    # One forward over s_0 .. s_T: the last value is the bootstrap V(s_T), used without gradient.
    logits, values, _ = model(window.obs, start_state)
    bootstrap = values[-1].detach()  # multiplied by a zero discount where s_T is terminal
    returns = L.nstep_returns(window.rewards, window.discounts, bootstrap)
    return L.a3c_loss(logits[:-1], values[:-1], window.actions, returns, cfg.entropy_coef, cfg.value_coef).total


def reinforce_episode_loss(cfg: Config, model: nn.Module, window: Window) -> torch.Tensor:
    """REINFORCE on one whole episode; a truncated one counts the rewards it got, with no bootstrap."""
    logits, values, _ = model(window.obs[:-1])
    returns = L.monte_carlo_returns(window.rewards, cfg.gamma)
    baseline = values if cfg.reinforce_baseline else None
    return L.reinforce_loss(logits, window.actions, returns, baseline, cfg.entropy_coef, cfg.value_coef).total


def q_window_loss(cfg: Config, model: nn.Module, target: nn.Module, window: Window) -> torch.Tensor:
    with torch.no_grad():
        q_target_t = target(window.obs[1:])  # [T, A] at s_1 .. s_T
        if cfg.algo == "q1":
            targets = L.q_learning_targets(window.rewards, window.discounts, q_target_t)
        elif cfg.algo == "sarsa1":
            next_actions = window.next_actions.clamp(min=0)  # -1 only where discount is 0 or unused
            targets = L.sarsa_targets(window.rewards, window.discounts, q_target_t, next_actions)
        else:
            targets = L.nstep_returns(window.rewards, window.discounts, q_target_t[-1].max())
    return L.q_loss(model(window.obs[:-1]), window.actions, targets)


def apply_gradients(cfg: Config, local: list[nn.Parameter], glob: list[nn.Parameter], shared: SharedParts,
                    loss: torch.Tensor) -> None:
    """Backpropagates on the local copy and steps the shared parameters with the shared RMSProp,
    which clips the gradients' total norm to cfg.max_grad_norm as it applies them.

    local, glob: the local copy's and the shared model's parameters, in the same order. The local
    gradients start from None each window, so backward writes them fresh rather than adding into
    zeroed buffers.
    """
    for param in local:
        param.grad = None
    loss.backward()
    for shared_param, param in zip(glob, local):
        shared_param.grad = param.grad
    shared.optimizer.set_lr(schedules.annealed_lr(cfg.lr, shared.counters.total_steps(), cfg.total_steps))
    shared.optimizer.step()


def maybe_refresh_target(cfg: Config, shared: SharedParts) -> None:
    """Copies the shared model into the shared target every target_update_frames global frames.

    Two workers may both see the boundary and both copy: harmless, the copy is idempotent.
    """
    epoch = shared.counters.total_steps() * cfg.frames_per_step // cfg.target_update_frames
    if epoch > int(shared.target_epoch[0]):
        shared.target_epoch[0] = epoch
        shared.target.load_state_dict(shared.model.state_dict())


def run_worker(rank: int, cfg: Config, shared: SharedParts, should_stop: Callable[[], bool]) -> None:
    """Worker process body; `rank` picks its seed, and a restarted worker gets a fresh one."""
    seed = cfg.seed + 1000 * (rank + 1) + int(shared.counters.steps[rank])
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(shared.model)
    if cfg.is_policy_method:
        policy = sample_policy_action
    else:
        # drawn from the run's seed, so a restarted worker keeps its predecessor's final epsilon
        final_epsilon = schedules.sample_final_epsilons(cfg.num_workers, np.random.default_rng(cfg.seed))[rank]
        policy = EpsilonGreedy(cfg, final_epsilon, rng)
    actor = Actor(cfg, rank, seed, policy)
    actor.state = model.initial_state()
    local, glob = list(model.parameters()), list(shared.model.parameters())
    while not should_stop():
        with torch.no_grad():
            torch._foreach_copy_(local, glob)
        if not cfg.is_policy_method:
            policy.anneal(shared.counters)
        window = actor.collect(model, shared.counters)
        if cfg.algo == "reinforce":
            loss = reinforce_episode_loss(cfg, model, window)
        elif cfg.is_policy_method:
            loss = a3c_window_loss(cfg, model, window, actor.start_state)
        else:
            loss = q_window_loss(cfg, model, shared.target, window)
        apply_gradients(cfg, local, glob, shared, loss)
        shared.counters.updates[rank] += 1
        if not cfg.is_policy_method:
            maybe_refresh_target(cfg, shared)
        actor.reset_if_ended(window, model)
    actor.env.close()
