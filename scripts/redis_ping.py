"""Exit 0 if a Redis answers at the URL given as the only argument (``python -m scripts.redis_ping URL``)."""

from __future__ import annotations

import sys

import redis


def main() -> int:
    """Ping once with a short timeout."""
    try:
        return 0 if redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping() else 1
    except redis.RedisError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
