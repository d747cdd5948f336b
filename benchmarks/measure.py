"""What the benchmarks share: a rate measurement, fresh measuring processes, the machine, result tables,
and the measurements that more than one benchmark reports (env stepping, the Ape-X actor and
learner, transition-replay operations).

A rate is units done per wall-clock second after a warm-up, and the same units per CPU-second of
the measuring process (all its threads): on a box shared with other work, the second says what the
code does when it has a core to itself, the first what it did in this run.
"""
from __future__ import annotations

import csv
import multiprocessing as mp
import os
import queue as queue_module
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, get_args

import numpy as np

from a3c.config import Algo

ASYNC_ALGOS: tuple[str, ...] = get_args(Algo)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ATARI = "ALE/Pong-v5"
BATCH_SIZE = 512  # Ape-X's batch: transition-replay samples and learner updates
N_STEP = 3  # n of the synthetic transitions in a filled transition replay
EPISODE_STEPS = 10_000  # synthetic fill: one episode per insert chunk


class Rate(NamedTuple):
    per_second: float
    """units per wall-clock second"""
    per_cpu_second: float
    """units per CPU-second of the measuring process, all its threads together"""


class StopAfter:
    """A `should_stop()` for a measured loop, ours or one we do not own (`a3c.worker.run_worker`): the
    first call starts a warm-up of `warmup_seconds`; the first call after it notes `count()` and both
    clocks; the first call `seconds` later notes them again and returns True."""

    def __init__(self, count: Callable[[], int], seconds: float, warmup_seconds: float = 1.0,
                 clock: Callable[[], float] = time.perf_counter, cpu_clock: Callable[[], float] = time.process_time):
        self.count, self.seconds, self.warmup_seconds = count, seconds, warmup_seconds
        self.clock, self.cpu_clock = clock, cpu_clock
        self.warm_until: float | None = None
        self.marks: list[tuple[float, float, int]] = []  # (wall, cpu, count) at the start and at the end

    def __call__(self) -> bool:
        now = self.clock()
        if self.warm_until is None:
            self.warm_until = now + self.warmup_seconds
        if not self.marks:
            if now >= self.warm_until:
                self.marks.append((now, self.cpu_clock(), self.count()))
            return False
        if now - self.marks[0][0] < self.seconds:
            return False
        self.marks.append((now, self.cpu_clock(), self.count()))
        return True

    def rate(self) -> Rate:
        """Units counted between the two marks per wall second and per CPU-second."""
        (wall0, cpu0, count0), (wall1, cpu1, count1) = self.marks
        done = count1 - count0
        return Rate(done / (wall1 - wall0), done / max(cpu1 - cpu0, 1e-9))


def timed_rate(step: Callable[[], int], seconds: float, warmup_seconds: float = 1.0,
               clock: Callable[[], float] = time.perf_counter,
               cpu_clock: Callable[[], float] = time.process_time) -> Rate:
    """Rate of `step()`, which returns the units it did, measured as `StopAfter` says (the
    measurement holds at least one call)."""
    done = [0]
    stop = StopAfter(lambda: done[0], seconds, warmup_seconds, clock, cpu_clock)
    while not stop():
        done[0] += step()
    return stop.rate()


def scaled(rate: Rate, factor: float) -> Rate:
    """The same rate in units `factor` times larger (agent steps -> frames, batches -> items)."""
    return Rate(rate.per_second * factor, rate.per_cpu_second * factor)


def _child(results, fn: Callable[..., Any], args: tuple, torch_threads: int | None) -> None:
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    try:
        results.put((True, fn(*args)))
    except Exception as err:  # reported by the parent, which raises
        results.put((False, f"{type(err).__name__}: {err}"))


