"""Pure logic of Batch Mode and the file store: a job's timeline and forced transitions, reading its lines,
resolving file URIs."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from emulator.batchlines import CreateRefused, Line, file_lines, inline_lines
from emulator.batchstore import Batch, BatchState, Outcome, Timeline
from emulator.filestore import FileLimits, FileStore


def lines(count: int) -> list[Line]:
    """``count`` valid inline lines, metadata keys l0, l1, ..."""
    return inline_lines({"requests": [{"request": {"contents": [{"parts": [{"text": f"p{i}"}]}]},
                                       "metadata": {"key": f"l{i}"}} for i in range(count)]})


class Recorder:
    """A line runner that answers each line with its position and remembers the order."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def __call__(self, batch: Batch, line: Line) -> dict[str, Any]:
        key = (line.metadata or {})["key"]
        self.ran.append(key)
        return {"response": {"key": key}}


def job(count: int = 4, outcome: Outcome = "succeed", *, expire_at: float = 100.0) -> Batch:
    """Created at 0, running from 10, lines done evenly until 14."""
    return Batch("b", "m", lines(count), outcome, 0.0, Timeline(10.0, 10.0, 14.0, expire_at))


def test_a_job_runs_its_lines_evenly_in_order_then_succeeds() -> None:
    batch, run, files = job(), Recorder(), FileStore()

    batch.advance(9.9, run, files)
    assert (batch.state, batch.done) == (BatchState.PENDING, 0)
    batch.advance(12.0, run, files)
    assert (batch.state, batch.done, batch.update_time) == (BatchState.RUNNING, 2, 12.0)
    assert batch.stats() == {"requestCount": "4", "successfulRequestCount": "2", "pendingRequestCount": "2"}
    batch.advance(50.0, run, files)

    assert (batch.state, batch.end_time) == (BatchState.SUCCEEDED, 14.0)
    assert run.ran == ["l0", "l1", "l2", "l3"]
    entries = batch.output["inlinedResponses"]["inlinedResponses"]
    assert entries[3] == {"metadata": {"key": "l3"}, "response": {"key": "l3"}}


def test_a_job_that_outlives_its_expiry_ends_expired_without_results() -> None:
    batch, run = job(expire_at=12.0), Recorder()

    batch.advance(13.0, run, FileStore())

    assert (batch.state, batch.end_time, batch.output) == (BatchState.EXPIRED, 12.0, None)
    assert batch.operation()["error"]["code"] == 4 and "response" not in batch.operation()


@pytest.mark.parametrize(("outcome", "state"), [("fail", BatchState.FAILED), ("expire", BatchState.EXPIRED)])
def test_fail_and_expire_outcomes_answer_no_line(outcome: Outcome, state: BatchState) -> None:
    batch, run = job(outcome=outcome), Recorder()

    batch.advance(14.0, run, FileStore())

    assert (batch.state, batch.done, run.ran) == (state, 0, [])


def test_stall_freezes_progress_and_resume_spreads_the_rest_over_the_running_time() -> None:
    batch, run, files = job(), Recorder(), FileStore()
    batch.advance(11.0, run, files)
    batch.force("stall", 12.0, run, files, running_s=4.0)

    batch.advance(90.0, run, files)
    assert (batch.state, batch.done) == (BatchState.RUNNING, 2)
    batch.force("resume", 90.0, run, files, running_s=4.0)
    batch.advance(91.0, run, files)
    assert batch.done == 3
    batch.advance(92.0, run, files)

    assert (batch.state, batch.end_time) == (BatchState.SUCCEEDED, 92.0)


def test_advance_moves_one_step_and_finish_ends_now() -> None:
    first, second, run, files = job(), job(), Recorder(), FileStore()

    first.force("advance", 1.0, run, files, running_s=4.0)
    second.force("finish", 1.0, run, files, running_s=4.0)

    assert (first.state, first.timeline.run_at, first.timeline.progress_until) == (BatchState.RUNNING, 1.0, 5.0)
    assert (second.state, second.end_time) == (BatchState.SUCCEEDED, 1.0)


def test_cancel_ends_now_and_is_a_no_op_once_ended() -> None:
    batch, run, files = job(), Recorder(), FileStore()

    batch.cancel(11.0, run, files)
    batch.cancel(20.0, run, files)

    assert (batch.state, batch.end_time, batch.output) == (BatchState.CANCELLED, 11.0, None)
    assert batch.operation()["error"]["code"] == 1


def test_a_file_job_writes_its_results_file() -> None:
    source = b"".join(json.dumps({"key": f"k{i}", "request": {"contents": [{"parts": [{"text": "x"}]}]}}).encode()
                      + b"\n" for i in range(2))
    files = FileStore()
    batch = Batch("abc", "m", file_lines(source), "succeed", 0.0, Timeline(0.0, 0.0, 0.0, 9.0), input_file="files/in")

    batch.advance(0.0, lambda b, line: {"response": {}}, files)

    assert batch.output == {"responsesFile": "files/batch-abc"}
    stored = files.get("batch-abc", 0.0)
    assert stored.source == "GENERATED"
    assert stored.data.decode().splitlines() == ['{"response": {}, "key": "k0"}', '{"response": {}, "key": "k1"}']


def test_file_lines_skip_blanks_and_report_every_bad_line() -> None:
    data = b'{"key": "a", "request": {"contents": []}}\n\n{oops\n{"key": "c", "bogus": 1}\n{"request": "text"}\n'

    with pytest.raises(CreateRefused) as caught:
        file_lines(data)

    assert str(caught.value).splitlines() == [
        "Error on line 3: invalid JSON, near column 2: Expecting property name enclosed in double quotes",
        "Error on line 4: invalid JSON, near column 14: no such field: 'bogus'",
        "Error on line 5: invalid JSON, near column 1: a request must be a GenerateContentRequest message.",
    ]


def test_a_semantically_invalid_line_is_kept_with_its_error() -> None:
    read = file_lines(b'{"key": "a", "request": {"contents": []}}\n')

    assert read[0].parsed is None and "contents is not specified" in (read[0].error or "")
    assert read[0].prompt_tokens == 0


def test_inline_unknown_names_are_placed_under_the_batch_path() -> None:
    bad = {"request": {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"nope": 1}}}

    with pytest.raises(CreateRefused) as caught:
        inline_lines({"requests": [bad]})

    assert str(caught.value) == ('Invalid JSON payload received. Unknown name "nope" at '
                                 "'batch.input_config.requests.requests[0].request.generation_config': "
                                 "Cannot find field.")
    assert caught.value.details[0]["fieldViolations"][0]["field"] == (
        "batch.input_config.requests.requests[0].request.generation_config")


def test_file_lookup_resolves_names_and_uris_of_active_files_only() -> None:
    files = FileStore()
    limits = FileLimits(max_file_bytes=10, max_total_bytes=10, ttl_s=60.0, processing_s=0.0)
    session = files.start_upload(file_id="img-1", mime_type="image/png", display_name=None, size=3, limits=limits,
                                 now=time.time())
    files.append(session, 0, b"abc", limits)
    files.finalize(session, limits, time.time())

    assert files.lookup("files/img-1") == ("image/png", b"abc")
    assert files.lookup("https://generativelanguage.googleapis.com/v1beta/files/img-1") == ("image/png", b"abc")
    assert files.lookup("files/other") is None
    assert files.lookup("gs://bucket/files/img-1.png") is None
