"""dp_train as a tool people trust with their compute (issue 18).

Budgets and safe stops (a real SIGTERM to a real subprocess), resume on the same LR schedule,
checkpoint pruning, validation messages, one-line user errors, the --help key table and the YAMLs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import yaml

from dp_policy.core import Policy
from dp_policy.core.dataset import save_zarr
from dp_policy.core.synthetic import make_reach_dataset
from dp_policy.core.train_config import TrainConfig, parse_duration
from dp_policy.core.train_data import split_with_minimum
from dp_policy.core.train_run import BudgetPlanner, plan_horizon, plan_schedule, prune_checkpoints
from dp_policy.core.train_state import CosineWithWarmup
from dp_policy.train import build_config, config_keys

PKG = Path(__file__).resolve().parents[1]
TINY = [
    "batch_size=16", "num_threads=1", "progress=false", "lr_warmup_steps=2",
    "policy.down_dims=[16,32]", "policy.diffusion_step_embed_dim=16", "policy.n_groups=4",
    "policy.encoder.out_dim=16", "policy.encoder.state_mlp_dims=[16]",
]  # fmt: skip


def _write_dataset(path: Path, n_episodes: int = 6, n_steps: int = 18) -> Path:
    data = make_reach_dataset(n_episodes=n_episodes, n_steps=n_steps, num_points=32, seed=0)
    eps, start = [], 0
    for end in data["episode_ends"]:
        sl = slice(start, int(end))
        eps.append(
            {
                "point_cloud": data["point_cloud"][sl],
                "state": data["agent_pos"][sl],
                "action": data["action"][sl],
            }
        )
        start = int(end)
    save_zarr(path, eps)
    return path


@pytest.fixture(scope="module")
def zarr_path(tmp_path_factory) -> Path:
    return _write_dataset(tmp_path_factory.mktemp("data") / "d.zarr")


def _state(run: Path) -> dict:
    return json.loads((run / "train_state" / "state.json").read_text())


def _saved_schedule(meta: dict) -> CosineWithWarmup:
    """The LR factor a saved train state continues with (warm-up 2 in these runs)."""
    lam = CosineWithWarmup(2, meta["horizon"])
    lam.anchor_step, lam.anchor_progress = meta["schedule_anchor"]
    return lam


# ---------------------------------------------------------------- pure parts


def test_parse_duration_and_budget_rule():
    assert parse_duration("30m") == 1800 and parse_duration("1h") == 3600 and parse_duration(90) == 90
    assert parse_duration("1h30m") == 5400 and parse_duration("45s") == 45 and parse_duration("") == 0
    for bad in ("soon", "-5", "1d"):
        with pytest.raises(ValueError, match="max_train_time"):
            parse_duration(bad)
    # 0.5 s/step, 100 s left at step 10: 0.97 * 100 / 0.5 = 194 more steps, unless the caps say less
    assert plan_horizon(10, 0.5, 100.0, 10_000) == 204
    assert plan_horizon(10, 0.5, 100.0, 50) == 50
    assert plan_horizon(10, 0.5, 0.0, 10_000) == 11
    sched = CosineWithWarmup(10, 110)
    assert sched(5) == 0.5 and sched(10) == 1.0 and abs(sched(60) - 0.5) < 1e-9 and sched(110) == 0.0


def _simulate_budget(budget: float, step_time, replan: bool) -> tuple[CosineWithWarmup, int, list[float]]:
    """A run under ``budget`` seconds whose step takes ``step_time(wall)`` s: the planner as train uses it."""
    lam = CosineWithWarmup(10, 10**6)
    sched = types.SimpleNamespace(lr_lambdas=[lam])
    planner = BudgetPlanner(budget, 0.0, 0)
    wall, step, lrs = 0.0, 0, []
    while wall < budget and step < lam.total:
        wall += step_time(wall)
        step += 1
        if planner.due(wall, step) and (replan or planner.last_plan is None):
            plan_schedule(sched, step, planner.seconds_per_step(wall, step), budget - wall, 10**6, 10, None,
                          first=planner.last_plan is None)  # fmt: skip
            planner.planned(wall, step)
        lrs.append(lam(step))
    return lam, step, lrs


def test_budget_replans_when_the_load_changes():
    # the machine gets twice as busy at 40% of a 1000 s budget (another job starts)
    def slower(wall):
        return 0.1 if wall < 400 else 0.2

    once, steps, _ = _simulate_budget(1000.0, slower, replan=False)
    assert once.progress(steps) < 0.8  # planned once at 5%: the budget cuts the cosine at ~72%
    lam, steps, lrs = _simulate_budget(1000.0, slower, replan=True)
    assert lam.progress(steps) > 0.97 and lrs[-1] < 0.01  # re-planned: annealed by the budget's end
    post = lrs[20:]  # after the warm-up
    # the LR bends, it never jumps
    assert max(abs(a - b) for a, b in zip(post, post[1:], strict=False)) < 1e-3
    # ... and when it gets freer, the schedule stretches instead of ending early
    lam, steps, lrs = _simulate_budget(1000.0, lambda w: 0.2 if w < 400 else 0.1, replan=True)
    assert lam.progress(steps) > 0.97 and steps > 0.95 * (400 / 0.2 + 600 / 0.1)
    # retarget keeps the value at the step and ends the cosine at the new horizon
    sched = CosineWithWarmup(10, 110)
    before = sched(60)
    sched.retarget(60, 210)
    assert abs(sched(60) - before) < 1e-12 and sched(210) == 0.0 and 0 < sched(150) < before


def test_split_holds_out_one_episode_unless_off():
    train, val = split_with_minimum(10, 0.02, seed=0)  # round(0.2) = 0 -> at least one
    assert len(val) == 1 and len(train) == 9 and not set(train) & set(val)
    train, val = split_with_minimum(10, 0.0, seed=0)
    assert len(val) == 0 and len(train) == 10
    train, val = split_with_minimum(1, 0.5, seed=0)  # the only episode trains
    assert len(val) == 0 and len(train) == 1


def test_prune_keeps_newest(tmp_path):
    for e in (1, 2, 3, 10):
        (tmp_path / f"epoch_{e:04d}").mkdir()
    (tmp_path / "notes").mkdir()
    gone = prune_checkpoints(tmp_path, 2)
    assert sorted(p.name for p in gone) == ["epoch_0001", "epoch_0002"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0003", "epoch_0010", "notes"]
    assert prune_checkpoints(tmp_path, 0) == []


# ---------------------------------------------------------------- --help and YAMLs


def test_help_lists_every_key_with_type_default_and_meaning():
    env = {"PYTHONPATH": str(PKG), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, "-m", "dp_policy.train", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    keys = config_keys()
    for key, typ, _default, text in keys:
        assert text, f"{key} has no help text in its dataclass field metadata"
        assert f"  {key} ({typ}, default " in r.stdout, key
    names = {k for k, *_ in keys}
    assert {"max_train_time", "max_train_steps", "num_threads", "keep_last", "policy.encoder.type"} <= names
    assert {f.name for f in dataclasses.fields(TrainConfig)} - {"policy"} <= names


def _flatten(node: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in node.items():
        key = prefix + k
        if key in ("policy", "policy.encoder") and isinstance(v, dict):
            out |= _flatten(v, key + ".")
        else:
            out.add(key)
    return out


# Every training YAML users start from: dp_policy's presets and the simulator's task configs.
TRAIN_YAMLS = sorted(
    [*(PKG / "config").glob("train_*.yaml"), *(PKG.parent / "dp_sim" / "config").glob("train_*.yaml")]
)


@pytest.mark.parametrize("path", TRAIN_YAMLS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_yaml_lists_every_key(path):
    name = path.name
    listed = _flatten(yaml.safe_load(path.read_text()))
    expected = {k for k, *_ in config_keys()}
    assert sorted(expected - listed) == [], f"{name} misses keys"
    assert sorted(listed - expected) == [], f"{name} has keys the dataclasses do not know"
    # every value has its field's type (YAML reads 1e-8 as a string, 1.0e-8 as a float)
    raw = yaml.safe_load(path.read_text())
    for key, _typ, default, _help in config_keys():
        node = raw
        for part in key.split("."):
            node = node[part]
        if isinstance(default, bool) or isinstance(default, list | dict):
            assert isinstance(node, type(default)), (key, node)
        elif isinstance(default, float):
            assert isinstance(node, int | float) and not isinstance(node, bool), (key, node)
        elif isinstance(default, int):
            assert isinstance(node, int) and not isinstance(node, bool), (key, node)
    cfg = build_config(str(path), ["dataset=d.zarr"])
    dim = len(raw["policy"]["joint_names"]) or 7
    assert cfg.policy_config(state_dim=dim, action_dim=dim).name == raw["policy"]["preset"]


# ---------------------------------------------------------------- user errors: one line, exit 2


def _one_line_error(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("dp_train:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "; " in lines[0], lines[0]  # "<problem>; <fix>"
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_error_missing_dataset(tmp_path, dp_train_cli):
    r = dp_train_cli(
        "train_simple_dp3.yaml",
        [f"dataset={tmp_path / 'nonexistent.zarr'}", f"output_dir={tmp_path / 'run'}", *TINY],
        timeout=120,
    )
    _one_line_error(r, "does not exist", "pass dataset=")


def test_error_malformed_dataset(tmp_path, dp_train_cli):
    bad = tmp_path / "bad.zarr"
    (bad / "data").mkdir(parents=True)
    (bad / "readme.txt").write_text("not a zarr store")
    r = dp_train_cli(
        "train_simple_dp3.yaml", [f"dataset={bad}", f"output_dir={tmp_path / 'run'}", *TINY], timeout=120
    )
    _one_line_error(r, "not a readable DP3 zarr store", "meta/episode_ends")


def test_error_wrong_shapes(tmp_path, zarr_path, dp_train_cli):
    # three action columns in the data, two joint names in the config
    r = dp_train_cli(
        "train_simple_dp3.yaml",
        [f"dataset={zarr_path}", f"output_dir={tmp_path / 'run'}", *TINY, "policy.joint_names=[a,b]"],
        timeout=120,
    )
    _one_line_error(r, "joint_names", "policy.")
    # a point-cloud encoder on a dataset without point clouds
    r = dp_train_cli(
        "train_simple_dp3.yaml",
        [f"dataset={zarr_path}", f"output_dir={tmp_path / 'run'}", *TINY, "policy.encoder.type=image"],
        timeout=120,
    )
    _one_line_error(r, "has no", "encoder.type")


def test_error_unknown_keys_and_bad_values(tmp_path, zarr_path, dp_train_cli):
    base = [f"dataset={zarr_path}", f"output_dir={tmp_path / 'run'}", *TINY]
    _one_line_error(
        dp_train_cli("train_simple_dp3.yaml", [*base, "bogus_key=1"], timeout=60), "bogus_key", "--help"
    )
    _one_line_error(
        dp_train_cli("train_simple_dp3.yaml", [*base, "policy.horizn=8"], timeout=60), "policy.horizn"
    )
    _one_line_error(
        dp_train_cli("train_simple_dp3.yaml", [*base, "policy.encoder.outdim=8"], timeout=60),
        "policy.encoder.outdim",
    )
    _one_line_error(dp_train_cli("train_simple_dp3.yaml", [*base, "max_train_time=soon"], timeout=60), "30m")
    _one_line_error(
        dp_train_cli("train_simple_dp3.yaml", [*base, "batch_size=abc"], timeout=60), "batch_size must be int"
    )
    _one_line_error(
        dp_train_cli("train_simple_dp3.yaml", [*base, "policy.down_dims=64"], timeout=60), "list[int]"
    )


def test_error_incompatible_checkpoint_on_resume(tmp_path, zarr_path, dp_train_cli):
    run = tmp_path / "run"
    base = [f"dataset={zarr_path}", f"output_dir={run}", "num_epochs=1", "val_ratio=0", *TINY]
    r = dp_train_cli("train_simple_dp3.yaml", base)
    assert r.returncode == 0, r.stderr[-2000:]
    r = dp_train_cli("train_simple_dp3.yaml", [*base, "policy.down_dims=[32,64]"], timeout=120)
    _one_line_error(r, "different policy config", "down_dims", "resume=false")


# ---------------------------------------------------------------- a real SIGTERM, then resume


def _lr_at(history: Path, step: int) -> float | None:
    for line in history.read_text().splitlines():
        rec = json.loads(line)
        if rec["step"] == step:
            return rec["lr"]
    return None


def test_sigterm_saves_and_resume_continues_the_same_schedule(tmp_path, zarr_path):
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "dp_policy.train",
        "--config",
        str(PKG / "config" / "train_simple_dp3.yaml"),
        f"dataset={zarr_path}",
        f"output_dir={run}",
        "num_epochs=100000",
        "max_train_time=60s",
        "val_ratio=0.2",
        "checkpoint_every=1000",
        "log_every_s=0",
        *TINY,
    ]
    env = {"PYTHONPATH": str(PKG), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    history = run / "history.jsonl"
    deadline = time.monotonic() + 180
    # wait until it has planned the schedule for the budget (at 5% of it, 3 s) and trained past that
    t_first = None
    while time.monotonic() < deadline and proc.poll() is None:
        if t_first is None and history.exists() and history.read_text().strip():
            t_first = time.monotonic()
        if t_first is not None and time.monotonic() - t_first > 6.0:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "stopped by SIGTERM" in out and "step " in out and "lr " in out and "run folder" in out, out
    assert "budget: " in err and "s/step measured" in err, err[-2000:]
    meta = _state(run)
    step, horizon = meta["step"], meta["horizon"]
    assert meta["horizon_planned"] and step < horizon < 100000
    ckpt = json.loads((run / "latest" / "config.json").read_text())["extra"]
    assert ckpt["step"] == step
    Policy.from_checkpoint(run / "latest", warmup=False)  # the checkpoint loads
    # the LR at the saved step, from the saved schedule (horizon and the anchor of its last re-plan)
    lr_saved = 1e-4 * _saved_schedule(meta)(step)
    assert math.isclose(meta["sched"]["_last_lr"][0], lr_saved, rel_tol=1e-6)

    # resume for a short while: training goes on from the saved step and LR; the budget left is
    # re-planned (the cosine bends, it does not restart)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    n0 = len(history.read_text().splitlines())
    deadline = time.monotonic() + 180
    while (
        time.monotonic() < deadline and proc.poll() is None and len(history.read_text().splitlines()) < n0 + 2
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert f"at epoch {meta['epoch']} step {step} (lr {lr_saved:.2e})" in err, err[-3000:]
    meta2 = _state(run)
    assert meta2["step"] > step and meta2["horizon"] > step
    assert math.isclose(
        meta2["sched"]["_last_lr"][0], 1e-4 * _saved_schedule(meta2)(meta2["step"]), rel_tol=1e-6
    )
    rows = [json.loads(ln) for ln in history.read_text().splitlines()][n0:]
    assert rows and rows[0]["step"] > step
    lrs = [lr_saved] + [rec["lr"] for rec in rows]  # after the resume the cosine goes on decaying
    assert all(b <= a * (1 + 1e-6) for a, b in zip(lrs, lrs[1:], strict=False)), lrs

    # a larger horizon on resume is explicit and warned
    r = subprocess.run(
        [*args, "max_train_time=", "max_train_steps=" + str(meta2["step"] + 3), "reschedule=true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "reschedule=true: the LR schedule horizon changes" in r.stderr
    assert _state(run)["horizon"] == meta2["step"] + 3 and _state(run)["step"] == meta2["step"] + 3


def test_budget_end_checkpoints_prunes_and_logs_plainly(tmp_path, zarr_path, dp_train_cli):
    run = tmp_path / "run"
    r = dp_train_cli(
        "train_simple_dp3.yaml",
        [
            f"dataset={zarr_path}",
            f"output_dir={run}",
            "num_epochs=100000",
            "max_train_time=6s",
            "checkpoint_every=2",
            "keep_last=2",
            "val_ratio=0.2",
            "log_every_s=0",
            *TINY,
        ],
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "time budget reached" in r.stdout or "finished" in r.stdout, r.stdout
    assert "validation: 1 held-out episode(s) of 6" in r.stderr
    plain = [ln for ln in r.stderr.splitlines() if " epoch " in ln and "/100000 step " in ln]
    assert plain and all(" loss " in ln and " lr " in ln and " eta " in ln for ln in plain)
    assert "\r" not in r.stderr and all("nan" not in ln for ln in plain)
    done = [json.loads(ln)["epoch"] for ln in (run / "history.jsonl").read_text().splitlines()]
    saved = [e for e in done if e % 2 == 0 or e == done[-1]]  # checkpoint_every=2, and the last epoch
    assert len(saved) >= 3, "too few checkpoints to see pruning"
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept == [f"epoch_{e:04d}" for e in saved[-2:]], (kept, saved)  # keep_last=2: the newest two
    for name in ("latest", "best"):
        Policy.from_checkpoint(run / name, warmup=False)
    best = json.loads((run / "best" / "config.json").read_text())["extra"]
    vals = [json.loads(ln).get("val_loss") for ln in (run / "history.jsonl").read_text().splitlines()]
    assert math.isclose(best["val_loss"], min(v for v in vals if v is not None), rel_tol=1e-9)
    assert (run / "loss_curve.png").stat().st_size > 1000
    assert "run folder" in r.stdout and " MB" in r.stdout


def test_validation_off_is_said_and_never_nan(tmp_path, zarr_path, dp_train_cli):
    run = tmp_path / "run"
    r = dp_train_cli(
        "train_simple_dp3.yaml",
        [f"dataset={zarr_path}", f"output_dir={run}", "num_epochs=2", "val_ratio=0", "log_every_s=0", *TINY],
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "validation off (val_ratio: 0)" in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "training: epoch " in ln]
    assert len(lines) == 2 and all(" val " not in ln and "nan" not in ln for ln in lines), lines
    assert not (run / "best").exists()
    assert all("val_loss" not in json.loads(ln) for ln in (run / "history.jsonl").read_text().splitlines())


def test_closed_loop_eval_hook_logs_success_beside_the_loss(tmp_path, zarr_path, dp_train_cli):
    """eval_every / eval_command: a real subprocess gets {checkpoint} and {out}; success_rate is logged."""
    fake = tmp_path / "fake_eval.py"
    fake.write_text(
        "import json, sys, pathlib\n"
        "a = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
        "step = json.loads((pathlib.Path(a['--checkpoint']) / 'config.json').read_text())['extra']['step']\n"
        "out = pathlib.Path(a['--out']); out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'summary.json').write_text(json.dumps({'success_rate': 0.25, 'step': step}))\n"
    )
    run = tmp_path / "run"
    r = dp_train_cli(
        "train_simple_dp3.yaml",
        [f"dataset={zarr_path}", f"output_dir={run}", "num_epochs=4", "checkpoint_every=1", "eval_every=2",
         f"eval_command={sys.executable} {fake} --checkpoint {{checkpoint}} --out {{out}}", "log_every_s=0",
         *TINY],
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(ln) for ln in (run / "history.jsonl").read_text().splitlines()]
    assert [rec.get("success_rate") for rec in rows] == [None, 0.25, None, 0.25]
    # the evaluation saw the checkpoint of its own epoch
    assert json.loads((run / "eval" / "epoch_0004" / "summary.json").read_text())["step"] == rows[3]["step"]
    assert any("success 25%" in ln for ln in r.stderr.splitlines())
