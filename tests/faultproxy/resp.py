"""A small RESP parser for the fault proxy: commands a client sends, and where a server's replies end.

Clients send a command as an array of bulk strings (``*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n``); a
pipeline is several in one write; a terminal may send an inline line (``PING\\r\\n``). Servers answer
with one RESP2 or RESP3 frame per command, plus RESP3 push frames (``>``) that answer nothing. Both
functions read a growing buffer from an offset and return ``None`` until a whole item is there, so
the proxy can forward, hold or drop each command and each reply on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Reply types whose frame is one line: simple string, error, integer, null, double, boolean, big number.
LINE_TYPES = frozenset(b"+-:_,#(")
#: Reply types with a length then that many bytes: bulk string, bulk error, verbatim string.
BULK_TYPES = frozenset(b"$!=")
#: Aggregate reply types and how many frames each counted element holds (a map's entry is two).
AGGREGATE_TYPES = {ord("*"): 1, ord("~"): 1, ord(">"): 1, ord("%"): 2, ord("|"): 2}
#: RESP3 push frame (pub/sub message, invalidation): not the reply to any command.
PUSH = ord(">")
#: An attribute frame annotates the frame after it; the two make one reply.
ATTRIBUTE = ord("|")
#: Longest inline command Redis accepts (``PROTO_INLINE_MAX_SIZE``).
INLINE_MAX = 64 * 1024


class ProtocolError(ValueError):
    """The bytes are not RESP."""


@dataclass(frozen=True)
class Command:
    """One command as a client sent it: the name upper-cased, the arguments as bytes."""

    name: str
    args: tuple[bytes, ...]


def _line(buf: bytes | bytearray, pos: int) -> tuple[bytes, int] | None:
    """The line at ``pos`` without its CRLF, and where the next one starts."""
    end = buf.find(b"\r\n", pos)
    return None if end < 0 else (bytes(buf[pos:end]), end + 2)


def _int(raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ProtocolError(f"not a length: {raw[:20]!r}") from None


def _command(words: list[bytes]) -> Command:
    return Command(words[0].decode("utf-8", "replace").upper(), tuple(words[1:]))


def _inline(buf: bytes | bytearray, pos: int) -> tuple[Command | None, int] | None:
    end = buf.find(b"\n", pos)
    if end < 0:
        if len(buf) - pos > INLINE_MAX:
            raise ProtocolError("inline command too long")
        return None
    words = bytes(buf[pos:end]).split()
    return (_command(words) if words else None), end + 1


def _array(buf: bytes | bytearray, pos: int) -> tuple[Command | None, int] | None:
    header = _line(buf, pos + 1)
    if header is None:
        return None
    count, pos = _int(header[0]), header[1]
    words: list[bytes] = []
    for _ in range(count):
        if pos >= len(buf):
            return None
        if buf[pos] != ord("$"):
            raise ProtocolError(f"expected a bulk string, got {bytes(buf[pos:pos + 1])!r}")
        header = _line(buf, pos + 1)
        if header is None:
            return None
        start, size = header[1], _int(header[0])
        if size < 0:
            raise ProtocolError("negative bulk length in a command")
        end = start + size
        if len(buf) < end + 2:
            return None
        if buf[end:end + 2] != b"\r\n":
            raise ProtocolError("bulk string longer than its length")
        words.append(bytes(buf[start:end]))
        pos = end + 2
    # Redis ignores an empty array (``*0``) as it ignores an empty inline line: nothing runs, nothing answers.
    return (_command(words) if words else None), pos


def parse_command(buf: bytes | bytearray, pos: int = 0) -> tuple[Command | None, int] | None:
    """The command starting at ``pos`` and the offset after it; ``None`` if it is not all there yet.

    The command is ``None`` for an empty line or array, which Redis skips without a reply.
    """
    if pos >= len(buf):
        return None
    return _array(buf, pos) if buf[pos] == ord("*") else _inline(buf, pos)


def frame_end(buf: bytes | bytearray, pos: int = 0) -> int | None:
    """The offset just past the reply frame starting at ``pos``; ``None`` if it is not all there yet."""
    if pos >= len(buf):
        return None
    kind = buf[pos]
    header = _line(buf, pos + 1)
    if header is None:
        return None
    raw, pos = header
    if kind in LINE_TYPES:
        return pos
    if kind in BULK_TYPES:
        size = _int(raw)
        end = pos if size < 0 else pos + size + 2
        return end if len(buf) >= end else None
    if kind not in AGGREGATE_TYPES:
        raise ProtocolError(f"unknown reply type {bytes([kind])!r}")
    for _ in range(max(0, _int(raw)) * AGGREGATE_TYPES[kind]):
        end_of_element = frame_end(buf, pos)
        if end_of_element is None:
            return None
        pos = end_of_element
    return frame_end(buf, pos) if kind == ATTRIBUTE else pos
