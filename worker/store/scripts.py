"""Lua scripts: loading them from ``lua/``, and sending them with other commands in one round trip."""

from __future__ import annotations

from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError


def load_script(client: redis.Redis, name: str) -> Any:
    """Register ``lua/<name>.lua``; redis-py re-sends the source after a ``NOSCRIPT`` (Redis restarts)."""
    source = resources.files("worker.store").joinpath("lua", f"{name}.lua").read_text()
    return client.register_script(source)


class OneTrip:
    """Commands and Lua scripts for one round trip (a non-transactional pipeline).

    Scripts go in by SHA: a redis-py ``Script`` in a pipeline first asks ``SCRIPT EXISTS``
    (``Pipeline.load_scripts``), a second round trip every time.  Only a script Redis no longer has
    (``NOSCRIPT``, after a restart) is sent again, alone, through its ``Script`` (which loads it):
    a pipeline runs every command, so the others have run by then.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.pipe = client.pipeline(transaction=False)
        self._scripts: dict[int, tuple[Any, list[Any], list[Any]]] = {}

    def script(self, script: Any, keys: list[Any], args: list[Any]) -> None:
        """Add a call of a registered script."""
        self._scripts[len(self.pipe)] = (script, keys, args)
        self.pipe.evalsha(script.sha, len(keys), *keys, *args)

    def execute(self) -> list[Any]:
        """Send everything; the replies in order (the first error other than ``NOSCRIPT`` is raised)."""
        replies = self.pipe.execute(raise_on_error=False)
        for index, reply in enumerate(replies):
            if isinstance(reply, NoScriptError) and index in self._scripts:
                script, script_keys, args = self._scripts[index]
                replies[index] = script(keys=script_keys, args=args)
            elif isinstance(reply, Exception):
                raise reply
        return replies
