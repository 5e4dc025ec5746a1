"""Typed, frozen training configuration: YAML in, dataclasses out, YAML saved beside every checkpoint.

Load with :func:`load_training_config` (strict: unknown keys and wrong types are errors naming the
file and the dotted field), override fields from the command line with ``--set key.sub=value``
(the value is parsed as YAML: ``--set optim.lr=2e-4``, ``--set frame_ids=[0,-1,1]``) through
:func:`apply_overrides`, and write the resolved config with :func:`save_training_config`.
Nothing mutates a config after it is built; derived values are computed where they are used.

Data sources
------------
:class:`DataConfig` is the contract with the data loaders (``training/data/``). The trainer builds
a dataset with ``training.data.build_dataset(data, frame_ids=..., height=..., width=..., train=...)``
(``synthetic`` is served by :mod:`training.data.synthetic_clip`), a map-style
``torch.utils.data.Dataset`` of samples in the schema of :mod:`training.data.sample`. ``augment``
applies to the training split only (``train=True``); validation sources ignore it. ``options``
holds source-specific settings (documented by each source), e.g. for ``rosbag``
``{topic: /camera/image_raw, camera_info_topic: /camera/camera_info, stride: 2}``. Random
augmentation should draw from the global ``random`` / ``numpy`` / ``torch`` generators: the trainer
seeds them per sample from (seed, epoch, index), so data is reproducible across resumes and worker
counts.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gam_depth_ros.config_io import ConfigError, from_dict, load_yaml, to_dict
from gam_depth_ros.evaluation.metrics import structural_ids
from gam_depth_ros.model_config import ModelConfig

_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")

#: Training data sources (``DataConfig.source``) of the training split.
TRAIN_SOURCES = ("nyu_raw", "folder", "rosbag", "synthetic")


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation of training samples (the recipe's values). Off for validation."""

    color_jitter_p: float = 0.5  # probability of colour jitter (network inputs only, same for all frames)
    brightness: float = 0.2  # jitter factor range 1 +- brightness
    contrast: float = 0.2  # jitter factor range 1 +- contrast
    saturation: float = 0.2  # jitter factor range 1 +- saturation
    hue: float = 0.1  # hue shift range +- hue (fraction of the colour circle)
    flip_p: float = 0.5  # probability of a horizontal flip (cx -> W - 1 - cx, labels flipped too)
    # Train on a random window of the network-size frames (the same window for every frame of a sample,
    # the principal point shifted with it): the pixels keep the size they have at inference, a step
    # costs the window's share of the pixels. 0, 0 = whole frames. Multiples of 32, at least 64 (the networks').
    crop_height: int = 0
    crop_width: int = 0

    def __post_init__(self) -> None:
        for name in ("color_jitter_p", "flip_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1], got {getattr(self, name)}")
        crop = (self.crop_height, self.crop_width)
        if crop != (0, 0) and not all(c >= 64 and c % 32 == 0 for c in crop):
            raise ValueError(f"augment.crop_height/crop_width must both be multiples of 32 and at least 64 "
                             f"(or both 0 for whole frames), got {crop[0]}x{crop[1]}")


@dataclass(frozen=True)
class DataConfig:
    """One data source. ``source`` picks the loader; ``path``/``split_file`` mean what it documents."""

    source: str = "synthetic"  # nyu_raw | folder | rosbag | synthetic (validation also: eval sources)
    path: str | tuple[str, ...] = ""  # dataset root folder, image folder, rosbag; folder, rosbag: also a list
    split_file: str = ""  # split text file (nyu_raw: one sample per line), "" = none
    options: dict[str, Any] = field(default_factory=dict)  # source-specific settings, see each loader
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)  # null = no augmentation
    strict: bool = False  # an unreadable image stops training (true) or is skipped with a warning (false)

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError("data.source must be set")
        if not isinstance(self.path, str) and self.source not in ("rosbag", "folder"):
            raise ValueError("data.path: a list of paths is only read by sources folder and rosbag, "
                             f"not {self.source!r}")


