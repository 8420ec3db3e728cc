"""The web view's drill page and `simctl report` on a drill folder written with the drill
API (a real HTTP server on 127.0.0.1; no stack: the page reads only the drill's files)."""

from __future__ import annotations

import time

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from simctl.cli import main
from simctl.drill import state
from simctl.drill.timeline import Timeline, read_timeline
from simctl.views.drill_page import TOKEN_HEADER
from simctl.views.snapshot import Collector
from simctl.views.web import build_app

PROJECT = "drillpage"
TOKEN = "facilitator-secret"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def hidden_drill(tmp_path, monkeypatch):
    """A running hidden drill of slow-dyno: a fault applied, an alert firing."""
    monkeypatch.setenv("SIMCTL_STATE_DIR", str(tmp_path))
    now = time.time()
    drill = state.Drill(id=state.new_id(now), project=PROJECT, scenario="slow-dyno",
                        options={"hidden": True}, token_sha256=state.hash_token(TOKEN),
                        started_at=now - 30, phase="faulted")
    drill.save()
    book = Timeline(drill.timeline_path, hidden=True)
    book.append("drill_started", hidden=True, t=now - 30, drill=drill.id, scenario="slow-dyno",
                title="A slow dyno", conceal=False, timing="fast", responders=[], delay=0)
    book.append("fault_applied", t=now - 20, name="fault-1", fault_kind="toxic",
                target="web.1", description="latency 4000 ms on web.1")
    book.append("sli", t=now - 15, success_ratio=0.6, p50_ms=3, p99_ms=3000, rps=30,
                failed=12, hcodes={"H12": 12}, drain_dropped=0, window_s=1)
    book.append("alert", t=now - 10, alert="RouterRequestTimeouts", state="firing", value=1,
                summary="H12", runbook="h12-request-timeouts")
    return drill


@pytest.fixture
async def client(hidden_drill):
    collector = Collector("http://127.0.0.1:9", {}, "10s")  # never asked: no /api/snapshot
    made = TestClient(TestServer(build_app(collector, project=PROJECT), host="127.0.0.1"))
    await made.start_server()
    yield made
    await made.close()


async def test_responders_see_no_hidden_entry_and_the_facilitator_sees_all(client):
    view = await (await client.get("/api/drill")).json()
    kinds = [e["kind"] for e in view["entries"]]
    assert kinds == ["alert"]  # no drill_started (names the scenario), no fault, no sli
    assert "score" not in view
    assert "scenario" not in view
    assert "web.1" not in str(view)
    # the alert links its runbook, named after the symptom: not the hidden scenario's id
    assert view["entries"][0]["runbook"] == "h12-request-timeouts"
    assert "slow-dyno" not in str(view)
    full = await (await client.get("/api/drill", headers={TOKEN_HEADER: TOKEN})).json()
    assert [e["kind"] for e in full["entries"]] == ["drill_started", "fault_applied", "alert"]
    assert full["score"]["time_to_alert"] == pytest.approx(10, abs=0.5)
    assert (await client.get("/api/drill", headers={TOKEN_HEADER: "nope"})).status == 401
    page = await client.get("/drill")
    assert page.status == 200
    assert "/static/drill.js" in await page.text()
    assert (await client.get("/static/drill.js")).status == 200


async def test_ack_hint_and_note_are_written_to_the_timeline(client, hidden_drill):
    assert (await client.post("/api/drill/ack", json={"who": "ana"})).status == 200
    note = await client.post("/api/drill/note", json={"who": "ana", "text": "web.1 is slow"})
    assert note.status == 200
    first = await (await client.post("/api/drill/hint", json={"who": "ben"})).json()
    assert first["text"].startswith("Group the H12 lines")
    assert first["penalty_s"] == 60
    assert (await client.post("/api/drill/hint", json={"who": "ben"})).status == 200
    assert (await client.post("/api/drill/hint", json={"who": "ben"})).status == 409  # 2 hints
    added = [(e["kind"], e["who"]) for e in read_timeline(hidden_drill.timeline_path)
             if e["kind"] in ("ack", "note", "hint")]
    assert added == [("ack", "ana"), ("note", "ana"), ("hint", "ben"), ("hint", "ben")]


