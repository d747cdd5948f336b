import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks import compare, thread_scaling


def _eval(wall: float, steps: int, mean: float, frames: float | None = None) -> dict[str, float]:
    return {"wall_seconds": wall, "env_steps": steps, "env_frames": steps if frames is None else frames,
            "eval_return_mean": mean, "eval_return_std": 0.0, "episodes": 10}


EVALS = [_eval(2.0, 1_000, 20.0), _eval(4.5, 3_000, 480.0), _eval(7.0, 5_000, 300.0), _eval(9.0, 7_000, 500.0)]
METRICS = [{"wall_seconds": 5.0, "env_frames": 4_000.0}, {"wall_seconds": 10.0, "env_frames": 8_000.0}]


def test_time_to_threshold_is_the_first_evaluation_that_reaches_it():
    assert compare.time_to_threshold(EVALS, 475.0, "CartPole-v1") == (4.5, 3_000)
    assert compare.time_to_threshold(EVALS, 500.0, "CartPole-v1") == (9.0, 7_000)
    assert compare.time_to_threshold(EVALS, 501.0, "CartPole-v1") == (math.inf, math.inf)
    assert compare.time_to_threshold([], 0.0, "CartPole-v1") == (math.inf, math.inf)


def test_eval_frames_from_steps_when_the_column_is_missing():
    # an older eval.csv without env_frames: 4 emulator frames per agent step on ALE games
    assert compare.time_to_threshold([_eval(3.0, 250, -10.0, frames=math.nan)], -15.0, "ALE/Pong-v5") == (3.0, 1_000)


def test_run_stats_by_hand():
    stats = compare.run_stats(METRICS, EVALS, 475.0, "CartPole-v1")
    assert stats == {"final": 500.0, "best": 500.0, "seconds_to_threshold": 4.5, "frames_to_threshold": 3_000,
                     "frames_per_second": 800.0}  # 8,000 frames in 10 s


def test_aggregate_over_seeds_by_hand():
    seeds = [{"final": 10.0, "best": 30.0, "seconds_to_threshold": 10.0, "frames_to_threshold": 100.0,
              "frames_per_second": 1_000.0},
             {"final": 20.0, "best": 40.0, "seconds_to_threshold": math.inf, "frames_to_threshold": math.inf,
              "frames_per_second": 2_000.0},
             {"final": 30.0, "best": 50.0, "seconds_to_threshold": 30.0, "frames_to_threshold": 500.0,
              "frames_per_second": 3_000.0}]
    agg = compare.aggregate(seeds)
    assert agg["final_mean"] == 20.0
    assert agg["final_std"] == pytest.approx(math.sqrt(200 / 3))  # population std of 10, 20, 30
    assert agg["best_mean"] == 40.0
    # median of 10, 30 and a seed that never got there (inf): the middle one
    assert (agg["seconds_to_threshold"], agg["frames_to_threshold"], agg["seeds_reached"]) == (30.0, 500.0, 2)
    assert agg["seconds_per_seed"] == "10.0 inf 30.0"
    assert agg["frames_per_second"] == 2_000.0
    # two seeds, one unreached: the median is inf, not the reached seed's time
    assert compare.aggregate(seeds[:2])["seconds_to_threshold"] == math.inf


def test_curve_band_averages_the_seeds_present_at_each_x():
    # seed A covers x 0..10 (y = x), seed B covers 0..20 (y = 10 + x); grid 0, 5, 10, 15, 20
    grid, mean, low, high = compare.curve_band([([0.0, 10.0], [0.0, 10.0]), ([0.0, 20.0], [10.0, 30.0]), ([], [])],
                                               points=5)
    np.testing.assert_allclose(grid, [0, 5, 10, 15, 20])
    np.testing.assert_allclose(mean, [5, 10, 15, 25, 30])
    np.testing.assert_allclose(low, [0, 5, 10, 25, 30])
    np.testing.assert_allclose(high, [10, 15, 20, 25, 30])
    # seeds that do not overlap leave a gap, not a warning
    _, mean, _, _ = compare.curve_band([([0.0, 1.0], [1.0, 1.0]), ([3.0, 4.0], [2.0, 2.0])], points=5)
    np.testing.assert_allclose(mean, [1, 1, np.nan, 2, 2])