def in_fresh_process(fn: Callable[..., Any], *args: Any, torch_threads: int | None = 1,
                     timeout_seconds: float = 900.0) -> Any:
    """fn(*args) in a fresh spawned process, with `torch_threads` torch threads (None: torch is not
    imported for it), so that no measurement inherits another's threads, caches or heap state.
    Raises RuntimeError if fn raises, the process dies, or it runs past `timeout_seconds`."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_child, args=(results, fn, args, torch_threads))
    proc.start()
    deadline = time.monotonic() + timeout_seconds
    try:
        while True:
            try:
                ok, value = results.get(timeout=1.0)
                break
            except queue_module.Empty:
                if proc.is_alive() and time.monotonic() < deadline:
                    continue
                try:  # a result put just before the process ended
                    ok, value = results.get(timeout=1.0)
                    break
                except queue_module.Empty:
                    raise RuntimeError(f"{fn.__name__}{args}: process ended with {proc.exitcode} "
                                       f"or ran past {timeout_seconds} s, no result") from None
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join()
    if not ok:
        raise RuntimeError(f"{fn.__name__}{args} failed in its process: {value}")
    print(fn.__name__, args, value, flush=True)
    return value


def train_module(algo: str) -> list[str]:
    """The `python -m` arguments of the entry point that trains `algo` (dqn is Ape-X's --serial mode,
    gorila its --gorila mode)."""
    if algo in ASYNC_ALGOS:
        return ["a3c.train", "--algo", algo]
    return {"apex": ["apex.train"], "dqn": ["apex.train", "--serial"], "r2d2": ["r2d2.train"],
            "gorila": ["apex.train", "--gorila"], "ngu": ["ngu.train"], "agent57": ["agent57.train"]}[algo]


def first_reaching(evals: list[dict[str, float]], threshold: float) -> dict[str, float] | None:
    """The first row of an eval.csv whose evaluation mean reaches threshold, or None."""
    return next((row for row in evals if row["eval_return_mean"] >= threshold), None)


def cpu_model() -> str:
    """The first 'model name' of /proc/cpuinfo ('unknown CPU' where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def cell(value: Any) -> str:
    """A table cell: numbers with thousands separators as given, None empty."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def write_table(stem: str, columns: list[str], rows: list[dict[str, Any]], command: str, load_at_start: float,
                notes: list[str], results_dir: Path | None = None) -> str:
    """Writes <results_dir>/<stem>.csv and <stem>.md (default: RESULTS_DIR): the command, the machine,
    the load average at the start and now, the table, the notes. Returns the markdown."""
    results_dir = RESULTS_DIR if results_dir is None else results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    with open(results_dir / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: row.get(c) for c in columns} for row in rows)
    lines = [f"`{command}`", "",
             f"Machine: {os.cpu_count()} cores, {cpu_model()}. 1-minute load average {load_at_start:.2f} at the "
             f"start, {load_average():.2f} at the end (other work on the box lowers the wall-clock figures).", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    text = "\n".join(lines + [""] + notes) + "\n"
    (results_dir / f"{stem}.md").write_text(text)
    return text


def bare_ale_frames(env_id: str, seconds: float, warmup_seconds: float = 1.0) -> Rate:
    """Emulator frames/s of bare ALE (`ale.act` with random actions, no preprocessing, no observation)."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env = gym.make(env_id, frameskip=1, repeat_action_probability=0.0)
    env.reset(seed=0)
    ale = env.unwrapped.ale
    actions = env.unwrapped._action_set
    rng = np.random.default_rng(0)

    def step() -> int:
        for a in rng.integers(len(actions), size=100):  # drawn together: little Python between frames
            ale.act(actions[a])
            if ale.game_over():
                ale.reset_game()
        return 100

    return timed_rate(step, seconds, warmup_seconds)


def env_steps(envs: list, seconds: float, warmup_seconds: float = 1.0) -> Rate:
    """Agent steps/s of gymnasium envs stepped in turn with random actions, reset at episode ends."""
    for e, env in enumerate(envs):
        env.reset(seed=e)
    rng = np.random.default_rng(0)

    def step() -> int:
        for env in envs:
            _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                env.reset()
        return len(envs)

    return timed_rate(step, seconds, warmup_seconds)


def wrapper_env_steps(env_id: str, num_envs: int, seconds: float, warmup_seconds: float = 1.0) -> Rate:
    """Agent steps/s of our full env stack (`common.envs.make_env`, the DQN protocol), random actions."""
    from common.envs import make_env

    return env_steps([make_env(env_id, e) for e in range(num_envs)], seconds, warmup_seconds)


def env_shape(env_id: str) -> Any:
    """common.recipe.EnvProbe of env_id under our env stack: shape, actions, dtype, stacked frames."""
    from common.recipe import describe_env

    return describe_env(env_id)


def actor_rate(actor: Any, num_envs: int, seconds: float, warmup_seconds: float) -> Rate:
    """Agent steps/s of `actor.step()` over its `num_envs` envs (Ape-X and R2D2 actors); closes it."""
    def step() -> int:
        actor.step()
        return num_envs

    try:
        return timed_rate(step, seconds, warmup_seconds)
    finally:
        actor.close()


def apex_actor_steps(env_id: str, num_envs: int, seconds: float, warmup_seconds: float = 1.0) -> Rate:
    """Agent steps/s of one Ape-X actor (`apex.actor.Actor.step`: its envs, one batched forward pass,
    n-step buffers, initial priorities, replay inserts)."""
    from apex.actor import Actor
    from apex.config import make_config
    from apex.network import QNetwork
    from apex.train import replay_config
    from common.counters import RunCounters
    from common.distributed.params import PublishedParams
    from common.replay.transition import TransitionReplay

    cfg = make_config({"env_id": env_id, "num_workers": 1, "envs_per_actor": num_envs, "replay_capacity": 100_000})
    env = env_shape(env_id)
    obs_shape, num_actions = env.obs_shape, env.num_actions
    replay = TransitionReplay.create(replay_config(cfg, env))
    try:
        params = PublishedParams(QNetwork(obs_shape, num_actions, cfg.hidden_size, cfg.dueling))
        return actor_rate(Actor(0, cfg, replay, params, RunCounters(1)), num_envs, seconds, warmup_seconds)
    finally:
        replay.close()


def learner_rate(learner: Any, seconds: float, warmup_seconds: float) -> Rate:
    """Updates/s of an Ape-X-interface learner driven as `python -m apex.train` / `r2d2.train` drive
    it (`ParallelLearnerWork`: prefetched batches, priorities written back, parameters published)."""
    import torch

    from common.distributed.learner_loop import ParallelLearnerWork, RateLimit
    from common.distributed.params import PublishedParams

    work = ParallelLearnerWork(learner, PublishedParams(learner.net), RateLimit(0.0, learner.cfg.batch_size))
    try:
        work()  # starts the prefetch thread

        def step() -> int:
            before = learner.updates
            work()
            if learner.device.type == "cuda":
                torch.cuda.synchronize()
            return learner.updates - before

        return timed_rate(step, seconds, warmup_seconds)
    finally:
        work.close()


def apex_learner_updates(env_id: str, device: str, seconds: float, warmup_seconds: float = 2.0) -> Rate:
    """Ape-X learner updates/s at batch 512 on a replay of 10,000 random frames of env_id's shape
    (torch threads: as the process was started)."""
    import torch

    from apex.config import make_config
    from apex.learner import Learner
    from apex.train import replay_config
    from common.counters import RunCounters
    from common.replay.transition import TransitionReplay

    cfg = make_config({"env_id": env_id, "replay_capacity": 20_000, "learning_starts": 5_000, "device": device})
    env = env_shape(env_id)
    obs_shape, num_actions = env.obs_shape, env.num_actions
    replay = TransitionReplay.create(replay_config(cfg, env))
    try:
        fill_transition_replay(replay, 10_000, np.random.default_rng(0))
        learner = Learner(cfg, obs_shape, num_actions, torch.device(device), replay, RunCounters(1))
        return learner_rate(learner, seconds, warmup_seconds)
    finally:
        replay.close()


def synthetic_frames(count: int, frame_shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """`count` frames cycling through 97 random ones (random bytes for gigabytes would dominate a fill)."""
    pool = (rng.random((97, *frame_shape)) * 255).astype(dtype)
    return pool[np.arange(count) % 97]


def fill_transition_replay(replay: Any, count: int, rng: np.random.Generator) -> None:
    """Insert `count` transitions (at most to capacity) as episodes of EPISODE_STEPS frames: n-step
    transitions, reset-padded stacks, random actions, rewards and priorities."""
    from common.replay.transition import TransitionBlock

    cfg = replay.config
    target = min(count, cfg.capacity)
    while len(replay) < target:
        num = min(EPISODE_STEPS, target - len(replay) + N_STEP)
        t = np.arange(num - N_STEP)
        offsets = np.arange(-cfg.stack + 1, 1)
        obs_ref = np.maximum(t[:, None] + offsets, 0)  # [M, S]
        next_ref = np.maximum(t[:, None] + N_STEP + offsets, 0)
        replay.insert(TransitionBlock(synthetic_frames(num, cfg.frame_shape, cfg.frame_dtype, rng), [], obs_ref,
                                      next_ref, rng.integers(0, 6, len(t)), rng.random(len(t)),
                                      np.full(len(t), 0.99 ** N_STEP), rng.uniform(0.1, 10.0, len(t))))


def sample_update_rate(replay: Any, batch_size: int, seconds: float, warmup_seconds: float = 1.0) -> Rate:
    """Batches/s of `replay.sample(batch_size)` followed by a priority update of the batch (either replay)."""
    rng = np.random.default_rng(0)

    def step() -> int:
        batch = replay.sample(batch_size, 0.4, rng)
        replay.update_priorities(batch.key, rng.uniform(0.1, 10.0, batch_size))
        return 1

    return timed_rate(step, seconds, warmup_seconds)


def insert_worker(handle: Any, seconds: float, start: Any, counts: Any, slot: int) -> None:
    """One writer process: frames and 1-step transitions through a TransitionWriter for `seconds`."""
    from common.replay.transition import TransitionReplay, TransitionWriter

    replay = TransitionReplay.attach(handle)
    writer = TransitionWriter(replay, block_size=64)
    rng = np.random.default_rng(slot)
    frames = synthetic_frames(64, replay.config.frame_shape, replay.config.frame_dtype, rng)
    start.wait()
    deadline, count, previous = time.perf_counter() + seconds, 0, None
    while time.perf_counter() < deadline:
        step = writer.add_frame(frames[count % 64], episode_start=previous is None or count % 1000 == 0)
        if previous is not None and count % 1000 != 0:
            writer.add(previous, 1, 1.0, 0.99, step, priority=1.0)
        previous, count = step, count + 1
    writer.flush()
    counts[slot] = count
    replay.close()


def insert_rate(replay: Any, num_writers: int, seconds: float) -> float:
    """Transitions/s inserted by `num_writers` spawned writer processes together (wall clock)."""
    ctx = mp.get_context("spawn")
    start, counts = ctx.Event(), ctx.Array("q", num_writers)
    procs = [ctx.Process(target=insert_worker, args=(replay.handle, seconds, start, counts, i))
             for i in range(num_writers)]
    for proc in procs:
        proc.start()
    time.sleep(3.0)  # let the children import numpy/numba before the clock starts
    start.set()
    for proc in procs:
        proc.join(seconds + 60)
        if proc.exitcode != 0:
            raise RuntimeError(f"insert writer exited with {proc.exitcode}")
    return sum(counts) / seconds
