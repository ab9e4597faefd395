"""dp_sim.compare: checkpoint records and the comparison table (the closed loop itself is tested in
test_sim_closed_loop.py)."""

from __future__ import annotations

import pathlib

from dp_sim.compare import checkpoint_info, main, table

REPO = pathlib.Path(__file__).resolve().parents[4]


def test_checkpoint_info_reads_training_record_and_counts_parameters():
    info = checkpoint_info(REPO / "checkpoints" / "sim_reach_dp3")
    assert info["encoder"] == "dp3_pointnet" and info["objective"] == "diffusion"
    assert info["train_steps"] == 3120 and info["train_wall_s"] == 1800.0
    # the EMA weights: DP3 encoder + a small simple U-Net (a few million parameters)
    assert 1_000_000 < info["parameters"] < 20_000_000


def test_table_has_one_row_per_policy_with_every_figure():
    rows = [
        {"checkpoint": "a", "encoder": "dp3_pointnet", "episodes": 20, "successes": 19, "success_rate": 0.95,
         "mean_time_to_success_s": 2.25, "train_wall_s": 1800.0, "train_steps": 3120,
         "inference_p50_ms": "51.2", "inference_p99_ms": "160.0", "stamp_to_publish_p50_ms": "20",
         "stamp_to_publish_p99_ms": "80", "objective": "diffusion", "between_trays_fraction": 0.1},
        {"checkpoint": "b", "encoder": "image", "episodes": 20, "successes": 3, "success_rate": 0.15,
         "mean_time_to_success_s": None, "train_wall_s": None, "train_steps": None,
         "inference_p50_ms": None, "inference_p99_ms": None, "stamp_to_publish_p50_ms": None,
         "stamp_to_publish_p99_ms": None},
    ]  # fmt: skip
    lines = table(rows).strip().splitlines()
    assert len(lines) == 4
    assert (
        "| a | dp3_pointnet | diffusion | 19/20 (95%) | 2.25 s | 10% | 30 min, 3120 steps | 51 / 160 ms | "
        "20 / 80 ms |" in lines
    )
    assert lines[3].startswith("| b | image | n/a | 3/20 (15%) | n/a | n/a | n/a |")


def test_baselines_oracle_and_blind_in_the_table(tmp_path):
    """The oracle needs no checkpoint; a points-free (lowdim) checkpoint is labelled blind."""
    info = checkpoint_info(pathlib.Path("oracle"))
    assert info["encoder"] == "true poses" and info["parameters"] is None
    import json

    blind = tmp_path / "blind"
    blind.mkdir()
    (blind / "config.json").write_text(
        json.dumps(
            {"policy": {"name": "simple_dp3", "encoder": {"type": "lowdim"}, "objective": "regression"}}
        )
    )
    info = checkpoint_info(blind)
    assert info["encoder"] == "lowdim (blind)" and info["objective"] == "regression"


def test_missing_checkpoint_is_an_error(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_compare_runs_the_oracle_beside_checkpoints_in_one_table(tmp_path, monkeypatch, capsys):
    """--oracle adds a run with --checkpoint oracle; its summary lands in the same table (the closed
    loop itself is replaced here by a stub that writes the summary it would write)."""
    import json

    import dp_sim.compare as compare

    calls = []

    def fake_closed_loop(cmd):
        calls.append(cmd)
        out = pathlib.Path(cmd[cmd.index("--out") + 1])
        out.mkdir(parents=True)
        oracle = cmd[cmd.index("--checkpoint") + 1] == "oracle"
        summary = {"episodes": 2, "successes": 2 if oracle else 1, "success_rate": 1.0 if oracle else 0.5,
                   "mean_time_to_success_s": 6.5, "between_trays_fraction": 0.0 if oracle else 0.5,
                   "seeds": [10000, 10001], "diagnostics": {}}  # fmt: skip
        (out / "summary.json").write_text(json.dumps(summary))
        return 0

    monkeypatch.setattr(compare.subprocess, "call", fake_closed_loop)
    ckpt = REPO / "checkpoints" / "sim_reach_dp3"
    rc = main(["--checkpoint", str(ckpt), "--oracle", "--episodes", "2", "--out", str(tmp_path / "o"),
               "--", "--task", "place_bimodal"])  # fmt: skip
    assert rc == 0
    assert [c[c.index("--checkpoint") + 1] for c in calls] == [str(ckpt), "oracle"]
    assert all(c[-2:] == ["--task", "place_bimodal"] for c in calls)
    md = (tmp_path / "o" / "compare.md").read_text().splitlines()
    assert md[2].startswith("| sim_reach_dp3 | dp3_pointnet | diffusion | 1/2 (50%) | 6.50 s | 50% |")
    assert md[3].startswith("| oracle | true poses | scripted expert | 2/2 (100%) | 6.50 s | 0% | n/a |")
