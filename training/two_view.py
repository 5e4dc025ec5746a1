"""Classical two-view relative pose, no learning and no ground truth: SIFT matches + essential matrix.

A candidate bootstrap for the pose network (issue "The paper's setting learns", item 2): joint
depth-pose methods without a pose network recover rotation and the direction of translation from
point matches alone. Per pair of frames (the target and one source, same camera ``K``):

1. SIFT keypoints and descriptors on the grey images (OpenCV, in its main module since 4.4);
2. matches that pass Lowe's ratio test (best distance < ``ratio`` x second best);
3. the essential matrix by RANSAC (``cv2.findEssentialMat``, ``threshold_px`` pixels);
4. ``cv2.recoverPose``: the (R, t) of the four decompositions that puts the inliers in front of both
   cameras. It maps target-camera points into the source camera, i.e. ``T_source_target``
   (:mod:`training.geometry`), with ``|t| = 1``: an essential matrix has no scale.

A pair with too few matches or inliers gets no pose (``None``): nearly pure rotation, blur,
textureless walls. Scoring against the truth is :mod:`training.pose_metrics`' (direction cosine and
rotation error; the length ratio means nothing here), done by ``bench/pose_accuracy.py --two-view``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass(frozen=True)
class TwoViewPose:
    """One pair's estimate: ``T_source_target`` [4,4] (unit translation) and its support."""

    T_source_target: np.ndarray
    matches: int
    inliers: int


def to_grey_uint8(image: torch.Tensor) -> np.ndarray:
    """[3,H,W] float RGB in [0,1] (a training sample's image) -> [H,W] uint8 grey."""
    rgb = (image.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def two_view_pose(target: np.ndarray, source: np.ndarray, K: np.ndarray, ratio: float = 0.8,
                  threshold_px: float = 1.0, min_inliers: int = 12) -> TwoViewPose | None:
    """Relative pose of ``source`` against ``target`` ([H,W] uint8 grey each, camera ``K`` [3,3]).

    Returns None when fewer than ``min_inliers`` matches support the essential matrix.
    """
    sift = cv2.SIFT_create()
    keys_t, desc_t = sift.detectAndCompute(target, None)
    keys_s, desc_s = sift.detectAndCompute(source, None)
    if desc_t is None or desc_s is None or len(keys_t) < 5 or len(keys_s) < 5:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc_t, desc_s, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    if len(good) < max(5, min_inliers):
        return None
    points_t = np.float64([keys_t[m.queryIdx].pt for m in good])
    points_s = np.float64([keys_s[m.trainIdx].pt for m in good])
    K = np.asarray(K, dtype=np.float64)
    E, mask = cv2.findEssentialMat(points_t, points_s, K, cv2.RANSAC, 0.999, threshold_px)
    if E is None or E.shape != (3, 3):  # degenerate, or several solutions stacked
        return None
    inliers, R, t, _ = cv2.recoverPose(E, points_t, points_s, K, mask=mask)
    if inliers < min_inliers:
        return None
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t[:, 0]
    return TwoViewPose(T, len(good), int(inliers))


def two_view_frame_poses(frames: list[np.ndarray], K: np.ndarray, **options) -> tuple[np.ndarray, np.ndarray]:
    """The two-view estimate of every frame against the first (the target), as a training sample holds it.

    ``frames``: [H,W,3] uint8 RGB or [H,W] grey, target first; ``K`` [3,3] at that size. Returns
    ``T_frame_target`` [F,4,4] float32 (identity for the target and where none was found) and
    ``found`` [F] bool (False for the target).
    """
    grey = [f if f.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    poses = np.tile(np.eye(4, dtype=np.float32), (len(frames), 1, 1))
    found = np.zeros(len(frames), dtype=bool)
    for index, source in enumerate(grey[1:], start=1):
        estimate = two_view_pose(grey[0], source, K, **options)
        if estimate is not None:
            poses[index], found[index] = estimate.T_source_target, True
    return poses, found


def two_view_sample_poses(images: torch.Tensor, K: torch.Tensor, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Every source of one training sample against its target.

    ``images`` [S,3,H,W] (index 0 the target), ``K`` [3,3] or [4,4] at that size. Returns
    ``T_source_target`` [S-1,4,4] (identity where no pose was found) and ``found`` [S-1] bool.
    """
    frames = [to_grey_uint8(image) for image in images]
    poses, found = two_view_frame_poses(frames, K[:3, :3].double().cpu().numpy(), **options)
    return torch.from_numpy(poses[1:]), torch.from_numpy(found[1:])
