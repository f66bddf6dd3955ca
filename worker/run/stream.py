"""Streamed text on its way to the job record, with cancellation checked at every chunk."""

from __future__ import annotations

import time

from worker.core.errors import JobCancelled
from worker.core.job import JobStatus
from worker.store.cancels import CancelWatch
from worker.store.jobs import JobStore


class StreamWriter:
    """Receives streamed text: writes it to the record at most every ``interval`` s, stops on cancel.

    Cancellation is checked at every chunk but the last: against the process's ``CancelWatch`` (no
    round trip) when there is one, else by reading the status; each write also reads the status, as a
    backstop.  The last chunk's text is only kept: the job's final transition writes it, and refuses
    a job cancelled meanwhile.
    """

    def __init__(self, store: JobStore, job_id: str, interval: float, cancels: CancelWatch | None = None) -> None:
        self.store = store
        self.job_id = job_id
        self.interval = interval
        self.cancels = cancels
        self._pending: list[str] = []
        self._last = time.monotonic()

    def __call__(self, delta: str, last: bool = False) -> None:
        self._pending.append(delta)
        if last:
            return  # the final transition writes it (``take_pending``) and settles a cancel race
        if time.monotonic() - self._last >= self.interval:
            self.flush()
        elif self.cancels is not None:
            if self.cancels.cancelled(self.job_id):
                raise JobCancelled("the job was cancelled")
        elif self.store.status(self.job_id) != JobStatus.running.value:
            raise JobCancelled("the job was cancelled")

    def flush(self) -> None:
        """Write the text received since the last write; raise if the job no longer runs."""
        if self.store.append_partial(self.job_id, self.take_pending()) != JobStatus.running.value:
            raise JobCancelled("the job was cancelled")

    def take_pending(self) -> str:
        """The text received since the last write, now considered written by the caller."""
        delta, self._pending = "".join(self._pending), []
        self._last = time.monotonic()
        return delta
