"""The Files API's storage: files and resumable upload sessions, in memory, with the API's limits.

A file is `files/<id>` with its bytes, MIME type, display name, source (UPLOADED by a client,
GENERATED for a batch's results), create/update/expiration times and a processing window (state
PROCESSING until `active_at`, then ACTIVE). Files past their expiration time are gone, as on the
real API (48 h for uploads). Uploaded bytes count against a total cap; generated files do not.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

from emulator.resources import new_id, rfc3339

#: Length of a generated file id (`files/p1mds9fl15bs` in the real API's examples).
FILE_ID_LENGTH = 12
#: The API's rule for a file id a client chooses: up to 40 lowercase alphanumerics or dashes.
FILE_ID_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
#: The file id at the end of a `fileData.fileUri` (`files/<id>` or `https://.../files/<id>`).
FILE_URI_RE = re.compile(r"(?:^|/)files/([a-z0-9-]+)$")
#: Longest id `files.get` and `files.delete` accept (batch result files are longer: issue #1613).
MAX_ID_CHARS = 40
#: How long a batch's results file stays downloadable ("stored ... for 6 weeks", Batch API guide).
RESULTS_TTL_S = 6 * 7 * 24 * 3600.0


class FileError(Exception):
    """A Files API call that cannot be served: answer ``status`` with ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class StoredFile:
    """One file and its metadata."""

    id: str
    seq: int
    mime_type: str
    data: bytes
    create_time: float
    expire_time: float
    active_at: float
    source: str = "UPLOADED"
    display_name: str | None = None

    @property
    def name(self) -> str:
        """`files/<id>`."""
        return f"files/{self.id}"

    def resource(self, base_url: str, now: float) -> dict[str, Any]:
        """The File resource as the API returns it (`sizeBytes` an int64 string, `sha256Hash` base64)."""
        body: dict[str, Any] = {"name": self.name}
        if self.display_name:
            body["displayName"] = self.display_name
        body.update(
            mimeType=self.mime_type,
            sizeBytes=str(len(self.data)),
            createTime=rfc3339(self.create_time),
            updateTime=rfc3339(max(self.create_time, min(now, self.active_at))),
            expirationTime=rfc3339(self.expire_time),
            sha256Hash=base64.b64encode(hashlib.sha256(self.data).digest()).decode(),
            uri=f"{base_url}/files/{self.id}",
        )
        if self.source == "GENERATED":
            body["downloadUri"] = f"{base_url}/files/{self.id}:download?alt=media"
        body["state"] = "ACTIVE" if now >= self.active_at else "PROCESSING"
        body["source"] = self.source
        return body


@dataclass
class UploadSession:
    """A resumable upload between `start` and `finalize`."""

    id: str
    file_id: str
    mime_type: str
    display_name: str | None
    declared_size: int | None
    received: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class FileLimits:
    """The knobs the store enforces."""

    max_file_bytes: int
    max_total_bytes: int
    ttl_s: float
    processing_s: float


