// simctl web: polls /api/snapshot every `interval` seconds and redraws (docs/dashboards.md).
"use strict";

let pollMs = 1000;  // until the first snapshot says otherwise (simctl web --interval)
const drawn = new Set();

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(value, unit) {
  if (value === null || value === undefined) return "-";
  const text = Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(1);
  return unit === "%" ? text + "%" : (text + " " + unit).trim();
}

function last(series) {
  for (let i = series.points.length - 1; i >= 0; i--) {
    if (series.points[i][1] !== null) return series.points[i][1];
  }
  return null;
}

function since(iso, now) {
  const started = Date.parse(iso);
  if (isNaN(started)) return "";
  const s = Math.max(0, Math.floor(now - started / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

function chart(snap, key) {
  return snap.charts.find((c) => c.key === key) || { series: [] };
}

function stat(label, value, bad) {
  const box = el("div", { class: bad ? "stat bad" : "stat" });
  box.append(el("b", {}, value), el("span", {}, label));
  return box;
}

function drawSummary(snap) {
  const up = snap.health.filter((t) => t.up).length;
  const rate = chart(snap, "requests").series[0];
  const ok = chart(snap, "success").series[0];
  const p99 = chart(snap, "latency").series.find((s) => s.name === "p99");
  const firing = snap.alerts.filter((a) => a.state === "firing");
  const box = document.getElementById("summary");
  box.replaceChildren(
    stat("targets up", `${up}/${snap.health.length}`, !snap.health.length || up < snap.health.length),
    stat("requests", fmt(rate ? last(rate) : null, "req/s")),
    stat("success", fmt(ok ? last(ok) : null, "%"), ok && last(ok) !== null && last(ok) < 99),
    stat("p99 latency", fmt(p99 ? last(p99) : null, "ms")),
    ...chart(snap, "hcodes").series.filter((s) => last(s)).map(
      (s) => stat(`${s.name} per minute`, fmt(last(s), ""), true)),
    stat("alerts firing", firing.length ? firingNames(firing).join(", ") : "none",
         firing.length > 0),
  );
}

function firingNames(firing) {
  // each alert once, with how many series fire it: "LogShuttleLosing x3"
  const counts = new Map();
  for (const a of firing) counts.set(a.name, (counts.get(a.name) || 0) + 1);
  return [...counts].map(([name, n]) => (n > 1 ? `${name} x${n}` : name));
}

function drawAlerts(snap) {
  const body = document.querySelector("#alerts tbody");
  body.replaceChildren(...snap.alerts.map((a) => {
    const row = el("tr", { class: a.state, "data-alert": a.name });
    for (const text of [a.name, a.state, since(a.since, snap.at), a.severity, a.runbook,
                        a.labels, a.summary]) row.append(el("td", {}, text));
    return row;
  }));
  document.getElementById("no-alerts").hidden = snap.alerts.length > 0;
}

function drawHealth(snap) {
  document.getElementById("health").replaceChildren(...snap.health.map(
    (t) => el("span", { class: t.up ? "target" : "target down" },
              `${t.job} ${t.instance} ${t.up ? "up" : "DOWN"}`)));
}

function drawChart(c, snap) {
  const id = `chart-${c.key}`;
  if (!drawn.has(id)) {
    const card = el("div", { class: "card" });
    card.append(el("h2", {}, c.unit ? `${c.title} (${c.unit})` : c.title),
                el("div", { id, class: "chart", "data-points": "0" }));
    document.getElementById("charts").append(card);
    drawn.add(id);
  }
  const traces = c.series.map((s) => ({
    type: "scatter", mode: "lines", name: s.name,
    x: s.points.map((p) => new Date(p[0] * 1000)), y: s.points.map((p) => p[1]),
  }));
  const layout = { margin: { l: 50, r: 10, t: 5, b: 30 }, showlegend: true,
                   legend: { orientation: "h", y: -0.2 }, yaxis: { rangemode: "tozero" },
                   annotations: traces.length ? [] : [{ text: "no data", showarrow: false,
                                                        xref: "paper", yref: "paper" }],
                   xaxis: { type: "date", tickformat: "%H:%M:%S", range: [new Date((snap.at - snap.span) * 1000),
                                    new Date(snap.at * 1000)] },
                   uirevision: c.key };
  Plotly.react(id, traces, layout, { displayModeBar: false, responsive: true });
  const points = c.series.reduce((n, s) => n + s.points.filter((p) => p[1] !== null).length, 0);
  document.getElementById(id).dataset.points = String(points);
}

function drawLogs(snap) {
  const box = document.getElementById("logs");
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 5;
  box.textContent = snap.logs.map((l) => `${l.router}: ${l.line}`).join("\n") ||
                    "no router lines (give --project of a running stack)";
  if (atBottom) box.scrollTop = box.scrollHeight;
}

async function poll() {
  try {
    const resp = await fetch("/api/snapshot", { cache: "no-store" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const snap = await resp.json();
    pollMs = Math.max(200, (snap.interval || 1) * 1000);
    const firing = snap.alerts.filter((a) => a.state === "firing").length;
    document.title = firing ? `simctl: ${firing} FIRING` : "simctl web";
    document.getElementById("source").textContent =
      `${snap.title} · ${snap.source} · rate window ${snap.window}`;
    document.getElementById("updated").textContent =
      `updated ${new Date(snap.at * 1000).toLocaleTimeString()}`;
    document.getElementById("errors").replaceChildren(
      ...snap.errors.map((e) => el("p", {}, e)));
    drawSummary(snap);
    drawAlerts(snap);
    drawHealth(snap);
    snap.charts.forEach((c) => drawChart(c, snap));
    drawLogs(snap);
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  } catch (err) {
    document.getElementById("errors").replaceChildren(el("p", {}, `no data: ${err.message}`));
  } finally {
    setTimeout(poll, pollMs);
  }
}

poll();
