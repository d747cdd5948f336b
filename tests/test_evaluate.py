"""`python -m <family>.evaluate`: real runs' checkpoints played back, videos with one frame per step,
and bad input refused with one line."""
import re
import shutil

import cv2
import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

import a3c.evaluate
import apex.evaluate
import agent57.evaluate
import ngu.evaluate
import r2d2.evaluate
from a3c.config import make_config as a3c_config
from a3c.train import main as a3c_main
from apex.config import make_config as apex_config
from apex.train import main as apex_main
from common.catch import ENV_ID as CATCH
from common.checkpoint import save_checkpoint
from common.evaluate import EvalConfig, load_network
from common.recipe import probe_env
from common.run import write_config
from common.video import rgb_frame
from agent57.config import make_config as agent57_config
from agent57.train import main as agent57_main
from ngu.config import make_config as ngu_config
from ngu.train import main as ngu_main
from r2d2.config import make_config as r2d2_config
from r2d2.train import main as r2d2_main
from tests.helpers import one_error_line

FAMILIES = {"a3c": a3c.evaluate, "apex": apex.evaluate, "r2d2": r2d2.evaluate, "ngu": ngu.evaluate,
            "agent57": agent57.evaluate}
QUIET = {"env_id": "CartPole-v1", "eval_interval_seconds": 0.0, "log_interval_seconds": 60.0}


class DrawnCartPole(CartPoleEnv):
    """CartPole that renders without pygame: a white 100 x 150 screen with the cart as a black column."""
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def render(self):
        frame = np.full((100, 150, 3), 255, np.uint8)
        frame[:, int(np.clip((self.state[0] + 2.4) / 4.8, 0, 1) * 149)] = 0
        return frame


