"""The bag evaluation report: ``report.json`` (everything), ``report.md`` (for people), figures.

``report.json`` keys: ``bag``, ``model``, ``mode``, ``complete`` and ``incomplete_reason``,
``frames`` (images read), ``skipped_messages``, ``summary`` (:meth:`Scorer.summary`: mean metrics
with ``median`` scaling and ``metric`` as published, the scale statistics with their frame-to-frame
flicker, ``semantic``), ``timing`` (offline: ``inference_ms``; live: ``sent``, ``processed``,
``dropped``, ``throughput_fps``, ``latency_ms`` p50/p95/p99/mean/max), ``per_frame`` (stamp,
AbsRel both ways, scale, latency), ``figures`` and ``recorded_bag``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gam_depth_ros.evaluation.figures import bar_chart, error_by_distance, sample_montage


def latency_stats(latency_ms: list[float]) -> dict[str, float]:
    if not latency_ms:
        return {}
    values = np.asarray(latency_ms)
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "p99": float(np.percentile(values, 99)), "mean": float(values.mean()), "max": float(values.max())}


def write_figures(output: Path, samples: list, pairs: list, latency_ms: list[float]) -> list[str]:
    """montage.png, error_vs_distance.png and (live) latency_histogram.png; returns their names."""
    names = []
    if samples:
        sample_montage(samples, output / "montage.png")
        names.append("montage.png")
    labels, values = error_by_distance(pairs)
    if labels:
        bar_chart(labels, values, "Mean absolute relative error by ground-truth distance (median-scaled)",
                  "distance (m, bin start)", "AbsRel", output / "error_vs_distance.png")
        names.append("error_vs_distance.png")
    if latency_ms:
        counts, edges = np.histogram(latency_ms, bins=min(20, max(5, len(latency_ms) // 5)))
        bar_chart([f"{e:.0f}" for e in edges[:-1]], counts.astype(float).tolist(),
                  "End-to-end latency (publish -> depth received)", "latency (ms, bin start)", "frames",
                  output / "latency_histogram.png")
        names.append("latency_histogram.png")
    return names


def markdown(report: dict) -> str:
    """A short human-readable version of ``report``."""
    lines = [f"# Bag evaluation: {Path(report['bag']).name}", "",
             f"- model: `{report['model']}`", f"- mode: {report['mode']}", f"- frames read: {report['frames']}"]
    if not report["complete"]:
        lines.append(f"- **INCOMPLETE**: {report['incomplete_reason']}")
    summary = report["summary"]
    lines.append(f"- frames scored against ground truth: {summary.get('scored_frames', 0)}")
    timing = report.get("timing", {})
    if "latency_ms" in timing:
        lat = timing["latency_ms"]
        lines.append(f"- live: sent {timing['sent']}, processed {timing['processed']}, dropped {timing['dropped']}, "
                     f"{timing['throughput_fps']:.1f} frames/s; latency p50 {lat.get('p50', float('nan')):.1f} ms, "
                     f"p95 {lat.get('p95', float('nan')):.1f} ms, p99 {lat.get('p99', float('nan')):.1f} ms")
    elif "inference_ms" in timing:
        lines.append(f"- offline: {timing['inference_ms']:.1f} ms per frame in the backend")
    for protocol, title in (("median", "per-image median scaling"), ("metric", "metric, as published")):
        if protocol in summary:
            m = summary[protocol]
            lines += ["", f"## Depth, {title}", "", "| AbsRel | SqRel | RMSE | RMSE log | log10 | δ1 | δ2 | δ3 |",
                      "|---|---|---|---|---|---|---|---|",
                      "| " + " | ".join(f"{m[k]:.4f}" for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10",
                                                               "delta1", "delta2", "delta3")) + " |"]
    lines += _obstacle_lines(summary.get("obstacles", {}))
    scale = summary.get("scale", {})
    if scale.get("used"):
        used, implied = scale["used"], scale.get("median_scaling_factor", {})
        lines += ["", "## Scale (metres per network unit)", "",
                  f"- used: median {used['median']:.4g}, frame-to-frame std {used['frame_to_frame_std']:.4g} "
                  f"(of the log: {used['frame_to_frame_log_std']:.4g})",
                  f"- implied by per-image median scaling: median {implied.get('median', float('nan')):.4g}, "
                  f"frame-to-frame std {implied.get('frame_to_frame_std', float('nan')):.4g} "
                  f"(of the log: {implied.get('frame_to_frame_log_std', float('nan')):.4g})"]
    if summary.get("frames_without_scale"):
        lines += ["", f"## Frames without a metric scale: {summary['frames_without_scale']} (no depth published)"]
    if report.get("floor_rejections"):
        lines += ["", "Frames whose floor gave no measurement (a held scale may still have applied), by reason:", ""]
        lines += [f"- {count}: {reason}" for reason, count in report["floor_rejections"].items()]
    if "semantic" in summary:
        s = summary["semantic"]
        lines += ["", f"## Semantics: mIoU {s['miou']:.4f}, pixel accuracy {s['pixel_acc']:.4f}"]
        if report.get("label_format"):
            lines += ["", f"Ground-truth labels read as `{report['label_format']}`."]
        if report.get("label_warning"):
            lines += ["", f"**Warning**: {report['label_warning']}"]
    if report.get("figures"):
        lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in report["figures"]]
    if report.get("recorded_bag"):
        lines += ["", f"Recorded bag (inputs and outputs): `{report['recorded_bag']}`"]
    return "\n".join(lines) + "\n"


def _obstacle_lines(obstacles: dict) -> list[str]:
    """The obstacle table: object-pixel and depth-boundary scores per protocol."""
    if not obstacles:
        return []
    lines = ["", "## Obstacles (objects: labels other than wall, floor, ceiling; boundaries: depth edges)", "",
             "| protocol | object AbsRel | object RMSE | object δ1 | obstacle recall | boundary P | boundary R | "
             "boundary F1 |", "|---|---|---|---|---|---|---|---|"]
    keys = ("object_abs_rel", "object_rmse", "object_delta1", "obstacle_recall", "boundary_precision",
            "boundary_recall", "boundary_f1")
    for protocol, scores in obstacles.items():
        lines.append(f"| {protocol} | " + " | ".join(f"{scores[k]:.4f}" if k in scores else "—" for k in keys) + " |")
    notes = {scores["note"] for scores in obstacles.values() if "note" in scores}
    return lines + [f"\n{note}" for note in sorted(notes)]


def write_report(output: Path, report: dict) -> tuple[Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    json_path, md_path = output / "report.json", output / "report.md"
    json_path.write_text(json.dumps(report, indent=2, default=float) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path
