"""The pure parts of the throughput benchmark: rate bookkeeping on fake clocks, table rows with
hand-computed fractions, the written table; and the R2D2 actor's fast step against the network's."""
import csv
import math

import pytest
import torch

from benchmarks.measure import Rate, StopAfter, cell, in_fresh_process, timed_rate, write_table
from benchmarks.throughput import COLUMNS, make_row, plot_env_layers, r2d2_note


class FakeClocks:
    """A wall clock that advances `wall_step` per step() call and a CPU clock that advances `cpu_step`."""

    def __init__(self, wall_step: float, cpu_step: float):
        self.wall = self.cpu = 0.0
        self.wall_step, self.cpu_step = wall_step, cpu_step
        self.calls = 0

    def step(self) -> int:
        self.calls += 1
        self.wall += self.wall_step
        self.cpu += self.cpu_step
        return 4  # units per call, e.g. agent steps of a 4-env actor


def test_timed_rate_counts_units_per_wall_and_cpu_second_after_the_warmup():
    clocks = FakeClocks(wall_step=0.5, cpu_step=0.25)
    rate = timed_rate(clocks.step, seconds=2.0, warmup_seconds=1.0, clock=lambda: clocks.wall,
                      cpu_clock=lambda: clocks.cpu)
    # warm-up: calls at wall 0 -> 0.5 and 0.5 -> 1.0; measured: 4 calls (1.0 -> 3.0), 16 units in 2 s
    assert clocks.calls == 6
    assert rate == Rate(8.0, 16.0)


def test_timed_rate_measures_at_least_one_call_when_one_call_outlasts_the_window():
    clocks = FakeClocks(wall_step=10.0, cpu_step=10.0)
    rate = timed_rate(clocks.step, seconds=1.0, warmup_seconds=0.0, clock=lambda: clocks.wall,
                      cpu_clock=lambda: clocks.cpu)
    assert clocks.calls == 1 and rate == Rate(0.4, 0.4)


def test_stop_after_reads_a_counter_it_does_not_drive():
    """As for a3c's run_worker: the loop checks should_stop once per window of 5 steps."""
    wall, steps = [0.0], [0]
    stop = StopAfter(lambda: steps[0], seconds=3.0, warmup_seconds=1.0, clock=lambda: wall[0],
                     cpu_clock=lambda: wall[0] / 2)
    windows = 0
    while not stop():
        steps[0] += 5
        wall[0] += 0.5
        windows += 1
    # marks at wall 1.0 (10 steps) and 4.0 (40 steps): 30 steps in 3 s wall and 1.5 s CPU
    assert windows == 8 and stop.marks == [(1.0, 0.5, 10), (4.0, 2.0, 40)]
    assert stop.rate() == Rate(10.0, 20.0)


def test_fresh_processes_return_results_and_raise_the_child_s_error():
    assert in_fresh_process(math.sqrt, 6.25, torch_threads=None) == 2.5
    with pytest.raises(RuntimeError, match="sqrt.*ValueError: math domain error"):
        in_fresh_process(math.sqrt, -1.0, torch_threads=None)


def test_rows_carry_frames_and_the_fraction_of_bare_ale():
    bare_frames = Rate(20_000.0, 25_000.0)
    bare = make_row("env", "bare ALE (ale.act)", "ALE/Pong-v5", "", "agent steps/s", Rate(5_000.0, 6_250.0), 4,
                    bare_frames)
    layer = make_row("env", "our DQN env stack", "ALE/Pong-v5", "", "agent steps/s", Rate(2_500.0, 3_000.0), 4,
                     bare_frames)
    learner = make_row("learner", "R2D2 learner", "ALE/Pong-v5", "", "sequences/s", Rate(12.345, 6.789))
    skipped = make_row("env", "EnvPool, 1 env", "ALE/Pong-v5", "", "agent steps/s", None, 4, bare_frames, "no wheel")
    assert bare["frames_per_s"] == 20_000 and bare["vs_bare_ale"] == 1.0 and bare["vs_bare_ale_cpu"] == 1.0
    assert layer["rate"] == 2_500 and layer["per_cpu_s"] == 3_000
    assert layer["frames_per_s"] == 10_000 and layer["vs_bare_ale"] == 0.5  # 4 * 2,500 / 20,000
    assert layer["vs_bare_ale_cpu"] == 0.48  # 4 * 3,000 / 25,000
    assert learner["rate"] == 12.3 and learner["per_cpu_s"] == 6.789 and "vs_bare_ale" not in learner
    assert skipped["rate"] == "skipped: no wheel" and "frames_per_s" not in skipped
    wall_only = make_row("replay", "transition replay: insert", "", "", "transitions/s", 123_456.7)
    assert wall_only["rate"] == 123_457 and "per_cpu_s" not in wall_only


