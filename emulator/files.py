"""The Files API: resumable upload, `files.get`, `files.list`, `files.delete` and downloads.

Routes (each under `/v1beta` and `/v1`):

* `POST /upload/{ver}/files` with `X-Goog-Upload-Protocol: resumable` and `X-Goog-Upload-Command:
  start` opens an upload and answers `X-Goog-Upload-URL` (absolute; chunk requests carry no API key,
  the URL's `upload_id` authorises them). Chunks go to that URL with `X-Goog-Upload-Command: upload`
  (answer `X-Goog-Upload-Status: active`) and `upload, finalize` (`final`, body `{"file": File}`),
  each at `X-Goog-Upload-Offset`; `query` and `cancel` are served too.
* `GET /{ver}/files/{id}`, `DELETE /{ver}/files/{id}`: a bare File and `{}`; ids over 40
  characters answer 400 as the real API does for batch result files (python-genai#1613).
* `GET /{ver}/files?pageSize=&pageToken=`: `{"files": [...], "nextPageToken": "..."}`, newest first.
* `GET /{ver}/files/{id}:download?alt=media` (what the SDK calls) and
  `GET /download/{ver}/files/{id}:download?alt=media` (the docs' curl): the raw bytes of a generated file.

A missing or expired file answers 403 PERMISSION_DENIED, "You do not have permission to access the File
<id> or it may not exist." (google-gemini/deprecated-generative-ai-python#692).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from emulator.auth import check_key, fingerprint, request_key
from emulator.filestore import FileError, FileLimits, StoredFile, UploadSession
from emulator.reqlog import CallInfo
from emulator.resources import BadPageRequest, camel_keys, newest_first_page, page_query
from emulator.state import STATE_KEY, EmulatorState
from emulator.wire import error_response, json_response

#: Chunk size the upload start answer advertises (google-genai sends 8 MiB chunks).
CHUNK_GRANULARITY = 8 * 1024 * 1024
#: `files.list` page sizes (file_service.proto: default 10, at most 100).
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
#: Bytes read from a chunk body at a time (chunks are streamed, not bound by the body cap).
READ_PIECE = 1024 * 1024


def file_limits(state: EmulatorState) -> FileLimits:
    """The Files API limits now in force."""
    config = state.config
    return FileLimits(config.file_max_bytes, config.files_max_total_bytes, config.file_ttl_s, config.file_processing_s)


def _log(state: EmulatorState, key: str, method: str, response: web.StreamResponse, outcome: str) -> None:
    state.log.record(CallInfo(time.time(), "", method, fingerprint(key)), response.status, outcome)


def _outcome(status: int) -> str:
    return {200: "ok", 403: "not_found", 404: "not_found", 429: "quota_files"}.get(status, "invalid")


def _base_url(request: web.Request, version: str) -> str:
    return f"{request.url.origin()}/{version}"


def _authorized(request: web.Request, method: str) -> web.Response | None:
    state = request.app[STATE_KEY]
    key = request_key(request)
    denied = check_key(key, state.config)
    if denied is not None:
        _log(state, key, method, denied, "auth")
    return denied


async def upload(request: web.Request) -> web.StreamResponse:
    """`POST /upload/{ver}/files`: the start of an upload, or a chunk when `upload_id` is given."""
    version = request.path.split("/")[2]
    upload_id = request.query.get("upload_id")
    if upload_id is None:
        return await _start(request, version)
    return await _chunk(request, upload_id, version)


async def _start(request: web.Request, version: str) -> web.Response:
    if (denied := _authorized(request, "files.upload")) is not None:
        return denied
    state = request.app[STATE_KEY]
    key = request_key(request)
    headers = request.headers
    if headers.get("X-Goog-Upload-Protocol", "").lower() != "resumable" or _commands(request) != {"start"}:
        response = error_response(400, "The emulator serves resumable uploads only: send X-Goog-Upload-Protocol: "
                                       "resumable and X-Goog-Upload-Command: start (what google-genai sends).")
        _log(state, key, "files.upload", response, "invalid")
        return response
    try:
        meta = _file_metadata(await request.read())
        size = meta.get("sizeBytes") or headers.get("X-Goog-Upload-Header-Content-Length")
        name = meta.get("name")
        session = state.files.start_upload(
            file_id=name.removeprefix("files/") if isinstance(name, str) and name else None,
            mime_type=meta.get("mimeType") or headers.get("X-Goog-Upload-Header-Content-Type")
            or "application/octet-stream",
            display_name=meta.get("displayName"),
            size=int(size) if size not in (None, "") else None,
            limits=file_limits(state), now=time.time(),
        )
    except (FileError, ValueError) as exc:
        response = error_response(getattr(exc, "status", 400), str(exc))
        _log(state, key, "files.upload", response, _outcome(response.status))
        return response
    url = f"{request.url.origin()}/upload/{version}/files?upload_id={session.id}&upload_protocol=resumable"
    response = web.Response(status=200, headers={
        "X-Goog-Upload-URL": url,
        "X-Goog-Upload-Status": "active",
        "X-Goog-Upload-Chunk-Granularity": str(CHUNK_GRANULARITY),
        "X-GUploader-UploadID": session.id,
    })
    _log(state, key, "files.upload", response, "ok")
    return response


def _file_metadata(body: bytes) -> dict[str, Any]:
    """The `file` object of a start body, names in lowerCamelCase (the SDK sends snake_case)."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"Invalid JSON payload received. {exc}") from exc
    meta = data.get("file") if isinstance(data, dict) else None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise ValueError("Invalid JSON payload received. 'file' must be a File message.")
    return camel_keys(meta)


