"""Batch Mode: `models.batchGenerateContent`, `batches.get`, `.list`, `.cancel` and `.delete`.

Routes (each under `/v1beta` and `/v1`):

* `POST /{ver}/models/{model}:batchGenerateContent` with `{"batch": {"displayName", "inputConfig":
  {"requests": {"requests": [{"request", "metadata"}]}} | {"fileName": "files/..."}, "priority"}}` (names
  in lowerCamelCase or snake_case) -> the Operation `batches/<id>`, BATCH_STATE_PENDING. Not
  idempotent: the same body twice makes two jobs, as on the real API.
* `GET /{ver}/batches/{id}` -> the Operation; `GET /{ver}/batches?pageSize=&pageToken=` ->
  `{"operations": [...], "nextPageToken"}` newest first, without inline results (as the real list);
  `POST /{ver}/batches/{id}:cancel` -> `{}`; `DELETE /{ver}/batches/{id}` -> `{}`.

Create is refused with 400 for a body over `batch_inline_max_bytes` (20 MiB), a name the API does not
have, or an input file that is not ACTIVE; with 403 for an unknown input file; with 429
RESOURCE_EXHAUSTED (the quota message and a `google.rpc.Help` link, as captured from the real API in
langchain4j/langchain4j#3942) past `batch_max_concurrent` active jobs or `batch_enqueued_tokens`
prompt tokens enqueued for the model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from emulator.auth import check_key, fingerprint, request_key
from emulator.batchlines import (
    BATCH_FIELDS,
    INPUT_CONFIG_FIELDS,
    CreateRefused,
    answer_line,
    check_names,
    file_lines,
    inline_lines,
    line_validator,
)
from emulator.batchstore import BATCH_ID_LENGTH, Batch, LineRunner, Timeline
from emulator.filestore import FileError
from emulator.models import not_found
from emulator.reqlog import CallInfo
from emulator.request import InvalidRequest, load_json_object
from emulator.resources import BadPageRequest, camel_keys, new_id, newest_first_page, page_query
from emulator.state import STATE_KEY, EmulatorState
from emulator.textgen import bare_model, find_tag
from emulator.wire import QUOTA_HELP, error_body, error_response, json_response

#: `batches.list` page sizes (not documented; the same as `models.list` here).
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: The 429 message of a refused batch create, as the real API sends it.
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: "
    "https://ai.dev/rate-limit. "
)


def runner(state: EmulatorState) -> LineRunner:
    """What answers a batch's lines in this app."""
    return lambda batch, line: answer_line(state, batch.model, line, batch.key_fingerprint)


def _call(request: web.Request, model: str, method: str, tag: str | None = None) -> CallInfo:
    return CallInfo(time.time(), model, method, fingerprint(request_key(request)), tag,
                    api_version=request.path.split("/")[1])


def _refused(state: EmulatorState, call: CallInfo, exc: CreateRefused, outcome: str, tokens: int = 0) -> web.Response:
    if exc.status == 429:
        response = json_response(error_body(429, str(exc), [QUOTA_HELP]), 429)
    else:
        response = error_response(exc.status, str(exc), exc.details)
    state.log.record(call, response.status, outcome, prompt_tokens=tokens)
    return response


