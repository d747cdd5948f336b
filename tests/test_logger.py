"""Run logs: a resumed run appends to its files in their own columns."""
import csv

from common.logger import EVAL_FIELDS, RunLogger


def _log_one_eval_and_read(run_dir) -> list[list[str]]:
    logger = RunLogger(run_dir, append=True, title="t", tensorboard=False)
    logger.log_eval({"wall_seconds": 2.0, "env_steps": 20, "env_frames": 20, "eval_return_mean": 30.0,
                     "eval_return_std": 1.0, "episodes": 5, "unix_time": 1_800_000_000.5})
    logger.close()
    with open(run_dir / "eval.csv", newline="") as f:
        return list(csv.reader(f))


def test_a_resumed_run_keeps_the_columns_its_eval_csv_was_started_with(tmp_path):
    old_fields = [f for f in EVAL_FIELDS if f != "unix_time"]  # written before unix_time existed
    (tmp_path / "eval.csv").write_text(",".join(old_fields) + "\n1.0,10,10,20.0,0.0,5\n")
    assert _log_one_eval_and_read(tmp_path) == [old_fields, ["1.0", "10", "10", "20.0", "0.0", "5"],
                                                ["2.0", "20", "20", "30.0", "1.0", "5"]]


def test_a_new_run_writes_every_column(tmp_path):
    assert _log_one_eval_and_read(tmp_path) == [EVAL_FIELDS, ["2.0", "20", "20", "30.0", "1.0", "5", "1800000000.5"]]
