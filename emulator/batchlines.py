"""A batch's lines: read from inline requests or a JSONL file, checked at create, answered one by one.

What is refused at create and what fails one line follows the real API:

* A name a request (or the batch wrapper) does not have is a JSON parse error, so it refuses the
  whole create with 400 INVALID_ARGUMENT. Inline, the proto parser's own message and path
  (`Unknown name "x" at 'batch.input_config.requests.requests[0].request...': Cannot find field.`);
  from a file, one line per bad line, `Error on line 1: invalid JSON, near column 436: no such field:
  'cachedContent'` (measured against the real API, quoted in UKGovernmentBEIS/inspect_ai#3257 and #5100).
* Any other invalid request (no contents, a bad role, a value out of range) fails its own line with
  a google.rpc.Status `{"code": 3, "message": ...}`, and the batch still succeeds (python-genai#2693:
  every row failed with code 3 while the job reported BATCH_STATE_SUCCEEDED). Per-line errors carry
  no `details`: the SDK's `JobError.details` is `list[str]` and an object there breaks parsing.

The emulator's validation and generation are reached through two seams only, `line_validator` (at
create) and `_generate` (when a line is answered), so they can be re-pointed in one place each;
scripted faults match a line's prompt as they match online calls.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.faults import ScriptedFault
from emulator.generate import generate_content, parse_context
from emulator.models import model_version
from emulator.reqlog import CallInfo
from emulator.request import CacheNotFound, GenerateRequest, InvalidRequest, parse_generate
from emulator.resources import camel, grpc_code
from emulator.textgen import find_tag
from emulator.wire import DEFAULT_MESSAGES, STATUS_NAMES, blocked_prompt_body, candidate, response_body, usage

if TYPE_CHECKING:
    from emulator.state import EmulatorState

#: Validates one GenerateContentRequest dict: the parsed request, or InvalidRequest.
Validator = Callable[[dict[str, Any]], GenerateRequest]
#: What the proto JSON parser's refusals start with (a per-line error never does).
PARSE_ERROR_PREFIX = "Invalid JSON payload received."
_UNKNOWN = re.compile(r'Unknown name "(?P<name>[^"]+)"(?: at \'(?P<path>[^\']*)\')?: Cannot find field\.')
#: Names of the batch wrapper messages (GenerateContentBatch, InputConfig, InlinedRequest(s)).
BATCH_FIELDS = frozenset({
    "model", "name", "displayName", "inputConfig", "output", "createTime", "endTime", "updateTime", "batchStats",
    "state", "priority", "webhookConfig",
})
INPUT_CONFIG_FIELDS = frozenset({"fileName", "requests"})
INLINED_REQUESTS_FIELDS = frozenset({"requests"})
INLINED_REQUEST_FIELDS = frozenset({"request", "metadata"})
FILE_LINE_FIELDS = frozenset({"key", "request"})
#: The HTTP status a line's error stands for, per fault kind that is not a plain status (a batch
#: line has no stream to break and no connection to hang).
FAULT_STATUS: dict[str, int] = {
    "quota_rpm": 429, "quota_tpm": 429, "quota_rpd": 429, "hang": 504, "midstream": 500, "malformed": 500,
}
LINE_MESSAGES: dict[int, str] = {**DEFAULT_MESSAGES, 429: "Resource has been exhausted (e.g. check quota)."}


class CreateRefused(Exception):
    """The create call is refused as a whole: answer ``status`` with ``message`` (and ``details``)."""

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.details = details or []


@dataclass
class Line:
    """One request of a batch and, once it has run, its result (`{"response": ...}` or `{"error": ...}`)."""

    request: dict[str, Any]
    parsed: GenerateRequest | None
    error: str | None = None
    key: str | None = None
    metadata: dict[str, Any] | None = None
    result: dict[str, Any] | None = None

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens by the emulator's rule (0 for an invalid line): what the enqueued-token cap counts."""
        return self.parsed.prompt_tokens if self.parsed else 0


def check_names(message: dict[str, Any], known: frozenset[str], path: str) -> None:
    """Refuse names ``known`` lacks, with the proto parser's message (as `emulator.request` does)."""
    unknown = [name for name in message if camel(name) not in known]
    if unknown:
        raise _unknown_names([(name, path) for name in unknown])