@dataclass(frozen=True)
class ValidationConfig:
    """Validation after every ``every_epochs`` epochs on a split with ground-truth depth."""

    data: DataConfig = field(default_factory=lambda: DataConfig(augment=None))  # where the samples come from
    every_epochs: int = 1  # validate after every N epochs (0 = never)
    median_scaling: bool = True  # per-image median scaling of the prediction (self-supervised depth)
    min_depth: float = 0.1  # clamp / valid range of the metrics, metres
    max_depth: float = 10.0
    max_samples: int = 0  # validate on the first N samples only (0 = all)


POSE_SOURCES = ("network", "data", "two_view_rotation")


@dataclass(frozen=True)
class NetworkConfig:
    """Training-only network options (the depth/semantic network itself is ``model``)."""

    depth_scales: tuple[int, ...] = (0, 1, 2, 3)  # disparity scales trained (0 = full resolution)
    residual_pose: bool = True  # MonoIndoor-style residual pose refinement after the first warp
    # "network": the pose network predicts the motion (the paper); "data": the data's poses (robot
    # odometry, poses.txt) are the initial poses and the residual decoder, if on, refines them;
    # "two_view_rotation": the pose network's translation with the classical two-view rotation where
    # the pair has one (data option two_view_prior: true; no ground truth), the network's elsewhere
    pose_source: str = "network"
    pose_scale: float = 0.01  # axis-angle and translation outputs are scaled by this
    pose_base_channels: int = 64  # pose encoder width: 64 = ResNet-18 (the paper), 32 = compact, ~4x fewer FLOPs
    depth_imagenet_weights: str = ""  # torchvision resnet18 state dict file for the depth encoder, "" = random
    pose_imagenet_weights: str = ""  # same for the 6-channel pose encoder
    init_checkpoint: str = ""  # fine-tuning: start from this checkpoint's weights (fresh optimiser/counters)
    channels_last: bool = False  # channels-last memory format for the networks (pays on some hardware)
    # depth (m) the untrained depth decoder starts at; 0 = sigmoid 0.5 (min_depth * ~2, monodepth2).
    # Matters with metric poses (pose_source: data): warps start in the right range
    initial_depth: float = 0.0

    def __post_init__(self) -> None:
        if not self.depth_scales or 0 not in self.depth_scales or any(s not in range(4) for s in self.depth_scales):
            raise ValueError(f"networks.depth_scales must be a subset of 0..3 containing 0, got {self.depth_scales}")
        if self.pose_source not in POSE_SOURCES:
            raise ValueError(f"networks.pose_source must be one of {POSE_SOURCES}, got {self.pose_source!r}")
        if self.initial_depth < 0:
            raise ValueError(f"networks.initial_depth must be >= 0 (0 = default init), got {self.initial_depth}")


@dataclass(frozen=True)
class OptimConfig:
    """Adam with a step schedule: lr x gamma at each milestone epoch."""

    lr: float = 1e-4  # learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    weight_decay: float = 0.0  # L2 weight decay
    milestones: tuple[int, ...] = (26, 36)  # epochs at which lr is multiplied by gamma
    gamma: float = 0.1  # step-decay factor


@dataclass(frozen=True)
class MaskConfig:
    """Gradient-aware mask M = beta + (1 - beta) / (1 + exp(-gamma1 * m + gamma2)); L_gra = k * mean(M * L_min)."""

    enabled: bool = True  # false: plain mean of the minimum reprojection loss (monodepth2)
    beta: float = 0.1  # floor of the mask (weight of flat regions before k)
    gamma1: float = 0.1  # slope on the gradient magnitude m (0..255 intensity scale)
    gamma2: float = 40.0  # offset: the mask is half-way at m = gamma2 / gamma1
    k: float = 10.0  # overall factor (k * beta = 1 keeps flat regions at weight 1)
    lift_threshold: float = 0.01  # a pixel counts as "lifted" when (M - beta) / (1 - beta) exceeds this
    # > 0: gamma2 is set from the training data at start instead (training/mask_calibration.py): pixels
    # whose m lies above this quantile of m are lifted, e.g. 0.85 lifts the top 15 %; 0 = use gamma2
    gamma2_from_quantile: float = 0.0
    quantile_samples: int = 64  # training samples (evenly spaced over the set) whose m that quantile is over

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma2_from_quantile < 1.0:
            raise ValueError(f"loss.mask.gamma2_from_quantile must be in [0, 1) (0 = off), "
                             f"got {self.gamma2_from_quantile}")
        if not 0.0 < self.lift_threshold < 1.0:
            raise ValueError(f"loss.mask.lift_threshold must be in (0, 1), got {self.lift_threshold}")
        if self.quantile_samples < 1:
            raise ValueError(f"loss.mask.quantile_samples must be >= 1, got {self.quantile_samples}")