async def create(request: web.Request) -> web.Response:
    """`POST /{ver}/models/{model}:batchGenerateContent`."""
    state = request.app[STATE_KEY]
    config = state.config
    model = bare_model(request.match_info["model"])
    call = _call(request, model, "batches.create")
    if (denied := check_key(request_key(request), config)) is not None:
        state.log.record(call, denied.status, "auth")
        return denied
    if not config.served(model):
        response = not_found(model, request.path.split("/")[1], "batchGenerateContent")
        state.log.record(call, response.status, "not_found")
        return response
    body = await request.read()
    try:
        if len(body) > config.batch_inline_max_bytes:
            raise CreateRefused(400, f"Request payload size exceeds the limit: {config.batch_inline_max_bytes} bytes.")
        batch = _new_batch(state, model, request.path.split("/")[1], body, call.key_fingerprint)
    except CreateRefused as exc:
        return _refused(state, call, exc, "not_found" if exc.status in (403, 404) else "invalid")
    call.tag = next((tag for line in batch.lines if line.parsed and (tag := find_tag(line.parsed.prompt_text))), None)
    tokens = sum(line.prompt_tokens for line in batch.lines)
    if (over := _over_cap(state, batch, tokens)) is not None:
        return _refused(state, call, CreateRefused(429, QUOTA_MESSAGE), over, tokens)
    state.batches.add(batch)
    state.log.record(call, 200, "ok", prompt_tokens=tokens)
    return _operation_response(batch)


def _new_batch(state: EmulatorState, model: str, version: str, body: bytes, key_fingerprint: str | None) -> Batch:
    """The job a create body describes (CreateRefused for a body the API refuses)."""
    spec, source = _batch_spec(body)
    now = time.time()
    input_file = source.get("fileName")
    validate = line_validator(state, model, version)
    if input_file is None:
        lines = inline_lines(source["requests"], validate)
    else:
        lines = file_lines(_input_file(state, input_file, now), validate)
    if not lines:
        raise CreateRefused(400, "* GenerateContentBatch.input_config: the batch has no requests.")
    config = state.config
    run_at = now + config.batch_pending_s
    until = run_at + config.batch_running_s if config.batch_outcome != "stall" else float("inf")
    return Batch(
        id=new_id(BATCH_ID_LENGTH), model=model, lines=lines, outcome=config.batch_outcome, create_time=now,
        timeline=Timeline(run_at, run_at, until, now + config.batch_expire_s),
        key_fingerprint=key_fingerprint, display_name=spec.get("displayName"), input_file=input_file,
        priority=_priority(spec.get("priority", 0)), update_time=now,
    )