def _commands(request: web.Request) -> set[str]:
    raw = request.headers.get("X-Goog-Upload-Command", "")
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


async def _chunk(request: web.Request, upload_id: str, version: str) -> web.Response:
    state = request.app[STATE_KEY]
    commands = _commands(request)
    limits = file_limits(state)
    session: UploadSession | None = None
    try:
        session = state.files.session(upload_id)
        if commands == {"query"}:
            return web.Response(headers={"X-Goog-Upload-Status": "active",
                                         "X-Goog-Upload-Size-Received": str(len(session.received))})
        if commands == {"cancel"}:
            state.files.drop_session(session)
            return web.Response(headers={"X-Goog-Upload-Status": "cancelled"})
        if not commands or not commands <= {"upload", "finalize"}:
            raise FileError(400, f"Unknown X-Goog-Upload-Command: {request.headers.get('X-Goog-Upload-Command')!r}.")
        if "upload" in commands:
            offset = int(request.headers.get("X-Goog-Upload-Offset", len(session.received)))
            state.files.append(session, offset, await _read_chunk(request, session, limits), limits)
        if "finalize" not in commands:
            response = web.Response(headers={"X-Goog-Upload-Status": "active"})
            _log(state, "", "files.upload.chunk", response, "ok")
            return response
        stored = state.files.finalize(session, limits, time.time())
    except (FileError, ValueError) as exc:
        if session is not None:
            state.files.drop_session(session)
        response = error_response(getattr(exc, "status", 400), str(exc))
        response.headers["X-Goog-Upload-Status"] = "final"
        _log(state, "", "files.upload.chunk", response, _outcome(response.status))
        return response
    response = json_response({"file": stored.resource(_base_url(request, version), time.time())})
    response.headers["X-Goog-Upload-Status"] = "final"
    _log(state, "", "files.upload.chunk", response, "ok")
    return response


async def _read_chunk(request: web.Request, session: UploadSession, limits: FileLimits) -> bytes:
    """The chunk's bytes, streamed so one large chunk (the docs' curl sends the whole file) is not bound
    by the server's body cap, only by the per-file cap."""
    data = bytearray()
    async for piece in request.content.iter_chunked(READ_PIECE):
        data += piece
        if len(session.received) + len(data) > limits.max_file_bytes:
            raise FileError(400, f"File size exceeds the maximum of {limits.max_file_bytes} bytes.")
    return bytes(data)


