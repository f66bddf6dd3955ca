"""Acknowledged writes a Sentinel failover loses, with and without ``WAIT``, and what ``WAIT`` costs per write.

Redis replicates asynchronously: a master acknowledges a write before any replica has it. Each run
starts a master, a replica and three sentinels (``tests/sentinel.py``), and ``--writers`` threads
write ``--record-bytes`` records at ``--rate`` writes/s in all through redis-py's ``Sentinel``
client (socket timeout 5 s, as gemq's clients; no retries: a failed write is simply not
acknowledged). After ``--steady`` seconds the master fails:

- ``kill``: SIGKILL, as a crash; restarted (empty) once the replica is promoted, as a supervisor
  would, so it rejoins as a replica;
- ``pause``: SIGSTOP, as a hung host or a partition; resumed once the replica is promoted, so the
  clients still connected to it get answers, until the sentinels demote it.

Writes go on for ``--after`` seconds once the old master follows the new one; then every
acknowledged record is looked up on the master. Modes:

- ``plain``: ``SET``; acknowledged when it returns;
- ``wait``: ``SET`` and ``WAIT 1 <--wait-timeout-ms>`` in one round trip; acknowledged only when
  WAIT says a replica has it (a write WAIT timed out on is reported separately, as the API would
  refuse it).

With ``--min-replicas-to-write 1`` every node refuses writes while no replica is in step (Redis'
own guard against a stale master taking writes).

Reported per run: acknowledged, lost, failed and WAIT-timed-out writes; the longest time without an
acknowledged write (unavailability); per-write latency p50/p99 before the fault. ``--mode latency``
measures WAIT's cost alone: no failure, one client in a closed loop taking in turn ``SET``, ``SET``
and ``WAIT`` in one round trip, and ``SET`` then ``WAIT`` (two).

    .venv/bin/python bench/failover_loss.py [--mode plain|wait|latency] [--runs 3] [--hows kill,pause]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import machine, percentile  # noqa: E402
from sentinel import SentinelCluster  # noqa: E402

#: Client socket timeout (gemq's ``worker/store/connect.py`` uses 5 s).
SOCKET_TIMEOUT = 5.0
#: Seconds a writer waits after a failed write before the next (the client then asks the sentinels again).
ERROR_PAUSE = 0.05


@dataclass
class Writes:
    """What the writers saw; lists are appended from several threads (``list.append`` is atomic)."""

    acked: list[tuple[str, float]] = field(default_factory=list)  # key, when acknowledged
    latencies: list[tuple[float, float]] = field(default_factory=list)  # sent at, seconds to acknowledge
    failed: list[float] = field(default_factory=list)
    wait_timeouts: list[str] = field(default_factory=list)


def writer(cluster: SentinelCluster, index: int, args: argparse.Namespace, writes: Writes,
           stop: threading.Event) -> None:
    """Write ``w{index}:{n}`` records on a fixed schedule until ``stop``."""
    client = cluster.master_client(socket_timeout=SOCKET_TIMEOUT, retry=Retry(NoBackoff(), 0))
    payload = "x" * args.record_bytes
    interval, due, n = args.writers / args.rate, time.monotonic() + index / args.rate, 0
    while not stop.is_set():
        time.sleep(max(0.0, due - time.monotonic()))
        # Slots missed while a write hung or failed are skipped, not made up in a burst: the rate stays steady.
        due = max(due + interval, time.monotonic())
        key, sent = f"w{index}:{n}", time.monotonic()
        n += 1
        try:
            if args.mode == "wait":
                pipe = client.pipeline(transaction=False).set(key, payload).wait(1, args.wait_timeout_ms)
                _, replicas = pipe.execute()
                if replicas < 1:
                    writes.wait_timeouts.append(key)
                    continue
            else:
                client.set(key, payload)
        except redis.RedisError:
            writes.failed.append(sent)
            time.sleep(ERROR_PAUSE)
            continue
        done = time.monotonic()
        writes.acked.append((key, done))
        writes.latencies.append((sent, done - sent))


def lost(cluster: SentinelCluster, keys: list[str]) -> list[str]:
    """The keys the master does not have."""
    client = cluster.master().client()
    missing = []
    for start in range(0, len(keys), 1000):
        chunk = keys[start:start + 1000]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.exists(key)
        missing += [key for key, present in zip(chunk, pipe.execute(), strict=True) if not present]
    return missing


def fail_master(cluster: SentinelCluster, how: str) -> float:
    """Fail the master ``how``, wait for the failover, bring the old one back; seconds to the promotion."""
    node = cluster.master()
    started = time.monotonic()
    if how == "kill":
        old = cluster.kill_master()
    else:
        node, old = cluster.pause_master()
    cluster.wait_failover(old, timeout=60)
    took = time.monotonic() - started
    if how == "kill":
        node.start()
    else:
        cluster.resume(node)
    return took


def one_run(workdir: Path, how: str, args: argparse.Namespace) -> dict[str, Any]:
    """One cluster, one failure; the figures."""
    cluster = SentinelCluster(workdir, min_replicas_to_write=args.min_replicas_to_write,
                              min_replicas_max_lag=args.min_replicas_max_lag).start()
    writes, stop = Writes(), threading.Event()
    threads = [threading.Thread(target=writer, args=(cluster, i, args, writes, stop), daemon=True)
               for i in range(args.writers)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(args.steady)
        fault_at = time.monotonic()
        failover_s = fail_master(cluster, how)
        cluster.wait_replicated(timeout=60)
        time.sleep(args.after)
        stop.set()
        for thread in threads:
            thread.join(timeout=SOCKET_TIMEOUT + 5)
        missing = lost(cluster, [key for key, _ in writes.acked])
    finally:
        stop.set()
        cluster.stop()
    steady = [latency * 1000 for sent, latency in writes.latencies if sent < fault_at]
    ack_times = sorted(at for _, at in writes.acked)
    gaps = [b - a for a, b in zip(ack_times, ack_times[1:], strict=False)]
    return {"how": how, "acked": len(writes.acked), "lost": len(missing), "lost_keys": missing[:10],
            "failed": len(writes.failed), "wait_timeouts": len(writes.wait_timeouts),
            "failover_s": round(failover_s, 2), "longest_without_ack_s": round(max(gaps, default=0.0), 2),
            "steady_p50_ms": round(percentile(steady, 50), 3), "steady_p99_ms": round(percentile(steady, 99), 3)}


def latency(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """WAIT's cost with no failure: one client in a closed loop, the three ways of writing taken in turn."""
    cluster = SentinelCluster(workdir).start()
    try:
        client = cluster.master_client(socket_timeout=SOCKET_TIMEOUT)
        payload = "x" * args.record_bytes
        ways = {
            "set": lambda key: client.set(key, payload),
            "set_and_wait_one_round_trip": lambda key: client.pipeline(transaction=False).set(key, payload)
            .wait(1, args.wait_timeout_ms).execute(),
            "set_then_wait": lambda key: (client.set(key, payload), client.wait(1, args.wait_timeout_ms)),
        }
        samples: dict[str, list[float]] = {name: [] for name in ways}
        deadline, n = time.monotonic() + args.seconds, 0
        while time.monotonic() < deadline:
            for name, write in ways.items():
                started = time.perf_counter()
                write(f"lat:{n}")
                samples[name].append((time.perf_counter() - started) * 1000)
            n += 1
    finally:
        cluster.stop()
    return {name: {"writes": len(ms), **{f"p{q:g}_ms": round(percentile(ms, q), 3) for q in (50, 99, 99.9)}}
            for name, ms in samples.items()}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per way of failing: lost acknowledged writes per failover (each run), the longest time without an
    acknowledgement, and the steady latency's median p50 and p99 over the runs."""
    by_how: dict[str, Any] = {}
    for how in dict.fromkeys(run["how"] for run in runs):
        mine = [run for run in runs if run["how"] == how]
        by_how[how] = {"lost": [run["lost"] for run in mine], "acked": [run["acked"] for run in mine],
                       "longest_without_ack_s": [run["longest_without_ack_s"] for run in mine],
                       "steady_p50_ms": sorted(run["steady_p50_ms"] for run in mine)[len(mine) // 2],
                       "steady_p99_ms": sorted(run["steady_p99_ms"] for run in mine)[len(mine) // 2]}
    return by_how


def main() -> None:
    """Every how x run, in the mode asked; JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("plain", "wait", "latency"), default="plain",
                        help="latency: no failure, WAIT's cost per write for --seconds")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--hows", default="kill,pause")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=400, help="writes per second, all writers together")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--record-bytes", type=int, default=1024)
    parser.add_argument("--wait-timeout-ms", type=int, default=500)
    parser.add_argument("--min-replicas-to-write", type=int, default=0,
                        help="set on every node: a master without that many replicas in step refuses writes")
    parser.add_argument("--min-replicas-max-lag", type=int, default=10)
    parser.add_argument("--steady", type=float, default=3)
    parser.add_argument("--after", type=float, default=2)
    args = parser.parse_args()
    machine_now = {**machine(), "load_average": os.getloadavg()}
    if args.mode == "latency":
        with tempfile.TemporaryDirectory(prefix="gemq-failover-") as tmp:
            print(json.dumps({"mode": "latency", "latency": latency(Path(tmp), args), "args": vars(args),
                              "machine": machine_now}, indent=2))
        return
    runs = []
    with tempfile.TemporaryDirectory(prefix="gemq-failover-") as tmp:
        for how in args.hows.split(","):
            for i in range(args.runs):
                runs.append(one_run(Path(tmp) / f"{how}-{i}", how, args))
                print(json.dumps(runs[-1]), file=sys.stderr)
    print(json.dumps({"mode": args.mode, "runs": runs, "summary": summary(runs), "args": vars(args),
                      "machine": machine_now}, indent=2))


if __name__ == "__main__":
    main()
