"""The route table and the records that change it (architecture.md, sync section).

The sync service and every router apply the same records with the same code, so a
router's table at version N is exactly the sync service's table at version N. A record
is ``{"seq": N, "op": OP, ...}``:

    app          {"app", "domains": [..], "maintenance": bool, "dynos": [DYNO, ..]}  (create)
    remove_app   {"app"}
    dynos        {"app", "dynos": [DYNO, ..]}                        (set the dyno list: scale)
    dyno         {"app", "dyno": NAME, "state"?: STATE, "address"?: "host:port"}
    maintenance  {"app", "enabled": bool}
    heartbeat    {"version": N} with no seq: liveness of the stream, never applied

with DYNO = {"name": "web.1", "address": "127.0.0.1:P", "state": "up|starting|crashed|down"}.
Anything else (bad JSON, a missing field, a wrong type, an unknown op or app) is a
``RecordError``: the follower stops applying rather than guess (docs/platform.md, "State sync").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

STATES = ("up", "starting", "crashed", "down")
OPS = ("app", "remove_app", "dynos", "dyno", "maintenance")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


class RecordError(ValueError):
    """A record or snapshot that cannot be applied."""


class UnknownTarget(RecordError):
    """A record about an app or dyno the table does not have."""


def _fail(where: str, message: str) -> RecordError:
    return RecordError(f"{where}: {message}" if where else message)


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise _fail(where, f"missing field {key!r}")
    value = obj[key]
    # bool is an int in Python; never accept it where a number or string is expected
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise _fail(where, f"field {key!r} must be {names}, got {type(value).__name__}")
    return value


def check_name(value: Any, what: str = "name", where: str = "") -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _fail(where, f"bad {what} {value!r} (letters, digits, '_', '.', '-'; at most 63)")
    return value


def check_domain(value: Any, where: str = "") -> str:
    if not isinstance(value, str) or not _DOMAIN.fullmatch(value.lower()):
        raise _fail(where, f"bad domain {value!r}")
    return value.lower()


def check_state(value: Any, where: str = "") -> str:
    if value not in STATES:
        raise _fail(where, f"bad state {value!r} (one of {', '.join(STATES)})")
    return value


def split_address(value: Any, where: str = "") -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    if not isinstance(value, str) or ":" not in value:
        raise _fail(where, f"bad address {value!r} (want host:port)")
    host, _, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or any(c.isspace() for c in host) or not port_text.isdigit():
        raise _fail(where, f"bad address {value!r} (want host:port)")
    port = int(port_text)
    if not 0 < port < 65536:
        raise _fail(where, f"bad port in address {value!r}")
    return host, port


@dataclass(frozen=True, slots=True)
class Dyno:
    app: str
    name: str
    address: str
    state: str
    host: str = field(compare=False)
    port: int = field(compare=False)
    key: str = field(compare=False)  # identity for quarantine and concurrency

    @classmethod
    def make(cls, app: str, name: str, address: str, state: str) -> Dyno:
        host, port = split_address(address)
        return cls(app, name, address, state, host, port, f"{app}/{name}@{address}")

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address, "state": self.state}


@dataclass(frozen=True, slots=True)
class App:
    name: str
    domains: tuple[str, ...]
    maintenance: bool
    dynos: tuple[Dyno, ...]
    up: tuple[Dyno, ...] = field(compare=False, default=())

    @classmethod
    def make(cls, name: str, domains: tuple[str, ...], maintenance: bool,
             dynos: tuple[Dyno, ...]) -> App:
        return cls(name, domains, maintenance, dynos, tuple(d for d in dynos if d.state == "up"))

    def with_dynos(self, dynos: tuple[Dyno, ...]) -> App:
        return App.make(self.name, self.domains, self.maintenance, dynos)

    def dyno(self, name: str) -> Dyno | None:
        for d in self.dynos:
            if d.name == name:
                return d
        return None

    def to_json(self) -> dict[str, Any]:
        return {"domains": list(self.domains), "maintenance": self.maintenance,
                "dynos": [d.to_json() for d in self.dynos]}


def parse_dyno(app: str, obj: Any, where: str) -> Dyno:
    if not isinstance(obj, dict):
        raise _fail(where, f"a dyno must be an object, got {type(obj).__name__}")
    name = check_name(_get(obj, "name", str, where), "dyno name", where)
    address = _get(obj, "address", str, where)
    split_address(address, where)
    state = check_state(_get(obj, "state", str, where), where) if "state" in obj else "up"
    return Dyno.make(app, name, address, state)


def parse_dynos(app: str, value: Any, where: str) -> tuple[Dyno, ...]:
    if not isinstance(value, list):
        raise _fail(where, f"field 'dynos' must be list, got {type(value).__name__}")
    dynos = tuple(parse_dyno(app, d, f"{where}dynos[{i}]: ") for i, d in enumerate(value))
    names = [d.name for d in dynos]
    if len(set(names)) != len(names):
        raise _fail(where, "duplicate dyno names")
    return dynos


def parse_app(name: str, obj: Any, where: str = "") -> App:
    check_name(name, "app name", where)
    if not isinstance(obj, dict):
        raise _fail(where, f"app {name!r} must be an object, got {type(obj).__name__}")
    domains_raw = obj.get("domains", [f"{name}.simctl.test"])
    if not isinstance(domains_raw, list):
        raise _fail(where, "field 'domains' must be list")
    domains = tuple(check_domain(d, where) for d in domains_raw)
    maintenance = obj.get("maintenance", False)
    if not isinstance(maintenance, bool):
        raise _fail(where, "field 'maintenance' must be bool")
    return App.make(name, domains, maintenance, parse_dynos(name, obj.get("dynos", []), where))


def parse_apps(obj: Any, where: str = "") -> dict[str, App]:
    if not isinstance(obj, dict):
        raise _fail(where, "'apps' must be an object of app name -> app")
    apps = {name: parse_app(name, spec, f"{where}apps.{name}") for name, spec in obj.items()}
    seen: dict[str, str] = {}
    for app in apps.values():
        for domain in app.domains:
            if domain in seen:
                raise _fail(where, f"domain {domain!r} in {seen[domain]!r} and {app.name!r}")
            seen[domain] = app.name
    return apps


def apply(apps: dict[str, App], record: Any) -> None:
    """Apply one record to ``apps`` in place, or raise RecordError and change nothing."""
    if not isinstance(record, dict):
        raise RecordError(f"a record must be an object, got {type(record).__name__}")
    op = _get(record, "op", str, "")
    if op not in OPS:
        raise RecordError(f"unknown op {op!r}")
    name = _get(record, "app", str, op)
    if op == "app":
        apps[name] = parse_app(name, record, op)
        return
    if op == "remove_app":
        apps.pop(name, None)
        return
    app = apps.get(name)
    if app is None:
        raise UnknownTarget(f"{op}: unknown app {name!r}")
    if op == "dynos":
        apps[name] = app.with_dynos(parse_dynos(name, _get(record, "dynos", list, op), op + ": "))
    elif op == "maintenance":
        enabled = _get(record, "enabled", bool, op)
        apps[name] = App.make(app.name, app.domains, enabled, app.dynos)
    else:  # dyno
        dyno_name = _get(record, "dyno", str, op)
        old = app.dyno(dyno_name)
        if old is None:
            raise UnknownTarget(f"{op}: unknown dyno {dyno_name!r} in app {name!r}")
        if "state" not in record and "address" not in record:
            raise _fail(op, "needs 'state' or 'address'")
        state = check_state(_get(record, "state", str, op), op) if "state" in record else old.state
        address = _get(record, "address", str, op) if "address" in record else old.address
        split_address(address, op)
        new = Dyno.make(name, dyno_name, address, state)
        apps[name] = app.with_dynos(tuple(new if d.name == dyno_name else d for d in app.dynos))


def check_seq(record: Any) -> int:
    """The record's seq (a positive int), or RecordError."""
    if not isinstance(record, dict):
        raise RecordError(f"a record must be an object, got {type(record).__name__}")
    seq = _get(record, "seq", int, "")
    if seq < 1:
        raise RecordError(f"bad seq {seq}")
    return seq
