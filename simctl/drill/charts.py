"""The report's charts: the ``sli`` samples over time, with marks for what happened
(docs/drills.md, "Reports").

One Plotly figure with five rows sharing the time axis (seconds from the first fault):
success ratio, p99, H-codes, drain drops, and a row of marks (faults, alerts, ack,
hints, commands). ``chart_html`` inlines plotly.min.js from the installed package, so
the page needs nothing from the network.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simctl.drill.score import SLO_SUCCESS_RATIO

Entry = dict[str, Any]

# Mark rows: label and colour of each kind of entry shown as a mark.
MARKS = {
    "fault_applied": ("fault", "#d62728"),
    "fault_rolled_back": ("rolled back", "#9467bd"),
    "alert": ("alert", "#ff7f0e"),
    "ack": ("ack", "#2ca02c"),
    "hint": ("hint", "#bcbd22"),
    "step": ("runbook step", "#1f77b4"),
    "command": ("other command", "#7f7f7f"),
    "recovery_holding": ("recovered", "#17becf"),
}


def _x(entry: Entry, origin: float) -> float:
    return round(float(entry["t"]) - origin, 2)


def _mark_kind(entry: Entry) -> str:
    """Commands that match a runbook step are marked apart from the others."""
    if entry.get("kind") == "command" and entry.get("matched_step"):
        return "step"
    return str(entry.get("kind"))


def mark_text(entry: Entry) -> str:
    kind = entry.get("kind")
    if kind == "fault_applied":
        return f"fault {entry.get('name')}: {entry.get('description') or entry.get('target')}"
    if kind == "fault_rolled_back":
        return f"rolled back {entry.get('name')}"
    if kind == "alert":
        return f"{entry.get('alert')} {entry.get('state')}"
    if kind == "ack":
        return f"ack by {entry.get('who')}"
    if kind == "hint":
        return f"hint {int(entry.get('index') or 0) + 1} to {entry.get('who')}"
    if kind == "command":
        step = entry.get("matched_step")
        argv = " ".join(str(a) for a in entry.get("argv") or [])
        return f"{entry.get('who')}: {argv}" + (f" (step {step})" if step else "")
    if kind == "recovery_holding":
        return "recovery holding"
    return str(kind)


def figure(entries: list[Entry], origin: float) -> go.Figure:
    samples = [e for e in entries if e.get("kind") == "sli"]
    fig = make_subplots(rows=5, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        row_heights=[0.24, 0.22, 0.22, 0.16, 0.16],
                        subplot_titles=("Success ratio (%)", "Latency (ms)",
                                        "H-codes per second", "Drain drops per second",
                                        "Events"))
    xs = [_x(e, origin) for e in samples]

    def values(key: str, scale: float = 1.0) -> list[float | None]:
        out: list[float | None] = []
        for e in samples:
            v = e.get(key)
            out.append(round(v * scale, 3) if isinstance(v, int | float) else None)
        return out

    fig.add_trace(go.Scatter(x=xs, y=values("success_ratio", 100), name="success %",
                             line={"color": "#2ca02c"}), row=1, col=1)
    fig.add_hline(y=SLO_SUCCESS_RATIO * 100, line_dash="dot", line_color="#d62728",
                  annotation_text="SLO", row=1, col=1)
    fig.add_trace(go.Scatter(x=xs, y=values("p50_ms"), name="p50 ms",
                             line={"color": "#7f7f7f"}), row=2, col=1)
    fig.add_trace(go.Scatter(x=xs, y=values("p99_ms"), name="p99 ms",
                             line={"color": "#ff7f0e"}), row=2, col=1)
    codes = sorted({c for e in samples for c in (e.get("hcodes") or {})})
    for code in codes:
        rates = [round((e.get("hcodes") or {}).get(code, 0) / float(e.get("window_s") or 1), 2)
                 for e in samples]  # a sample counts over its window: per second
        fig.add_trace(go.Scatter(x=xs, y=rates, name=code, mode="lines"), row=3, col=1)
    drops = [None if v is None else round(v / float(e.get("window_s") or 1), 2)
             for v, e in zip(values("drain_dropped"), samples, strict=True)]
    fig.add_trace(go.Scatter(x=xs, y=drops, name="drain drops",
                             line={"color": "#8c564b"}), row=4, col=1)
    for kind, (label, colour) in MARKS.items():
        marked = [e for e in entries if _mark_kind(e) == kind and "t" in e]
        if not marked:
            continue
        fig.add_trace(go.Scatter(x=[_x(e, origin) for e in marked], y=[label] * len(marked),
                                 mode="markers", name=label, text=[mark_text(e) for e in marked],
                                 hoverinfo="text+x", marker={"color": colour, "size": 11,
                                                             "symbol": "diamond"}),
                      row=5, col=1)
        if kind in ("fault_applied", "ack", "step", "recovery_holding"):
            for e in marked:
                for row in (1, 2, 3, 4):
                    fig.add_vline(x=_x(e, origin), line_color=colour, line_width=1,
                                  line_dash="dash", row=row, col=1)
    fig.update_xaxes(title_text="seconds from the first fault", row=5, col=1)
    fig.update_layout(height=1100, margin={"l": 60, "r": 20, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.06}, template="plotly_white")
    return fig


def chart_html(entries: list[Entry], origin: float) -> str:
    """The figure as an HTML fragment with plotly.min.js inlined (no CDN)."""
    return str(figure(entries, origin).to_html(full_html=False, include_plotlyjs=True,
                                              div_id="drill-chart",
                                              config={"displaylogo": False}))
