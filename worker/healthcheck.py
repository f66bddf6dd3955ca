"""The entry point of ``python -m worker.healthcheck (worker | URL)``, the containers' health check.

The check itself is ``worker.process.healthcheck``; this module keeps the command that
docker-compose.yml and the Dockerfile run.
"""

from __future__ import annotations

import sys

from worker.process.healthcheck import main

if __name__ == "__main__":
    sys.exit(main())
