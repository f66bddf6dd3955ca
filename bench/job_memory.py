"""Redis bytes per finished job: ``used_memory`` growth over N jobs, and where it goes, key by key.

A private stack (redis-server, the emulator, gunicorn, one worker) runs ``--jobs`` plain text jobs
(a ``--prompt-bytes`` prompt, an answer of ``--answer-words`` words streamed in ``--chunk-words``
pieces) to the end, after ``--warmup`` jobs that create what every later job shares (scripts,
limiter state, metric series). Redis is read before and after:

- ``used_memory`` and ``used_memory_dataset`` growth, per job;
- every key's ``MEMORY USAGE`` (exact: ``SAMPLES 0``), grouped by pattern (ids -> ``{id}``, hashes
  -> ``{sha}``): bytes per job each pattern added, its type and TTL;
- for the finished jobs: their record's fields (bytes per field) and their event streams (entries
  per event type, bytes per entry).

To measure other kinds of job (media, long answers, conversations) change ``job_body`` or pass
``--body`` (a JSON request; ``{i}`` in it becomes the job's index, so no two prompts are equal).

    .venv/bin/python bench/job_memory.py [--jobs 1000] [--prompt-bytes 1024] [--answer-words 50]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import API_KEY, machine, stack  # noqa: E402

#: The job record and its event stream, as gemq's key module names them.
JOB_KEY, EVENTS_KEY = "gemq:job:{id}", "gemq:job:{id}:events"
TERMINAL = {"succeeded", "failed", "cancelled"}
#: Seconds to let buffered writes (metrics flush once a second) land before reading Redis.
SETTLE_S = 2.5
#: Ids (uuid4 hex) and digests in key names, replaced to group keys by pattern.
ID_RE, SHA_RE = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])"), re.compile(r"[0-9a-f]{40,64}")


def job_body(index: int, args: argparse.Namespace) -> dict[str, Any]:
    """The request for job ``index``: a plain text prompt of ``--prompt-bytes`` bytes, unique per job."""
    if args.body:
        return dict(json.loads(args.body.replace("{i}", str(index))))
    head = f"job {index}: "
    return {"prompt": head + ("lorem ipsum dolor sit amet " * 64)[: max(0, args.prompt_bytes - len(head))]}


def run_jobs(http: httpx.Client, bodies: list[dict[str, Any]], timeout: float) -> list[str]:
    """Submit every body, then wait until every job is terminal; their ids."""
    ids = []
    for body in bodies:
        response = http.post("/v1/jobs", json=body)
        response.raise_for_status()
        ids.append(response.json()["id"])
    waiting, deadline = set(ids), time.monotonic() + timeout
    while waiting:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(waiting)} jobs not finished after {timeout} s")
        waiting = {i for i in waiting if http.get(f"/v1/jobs/{i}").json()["status"] not in TERMINAL}
        time.sleep(0.2 if waiting else 0)
    return ids


def pattern(key: str) -> str:
    """The key with its ids and digests replaced, so one job's keys group with every other's."""
    return SHA_RE.sub("{sha}", ID_RE.sub("{id}", key))


def snapshot(client: redis.Redis) -> dict[str, tuple[str, int, int]]:
    """Every key -> (type, MEMORY USAGE bytes, TTL seconds)."""
    found = {}
    for key in client.scan_iter(count=1000):
        usage = client.memory_usage(key, samples=0)
        if usage is not None:
            found[key] = (client.type(key), int(usage), int(client.ttl(key)))
    return found


def breakdown(before: dict[str, tuple[str, int, int]], after: dict[str, tuple[str, int, int]],
              jobs: int) -> list[dict[str, Any]]:
    """Bytes per job each key pattern gained (new keys and growth of existing ones), largest first."""
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {"keys_added": 0, "bytes": 0, "type": "", "ttl_s": None})
    for key in before.keys() | after.keys():
        kind, size, ttl = after.get(key) or before[key]
        group = groups[pattern(key)]
        group["bytes"] += (after[key][1] if key in after else 0) - (before[key][1] if key in before else 0)
        group["keys_added"] += (key in after) - (key in before)
        group["type"], group["ttl_s"] = kind, ttl
    rows = [{"pattern": name, "bytes_per_job": round(g["bytes"] / jobs, 1), **g} for name, g in groups.items()
            if g["bytes"] or g["keys_added"]]
    return sorted(rows, key=lambda row: -row["bytes"])


def job_anatomy(client: redis.Redis, ids: list[str]) -> dict[str, Any]:
    """The finished jobs' records (mean bytes per field) and event streams (entries and bytes per event type)."""
    fields: Counter[str] = Counter()
    entries: Counter[str] = Counter()
    entry_bytes: Counter[str] = Counter()
    for job_id in ids:
        record = client.hgetall(JOB_KEY.format(id=job_id))
        fields.update({name: len(name.encode()) + len(value.encode()) for name, value in record.items()})
        for _, entry in client.xrange(EVENTS_KEY.format(id=job_id)):
            kind = entry.get("event", "?")
            entries[kind] += 1
            entry_bytes[kind] += sum(len(k.encode()) + len(v.encode()) for k, v in entry.items())
    n = len(ids)
    return {
        "record_fields_bytes": {k: round(v / n) for k, v in fields.most_common()},
        "record_payload_bytes": round(sum(fields.values()) / n),
        "events_per_job": {k: round(v / n, 2) for k, v in entries.most_common()},
        "event_payload_bytes_per_entry": {k: round(entry_bytes[k] / entries[k]) for k in entries},
        "answer_bytes": round(sum(len(json.loads(client.hget(JOB_KEY.format(id=i), "result") or "{}")
                                      .get("text", "").encode()) for i in ids) / n),
    }