def _batch_spec(body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `batch` message and its `inputConfig` (names in lowerCamelCase), checked as the API's parser does."""
    try:
        data = load_json_object(body)
    except InvalidRequest as exc:
        raise CreateRefused(400, str(exc)) from exc
    check_names(data, frozenset({"batch"}), "")
    spec = data.get("batch")
    if not isinstance(spec, dict):
        raise CreateRefused(400, "* BatchGenerateContentRequest.batch: batch is required.")
    check_names(spec, BATCH_FIELDS, "batch")
    spec = camel_keys(spec)
    source = spec.get("inputConfig")
    if not isinstance(source, dict):
        raise CreateRefused(400, "* GenerateContentBatch.input_config: input_config is required.")
    check_names(source, INPUT_CONFIG_FIELDS, "batch.input_config")
    source = camel_keys(source)
    if ("fileName" in source) == ("requests" in source):
        raise CreateRefused(400, "* GenerateContentBatch.input_config: exactly one of file_name or requests "
                                 "must be set.")
    return spec, source


def _input_file(state: EmulatorState, name: Any, now: float) -> bytes:
    if not isinstance(name, str) or not name.startswith("files/"):
        raise CreateRefused(400, f"* GenerateContentBatch.input_config.file_name: {name!r} is not a file name "
                                 "(files/<id>).")
    try:
        stored = state.files.get(name.removeprefix("files/"), now)
    except FileError as exc:
        raise CreateRefused(exc.status, str(exc)) from exc
    if now < stored.active_at:
        raise CreateRefused(400, f"File {name} is not ACTIVE yet: it is still PROCESSING.")
    return stored.data


def _priority(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise CreateRefused(400, f"Invalid value at 'batch.priority' (TYPE_INT64), {value!r}") from exc


def _over_cap(state: EmulatorState, batch: Batch, tokens: int) -> str | None:
    """The log outcome of a job past the concurrency cap or the model's enqueued-token cap; None if within."""
    config = state.config
    active = state.batches.active(time.time(), runner(state))
    if config.batch_max_concurrent and len(active) >= config.batch_max_concurrent:
        return "quota_batches"
    enqueued = sum(line.prompt_tokens for job in active if job.model == batch.model for line in job.lines)
    if config.batch_enqueued_tokens and enqueued + tokens > config.batch_enqueued_tokens:
        return "quota_enqueued_tokens"
    return None


def _find(request: web.Request, method: str) -> Batch | web.Response:
    """The job the path names, brought up to now, or the response to send instead (logged either way)."""
    state = request.app[STATE_KEY]
    call = _call(request, "", method)
    if (denied := check_key(request_key(request), state.config)) is not None:
        state.log.record(call, denied.status, "auth")
        return denied
    batch = state.batches.get(request.match_info["id"])
    if batch is None:
        state.log.record(call, 404, "not_found")
        return error_response(404)
    call.model = batch.model
    state.log.record(call, 200, "ok")
    # Logged first: the lines this read completes are logged after the call that completed them.
    batch.advance(time.time(), runner(state), state.files)
    return batch


async def get_batch(request: web.Request) -> web.Response:
    """`GET /{ver}/batches/{id}`."""
    found = _find(request, "batches.get")
    return _operation_response(found) if isinstance(found, Batch) else found


def _operation_response(batch: Batch) -> web.Response:
    """The Operation; one with inline results (tens of MB for 10,000 lines) is sent compact, as json's
    pretty printer is pure Python and takes seconds on it."""
    has_inline = bool(batch.output and "inlinedResponses" in batch.output)
    return json_response(batch.operation(), indent=None if has_inline else 2)


async def cancel_batch(request: web.Request) -> web.Response:
    """`POST /{ver}/batches/{id}:cancel` -> `{}` (a no-op on an ended job)."""
    found = _find(request, "batches.cancel")
    if not isinstance(found, Batch):
        return found
    state = request.app[STATE_KEY]
    found.cancel(time.time(), runner(state), state.files)
    return json_response({})


async def delete_batch(request: web.Request) -> web.Response:
    """`DELETE /{ver}/batches/{id}` -> `{}`: the job stops and leaves the list (its results file stays)."""
    found = _find(request, "batches.delete")
    if not isinstance(found, Batch):
        return found
    request.app[STATE_KEY].batches.delete(found.id)
    return json_response({})


async def list_batches(request: web.Request) -> web.Response:
    """`GET /{ver}/batches?pageSize=&pageToken=`."""
    state = request.app[STATE_KEY]
    call = _call(request, "", "batches.list")
    if (denied := check_key(request_key(request), state.config)) is not None:
        state.log.record(call, denied.status, "auth")
        return denied
    try:
        size, before = page_query(request, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    except BadPageRequest as exc:
        state.log.record(call, 400, "invalid")
        return error_response(400, str(exc))
    state.log.record(call, 200, "ok")
    jobs, token = newest_first_page(state.batches.all(time.time(), runner(state)), _seq, size, before)
    body: dict[str, Any] = {"operations": [job.operation(with_inline_results=False) for job in jobs]} if jobs else {}
    if token:
        body["nextPageToken"] = token
    return json_response(body)


def _seq(batch: Batch) -> int:
    return batch.seq


def add_batch_routes(app: web.Application, versions: Sequence[str]) -> None:
    """Register the Batch Mode routes (before the generic `models/{target}` route, which they shadow)."""
    for version in versions:
        app.router.add_post(f"/{version}/models/{{model}}:batchGenerateContent", create)
        app.router.add_get(f"/{version}/batches", list_batches)
        app.router.add_get(f"/{version}/batches/{{id}}", get_batch)
        app.router.add_post(f"/{version}/batches/{{id}}:cancel", cancel_batch)
        app.router.add_delete(f"/{version}/batches/{{id}}", delete_batch)
