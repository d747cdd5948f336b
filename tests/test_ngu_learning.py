"""NGU reaches the far reward of a hard-exploration chain; R2D2, on the same box for the same time,
settles for the near one.

`common.chain:Chain-v0` (common/chain.py): 16 states, a reward of 1 one step left of the start that
ends the episode, a reward of 10 at the far end behind 14 right moves in a row, where "right" is a
different action in each state and any wrong move falls back to the start. Both agents run with their
small-task defaults in serial mode (one process each, so one core each on a 2-core box), at the same
time: R2D2 as a command in the background, NGU here until its greedy evaluation reaches 10; then R2D2
is stopped, so both had the same wall-clock budget. NGU's evaluator plays the exploiting policy j = 0
(beta 0), so a pass means the extrinsic Q-values of j = 0 learned the far reward from what the
exploring policies found.

Measured here (seed 0, serial mode is deterministic): NGU's greedy evaluations stayed at 0 or 1 up
to 149k steps and were 10 from 155k steps on (127 s and 153 s into two runs on a box shared with a
benchmark). R2D2 in the same time made about 30k steps (its episodes end at the distractor after one
or two steps, so it inserts many more sequences per step, and its learner keeps 16 samples per
insert) and evaluated 1.0 throughout.
"""
import csv
import os
import signal

from common.chain import ENV_ID, LARGE, SMALL
from ngu.config import make_config
from ngu.train import main
from tests.helpers import start_training, wait_for


def test_ngu_reaches_the_far_reward_where_r2d2_settles_for_the_near_one(tmp_path):
    r2d2_run = tmp_path / "r2d2"
    r2d2 = start_training("r2d2.train", "--env-id", ENV_ID, "--serial", "--seed", "0", "--max-seconds", "600",
                          "--run-dir", str(r2d2_run), log=tmp_path / "r2d2.log")
    try:
        ngu = main(make_config({"env_id": ENV_ID, "serial": True, "seed": 0, "num_workers": 1, "stop_return": LARGE,
                                "max_seconds": 300.0, "run_dir": str(tmp_path / "ngu")}))
    finally:
        os.killpg(r2d2.pid, signal.SIGTERM)
        r2d2.wait(timeout=60)
    assert ngu.best_eval >= LARGE, f"NGU evaluations {ngu.eval_means}"
    assert wait_for(lambda: (r2d2_run / "eval.csv").is_file(), 1), (tmp_path / "r2d2.log").read_text()
    evaluations = [float(row["eval_return_mean"]) for row in csv.DictReader(open(r2d2_run / "eval.csv"))]
    assert len(evaluations) >= 5 and max(evaluations) <= SMALL, f"R2D2 evaluations {evaluations}"