@dataclass(frozen=True)
class PlanarConfig:
    """Planar regulariser: depth vs. the plane fitted per precomputed segment (StructDepth)."""

    enabled: bool = True  # applied only to samples with ``has_structure``
    weight: float = 0.1
    min_pixels: int = 200  # segments with at most this many pixels are ignored
    border: int = 8  # pixels at the image border are ignored (normals/segments unreliable there)
    # NYU-40 class names whose pixels form one plane per image in samples with labels but without
    # precomputed segments (e.g. [floor, ceiling]): the floor fit that floor-scale mode relies on
    label_classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            structural_ids(self.label_classes)
        except ValueError as error:
            raise ValueError(f"loss.planar.label_classes: {error}") from None


@dataclass(frozen=True)
class PosePriorConfig:
    """A pull of the predicted poses towards the classical two-view estimate (:mod:`training.two_view`).

    For the pose network's start (issue "The paper's setting learns"): on the pairs where the two-view
    estimate was found, ``weight x (rotation_weight x rotation angle between prediction and estimate,
    radians + 1 - cosine of the translation directions)`` is added during the first ``steps`` optimiser steps. Needs the
    data's ``two_view_prior: true`` option (folder sources), which computes the estimate on the frames
    before they are resized to the network size.
    """

    weight: float = 0.0  # 0 = off
    steps: int = 0  # active during the first N steps (0 = the whole run)
    rotation_weight: float = 1.0  # rotation part (radians) relative to the direction part (1 - cos)


@dataclass(frozen=True)
class NormalConfig:
    """Manhattan normal regulariser: normals from depth aligned to the dominant directions."""

    enabled: bool = True  # applied only to samples with ``has_structure``
    weight: float = 0.05
    align_cos: float = 0.9  # a pixel is constrained when |cos(normal, closest direction)| exceeds this


@dataclass(frozen=True)
class LossConfig:
    """Weights and parameters of every loss term; see ``training/losses.py``."""

    ssim_weight: float = 0.85  # photometric error = w * (1 - SSIM) / 2 + (1 - w) * L1
    automask: bool = True  # identity reprojection terms in the minimum (static pixels masked)
    identity_noise: float = 1e-5  # std of the noise added to the identity terms (breaks ties)
    mask: MaskConfig = field(default_factory=MaskConfig)
    semantic_weight: float = 0.1  # cross-entropy on proxy labels
    semantic_epochs: int = 15  # the semantic loss is applied during the first N epochs only
    photometric_pyramid: int = 0  # also compare images blurred by sigma 1, 2 .. 2**(n-1) px and add each level's
                                  # term: gradients for depths whose warp lands pixels off (docs/training.md)
    smoothness_weight: float = 1e-3  # edge-aware smoothness of mean-normalised disparity (divided by 2**scale)
    planar: PlanarConfig = field(default_factory=PlanarConfig)
    normal: NormalConfig = field(default_factory=NormalConfig)
    pose_prior: PosePriorConfig = field(default_factory=PosePriorConfig)
    fitted_depth_weight: float = 0.0  # L1 of log depth against gam-depth-fit-depth maps, where a sample has one


