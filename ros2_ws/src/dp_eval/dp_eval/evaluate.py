"""dp_eval: evaluate policy checkpoints by replaying a recorded bag; writes a report.

Examples::

    dp_eval --bag demos/episode_bag --checkpoint ckpt/simple_dp3 --out eval/run1
    dp_eval --bag demos/episode_bag --checkpoint ckpt/a --checkpoint ckpt/b --out eval/ab --seed 3
    dp_eval --bag demos/episode_bag --checkpoint ckpt/a --out eval/rt --mode realtime --rate 1.0

Modes:
  stepped   (default) deterministic, as fast as possible: every recorded cloud goes through the
            perception core, and clouds + joint states drive policy_node's own tick
            (dp_policy.core.runner.PolicyRunner) on a simulated node clock, in bag order (same bag +
            checkpoint + seed -> identical chunks, the same policy_node makes on /clock). Image
            Diffusion Policy checkpoints replay the image topic (image_topic, default camera/image)
            the way policy_node converts it.
  realtime  plays the bag with /clock into the real perception_node and policy_node (separate
            processes, use_sim_time) and records their outputs; needs the built workspace.

Output (--out): summary.json, summary.md, error_vs_horizon.png, and per checkpoint chunks.npz,
episode_XXX.png plots and outputs/ (a bag with dp/points and dp/action_chunk).
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys

import yaml

from dp_eval.core.config import MODES, EvalConfig

PKG_DIR = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PKG_DIR / "config" / "eval.yaml"


def default_config_path() -> pathlib.Path | None:
    """config/eval.yaml of the source tree, else of the installed share directory."""
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    try:
        from ament_index_python.packages import get_package_share_directory

        p = pathlib.Path(get_package_share_directory("dp_eval")) / "config" / "eval.yaml"
        return p if p.is_file() else None
    except Exception:  # noqa: BLE001 - ament index missing or package not installed
        return None


def load_section(path, node: str) -> dict:
    """ros__parameters of `node` in a ROS parameter file, with list sentinels ([""], [0.0]) dropped."""
    if not path:
        return {}
    doc = yaml.safe_load(pathlib.Path(path).read_text()) or {}
    params = dict(((doc.get(node) or {}).get("ros__parameters")) or {})
    for k, v in list(params.items()):
        if isinstance(v, list) and len(v) == 1 and v[0] in ("", 0.0):
            params[k] = []
    return params


def parse_set(items) -> dict:
    """['key=value', ...] -> dict with YAML-typed values."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set expects key=value. Got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def build_config(config_path, overrides: dict) -> EvalConfig:
    """EvalConfig from the yaml's dp_eval section plus overrides."""
    params = load_section(config_path, "dp_eval")
    params.update(overrides)
    return EvalConfig.from_dict(params)


def unique_names(paths) -> list[str]:
    """Report labels: checkpoint directory names, suffixed when two are equal."""
    names = []
    for p in paths:
        base = pathlib.Path(p).resolve().name or "checkpoint"
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    ap = argparse.ArgumentParser(
        prog="dp_eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bag", required=True, help="input rosbag2 directory (sqlite3 or mcap)")
    ap.add_argument(
        "--checkpoint", required=True, action="append", help="checkpoint directory (repeat to compare)"
    )
    ap.add_argument("--out", required=True, help="output directory of the report")
    ap.add_argument("--mode", choices=MODES, default="stepped", help="stepped (default) | realtime")
    ap.add_argument("--seed", type=int, default=0, help="noise seed: chunk i uses seed + i (default 0)")
    ap.add_argument("--config", default=None, help="ROS params yaml with a dp_eval section")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="EvalConfig overrides")
    ap.add_argument(
        "--camera-to-target",
        default=None,
        help="'x y z qx qy qz qw': camera pose in the checkpoint's target frame (if not in the bag)",
    )
    ap.add_argument("--rate", type=float, default=1.0, help="realtime: bag seconds per wall second")
    ap.add_argument("--max-plot-episodes", type=int, default=6, help="episodes plotted per checkpoint")
    ap.add_argument("--no-output-bag", action="store_true", help="stepped: skip the outputs bag")
    ap.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


