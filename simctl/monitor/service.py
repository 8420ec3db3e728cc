"""The monitor service: ``python -m simctl.platform monitor``.

Scrapes every target each interval (1 s with ``--timing fast``, 5 s with ``heroku``),
keeps ``--retention`` of history in memory, evaluates the rule file after each round and
answers Prometheus's HTTP API v1 (query, query_range, alerts, rules, targets), so the
dashboard and scripts work against it or a real Prometheus. Load runners push their
SLIs to ``PUT /metrics/job/JOB/instance/INSTANCE`` (Pushgateway's path shape, text
format). docs/alerts.md describes it all.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from datetime import datetime
from typing import Any

import click
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from simctl.monitor.history import History, Labels
from simctl.monitor.promql import (
    NO_LABELS,
    Evaluator,
    QueryError,
    format_number,
    format_value,
    instant_vector,
    parse,
)
from simctl.monitor.rules import RuleFile, RuleFileError, format_duration, load_rules
from simctl.monitor.scrape import Scraper, Target, parse_text
from simctl.monitor.webhook import Webhook, rfc3339
from simctl.platform.guard import accepts
from simctl.platform.service import Service, kv, run_service
from simctl.platform.timing import HEROKU, PROFILES, Timing, profile

INTERVALS = {"fast": 1.0, "heroku": 5.0}
TIME_SCALE = {"fast": 10.0, "heroku": 1.0}  # rule durations are divided by this
MAX_POINTS = 11_000  # per series in a range query, as Prometheus
PUSH_TEXT = ("text/plain", "application/openmetrics-text")


class MonitorService(Service):
    name = "monitor"

    def __init__(self, targets: list[Target], rules: RuleFile, *, timing: Timing = HEROKU,
                 interval: float | None = None, retention: float = 3600.0,
                 webhook_url: str | None = None) -> None:
        super().__init__(timing)
        self.targets = targets
        self.rules = rules
        self.interval = interval or INTERVALS.get(timing.name, 5.0)
        self.history = History(max(2, int(math.ceil(retention / self.interval)) + 1))
        self.evaluator = Evaluator(self.history)
        self.scraper = Scraper(targets, timeout=max(0.5, self.interval * 0.8))
        self.webhook_url = webhook_url
        self.webhook: Webhook | None = None
        self.pushed: dict[tuple[str, str], tuple[float, dict[Labels, float]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0
        self._metrics_setup()

    def _metrics_setup(self) -> None:
        r = self.registry
        self.m_rounds = Counter("monitor_scrape_rounds", "Scrape rounds done", registry=r)
        self.m_eval = Histogram("monitor_rule_evaluation_seconds", "Time to evaluate every rule",
                                buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0), registry=r)
        self.m_series = Gauge("monitor_series", "Series in the history", registry=r)
        self.m_alerts = Gauge("monitor_alerts", "Alerts by state", ["state"], registry=r)

    # -- lifecycle -------------------------------------------------------------------

    def setup(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/query", self._query)
        app.router.add_get("/api/v1/query_range", self._query_range)
        app.router.add_get("/api/v1/alerts", self._alerts)
        app.router.add_get("/api/v1/rules", self._rules)
        app.router.add_get("/api/v1/targets", self._targets)
        app.router.add_put("/metrics/job/{job}/instance/{instance}", self._push)
        app.router.add_post("/metrics/job/{job}/instance/{instance}", self._push)
        app.router.add_delete("/metrics/job/{job}/instance/{instance}", self._unpush)

    async def start(self) -> None:
        if self.webhook_url:
            self.webhook = Webhook(self.webhook_url, self.url)
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.scraper.close()
        if self.webhook is not None:
            await self.webhook.close()

    def health_details(self) -> dict[str, Any]:
        return {"targets": len(self.targets), "rules": len(self.rules.rules()),
                "interval": self.interval, "series": len(self.history.series)}

    async def _loop(self) -> None:
        next_at = time.monotonic()
        while True:
            t = time.time()
            try:
                await self.tick(t)
            except Exception as exc:  # one bad round must not end monitoring
                self.log.error(kv(at="round_failed", error=repr(exc)))
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:  # a round overran: skip the missed ticks, never burst
                next_at = time.monotonic()
                delay = 0
            await asyncio.sleep(delay)

    async def tick(self, t: float) -> None:
        """One round: scrape, store, evaluate, notify."""
        samples = await self.scraper.round()
        self._add_pushed(samples, t)
        self._add_alert_series(samples)
        self.history.append(t, samples)
        self.rounds += 1
        self.m_rounds.inc()
        self.m_series.set(len(self.history.series))
        changed = self.evaluate(t)
        if changed and self.webhook is not None:
            self.webhook.notify(changed)
        states = {"pending": 0, "firing": 0}
        for rule in self.rules.rules():
            for alert in rule.alerts.values():
                if alert.state in states:
                    states[alert.state] += 1
        for state, count in states.items():
            self.m_alerts.labels(state).set(count)

    def evaluate(self, t: float) -> list[Any]:
        changed = []
        started = time.perf_counter()
        for group in self.rules.groups:
            if group.interval and t - group.last_evaluation < group.interval - 1e-3:
                continue
            group_started = time.perf_counter()
            for rule in group.rules:
                rule_started = time.perf_counter()
                for alert in rule.evaluate(self.evaluator, t):
                    changed.append(alert)
                    self.log.info(kv(at="alert", alertname=rule.name, state=alert.state,
                                     labels=",".join(f"{k}={v}" for k, v in alert.labels.items()
                                                     if k != "alertname")))
                rule.evaluation_time = time.perf_counter() - rule_started
            group.last_evaluation = t
            group.evaluation_time = time.perf_counter() - group_started
        self.m_eval.observe(time.perf_counter() - started)
        return changed

    def _add_pushed(self, samples: dict[Labels, float], t: float) -> None:
        stale_after = max(3 * self.interval, 5.0)
        for key, (pushed_at, pushed) in list(self.pushed.items()):
            if t - pushed_at > stale_after:
                del self.pushed[key]  # the pusher is gone: its series go stale
            else:
                samples.update(pushed)

    def _add_alert_series(self, samples: dict[Labels, float]) -> None:
        """ALERTS{alertname, alertstate, ...} = 1, as Prometheus writes it."""
        for rule in self.rules.rules():
            for alert in rule.alerts.values():
                if alert.state in ("pending", "firing"):
                    labels = dict(alert.labels, __name__="ALERTS", alertstate=alert.state)
                    samples[tuple(sorted(labels.items()))] = 1.0

    # -- API -------------------------------------------------------------------------

    async def _query(self, request: web.Request) -> web.Response:
        try:
            expr = parse(_param(request, "query"))
            t = _time(request.query.get("time"), time.time())
            value = self.evaluator.instant(expr, t)
        except (QueryError, ValueError) as exc:
            return _error(str(exc))
        return _ok(format_value(value, t))

    async def _query_range(self, request: web.Request) -> web.Response:
        try:
            expr = parse(_param(request, "query"))
            start = _time(_param(request, "start"), 0)
            end = _time(_param(request, "end"), 0)
            step = _step(_param(request, "step"))
            if end < start:
                raise ValueError("end timestamp must not be before start time")
            if (end - start) / step > MAX_POINTS:
                raise ValueError("exceeded maximum resolution of 11,000 points per timeseries; "
                                 "try decreasing the query resolution (?step=XX)")
            series: dict[Labels, list[list[Any]]] = {}
            n = int((end - start) / step + 1e-9)
            for i in range(n + 1):
                t = start + i * step
                value = self.evaluator.instant(expr, t)
                if isinstance(value, float):
                    value = [(NO_LABELS, value)]
                for labels, v in instant_vector(value, "a range query"):
                    series.setdefault(labels, []).append([_num_t(t), format_number(v)])
        except (QueryError, ValueError) as exc:
            return _error(str(exc))
        return _ok({"resultType": "matrix", "result": [
            {"metric": dict(labels), "values": values} for labels, values in series.items()]})

    def alert_list(self) -> list[dict[str, Any]]:
        out = []
        for rule in self.rules.rules():
            for alert in rule.alerts.values():
                if alert.state in ("pending", "firing"):
                    out.append(_alert_json(alert))
        return out

    async def _alerts(self, request: web.Request) -> web.Response:
        return _ok({"alerts": self.alert_list()})

    async def _rules(self, request: web.Request) -> web.Response:
        groups = []
        for group in self.rules.groups:
            rules = [{
                "state": rule.state,
                "name": rule.name,
                "query": rule.expr,
                "duration": rule.duration,
                "keepFiringFor": 0,
                "labels": rule.labels,
                "annotations": rule.annotations,
                "alerts": [_alert_json(a) for a in rule.alerts.values()
                           if a.state in ("pending", "firing")],
                "health": rule.health,
                "lastError": rule.last_error,
                "evaluationTime": rule.evaluation_time,
                "lastEvaluation": rfc3339(rule.last_evaluation or None),
                "type": "alerting",
            } for rule in group.rules]
            groups.append({"name": group.name, "file": str(self.rules.path),
                           "interval": group.interval or self.interval, "limit": 0,
                           "rules": rules, "evaluationTime": group.evaluation_time,
                           "lastEvaluation": rfc3339(group.last_evaluation or None)})
        return _ok({"groups": groups})

    async def _targets(self, request: web.Request) -> web.Response:
        active = [{
            "discoveredLabels": {"__address__": t.url.split("/")[2], "job": t.job},
            "labels": {"instance": t.instance, "job": t.job},
            "scrapePool": t.job,
            "scrapeUrl": t.url,
            "globalUrl": t.url,
            "lastError": t.last_error,
            "lastScrape": rfc3339(t.last_scrape or None),
            "lastScrapeDuration": t.last_duration,
            "health": t.health,
            "scrapeInterval": format_duration(self.interval),
            "scrapeTimeout": format_duration(self.scraper.timeout),
        } for t in self.targets]
        for (job, instance), (pushed_at, _) in self.pushed.items():
            active.append({"discoveredLabels": {"job": job}, "labels": {"instance": instance,
                           "job": job}, "scrapePool": job, "scrapeUrl": "push",
                           "globalUrl": "push", "lastError": "",
                           "lastScrape": rfc3339(pushed_at), "lastScrapeDuration": 0,
                           "health": "up", "scrapeInterval": "push", "scrapeTimeout": "0s"})
        return _ok({"activeTargets": active, "droppedTargets": []})

    @accepts(*PUSH_TEXT)
    async def _push(self, request: web.Request) -> web.Response:
        job, instance = request.match_info["job"], request.match_info["instance"]
        try:
            samples = parse_text(await request.text(), job, instance)
        except ValueError as exc:
            return web.json_response({"error": f"invalid metrics text: {exc}", "status": 400},
                                     status=400)
        self.pushed[(job, instance)] = (time.time(), samples)
        return web.json_response({"series": len(samples)})

    async def _unpush(self, request: web.Request) -> web.Response:
        removed = self.pushed.pop((request.match_info["job"], request.match_info["instance"]),
                                  None)
        return web.json_response({"removed": removed is not None})


def _alert_json(alert: Any) -> dict[str, Any]:
    return {"labels": alert.labels, "annotations": alert.annotations, "state": alert.state,
            "activeAt": rfc3339(alert.active_at), "value": repr(float(alert.value)),
            "firedAt": rfc3339(alert.fired_at) if alert.fired_at else None}


def _ok(data: Any) -> web.Response:
    return web.json_response({"status": "success", "data": data})


def _error(message: str) -> web.Response:
    return web.json_response({"status": "error", "errorType": "bad_data", "error": message},
                             status=400)


def _param(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if value is None or value == "":
        raise ValueError(f"missing parameter {name!r}")
    return value


def _time(text: str | None, default: float) -> float:
    """A Unix timestamp or an RFC 3339 time, as Prometheus's API takes them."""
    if text is None or text == "":
        return default
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"cannot parse {text!r} to a valid timestamp") from None