class FileStore:
    """Every file and upload session of the emulated project."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}
        self._sessions: dict[str, UploadSession] = {}
        self._seq = 0

    def start_upload(
        self, *, file_id: str | None, mime_type: str, display_name: str | None, size: int | None, limits: FileLimits,
        now: float,
    ) -> UploadSession:
        """Open a session (FileError when the name is bad or taken, or the size is over a cap)."""
        self.purge(now)
        if file_id is not None:
            if not FILE_ID_RE.match(file_id):
                raise FileError(400, f"Invalid file name: files/{file_id}. The ID can contain up to 40 lowercase "
                                     "alphanumeric characters or dashes (-) and cannot start or end with a dash.")
            if file_id in self._files:
                raise FileError(409, f"File files/{file_id} already exists.")
        if size is not None:
            self._check_size(size, size, limits)
        session = UploadSession(new_id(32), file_id or new_id(FILE_ID_LENGTH), mime_type, display_name, size)
        self._sessions[session.id] = session
        return session

    def session(self, upload_id: str) -> UploadSession:
        """The open session ``upload_id`` (FileError 404 when there is none)."""
        session = self._sessions.get(upload_id)
        if session is None:
            raise FileError(404, "No upload session with this id: it was finalized, cancelled or never started.")
        return session

    def drop_session(self, session: UploadSession) -> None:
        """End a session without a file (cancelled, or failed)."""
        self._sessions.pop(session.id, None)

    def append(self, session: UploadSession, offset: int, chunk: bytes, limits: FileLimits) -> None:
        """Add a chunk at ``offset`` (FileError when the offset is not where the upload stands, or too big)."""
        if offset != len(session.received):
            raise FileError(400, f"Invalid X-Goog-Upload-Offset {offset}: {len(session.received)} bytes received.")
        self._check_size(len(session.received) + len(chunk), len(chunk), limits)
        session.received += chunk

    def finalize(self, session: UploadSession, limits: FileLimits, now: float) -> StoredFile:
        """Turn a session into a file."""
        del self._sessions[session.id]
        if session.declared_size is not None and session.declared_size != len(session.received):
            raise FileError(400, f"Upload size {len(session.received)} does not match the declared size "
                                 f"{session.declared_size}.")
        if session.file_id in self._files:
            raise FileError(409, f"File files/{session.file_id} already exists.")
        return self._add(StoredFile(
            session.file_id, 0, session.mime_type, bytes(session.received), now, now + limits.ttl_s,
            now + limits.processing_s, display_name=session.display_name,
        ))

    def add_generated(self, file_id: str, data: bytes, mime_type: str, now: float) -> StoredFile:
        """Store a file the service produced (a batch's results), downloadable for six weeks."""
        return self._add(StoredFile(file_id, 0, mime_type, data, now, now + RESULTS_TTL_S, now, source="GENERATED"))

    def get(self, file_id: str, now: float, *, check_length: str | None = None) -> StoredFile:
        """The live file ``file_id``; ``check_length`` names the request whose 40-character rule applies."""
        if check_length and len(file_id) > MAX_ID_CHARS:
            raise FileError(400, f"{check_length}.name: File ID (name excluding 'files/') cannot be more than "
                                 f"{MAX_ID_CHARS} characters.")
        self.purge(now)
        found = self._files.get(file_id)
        if found is None:
            raise FileError(403, f"You do not have permission to access the File {file_id} or it may not exist.")
        return found

    def delete(self, file_id: str, now: float) -> None:
        """Remove a file (as `files.delete`: the 40-character rule applies)."""
        self.get(file_id, now, check_length="DeleteFileRequest")
        del self._files[file_id]

    def lookup(self, uri: str) -> tuple[str, bytes] | None:
        """(MIME type, bytes) of the ACTIVE file a `fileData.fileUri` names, else None: the hook generation
        uses to count a file part's tokens (issue 15's `EmulatorState.file_lookup`)."""
        match = FILE_URI_RE.search(uri)
        now = time.time()
        self.purge(now)
        found = self._files.get(match.group(1)) if match else None
        return (found.mime_type, found.data) if found is not None and now >= found.active_at else None

    def listing(self, now: float) -> list[StoredFile]:
        """Every live file."""
        self.purge(now)
        return list(self._files.values())

    def uploaded_bytes(self) -> int:
        """Bytes of uploaded (not generated) files and open sessions: what the storage cap counts."""
        stored = sum(len(f.data) for f in self._files.values() if f.source == "UPLOADED")
        return stored + sum(len(s.received) for s in self._sessions.values())

    def purge(self, now: float) -> None:
        """Forget files past their expiration time."""
        for file_id in [i for i, f in self._files.items() if f.expire_time <= now]:
            del self._files[file_id]

    def clear(self) -> None:
        """Drop every file and session."""
        self._files.clear()
        self._sessions.clear()

    def _add(self, stored: StoredFile) -> StoredFile:
        self._seq += 1
        stored.seq = self._seq
        self._files[stored.id] = stored
        return stored

    def _check_size(self, file_size: int, added: int, limits: FileLimits) -> None:
        """Refuse a file over the per-file cap, or ``added`` bytes that would pass the project's cap."""
        if file_size > limits.max_file_bytes:
            raise FileError(400, f"File size {file_size} bytes exceeds the maximum of {limits.max_file_bytes} bytes.")
        if self.uploaded_bytes() + added > limits.max_total_bytes:
            raise FileError(429, f"Project file storage quota exceeded: {limits.max_total_bytes} bytes in all.")
