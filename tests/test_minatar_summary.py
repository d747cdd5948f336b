from benchmarks import minatar_summary

BREAKOUT, INVADERS = "MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v1"


def _row(env_id: str, algo: str, final: float) -> dict[str, str]:
    return {"env_id": env_id, "algo": algo, "seeds": "1", "final_mean": str(final), "final_std": "0.0",
            "best_mean": str(final), "frames_to_threshold": "inf", "seeds_reached": "0", "frames_per_second": "1"}


def test_a_newer_folder_replaces_a_row_and_a_seeds_folder_stands_beside_it():
    tables = [("old", False, [_row(INVADERS, "a2c", 117.1), _row(BREAKOUT, "reinforce", 9.5),
                              _row(BREAKOUT, "a2c", 6.9)]),
              ("new", False, [_row(BREAKOUT, "a2c", 21.1)]),
              ("seeds", True, [_row(BREAKOUT, "reinforce", 12.0)])]
    rows = minatar_summary.current_rows(tables)
    # Breakout before Space Invaders, and a2c before reinforce (ALGOS order), whatever the folders' order
    assert [(r["env_id"], r["algo"], r["folder"]) for r in rows] == [
        (BREAKOUT, "a2c", "new"), (BREAKOUT, "reinforce", "old"), (BREAKOUT, "reinforce", "seeds"),
        (INVADERS, "a2c", "old")]


def test_the_goal_is_the_published_dqn_figure_of_each_game():
    # DQN at 5M frames: 10 on Breakout, 43 on Space Invaders
    assert minatar_summary.meets_goal(_row(BREAKOUT, "a3c", 10.0))
    assert not minatar_summary.meets_goal(_row(BREAKOUT, "a3c", 9.5))
    assert not minatar_summary.meets_goal(_row(INVADERS, "a3c", 42.9))
    assert minatar_summary.meets_goal(_row(INVADERS, "a3c", 43.0))


def test_the_summary_is_written_from_saved_tables(tmp_path):
    folder = tmp_path / "minatar_si"
    folder.mkdir()
    (folder / "MinAtar_SpaceInvaders-v1.csv").write_text(
        "env_id,algo,seeds,final_mean,final_std,best_mean,frames_to_threshold,seeds_reached,frames_per_second\n"
        f"{INVADERS},q1,1,46.2,0.0,92.2,312377.0,1,2453.3\n")
    assert minatar_summary.main(["--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "| q1 | minatar_si | 1 | 46.2 ± 0.0 | 92.2 | 0.31M (1 of 1) | 2,453 | yes |" in text
    assert (tmp_path / "out" / "summary.png").stat().st_size > 1000
    assert minatar_summary.main(["--results", str(tmp_path / "empty"), "--out", str(tmp_path / "o2")]) == 2
    (tmp_path / "a-file").write_text("")
    assert minatar_summary.main(["--results", str(tmp_path), "--out", str(tmp_path / "a-file")]) == 2