def test_write_table_writes_csv_markdown_and_the_load(tmp_path):
    bare_frames = Rate(20_000.0, 25_000.0)
    rows = [make_row("env", "our DQN env stack", "ALE/Pong-v5", "1 env", "agent steps/s", Rate(2_500.0, 3_000.0), 4,
                     bare_frames),
            make_row("env", "EnvPool, 1 env", "ALE/Pong-v5", "", "agent steps/s", None, 4, bare_frames, "no wheel")]
    text = write_table("t", COLUMNS, rows, "python -m benchmarks.throughput --quick", 1.5, ["a note"], tmp_path)
    lines = text.splitlines()
    assert lines[0] == "`python -m benchmarks.throughput --quick`"
    assert "load average 1.50 at the start" in lines[2] and " cores, " in lines[2]
    assert ("| env | our DQN env stack | ALE/Pong-v5 | 1 env | 2,500 | 3,000 | agent steps/s | 10,000 | 0.5 | 0.48 |"
            in lines)
    assert "| env | EnvPool, 1 env | ALE/Pong-v5 |  | skipped: no wheel |  | agent steps/s |  |  |  |" in lines
    assert lines[-1] == "a note" and (tmp_path / "t.md").read_text() == text
    with open(tmp_path / "t.csv") as f:
        written = list(csv.DictReader(f))
    assert [r["vs_bare_ale_cpu"] for r in written] == ["0.48", ""] and list(written[0]) == COLUMNS


def test_cells_and_the_r2d2_sentence():
    assert [cell(None), cell(1234567), cell(0.125), cell(True), cell("x")] == ["", "1,234,567", "0.125", "True", "x"]
    rows = [make_row("env", "our DQN env stack", "ALE/Pong-v5", "", "agent steps/s", Rate(2_000.0, 2_500.0), 4),
            make_row("actor", "R2D2 actor (r2d2.actor.Actor.step)", "ALE/Pong-v5", "16 envs", "agent steps/s",
                     Rate(900.0, 1_200.0), 4)]
    actor, envs = r2d2_note(rows)
    assert actor == ("R2D2 actor, 16 envs: 900 agent steps/s per actor process (1,200 per CPU-second): misses "
                     "the R2D2 actor target of 1,000 in wall-clock terms.")
    assert envs == "In the same run on ALE/Pong-v5: our DQN env stack 2,000 agent steps/s (2,500 per CPU-second)."
    assert r2d2_note(rows[:1]) == []
    at_target = make_row("actor", "R2D2 actor (r2d2.actor.Actor.step)", "ALE/Pong-v5", "32 envs", "agent steps/s",
                         Rate(1_000.0, 1_400.0), 4)
    assert ": meets the R2D2 actor target" in r2d2_note([at_target])[0]


def test_the_chart_is_written(tmp_path):
    rows = [make_row("env", name, game, "", "agent steps/s", Rate(rate, rate), 4, Rate(20_000.0, 20_000.0))
            for game in ("ALE/Pong-v5", "ALE/Breakout-v5") for name, rate in (("bare", 5_000.0), ("stack", 2_000.0))]
    plot_env_layers(rows, tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 1000


def test_r2d2_fast_actor_step_matches_the_network_step():
    """r2d2.network.act_step (the LSTM as a cell on the same parameters) against R2D2Network.step,
    also after the network's parameters change in place, as PublishedParams.pull changes them."""
    from r2d2.network import act_step, shared_cell
    from r2d2.network import LstmState, R2D2Network

    torch.manual_seed(0)
    net = R2D2Network((4, 84, 84), 6, 32, 16)
    cell_ = shared_cell(net.lstm)
    obs = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    prev_action, prev_reward = torch.tensor([0, 1, 2, 5, 3]), torch.tensor([0.0, 1.0, -1.0, 0.5, 0.0])
    state = LstmState(torch.randn(5, 16), torch.randn(5, 16))
    for _ in range(2):
        with torch.inference_mode():
            q, after = net.step(obs, prev_action, prev_reward, state)
            q_fast, after_fast = act_step(net, cell_, obs, prev_action, prev_reward, state)
        assert q_fast == pytest.approx(q, abs=1e-5)
        assert after_fast.h == pytest.approx(after.h, abs=1e-5) and after_fast.c == pytest.approx(after.c, abs=1e-5)
        with torch.no_grad():
            net.lstm.weight_hh_l0.copy_(torch.randn_like(net.lstm.weight_hh_l0))
    assert sorted(name for name, _ in cell_.named_parameters()) == ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]