def test_a_new_command_replaces_every_seed_unless_it_adds_seeds(tmp_path):
    for k in range(3):
        (tmp_path / f"seed{k}").mkdir()
    replaced = compare.stale_runs(tmp_path, range(0, 1), keep_other_seeds=False)
    assert [d.name for d in replaced] == ["seed0", "seed1", "seed2"]
    # --seeds 2 --first-seed 2: seeds 2 and 3 run, seed 2's old run goes, seeds 0 and 1 stay
    assert [d.name for d in compare.stale_runs(tmp_path, range(2, 4), keep_other_seeds=True)] == ["seed2"]
    assert compare.stale_runs(tmp_path / "never-run", range(0, 3), keep_other_seeds=False) == []


def test_process_plan_gives_every_family_the_same_cores():
    assert compare.process_plan("a3c", 2) == (2, "2 workers")
    assert compare.process_plan("apex", 2) == (1, "1 actor + learner")
    assert compare.process_plan("r2d2", 16) == (15, "15 actors + learner")
    assert compare.process_plan("dqn", 16) == (1, "1 process (serial)")
    assert compare.process_plan("apex", 1) == (1, "1 actor + learner")
    assert compare.process_plan("gorila", 4) == (3, "3 bundles + parameter server")
    assert compare.train_command("gorila", "CartPole-v1", 0, 2, 5.0, 1.0, (), None)[2:4] == ["apex.train", "--gorila"]


def test_thresholds():
    assert compare.threshold_for("CartPole-v1") == 475.0
    assert compare.threshold_for("Acrobot-v1") == -100.0
    assert compare.threshold_for("ALE/Pong-v5") == 14.6  # the human score: HNS 1
    assert compare.threshold_for("MinAtar/SpaceInvaders-v1") == 43.0  # the published DQN at 5M frames


def _saved_run(algo: str, seed: int, evals: list[dict[str, float]]) -> dict:
    info = {"processes": "2 workers", "flags": "", "returncode": 0, "seed": seed}
    return {"info": info, "metrics": METRICS, "evals": evals}


def test_hns_columns_on_atari_only():
    runs = {"a3c": [_saved_run("a3c", 0, [_eval(1.0, 10, -20.7)]), _saved_run("a3c", 1, [_eval(1.0, 10, 14.6)])]}
    (row,) = compare.table_rows("ALE/Pong-v5", runs, 14.6)
    # final mean over seeds (-20.7 + 14.6) / 2 = -3.05; HNS (-3.05 + 20.7) / (14.6 + 20.7) = 0.5
    assert row["final_mean"] == pytest.approx(-3.05)
    assert row["hns_final"] == pytest.approx(0.5)
    assert row["seeds_reached"] == 1
    lines = compare.markdown("ALE/Pong-v5", [row], [])
    assert "HNS final | HNS best" in next(line for line in lines if line.startswith("| algo"))
    assert lines[-1].endswith("| 0.500 | 0.500 |")
    (cartpole,) = compare.table_rows("CartPole-v1", runs, 475.0)
    assert "hns_final" not in cartpole
    assert "HNS" not in "\n".join(compare.markdown("CartPole-v1", [cartpole], []))


