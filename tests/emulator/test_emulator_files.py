"""The Files API through the real google-genai SDK: resumable upload, get, list, delete, download, limits."""

from __future__ import annotations

import base64
import hashlib
import io
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from google import genai
from google.genai import errors, types

#: The key the conftest clients send.
TEST_KEY = "test-key"
JSONL = b'{"key": "a", "request": {"contents": [{"parts": [{"text": "hello"}]}]}}\n'


def upload(client: genai.Client, data: bytes = JSONL, **config: object) -> types.File:
    """Upload bytes as a file (JSONL unless told otherwise)."""
    return client.files.upload(file=io.BytesIO(data), config={"mime_type": "jsonl", **config})


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_upload_returns_an_active_file_with_its_metadata(make_client: Callable[..., genai.Client], version) -> None:
    client = make_client(api_version=version)

    stored = upload(client, display_name="requests")

    assert stored.name.startswith("files/") and len(stored.name) == len("files/") + 12
    assert (stored.display_name, stored.mime_type, stored.size_bytes) == ("requests", "jsonl", len(JSONL))
    assert stored.state == types.FileState.ACTIVE and stored.source == types.FileSource.UPLOADED
    assert stored.sha256_hash == base64.b64encode(hashlib.sha256(JSONL).digest()).decode()
    assert stored.expiration_time - stored.create_time == timedelta(hours=48)
    assert stored.uri.endswith(f"/{version}/{stored.name}")
    assert client.files.get(name=stored.name) == stored


def test_upload_from_a_path_in_several_chunks(client: genai.Client, tmp_path: Path) -> None:
    # Given a file larger than the SDK's 8 MiB chunk
    data = bytes(range(256)) * (9 * 4096)
    path = tmp_path / "big.bin"
    path.write_bytes(data)

    stored = client.files.upload(file=path, config={"mime_type": "application/octet-stream"})

    assert stored.size_bytes == len(data)
    assert stored.sha256_hash == base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_the_upload_protocol_on_the_wire(emulator) -> None:
    # When the start call names a size and the chunks go to the URL it answers, without the key
    start = emulator.admin.post(
        "/upload/v1beta/files",
        headers={"x-goog-api-key": TEST_KEY, "X-Goog-Upload-Protocol": "resumable",
                 "X-Goog-Upload-Command": "start", "X-Goog-Upload-Header-Content-Length": "6",
                 "X-Goog-Upload-Header-Content-Type": "text/plain"},
        json={"file": {"display_name": "raw"}},
    )
    url = start.headers["X-Goog-Upload-URL"]
    first = emulator.admin.post(url, headers={"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "0"},
                                content=b"abc")
    wrong = emulator.admin.post(url, headers={"X-Goog-Upload-Command": "query"})
    last = emulator.admin.post(url, headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "3"},
                               content=b"def")

    # Then each answer carries the status the SDK reads, and the last one the File
    assert start.status_code == 200 and url.startswith(emulator.url + "/upload/v1beta/files?upload_id=")
    assert first.headers["X-Goog-Upload-Status"] == "active"
    assert wrong.headers["X-Goog-Upload-Size-Received"] == "3"
    assert last.headers["X-Goog-Upload-Status"] == "final"
    assert last.json()["file"]["sizeBytes"] == "6" and last.json()["file"]["mimeType"] == "text/plain"


def test_a_chunk_at_the_wrong_offset_ends_the_upload(emulator) -> None:
    start = emulator.admin.post(
        "/upload/v1/files",
        headers={"x-goog-api-key": TEST_KEY, "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"},
    )
    url = start.headers["X-Goog-Upload-URL"]

    bad = emulator.admin.post(url, headers={"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "5"},
                              content=b"x")

    assert bad.status_code == 400 and bad.headers["X-Goog-Upload-Status"] == "final"
    assert emulator.admin.post(url, headers={"X-Goog-Upload-Command": "query"}).status_code == 404


def test_start_needs_the_api_key(emulator) -> None:
    response = emulator.admin.post("/upload/v1beta/files",
                                   headers={"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"})

    assert response.status_code == 403


def test_list_pages_newest_first(client: genai.Client) -> None:
    names = [upload(client, display_name=f"f{i}").name for i in range(5)]

    pager = client.files.list(config={"page_size": 2})
    first_page = [f.name for f in pager.page]
    listed = [f.name for f in client.files.list(config={"page_size": 2})]

    assert first_page == names[::-1][:2]
    assert listed == names[::-1]


def test_delete_then_get_is_403_as_for_a_missing_file(client: genai.Client) -> None:
    stored = upload(client)

    client.files.delete(name=stored.name)

    with pytest.raises(errors.ClientError) as caught:
        client.files.get(name=stored.name)
    assert (caught.value.code, caught.value.status) == (403, "PERMISSION_DENIED")
    assert caught.value.message == (
        f"You do not have permission to access the File {stored.name.removeprefix('files/')} or it may not exist."
    )
    assert list(client.files.list()) == []


def test_an_uploaded_file_cannot_be_downloaded(client: genai.Client) -> None:
    stored = upload(client)

    with pytest.raises(errors.ClientError) as caught:
        client.files.download(file=stored.name)
    assert caught.value.code == 400


def test_get_refuses_ids_over_40_characters(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.files.get(name="files/batch-" + "a" * 36)

    assert caught.value.code == 400
    assert "cannot be more than 40 characters" in caught.value.message


def test_a_file_past_its_ttl_is_gone(emulator, client: genai.Client) -> None:
    emulator.configure(file_ttl_s=0.3)
    stored = upload(client)

    time.sleep(0.4)

    with pytest.raises(errors.ClientError) as caught:
        client.files.get(name=stored.name)
    assert caught.value.code == 403


def test_a_file_is_processing_then_active(emulator, client: genai.Client) -> None:
    emulator.configure(file_processing_s=0.3)

    stored = upload(client)
    time.sleep(0.4)

    assert stored.state == types.FileState.PROCESSING
    assert client.files.get(name=stored.name).state == types.FileState.ACTIVE


def test_per_file_and_total_caps(emulator, client: genai.Client) -> None:
    emulator.configure(file_max_bytes=100, files_max_total_bytes=150)
    upload(client, b"x" * 100)

    with pytest.raises(errors.ClientError) as too_big:
        upload(client, b"x" * 101)
    with pytest.raises(errors.ClientError) as too_much:
        upload(client, b"x" * 60)

    assert too_big.value.code == 400
    assert (too_much.value.code, too_much.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert [e["outcome"] for e in emulator.requests() if e["method"] == "files.upload"] == ["ok", "invalid",
                                                                                             "quota_files"]


def test_a_chosen_name_is_kept_and_a_taken_one_refused(client: genai.Client) -> None:
    stored = upload(client, name="my-input-1")

    with pytest.raises(errors.ClientError) as caught:
        upload(client, name="my-input-1")

    assert stored.name == "files/my-input-1"
    assert caught.value.code == 409


def test_reset_clears_files(emulator, client: genai.Client) -> None:
    upload(client)

    emulator.admin.post("/_emulator/reset").raise_for_status()

    assert list(client.files.list()) == []
    assert emulator.admin.get("/_emulator/files").json() == []


def test_file_calls_are_logged_without_content(emulator, client: genai.Client) -> None:
    stored = upload(client)
    client.files.get(name=stored.name)
    client.files.delete(name=stored.name)

    methods = [(e["method"], e["status"]) for e in emulator.requests()]

    assert methods == [("files.upload", 200), ("files.upload.chunk", 200), ("files.get", 200), ("files.delete", 200)]
    assert "hello" not in emulator.admin.get("/_emulator/requests").text