async def get_or_download(request: web.Request) -> web.StreamResponse:
    """`GET /{ver}/files/{id}` or `GET /{ver}/files/{id}:download`."""
    file_id, _, action = request.match_info["name"].partition(":")
    if action == "download":
        return await _download(request, file_id)
    method = "files.get"
    if (denied := _authorized(request, method)) is not None:
        return denied
    state = request.app[STATE_KEY]
    now = time.time()
    try:
        if action:
            raise FileError(404, f"The requested URL {request.path} was not found on this server.")
        stored = state.files.get(file_id, now, check_length="GetFileRequest")
    except FileError as exc:
        return _fail(state, request, method, exc)
    response = json_response(stored.resource(_base_url(request, request.path.split("/")[1]), now))
    _log(state, request_key(request), method, response, "ok")
    return response


async def download(request: web.Request) -> web.StreamResponse:
    """`GET /download/{ver}/files/{id}:download?alt=media` (the REST docs' download URL)."""
    file_id, _, action = request.match_info["name"].partition(":")
    if action != "download":
        return error_response(404, f"The requested URL {request.path} was not found on this server.")
    return await _download(request, file_id)


async def _download(request: web.Request, file_id: str) -> web.StreamResponse:
    method = "files.download"
    if (denied := _authorized(request, method)) is not None:
        return denied
    state = request.app[STATE_KEY]
    try:
        if request.query.get("alt") != "media":
            raise FileError(400, "Downloads need alt=media (what google-genai sends).")
        stored = state.files.get(file_id, time.time())
        if stored.source != "GENERATED":
            raise FileError(400, "Only generated files can be downloaded; uploaded files cannot be downloaded.")
    except FileError as exc:
        return _fail(state, request, method, exc)
    response = web.Response(body=stored.data, content_type=stored.mime_type)
    _log(state, request_key(request), method, response, "ok")
    return response


async def delete_file(request: web.Request) -> web.Response:
    """`DELETE /{ver}/files/{id}` -> `{}`."""
    method = "files.delete"
    if (denied := _authorized(request, method)) is not None:
        return denied
    state = request.app[STATE_KEY]
    try:
        state.files.delete(request.match_info["name"], time.time())
    except FileError as exc:
        return _fail(state, request, method, exc)
    response = json_response({})
    _log(state, request_key(request), method, response, "ok")
    return response


async def list_files(request: web.Request) -> web.Response:
    """`GET /{ver}/files?pageSize=&pageToken=`."""
    method = "files.list"
    if (denied := _authorized(request, method)) is not None:
        return denied
    state = request.app[STATE_KEY]
    try:
        size, before = page_query(request, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    except BadPageRequest as exc:
        return _fail(state, request, method, FileError(400, str(exc)))
    now = time.time()
    chunk, token = newest_first_page(state.files.listing(now), _seq, size, before)
    base = _base_url(request, request.path.split("/")[1])
    body: dict[str, Any] = {"files": [f.resource(base, now) for f in chunk]} if chunk else {}
    if token:
        body["nextPageToken"] = token
    response = json_response(body)
    _log(state, request_key(request), method, response, "ok")
    return response


def _seq(stored: StoredFile) -> int:
    return stored.seq


def _fail(state: EmulatorState, request: web.Request, method: str, exc: FileError) -> web.Response:
    response = error_response(exc.status, str(exc))
    _log(state, request_key(request), method, response, _outcome(exc.status))
    return response


def add_file_routes(app: web.Application, versions: Sequence[str]) -> None:
    """Register the Files API routes for each API version."""
    for version in versions:
        app.router.add_post(f"/upload/{version}/files", upload)
        app.router.add_get(f"/{version}/files", list_files)
        app.router.add_get(f"/{version}/files/{{name}}", get_or_download)
        app.router.add_delete(f"/{version}/files/{{name}}", delete_file)
        app.router.add_get(f"/download/{version}/files/{{name}}", download)
