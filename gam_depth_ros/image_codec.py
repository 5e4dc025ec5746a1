"""sensor_msgs Image / CompressedImage <-> numpy, without cv_bridge.

The numpy logic (:func:`raw_to_rgb`, :func:`decode_compressed`) takes plain values so it can be
tested without ROS; the ``*_msg`` helpers only move fields in and out of message objects (any
object with the fields of ``sensor_msgs/Image``, so tests may pass stand-ins).

Every problem with an incoming message raises :class:`ImageDecodeError` (a ``ValueError``) with a
message saying what is wrong, so that the node can log and drop the frame.
"""

from __future__ import annotations

import array
import struct
import sys

import cv2
import numpy as np

#: Input encodings the node accepts -> (bytes per pixel, OpenCV conversion to RGB or None for none).
#: The Bayer names follow OpenCV's convention, which names the pattern by the second row's second and
#: third pixels: ROS ``bayer_rggb8`` is OpenCV's ``BayerBG`` (as cv_bridge maps it). ROS ``yuv422`` is
#: UYVY byte order, ``yuv422_yuy2`` is YUYV.
INPUT_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "rgba8": (4, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "bayer_rggb8": (1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": (1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": (1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": (1, cv2.COLOR_BayerGB2RGB),
    "yuv422": (2, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": (2, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": (2, cv2.COLOR_YUV2RGB_YUYV),
    "yuyv": (2, cv2.COLOR_YUV2RGB_YUYV),
}
#: Upper bound on pixels of one decoded frame (about 16k x 16k) against absurd headers.
MAX_PIXELS = 1 << 28
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): the segment with the size.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageDecodeError(ValueError):
    """An incoming image message cannot be decoded; the message says why."""


def raw_to_rgb(height: int, width: int, encoding: str, step: int, data) -> np.ndarray:
    """Raw 8-bit image bytes -> [H, W, 3] uint8 RGB.

    Parameters
    ----------
    height, width:
        Image size in pixels.
    encoding:
        One of :data:`INPUT_ENCODINGS`: ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``, the
        four 8-bit Bayer patterns (demosaiced by OpenCV, bilinear), ``yuv422`` / ``uyvy`` and
        ``yuv422_yuy2`` / ``yuyv`` (even width).
    step:
        Bytes per row, at least ``width * bytes per pixel``; extra bytes at the end of each row
        (padding) are ignored.
    data:
        Any buffer (bytes, ``array.array('B')``, numpy) of exactly ``step * height`` bytes, as
        sensor_msgs/Image requires (another length means a wrong step or size: refused).

    Returns
    -------
    np.ndarray
        [H, W, 3] uint8 RGB: a view of ``data`` for ``rgb8`` and ``rgba8``, a new array otherwise.

    Raises
    ------
    ImageDecodeError
        Unsupported encoding, non-positive or absurd size, ``step`` too small, data of another
        length, an odd width for YUV 4:2:2, a Bayer image smaller than 2x2.
    """
    layout = INPUT_ENCODINGS.get(encoding)
    if layout is None:
        raise ImageDecodeError(f"unsupported encoding {encoding!r}; expected one of {sorted(INPUT_ENCODINGS)}")
    channels, conversion = layout
    if height <= 0 or width <= 0 or height * width > MAX_PIXELS:
        raise ImageDecodeError(f"invalid image size {width}x{height}")
    if channels == 2 and width % 2:
        raise ImageDecodeError(f"{encoding} needs an even width (two pixels share U and V), got {width}")
    if encoding.startswith("bayer") and (height < 2 or width < 2):
        raise ImageDecodeError(f"{encoding} needs at least 2x2 pixels, got {width}x{height}")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageDecodeError(f"step {step} < width {width} x {channels} bytes per pixel = {row_bytes} bytes")
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size != step * height:
        raise ImageDecodeError(
            f"data has {buffer.size} bytes, expected step {step} x height {height} = {step * height}"
        )
    pixels = buffer.reshape(height, step)[:, :row_bytes].reshape(height, width, channels)
    if conversion is None:
        return pixels[:, :, :3]  # rgb8 as is, rgba8 without alpha: views
    source = pixels[:, :, 0] if channels == 1 else pixels
    return cv2.cvtColor(np.ascontiguousarray(source), conversion)


def compressed_size(raw: bytes) -> tuple[str, int, int]:
    """(format, width, height) read from a JPEG or PNG header without decoding the pixels.

    Raises
    ------
    ImageDecodeError
        Neither a PNG nor a JPEG signature, or a header that ends before the image size.
    """
    if raw.startswith(_PNG_SIGNATURE):
        if len(raw) < 24 or raw[12:16] != b"IHDR":
            raise ImageDecodeError("PNG without an IHDR header")
        width, height = struct.unpack(">II", raw[16:24])
        return "png", width, height
    if not raw.startswith(b"\xff\xd8"):
        raise ImageDecodeError(f"neither JPEG nor PNG data (starts with {raw[:8].hex()})")
    position = 2
    while position + 4 <= len(raw):
        if raw[position] != 0xFF:
            raise ImageDecodeError(f"corrupt JPEG header at byte {position}")
        marker = raw[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a segment
            position += 2
            continue
        (length,) = struct.unpack(">H", raw[position + 2:position + 4])
        if marker in _JPEG_SOF:
            if position + 9 > len(raw):
                break
            height, width = struct.unpack(">HH", raw[position + 5:position + 9])
            return "jpeg", width, height
        if marker == 0xDA or length < 2:  # scan data before any frame header
            break
        position += 2 + length
    raise ImageDecodeError("JPEG header ends before the image size (truncated or corrupt)")


def decode_compressed(data, format_hint: str = "") -> np.ndarray:
    """JPEG or PNG bytes -> [H, W, 3] uint8 RGB (grey, palette and 16-bit images are converted).

    ``format_hint`` is the message's ``format`` field (e.g. ``"jpeg"``, ``"rgb8; png compressed
    bgr8"``); it only improves error messages, the format is detected from the bytes. The image size
    is read from the header and checked before any pixel is decoded (decompression bombs); a JPEG
    must end with its end-of-image marker (libjpeg would fill a truncated one with grey). EXIF
    orientation is ignored: a camera frame is published the way the sensor sees it. A compressed
    depth stream (``compressedDepth``) is refused.

    Raises
    ------
    ImageDecodeError
        Empty, truncated or undecodable data, or a format other than JPEG/PNG.
    """
    if "compresseddepth" in format_hint.lower().replace(" ", ""):
        raise ImageDecodeError(f"compressedDepth streams are not camera images (format {format_hint!r})")
    raw = bytes(memoryview(data).cast("B")) if not isinstance(data, bytes) else data
    if not raw:
        raise ImageDecodeError("compressed image has no data")
    try:
        kind, width, height = compressed_size(raw)
    except ImageDecodeError as error:
        raise ImageDecodeError(f"cannot decode compressed image (format {format_hint!r}): {error}") from error
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise ImageDecodeError(f"compressed image too large or empty: {width}x{height}")
    if kind == "jpeg" and not raw.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise ImageDecodeError(f"truncated JPEG (no end-of-image marker; format {format_hint!r})")
    bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None or bgr.shape[:2] != (height, width):
        raise ImageDecodeError(f"cannot decode compressed {kind} image (format {format_hint!r}): corrupt data")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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