@dataclass(frozen=True)
class TrainConfig:
    """The loop: sizes, devices, intervals, output."""

    batch_size: int = 4  # per process (DDP: global batch = batch_size x world size)
    epochs: int = 50
    max_steps: int = 0  # stop (with a checkpoint) after this many optimiser steps in all, 0 = no limit
    max_minutes: float = 0.0  # stop (with a checkpoint) after this much wall time in this process, 0 = no limit
    num_workers: int = 4  # data-loading processes per training process
    amp: bool = True  # mixed precision on CUDA (bf16 where supported, else fp16 with loss scaling)
    cpu_amp_bf16: bool = False  # bfloat16 autocast on CPU too (pays on CPUs with AMX / AVX512-BF16)
    compile_loss: bool = False  # torch.compile the photometric error (fused SSIM; ~20 s to compile at start)
    seed: int = 0  # seeds python, numpy, torch; data order and augmentation derive from it
    output_dir: str = "runs/gam_depth"  # checkpoints, logs and the resolved config go here
    checkpoint_every_epochs: int = 1  # checkpoint after every N epochs (the last epoch always)
    checkpoint_every_steps: int = 0  # also every N steps (0 = off)
    keep_checkpoints: int = 3  # keep the newest N step/epoch checkpoints (0 = keep all)
    log_every_steps: int = 50  # CSV / TensorBoard scalars every N steps
    image_every_steps: int = 500  # TensorBoard image grids every N steps (0 = off)
    max_nan_steps: int = 20  # stop after this many consecutive non-finite losses
    cpu_threads: int = 0  # torch intra-op threads on CPU (0 = torch default)
    progress_bar: bool = True  # tqdm progress bar when tqdm is installed and stderr is a terminal

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError(f"batch_size and epochs must be >= 1, got {self.batch_size}, {self.epochs}")
        if self.max_nan_steps < 1:
            raise ValueError("max_nan_steps must be >= 1")
        if self.max_minutes < 0:
            raise ValueError(f"max_minutes must be >= 0 (0 = no limit), got {self.max_minutes}")


@dataclass(frozen=True)
class TrainingConfig:
    """Everything a training run needs; saved resolved beside every checkpoint."""

    model: ModelConfig = field(default_factory=ModelConfig)  # the network (size, classes, depth range)
    data: DataConfig = field(default_factory=DataConfig)  # training data source
    validation: ValidationConfig | None = None  # null = no validation
    frame_ids: tuple[int, ...] = (0, -2, -1, 1, 2)  # target first, then sources (temporal offsets)
    networks: NetworkConfig = field(default_factory=NetworkConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if len(self.frame_ids) < 2 or self.frame_ids[0] != 0 or 0 in self.frame_ids[1:]:
            raise ValueError(f"frame_ids must start with 0 and list at least one other frame, got {self.frame_ids}")
        if len(set(self.frame_ids)) != len(self.frame_ids):
            raise ValueError(f"frame_ids must be distinct, got {self.frame_ids}")
        if self.data.source not in TRAIN_SOURCES:
            raise ValueError(f"data.source must be one of {TRAIN_SOURCES}, got {self.data.source!r}")
        if self.networks.pose_source == "two_view_rotation" and not self.data.options.get("two_view_prior"):
            raise ValueError("networks.pose_source 'two_view_rotation' needs the two-view estimates: set "
                             "data.options.two_view_prior: true (folder source)")
        depth = self.networks.initial_depth
        if depth and not self.model.min_depth < depth < self.model.max_depth:
            raise ValueError(f"networks.initial_depth {depth} must lie inside the model's depth range "
                             f"({self.model.min_depth}, {self.model.max_depth})")
        augment = self.data.augment
        if augment is not None and (augment.crop_height > self.model.height or augment.crop_width > self.model.width):
            raise ValueError(f"data.augment crop {augment.crop_height}x{augment.crop_width} is larger than the "
                             f"network size model.height x model.width = {self.model.height}x{self.model.width}")


def load_training_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainingConfig:
    """Read a training config YAML and apply ``key.sub=value`` overrides (values parsed as YAML)."""
    data = apply_overrides(load_yaml(path), overrides)
    return from_dict(TrainingConfig, data, str(path))


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of the plain config dict with each ``dotted.key=yaml_value`` applied.

    Intermediate mappings are created when missing (e.g. ``validation.data.path=...`` when the
    file has no ``validation`` section); whether the key exists is checked by the strict loader.
    """
    result = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key.sub=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"--set {item!r}: invalid YAML value: {error}") from error
        if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads "2e-4" (no dot) as a string
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return result


def config_to_dict(config: TrainingConfig) -> dict[str, Any]:
    """Plain (YAML/JSON/torch-safe) dict of a config."""
    return to_dict(config)


def config_from_dict(data: dict[str, Any], source: str = "training_config") -> TrainingConfig:
    """Inverse of :func:`config_to_dict` (strict)."""
    return from_dict(TrainingConfig, data, source)


def save_training_config(config: TrainingConfig, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically: temp file + rename)."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
