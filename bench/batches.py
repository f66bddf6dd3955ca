"""Batches: time to accept 10,000 and 100,000 lines, the web process's peak memory, end-to-end jobs/s.

Accept: a JSONL file of N lines (alternately a gemq request and a Gemini Batch Mode line, about 20
words each) is POSTed to gunicorn (the Procfile's config: gevent, 2 workers) with no Celery worker
running; the time is from the request's start to the 202 (validation, job records, items list and
messages all written).  Memory: the RSS of the gunicorn worker that served it, sampled every 10 ms
(psutil), before and at its peak, and Redis's ``used_memory`` growth per item.  Redis is flushed
between runs.
End to end: ``--workers`` worker processes (``--concurrency`` threads each) run, a ``--e2e``-line batch is
submitted and the rate is total / (batch finished_ms - created_ms), the emulator at zero latency.

    .venv/bin/python bench/batches.py [--sizes 10000,100000] [--repeat 3] [--e2e 10000] [--workers 1] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import API_KEY, Stack, machine, stack, wait_until  # noqa: E402

HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/jsonl"}
WORDS = "the quick brown fox jumps over a lazy dog while queues of batches wait for their turn".split()


def write_batch(path: Path, lines: int) -> int:
    """A JSONL file of ``lines`` requests, both line formats; returns its size in bytes."""
    with path.open("w") as out:
        for n in range(lines):
            text = " ".join(WORDS[(n + i) % len(WORDS)] for i in range(20)) + f" #{n}"
            if n % 2:
                line: dict[str, Any] = {"key": f"k{n}", "request": {"contents": [{"parts": [{"text": text}]}],
                                                                     "generationConfig": {"temperature": 0.2}}}
            else:
                line = {"prompt": text, "key": f"k{n}"}
            out.write(json.dumps(line) + "\n")
    return path.stat().st_size


class RssSampler:
    """Samples the RSS of the web's worker processes until stopped; keeps each one's peak."""

    def __init__(self, master_pid: int) -> None:
        self.procs = psutil.Process(master_pid).children()
        self.before = {p.pid: p.memory_info().rss for p in self.procs}
        self.peak = dict(self.before)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            for proc in self.procs:
                self.peak[proc.pid] = max(self.peak[proc.pid], proc.memory_info().rss)

    def served(self) -> dict[str, float]:
        """The worker whose RSS grew most (the one that served the request): before and peak, MiB."""
        pid = max(self.procs, key=lambda p: self.peak[p.pid] - self.before[p.pid]).pid
        mib = 1024 * 1024
        return {"rss_before_mib": round(self.before[pid] / mib, 1), "rss_peak_mib": round(self.peak[pid] / mib, 1),
                "rss_growth_mib": round((self.peak[pid] - self.before[pid]) / mib, 1)}


def accept(running: Stack, path: Path, lines: int) -> dict[str, Any]:
    """POST the file once: seconds to 202, the serving worker's memory, Redis bytes per item."""
    assert running.web and running.redis and running.web.proc
    client = running.redis.client()
    client.flushdb()
    redis_before = int(client.info("memory")["used_memory"])
    with RssSampler(running.web.proc.pid) as sampler, path.open("rb") as body:
        start = time.perf_counter()
        response = httpx.post(f"{running.web.url}/v1/batches", content=body, headers=HEADERS, timeout=600,
                              trust_env=False)
        seconds = time.perf_counter() - start
    assert response.status_code == 202, response.text[:500]
    assert response.json()["total"] == lines
    redis_growth = int(client.info("memory")["used_memory"]) - redis_before
    return {"lines": lines, "seconds": round(seconds, 3), "lines_per_s": round(lines / seconds),
            **sampler.served(), "redis_bytes_per_item": round(redis_growth / lines)}


def end_to_end(running: Stack, path: Path, lines: int, concurrency: int, workers: int) -> dict[str, Any]:
    """Submit with workers running; jobs/s from the batch's own created and finished times."""
    assert running.web and running.redis
    running.redis.client().flushdb()
    for n in range(workers):
        running.start_worker(f"e2e{n}", concurrency=concurrency)
    with path.open("rb") as body:
        made = httpx.post(f"{running.web.url}/v1/batches", content=body, headers=HEADERS, timeout=600,
                          trust_env=False).json()
    auth = {"Authorization": HEADERS["Authorization"]}
    url = f"{running.web.url}/v1/batches/{made['id']}"

    def finished() -> dict[str, Any] | None:
        batch = httpx.get(url, headers=auth, trust_env=False).json()
        return batch if batch["status"] == "completed" else None

    batch = wait_until(finished, timeout=1200, interval=0.5, what="the batch to complete")
    raw = running.redis.client().hmget(f"gemq:batch:{made['id']}", "created_ms", "finished_ms")
    span = (int(raw[1]) - int(raw[0])) / 1000
    return {"lines": lines, "seconds": round(span, 2), "jobs_per_s": round(lines / span, 1),
            "succeeded": batch["counts"]["succeeded"], "workers": workers, "concurrency": concurrency}


def main() -> None:
    """Accept each size ``--repeat`` times, then one end-to-end run; print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--e2e", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    out: dict[str, Any] = {"accept": [], "args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="gemq-batch-files-") as tmp, stack() as running:
        running.start_base(env={"GEMQ_WORKER_CONCURRENCY": str(args.concurrency)})
        running.start_web(workers=2)
        files = {}
        for size in sorted({*sizes, args.e2e}):
            files[size] = Path(tmp) / f"batch-{size}.jsonl"
            out.setdefault("file_bytes", {})[size] = write_batch(files[size], size)
        for size in sizes:
            for _ in range(args.repeat):
                out["accept"].append(accept(running, files[size], size))
                print(json.dumps(out["accept"][-1]), file=sys.stderr)
        if args.e2e:
            out["end_to_end"] = end_to_end(running, files[args.e2e], args.e2e, args.concurrency,
                                           args.workers)
    out["machine"] = machine()
    out["load_average"] = [round(x, 2) for x in psutil.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
