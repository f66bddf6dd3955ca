"""Media parts: base64 checks and the token count of each inline or file part, by modality.

Figures (ai.google.dev/gemini-api/docs/media-resolution#token-counts, copy dated 2025-12-05, and
docs/tokens; re-read 2026-12):

* Gemini 3 models, per `mediaResolution` (the part's own level wins over generationConfig's):
  image 1120 by default (LOW 280, MEDIUM 560, HIGH 1120, ULTRA_HIGH 2240); PDF 560 per page by
  default (LOW 280, MEDIUM 560, HIGH 1120); video 70 per frame at 1 frame/s (HIGH 280) plus the
  audio track at 32 tokens/s.
* Older models: an image whose sides are both <= 384 px is 258 tokens, a larger one 258 per
  768x768 tile (LOW: 64); video 263 tokens/s; PDF 258 per page.
* Audio: 32 tokens per second for every model.

What the emulator cannot know it derives from the bytes, deterministically: PNG, GIF and JPEG
sizes from their headers; PDF pages from `/Type /Page` objects; WAV length from its header; other
audio at 16,000 bytes/s (128 kbit/s) and video at 250,000 bytes/s (2 Mbit/s). A `fileData` part has
no bytes unless a file lookup knows the URI (the Files API module may install one): it counts as one
image, one page, or `NOMINAL_SECONDS` of audio or video (or its `videoMetadata` offsets).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

#: (mime type, bytes) of a file URI, or None when unknown.
FileLookup = Callable[[str], "tuple[str, bytes] | None"]

GEMINI3_IMAGE = {"MEDIA_RESOLUTION_LOW": 280, "MEDIA_RESOLUTION_MEDIUM": 560, "MEDIA_RESOLUTION_HIGH": 1120,
                 "MEDIA_RESOLUTION_ULTRA_HIGH": 2240}
GEMINI3_IMAGE_DEFAULT = 1120
GEMINI3_PDF_PAGE = {"MEDIA_RESOLUTION_LOW": 280, "MEDIA_RESOLUTION_MEDIUM": 560, "MEDIA_RESOLUTION_HIGH": 1120}
GEMINI3_PDF_DEFAULT = 560
GEMINI3_VIDEO_FRAME = {"MEDIA_RESOLUTION_HIGH": 280}
GEMINI3_VIDEO_FRAME_DEFAULT = 70
TILE_TOKENS = 258
SMALL_IMAGE_SIDE = 384
TILE_SIDE = 768
LOW_IMAGE_TOKENS = 64
VIDEO_TOKENS_PER_S = 263
AUDIO_TOKENS_PER_S = 32
AUDIO_BYTES_PER_S = 16_000
VIDEO_BYTES_PER_S = 250_000
NOMINAL_SECONDS = 60
MEDIA_RESOLUTIONS = frozenset({"MEDIA_RESOLUTION_UNSPECIFIED", *GEMINI3_IMAGE})
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_OFFSET = re.compile(r"^(\d+(?:\.\d+)?)s$")


@dataclass(frozen=True)
class Media:
    """One media part: its modality (as `promptTokensDetails` names it) and token count."""

    modality: str
    tokens: int


def decode_base64(value: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional (as the proto JSON parser takes bytes); None if bad."""
    text = value.translate(str.maketrans("-_", "+/"))
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def modality_of(mime: str) -> str:
    """IMAGE, AUDIO, VIDEO, DOCUMENT (PDF) or TEXT."""
    kind = mime.split("/", 1)[0].lower()
    if mime.lower() == "application/pdf":
        return "DOCUMENT"
    return {"image": "IMAGE", "audio": "AUDIO", "video": "VIDEO"}.get(kind, "TEXT")


def count(mime: str, data: bytes | None, *, gemini3: bool, resolution: str | None,
          seconds: float | None = None) -> Media:
    """Tokens of one media part; `data` None means bytes unknown (a file URI); `seconds` from videoMetadata."""
    modality = modality_of(mime)
    if modality == "IMAGE":
        return Media(modality, _image(data, gemini3, resolution))
    if modality == "DOCUMENT":
        pages = max(1, len(_PAGE.findall(data))) if data else 1
        per_page = GEMINI3_PDF_PAGE.get(resolution or "", GEMINI3_PDF_DEFAULT) if gemini3 else TILE_TOKENS
        return Media(modality, pages * per_page)
    if modality == "AUDIO":
        duration = seconds if seconds is not None else _audio_seconds(mime, data)
        return Media(modality, math.ceil(duration * AUDIO_TOKENS_PER_S))
    if modality == "VIDEO":
        duration = seconds if seconds is not None else (len(data) / VIDEO_BYTES_PER_S if data else NOMINAL_SECONDS)
        frame = GEMINI3_VIDEO_FRAME.get(resolution or "", GEMINI3_VIDEO_FRAME_DEFAULT)
        per_second = frame + AUDIO_TOKENS_PER_S if gemini3 else VIDEO_TOKENS_PER_S
        return Media(modality, math.ceil(max(duration, 1.0) * per_second))
    text = data.decode("utf-8", "replace") if data else ""
    return Media("TEXT", len(text.split()) if data else TILE_TOKENS)


def video_seconds(metadata: object) -> float | None:
    """Seconds between `videoMetadata.startOffset` and `endOffset` ("12.5s" durations), when both are given."""
    if not isinstance(metadata, dict):
        return None
    start = _OFFSET.match(str(metadata.get("startOffset", metadata.get("start_offset", "0s"))))
    end = _OFFSET.match(str(metadata.get("endOffset", metadata.get("end_offset", ""))))
    if not start or not end:
        return None
    return max(0.0, float(end.group(1)) - float(start.group(1)))


def _image(data: bytes | None, gemini3: bool, resolution: str | None) -> int:
    if gemini3:
        return GEMINI3_IMAGE.get(resolution or "", GEMINI3_IMAGE_DEFAULT)
    if resolution == "MEDIA_RESOLUTION_LOW":
        return LOW_IMAGE_TOKENS
    size = image_size(data) if data else None
    if size is None:
        return TILE_TOKENS
    width, height = size
    if width <= SMALL_IMAGE_SIDE and height <= SMALL_IMAGE_SIDE:
        return TILE_TOKENS
    return math.ceil(width / TILE_SIDE) * math.ceil(height / TILE_SIDE) * TILE_TOKENS


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF or JPEG header; None for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return int(width), int(height)
        i += 2 + length
    return None


def _audio_seconds(mime: str, data: bytes | None) -> float:
    if data is None:
        return NOMINAL_SECONDS
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE" and len(data) >= 44:
        byte_rate = int.from_bytes(data[28:32], "little")
        if byte_rate:
            return (len(data) - 44) / byte_rate
    return len(data) / AUDIO_BYTES_PER_S
