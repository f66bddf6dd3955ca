"""The Sentinel harness (``tests/sentinel.py``): a killed master's replica is promoted, clients follow it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from procs import wait_until
from sentinel import SentinelCluster, SentinelUnavailable, sentinel_command

#: Seconds from the kill to the promoted replica, at most: down-after (2 s) + election + promotion (3-4 s here).
FAILOVER_BOUND_S = 15
#: Keys written before the kill.
KEYS = 200


@pytest.fixture
def cluster(make_sentinel: Callable[..., SentinelCluster]) -> SentinelCluster:
    """A master, a replica and three sentinels."""
    return make_sentinel()


def test_the_url_names_every_sentinel(cluster: SentinelCluster) -> None:
    ports = [port for _, port in cluster.sentinel_addresses]
    assert cluster.url() == f"sentinel://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]},127.0.0.1:{ports[2]}/0"
    assert cluster.url(3).endswith("/3")


def test_a_killed_master_is_replaced_and_writes_go_on(cluster: SentinelCluster) -> None:
    # Given keys written through the sentinels' master and replicated (WAIT)
    client = cluster.master_client()
    for i in range(KEYS):
        client.set(f"k{i}", i)
    assert client.wait(1, 5000) == 1
    first_master = cluster.master_address()
    replica = cluster.replicas()[0]

    # When the master is killed
    killed = time.monotonic()
    assert cluster.kill_master() == first_master
    # Then the replica is promoted within the bound
    promoted = cluster.wait_failover(first_master, timeout=FAILOVER_BOUND_S)
    took = time.monotonic() - killed
    assert promoted == ("127.0.0.1", replica.port)
    print(f"\nfailover: the replica was promoted {took:.1f} s after the master was killed")

    # and redis-py's Sentinel client finds it (its next connection asks the sentinels), with every key
    wait_until(lambda: client.set("after", "yes"), timeout=10, what="a write on the new master")
    assert client.connection_pool.get_master_address() == promoted
    assert [client.get(f"k{i}") for i in range(KEYS)] == [str(i) for i in range(KEYS)]
    assert replica.client().get("after") == "yes"


def test_min_replicas_to_write_refuses_writes_without_a_replica(make_sentinel: Callable[..., SentinelCluster]) -> None:
    cluster = make_sentinel(min_replicas_to_write=1, min_replicas_max_lag=1)
    client = cluster.master_client()
    assert client.set("k", "with a replica")

    cluster.replicas()[0].kill()

    def refused() -> bool:
        try:
            client.set("k", "alone")
        except redis.ResponseError as exc:
            return "NOREPLICAS" in str(exc)
        return False

    wait_until(refused, timeout=5, what="the master to refuse writes")


def test_a_redis_sentinel_binary_is_preferred_where_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Debian's redis-sentinel package installs a link to redis-server: the binary runs as a sentinel by that name
    server = shutil.which("redis-server")
    assert server is not None
    (tmp_path / "redis-sentinel").symlink_to(server)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    assert sentinel_command.__wrapped__() == ("redis-sentinel",)


def test_without_a_sentinel_the_error_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(SentinelUnavailable, match="apt-get install -y redis-sentinel"):
        sentinel_command.__wrapped__()
