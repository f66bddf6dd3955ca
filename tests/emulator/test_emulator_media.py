"""Media parts: per-kind token counts (inline and file), bad base64, the inline request limit, media in TPM."""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib

import pytest
from google import genai
from google.genai import errors, types

G3 = "gemini-3.5-flash"
G25 = "gemini-2.5-flash-lite"
KEY = {"x-goog-api-key": "k"}


def png(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk: all the emulator reads."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def wav(seconds: float, rate: int = 8000) -> bytes:
    data = b"\x00\x00" * int(rate * seconds)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(data))
    return header + data


PDF = b"%PDF-1.4\n" + b"".join(b"%d 0 obj << /Type /Page >> endobj\n" % i for i in range(3)) + b"<< /Type /Pages >>"


def _details(usage: types.GenerateContentResponseUsageMetadata) -> dict[str, int]:
    return {d.modality.value: d.token_count for d in usage.prompt_tokens_details}


def _ask(client: genai.Client, model: str, part: types.Part, config: types.GenerateContentConfig | None = None):
    return client.models.generate_content(model=model, contents=[part, "describe it"], config=config)


def test_a_gemini_3_image_is_1120_tokens_by_default_and_counted_by_modality(client: genai.Client) -> None:
    part = types.Part.from_bytes(data=png(64, 64), mime_type="image/png")

    response = _ask(client, G3, part)
    counted = client.models.count_tokens(model=G3, contents=[part, "describe it"])

    # "describe it": 2 words + 3 for the turn.
    assert _details(response.usage_metadata) == {"TEXT": 5, "IMAGE": 1120}
    assert response.usage_metadata.prompt_token_count == 1125 == counted.total_tokens


def test_media_resolution_sets_gemini_3_image_tokens_globally_and_per_part(client: genai.Client) -> None:
    low = types.GenerateContentConfig(media_resolution="MEDIA_RESOLUTION_LOW")
    part = types.Part.from_bytes(data=png(64, 64), mime_type="image/png")
    ultra = types.Part(inline_data=part.inline_data,
                       media_resolution=types.PartMediaResolution(level="MEDIA_RESOLUTION_ULTRA_HIGH"))

    assert _details(_ask(client, G3, part, low).usage_metadata)["IMAGE"] == 280
    assert _details(_ask(client, G3, ultra, low).usage_metadata)["IMAGE"] == 2240


@pytest.mark.parametrize(("size", "tokens"), [((300, 384), 258), ((1000, 800), 4 * 258), ((2000, 700), 3 * 258)])
def test_older_models_count_258_per_768_pixel_tile(client: genai.Client, size: tuple[int, int], tokens: int) -> None:
    part = types.Part.from_bytes(data=png(*size), mime_type="image/png")

    assert _details(_ask(client, G25, part).usage_metadata)["IMAGE"] == tokens


def test_a_pdf_counts_per_page(client: genai.Client) -> None:
    part = types.Part.from_bytes(data=PDF, mime_type="application/pdf")

    assert _details(_ask(client, G3, part).usage_metadata)["DOCUMENT"] == 3 * 560
    assert _details(_ask(client, G25, part).usage_metadata)["DOCUMENT"] == 3 * 258


def test_audio_is_32_tokens_a_second(client: genai.Client) -> None:
    part = types.Part.from_bytes(data=wav(2.5), mime_type="audio/wav")

    assert _details(_ask(client, G3, part).usage_metadata)["AUDIO"] == 80


def test_video_by_file_uri_counts_its_offsets(client: genai.Client) -> None:
    part = types.Part(file_data=types.FileData(file_uri="gs://bucket/clip.mp4", mime_type="video/mp4"),
                      video_metadata=types.VideoMetadata(start_offset="5s", end_offset="15s"))

    assert _details(_ask(client, G3, part).usage_metadata)["VIDEO"] == 10 * (70 + 32)
    assert _details(_ask(client, G25, part).usage_metadata)["VIDEO"] == 10 * 263


@pytest.mark.parametrize("uri", ["https://generativelanguage.googleapis.com/v1beta/files/abc123",
                                 "https://example.com/signed/image.png?X-Amz-Signature=1", "gs://bucket/image.png"])
def test_file_data_uris_of_every_kind_are_taken(client: genai.Client, uri: str) -> None:
    part = types.Part.from_uri(file_uri=uri, mime_type="image/png")

    response = _ask(client, G3, part)

    assert response.text and _details(response.usage_metadata)["IMAGE"] == 1120


def test_bad_base64_is_400_naming_the_field(emulator) -> None:
    body = {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "not base64!"}}]}]}

    response = emulator.admin.post(f"/v1beta/models/{G3}:generateContent", json=body, headers=KEY)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), "
        'Base64 decoding failed for "not base64!"')


def test_a_body_over_the_inline_limit_is_refused_as_the_api_does(emulator, client: genai.Client) -> None:
    emulator.configure(max_request_bytes=4096)
    part = types.Part.from_bytes(data=b"\x00" * 4096, mime_type="image/png")

    with pytest.raises(errors.ClientError) as caught:
        _ask(client, G3, part)

    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert caught.value.message == "Request payload size exceeds the limit: 4096 bytes."
    assert emulator.requests()[-1]["outcome"] == "too_large"


def test_the_default_inline_limit_is_100_mb(emulator) -> None:
    assert emulator.admin.get("/_emulator/config").json()["max_request_bytes"] == 100 * 1024 * 1024


def test_media_tokens_count_toward_tpm(emulator, client: genai.Client) -> None:
    emulator.configure(tpm=2 * 1125 + 10)
    part = types.Part.from_bytes(data=png(64, 64), mime_type="image/png")

    _ask(client, G3, part)
    _ask(client, G3, part)
    with pytest.raises(errors.ClientError) as caught:
        _ask(client, G3, part)

    assert caught.value.code == 429
    assert emulator.admin.get("/_emulator/quota").json()[G3]["tpm"] == 2 * 1125


def test_logged_bodies_replace_inline_bytes_by_length_and_sha256(emulator, client: genai.Client) -> None:
    data = png(10, 10)
    _ask(client, G3, types.Part.from_bytes(data=data, mime_type="image/png"))

    entry = emulator.requests(bodies=1)[-1]
    blob = entry["body"]["contents"][0]["parts"][0]["inlineData"]

    assert blob["data"] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert blob["mime_type"] == "image/png"
    assert base64.b64encode(data).decode() not in str(entry)
