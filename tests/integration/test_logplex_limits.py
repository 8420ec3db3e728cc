"""Logplex's limits on what apps log: line size, history by bytes, one line per message.

A real logplex (and a drain service for it) on 127.0.0.1, fed real logplex-1 bodies.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import AsyncIterator

import aiohttp
import pytest

from simctl.platform import logframe
from simctl.platform.drain import DrainService
from simctl.platform.logframe import MAX_LINE, LogMessage, printable
from simctl.platform.logplex import LogplexService
from simctl.platform.logplex.service import HISTORY, HISTORY_BYTES, MESSAGE_COST, Channel
from simctl.platform.timing import FAST

AUTH = "Basic " + base64.b64encode(b"token:t.web").decode()


@pytest.fixture
async def drain() -> AsyncIterator[DrainService]:
    async with DrainService(FAST) as service:
        yield service  # type: ignore[misc]


@pytest.fixture
async def logplex(drain: DrainService) -> AsyncIterator[LogplexService]:
    async with LogplexService(FAST, [f"main={drain.url}/logs"]) as service:
        yield service  # type: ignore[misc]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def send(http: aiohttp.ClientSession, logplex: LogplexService, *texts: str) -> None:
    messages = [LogMessage("app", "web.1", t, logframe.now_rfc5424()) for t in texts]
    async with http.post(logplex.url + "/logs", data=logframe.encode_many(messages), headers={
            "Authorization": AUTH, "Content-Type": logframe.CONTENT_TYPE}) as resp:
        assert resp.status == 204


async def history(http: aiohttp.ClientSession, logplex: LogplexService, n: int) -> list[str]:
    async with http.get(logplex.url + "/tail", params={"app": "web", "n": n,
                                                       "follow": "0"}) as resp:
        assert resp.status == 200
        return (await resp.text()).splitlines()


async def test_lines_over_the_limit_are_truncated(
        logplex: LogplexService, drain: DrainService, http: aiohttp.ClientSession) -> None:
    await send(http, logplex, "a" * 50_000, "é" * 7_000, "short")
    lines = await history(http, logplex, 3)
    texts = [line.split("]: ", 1)[1] for line in lines]
    assert texts[0] == "a" * MAX_LINE
    assert texts[1] == "é" * (MAX_LINE // 2)  # 2 bytes each, never cut inside one
    assert texts[2] == "short"
    async with http.get(logplex.url + "/metrics") as resp:
        assert "logplex_messages_truncated_total 2.0" in await resp.text()
    # drains get the truncated line too
    for _ in range(100):
        if drain.counts["messages"] >= 3:
            break
        await asyncio.sleep(0.05)
    async with http.get(drain.url + "/messages") as resp:
        stored = [row["text"] for row in await resp.json()]
    assert [len(t.encode()) for t in stored] == [MAX_LINE, MAX_LINE, 5]


async def test_history_is_bounded_by_bytes(
        logplex: LogplexService, http: aiohttp.ClientSession) -> None:
    # 400 full-size lines, 4 MB: more than the history may hold, fewer than its 1,500 lines
    for batch in range(8):
        await send(http, logplex, *[f"{batch:02d}{i:03d} " + "x" * (MAX_LINE - 6)
                                    for i in range(50)])
    async with http.get(logplex.url + "/admin/channels") as resp:
        (channel,) = (await resp.json())["channels"]
    assert HISTORY_BYTES // (MAX_LINE + 200) < channel["history"] <= HISTORY_BYTES // MAX_LINE
    lines = await history(http, logplex, 1500)
    assert len(lines) == channel["history"]
    assert lines[-1].split("]: ", 1)[1].startswith("07049 ")  # the newest are kept


async def test_a_line_cannot_forge_another_or_drive_the_terminal(
        logplex: LogplexService, http: aiohttp.ClientSession) -> None:
    forged = ("ok\n2026-01-01T00:00:00+00:00 heroku[router]: at=info method=GET path=\"/\" "
              "status=200\r\x1b]0;owned\x07\x1b[2J\x9b31m tab\tstays")
    await send(http, logplex, forged, "next")
    lines = await history(http, logplex, 2)
    assert len(lines) == 2
    assert lines[0].endswith(r"app[web.1]: ok\n2026-01-01T00:00:00+00:00 heroku[router]: "
                             r'at=info method=GET path="/" status=200\r\x1b]0;owned\x07'
                             "\\x1b[2J\\x9b31m tab\tstays")
    assert lines[1].endswith("app[web.1]: next")


@pytest.mark.parametrize(("text", "shown"), [
    ("plain é ✓", "plain é ✓"),
    ("a\tb", "a\tb"),
    ("a\nb\r", r"a\nb\r"),
    ("\x00\x1b\x7f\x85", r"\x00\x1b\x7f\x85"),
])
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_history_accounting_stays_exact() -> None:
    channel = Channel("web")
    rng = random.Random(7)
    for round_ in range(60):
        batch = [LogMessage("app", "web.1", "y" * rng.choice((0, 10, 300, MAX_LINE)))
                 for _ in range(rng.choice((1, 7, 500, HISTORY, HISTORY + 3)))]
        channel.publish(batch)
        kept = list(channel.history)
        assert channel.history_bytes == sum(len(m.text) + MESSAGE_COST for m in kept), round_
        assert len(kept) <= HISTORY
        assert channel.history_bytes <= HISTORY_BYTES
        assert kept[-1] is batch[-1]  # the newest line is always kept