def _unknown_names(found: list[tuple[str, str]]) -> CreateRefused:
    lines = [f'{PARSE_ERROR_PREFIX} Unknown name "{name}"{f" at {path!r}" if path else ""}: Cannot find field.'
             for name, path in found]
    violations = [{**({"field": path} if path else {}), "description": line}
                  for (_, path), line in zip(found, lines, strict=True)]
    return CreateRefused(400, "\n".join(lines), [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                                  "fieldViolations": violations}])


def plain_validator(request: dict[str, Any]) -> GenerateRequest:
    """The emulator's own `generateContent` validation of one request dict."""
    return parse_generate(json.dumps(request).encode())


def line_validator(state: EmulatorState, model: str, version: str) -> Validator:
    """How a batch for ``model`` created on ``version`` validates its lines (seam 1 of 2)."""
    ctx = parse_context(state, model, version)

    def validate(request: dict[str, Any]) -> GenerateRequest:
        try:
            return parse_generate(request, ctx)
        except CacheNotFound as exc:
            raise InvalidRequest(str(exc) or "CachedContent not found (or permission denied)") from exc

    return validate


def _validate(request: Any, validate: Validator) -> tuple[GenerateRequest | None, str | None]:
    """(parsed, None) for a valid request, (None, message) for one that fails its line; a parse-level
    refusal (unknown name) is re-raised as InvalidRequest for the caller to place."""
    if not isinstance(request, dict):
        raise InvalidRequest(f"{PARSE_ERROR_PREFIX} a request must be a GenerateContentRequest message.")
    try:
        return validate(request), None
    except InvalidRequest as exc:
        if str(exc).startswith(PARSE_ERROR_PREFIX):
            raise
        return None, str(exc)


def inline_lines(requests: Any, validate: Validator = plain_validator) -> list[Line]:
    """The lines of `inputConfig.requests` (CreateRefused for a shape or name the API's parser refuses)."""
    base = "batch.input_config.requests"
    if not isinstance(requests, dict):
        raise CreateRefused(400, f"{PARSE_ERROR_PREFIX} Invalid value at '{base}': must be an InlinedRequests message.")
    check_names(requests, INLINED_REQUESTS_FIELDS, base)
    items = requests.get("requests") or []
    if not isinstance(items, list):
        raise CreateRefused(400, f"{PARSE_ERROR_PREFIX} Invalid value at '{base}.requests': must be a list.")
    lines, unknown = [], []
    for index, item in enumerate(items):
        path = f"{base}.requests[{index}]"
        if not isinstance(item, dict):
            raise CreateRefused(400, f"{PARSE_ERROR_PREFIX} Invalid value at '{path}': must be an InlinedRequest.")
        check_names(item, INLINED_REQUEST_FIELDS, path)
        request = item.get("request", {})
        try:
            parsed, error = _validate(request, validate)
        except InvalidRequest as exc:
            unknown.extend(_relocated(str(exc), f"{path}.request"))
            continue
        metadata = item.get("metadata")
        lines.append(Line(request, parsed, error, metadata=metadata if isinstance(metadata, dict) else None))
    if unknown:
        raise _unknown_names(unknown)
    return lines


def _relocated(message: str, prefix: str) -> list[tuple[str, str]]:
    """The (name, path) pairs of an unknown-name refusal, paths placed under ``prefix``."""
    found = [(m["name"], f"{prefix}.{m['path']}" if m["path"] else prefix) for m in _UNKNOWN.finditer(message)]
    if not found:
        raise CreateRefused(400, message.replace(PARSE_ERROR_PREFIX, f"{PARSE_ERROR_PREFIX} At '{prefix}':", 1))
    return found


def file_lines(data: bytes, validate: Validator = plain_validator) -> list[Line]:
    """The lines of an uploaded JSONL file (blank lines skipped); a parse error on any line refuses the create."""
    lines, problems = [], []
    for number, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            lines.append(_file_line(raw, validate))
        except json.JSONDecodeError as exc:
            problems.append(f"Error on line {number}: invalid JSON, near column {exc.colno}: {exc.msg}")
        except InvalidRequest as exc:
            names = [m["name"] for m in _UNKNOWN.finditer(str(exc))]
            problems.extend(f"Error on line {number}: invalid JSON, near column {_column(raw, name)}: "
                            f"no such field: '{name}'" for name in names)
            if not names:
                reason = str(exc).removeprefix(PARSE_ERROR_PREFIX).strip()
                problems.append(f"Error on line {number}: invalid JSON, near column 1: {reason}")
    if problems:
        raise CreateRefused(400, "\n".join(problems))
    return lines


