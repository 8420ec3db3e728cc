// The drill page (docs/dashboards.md, "The drill page"): polls /api/drill, posts the
// responders' actions as JSON. The facilitator token stays in this tab (sessionStorage).
"use strict";
const $ = (id) => document.getElementById(id);
$("who").value = localStorage.getItem("simctl_who") || "";
$("token").value = sessionStorage.getItem("simctl_drill_token") || "";

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = sessionStorage.getItem("simctl_drill_token");
  if (token) h["X-Simctl-Drill-Token"] = token;
  return h;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

function stat(label, value, bad) {
  const div = document.createElement("div");
  div.className = "stat" + (bad ? " bad" : "");
  const b = document.createElement("b");
  b.textContent = value;
  div.appendChild(b);
  div.appendChild(document.createTextNode(label));
  return div;
}

function render(data) {
  const summary = $("summary");
  summary.replaceChildren();
  if (!data.drill) {
    $("drill-id").textContent = "no drill in project " + data.project;
    return;
  }
  $("drill-id").textContent = "drill " + data.drill + (data.facilitator ? " (facilitator)" : "");
  summary.appendChild(stat("status", data.status + (data.end_reason ? " (" + data.end_reason + ")" : "")));
  summary.appendChild(stat("elapsed", Math.round(data.elapsed_s) + " s"));
  const acks = data.entries.filter((e) => e.kind === "ack");
  summary.appendChild(stat("acknowledged", acks.length ? acks[0].who : "no", !acks.length));
  summary.appendChild(stat("hints used", String(data.entries.filter((e) => e.kind === "hint").length)));
  const firing = new Map();
  for (const e of data.entries) if (e.kind === "alert") firing.set(e.alert, e.state);
  const names = [...firing].filter(([, s]) => s === "firing").map(([n]) => n);
  summary.appendChild(stat("alerts firing", names.join(", ") || "none", names.length > 0));
  if (data.score) summary.appendChild(stat("score so far", data.score.overall + " / 100"));
  renderObjectives(data.objectives);
  const origin = data.entries.length ? data.entries[0].t : 0;
  const body = $("timeline").querySelector("tbody");
  body.replaceChildren();
  for (const e of data.entries) {
    const row = document.createElement("tr");
    row.className = "k-" + e.kind + (e.kind === "alert" ? " " + e.state : "");
    cell(row, "+" + (e.t - origin).toFixed(1) + "s");
    cell(row, new Date(e.t * 1000).toISOString().slice(11, 19));
    cell(row, e.kind);
    cell(row, e.text);
    body.appendChild(row);
  }
}

// A guided drill (a `simctl train` lesson): its objectives, ticked as they are met.
function renderObjectives(objectives) {
  $("objectives-card").hidden = !objectives;
  const list = $("objectives");
  list.replaceChildren();
  for (const o of objectives || []) {
    const li = document.createElement("li");
    li.className = o.met ? "met" : "";
    li.textContent = (o.met ? "[x] " : o.check ? "[ ] " : " -  ") + o.text
      + (o.met_by ? "  (" + o.met_by + ")" : "");
    list.appendChild(li);
  }
}

async function refresh() {
  try {
    const resp = await fetch("/api/drill", { cache: "no-store", headers: headers() });
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.error || resp.status);
    $("errors").textContent = "";
    render(data);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    $("errors").textContent = "cannot read the drill: " + err.message;
  }
}

async function act(action, extra) {
  const who = $("who").value.trim();
  if (!who) { $("answer").textContent = "give your name first"; return; }
  localStorage.setItem("simctl_who", who);
  const resp = await fetch("/api/drill/" + action, {
    method: "POST", headers: headers(), body: JSON.stringify({ who, ...extra }) });
  const data = await resp.json();
  $("answer").textContent = resp.ok ? (data.text ? "hint: " + data.text : "done") : "error: " + data.error;
  refresh();
}

$("ack").onclick = () => act("ack", {});
$("hint").onclick = () => act("hint", {});
$("add-note").onclick = () => { act("note", { text: $("note").value }); $("note").value = ""; };
$("use-token").onclick = () => {
  sessionStorage.setItem("simctl_drill_token", $("token").value.trim());
  refresh();
};
refresh();
setInterval(refresh, 2000);
