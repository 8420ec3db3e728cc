"""The sync service: the route table as an ordered, versioned stream of changes.

Routers fetch a snapshot (``GET /routes``) and then follow ``GET /routes/stream?since=N``,
newline-delimited JSON records ``{"seq": N, "op": ...}`` (simctl/platform/router/records.py
has the record shapes; both sides apply them with the same code). Between records the
stream sends ``{"op": "heartbeat", "version": N, "epoch": E}`` every ``timing.sync_reconnect``
seconds, so a follower can tell a quiet stream from a dead one. ``epoch`` changes every time
the service starts: a follower that sees another epoch (409 on the stream) reloads the
snapshot instead of applying records from another history.

Operations append records: ``POST /apps/{app}`` (create or replace), ``DELETE /apps/{app}``,
``POST /apps/{app}/dynos`` (set the dyno list), ``POST /apps/{app}/dynos/{dyno}``
(``{"state"|"address"}``), ``POST /apps/{app}/maintenance`` (``{"enabled": bool}``) and
``POST /poison`` (a malformed record for incident rehearsal; the snapshot is unaffected).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import click
from aiohttp import web
from prometheus_client import Gauge

from simctl.platform.router import records
from simctl.platform.router.records import App, RecordError, UnknownTarget
from simctl.platform.service import Service, kv, run_service
from simctl.platform.timing import HEROKU, PROFILES, Timing, profile

NDJSON = "application/x-ndjson"
POISON_KINDS = ("json", "fields", "types", "op")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


class DomainConflict(RecordError):
    """A domain that another app already has."""


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, "status": status, **extra}, status=status)


class SyncService(Service):
    name = "sync"

    def __init__(self, timing: Timing = HEROKU, apps: dict[str, App] | None = None) -> None:
        super().__init__(timing)
        self.apps: dict[str, App] = {}
        self.epoch = uuid.uuid4().hex[:12]
        self._lines: list[bytes] = []  # the stream: line i is the record with seq i + 1
        self._changed: asyncio.Future[None] | None = None
        self._closing = False
        self.subscribers = 0
        self._streams: set[asyncio.BaseTransport] = set()
        self.poisoned: list[int] = []
        Gauge("sync_version", "Sequence number of the last record in the stream",
              registry=self.registry).set_function(lambda: self.version)
        Gauge("sync_stream_subscribers", "Open GET /routes/stream responses",
              registry=self.registry).set_function(lambda: self.subscribers)
        for app in (apps or {}).values():
            self.append({"op": "app", "app": app.name, **app.to_json()})

    @property
    def version(self) -> int:
        return len(self._lines)

    # the stream -------------------------------------------------------------------------

    def append(self, record: dict[str, Any]) -> int:
        """Validate and apply ``record`` (without seq), then publish it; returns its seq."""
        apps = dict(self.apps)
        records.apply(apps, record)
        self._check_domains(apps)
        self.apps = apps
        return self._publish(json.dumps({"seq": self.version + 1, **record}).encode())

    def poison(self, kind: str = "json") -> int:
        """Append a record no router can apply; the table and snapshot stay as they were."""
        seq = self.version + 1
        app = next(iter(self.apps), "web")
        if kind == "json":  # cut short, the way a half-written record would look
            raw = f'{{"seq": {seq}, "op": "dyno", "app": "{app}", "dyno": "web.1", "state": '
        elif kind == "fields":
            raw = json.dumps({"seq": seq, "op": "dyno"})
        elif kind == "types":
            raw = json.dumps({"seq": seq, "op": "dynos", "app": app, "dynos": "web.1"})
        else:
            raw = json.dumps({"seq": seq, "op": "gc_sweep", "app": app, "dynos": None})
        self.poisoned.append(seq)
        self.log.warning(kv(at="poison", seq=seq, kind=kind))
        return self._publish(raw.encode())

    def _publish(self, line: bytes) -> int:
        self._lines.append(line + b"\n")
        self._wake()
        return self.version

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    def _waiter(self) -> asyncio.Future[None]:
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    @staticmethod
    def _check_domains(apps: dict[str, App]) -> None:
        seen: dict[str, str] = {}
        for app in apps.values():
            for domain in app.domains:
                if seen.setdefault(domain, app.name) != app.name:
                    raise DomainConflict(
                        f"domain {domain!r} already belongs to app {seen[domain]!r}")

    def snapshot(self) -> dict[str, Any]:
        return {"version": self.version, "epoch": self.epoch,
                "apps": {name: app.to_json() for name, app in self.apps.items()}}

    def heartbeat(self) -> bytes:
        return json.dumps({"op": "heartbeat", "version": self.version,
                           "epoch": self.epoch}).encode() + b"\n"

    # service -------------------------------------------------------------------------------

    def setup(self, app: web.Application) -> None:
        app.router.add_get("/routes", self._routes)
        app.router.add_get("/routes/stream", self._stream)
        app.router.add_post("/apps/{app}", self._put_app)
        app.router.add_delete("/apps/{app}", self._delete_app)
        app.router.add_post("/apps/{app}/dynos", self._set_dynos)
        app.router.add_post("/apps/{app}/dynos/{dyno}", self._set_dyno)
        app.router.add_post("/apps/{app}/maintenance", self._maintenance)
        app.router.add_post("/poison", self._poison)

    async def stop(self) -> None:
        self._closing = True  # open streams end, so the server shuts down at once
        self._wake()
        for _ in range(50):  # each handler ends its stream cleanly ...
            if not self._streams:
                return
            await asyncio.sleep(0.01)
        for transport in list(self._streams):  # ... unless its peer does not read
            transport.close()

    def health_details(self) -> dict[str, Any]:
        return {"version": self.version, "epoch": self.epoch, "apps": len(self.apps),
                "subscribers": self.subscribers, "poisoned": self.poisoned}

    async def _routes(self, request: web.Request) -> web.Response:
        return _json(self.snapshot())

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        try:
            since = int(request.query.get("since", "0"))
            if since < 0:
                raise ValueError
        except ValueError:
            return _error(400, "since must be a non-negative integer")
        epoch = request.query.get("epoch", "")
        if epoch and epoch != self.epoch:
            return _error(409, f"epoch {epoch} is gone: reload the snapshot",
                          epoch=self.epoch, version=self.version)
        if since > self.version:
            return _error(409, f"since={since} is ahead of version {self.version}",
                          epoch=self.epoch, version=self.version)
        resp = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-cache"})
        await resp.prepare(request)
        transport = request.transport
        if transport is not None:
            self._streams.add(transport)
        self.subscribers += 1
        pos, interval = since, self.timing.sync_reconnect
        try:
            chunk, pos = b"".join(self._lines[pos:]), self.version
            await resp.write(chunk + self.heartbeat())
            while not self._closing:
                # Records appended while a write was pending must go out before we wait
                # again: the waiter only fires for appends made after it was created.
                if pos < self.version:
                    chunk, pos = b"".join(self._lines[pos:]), self.version
                    await resp.write(chunk)
                    continue
                try:
                    await asyncio.wait_for(asyncio.shield(self._waiter()), interval)
                except TimeoutError:
                    await resp.write(self.heartbeat())
        except ConnectionError:
            pass  # the follower went away
        finally:
            self.subscribers -= 1
            self._streams.discard(transport)
        return resp

    async def _body(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting too
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "body must be JSON", "status": 400}),
                content_type="application/json") from None

    def _apply(self, record: dict[str, Any]) -> web.Response:
        try:
            seq = self.append(record)
        except RecordError as exc:
            status = 404 if isinstance(exc, UnknownTarget) else (
                409 if isinstance(exc, DomainConflict) else 400)
            return _error(status, str(exc))
        self.log.info(kv(at="record", seq=seq, op=record["op"], app=record.get("app")))
        return _json({"version": seq})

    async def _put_app(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            return _error(400, "body must be an object")
        name = request.match_info["app"]
        try:
            app = records.parse_app(name, body)
        except RecordError as exc:
            return _error(400, str(exc))
        return self._apply({"op": "app", "app": name, **app.to_json()})

    async def _delete_app(self, request: web.Request) -> web.Response:
        name = request.match_info["app"]
        if name not in self.apps:
            return _error(404, f"unknown app {name!r}")
        return self._apply({"op": "remove_app", "app": name})

    async def _set_dynos(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        dynos = body.get("dynos") if isinstance(body, dict) else body
        return self._apply({"op": "dynos", "app": request.match_info["app"], "dynos": dynos})

    async def _set_dyno(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict) or not set(body) <= {"state", "address"}:
            return _error(400, "body must be an object with 'state' and/or 'address'")
        return self._apply({"op": "dyno", "app": request.match_info["app"],
                            "dyno": request.match_info["dyno"], **body})

    async def _maintenance(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            return _error(400, "body must be an object with 'enabled'")
        return self._apply({"op": "maintenance", "app": request.match_info["app"],
                            "enabled": body.get("enabled")})

    async def _poison(self, request: web.Request) -> web.Response:
        kind: str | None = "json"
        if request.can_read_body:
            body = await self._body(request)
            kind = body.get("kind", "json") if isinstance(body, dict) else None
        if kind not in POISON_KINDS:
            return _error(400, f"kind must be one of {', '.join(POISON_KINDS)}")
        return _json({"version": self.poison(kind), "kind": kind})


# command line -------------------------------------------------------------------------------

def _qualified(spec: str, apps: list[str], option: str) -> tuple[str, str]:
    if "/" in spec.split("=", 1)[0]:
        app, _, rest = spec.partition("/")
        if app not in apps:
            raise click.BadParameter(f"{spec!r}: no --app {app!r}", param_hint=option)
        return app, rest
    if len(apps) != 1:
        raise click.BadParameter(
            f"{spec!r}: write APP/{spec} when there is not exactly one --app", param_hint=option)
    return apps[0], spec


def apps_from_options(app_names: tuple[str, ...], domains: tuple[str, ...],
                      dynos: tuple[str, ...], routes_file: str | None) -> dict[str, App]:
    """Build the initial table from ``--routes-file`` then ``--app/--domain/--dyno``."""
    apps: dict[str, App] = {}
    if routes_file:
        try:
            data = json.loads(Path(routes_file).read_text())
            apps = records.parse_apps(data.get("apps", data) if isinstance(data, dict) else data)
        except (OSError, ValueError) as exc:
            raise click.BadParameter(f"{routes_file}: {exc}", param_hint="--routes-file") from None
    names = list(dict.fromkeys(app_names))
    spec: dict[str, dict[str, Any]] = {n: {"domains": [], "dynos": []} for n in names}
    for value in domains:
        app, domain = _qualified(value, names, "--domain")
        spec[app]["domains"].append(domain)
    for value in dynos:
        app, rest = _qualified(value, names, "--dyno")
        name, sep, address = rest.partition("=")
        state = "up"
        if "@" in address:
            address, _, state = address.partition("@")
        if not sep:
            raise click.BadParameter(f"{value!r}: want NAME=HOST:PORT[@STATE]", param_hint="--dyno")
        spec[app]["dynos"].append({"name": name, "address": address, "state": state})
    for name, body in spec.items():
        if not body["domains"]:
            body["domains"] = [f"{name}.simctl.test"]
        try:
            apps[name] = records.parse_app(name, body, f"--app {name}: ")
        except RecordError as exc:
            raise click.BadParameter(str(exc)) from None
    try:
        SyncService._check_domains(apps)
    except RecordError as exc:
        raise click.BadParameter(str(exc)) from None
    return apps


@click.command("sync", help="Run the sync service (route table as a versioned stream).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, type=click.IntRange(0, 65535), show_default=True)
@click.option("--timing", type=click.Choice(sorted(PROFILES)), default="heroku", show_default=True)
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
@click.option("--app", "app_names", multiple=True, metavar="APP", help="An app (repeatable).")
@click.option("--domain", "domains", multiple=True, metavar="[APP/]DOMAIN",
              help="A domain of the app (default APP.simctl.test).")
@click.option("--dyno", "dynos", multiple=True, metavar="[APP/]NAME=HOST:PORT[@STATE]",
              help="A dyno of the app, e.g. web.1=127.0.0.1:5001.")
@click.option("--routes-file", type=click.Path(dir_okay=False), default=None,
              help='JSON: {"apps": {APP: {"domains": [...], "dynos": [...]}}}.')
def command(host: str, port: int, timing: str, log_level: str, app_names: tuple[str, ...],
            domains: tuple[str, ...], dynos: tuple[str, ...], routes_file: str | None) -> None:
    apps = apps_from_options(app_names, domains, dynos, routes_file)
    run_service(SyncService(profile(timing), apps), host, port, log_level)
