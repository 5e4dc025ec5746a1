"""sensor_msgs Image / CompressedImage <-> numpy, without cv_bridge.

The numpy logic (:func:`raw_to_rgb`, :func:`decode_compressed`) takes plain values so it can be
tested without ROS; the ``*_msg`` helpers only move fields in and out of message objects (any
object with the fields of ``sensor_msgs/Image``, so tests may pass stand-ins).

Every problem with an incoming message raises :class:`ImageDecodeError` (a ``ValueError``) with a
message saying what is wrong, so that the node can log and drop the frame.
"""

from __future__ import annotations

import array
import io
import sys

import numpy as np
from PIL import Image as PilImage

#: Input encodings the node accepts and their channel counts.
INPUT_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
#: Upper bound on pixels of one decoded frame (about 16k x 16k) against absurd headers.
MAX_PIXELS = 1 << 28


class ImageDecodeError(ValueError):
    """An incoming image message cannot be decoded; the message says why."""


def raw_to_rgb(height: int, width: int, encoding: str, step: int, data) -> np.ndarray:
    """Raw 8-bit image bytes -> [H, W, 3] uint8 RGB.

    Parameters
    ----------
    height, width:
        Image size in pixels.
    encoding:
        One of :data:`INPUT_CHANNELS` (``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``).
    step:
        Bytes per row, at least ``width * channels``; extra bytes at the end of each row
        (padding) are ignored.
    data:
        Any buffer (bytes, ``array.array('B')``, numpy) of exactly ``step * height`` bytes, as
        sensor_msgs/Image requires (another length means a wrong step or size: refused).

    Returns
    -------
    np.ndarray
        [H, W, 3] uint8 RGB. For colour encodings this is a view of ``data`` when possible
        (BGR orders are reversed by a strided view); mono8 is replicated into a new array.

    Raises
    ------
    ImageDecodeError
        Unsupported encoding, non-positive or absurd size, ``step`` too small, data of another length.
    """
    channels = INPUT_CHANNELS.get(encoding)
    if channels is None:
        raise ImageDecodeError(f"unsupported encoding {encoding!r}; expected one of {sorted(INPUT_CHANNELS)}")
    if height <= 0 or width <= 0 or height * width > MAX_PIXELS:
        raise ImageDecodeError(f"invalid image size {width}x{height}")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageDecodeError(f"step {step} < width {width} x {channels} channels = {row_bytes} bytes")
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size != step * height:
        raise ImageDecodeError(
            f"data has {buffer.size} bytes, expected step {step} x height {height} = {step * height}"
        )
    rows = buffer.reshape(height, step)[:, :row_bytes]
    pixels = rows.reshape(height, width, channels)
    if encoding == "rgb8":
        return pixels
    if encoding == "rgba8":
        return pixels[:, :, :3]
    if encoding in ("bgr8", "bgra8"):
        return pixels[:, :, 2::-1]
    return np.repeat(pixels, 3, axis=2)  # mono8


def decode_compressed(data, format_hint: str = "") -> np.ndarray:
    """JPEG or PNG bytes -> [H, W, 3] uint8 RGB (grey and palette images are converted).

    ``format_hint`` is the message's ``format`` field (e.g. ``"jpeg"``, ``"rgb8; png compressed
    bgr8"``); it only improves error messages, Pillow detects the format from the bytes. A
    compressed depth stream (``compressedDepth``) is refused.

    Raises
    ------
    ImageDecodeError
        Empty or undecodable data, or a format other than JPEG/PNG.
    """
    if "compresseddepth" in format_hint.lower().replace(" ", ""):
        raise ImageDecodeError(f"compressedDepth streams are not camera images (format {format_hint!r})")
    raw = bytes(memoryview(data).cast("B")) if not isinstance(data, bytes) else data
    if not raw:
        raise ImageDecodeError("compressed image has no data")
    try:
        with PilImage.open(io.BytesIO(raw), formats=("JPEG", "PNG")) as pil:
            if pil.width * pil.height > MAX_PIXELS:
                raise ImageDecodeError(f"compressed image too large: {pil.width}x{pil.height}")
            return np.asarray(pil.convert("RGB"))
    except ImageDecodeError:
        raise
    except Exception as error:  # Pillow raises UnidentifiedImageError, OSError, SyntaxError ...
        raise ImageDecodeError(f"cannot decode compressed image (format {format_hint!r}): {error}") from error


def image_msg_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image -> [H, W, 3] uint8 RGB (see :func:`raw_to_rgb`).

    Only 8-bit encodings are accepted, so ``is_bigendian`` does not matter.
    """
    return raw_to_rgb(int(msg.height), int(msg.width), str(msg.encoding), int(msg.step), msg.data)


def compressed_msg_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage -> [H, W, 3] uint8 RGB (see :func:`decode_compressed`)."""
    return decode_compressed(msg.data, str(msg.format))


