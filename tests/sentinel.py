"""A Redis Sentinel deployment for tests: one master, replicas and three sentinels on free loopback ports.

Each process has its own directory and file (a sentinel rewrites its config as it learns); timings
are small so a failover ends within a few seconds (3-4 s here); nodes keep an AOF (``everysec``)::

    cluster = SentinelCluster(tmp_path).start()      # returns once every sentinel knows everyone
    env = {"REDIS_URL": cluster.url()}                # sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/0
    old = cluster.kill_master()                       # SIGKILL, as a crash
    new = cluster.wait_failover(old)                  # the promoted replica's (host, port)
    cluster.stop()

A sentinel is ``redis-sentinel <conf>`` where Debian's redis-sentinel package links it, else
``redis-server <conf> --sentinel`` (the same binary); :func:`sentinel_command` finds which works
and raises :class:`SentinelUnavailable`, carrying the install command, when neither does.
"""

from __future__ import annotations

import functools
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import redis
from procs import RedisServer, free_port, wait_until

#: The name the sentinels know the master by (``REDIS_SENTINEL_MASTER``'s default in issue 14).
MASTER_NAME = "mymaster"
#: Milliseconds without an answer before a sentinel deems the master down (Redis' default: 30,000). Above the
#: sentinels' 1 s ping period: a sentinel starts timing a new master's silence when it switches to it and first
#: pings it a period later (sentinel.c ``createInstanceLink``), so with 1000 a just-promoted master can be deemed
#: down before its first PONG; this happened here under load and started a second failover.
DOWN_AFTER_MS = 2000
#: Milliseconds a failover may take before another sentinel tries (Redis' default: 180,000).
FAILOVER_TIMEOUT_MS = 3000
#: What to install when no binary here runs as a sentinel.
INSTALL_HINT = ("Redis Sentinel is missing: sudo apt-get install -y redis-sentinel (Debian/Ubuntu; "
                "'redis-server <conf> --sentinel' also works) or brew install redis (macOS)")


class SentinelUnavailable(RuntimeError):
    """No binary here starts a Redis Sentinel."""


@functools.cache
def sentinel_command() -> tuple[str, ...]:
    """The command that starts a sentinel from a config file (the file is appended after it)."""
    candidates: list[tuple[str, ...]] = []
    if shutil.which("redis-sentinel"):
        candidates.append(("redis-sentinel",))
    if shutil.which("redis-server"):
        candidates.append(("redis-server", "--sentinel"))
    for candidate in candidates:
        with tempfile.TemporaryDirectory(prefix="gemq-sentinel-probe-") as tmp:
            probe = SentinelProcess(Path(tmp), free_port(), command=candidate)
            try:
                probe.start(timeout=5)
                return candidate
            except (OSError, TimeoutError):
                continue
            finally:
                probe.kill()
    raise SentinelUnavailable(INSTALL_HINT)


