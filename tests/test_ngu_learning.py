"""NGU and Agent57 reach the far reward of a hard-exploration chain; R2D2, on the same box for the
same time, settles for the near one.

`common.chain:Chain-v0` (common/chain.py): 16 states, a reward of 1 one step left of the start that
ends the episode, a reward of 10 at the far end behind 14 right moves in a row, where "right" is a
different action in each state and any wrong move falls back to the start. Both agents run with their
small-task defaults in serial mode (one process each), at the same time: R2D2 and Agent57 as commands
in the background, NGU here, until the greedy evaluations of NGU and Agent57 reach 10; then R2D2 is
stopped, so it had at least their wall-clock budget. Both evaluators play the exploiting policy j = 0
(beta 0; Agent57's with --eval-policy exploit), so a pass means the extrinsic Q-values of j = 0 learned
the far reward from what the exploring policies found.

Measured here from a fresh clone (seed 0; serial mode is deterministic, the wall-clock times are not):
NGU's greedy evaluation reached 10 at 22.5k steps (34 s), Agent57's at 90k steps (215 s), while R2D2
made 38.6k steps in 219 s and evaluated 1.0 throughout (its episodes end at the distractor after a
step or two, so it inserts many more sequences per step, and its learner keeps 16 samples per insert).
Broken by hand: NGU with --intrinsic-beta 0 (no intrinsic reward in any policy's reward) evaluated 1.0
in all 121 evaluations of 250 s (26.7k steps), as R2D2 does. Earlier code (float64 k-NN distances,
which gives another trajectory, and an evaluator that rebuilt its intrinsic reward every round, see
tests/test_ngu_agent.py) first reached 10 at 155k steps in three runs; the one that ran on fell back
to 0 in most evaluations after 190k steps.
"""
import csv
import os
import signal

from common.chain import ENV_ID, LARGE, SMALL
from ngu.config import make_config
from ngu.train import main
from tests.helpers import start_training


def evaluations(run_dir, log) -> list[float]:
    assert (run_dir / "eval.csv").is_file(), log.read_text()
    return [float(row["eval_return_mean"]) for row in csv.DictReader(open(run_dir / "eval.csv"))]


def test_ngu_and_agent57_reach_the_far_reward_where_r2d2_settles_for_the_near_one(tmp_path):
    common = ["--env-id", ENV_ID, "--serial", "--seed", "0", "--num-workers", "1"]
    r2d2 = start_training("r2d2.train", *common, "--max-seconds", "900", "--run-dir", str(tmp_path / "r2d2"),
                          log=tmp_path / "r2d2.log")
    agent57 = start_training("agent57.train", *common, "--eval-policy", "exploit", "--stop-return", str(LARGE),
                             "--max-seconds", "400", "--run-dir", str(tmp_path / "agent57"),
                             log=tmp_path / "agent57.log")
    try:
        ngu = main(make_config({"env_id": ENV_ID, "serial": True, "seed": 0, "num_workers": 1, "stop_return": LARGE,
                                "max_seconds": 400.0, "run_dir": str(tmp_path / "ngu")}))
        agent57.wait(timeout=450)
    finally:
        for proc in (r2d2, agent57):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
    assert ngu.best_eval >= LARGE, f"NGU evaluations {ngu.eval_means}"
    assert max(evaluations(tmp_path / "agent57", tmp_path / "agent57.log")) >= LARGE
    r2d2_evaluations = evaluations(tmp_path / "r2d2", tmp_path / "r2d2.log")
    assert len(r2d2_evaluations) >= 5 and max(r2d2_evaluations) <= SMALL, f"R2D2 evaluations {r2d2_evaluations}"
