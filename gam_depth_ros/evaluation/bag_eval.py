"""``gam-depth-bag-eval``: accuracy and latency of a model on a rosbag, offline or through the node.

    gam-depth-bag-eval --bag BAG --image-topic /camera/image_raw --camera-info-topic /camera/camera_info \\
        --depth-topic /camera/depth/image_raw --model model.onnx [--mode offline|live] [--rate 1.0] \\
        [--label-topic /camera/labels [--label-format zero-based|nyu40]] [--record OUT_BAG] [--output DIR]

``offline`` runs the inference backend on every image; ``live`` starts ``depth_node`` and replays the
bag to it over DDS (latency, throughput, dropped frames). Ground truth comes from an RGB-D depth
topic (16UC1 mm or 32FC1 m) matched by nearest stamp within ``--depth-max-dt``. Writes
``report.json``, ``report.md`` and PNG figures to ``--output`` (see :mod:`.report`); exits 0 with a
complete report, 3 with an incomplete one (truncated bag: what was read is scored and the report
says so), 2 on a usage or input error (missing topic: the message lists the bag's topics).
Ground-truth labels are read in ``--label-format`` (``zero-based``: the model's ids, 255 void;
``nyu40``: 0 = unlabeled, 1 = wall ... 40 = other prop) and converted to the model's ids; when
they score far better with the ids shifted by one, a warning says the convention looks wrong.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
from collections import Counter
from pathlib import Path

from gam_depth_ros.evaluation.bag_reader import BagError, read_bag, topic_messages
from gam_depth_ros.evaluation.offline import run_offline
from gam_depth_ros.evaluation.recorder import output_messages, write_recording
from gam_depth_ros.evaluation.report import latency_stats, write_figures, write_report
from gam_depth_ros.evaluation.scoring import Scorer
from gam_depth_ros.floor_scale import FloorScaleConfig, rejection_kind
from gam_depth_ros.labels import LABEL_FORMATS, ZERO_BASED, offset_warning, to_zero_based

LOG = logging.getLogger("gam_depth_ros.bag_eval")
MONTAGE_ROWS = 4


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gam-depth-bag-eval", description=__doc__.splitlines()[0])
    parser.add_argument("--bag", required=True, type=Path, help="rosbag2 folder (sqlite3 or mcap)")
    parser.add_argument("--image-topic", required=True, help="sensor_msgs/Image or CompressedImage")
    parser.add_argument("--camera-info-topic", default="", help="CameraInfo (replayed in live mode)")
    parser.add_argument("--depth-topic", default="", help="ground-truth depth: 16UC1 mm or 32FC1 m")
    parser.add_argument("--label-topic", default="", help="ground-truth labels: mono8 class ids")
    parser.add_argument("--label-format", choices=LABEL_FORMATS, default=ZERO_BASED,
                        help="id convention of --label-topic: zero-based (0 = wall ... 39, 255 void; the model's) "
                             "or nyu40 (0 = unlabeled, 1 = wall ... 40 = other prop)")
    parser.add_argument("--model", required=True, type=Path, help=".onnx (metadata beside it) or checkpoint")
    parser.add_argument("--backend", default="auto", help="offline backend: auto | onnxruntime | torch | tensorrt")
    parser.add_argument("--mode", choices=("offline", "live"), default="offline")
    parser.add_argument("--rate", type=float, default=1.0, help="live: replay speed (x recorded rate)")
    parser.add_argument("--params-file", type=Path, help="live: the node's parameter file (default: its defaults)")
    parser.add_argument("--depth-scale", type=float, default=0.0, help="metres per network unit (0: metadata)")
    parser.add_argument("--scale-mode", choices=("fixed", "floor"), default="fixed",
                        help="floor: metric scale estimated per frame from the floor and --camera-height")
    parser.add_argument("--camera-height", type=float, default=0.0, help="floor mode: camera height above floor (m)")
    parser.add_argument("--camera-pitch-deg", type=float, default=0.0, help="floor mode: downward camera pitch (deg)")
    parser.add_argument("--depth-max-dt", type=float, default=0.02, help="ground-truth stamp tolerance (s)")
    parser.add_argument("--max-frames", type=int, default=0, help="first N images only (0: all)")
    parser.add_argument("--min-depth", type=float, default=0.1, help="ground truth below this is ignored (m)")
    parser.add_argument("--max-depth", type=float, default=10.0, help="ground truth above this is ignored (m)")
    parser.add_argument("--threads", type=int, default=0, help="offline backend CPU threads (0: default)")
    parser.add_argument("--record", type=Path, help="write inputs and outputs to this rosbag2 folder")
    parser.add_argument("--output", type=Path, default=Path("bag_eval"), help="report folder")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be positive")
    if args.scale_mode == "floor" and (args.camera_height <= 0 or not args.camera_info_topic):
        parser.error("--scale-mode floor needs --camera-height > 0 and --camera-info-topic")
    if args.record and args.record.exists():
        parser.error(f"--record {args.record} exists; choose a new folder")
    return args


def evaluate(args: argparse.Namespace) -> dict:
    """Run the evaluation described by ``args`` and write the report; returns the report dict."""
    from gam_depth_ros.inference import create_backend

    bag = read_bag(args.bag, args.image_topic, args.camera_info_topic, args.depth_topic, args.label_topic,
                   args.depth_max_dt, args.max_frames)
    if not bag.frames:
        why = "; ".join(filter(None, [bag.reason, bag.skipped[0] if bag.skipped else ""]))
        raise BagError(f"{args.bag}: no image could be read from {args.image_topic}" + (f" ({why})" if why else ""))
    backend = create_backend(args.backend, args.model, threads=args.threads)
    depth_scale = args.depth_scale or backend.metadata.depth_scale
    timing: dict = {}
    recorded: list = []
    latency: list[float] = []
    scale_of = None
    if args.mode == "offline":
        scale_of = floor_scale_function(args, bag, depth_scale) if args.scale_mode == "floor" else None
        outputs, inference_ms = run_offline(bag.frames, backend, depth_scale, scale_of)
        timing["inference_ms"] = inference_ms
        if args.record:
            recorded = output_messages(outputs, _frame_id(bag))
    else:
        from gam_depth_ros.evaluation.live import run_live

        overrides = {"depth_scale": float(depth_scale)} if args.depth_scale else {}
        if args.scale_mode == "floor":
            overrides |= {"scale_mode": "floor", "camera_height": args.camera_height,
                          "camera_pitch_deg": args.camera_pitch_deg, "publish_without_scale": False}
        live = run_live(bag, args.model, depth_scale, args.rate, args.params_file, overrides, bool(args.record))
        outputs, recorded, latency = live.outputs, live.recorded, live.latency_ms
        if not live.complete:
            bag.complete, bag.reason = False, "; ".join(filter(None, [bag.reason, live.reason]))
        timing = {"sent": live.sent, "processed": live.processed, "dropped": live.dropped,
                  "frames_in_bag": len(bag.frames),
                  "throughput_fps": live.processed / live.duration_s if live.duration_s else 0.0,
                  "latency_ms": latency_stats(live.latency_ms)}
    frames = {f.stamp_ns: f for f in bag.frames}
    scorer = Scorer(args.min_depth, args.max_depth, backend.metadata.num_classes)
    per_frame, scored = [], []
    for output in outputs:
        frame = frames[output.stamp_ns]
        gt_labels = None if frame.labels is None else to_zero_based(frame.labels, args.label_format)
        score = scorer.add(output.stamp_ns, output.depth_m, output.scale, frame.depth_m, output.labels, gt_labels)
        per_frame.append({"stamp_ns": output.stamp_ns, "scale": output.scale, "latency_ms": output.latency_ms,
                          "abs_rel_median": score.median["abs_rel"] if score.median else None,
                          "median_factor": score.median["scale"] if score.median else None,
                          "abs_rel_metric": score.metric["abs_rel"] if score.metric else None})
        if score.median is not None:  # median-scaled prediction for the figures
            scored.append((frame.rgb, output.depth_m * score.median["scale"], frame.depth_m))
    samples = scored[:: max(1, len(scored) // MONTAGE_ROWS)][:MONTAGE_ROWS]
    pairs = [(scaled, gt) for _, scaled, gt in scored]
    args.output.mkdir(parents=True, exist_ok=True)
    report = {
        "bag": str(args.bag), "model": str(args.model), "mode": args.mode, "complete": bag.complete,
        "incomplete_reason": bag.reason, "frames": len(bag.frames), "skipped_messages": bag.skipped,
        "summary": scorer.summary(), "timing": timing, "per_frame": per_frame,
        "floor_rejections": dict(scale_of.rejections.most_common()) if scale_of is not None else {},
        "figures": write_figures(args.output, samples, pairs, latency),
        "recorded_bag": None,
        "label_format": args.label_format if args.label_topic else None,
    }
    summary = report["summary"]
    if "label_offset_check" in summary:
        check = {int(shift): miou for shift, miou in summary["label_offset_check"].items()}
        report["label_warning"] = offset_warning(check, args.label_format)
    if args.record:
        truth = topic_messages(args.bag, {t for t in (args.depth_topic, args.label_topic) if t})
        report["recorded_bag"] = str(write_recording(args.record, bag, args.image_topic, args.camera_info_topic,
                                                     recorded, truth))
    write_report(args.output, report)
    return report


class FloorScaleOfFrames:
    """``(frame, depth, labels) -> metres per unit`` from the floor (NaN until a scale exists), as the node does.

    ``rejections`` counts why frames gave no floor measurement (numbers in the reasons replaced by N).
    """

    def __init__(self, args: argparse.Namespace, bag, depth_scale: float) -> None:
        from gam_depth_ros.camera_model import camera_model_from_msg
        from gam_depth_ros.depth_scaling import DepthScaler

        if bag.camera_info is None:
            raise BagError(f"{args.bag}: --scale-mode floor needs camera_info, none on {args.camera_info_topic}")
        self.camera = camera_model_from_msg(bag.camera_info).rectified()  # as the node uses it
        self.scaler = DepthScaler("floor", depth_scale, FloorScaleConfig(camera_height=args.camera_height,
                                                                         camera_pitch_deg=args.camera_pitch_deg))
        self.start_ns = bag.frames[0].stamp_ns
        self.rejections: Counter[str] = Counter()

    def __call__(self, frame, depth, labels) -> float:
        height, width = depth.shape
        decision = self.scaler.decide(depth, labels, self.camera.scaled_to(width, height).K,
                                      (frame.stamp_ns - self.start_ns) / 1e9)
        if decision.reason:
            self.rejections[rejection_kind(decision.reason)] += 1
        return math.nan if decision.relative else decision.scale


def floor_scale_function(args: argparse.Namespace, bag, depth_scale: float) -> FloorScaleOfFrames:
    """The per-frame floor scale of ``--scale-mode floor`` (see :class:`FloorScaleOfFrames`)."""
    return FloorScaleOfFrames(args, bag, depth_scale)


def _frame_id(bag) -> str:
    info = bag.camera_info
    return str(info.header.frame_id) if info is not None else "camera"


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: the live node is stopped


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        report = evaluate(args)
    except BagError as error:
        LOG.error("error: %s", error)
        return 2
    summary = report["summary"]
    median = summary.get("median", {})
    if report["skipped_messages"]:  # e.g. ground truth in an unsupported encoding: say so, not only in the report
        LOG.warning("warning: %d messages could not be decoded and were skipped, the first: %s",
                    len(report["skipped_messages"]), report["skipped_messages"][0])
    if report.get("label_warning"):
        LOG.warning("warning: %s", report["label_warning"])
    if args.scale_mode == "floor" and summary.get("frames_without_scale"):
        reasons = report.get("floor_rejections", {})
        LOG.warning("warning: %d of %d frames had no metric scale from the floor (no depth published for them)%s",
                    summary["frames_without_scale"], report["frames"],
                    f"; most frequent reason: {next(iter(reasons))}" if reasons else "")
    no_scale_at_all = summary.get("frames_without_scale") == report["frames"]  # then there was nothing to score
    if args.depth_topic and not summary.get("scored_frames") and not no_scale_at_all:
        LOG.warning("warning: no frame was scored: no usable ground truth on %s within %.3f s of an image",
                    args.depth_topic, args.depth_max_dt)
    LOG.info("%s: %d frames, %d scored; AbsRel %.4f (median-scaled), %s; report: %s",
             args.bag, report["frames"], summary.get("scored_frames", 0), median.get("abs_rel", float("nan")),
             "complete" if report["complete"] else f"INCOMPLETE ({report['incomplete_reason']})",
             args.output / "report.md")
    return 0 if report["complete"] else 3


if __name__ == "__main__":
    sys.exit(main())