if "DrawnCartPole-v1" not in gym.registry:
    gym.register("DrawnCartPole-v1", entry_point=DrawnCartPole, max_episode_steps=500)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A short real run of each family on CartPole-v1: its run directory."""
    root = tmp_path_factory.mktemp("runs")
    a3c_main(a3c_config({**QUIET, "num_workers": 1, "total_steps": 300, "run_dir": str(root / "a3c")}))
    apex_main(apex_config({**QUIET, "serial": True, "total_steps": 300, "learning_starts": 100,
                           "replay_capacity": 1000, "run_dir": str(root / "apex")}))
    r2d2_main(r2d2_config({**QUIET, "serial": True, "total_steps": 300, "envs_per_actor": 2, "learning_starts": 8,
                           "batch_size": 8, "lstm_size": 16, "hidden_size": 16, "sequence_length": 8,
                           "sequence_overlap": 4, "burn_in": 4, "run_dir": str(root / "r2d2")}))
    ngu_main(ngu_config({**QUIET, "serial": True, "total_steps": 300, "envs_per_actor": 2, "learning_starts": 8,
                         "batch_size": 8, "lstm_size": 16, "hidden_size": 16, "sequence_length": 8,
                         "sequence_overlap": 4, "burn_in": 4, "num_policies": 4, "run_dir": str(root / "ngu")}))
    agent57_main(agent57_config({**QUIET, "serial": True, "total_steps": 300, "envs_per_actor": 2, "learning_starts": 8,
                                 "batch_size": 8, "lstm_size": 16, "hidden_size": 16, "sequence_length": 8,
                                 "sequence_overlap": 4, "burn_in": 4, "num_policies": 10,
                                 "run_dir": str(root / "agent57")}))
    return {family: root / family for family in FAMILIES}


def written_run(family: str, env_id: str, run_dir):
    """A run directory holding config.json and one checkpoint of an untrained network: quicker than
    training, for envs the runs above do not cover."""
    module = FAMILIES[family]
    cfg = module.FAMILY.make_config({"env_id": env_id, "run_dir": str(run_dir)})
    obs_shape, num_actions = probe_env(cfg)[:2]
    net = module.FAMILY.make_net(cfg, obs_shape, num_actions)
    run_dir.mkdir(parents=True)
    write_config(run_dir, cfg)
    save_checkpoint(run_dir, 0, {"meta": module.FAMILY.meta(cfg, net), "model": net.state_dict()})
    return run_dir


def returns_printed(out: str) -> list[float]:
    return [float(value) for value in re.findall(r"^episode \d+: return (\S+)$", out, re.MULTILINE)]


def video_frames(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened()
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.mark.parametrize("family", FAMILIES)
def test_a_run_is_played_back_with_its_own_weights(family, runs, capsys):
    assert FAMILIES[family].cli([str(runs[family]), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    returns = returns_printed(out)
    assert len(returns) == 3 and all(r >= 1 for r in returns)  # a CartPole game lasts at least one step
    assert f"mean {np.mean(returns):.2f}, std {np.std(returns):.2f} over 3 episodes" in out
    assert "human-normalized" not in out  # only for ALE ids
    _, net, path = load_network(FAMILIES[family].FAMILY, EvalConfig(str(runs[family])))
    saved = torch.load(path, weights_only=True)["model"]
    assert all(torch.equal(t, saved[name]) for name, t in net.state_dict().items())


@pytest.mark.parametrize("family", FAMILIES)
def test_the_video_has_one_rendered_frame_per_step(family, tmp_path, capsys):
    run = written_run(family, "DrawnCartPole-v1", tmp_path / "run")
    video = tmp_path / "game.mp4"
    assert FAMILIES[family].cli([str(run), "--episodes", "2", "--video", str(video)]) == 0
    out = capsys.readouterr().out
    steps = int(returns_printed(out)[0])  # CartPole pays 1 per step: the first game's return is its steps
    frames = video_frames(video)
    assert len(frames) == steps
    assert f"video {video}: {steps} frames" in out
    assert frames[0].shape == (200, 300, 3)  # the 100 x 150 screen scaled up by 2, to at least 160 pixels


def test_an_env_without_rendering_is_recorded_from_its_image_observations(tmp_path, capsys):
    run = written_run("apex", CATCH, tmp_path / "run")
    video = tmp_path / "catch.mp4"
    assert apex.evaluate.cli([str(run), "--episodes", "1", "--video", str(video)]) == 0
    frames = video_frames(video)
    assert len(frames) == 9  # the ball falls from row 0 to row 9, one row per step
    assert frames[0].shape == (168, 168, 3)  # 84 x 84 frames scaled up by 2


def test_rgb_frame_takes_the_newest_frame_of_a_stack_in_gray_and_scales_it_up():
    stack = np.zeros((4, 84, 84), np.uint8)
    stack[-1, 10, 20] = 200
    stack[0, 50, 50] = 99  # an older frame: not shown
    frame = rgb_frame(stack)
    assert frame.shape == (168, 168, 3) and frame.dtype == np.uint8
    assert (frame[20:22, 40:42] == 200).all()  # pixel (10, 20) became the 2 x 2 block at (20, 40)
    assert frame.sum() == 200 * 4 * 3
    assert rgb_frame(np.zeros((210, 160, 3), np.uint8)).shape == (210, 160, 3)  # large enough already


def test_another_family_or_env_or_network_is_refused(runs, tmp_path, capsys):
    line = one_error_line(a3c.evaluate.cli, capsys, [str(runs["apex"])])
    assert "made for family 'apex', not 'a3c'" in line
    other = tmp_path / "other"
    shutil.copytree(runs["a3c"], other)
    config = other / "config.json"
    config.write_text(config.read_text().replace('"CartPole-v1"', '"Acrobot-v1"'))
    assert "made for env_id 'CartPole-v1', not 'Acrobot-v1'" in one_error_line(a3c.evaluate.cli, capsys, [str(other)])
    config.write_text(config.read_text().replace('"Acrobot-v1"', '"CartPole-v1"').replace(
        '"hidden_size": 64', '"hidden_size": 32'))
    assert "network of other shapes" in one_error_line(a3c.evaluate.cli, capsys, [str(other)])


def test_bad_input_gives_one_clear_line(runs, tmp_path, capsys):
    run = runs["apex"]
    cli = apex.evaluate.cli
    checkpoint = sorted(run.glob("ckpt-*.pt"))[-1]
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    shutil.copy(run / "config.json", corrupt)
    (corrupt / "ckpt-000000000001.pt").write_bytes(checkpoint.read_bytes()[:1000])  # cut short
    assert "corrupt" in one_error_line(cli, capsys, [str(corrupt)])
    assert "no checkpoint found" in one_error_line(cli, capsys, [str(tmp_path / "missing")])
    assert "no checkpoint found" in one_error_line(cli, capsys, [str(tmp_path)])
    lonely = tmp_path / "lonely.pt"
    shutil.copy(checkpoint, lonely)
    assert "no config.json" in one_error_line(cli, capsys, [str(lonely)])
    video = tmp_path / "not-a-dir" / "game.mp4"
    (tmp_path / "not-a-dir").write_text("a file")
    drawn = written_run("apex", "DrawnCartPole-v1", tmp_path / "drawn")  # one that can be recorded
    assert "cannot write the video" in one_error_line(cli, capsys, [str(drawn), "--video", str(video)])
    assert "--video must name an .mp4" in one_error_line(cli, capsys, [str(run), "--video", str(tmp_path / "a.avi")])
    for episodes in ("0", "-3"):
        assert "--episodes must be positive" in one_error_line(cli, capsys, [str(run), "--episodes", episodes])
    assert "required" in one_error_line(cli, capsys, [])


def test_cartpole_without_pygame_cannot_be_recorded(runs, tmp_path, capsys):
    try:
        import pygame  # noqa: F401
        pytest.skip("pygame is installed: CartPole renders")
    except ImportError:
        pass
    line = one_error_line(apex.evaluate.cli, capsys, [str(runs["apex"]), "--video", str(tmp_path / "g.mp4")])
    assert "cannot record CartPole-v1" in line and "not images" in line


def test_the_runs_evaluator_records_a_game_every_video_interval(tmp_path):
    run = tmp_path / "run"
    apex_main(apex_config({"env_id": CATCH, "serial": True, "max_seconds": 10.0, "eval_interval_seconds": 0.3,
                           "eval_episodes": 2, "video_interval_seconds": 2.0, "log_interval_seconds": 60.0,
                           "replay_capacity": 2000, "run_dir": str(run)}))
    videos = sorted((run / "videos").glob("eval-*.mp4"))
    evaluations = len((run / "eval.csv").read_text().splitlines()) - 1
    assert 2 <= len(videos) < evaluations, "one evaluation in several is recorded"
    frames = [len(video_frames(video)) for video in videos]
    assert frames[:-1] == [9] * (len(videos) - 1)  # a whole Catch game; the last may be cut by the stop
    assert frames[-1] <= 9
