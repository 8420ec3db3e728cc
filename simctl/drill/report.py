"""A drill's report: JSON, Markdown and a self-contained HTML page (docs/drills.md,
"Reports").

Reads only ``drill.json`` and ``timeline.jsonl`` (and the scenario and runbook files when
they can still be found), so a finished drill, one whose conductor died, and a ``verify``
run converted to the same shape (simctl.drill.from_verify) all report alike.

    data = load_report(project, drill_id, token)
    Path("r.html").write_text(to_html(data))
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from simctl.drill.score import Score, score_drill
from simctl.drill.state import TokenRefused
from simctl.errors import InvalidInput, SimctlError

Entry = dict[str, Any]


class HiddenDrillRunning(TokenRefused):
    """A report of a running hidden drill without the facilitator token: it would reveal
    the faults (exit 8, as every facilitator refusal)."""


@dataclass
class ReportData:
    drill: dict[str, Any]  # drill.json (or the converted verify run's equivalent)
    entries: list[Entry]
    score: Score
    scenario: Any = None  # simctl.scenario.model.Scenario, when found
    runbook: Any = None  # simctl.runbook.model.Runbook, when found
    notes: list[str] = field(default_factory=list)

    @property
    def origin(self) -> float:
        """Time 0 of the report: the first fault, else the start."""
        if self.score.first_fault is not None:
            return self.score.first_fault
        return float(self.entries[0]["t"]) if self.entries else 0.0

    @property
    def title(self) -> str:
        started = next((e for e in self.entries if e.get("kind") == "drill_started"), {})
        return str(started.get("title") or getattr(self.scenario, "title", "") or
                   self.drill.get("scenario", ""))


def find_scenario(scenario_id: str) -> tuple[Any, Any]:
    """(scenario, runbook) models for an id, or None for what cannot be read any more."""
    from simctl.runbook.parser import parse_runbook
    from simctl.scenario import catalog
    from simctl.scenario.loader import load_scenario

    try:
        scenario = load_scenario(catalog.resolve_scenario(scenario_id))
    except (SimctlError, OSError, ValueError):
        return None, None
    try:
        runbook = parse_runbook(catalog.runbook_path(scenario.runbook))
    except (SimctlError, OSError, ValueError):
        runbook = None
    return scenario, runbook


def build(drill: dict[str, Any], entries: list[Entry], scenario: Any = None,
          runbook: Any = None) -> ReportData:
    return ReportData(drill, entries, score_drill(entries, scenario, runbook), scenario, runbook)


def load_report(project: str, drill_id: str | None, token: str | None) -> ReportData:
    """The report of a drill of ``project`` (the latest without an id). A running hidden
    drill is refused without the facilitator token: the report names the faults."""
    from simctl.drill import state
    from simctl.drill.timeline import read_timeline

    drill = state.find(project, drill_id)
    if drill.running and drill.hidden and not drill.token_ok(token):
        raise HiddenDrillRunning(
            f"drill {drill.id} is running and hidden: its report would reveal the faults; "
            f"wait for it to end, or give the facilitator token (--token or {state.TOKEN_ENV})")
    from dataclasses import asdict

    meta = asdict(drill)
    meta.pop("token_sha256", None)
    scenario, runbook = find_scenario(drill.scenario)
    data = build(meta, read_timeline(drill.timeline_path), scenario, runbook)
    if drill.running:
        data.notes.append("the drill is still running: this report covers it so far")
    return data


# -- formatting ---------------------------------------------------------------------------

def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{value:.1f} s"


def clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t))


def command_words(entry: Entry) -> list[str]:
    """A command entry's line as typed: the recorder keeps what followed ``simctl``."""
    argv = [str(a) for a in entry.get("argv") or []]
    return argv if argv[:1] == ["simctl"] else ["simctl", *argv]


def describe(entry: Entry) -> str:
    """One line saying what an entry is."""
    kind = entry.get("kind")
    if kind == "drill_started":
        mode = "hidden" if entry.get("hidden") else "open"
        return f"drill started: {entry.get('scenario')} ({mode}, {entry.get('timing')} timing)"
    if kind == "fault_applied":
        return f"fault {entry.get('name')} applied: {entry.get('description') or ''} " \
               f"[{entry.get('fault_kind')} on {entry.get('target')}]"
    if kind == "fault_rolled_back":
        return f"fault {entry.get('name')} rolled back" + ("" if entry.get("ok") else " (FAILED)")
    if kind == "alert":
        summary = f": {entry['summary']}" if entry.get("summary") else ""
        return f"alert {entry.get('alert')} {entry.get('state')}{summary}"
    if kind == "command":
        argv = " ".join(command_words(entry))
        step = f" (runbook step {entry['matched_step']})" if entry.get("matched_step") else ""
        return f"{entry.get('who')} ran `{argv}` (exit {entry.get('exit_code')}){step}"
    if kind == "ack":
        return f"{entry.get('who')} acknowledged"
    if kind == "hint":
        return f"hint {int(entry.get('index') or 0) + 1} given to {entry.get('who')}: " \
               f"{entry.get('text')} " \
               f"(+{entry.get('penalty_s', 0):g} s)"
    if kind == "note":
        return f"note by {entry.get('who')}: {entry.get('text')}"
    if kind == "probe":
        return f"probe {entry.get('probe')}: {'holds' if entry.get('ok') else 'does not hold'}"
    if kind == "recovery_holding":
        return "recovery holding"
    if kind == "answer":  # a training lesson's question (docs/training.md)
        verdict = "right" if entry.get("correct") else "wrong"
        return f"{entry.get('who')} answered {entry.get('question')!r}: " \
               f"{entry.get('text')} ({verdict})"
    if kind == "objective":
        return f"objective {int(entry.get('index') or 0) + 1} met: {entry.get('text')} " \
               f"({entry.get('met_by')})"
    if kind == "reveal":
        return f"faults revealed by {entry.get('who')}"
    if kind == "residue_check":
        problems = "; ".join(entry.get("problems") or [])
        return "residue check: clean" if entry.get("ok") else f"residue check: {problems}"
    if kind == "stack_reset":
        return "stack reset to its baseline" + ("" if entry.get("ok", True) else " (FAILED)")
    if kind == "drill_ended":
        return f"drill ended: {entry.get('reason')}"
    return str(kind)


