"""Limiter cost: admissions per second (one EVALSHA checking rpm, tpm, rpd, concurrency, pause and
the waiting room) against plain Redis INCR per second, same Redis, same run.  Goal: ratio >= 0.5.

Measured twice: one client issuing commands one after another (latency-bound, as one worker thread
sees it) and several client processes at once.  Each is measured in interleaved rounds (INCR, then
admissions, again and again) and the medians are compared, so a change in the machine's other load
during the run affects both sides alike.

    .venv/bin/python bench/limiter_cost.py [--n 5000] [--rounds 7] [--procs 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import machine  # noqa: E402
from procs import RedisServer  # noqa: E402

from worker.core.job import Priority  # noqa: E402
from worker.core.settings import ModelLimits, Settings  # noqa: E402
from worker.store.connect import connect  # noqa: E402
from worker.store.limiter import Limiter  # noqa: E402

MODEL = "bench-model"


def limiter(url: str) -> Limiter:
    """A limiter whose limits are high enough that every call is admitted (the common path)."""
    settings = Settings(redis_url=url, limits={MODEL: ModelLimits(rpm=10**9, tpm=10**12, rpd=10**12,
                                                                  concurrency=10**9)})
    return Limiter(connect(settings), settings)


def admissions(url: str, n: int) -> float:
    """Admissions per second from one client."""
    lim = limiter(url)
    prefix = uuid.uuid4().hex[:6]
    start = time.perf_counter()
    for i in range(n):
        lim.acquire(MODEL, job_id=f"{prefix}{i}", priority=Priority.normal, cost=100)
    return n / (time.perf_counter() - start)


def incrs(url: str, n: int) -> float:
    """INCRs per second from one client (same client library and settings)."""
    client = connect(Settings(redis_url=url))
    start = time.perf_counter()
    for _ in range(n):
        client.incr("bench:counter")
    return n / (time.perf_counter() - start)


def parallel(fn: str, url: str, n: int, procs: int) -> float:
    """Total rate of ``procs`` client processes running ``fn`` at once."""
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        start = time.perf_counter()
        pool.starmap(globals()[fn], [(url, n)] * procs)
        return n * procs / (time.perf_counter() - start)


def rounds(measure_incr, measure_admissions, count: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Interleaved rounds of both measurements; the median rate of each and their ratio."""
    incr, adm = [], []
    for _ in range(count):
        incr.append(measure_incr())
        adm.append(measure_admissions())
    result = {"incr_per_s": round(statistics.median(incr)), "admissions_per_s": round(statistics.median(adm))}
    result["ratio"] = round(statistics.median(adm) / statistics.median(incr), 3)
    return result


def main() -> None:
    """Sequential and parallel medians, in one Redis; JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--procs", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp)).start()
        url, n = server.url, args.n
        try:
            admissions(url, 2000)  # load the script, warm up
            one = rounds(lambda: incrs(url, n), lambda: admissions(url, n), args.rounds)
            many = rounds(lambda: parallel("incrs", url, n, args.procs),
                          lambda: parallel("admissions", url, n, args.procs), max(3, args.rounds // 2))
        finally:
            server.stop()
    print(json.dumps({"one_client": one, f"{args.procs}_clients": many, "args": vars(args),
                      "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
