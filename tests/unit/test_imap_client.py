"""The IMAP client's FETCH reading gives what aioimaplib's own gives, in linear time."""
from __future__ import annotations

import asyncio
import re

import aioimaplib
import pytest

from connectors.email.imap_client import ClientProtocol, LinearFetchCommand


class Wire(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent = b""

    def write(self, data: bytes) -> None:
        self.sent += data

    def is_closing(self) -> bool:
        return False


# Literals hold what a naive reader would trip over: parentheses, CRLF, text like a FETCH line.
MESSAGES = [
    b"From: a@x.cn\r\nSubject: (1) ((\r\n\r\n1 FETCH (UID 9 BODY[] {3}\r\nabc)\r\n",
    b"From: b@x.cn\r\n\r\n))) :-)\r\n",
    b"x",
]


def fetch_response(tag: bytes) -> bytes:
    out = b""
    for uid, raw in enumerate(MESSAGES, start=1):
        out += b'* %d FETCH (UID %d INTERNALDATE "23-Nov-2026 17:30:00 +0800" BODY[] {%d}\r\n%s)\r\n' % (
            uid, uid, len(raw), raw)
    out += b"* 2 FETCH (FLAGS (\\Seen) UID 2)\r\n"          # an untagged update in between
    return out + tag + b" OK Fetch completed.\r\n"


async def fetch_sent(protocol_class, parts: str):
    """A protocol in the SELECTED state, and a UID FETCH 1:3 of `parts` written to its wire."""
    protocol = protocol_class(asyncio.get_running_loop(), None)
    wire = Wire()
    protocol.connection_made(wire)
    protocol.state = aioimaplib.SELECTED
    fetch = asyncio.ensure_future(protocol.fetch("1:3", parts, by_uid=True, timeout=5))
    while not wire.sent:
        await asyncio.sleep(0)
    return protocol, wire, fetch


async def read(protocol_class, chunk: int) -> aioimaplib.Response:
    protocol, wire, fetch = await fetch_sent(protocol_class, "(UID INTERNALDATE BODY.PEEK[])")
    data = fetch_response(wire.sent.split()[0])
    for i in range(0, len(data), chunk):
        protocol.data_received(data[i:i + chunk])
    return await asyncio.wait_for(fetch, 5)


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 100_000])
async def test_a_fetch_response_reads_as_with_aioimaplib_however_it_is_split(chunk):
    ours, theirs = await read(ClientProtocol, chunk), await read(aioimaplib.IMAP4ClientProtocol, chunk)
    assert ours.result == theirs.result == "OK"
    assert [bytes(x) for x in ours.lines] == [bytes(x) for x in theirs.lines]
    assert [bytes(x) for x in ours.lines if isinstance(x, bytearray)] == MESSAGES


async def test_wait_data_agrees_with_aioimaplib_line_by_line():
    lines = [b"1 FETCH (UID 1 BODY[] {3}", bytearray(b"(((" ), b")", b"2 FETCH (FLAGS (\\Seen", b"\\Answered)",
             b"UID 2)", b"3 FETCH (UID 3 BODY[] {2}", bytearray(b"))"), b" INTERNALDATE \"x\")", b"noise (((",
             b"4 FETCH (UID 4)"]
    ours = LinearFetchCommand("A1", "1:3", "(BODY[])")
    theirs = aioimaplib.FetchCommand("A1", "1:3", "(BODY[])")
    for line in lines:
        ours.append_to_resp(line)
        theirs.append_to_resp(line)
        assert ours.wait_data() == theirs.wait_data(), line


async def test_the_timeout_counts_from_the_last_data_received():
    command = LinearFetchCommand("A1", "1", "(BODY[])", timeout=0.2)
    for _ in range(6):                    # data every 0.1 s: 0.6 s in all, no timeout
        await asyncio.sleep(0.1)
        command.append_to_resp(b"1 FETCH (UID 1")
        assert not command._event.is_set()
    started = asyncio.get_running_loop().time()
    with pytest.raises(aioimaplib.CommandTimeout):
        await command.wait()
    assert 0.05 < asyncio.get_running_loop().time() - started < 1.0


async def test_the_client_writes_fetch_commands_as_aioimaplib_does():
    for protocol_class in (ClientProtocol, aioimaplib.IMAP4ClientProtocol):
        _, wire, task = await fetch_sent(protocol_class, "(BODY.PEEK[])")
        assert re.fullmatch(rb"[A-P]+\d+ UID FETCH 1:3 \(BODY.PEEK\[\]\)\r\n", wire.sent)
        task.cancel()