def _step(text: str) -> float:
    from simctl.monitor.rules import parse_duration

    try:
        step = float(text)
    except ValueError:
        step = parse_duration(text)
    if not step > 0:
        raise ValueError("zero or negative query resolution step widths are not accepted")
    return step


def _num_t(t: float) -> float | int:
    return int(t) if t == int(t) else round(t, 3)


def _target_option(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]):
    try:
        return [Target.parse(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("monitor", context_settings={"auto_envvar_prefix": "SIMCTL"})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--timing", type=click.Choice(sorted(PROFILES)), default="heroku",
              show_default=True, help="Timing profile (scrape interval, rule durations).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"],
                                               case_sensitive=False),
              default="info", show_default=True)
@click.option("--target", "targets", multiple=True, callback=_target_option,
              metavar="JOB/INSTANCE=URL", help="A /metrics URL to scrape (repeatable).")
@click.option("--rules", "rules_path", default="", metavar="FILE",
              help="Alert rule file (default: stack/alerts.yaml).")
@click.option("--interval", type=click.FloatRange(0.05, 300), default=None,
              help="Scrape and evaluation interval in seconds (default: 1 fast, 5 heroku).")
@click.option("--retention", type=click.FloatRange(10, 7 * 86400), default=3600.0,
              show_default=True, help="Seconds of history kept.")
@click.option("--alert-webhook", default="", metavar="URL",
              help="POST Alertmanager webhook payloads here when alerts fire or resolve.")
def command(host: str, port: int, timing: str, log_level: str, targets: list[Target],
            rules_path: str, interval: float | None, retention: float,
            alert_webhook: str) -> None:
    """Scrape the stack, keep history, evaluate alert rules; Prometheus's HTTP API."""
    try:
        rules = load_rules(rules_path or None, scale=TIME_SCALE[timing])
    except RuleFileError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    if alert_webhook and not alert_webhook.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http(s) URL", param_hint="--alert-webhook")
    service = MonitorService(targets, rules, timing=profile(timing), interval=interval,
                             retention=retention, webhook_url=alert_webhook or None)
    run_service(service, host, port, log_level)
