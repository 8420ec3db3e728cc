"""`simctl dashboard`: the panels of docs/dashboards.md in a terminal, refreshed every second.

A Textual app: two summary lines always on top, one panel at a time below (keys 1-8, left and
right), the key list in the footer. It reads only what `Collector` fetches (snapshot.py).
"""

from __future__ import annotations

import re
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, RichLog, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from simctl.views.snapshot import Chart, Collector, Snapshot, since_text

LOG_TAIL = 25  # lines per router on the log panel
SUMMARY_CHARTS = {"requests", "success", "latency", "hcodes"}  # the top lines read these

# (pane id, tab label, charts shown in it)
PANES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("overview", "1 Overview", ()),
    ("traffic", "2 Traffic", ("requests", "success")),
    ("latency", "3 Latency", ("latency",)),
    ("hcodes", "4 H-codes", ("hcodes",)),
    ("drains", "5 Drains", ("drains",)),
    ("sync", "6 Sync", ("sync",)),
    ("alerts", "7 Alerts", ()),
    ("logs", "8 Router log", ()),
)


# Fields that identify a request but crowd a 100-column line; the web view keeps them.
_NOISE = re.compile(r' (request_id|fwd|host|protocol)=("[^"]*"|\S+)')


def compact(line: str) -> str:
    return _NOISE.sub("", line)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return f"{text} {unit}".strip() if unit != "%" else f"{text}%"


def summary(snap: Snapshot) -> Text:
    """The always-visible lines: targets up, rate, success, p99, H-codes; firing alerts."""
    up = sum(t.up for t in snap.health)
    text = Text()
    healthy = snap.health and up == len(snap.health)
    text.append(f"up {up}/{len(snap.health)}", "green" if healthy else "bold red")
    rate = snap.chart("requests").series
    ok = snap.chart("success").series
    p99 = [s for s in snap.chart("latency").series if s.name == "p99"]
    text.append(f"  {_fmt(rate[0].last if rate else None, 'req/s')}")
    text.append(f"  ok {_fmt(ok[0].last if ok else None, '%')}")
    text.append(f"  p99 {_fmt(p99[0].last if p99 else None, 'ms')}")
    codes = [(s.name, s.last) for s in snap.chart("hcodes").series if s.last]
    if codes:
        text.append("  " + " ".join(f"{n} {_fmt(v, '/min')}" for n, v in codes), "yellow")
    text.append("\n")
    firing = snap.firing
    if firing:
        text.append(f"FIRING: {', '.join(snap.firing_names())}", "bold white on red")
    else:
        text.append("no alert firing", "green")
    for error in snap.errors[:1]:
        text.append(f"  ! {error}", "red")
    return text


