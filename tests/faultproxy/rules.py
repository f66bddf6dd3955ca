"""Faults the proxy applies and the commands they match."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from faultproxy.resp import Command

Matcher = Callable[[Command], bool]
#: A command name, a predicate, or ``None`` for every command.
Match = str | Matcher | None
#: Commands after which a connection's replies no longer pair one-to-one with its commands.
UNPAIRED = frozenset({"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR"})


def command(*names: str) -> Matcher:
    """Matches commands with one of these names (any case)."""
    wanted = {name.upper() for name in names}
    return lambda cmd: cmd.name in wanted


def script(source: str) -> Matcher:
    """Matches runs of this Lua script: ``EVALSHA`` of its SHA1 (as redis-py's ``Script`` sends) or ``EVAL``."""
    sha = hashlib.sha1(source.encode()).hexdigest().encode()
    body = source.encode()

    def matches(cmd: Command) -> bool:
        if not cmd.args:
            return False
        if cmd.name in ("EVALSHA", "EVALSHA_RO"):
            return cmd.args[0].lower() == sha
        return cmd.name in ("EVAL", "EVAL_RO") and cmd.args[0] == body

    return matches


def matcher(match: Match) -> Matcher:
    """The predicate ``match`` stands for."""
    if match is None:
        return lambda cmd: True
    return command(match) if isinstance(match, str) else match


def unpairs(cmd: Command) -> bool:
    """After ``cmd``, the connection's replies no longer answer its commands one by one."""
    return cmd.name in UNPAIRED or (cmd.name == "CLIENT" and cmd.args[:1] != () and cmd.args[0].upper() == b"REPLY")


@dataclass(eq=False)
class Rule:
    """One fault: what to do to the commands it matches, how many more times, how often it fired."""

    action: Literal["hold", "drop_before", "delay"]
    matches: Matcher
    times: int | None
    seconds: float = 0.0
    then: Literal["deliver", "drop"] = "deliver"
    hits: int = 0
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        """End this rule's holds now (each then delivers or drops as ``then`` says)."""
        self.released.set()

    def take(self, cmd: Command) -> bool:
        """Whether this rule applies to ``cmd``; if so, count it (the caller holds the proxy's lock)."""
        if (self.times is not None and self.times <= 0) or not self.matches(cmd):
            return False
        self.hits += 1
        self.times = None if self.times is None else self.times - 1
        return True
