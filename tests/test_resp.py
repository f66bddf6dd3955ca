"""The fault proxy's RESP parser (``tests/faultproxy/resp.py``): commands as redis-py sends them, replies."""

from __future__ import annotations

import pytest
import redis
from faultproxy.resp import Command, ProtocolError, frame_end, parse_command


def packed(*args: str | bytes | int) -> bytes:
    """One command as redis-py puts it on the wire."""
    return b"".join(redis.Connection().pack_command(*args))


def commands(buf: bytes) -> tuple[list[Command | None], int]:
    """Every whole command in ``buf`` and where the first incomplete one starts."""
    found, pos = [], 0
    while (parsed := parse_command(buf, pos)) is not None:
        found.append(parsed[0])
        pos = parsed[1]
    return found, pos


def test_a_pipeline_parses_into_its_commands() -> None:
    wire = packed("SET", "k", "v\r\nwith crlf") + packed("EVALSHA", "ab" * 20, 1, "k", b"\x00\xff") + packed("GET", "k")

    assert commands(wire) == ([Command("SET", (b"k", b"v\r\nwith crlf")),
                               Command("EVALSHA", (b"ab" * 20, b"1", b"k", b"\x00\xff")),
                               Command("GET", (b"k",))], len(wire))


def test_an_incomplete_command_waits_for_more_bytes_at_every_cut() -> None:
    wire = packed("set", "key", "value")
    for cut in range(len(wire)):
        assert parse_command(wire[:cut]) is None, cut
    assert parse_command(wire) == (Command("SET", (b"key", b"value")), len(wire))


def test_inline_commands_and_empty_lines() -> None:
    wire = b"PING\r\n\r\nget  k\n*0\r\n"
    assert commands(wire) == ([Command("PING", ()), None, Command("GET", (b"k",)), None], len(wire))
    assert parse_command(b"PIN") is None


@pytest.mark.parametrize("wire", [b"*1\r\n:1\r\n", b"*x\r\n", b"*1\r\n$2\r\nabc\r\n", b"*1\r\n$-1\r\n"])
def test_malformed_commands_are_refused(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_command(wire)


@pytest.mark.parametrize("frame", [
    b"+OK\r\n", b"-ERR no\r\n", b":42\r\n", b"$5\r\nhe\r\nl\r\n", b"$-1\r\n", b"*-1\r\n", b"*0\r\n",
    b"*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n",  # nested, with a null inside
    b"_\r\n", b",3.14\r\n", b"#t\r\n", b"(12345678901234567890\r\n", b"!3\r\nerr\r\n", b"=7\r\ntxt:abc\r\n",
    b"%1\r\n+k\r\n*1\r\n:1\r\n", b"~2\r\n:1\r\n:2\r\n", b">2\r\n+message\r\n+x\r\n",
    b"|1\r\n+ttl\r\n:3\r\n+OK\r\n",  # an attribute and the reply it annotates
])
def test_a_reply_frame_ends_where_it_ends_and_not_before(frame: bytes) -> None:
    assert frame_end(frame + b"+next\r\n") == len(frame)
    for cut in range(len(frame)):
        assert frame_end(frame[:cut]) is None, (frame, cut)


def test_frames_are_found_from_an_offset() -> None:
    wire = b":1\r\n$3\r\nabc\r\n+OK\r\n"
    assert [frame_end(wire, 0), frame_end(wire, 4), frame_end(wire, 13)] == [4, 13, 18]


def test_an_unknown_reply_type_is_refused() -> None:
    with pytest.raises(ProtocolError):
        frame_end(b"?what\r\n")