class Dashboard(App[None]):
    """The live dashboard; `collector` is closed when the app ends."""

    TITLE = "simctl dashboard"
    CSS = """
    Screen { overflow: hidden; }
    #summary { height: 2; padding: 0 1; }
    #panes, #panes ContentSwitcher, TabPane { height: 1fr; }
    TabPane { padding: 0; }
    PlotextPlot { height: 1fr; }
    DataTable { height: 1fr; }
    #overview-row { height: 1fr; }
    #health-table { width: 40%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("1", "show(0)", "panels", key_display="1-8"),
        *[Binding(str(i + 1), f"show({i})", show=False) for i in range(1, len(PANES))],
        Binding("right", "step(1)", "next", key_display="→"),
        Binding("left", "step(-1)", "previous", key_display="←"),
        Binding("p", "pause", "pause"),
    ]

    def __init__(self, collector: Collector, interval: float = 1.0, subtitle: str = "") -> None:
        super().__init__()
        self.collector = collector
        self.interval = interval
        self.paused = False
        self.snapshot: Snapshot | None = None
        self.refreshes = 0
        self._busy = False
        self._again = False
        self.sub_title = subtitle

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("waiting for the first refresh...", id="summary")
        with TabbedContent(id="panes"):
            for pane_id, label, charts in PANES:
                with TabPane(label, id=pane_id):
                    yield from self._pane(pane_id, charts)
        yield Footer()

    def _pane(self, pane_id: str, charts: tuple[str, ...]) -> ComposeResult:
        if pane_id == "overview":
            with Horizontal(id="overview-row"):
                yield DataTable(id="health-table", cursor_type="none")
                yield DataTable(id="overview-alerts", cursor_type="none")
        elif pane_id == "alerts":
            yield DataTable(id="alerts-table", cursor_type="none")
        elif pane_id == "logs":
            yield RichLog(id="log-lines", max_lines=400, wrap=True, markup=False)
        else:
            with Vertical():
                for key in charts:
                    yield PlotextPlot(id=f"chart-{key}")

    def on_mount(self) -> None:
        self.query_one("#health-table", DataTable).add_columns("job", "instance", "up")
        for table_id in ("#overview-alerts", "#alerts-table"):
            self.query_one(table_id, DataTable).add_columns(
                "alert", "state", "since", "severity", "runbook", "labels", "summary")
        self.set_interval(self.interval, self.refresh_data)
        self.call_later(self.refresh_data)

    async def on_unmount(self) -> None:
        await self.collector.close()

    def action_show(self, index: int) -> None:
        self.query_one(TabbedContent).active = PANES[index][0]

    def action_step(self, delta: int) -> None:
        ids = [p[0] for p in PANES]
        current = ids.index(self.query_one(TabbedContent).active or ids[0])
        self.action_show((current + delta) % len(ids))

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.sub_title = "paused (p resumes)" if self.paused else ""

    async def refresh_data(self) -> None:
        """Fetch what the summary and the visible panel show, and draw it; a slow fetch is
        never overlapped by the next one."""
        if self.paused:
            return
        if self._busy:
            self._again = True  # e.g. a panel was switched to mid-fetch: fetch for it next
            return
        self._busy = True
        try:
            self._again = True
            while self._again:
                self._again = False
                pane = self.query_one(TabbedContent).active
                shown = set(next((p[2] for p in PANES if p[0] == pane), ()))
                snap = await self.collector.collect(charts=SUMMARY_CHARTS | shown,
                                                    logs=pane == "logs")
                self.apply(snap)
        finally:
            self._busy = False

    def apply(self, snap: Snapshot) -> None:
        """Draw the summary and the visible panel; the others are drawn when shown."""
        self.snapshot = snap
        self.refreshes += 1
        self.query_one("#summary", Static).update(summary(snap))
        self._fill(self.query_one(TabbedContent).active)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._fill(self.query_one(TabbedContent).active)
        self.call_later(self.refresh_data)  # what this panel alone needs, at once

    def _fill(self, pane_id: str) -> None:
        snap = self.snapshot
        if snap is None:
            return
        if pane_id == "overview":
            health = self.query_one("#health-table", DataTable)
            health.clear()
            for t in snap.health:
                health.add_row(t.job, t.instance,
                               Text("up", "green") if t.up else Text("DOWN", "red"))
            self._alerts("#overview-alerts", snap)
        elif pane_id == "alerts":
            self._alerts("#alerts-table", snap)
        elif pane_id == "logs":
            # The newest lines of each router: about a screen's worth, as wrapping costs.
            lines = [line for router in sorted({x.router for x in snap.logs})
                     for line in [x for x in snap.logs if x.router == router][-LOG_TAIL:]]
            log = self.query_one("#log-lines", RichLog)
            log.clear()
            for line in lines:
                style = "red" if "at=error" in line.line else ""
                log.write(Text(f"{line.router}: {compact(line.line)}", style))
        else:
            for key in next(p[2] for p in PANES if p[0] == pane_id):
                self._draw(snap.chart(key), snap.at)

    def _alerts(self, table_id: str, snap: Snapshot) -> None:
        table = self.query_one(table_id, DataTable)
        table.clear()
        for a in snap.alerts:
            style = "bold red" if a.state == "firing" else "yellow"
            table.add_row(Text(a.name, style), Text(a.state, style),
                          since_text(a.since, snap.at), a.severity, a.runbook, a.labels,
                          a.summary)

    def _draw(self, chart: Chart, now: float) -> None:
        widget = self.query_one(f"#chart-{chart.key}", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"{chart.title} ({chart.unit})" if chart.unit else chart.title)
        plt.xlabel("seconds ago")
        plt.xlim(-self.collector.span, 0)
        top = 0.0
        # Braille markers give two dots per column: more points than that only cost time.
        stride = max(1, -(-len(chart.series[0].points) // (2 * max(widget.size.width, 20)))) \
            if chart.series else 1
        for series in chart.series:
            points = [(t - now, v) for t, v in series.points[::-1][::stride][::-1]
                      if v is not None]
            if points:
                plt.plot([p[0] for p in points], [p[1] for p in points], label=series.name)
                top = max(top, *(p[1] for p in points))
        plt.ylim(0, top * 1.1 if top > 0 else 1)  # from zero, so a rise reads as one
        if not chart.series:
            plt.text("no data", -self.collector.span / 2, 0.5)
        widget.refresh()

