"""Run the Procfile's own command lines in tests, as ``make run`` (honcho) runs them: through a shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from honcho.environ import parse_procfile
from procs import BIN, ROOT


def procfile_commands() -> dict[str, str]:
    """Process name -> command line, parsed by honcho (the parser ``make run`` uses)."""
    return dict(parse_procfile((ROOT / "Procfile").read_text()).processes)


class ProcfileProcess:
    """One Procfile process, started with ``sh -c`` (variables expanded from ``env``).

    stderr (where gemq's logs go) is written to ``logfile``, stdout to ``logfile`` with ``.out``.
    """

    def __init__(self, name: str, env: Mapping[str, str], logfile: Path) -> None:
        self.command = procfile_commands()[name]
        self.env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', os.environ.get('PATH', ''))}"}
        self.logfile = logfile
        self.outfile = logfile.with_suffix(".out")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ProcfileProcess:
        """Start in its own process group."""
        with open(self.logfile, "ab") as log, open(self.outfile, "ab") as out:
            self.proc = subprocess.Popen(["/bin/sh", "-c", f"exec {self.command}"], cwd=ROOT, env=self.env,
                                         stdout=out, stderr=log, start_new_session=True)
        return self

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM the group, then SIGKILL if it lingers; the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log file as JSON (raises on the first line that is not a JSON object)."""
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise AssertionError(f"{path.name}:{number} is not JSON: {line[:200]!r}") from exc
        assert isinstance(item, dict), f"{path.name}:{number} is not a JSON object"
        out.append(item)
    return out


def log_events(path: Path) -> list[str]:
    """The ``event`` of every JSON line of a log file (other lines, such as Celery's banner, skipped)."""
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line).get("event"))
        except (ValueError, AttributeError):
            continue
    return events
