"""The web view's drill page: the running (or latest) drill of the project, and the
responders' actions (docs/dashboards.md, "The drill page"; docs/drills.md).

- ``GET /drill``: the page (static/drill.html).
- ``GET /api/drill``: the drill and its timeline. Responders get the responder view (no
  hidden entry while a hidden drill runs, no scenario, no score); with the facilitator
  token in the ``X-Simctl-Drill-Token`` header, everything, with the score so far.
- ``POST /api/drill/ack``, ``/api/drill/hint``, ``/api/drill/note``: JSON bodies
  ``{"who": NAME}`` (and ``"text"`` for a note). They go through the web view's
  middlewares: the browser guard (JSON only, no cross-site requests) and, bound beyond
  loopback, the web view's token.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from importlib import resources
from typing import Any

from aiohttp import web

from simctl.cli.drill import HINT_PENALTY_S  # the same penalty as `simctl drill hint`
from simctl.drill import state as drill_state
from simctl.drill.report import describe
from simctl.drill.timeline import Timeline, read_timeline, responder_view
from simctl.errors import SimctlError

TOKEN_HEADER = "X-Simctl-Drill-Token"
_WHO = re.compile(r"^[\w .@-]{1,40}$")
MAX_NOTE = 4000


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


def _find(project: str) -> drill_state.Drill | None:
    try:
        return drill_state.find(project)
    except SimctlError:
        return None


def drill_view(drill: drill_state.Drill, facilitator: bool) -> dict[str, Any]:
    """What the page shows: a responder sees no hidden entry while a hidden drill runs."""
    entries = read_timeline(drill.timeline_path)
    secret = drill.running and drill.hidden and not facilitator
    shown = responder_view(entries, drill.running, drill.hidden) if not facilitator else entries
    data: dict[str, Any] = {
        "drill": drill.id, "status": drill.status, "end_reason": drill.end_reason,
        "hidden": drill.hidden, "facilitator": facilitator,
        "elapsed_s": round((drill.ended_at or time.time()) - drill.started_at, 1),
        "entries": [{**e, "text": describe(e)} for e in shown if e.get("kind") != "sli"],
    }
    if not secret:
        from simctl.drill.report import find_scenario
        from simctl.drill.score import score_drill

        scenario, runbook = find_scenario(drill.scenario)
        data["scenario"] = drill.scenario
        data["score"] = score_drill(entries, scenario, runbook).as_dict()
        if drill.options.get("guided") and scenario is not None:
            data["objectives"] = guided_objectives(scenario, entries)
    return data


def guided_objectives(scenario: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A guided drill's (a lesson's) objectives, each ticked as the timeline shows it met
    (docs/training.md)."""
    from simctl.train.objectives import evaluate

    ticks = evaluate(scenario, entries)
    return [{"text": o.text, "check": o.check, "met": i in ticks,
             "met_by": ticks[i].met_by if i in ticks else None}
            for i, o in enumerate(scenario.objectives)]


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is not JSON", "status": 400}),
                                 content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object",
                                                  "status": 400}),
                                 content_type="application/json")
    return body


def add_routes(app: web.Application, project: str) -> None:
    static = resources.files("simctl.views") / "static"

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=(static / "drill.html").read_text(), content_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    async def show(request: web.Request) -> web.Response:
        drill = _find(project)
        if drill is None:
            return web.json_response({"drill": None, "project": project},
                                     headers={"Cache-Control": "no-store"})
        facilitator = drill.token_ok(request.headers.get(TOKEN_HEADER))
        if request.headers.get(TOKEN_HEADER) and not facilitator:
            return _error(401, "wrong facilitator token")
        return web.Response(text=json.dumps(drill_view(drill, facilitator), default=str),
                            content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def act(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        body = await _body(request)
        who = body.get("who")
        if not isinstance(who, str) or not _WHO.match(who):
            return _error(400, "who: a name of 1 to 40 letters, digits, spaces or ._@-")
        drill = _find(project)
        if drill is None or not drill.running:
            return _error(409, "no drill is running")
        book = Timeline(drill.timeline_path, hidden=drill.hidden)
        if action == "ack":  # once: a second ack names who acknowledged first
            owner, _ = await asyncio.to_thread(drill_state.acknowledge, drill, who)
            return web.json_response({"ok": True, "acked_by": owner})
        if action == "note":
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                return _error(400, "text: the note, a non-empty string")
            if len(text) > MAX_NOTE:
                return _error(400, f"text: at most {MAX_NOTE} characters")
            book.append("note", who=who, text=text)
            return web.json_response({"ok": True})
        from simctl.drill.report import find_scenario

        scenario, _ = find_scenario(drill.scenario)
        hints = list(scenario.hints) if scenario is not None else []

        def next_hint() -> int:
            # under the drill's lock, as `simctl drill hint`: two at once get two hints
            with drill_state.locked(drill):
                used = sum(1 for e in read_timeline(drill.timeline_path)
                           if e.get("kind") == "hint")
                if used < len(hints):
                    book.append("hint", who=who, index=used, text=hints[used],
                                penalty_s=HINT_PENALTY_S)
                return used

        used = await asyncio.to_thread(next_hint)
        if used >= len(hints):
            return _error(409, f"no hints left ({len(hints)} used)")
        return web.json_response({"ok": True, "index": used, "text": hints[used],
                                  "penalty_s": HINT_PENALTY_S,
                                  "hints_left": len(hints) - used - 1})

    app.router.add_get("/drill", page)
    app.router.add_get("/api/drill", show)
    app.router.add_post("/api/drill/{action:ack|hint|note}", act)
