"""Every proxy of a server, with create, populate and reset (proxy_collection.go)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from simctl.faults import wire
from simctl.faults.errors import (
    BAD_REQUEST_BODY,
    MISSING_FIELD,
    PROXY_EXISTS,
    PROXY_NOT_FOUND,
    ApiError,
)
from simctl.faults.metrics import ProxyMetrics
from simctl.faults.names import check_name
from simctl.faults.proxy import Proxy

T = TypeVar("T")


def parse_proxy(body: Any, where: str = "") -> dict[str, Any]:
    body = wire.expect_object(body, "toxiproxy.Proxy")
    fields: dict[str, Any] = {
        "name": wire.get_str(body, "name", "", "Proxy.name"),
        "listen": wire.get_str(body, "listen", "", "Proxy.listen"),
        "upstream": wire.get_str(body, "upstream", "", "Proxy.upstream"),
        "enabled": wire.get_bool(body, "enabled", True, "Proxy.enabled"),
    }
    for required in ("name", "upstream"):
        if not fields[required]:
            raise MISSING_FIELD.join(required + where)
    check_name(fields["name"])
    return fields


class ProxyCollection:
    def __init__(self, seed: int | None = None, metrics: ProxyMetrics | None = None) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.seed = seed
        self.metrics = metrics
        # create/populate/remove/reset await (bind, stop) between the name check and the
        # dict update: without this lock concurrent POST /proxies with one name all got
        # 201 and left orphan listeners bound forever. Toxiproxy locks the collection too.
        self._lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise PROXY_NOT_FOUND
        return proxy

    async def create(self, body: Any, reply: Callable[[Proxy], T]) -> tuple[Proxy, T]:
        """Create a proxy, and its reply; on any error (even while replying) nothing stays."""
        async with self._lock:
            fields = parse_proxy(body)
            if fields["name"] in self.proxies:
                raise PROXY_EXISTS
            proxy = self._new(fields)
            try:
                if fields["enabled"]:
                    await proxy.start()  # a bind failure means the proxy is not added
                self.proxies[proxy.name] = proxy
                return proxy, reply(proxy)
            except BaseException:
                self.proxies.pop(proxy.name, None)
                await asyncio.shield(proxy.stop())
                raise

    def _new(self, fields: dict[str, Any]) -> Proxy:
        return Proxy(fields["name"], fields["listen"], fields["upstream"], self.seed, self.metrics)

    async def populate(self, body: Any) -> tuple[list[Proxy], ApiError | None]:
        async with self._lock:
            return await self._populate(body)

    async def _populate(self, body: Any) -> tuple[list[Proxy], ApiError | None]:
        """Validate all, then add-or-replace in order; stop at the first failure."""
        if not isinstance(body, list):
            raise BAD_REQUEST_BODY.join(
                f"json: cannot unmarshal {wire.go_kind(body)} into Go value of type "
                "[]toxiproxy.Proxy"
            )
        entries = []
        for index, item in enumerate(body, start=1):
            entries.append(parse_proxy(item, f" at proxy {index}"))
        done: list[Proxy] = []
        for fields in entries:
            existing = self.proxies.get(fields["name"])
            if existing is not None and not existing.differs(fields["listen"], fields["upstream"]):
                done.append(existing)  # unchanged: toxics and connections survive (2.12)
                continue
            if existing is not None:
                await existing.stop()
                del self.proxies[existing.name]
            proxy = self._new(fields)
            try:
                if fields["enabled"]:
                    await proxy.start()
            except ApiError as exc:
                return done, exc
            self.proxies[proxy.name] = proxy
            done.append(proxy)
        return done, None

    async def remove(self, name: str) -> None:
        async with self._lock:
            proxy = self.get(name)
            del self.proxies[name]
            await proxy.stop()

    async def reset(self) -> None:
        async with self._lock:
            for proxy in list(self.proxies.values()):
                await proxy.start()
                await proxy.toxics.reset()

    async def close(self) -> None:
        async with self._lock:
            for proxy in list(self.proxies.values()):
                await proxy.stop()
            self.proxies.clear()