def _column(raw: str, name: str) -> int:
    """1-based column of ``"name"`` in the line (where the real parser reports the unknown field)."""
    return raw.find(json.dumps(name)) + 1


def _file_line(raw: str, validate: Validator) -> Line:
    obj = json.loads(raw)
    if not isinstance(obj, dict):
        raise json.JSONDecodeError("a line must be a JSON object", raw, 0)
    unknown = [name for name in obj if camel(name) not in FILE_LINE_FIELDS]
    if unknown:
        raise InvalidRequest("\n".join(f'{PARSE_ERROR_PREFIX} Unknown name "{n}": Cannot find field.' for n in unknown))
    key = obj.get("key")
    parsed, error = _validate(obj.get("request", {}), validate)
    return Line(obj.get("request", {}), parsed, error, key=None if key is None else str(key))


def answer_line(state: EmulatorState, model: str, line: Line, key_fingerprint: str | None) -> dict[str, Any]:
    """Run one line now: `{"response": GenerateContentResponse}` or `{"error": {code, message}}`, logged
    as a `batchGenerateContent` call. Batch lines never count against the online RPM/TPM/RPD windows."""
    parsed = line.parsed
    call = CallInfo(time.time(), model, "batchGenerateContent", key_fingerprint,
                    find_tag(parsed.prompt_text) if parsed else None)
    if parsed is None:
        state.log.record(call, 400, "invalid")
        return {"error": {"code": 3, "message": line.error or DEFAULT_MESSAGES[400]}}
    fault = _line_fault(state, parsed.prompt_text)
    failed = _fault_error(fault) if fault is not None else None
    if failed is not None:
        state.log.record(call, failed[0], "error", prompt_tokens=parsed.prompt_tokens)
        return {"error": failed[1]}
    if fault is not None:
        state.log.record(call, 200, "safety", prompt_tokens=parsed.prompt_tokens)
        return {"response": _blocked(model, parsed, fault.kind)}
    status, body, tokens = _generate(state, model, line)
    if status != 200:
        state.log.record(call, status, "error", prompt_tokens=parsed.prompt_tokens)
        return {"error": {"code": grpc_code(status), "message": body["error"]["message"]}}
    state.log.record(call, 200, "ok", prompt_tokens=parsed.prompt_tokens, output_tokens=tokens)
    return {"response": body}


def _generate(state: EmulatorState, model: str, line: Line) -> tuple[int, dict[str, Any], int]:
    """(HTTP status, GenerateContentResponse or error envelope, output tokens) for a valid line, without
    quota, faults, pacing or logging (seam 2 of 2: the emulator's unary generateContent path)."""
    result = generate_content(state, model, line.request)
    return result.status, result.body, result.output_tokens


def _meta(model: str) -> dict[str, str]:
    return {"model_version": model_version(model), "response_id": secrets.token_urlsafe(17)}


def _blocked(model: str, parsed: GenerateRequest, kind: str) -> dict[str, Any]:
    """The answer a safety fault makes: a blocked prompt, or a candidate stopped for SAFETY."""
    if kind == "safety_prompt":
        return blocked_prompt_body(prompt_tokens=parsed.prompt_tokens, **_meta(model))
    return response_body([candidate(None, "SAFETY")], usage_metadata=usage(parsed.prompt_tokens, 0), **_meta(model))


def _line_fault(state: EmulatorState, prompt: str) -> ScriptedFault | None:
    """A scripted fault matching the line (refusals first, as online), else the per-line error rate."""
    fault = state.faults.take(prompt, refusal=True) or state.faults.take(prompt, refusal=False)
    rate = state.config.batch_line_error_rate
    if fault is None and rate and state.rng.random() < rate:
        fault = ScriptedFault(kind="status", status=500)
    return fault


def _fault_error(fault: ScriptedFault) -> tuple[int, dict[str, Any]] | None:
    """(HTTP status, line error) for a fault that fails the line; None for one that shapes the answer."""
    if fault.kind == "status":
        status = fault.status or 500
    elif fault.kind in FAULT_STATUS:
        status = FAULT_STATUS[fault.kind]
    else:
        return None
    message = fault.message or LINE_MESSAGES.get(status) or STATUS_NAMES.get(status, "Error")
    return status, {"code": grpc_code(status), "message": message}