async def test_actions_refuse_bad_input_and_browsers_from_elsewhere(client, hidden_drill):
    before = len(read_timeline(hidden_drill.timeline_path))
    assert (await client.post("/api/drill/ack", json={"who": ""})).status == 400
    assert (await client.post("/api/drill/note", json={"who": "ana", "text": " "})).status == 400
    assert (await client.post("/api/drill/ack", data="not json", headers=JSON)).status == 400
    plain = await client.post("/api/drill/ack", data='{"who": "ana"}',
                              headers={"Content-Type": "text/plain"})
    assert plain.status == 415
    cross = await client.post("/api/drill/ack", json={"who": "ana"},
                              headers={"Origin": "http://evil.example"})
    assert cross.status == 403
    assert (await client.post("/api/drill/end", json={"who": "ana"})).status == 404
    assert len(read_timeline(hidden_drill.timeline_path)) == before
    hidden_drill.status = state.ENDED
    hidden_drill.save()
    assert (await client.post("/api/drill/ack", json={"who": "ana"})).status == 409


async def test_beyond_loopback_the_web_token_is_required(hidden_drill):
    collector = Collector("http://127.0.0.1:9", {}, "10s")
    app = build_app(collector, token="web-token", project=PROJECT)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        assert (await c.get("/api/drill")).status == 401
        assert (await c.post("/api/drill/ack", json={"who": "ana"})).status == 401
        ok = await c.post("/api/drill/ack", json={"who": "ana"},
                          headers={"X-Simctl-Token": "web-token"})
        assert ok.status == 200


def test_report_of_a_running_hidden_drill_needs_the_token(hidden_drill, tmp_path):
    runner = CliRunner()
    refused = runner.invoke(main, ["report", "--project", PROJECT, "--html",
                                   str(tmp_path / "r.html")])
    assert refused.exit_code == 8
    assert "is running and hidden" in refused.output
    assert not (tmp_path / "r.html").exists()
    shown = runner.invoke(main, ["report", "--project", PROJECT, "--token", TOKEN, "--md",
                                 str(tmp_path / "r.md"), "--review", str(tmp_path / "pir.md")])
    assert shown.exit_code == 0, shown.output
    assert "latency 4000 ms on web.1" in (tmp_path / "pir.md").read_text()
    assert "still running" in (tmp_path / "r.md").read_text()
    missing = runner.invoke(main, ["report", "d-nope", "--project", PROJECT])
    assert missing.exit_code == 2
    assert "no drill d-nope" in missing.output
    baddir = runner.invoke(main, ["report", "--project", PROJECT, "--token", TOKEN,
                                  "--json", str(tmp_path / "no" / "r.json")])
    assert baddir.exit_code == 2
    assert "no such directory" in baddir.output
    too_long = runner.invoke(main, ["report", "--project", PROJECT, "--token", TOKEN,
                                    "--md", str(tmp_path / ("r" * 300 + ".md"))])
    assert too_long.exit_code == 2
    assert "cannot write: File name too long" in too_long.output
    assert "Traceback" not in too_long.output


async def test_two_hint_requests_at_once_get_two_different_hints(client, hidden_drill):
    import asyncio

    answers = await asyncio.gather(*(client.post("/api/drill/hint", json={"who": f"r{i}"})
                                     for i in range(3)))
    assert sorted(a.status for a in answers) == [200, 200, 409]  # the scenario has two
    given = [e["index"] for e in read_timeline(hidden_drill.timeline_path)
             if e["kind"] == "hint"]
    assert sorted(given) == [0, 1]


async def test_a_hint_waits_for_the_drill_lock_a_cli_hint_holds(client, hidden_drill):
    import asyncio

    with state.locked(hidden_drill):  # as `simctl drill hint` holds it while it writes
        pending = asyncio.ensure_future(client.post("/api/drill/hint", json={"who": "web"}))
        await asyncio.sleep(0.5)
        assert not pending.done()
        Timeline(hidden_drill.timeline_path, hidden=True).append(
            "hint", who="cli", index=0, text="first", penalty_s=60)
    answer = await (await asyncio.wait_for(pending, 10)).json()
    assert answer["index"] == 1  # not the hint the CLI just gave
