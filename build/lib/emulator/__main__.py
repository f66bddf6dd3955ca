"""`python -m emulator [--port 8090 ...]`: run the Gemini emulator (flags override EMULATOR_* env)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from emulator.config import load_config
from emulator.server import serve


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the config, then serve until SIGINT/SIGTERM."""
    try:
        config = load_config(argv)
    except ValidationError as exc:
        print(f"emulator: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