def memory(client: redis.Redis) -> tuple[int, int]:
    """``used_memory`` and ``used_memory_dataset``."""
    info = client.info("memory")
    return int(info["used_memory"]), int(info["used_memory_dataset"])


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the warm-up and the measured jobs on a fresh stack; the figures."""
    emulator_args = ("--output-tokens", str(args.answer_words), "--chunk-tokens", str(args.chunk_words))
    with stack() as running:
        running.start_base(emulator_args=emulator_args)
        web = running.start_web(workers=1)
        running.start_worker("w", concurrency=8)
        assert running.redis is not None
        client = running.redis.client()
        with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30,
                          trust_env=False) as http:
            run_jobs(http, [job_body(-1 - i, args) for i in range(args.warmup)], args.timeout)
            time.sleep(SETTLE_S)
            used_before, dataset_before = memory(client)
            keys_before = snapshot(client)
            ids = run_jobs(http, [job_body(i, args) for i in range(args.jobs)], args.timeout)
            statuses = Counter(http.get(f"/v1/jobs/{i}").json()["status"] for i in ids)
            time.sleep(SETTLE_S)
            used_after, dataset_after = memory(client)
            keys_after = snapshot(client)
        rows = breakdown(keys_before, keys_after, args.jobs)
        return {
            "jobs": args.jobs, "statuses": dict(statuses),
            "used_memory_per_job": round((used_after - used_before) / args.jobs),
            "used_memory_dataset_per_job": round((dataset_after - dataset_before) / args.jobs),
            "memory_usage_per_job": round(sum(row["bytes"] for row in rows) / args.jobs),
            "by_key_pattern": rows,
            "job": job_anatomy(client, ids[: args.sample]),
        }


def main() -> None:
    """Measure and print JSON (figures, arguments, machine)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--prompt-bytes", type=int, default=1024)
    parser.add_argument("--answer-words", type=int, default=50)
    parser.add_argument("--chunk-words", type=int, default=20, help="words per streamed chunk (the emulator's)")
    parser.add_argument("--body", help="a JSON request for every job instead of the plain prompt; {i}: its index")
    parser.add_argument("--sample", type=int, default=200, help="jobs whose record and events are dissected")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    results = measure(args)
    print(json.dumps({"results": results, "args": vars(args),
                      "machine": {**machine(), "load_average": os.getloadavg()}}, indent=2))


if __name__ == "__main__":
    main()