def run(args: argparse.Namespace) -> dict:
    """Runs the evaluation described by parsed CLI args; returns the summary."""
    from dp_common.bags import BagWriter
    from dp_eval.core.report import write_report
    from dp_eval.episodes import load_bag
    from dp_eval.stepped import frame_topic_of, is_image_checkpoint, run_stepped
    from dp_policy.core.threads import single_threaded_numpy_blas

    single_threaded_numpy_blas()  # numpy's spinning BLAS workers would contend with torch's
    overrides = parse_set(args.set)
    if args.camera_to_target:
        overrides["camera_to_target"] = [float(v) for v in args.camera_to_target.replace(",", " ").split()]
    cfg = build_config(args.config or default_config_path(), overrides)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bags: dict[str, object] = {}

    def bag_for(topic: str):
        """The bag read with `topic` (clouds, or images for image policies) as the frame stream."""
        if topic not in bags:
            bags[topic] = load_bag(
                args.bag,
                cloud_topic=topic,
                joint_topic=cfg.joint_topic,
                action_topic=cfg.action_topic,
                action_joint_names=cfg.action_joint_names,
                episode_topic=cfg.episode_topic,
                episode_key=cfg.episode_key,
                episode_gap_s=cfg.episode_gap_s,
            )
        return bags[topic]

    names = unique_names(args.checkpoint)
    runs = []
    bag = None  # the report's episodes and ground truth: those of the first checkpoint's stream
    for ckpt, name in zip(args.checkpoint, names, strict=True):
        ck_bag = bag_for(frame_topic_of(ckpt, cfg))
        if bag is None:
            bag = ck_bag
        elif len(ck_bag.episodes) != len(bag.episodes):
            raise ValueError(
                f"{ckpt}: its frame topic {ck_bag.cloud_topic!r} splits the bag into "
                f"{len(ck_bag.episodes)} episodes, {bag.cloud_topic!r} into {len(bag.episodes)}: "
                "evaluate these checkpoints separately (or record an episode topic)"
            )
        ck_dir = out / name
        ck_dir.mkdir(parents=True, exist_ok=True)
        if args.mode == "stepped":
            out_bag = None
            if not args.no_output_bag:
                bag_dir = ck_dir / "outputs"
                if bag_dir.exists():
                    import shutil

                    shutil.rmtree(bag_dir)
                out_bag = BagWriter(bag_dir, storage=cfg.output_storage).open()
            try:
                result = run_stepped(
                    args.bag, ck_bag, ckpt, cfg, seed=args.seed, out_bag=out_bag,
                    progress=not args.no_progress, name=name,
                )  # fmt: skip
            finally:
                if out_bag is not None:
                    out_bag.close()
            result.save_npz(ck_dir / "chunks.npz")
            runs.append(result.to_run())
        else:
            from dp_eval.realtime import run_realtime

            if is_image_checkpoint(ckpt):
                raise ValueError(
                    f"{ckpt} is an image policy: --mode realtime replays clouds through perception_node "
                    "only; evaluate image policies with --mode stepped (the default)"
                )
            runs.append(
                run_realtime(
                    args.bag,
                    ck_bag,
                    ckpt,
                    cfg,
                    out_dir=ck_dir,
                    seed=args.seed,
                    rate=args.rate,
                    name=name,
                    progress=not args.no_progress,
                )  # fmt: skip
            )
    return write_report(
        out, bag, args.bag, runs, args.mode, args.seed, cfg.steps,
        max_plot_episodes=args.max_plot_episodes, plot_chunks=cfg.plot_chunks,
    )  # fmt: skip


def main(argv=None) -> int:
    """Console script `dp_eval`."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        summary = run(args)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError) as exc:
        print(f"dp_eval: error: {exc}", file=sys.stderr)
        return 2
    from dp_eval.core.report import markdown_table

    print(markdown_table(summary))
    print(f"report: {pathlib.Path(args.out) / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