def test_a_short_comparison_writes_csvs_plots_and_tables(tmp_path):
    out = tmp_path / "cmp"
    assert compare.main(["--env-ids", "CartPole-v1", "--algos", "a3c", "dqn", "--seeds", "1",
                         "--max-seconds", "6", "--eval-interval-seconds", "0.5", "--out", str(out)]) == 0
    table = (out / "CartPole-v1.md").read_text()
    evaluated = 0
    for algo in ("a3c", "dqn"):
        run = out / "runs" / "CartPole-v1" / algo / "seed0"
        info = json.loads((run / "run.json").read_text())
        assert info["returncode"] == 0, (run / "train.log").read_text()[-2000:]
        assert (run / "metrics.csv").read_text().startswith("wall_seconds,env_steps,env_frames")
        assert json.loads((run / "config.json").read_text())["env_id"] == "CartPole-v1"
        # on a loaded box the spawned processes can take most of 6 s to start: then the row says so
        evals = (run / "eval.csv").read_text().splitlines()[1:]
        (row,) = [line for line in table.splitlines() if line.startswith(f"| {algo} |")]
        assert ("no evaluation" in row) == (not evals)
        evaluated += bool(evals)
    assert evaluated >= 1, "neither run was evaluated: nothing of the curves or the table's figures was tested"
    assert info["processes"] == "1 process (serial)" and "--serial" in info["command"]
    assert (out / "CartPole-v1.csv").read_text().count("\n") == 3
    assert (out / "CartPole-v1.png").read_bytes()[:4] == b"\x89PNG"
    assert "total_seconds" in json.loads((out / "benchmark.json").read_text())
    (out / "CartPole-v1.md").unlink()
    assert compare.main(["--report-only", "--out", str(out)]) == 0
    assert (out / "CartPole-v1.md").read_text() == table


def test_thread_scaling_worker_counts_double_past_eight():
    assert thread_scaling.default_workers(1) == [1]
    assert thread_scaling.default_workers(2) == [1, 2]
    assert thread_scaling.default_workers(12) == [1, 2, 3, 4, 5, 6, 7, 8, 12]
    assert thread_scaling.default_workers(64) == [1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64]


def _metrics(wall: float, frames: int, updates: int) -> dict[str, float]:
    return {"wall_seconds": wall, "env_steps": frames, "env_frames": frames, "updates": updates}


def test_thread_scaling_steady_rates_start_after_the_learner_and_warm_up():
    # actors alone at 2,000 frames/s until the learner starts at 5.0 s, then 1,000 frames/s and 10 updates/s
    rows = [_metrics(1.0, 100, 0), _metrics(2.0, 2_100, 0), _metrics(4.0, 6_100, 0), _metrics(5.0, 8_100, 10),
            _metrics(8.0, 11_100, 40), _metrics(10.0, 13_100, 60), _metrics(12.0, 15_100, 80),
            _metrics(12.5, 15_200, 81)]
    # replay: from the first row 3 s after the learner's start (8.0 s) to the last but one (the shutdown's)
    assert thread_scaling.steady_rates(rows, learner=True) == (4_000 / 4, 40 / 4)
    # async: from the first row 3 s after the first step (4.0 s)
    assert thread_scaling.steady_rates(rows, learner=False) == (9_000 / 8, 80 / 8)
    with pytest.raises(ValueError):
        thread_scaling.steady_rates(rows[:5], learner=True)


def test_thread_scaling_speedup_only_between_solved_runs():
    assert thread_scaling._speedup(42.6, 21.3) == "2.00x"
    assert thread_scaling._speedup(math.inf, 42.9) == "-"


@pytest.mark.parametrize("folder", ["thread_scaling", "thread_scaling_replay"])
def test_thread_scaling_results_redraw_as_they_are(tmp_path, folder):
    saved = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / folder
    shutil.copytree(saved, tmp_path / folder)
    family = "replay" if folder.endswith("replay") else "async"
    assert thread_scaling.main(["--family", family, "--report-only", "--out", str(tmp_path / folder)]) == 0
    assert (tmp_path / folder / "scaling.md").read_text() == (saved / "scaling.md").read_text()
    assert (tmp_path / folder / "scaling.png").read_bytes()[:4] == b"\x89PNG"


