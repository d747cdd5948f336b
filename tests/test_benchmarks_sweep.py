"""The defaults sweep's pure parts: thresholds, time to threshold from outside a run, the table by hand."""
import json
import math

import gymnasium as gym
import pytest

from benchmarks import sb3_baseline, sweep


def _eval(unix_time: float, steps: int, mean: float, **extra) -> dict[str, float]:
    return {"wall_seconds": 0.0, "env_steps": steps, "env_frames": steps, "eval_return_mean": mean,
            "eval_return_std": 0.0, "episodes": 10, "unix_time": unix_time, **extra}


def test_a_task_threshold_comes_from_the_flag_the_table_or_gymnasium():
    assert sweep.parse_task("MinAtar/Breakout-v1=10") == ("MinAtar/Breakout-v1", 10.0)
    assert sweep.parse_task("common.catch:MiniCatch-v0") == ("common.catch:MiniCatch-v0", 0.8)
    assert sweep.parse_task("MountainCar-v0") == ("MountainCar-v0", -110.0)  # gymnasium's reward_threshold
    with pytest.raises(ValueError, match="MinAtar/Asterix-v1=THRESHOLD"):
        sweep.parse_task("MinAtar/Asterix-v1")  # no reward_threshold registered, none in the tables
    with pytest.raises(ValueError, match="asyncrl needs a discrete one"):
        sweep.parse_task("Pendulum-v1")  # no threshold either, but unusable is what is wrong with it
    with pytest.raises(ValueError, match="unknown or unusable env id 'Nope-v0'"):
        sweep.parse_task("Nope-v0=1")
    with pytest.raises(ValueError, match="unknown or unusable env id 'Nope-v0'"):
        sweep.parse_task("Nope-v0")  # without a threshold too: the env is what is wrong


def test_time_to_threshold_counts_from_launch_and_leaves_out_sb3s_evaluations():
    launched = 1_000.0
    ours = [_eval(1_004.0, 2_000, 100.0), _eval(1_009.5, 6_000, 480.0), _eval(1_012.0, 8_000, 500.0)]
    assert sweep.to_threshold(ours, 475.0, launched) == (9.5, 6_000)
    assert sweep.to_threshold(ours, 501.0, launched) == (math.inf, math.inf)
    # SB3 paused its training for 1.5 s of evaluations up to and including the one that got there
    sb3 = [_eval(1_003.0, 900, 20.0, eval_seconds=0.5), _eval(1_006.0, 2_500, 500.0, eval_seconds=1.5)]
    assert sweep.to_threshold(sb3, 475.0, launched) == (4.5, 2_500)


def test_start_up_is_launch_to_the_start_of_the_runs_own_clock():
    # ours: first evaluation logged at unix 1,006 when its clock said 2.5 s: the clock began 3.5 s after launch
    assert sweep.startup_seconds([_eval(1_006.0, 100, 9.0, wall_seconds=2.5)], 1_000.0) == 3.5
    # SB3's clock also leaves out the 0.4 s of that evaluation
    assert sweep.startup_seconds([_eval(1_006.0, 100, 9.0, wall_seconds=2.5, eval_seconds=0.4)], 1_000.0) == \
        pytest.approx(3.1)
    assert math.isnan(sweep.startup_seconds([], 1_000.0))


def test_a_summary_over_seeds_by_hand():
    runs = [{"seconds_to_threshold": 10.0, "steps_to_threshold": 5_000, "best": 500.0, "startup_seconds": 3.0},
            {"seconds_to_threshold": math.inf, "steps_to_threshold": math.inf, "best": 200.0,
             "startup_seconds": 5.0},
            {"seconds_to_threshold": 30.0, "steps_to_threshold": 9_000, "best": 490.0, "startup_seconds": math.nan}]
    assert sweep.summarize(runs) == {"seeds": 3, "reached": 2, "median_seconds": 30.0, "min_seconds": 10.0,
                                     "max_seconds": math.inf, "median_steps": 9_000,
                                     "best_mean": pytest.approx(396.6667, abs=1e-4),
                                     "median_startup": 4.0}  # of the two runs that evaluated
    # two of three that never got there: the median is "not reached"
    assert sweep.summarize(runs[:2] + runs[1:2])["median_seconds"] == math.inf


def test_the_report_groups_by_task_and_keeps_the_candidates_order(tmp_path):
    def save(env_id, candidate, seed, seconds):
        info = {"candidate": candidate, "method": candidate.split()[0], "flags": "", "env_id": env_id,
                "threshold": 475.0, "seed": seed, "max_seconds": 60.0, "seconds_to_threshold": seconds,
                "steps_to_threshold": 1_000 if math.isfinite(seconds) else math.inf, "best": 500.0,
                "load_before": 0.5, "load_after": 1.0}
        path = tmp_path / "runs" / env_id / candidate.replace(" ", "_") / f"seed{seed}" / "run.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(info))

    save("CartPole-v1", "sb3-a2c", 0, 4.0)
    save("CartPole-v1", "a3c", 0, 12.0)
    save("CartPole-v1", "a3c", 1, math.inf)
    lines = sweep.report(tmp_path)
    rows = [line for line in lines if line.startswith("| a3c") or line.startswith("| sb3")]
    assert rows[0].startswith("| a3c | a3c |  | 1/2 | not reached | 12.0 s | not reached |")
    assert rows[1].startswith("| sb3-a2c | sb3-a2c |  | 1/1 | 4.0 s | 4.0 s | 4.0 s | 1,000 |")
    assert (tmp_path / "sweep.png").is_file() and (tmp_path / "sweep.csv").is_file()


def test_each_kind_of_task_has_its_family_defaults_and_both_sb3_methods():
    for kind in ("vector", "small_image"):
        methods = [c.method for c in sweep.CANDIDATES if c.kind == kind]
        assert {"a3c", "apex", "sb3-a2c", "sb3-dqn"} <= set(methods)
        for method in ("a3c", "apex"):  # each family's first candidate of a kind is its defaults
            first = next(c for c in sweep.CANDIDATES if c.kind == kind and c.method == method)
            assert first.name == method and first.flags == ()


def test_the_sb3_evaluation_plays_whole_greedy_games():
    class AlwaysLeft:
        def predict(self, obs, deterministic):
            assert deterministic
            return 0, None

    env = gym.make("CartPole-v1")
    returns = sb3_baseline.evaluate(AlwaysLeft(), env, episodes=3, seed=5)
    expected = []
    for episode in range(3):  # the same games by hand: pushing left ends CartPole within a few dozen steps
        env.reset(seed=5 + episode)
        steps, done = 0, False
        while not done:
            _, _, terminated, truncated, _ = env.step(0)
            steps, done = steps + 1, terminated or truncated
        expected.append(float(steps))
    assert returns == expected and all(8 <= r <= 30 for r in returns)
