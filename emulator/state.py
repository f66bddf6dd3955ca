"""The mutable state of one emulator app: current config, log, quota windows, scripted faults."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from emulator.batchstore import BatchBook
from emulator.cachestore import CacheStore
from emulator.config import STARTUP_ONLY, EmulatorConfig
from emulator.faults import FaultBook
from emulator.filestore import FileStore
from emulator.media import FileLookup
from emulator.quota import Limits, QuotaTracker
from emulator.reqlog import RequestLog


class ConfigChangeRefused(ValueError):
    """A runtime config change named an unknown or start-up-only knob."""


class EmulatorState:
    """Everything the handlers share; owned by one aiohttp Application."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.startup = config
        self.config = config
        self.log = RequestLog(config.log_size, config.body_log_size)
        self.quota = QuotaTracker()
        self.faults = FaultBook()
        self.rng = random.Random(config.seed)
        self.caches = CacheStore()
        # Batch Mode and the Files API (emulator/batches.py, emulator/files.py).
        self.files = FileStore()
        self.batches = BatchBook(self.files)
        #: Resolves a `fileData.fileUri` to (mime type, bytes): an ACTIVE file of the Files API.
        self.file_lookup: FileLookup = self.files.lookup

    @property
    def limits(self) -> Limits:
        """The quota limits now in force (the same for every model)."""
        return Limits(rpm=self.config.rpm, tpm=self.config.tpm, rpd=self.config.rpd)

    def update_config(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """Apply a subset of knobs at runtime (pydantic.ValidationError on bad values)."""
        unknown = set(changes) - set(EmulatorConfig.model_fields)
        fixed = set(changes) & STARTUP_ONLY
        if unknown or fixed:
            raise ConfigChangeRefused(f"cannot change {sorted(unknown | fixed)} at runtime")
        new = self.config.updated(changes)
        if new.seed != self.config.seed:
            self.rng = random.Random(new.seed)
        self.log.resize(new.log_size, new.body_log_size)
        self.config = new
        return new

    def reset(self) -> None:
        """Back to the start-up config, with an empty log, quota windows, fault book, batches and files."""
        self.config = self.startup
        self.log = RequestLog(self.startup.log_size, self.startup.body_log_size)
        self.quota.clear()
        self.faults.clear()
        self.caches.clear()
        self.rng = random.Random(self.startup.seed)
        self.batches.clear()
        self.files.clear()


#: Where the app keeps its EmulatorState.
STATE_KEY = web.AppKey("emulator_state", EmulatorState)