def test_thread_scaling_ceiling_runs_unrelated_copies_in_the_same_rounds(tmp_path, monkeypatch):
    calls = []

    def fake_throughput(env_id, algo, workers, seconds, tmp, copies=1):
        calls.append((workers, copies))
        return {(1, 1): 1_000.0, (2, 1): 1_800.0, (1, 2): 1_900.0}[workers, copies] + len(calls), 0.0

    monkeypatch.setattr(thread_scaling, "throughput", fake_throughput)
    args = thread_scaling.argparse.Namespace(env_id="CartPole-v1", workers=[1, 2], seconds=5.0, repeats=2,
                                             ceiling=True)
    rates, ceiling = thread_scaling.measure_throughput(args, "q1", tmp_path)
    # each round: 1 worker, 2 workers, then 2 unrelated 1-worker runs at once
    assert calls == [(1, 1), (2, 1), (1, 2)] * 2
    assert rates == {1: [(1_001.0, 0.0), (1_004.0, 0.0)], 2: [(1_802.0, 0.0), (1_805.0, 0.0)]}
    assert ceiling == {2: [1_903.0, 1_906.0]}


def test_thread_scaling_ceiling_table_by_hand(tmp_path):
    rows = [{"algo": "q1", "workers": 1, "frames_per_second": 1_000.0, "frames_per_second_runs": "1000",
             "seconds_to_threshold": None},
            {"algo": "q1", "workers": 2, "frames_per_second": 1_800.0, "frames_per_second_runs": "1800",
             "ceiling_frames_per_second": 1_950.0, "seconds_to_threshold": None}]
    thread_scaling.write_table(rows, [1, 2], tmp_path, "CartPole-v1")
    table = (tmp_path / "scaling.md").read_text()
    assert "| q1 | 1.00x (1,000) | 1.80x (1,800) |" in table
    # 1,950 / 1,000 = 1.95x the box gives two processes that share nothing; 1,800 / 1,950 = 92% of it
    assert "| q1 | 1.00x | 1.95x (1,950); 92% of it |" in table


def test_thread_scaling_run_together_waits_for_all_and_reports_a_failure():
    ok = [thread_scaling.sys.executable, "-c", "import time; time.sleep(0.2)"]
    thread_scaling.run_together([ok, ok], timeout=30)
    failing = [thread_scaling.sys.executable, "-c", "import sys; sys.exit('no such env')"]
    with pytest.raises(RuntimeError, match="no such env"):
        thread_scaling.run_together([ok, failing], timeout=30)


def test_thread_scaling_times_the_reach_from_the_commands_start():
    evals = [{**e, "unix_time": 1_000.0 + e["wall_seconds"] + 2.5} for e in EVALS]  # the owner loop began 2.5 s in
    # started at unix 1,000: the first mean >= 475 was logged at 1,000 + 4.5 + 2.5, after 3,000 frames
    assert thread_scaling.reached_at(evals, 475.0, started=1_000.0) == (7.0, 3_000)
    assert thread_scaling.reached_at(evals, 501.0, started=1_000.0) == (math.inf, math.inf)


def test_thread_scaling_solve_table_shows_reach_and_exit_per_seed(tmp_path):
    rows = [{"algo": "a3c", "workers": 2, "frames_per_second": 9_000.0, "frames_per_second_runs": "9000",
             "seconds_to_threshold": 14.0, "frames_to_threshold": 70_000.0, "seconds_per_seed": "12.0 14.0 19.0",
             "exit_seconds_per_seed": "14.6 16.7 21.5"}]
    thread_scaling.write_table(rows, [2], tmp_path, "CartPole-v1")
    table = (tmp_path / "scaling.md").read_text()
    assert "until it logs an evaluation mean at the threshold" in table
    assert "| a3c | 14.0 s / 70,000 (seeds: 12.0 14.0 19.0; exits: 14.6 16.7 21.5) |" in table