def events(data: ReportData) -> list[tuple[str, Entry]]:
    """(offset from time 0, entry) of every entry but the SLI samples."""
    return [(f"{e['t'] - data.origin:+.1f}s", e) for e in data.entries
            if e.get("kind") != "sli" and "t" in e]


def summary_rows(data: ReportData) -> list[tuple[str, str]]:
    s = data.score
    breach = f"{s.breach_minutes:.1f} min below {100 * 0.99:.0f} % success"
    return [
        ("overall score", f"{s.overall} / 100"),
        ("time to alert", seconds(s.time_to_alert)),
        ("time to acknowledge", seconds(s.time_to_ack)),
        ("time to mitigate", seconds(s.time_to_mitigate) if s.recovered else "not mitigated"),
        ("failed requests", f"{s.failed_requests} of about {s.total_requests}"),
        ("SLO breach", breach),
        ("hints used", f"{s.hints} (+{s.hint_penalty_s:g} s)"),
        ("runbook steps followed", ", ".join(s.followed) or "none"),
        ("runbook steps skipped", ", ".join(s.skipped) or "none"),
        ("commands not in the runbook", str(len(s.gaps))),
        ("ended", str(s.end_reason or data.drill.get("status") or "-")),
    ]


def to_json(data: ReportData) -> dict[str, Any]:
    return {"drill": data.drill, "title": data.title, "score": data.score.as_dict(),
            "notes": data.notes, "timeline": data.entries}


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(data: ReportData) -> str:
    lines = [f"# Drill report: {data.title}", "",
             f"Drill `{data.drill.get('id')}`, scenario `{data.drill.get('scenario')}`.", ""]
    lines += [f"> {note}\n" for note in data.notes]
    lines += ["## Scores", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {_md_cell(v)} |" for k, v in summary_rows(data)]
    lines += ["", "| part | points | why |", "|---|---|---|"]
    lines += [f"| {p.name} | {p.points:g} / {p.possible} | {_md_cell(p.why)} |"
              for p in data.score.parts]
    if data.score.gaps:
        lines += ["", "## Commands the runbook does not have", ""]
        lines += [f"- `{g['command']}` ({g['times']}x, {', '.join(g['who']) or '-'})"
                  for g in data.score.gaps]
    lines += ["", "## Timeline", "", "| t | time (UTC) | event |", "|---|---|---|"]
    lines += [f"| {off} | {clock(e['t'])} | {_md_cell(describe(e))} |"
              for off, e in events(data)]
    return "\n".join(lines) + "\n"


def _template() -> Template:
    return Template((resources.files("simctl.drill") / "templates" / "report.html").read_text())


def to_html(data: ReportData) -> str:
    from simctl.drill.charts import chart_html

    esc = html.escape
    scores = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                     for k, v in summary_rows(data))
    parts = "".join(f"<tr><td>{esc(p.name)}</td><td>{p.points:g} / {p.possible}</td>"
                    f"<td>{esc(p.why)}</td></tr>" for p in data.score.parts)
    rows = "".join(f'<tr class="k-{esc(str(e.get("kind")))}"><td>{esc(off)}</td>'
                   f"<td>{esc(clock(e['t']))}</td><td>{esc(str(e.get('kind')))}</td>"
                   f"<td>{esc(describe(e))}</td></tr>" for off, e in events(data))
    gaps = "".join(f"<li><code>{esc(g['command'])}</code> ({g['times']}x)</li>"
                   for g in data.score.gaps) or "<li>none</li>"
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in data.notes)
    return _template().substitute(
        title=esc(data.title), drill=esc(str(data.drill.get("id"))),
        scenario=esc(str(data.drill.get("scenario"))), overall=data.score.overall,
        notes=notes, scores=scores, parts=parts, gaps=gaps, timeline=rows,
        chart=chart_html(data.entries, data.origin),
        # JSON inside <script>: no "<" at all, so nothing in it can close the element
        data=json.dumps(to_json(data)["score"], default=str).replace("<", "\\u003c"))


def write_all(data: ReportData, html_path: str | Path | None = None,
              md_path: str | Path | None = None, json_path: str | Path | None = None,
              review_path: str | Path | None = None) -> list[Path]:
    """Write what was asked; returns the paths written."""
    from simctl.drill.review import to_review

    written = []
    for path, render in ((html_path, to_html), (md_path, to_markdown),
                         (json_path, lambda d: json.dumps(to_json(d), indent=2, default=str)),
                         (review_path, to_review)):
        if path is None:
            continue
        target = Path(path)
        if not target.resolve().parent.is_dir():
            raise InvalidInput(f"{path}: no such directory")
        try:
            target.write_text(render(data), encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot write: {exc.strerror or exc}") from None
        written.append(target)
    return written