def _to_byte_array(pixels: np.ndarray) -> array.array:
    out = array.array("B")
    out.frombytes(memoryview(np.ascontiguousarray(pixels)).cast("B"))
    return out


def fill_image_msg(msg, pixels: np.ndarray, encoding: str):
    """Write ``pixels`` into the image message ``msg`` (header untouched) and return it.

    Parameters
    ----------
    pixels:
        ``32FC1``: [H, W] float32 (stored in this machine's byte order, ``is_bigendian`` set
        accordingly); ``mono8``: [H, W] uint8; ``rgb8``: [H, W, 3] uint8.
    encoding:
        ``32FC1``, ``mono8`` or ``rgb8``. Rows are unpadded (``step = width * bytes per pixel``).
    """
    expected = {"32FC1": (np.float32, 2), "mono8": (np.uint8, 2), "rgb8": (np.uint8, 3)}
    if encoding not in expected:
        raise ValueError(f"cannot encode {encoding!r}; expected one of {sorted(expected)}")
    dtype, ndim = expected[encoding]
    if pixels.dtype != dtype or pixels.ndim != ndim or (ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(
            f"{encoding} needs {np.dtype(dtype)} with {ndim} dims, got {pixels.dtype} {pixels.shape}"
        )
    height, width = pixels.shape[:2]
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = int(encoding == "32FC1" and sys.byteorder == "big")
    msg.step = width * pixels.itemsize * (3 if ndim == 3 else 1)
    msg.data = _to_byte_array(pixels)
    return msg


def image_msg_to_array(msg) -> np.ndarray:
    """Inverse of :func:`fill_image_msg` for ``32FC1``, ``mono8`` and ``rgb8`` (tests, tools).

    Returns [H, W] float32, [H, W] uint8 or [H, W, 3] uint8; honours ``step`` and ``is_bigendian``.
    """
    layouts = {
        "32FC1": (np.dtype("<f4"), 1),
        "mono8": (np.dtype(np.uint8), 1),
        "rgb8": (np.dtype(np.uint8), 3),
    }
    if msg.encoding not in layouts:
        raise ImageDecodeError(f"unsupported encoding {msg.encoding!r}")
    dtype, channels = layouts[msg.encoding]
    if msg.is_bigendian:
        dtype = dtype.newbyteorder(">")
    row_bytes = msg.width * channels * dtype.itemsize
    if msg.step < row_bytes or len(msg.data) < msg.step * msg.height:
        raise ImageDecodeError(
            f"inconsistent step {msg.step} / data {len(msg.data)} for {msg.width}x{msg.height}"
        )
    rows = np.frombuffer(msg.data, np.uint8)[: msg.step * msg.height].reshape(msg.height, msg.step)[
        :, :row_bytes
    ]
    values = np.ascontiguousarray(rows).view(dtype).astype(dtype.newbyteorder("="))
    return values.reshape((msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels))


def header_stamp_ns(msg, fallback: int = 0) -> int:
    """``header.stamp`` of a message in nanoseconds; ``fallback`` when it has none or it is zero."""
    stamp = getattr(getattr(msg, "header", None), "stamp", None)
    value = int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec) if stamp is not None else 0
    return value or int(fallback)


def image_msg_to_rgb_any(msg, msgtype: str) -> np.ndarray:
    """Image or CompressedImage message -> ``[H,W,3]`` uint8 RGB."""
    if msgtype.endswith("CompressedImage"):
        return compressed_msg_to_rgb(msg)
    return np.ascontiguousarray(image_msg_to_rgb(msg))


def depth_msg_to_metres(msg) -> np.ndarray:
    """``16UC1`` (millimetres) or ``32FC1`` (metres) Image -> ``[H,W]`` float32 metres, 0 = invalid."""
    layouts = {"16UC1": (np.dtype("<u2"), 1e-3), "mono16": (np.dtype("<u2"), 1e-3), "32FC1": (np.dtype("<f4"), 1.0)}
    if msg.encoding not in layouts:
        raise ImageDecodeError(f"depth encoding {msg.encoding!r} unsupported; expected 16UC1 (mm) or 32FC1 (m)")
    dtype, scale = layouts[msg.encoding]
    if msg.is_bigendian:
        dtype = dtype.newbyteorder(">")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    buffer = np.frombuffer(np.asarray(msg.data, dtype=np.uint8).tobytes(), dtype=np.uint8)
    if step < width * dtype.itemsize or buffer.size < step * height:
        raise ImageDecodeError(f"depth message: inconsistent step {step} / data {buffer.size} for {width}x{height}")
    rows = buffer[: step * height].reshape(height, step)[:, : width * dtype.itemsize]
    depth = np.ascontiguousarray(rows).view(dtype).reshape(height, width).astype(np.float32) * np.float32(scale)
    depth[~np.isfinite(depth) | (depth < 0)] = 0.0
    return depth
