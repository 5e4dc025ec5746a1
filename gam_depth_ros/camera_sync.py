"""Which camera_info belongs to an image, as the camera changes (plain Python, no ROS).

image_transport publishes a camera's image and camera_info with the same header stamp, but the two
topics arrive independently, and a robot's camera changes under the node: a driver reconfigured to
another resolution, a recalibration, a restart. :class:`CameraInfoTracker` keeps the recent
camera_infos by stamp and answers, for each image, the camera to use or why there is none:

1. the camera_info with the image's exact stamp, when it has arrived (a synchronised pair);
2. else the newest one, scaled to the image when only the resolution differs (same aspect ratio:
   binning or a resized stream) - unless the image stream changed size after that camera_info was
   received and no camera_info has been paired with the new stream by stamp since: then it
   described the old stream, and the camera outputs wait for a new one rather than publish old
   intrinsics under the new header (a change of aspect ratio always waits);
3. none before the first valid camera_info.

It also reports when camera_info stopped arriving while images still come (:meth:`silence_s`);
the last one is still used then (a camera's intrinsics do not change without a restart, and a
restart that changes them changes the image size or sends a new camera_info).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from gam_depth_ros.camera_model import CameraModel

RECENT = 30  # camera_infos kept for exact-stamp matching (1 s at 30 Hz)
SILENCE_WARN_S = 5.0  # images without camera_info for this long: say so


class CameraInfoTracker:
    """Recent camera_infos (executor thread) and the camera for each image (worker thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_stamp: OrderedDict[int, CameraModel] = OrderedDict()
        self._latest: CameraModel | None = None
        self._latest_received = 0.0
        self._image_size: tuple[int, int] | None = None  # (width, height) of the latest image
        self._size_changed_at: float | None = None  # receive time of the latest mid-stream size change

    def add(self, stamp_ns: int, camera: CameraModel, received: float) -> None:
        """A valid (rectified) camera_info with its header stamp, received at ``received`` (monotonic s)."""
        with self._lock:
            self._by_stamp[stamp_ns] = camera
            self._by_stamp.move_to_end(stamp_ns)
            while len(self._by_stamp) > RECENT:
                self._by_stamp.popitem(last=False)
            self._latest, self._latest_received = camera, received

    def for_image(self, stamp_ns: int, width: int, height: int, received: float) -> tuple[CameraModel | None, str]:
        """The camera for an image of ``width`` x ``height`` (its camera_info's size), or None and why."""
        with self._lock:
            if self._image_size is not None and self._image_size != (width, height):
                self._size_changed_at = received
            self._image_size = (width, height)
            exact = self._by_stamp.get(stamp_ns)
            if exact is not None and exact.same_aspect(width, height):
                self._size_changed_at = None  # the camera paired a camera_info with the new stream
                return exact, ""
            latest, latest_received, changed_at = self._latest, self._latest_received, self._size_changed_at
        if latest is None:
            return None, "no valid camera_info received yet"
        if not latest.same_aspect(width, height):
            return None, (f"camera_info is {latest.width}x{latest.height} but images are {width}x{height} (another "
                          "aspect ratio: another camera or a crop)")
        if (latest.width, latest.height) != (width, height) and changed_at is not None and latest_received < changed_at:
            return None, (f"the images changed to {width}x{height}; waiting for a camera_info of the new stream "
                          f"(the last one is {latest.width}x{latest.height})")
        return latest, ""

    def silence_s(self, now: float) -> float:
        """Seconds since the last camera_info arrived (0 before the first one)."""
        with self._lock:
            return now - self._latest_received if self._latest is not None else 0.0
