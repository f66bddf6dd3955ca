"""The fault proxy (``tests/faultproxy/``) against a real redis-server and redis-py.

Also the redis-py fact behind issue 14 item 1: a client configured like ``worker/store/connect.py`` sends
a command again when its reply times out, so a command that ran runs twice.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from faultproxy import FaultProxy, command, script
from helpers import Api, tag
from procs import ROOT, RedisServer, WorkerProcess, wait_until
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from web import create_app
from worker.core.settings import Settings

#: Client socket timeout in these tests: a held reply outlasts it.
SOCKET_TIMEOUT = 0.3
#: How long a held reply is withheld: well past the socket timeout.
HOLD_S = 1.0
#: A script that changes state, like gemq's: each run adds one.
ADD_ONE = "return redis.call('INCR', KEYS[1])"

Proxied = tuple[FaultProxy, redis.Redis]


def key() -> str:
    """A key no other test uses."""
    return f"faultproxy:{uuid.uuid4().hex}"


def gemq_like(proxy: FaultProxy, **options: object) -> redis.Redis:
    """A client configured as ``worker/store/connect.py`` configures gemq's (retry and retry_on_error as there).

    redis-py 8.1 replays a command whose reply timed out, because:
    - ``Retry.__init__`` defaults ``supported_errors`` to ``(ConnectionError, TimeoutError, socket.timeout)``
      (redis/retry.py:79-89), and ``update_supported_errors`` only adds to them (redis/retry.py:55-61);
    - ``Connection.__init__`` deep-copies the ``retry`` given and adds ``retry_on_error`` to it
      (redis/connection.py:900-908): ``retry_on_error=[ConnectionError]`` removes nothing;
    - a socket read timeout becomes ``redis.exceptions.TimeoutError`` (redis/_parsers/hiredis.py:199-201;
      redis/connection.py:1416-1419 with the pure-Python parser);
    - ``Redis._execute_command`` runs send-and-read inside ``conn.retry.call_with_retry`` (redis/client.py:869-895),
      whose loop catches the supported errors, calls the failure callback (``_close_connection``: disconnect,
      redis/client.py:835-867), backs off and calls send-and-read again (redis/retry.py:118-135);
    - ``Pipeline.execute`` does the same for a whole pipeline or MULTI/EXEC (redis/client.py:2198-2236).
    """
    return redis.Redis.from_url(proxy.url, decode_responses=True, socket_timeout=SOCKET_TIMEOUT,
                                socket_connect_timeout=SOCKET_TIMEOUT,
                                retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
                                retry_on_error=[redis.ConnectionError], **options)


def no_retry_on_timeout(proxy: FaultProxy) -> redis.Redis:
    """A client that retries refused and broken connections only: ``supported_errors`` given in full."""
    return redis.Redis.from_url(proxy.url, decode_responses=True, socket_timeout=SOCKET_TIMEOUT,
                                retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3,
                                            supported_errors=(redis.ConnectionError,)))


def plain(proxy: FaultProxy, timeout: float = 5.0) -> redis.Redis:
    """A client that never retries."""
    return redis.Redis.from_url(proxy.url, decode_responses=True, socket_timeout=timeout,
                                retry=Retry(NoBackoff(), 0))


@pytest.fixture
def proxy(redis_server: RedisServer, make_proxy: Callable[[RedisServer], FaultProxy]) -> FaultProxy:
    """A proxy in front of the session's Redis."""
    return make_proxy(redis_server)


def test_pass_through_carries_commands_pipelines_and_pub_sub(proxy: FaultProxy, redis_server: RedisServer) -> None:
    client, k = plain(proxy), key()
    assert client.set(k, "v") and client.get(k) == "v"
    assert client.pipeline(transaction=True).incr(k + ":n").incr(k + ":n").get(k).execute() == [1, 2, "v"]
    pubsub = client.pubsub()
    pubsub.subscribe(k)
    wait_until(lambda: redis_server.client().publish(k, "hello"), timeout=5, what="the subscription")
    message = wait_until(lambda: pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2), timeout=5)
    assert message["data"] == "hello"
    pubsub.close()

    counts = proxy.counts
    assert (counts["SET"], counts["GET"], counts["MULTI"], counts["INCRBY"], counts["EXEC"]) == (1, 2, 1, 2, 1)


