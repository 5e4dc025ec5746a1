"""The one sample schema every training data source returns.

A sample is a ``dict[str, Tensor]`` with flat string keys, so the default ``collate`` batches it
(a leading batch dimension B is added to every entry below). Every key is always present, so
batches mix sources freely; optional content is flagged by ``has_*``.

Frames are ordered as the config's ``frame_ids`` (target first, e.g. [0, -2, -1, 1, 2]); F is
their count. H, W is the network size (multiples of 32). S is the number of loss scales (4).

========================  ==================  =========================================================
key                       shape, dtype        meaning
========================  ==================  =========================================================
``images``                [F,3,H,W] float32   frames in [0, 1], RGB, un-augmented (the photometric
                                              loss compares these)
``images_aug``            [F,3,H,W] float32   the same frames colour-jittered (same jitter for all
                                              frames of a sample) for the networks; equal to
                                              ``images`` when augmentation is off
``K``                     [S,4,4] float32     pinhole intrinsics in pixels of scale s (fx, fy, cx, cy
                                              divided by 2**s), homogeneous 4x4; after a horizontal
                                              flip cx -> W_s - 1 - cx
``inv_K``                 [S,4,4] float32     inverse of ``K``
``gradient``              [1,H,W] float32     Sobel gradient magnitude of the target frame, grey
                                              (0..255 scale) blurred by a 5x5 Gaussian first
``labels``                [H,W] int64         proxy semantic labels of the target, NYU-40 ids 0..39,
                                              255 = void (all 255 when the source has none)
``has_labels``            [] bool             whether ``labels`` holds any real label
``depth_gt``              [1,H,W] float32     ground-truth depth in metres of the target, 0 =
                                              invalid (all 0 when the source has none)
``has_depth``             [] bool             whether ``depth_gt`` is meaningful
``depth_fitted``          [1,H,W] float32     depth in metres fitted to the view-synthesis objective
                                              (:mod:`training.fitted_depth`; no ground truth), 0 =
                                              invalid (all 0 when there is none)
``has_fitted_depth``      [] bool             whether ``depth_fitted`` is meaningful
``segments``              [H,W] int64         planar-loss segment ids of the target, -1 = none
                                              (all -1 unless precomputed)
``vanishing_directions``  [3,3] float32       rows: unit dominant directions in the camera frame for
                                              the Manhattan normal loss (zeros unless precomputed)
``has_structure``         [] bool             whether ``segments``/``vanishing_directions`` are set
``poses``                 [F,4,4] float32     ``T_frame_target`` from the data (wheel odometry, the
                                              generator's ``poses.txt``): maps target-camera points
                                              into each frame's camera, metres; identity for the
                                              target and for samples without poses
``has_poses``             [] bool             whether ``poses`` come from the data
``prior_poses``           [F,4,4] float32     ``T_frame_target`` of the classical two-view estimate
                                              (:mod:`training.two_view`; unit translation), identity
                                              where none was found and for the target
``has_prior_pose``        [F] bool            per frame, whether ``prior_poses`` holds an estimate
========================  ==================  =========================================================

Frame conventions: camera optical frame (x right, y down, z forward); poses predicted between the
target (frame 0) and each source map target-frame points into the source frame.
"""

from __future__ import annotations

SAMPLE_KEYS = (
    "images", "images_aug", "K", "inv_K", "gradient", "labels", "has_labels",
    "depth_gt", "has_depth", "depth_fitted", "has_fitted_depth",
    "segments", "vanishing_directions", "has_structure", "poses", "has_poses",
    "prior_poses", "has_prior_pose",
)  # fmt: skip
NUM_SCALES = 4
VOID_LABEL = 255  # same as gam_depth_ros.classes.VOID_LABEL
