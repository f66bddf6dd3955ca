"""A Gemini REST emulator for offline development, tests and benchmarks.

Run it with `python -m emulator --port 8090`; point google-genai at it with
`HttpOptions(base_url="http://127.0.0.1:8090", api_version="v1beta")` (or `GEMINI_BASE_URL`).
"""

from __future__ import annotations

from emulator.config import EmulatorConfig, load_config
from emulator.server import create_app, serve

__all__ = ["EmulatorConfig", "create_app", "load_config", "serve"]