def test_a_retrying_client_runs_a_command_twice_when_its_reply_is_held(
    proxy: FaultProxy, redis_server: RedisServer
) -> None:
    # Given a client set up like gemq's, and the next INCRBY's reply held past its socket timeout
    # (redis-py's ``incr`` sends INCRBY)
    client, k = gemq_like(proxy), key()
    client.ping()  # connected before the fault, so only the command can time out
    rule = proxy.hold(HOLD_S, match="INCRBY", times=1)
    # When it increments once
    answer = client.incr(k)
    # Then it ran, timed out, was sent again and ran again: the counter is at 2
    assert (answer, redis_server.client().get(k), proxy.counts["INCRBY"], rule.hits) == (2, "2", 2, 1)


def test_a_client_that_does_not_retry_timeouts_runs_it_once(proxy: FaultProxy, redis_server: RedisServer) -> None:
    client, k = no_retry_on_timeout(proxy), key()
    client.ping()
    proxy.hold(HOLD_S, match="INCRBY", times=1)

    with pytest.raises(redis.TimeoutError):
        client.incr(k)

    assert (redis_server.client().get(k), proxy.counts["INCRBY"]) == ("1", 1)
    assert client.incr(k) == 2  # the connection it dropped is replaced


def test_a_held_script_reply_replays_that_script_and_only_it(proxy: FaultProxy, redis_server: RedisServer) -> None:
    # Given two scripts, and the reply of the first one's next run held
    client, k = gemq_like(proxy), key()
    add_one, add_one_too = client.register_script(ADD_ONE), client.register_script(ADD_ONE + " -- another")
    add_one(keys=[k]), add_one_too(keys=[k + ":other"])  # loaded (a first EVALSHA answers NOSCRIPT)
    proxy.reset_counts()
    proxy.hold(HOLD_S, match=script(ADD_ONE), times=1)
    # When each runs once more
    add_one(keys=[k])
    add_one_too(keys=[k + ":other"])
    # Then the held one ran twice (redis-py sends EVALSHA; the proxy matches it by the source's SHA1)
    assert (proxy.seen(script(ADD_ONE)), redis_server.client().get(k)) == (2, "3")
    assert (proxy.seen(script(ADD_ONE + " -- another")), redis_server.client().get(k + ":other")) == (1, "2")


def test_a_held_transaction_reply_replays_the_whole_transaction(proxy: FaultProxy, redis_server: RedisServer) -> None:
    client, k = gemq_like(proxy), key()
    client.ping()
    proxy.hold(HOLD_S, match="EXEC", times=1)

    assert client.pipeline(transaction=True).incr(k).incr(k).execute() == [3, 4]
    assert proxy.counts["EXEC"] == 2


def test_a_held_reply_is_delivered_late_and_the_replies_behind_it_wait(proxy: FaultProxy) -> None:
    client, k = plain(proxy), key()
    rule = proxy.hold(0.5, match=command("GET"), times=1)

    started = time.monotonic()
    assert client.pipeline(transaction=False).set(k, "v").get(k).ping().execute() == [True, "v", True]
    assert 0.5 <= time.monotonic() - started < 2
    assert rule.hits == 1 and rule.times == 0


def test_release_ends_a_hold_early(proxy: FaultProxy) -> None:
    client, k = plain(proxy), key()
    rule = proxy.hold(30, match="GET")
    threading.Timer(0.3, rule.release).start()

    started = time.monotonic()
    assert client.get(k) is None
    assert time.monotonic() - started < 5


def test_drop_after_the_command_ran_loses_only_the_reply(proxy: FaultProxy, redis_server: RedisServer) -> None:
    client, k = plain(proxy), key()
    proxy.drop(match="SET")

    with pytest.raises(redis.ConnectionError):
        client.set(k, "ran")

    assert redis_server.client().get(k) == "ran"
    assert client.set(k, "again")  # once only (times=1), on a new connection


def test_drop_before_forwarding_means_the_command_never_ran(proxy: FaultProxy, redis_server: RedisServer) -> None:
    client, k = plain(proxy), key()
    client.ping()
    proxy.drop(match="SET", before=True)

    with pytest.raises(redis.ConnectionError):
        client.set(k, "never")

    assert redis_server.client().get(k) is None
    assert proxy.counts["SET"] == 0


