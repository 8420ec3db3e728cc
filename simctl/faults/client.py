"""simctl's own Toxiproxy client: synchronous, typed, stdlib only, one instance per server.

toxiproxy-python has no timeouts, keeps the host in global state, emulates /populate on the
client side and cannot update anything (docs/toxiproxy.md, "Clients"), so simctl talks to
any Toxiproxy 2.5-2.12 (or the embedded server) through this instead:

    client = ToxiproxyClient("http://127.0.0.1:8474")
    with client.toxic("web.1", "latency", attributes={"latency": 100}):
        ...  # the toxic is removed on exit, even on an exception
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from simctl import __version__
from simctl.errors import ToxiproxyError, ToxiproxyUnreachable

DEFAULT_URL = "http://127.0.0.1:8474"


@dataclass
class Toxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Toxic:
        return cls(
            name=data["name"],
            type=data["type"],
            stream=data["stream"],
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
        )


@dataclass
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[Toxic] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proxy:
        # Unknown keys (the "Logger":{} that Toxiproxy >= 2.5 leaks) are ignored.
        return cls(
            name=data["name"],
            listen=data["listen"],
            upstream=data["upstream"],
            enabled=data["enabled"],
            toxics=[Toxic.from_json(t) for t in data.get("toxics") or []],
        )


class PopulateError(ToxiproxyError):
    """/populate failed part-way; `proxies` are the entries processed before the failure."""

    def __init__(self, status: int, message: str, proxies: list[Proxy]) -> None:
        super().__init__(status, message, "POST", "/populate")
        self.proxies = proxies


def parse_version(body: str) -> str:
    """Accept every /version shape: "2.5.0", 2.6.0's invalid JSON, and >= 2.7.0's JSON."""
    text = body.strip()
    if text.endswith("\\n"):  # 2.6.0 wrote a literal backslash-n after the JSON
        text = text[:-2].rstrip()
    try:
        data = json.loads(text)
    except ValueError:
        return text  # <= 2.5.0: plain text
    if isinstance(data, dict) and isinstance(data.get("version"), str):
        return data["version"]
    return text


def _name(proxy: str | Proxy) -> str:
    return proxy.name if isinstance(proxy, Proxy) else proxy


def _path(*parts: str) -> str:
    # Names are escaped whole, so "a b" and "a/b" stay one path segment.
    return "/" + "/".join(quote(part, safe="") for part in parts)


class ToxiproxyClient:
    def __init__(self, url: str = DEFAULT_URL, timeout: float = 5.0) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")  # a server mounted below a path
        self._patch_ok = True  # becomes False once a pre-2.6 server answers 405 to PATCH

    def __repr__(self) -> str:
        return f"ToxiproxyClient({self.url!r}, timeout={self.timeout})"

    # -- transport ---------------------------------------------------------------------

    def _send(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        headers = {"User-Agent": f"simctl/{__version__}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, self._prefix + path, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except TimeoutError:
            raise ToxiproxyUnreachable(
                f"no answer from Toxiproxy at {self.url} within {self.timeout:g}s"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise ToxiproxyUnreachable(
                f"cannot reach Toxiproxy at {self.url}: {reason.lower()}"
            ) from None
        finally:
            conn.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        status, raw = self._send(method, path, body)
        if not 200 <= status < 300:
            raise ToxiproxyError(status, _error_message(status, raw), method, path)
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:  # something else listens there: say so rather than crash
            message = "the reply is not JSON; is this a Toxiproxy server?"
            raise ToxiproxyError(status, message, method, path) from None

    def _update(self, path: str, body: dict[str, Any]) -> Any:
        """PATCH (Toxiproxy >= 2.6), falling back to POST when the server answers 405."""
        if self._patch_ok:
            try:
                return self._call("PATCH", path, body)
            except ToxiproxyError as exc:
                if exc.status != 405:
                    raise
                self._patch_ok = False
        return self._call("POST", path, body)

    # -- server ------------------------------------------------------------------------

    def version(self) -> str:
        status, raw = self._send("GET", "/version")
        if status != 200:
            raise ToxiproxyError(status, _error_message(status, raw), "GET", "/version")
        return parse_version(raw.decode("utf-8", "replace"))

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        self._call("POST", "/reset")

    def populate(self, proxies: list[dict[str, Any]]) -> list[Proxy]:
        """Create or replace proxies with the server's own /populate (unchanged ones are kept)."""
        status, raw = self._send("POST", "/populate", proxies)
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError:
            data = {}
        listed = data.get("proxies") if isinstance(data, dict) else None
        result = [Proxy.from_json(p) for p in listed or []]
        if not 200 <= status < 300:
            raise PopulateError(status, _error_message(status, raw), result)
        return result

    # -- proxies -----------------------------------------------------------------------

    def proxies(self) -> dict[str, Proxy]:
        data = self._call("GET", "/proxies")
        return {name: Proxy.from_json(p) for name, p in data.items()}

    def proxy(self, name: str) -> Proxy:
        return Proxy.from_json(self._call("GET", _path("proxies", name)))

    def create_proxy(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True
    ) -> Proxy:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return Proxy.from_json(self._call("POST", "/proxies", body))

    def update_proxy(
        self,
        name: str,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> Proxy:
        body = {"listen": listen, "upstream": upstream, "enabled": enabled}
        body = {k: v for k, v in body.items() if v is not None}
        return Proxy.from_json(self._update(_path("proxies", name), body))

    def enable(self, name: str) -> Proxy:
        return self.update_proxy(name, enabled=True)

    def disable(self, name: str) -> Proxy:
        """Toxiproxy's "down": open connections get EOF, new ones are refused."""
        return self.update_proxy(name, enabled=False)

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", _path("proxies", name))

    # -- toxics ------------------------------------------------------------------------

    def toxics(self, proxy: str | Proxy) -> list[Toxic]:
        data = self._call("GET", _path("proxies", _name(proxy), "toxics"))
        return [Toxic.from_json(t) for t in data]

    def get_toxic(self, proxy: str | Proxy, name: str) -> Toxic:
        return Toxic.from_json(self._call("GET", _path("proxies", _name(proxy), "toxics", name)))

    def add_toxic(
        self,
        proxy: str | Proxy,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> Toxic:
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes or {},
        }
        if name is not None:  # otherwise the server names it "<type>_<stream>"
            body["name"] = name
        return Toxic.from_json(self._call("POST", _path("proxies", _name(proxy), "toxics"), body))

    def update_toxic(
        self,
        proxy: str | Proxy,
        name: str,
        attributes: dict[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> Toxic:
        """Change attributes (merged into the current ones) and/or toxicity."""
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = attributes
        if toxicity is not None:
            body["toxicity"] = toxicity
        return Toxic.from_json(self._update(_path("proxies", _name(proxy), "toxics", name), body))

    def remove_toxic(self, proxy: str | Proxy, name: str) -> None:
        self._call("DELETE", _path("proxies", _name(proxy), "toxics", name))

    @contextmanager
    def toxic(
        self,
        proxy: str | Proxy,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> Iterator[Toxic]:
        """A scoped toxic: removed on exit whatever happens, so no fault outlives its block."""
        added = self.add_toxic(proxy, type, stream, toxicity, attributes, name)
        try:
            yield added
        finally:
            try:
                self.remove_toxic(proxy, added.name)
            except ToxiproxyError as exc:
                if exc.status != 404:  # already gone (a reset, a heal) is fine
                    raise


def _error_message(status: int, raw: bytes) -> str:
    """Toxiproxy's {"error","status"} body (sent as text/plain), or whatever text came."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"]
    if text:
        return " ".join(text.split())[:200]
    return http.client.responses.get(status, "error").lower()
