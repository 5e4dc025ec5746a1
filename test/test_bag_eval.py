"""gam-depth-bag-eval on generated bags: offline and live modes, recording, errors, damaged bags."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from model_fixtures import SMALL_HEIGHT, SMALL_WIDTH
from ros_helpers import configure_process

from gam_depth_ros.evaluation.bag_eval import main
from gam_depth_ros.evaluation.bag_reader import bag_topics, read_bag
from gam_depth_ros.evaluation.metrics import single_image_depth_metrics
from gam_depth_ros.inference import create_backend
from training.synthetic.generate import TOPICS, render_sequence, write_bag

FRAMES = 12


@pytest.fixture(scope="module")
def sequence():
    return render_sequence(11, 0, FRAMES, SMALL_HEIGHT, SMALL_WIDTH, "robot")


@pytest.fixture(scope="module")
def bag(tmp_path_factory, sequence):
    return write_bag(sequence, tmp_path_factory.mktemp("bags") / "robot_bag")


def run(bag, model, out, *extra):
    args = ["--bag", str(bag), "--image-topic", TOPICS["image"], "--camera-info-topic", TOPICS["camera_info"],
            "--depth-topic", TOPICS["depth"], "--label-topic", TOPICS["labels"], "--model", str(model),
            "--output", str(out), *extra]
    code = main(args)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    return code, report


def test_offline_metrics_equal_the_backend_scored_directly(tmp_path, bag, sequence, small_model):
    code, report = run(bag, small_model.onnx, tmp_path / "out", "--record", str(tmp_path / "rec"))
    assert code == 0 and report["complete"] and report["frames"] == FRAMES
    backend = create_backend("onnxruntime", small_model.onnx)
    scale = backend.metadata.depth_scale
    expected = [single_image_depth_metrics(backend.infer(rgb, output_size=rgb.shape[:2]).depth.astype(np.float64)
                                           * scale, gt.astype(np.float64), True, 0.1, 10.0)["abs_rel"]
                for rgb, gt in zip(sequence.images, sequence.depth)]
    assert report["summary"]["median"]["abs_rel"] == pytest.approx(np.mean(expected), rel=1e-6)
    per_frame = [f["abs_rel_median"] for f in report["per_frame"]]
    np.testing.assert_allclose(per_frame, expected, rtol=1e-6)
    assert report["summary"]["scale"]["used"]["median"] == pytest.approx(scale)
    # Object-pixel scores against the bag's ground-truth labels, the same numbers as scored directly.
    from gam_depth_ros.evaluation.metrics import obstacle_metrics

    direct = [obstacle_metrics(backend.infer(rgb, output_size=rgb.shape[:2]).depth.astype(np.float64) * scale,
                               gt.astype(np.float64), labels, True)
              for rgb, gt, labels in zip(sequence.images, sequence.depth, sequence.labels)]
    obstacles = report["summary"]["obstacles"]["median"]
    assert obstacles["objects_scored"] is True
    with_objects = [d["object_abs_rel"] for d in direct if "object_abs_rel" in d]
    assert obstacles["object_abs_rel"] == pytest.approx(np.mean(with_objects), rel=1e-6)
    assert "boundary_f1" in obstacles and "Obstacles" in (tmp_path / "out" / "report.md").read_text()
    assert {"montage.png", "error_vs_distance.png"} <= set(report["figures"])
    assert all((tmp_path / "out" / name).stat().st_size > 1000 for name in report["figures"])
    assert "semantic" in report["summary"] and (tmp_path / "out" / "report.md").read_text().startswith("# Bag")
    recorded = bag_topics(tmp_path / "rec")
    assert recorded[TOPICS["image"]] == "sensor_msgs/msg/Image"
    assert recorded["/gam_depth/depth/image"] == "sensor_msgs/msg/Image"
    assert recorded[TOPICS["depth"]] == recorded[TOPICS["labels"]] == "sensor_msgs/msg/Image"  # ground truth too
    frames = read_bag(tmp_path / "rec", "/gam_depth/semantic/image", depth_topic="/gam_depth/depth/image",
                      max_dt=0.0)
    assert len(frames.frames) == FRAMES and all(f.depth_m is not None for f in frames.frames)
    assert [f.stamp_ns for f in frames.frames] == [int(s) for s in sequence.stamps_ns]


def test_live_mode_counts_every_frame_and_matches_offline(tmp_path, bag, small_model):
    configure_process(tmp_path / "ros_log")
    code, live = run(bag, small_model.onnx, tmp_path / "live", "--mode", "live", "--rate", "0.5")
    assert code == 0, (tmp_path / "live").iterdir()
    timing = live["timing"]
    assert timing["sent"] == FRAMES and timing["processed"] + timing["dropped"] == FRAMES
    assert timing["processed"] >= FRAMES // 2  # at half speed a 64x96 model keeps up with most frames
    assert 0 < timing["latency_ms"]["p50"] <= timing["latency_ms"]["p95"] <= timing["latency_ms"]["p99"]
    replay_s = (FRAMES - 1) / 15.0  # 30 Hz bag at half speed
    assert timing["processed"] / (replay_s + 1.0) <= timing["throughput_fps"] <= FRAMES / replay_s
    assert "latency_histogram.png" in live["figures"]
    _, offline = run(bag, small_model.onnx, tmp_path / "off")
    by_stamp = {f["stamp_ns"]: f["abs_rel_median"] for f in offline["per_frame"]}
    for frame in live["per_frame"]:  # the node publishes exactly what the backend computes
        assert frame["abs_rel_median"] == pytest.approx(by_stamp[frame["stamp_ns"]], rel=1e-4)


def test_millimetre_ground_truth_scores_like_metres(tmp_path, sequence, bag, small_model):
    mm_bag = write_bag(sequence, tmp_path / "mm_bag", depth_encoding="16UC1")
    _, metres = run(bag, small_model.onnx, tmp_path / "m")
    _, millimetres = run(mm_bag, small_model.onnx, tmp_path / "mm")
    expected = metres["summary"]["median"]["abs_rel"]
    assert millimetres["summary"]["median"]["abs_rel"] == pytest.approx(expected, abs=1e-3)


def test_missing_topic_lists_the_topics_the_bag_has(tmp_path, bag, small_model, caplog):
    code = main(["--bag", str(bag), "--image-topic", "/camera/color/image_raw", "--model", str(small_model.onnx),
                 "--output", str(tmp_path / "out")])
    assert code == 2
    assert "no topic '/camera/color/image_raw'" in caplog.text and TOPICS["depth"] in caplog.text


@pytest.mark.parametrize("damage", ["truncated", "never_closed"])
def test_damaged_bag_gives_a_partial_report_marked_incomplete(tmp_path, bag, small_model, damage):
    broken = tmp_path / "broken_bag"
    shutil.copytree(bag, broken)
    storage = next(broken.glob("*.mcap"))
    if damage == "truncated":
        with open(storage, "r+b") as stream:
            stream.truncate(int(storage.stat().st_size * 0.6))
    else:  # a recorder killed before closing: no metadata.yaml (the mcap summary is there, but unused)
        (broken / "metadata.yaml").unlink()
    code, report = run(broken, small_model.onnx, tmp_path / "out")
    assert code == 3 and report["complete"] is False and report["incomplete_reason"]
    assert 0 < report["frames"] <= FRAMES and report["summary"]["scored_frames"] == report["frames"]
    assert "INCOMPLETE" in (tmp_path / "out" / "report.md").read_text()
    if damage == "truncated":
        assert report["frames"] < FRAMES


def _rewrite(bag, out, topic, **changes):
    """A copy of ``bag`` whose ``topic`` messages have ``changes`` applied (e.g. another encoding)."""
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    with Reader(bag) as reader, Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections}
        for connection, timestamp, raw in reader.messages():
            if connection.topic == topic:
                msg = store.deserialize_cdr(raw, connection.msgtype)
                for name, value in changes.items():
                    setattr(msg, name, value)
                raw = store.serialize_cdr(msg, connection.msgtype)
            writer.write(connections[connection.id], timestamp, raw)
    return out


def test_unsupported_encodings_are_named(tmp_path, bag, small_model, caplog):
    nv21 = _rewrite(bag, tmp_path / "nv21_bag", TOPICS["image"], encoding="nv21")
    code = main(["--bag", str(nv21), "--image-topic", TOPICS["image"], "--model", str(small_model.onnx),
                 "--output", str(tmp_path / "out")])
    assert code == 2 and "no image could be read" in caplog.text and "'nv21'" in caplog.text
    caplog.clear()
    signed = _rewrite(bag, tmp_path / "s16_bag", TOPICS["depth"], encoding="16SC1")
    code, report = run(signed, small_model.onnx, tmp_path / "out2")
    assert code == 0 and report["summary"]["scored_frames"] == 0 and len(report["skipped_messages"]) == FRAMES
    assert "'16SC1' unsupported" in caplog.text and "no frame was scored" in caplog.text


def _relabel_nyu40(bag, out):
    """A copy of ``bag`` whose label topic holds NYU-40 ids (0 = unlabeled, 1 = wall ... 40)."""
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    with Reader(bag) as reader, Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections}
        for connection, timestamp, raw in reader.messages():
            if connection.topic == TOPICS["labels"]:
                msg = store.deserialize_cdr(raw, connection.msgtype)
                msg.data = np.where(msg.data == 255, 0, msg.data + 1).astype(np.uint8)
                raw = store.serialize_cdr(msg, connection.msgtype)
            writer.write(connections[connection.id], timestamp, raw)
    return out


def test_label_format_nyu40_and_offset_warning(tmp_path, bag, caplog):
    """NYU-40 ground truth read as zero-based ids is flagged; --label-format nyu40 scores it right."""
    from gam_depth_ros.demo_model import shipped_demo_model

    demo = shipped_demo_model()
    if demo is None:
        pytest.skip("needs the shipped demo model (a model whose labels are right often enough)")
    nyu40 = _relabel_nyu40(bag, tmp_path / "nyu40_bag")
    code, reference = run(bag, demo, tmp_path / "zero")
    assert code == 0 and reference["label_warning"] is None and reference["label_format"] == "zero-based"
    assert reference["summary"]["semantic"]["miou"] > 0.1  # the demo model has learnt the rooms' classes
    caplog.clear()
    code, wrong = run(nyu40, demo, tmp_path / "wrong")
    assert code == 0 and "--label-format nyu40" in wrong["label_warning"] and "look offset" in caplog.text
    assert wrong["summary"]["label_offset_check"]["-1"] == pytest.approx(reference["summary"]["semantic"]["miou"])
    assert "**Warning**" in (tmp_path / "wrong" / "report.md").read_text()
    code, right = run(nyu40, demo, tmp_path / "right", "--label-format", "nyu40")
    assert code == 0 and right["label_warning"] is None and right["label_format"] == "nyu40"
    assert right["summary"]["semantic"] == pytest.approx(reference["summary"]["semantic"])