def test_drop_connections_closes_every_open_connection(proxy: FaultProxy) -> None:
    # Given a client blocked in BLPOP and another idle
    blocked, idle, k = plain(proxy), plain(proxy), key()
    idle.ping()
    errors: list[Exception] = []
    waiter = threading.Thread(target=lambda: errors.extend(_error_of(lambda: blocked.blpop([k], timeout=10))))
    waiter.start()
    wait_until(lambda: proxy.counts["BLPOP"] == 1, timeout=5, what="the BLPOP")
    # When every connection is dropped
    assert proxy.drop_connections() == 2
    # Then the command in flight fails, and the pool replaces the idle connection it finds closed
    waiter.join(timeout=5)
    assert [type(e) for e in errors] == [redis.ConnectionError]
    assert idle.ping() and blocked.ping()


def _error_of(call: Callable[[], object]) -> list[Exception]:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the test asserts the kind
        return [exc]
    return []


def test_refused_connections_and_open_ones_go_on(proxy: FaultProxy) -> None:
    open_client = plain(proxy)
    open_client.ping()

    proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
    with pytest.raises(redis.ConnectionError, match="refused"):
        plain(proxy).ping()
    assert open_client.ping()

    proxy.refuse(False)
    assert plain(proxy).ping()


def test_a_blackhole_accepts_and_never_answers(proxy: FaultProxy, redis_server: RedisServer) -> None:
    client, k = plain(proxy, timeout=SOCKET_TIMEOUT), key()
    client.ping()
    proxy.blackhole()

    with pytest.raises(redis.TimeoutError):
        client.set(k, "lost")
    with pytest.raises(redis.TimeoutError):
        plain(proxy, timeout=SOCKET_TIMEOUT).ping()  # a new connection: accepted, then silence

    proxy.blackhole(False)
    assert redis_server.client().get(k) is None and proxy.counts["SET"] == 0
    assert client.set(k, "after")  # its timed-out connection was dropped by redis-py; the new one is in step


def test_delay_forwards_late(proxy: FaultProxy) -> None:
    client = plain(proxy)
    proxy.delay(0.4, match="PING", times=2)

    started = time.monotonic()
    client.ping(), client.ping(), client.ping()
    assert 0.8 <= time.monotonic() - started < 2


def test_pass_through_removes_every_fault(proxy: FaultProxy) -> None:
    proxy.hold(30, match="PING")
    proxy.blackhole()
    proxy.refuse()

    proxy.pass_through()

    assert plain(proxy, timeout=2).ping()


def lua_source(name: str) -> str:
    """One of gemq's Lua scripts, wherever the package layout puts it."""
    return next(ROOT.glob(f"worker/**/lua/{name}.lua")).read_text()


def test_gemq_runs_through_the_proxy_and_answers_503_while_it_refuses(
    base_env: dict[str, str], tmp_path: Path, make_proxy: Callable[[RedisServer], FaultProxy],
    make_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a private Redis behind a proxy, and a worker and the web using the proxy's address
    server = RedisServer(tmp_path / "redis").start()
    try:
        proxy = make_proxy(server)
        env = {**base_env, "REDIS_URL": proxy.url}
        app = create_app(Settings.from_env(env))
        api = Api(app.test_client())
        make_worker("proxied", env=env, concurrency=4)
        # When a job runs
        job = api.submit(prompt=f"through the proxy {tag()}")
        assert api.wait(job["id"])["status"] == "succeeded"
        # Then its commands went through the proxy: the admission script (twice on a fresh Redis, where the
        # first EVALSHA answers NOSCRIPT), the broker's pops
        assert proxy.seen(script(lua_source("acquire"))) >= 1
        assert proxy.counts["BRPOP"] > 0 and proxy.counts["EVALSHA"] > 0
        # And while new connections are refused and open ones dropped, the web answers 503
        proxy.refuse()
        proxy.drop_connections()
        assert api.post("/v1/jobs", {"prompt": "refused"}).status_code == 503
        # and everything recovers once they are accepted again
        proxy.pass_through()
        again = api.submit(prompt=f"after {tag()}")
        assert api.wait(again["id"], timeout=30)["status"] == "succeeded"
        app.extensions["gemq"].metrics.sink.close()
    finally:
        server.kill()