class SentinelProcess:
    """One sentinel with its own directory and config file, monitoring ``master_port`` once started."""

    def __init__(self, workdir: Path, master_port: int, *, command: tuple[str, ...] | None = None,
                 master_name: str = MASTER_NAME, quorum: int = 2, down_after_ms: int = DOWN_AFTER_MS,
                 failover_timeout_ms: int = FAILOVER_TIMEOUT_MS) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.command = command
        self.config = self.workdir / "sentinel.conf"
        self.config.write_text("\n".join([
            f"port {self.port}", "bind 127.0.0.1", f"dir {self.workdir}", f"logfile {self.workdir / 'sentinel.log'}",
            f"sentinel monitor {master_name} 127.0.0.1 {master_port} {quorum}",
            f"sentinel down-after-milliseconds {master_name} {down_after_ms}",
            f"sentinel failover-timeout {master_name} {failover_timeout_ms}",
            f"sentinel parallel-syncs {master_name} 1", "",
        ]))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> SentinelProcess:
        """Start and wait until it answers as a sentinel."""
        command = self.command or sentinel_command()
        # The config path goes first: redis-server reads its first argument as the config file.
        args = [command[0], str(self.config), *command[1:]]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.client().info("server")["redis_mode"] == "sentinel", timeout=timeout,
                   what=f"a sentinel on port {self.port}")
        return self

    def client(self) -> redis.Redis:
        """A client for the sentinel itself (``SENTINEL ...`` commands)."""
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=2, socket_connect_timeout=2)

    def kill(self) -> None:
        """Kill at once."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class SentinelCluster:
    """A master, ``replicas`` replicas and ``sentinels`` sentinels (quorum: a majority) in ``workdir``.

    With ``min_replicas_to_write``, every node refuses writes (``NOREPLICAS``) unless that many replicas
    are connected and acknowledged within ``min_replicas_max_lag`` seconds; set on every node because
    any may be promoted. Note that a promoted node with fewer replicas left then refuses writes.
    """

    def __init__(self, workdir: Path, *, replicas: int = 1, sentinels: int = 3, master_name: str = MASTER_NAME,
                 down_after_ms: int = DOWN_AFTER_MS, failover_timeout_ms: int = FAILOVER_TIMEOUT_MS,
                 min_replicas_to_write: int = 0, min_replicas_max_lag: int = 10, appendonly: bool = True) -> None:
        self.workdir = workdir
        self.master_name = master_name
        # Diskless sync without its 5 s wait, so a replica is in step within a second of starting.
        options = ["--repl-diskless-sync-delay", "0", "--min-replicas-to-write", str(min_replicas_to_write),
                   "--min-replicas-max-lag", str(min_replicas_max_lag)]
        # AOF as gemq requires: a node restarted without it comes back empty, and if the sentinels then
        # promote it, every replica resyncs from it and loses everything (Redis' replication docs warn).
        self.nodes = [RedisServer(workdir / "node-0", appendonly=appendonly, args=options)]
        master_port = self.nodes[0].port
        self.nodes += [RedisServer(workdir / f"node-{i}", appendonly=appendonly,
                                   args=[*options, "--replicaof", "127.0.0.1", str(master_port)])
                       for i in range(1, replicas + 1)]
        self.sentinels = [SentinelProcess(workdir / f"sentinel-{i}", master_port, master_name=master_name,
                                          quorum=sentinels // 2 + 1, down_after_ms=down_after_ms,
                                          failover_timeout_ms=failover_timeout_ms) for i in range(sentinels)]

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """The sentinels' (host, port)s, as redis-py's ``Sentinel`` takes them."""
        return [("127.0.0.1", s.port) for s in self.sentinels]

    def url(self, db: int = 0) -> str:
        """``sentinel://host:port,host:port,host:port/db``: the ``REDIS_URL`` gemq accepts (issue 14)."""
        return "sentinel://" + ",".join(f"{h}:{p}" for h, p in self.sentinel_addresses) + f"/{db}"

    def start(self, timeout: float = 30) -> SentinelCluster:
        """Start everything; return once replicas are in step and every sentinel knows them and the others."""
        for node in self.nodes:
            node.start()
        for sentinel in self.sentinels:
            sentinel.start()
        wait_until(self._ready, timeout=timeout, what="the sentinels to know the replicas and each other")
        return self

    def _ready(self) -> bool:
        if self.nodes[0].client().info("replication")["connected_slaves"] < len(self.nodes) - 1:
            return False
        for sentinel in self.sentinels:
            state = sentinel.client().sentinel_master(self.master_name)
            if state["num-slaves"] < len(self.nodes) - 1 or state["num-other-sentinels"] < len(self.sentinels) - 1:
                return False
        return True

    def master_address(self) -> tuple[str, int]:
        """The master's (host, port) as the first sentinel that answers names it."""
        for sentinel in self.sentinels:
            try:
                host, port = sentinel.client().sentinel_get_master_addr_by_name(self.master_name)
                return str(host), int(port)
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no sentinel answers")

    def master(self) -> RedisServer:
        """The node the sentinels name master."""
        port = self.master_address()[1]
        return next(node for node in self.nodes if node.port == port)

    def replicas(self) -> list[RedisServer]:
        """The nodes that are not the master (running or not)."""
        port = self.master_address()[1]
        return [node for node in self.nodes if node.port != port]

    def master_client(self, **options: object) -> redis.Redis:
        """A redis-py client that asks the sentinels where the master is (on every new connection)."""
        sentinel = redis.Sentinel(self.sentinel_addresses, socket_timeout=1, socket_connect_timeout=1)
        return sentinel.master_for(self.master_name, **{"decode_responses": True, "socket_timeout": 1,
                                                        "socket_connect_timeout": 1, **options})

    def kill_master(self) -> tuple[str, int]:
        """SIGKILL the master, as a crash; its (host, port)."""
        address = self.master_address()
        self.master().kill()
        return address

    def pause_master(self) -> tuple[RedisServer, tuple[str, int]]:
        """SIGSTOP the master, as a hung host or a partition would look; the node and its (host, port).

        Clients connected to it wait; once resumed (:meth:`resume`) it answers them and accepts writes
        until the sentinels make it a replica of the new master, which drops what it took meanwhile.
        """
        address = self.master_address()
        node = self.master()
        assert node.proc is not None
        node.proc.send_signal(signal.SIGSTOP)
        return node, address

    def resume(self, node: RedisServer) -> None:
        """SIGCONT a node paused by :meth:`pause_master`."""
        assert node.proc is not None
        node.proc.send_signal(signal.SIGCONT)

    def wait_replicated(self, timeout: float = 30) -> None:
        """Wait until the master has every other running node as a replica in step (``master_link_status:up``)."""
        def in_step() -> bool:
            master = self.master()
            running = [n for n in self.nodes if n is not master and n.proc is not None and n.proc.poll() is None]
            return all(n.client().info("replication").get("master_link_status") == "up"
                       and n.client().info("replication").get("master_port") == master.port for n in running)

        wait_until(in_step, timeout=timeout, interval=0.1, what="the replicas to follow the master")

    def wait_failover(self, old: tuple[str, int], timeout: float = 30) -> tuple[str, int]:
        """Wait until every sentinel names a master other than ``old`` and that node says it is master."""
        def promoted() -> tuple[str, int] | None:
            named = {s.client().sentinel_get_master_addr_by_name(self.master_name) for s in self.sentinels}
            if len(named) != 1:
                return None
            host, port = named.pop()
            if (host, int(port)) == old:
                return None
            role = redis.Redis(host=host, port=int(port), socket_timeout=1).role()
            return (str(host), int(port)) if role[0] in ("master", b"master") else None

        address = wait_until(promoted, timeout=timeout, interval=0.1, what=f"a failover away from {old}")
        assert address is not None  # wait_until returns only a truthy value
        return address

    def stop(self) -> None:
        """Kill the sentinels (so none fails over meanwhile), then the nodes."""
        for sentinel in self.sentinels:
            sentinel.kill()
        for node in self.nodes:
            node.kill()
