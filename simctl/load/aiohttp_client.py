"""The same client interface as rawhttp.RawClient, on aiohttp (``client="aiohttp"``).

About 2.5 times the CPU per request of the raw client (bench/load_generator.py), but
it is aiohttp's full HTTP implementation: a fallback for targets the raw client's
minimal parser would not understand.
"""

from __future__ import annotations

import aiohttp

from simctl.load.rawhttp import (
    ConnectFailed,
    Disconnected,
    ProtocolFailure,
    Reply,
    RequestTimeout,
    client_context,
)


class AiohttpClient:
    def __init__(
        self,
        url: str,
        *,
        host: str | None = None,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        timeout: float = 60.0,
        verify_tls: bool = True,
        ca_pem: str | None = None,
        limit: int = 100,
    ) -> None:
        self.url = url
        self.method = method.upper()
        self.headers = {"User-Agent": "simctl-load", **(headers or {})}
        if host:
            self.headers["Host"] = host
        self.body = body or None
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.ssl = client_context(verify_tls, ca_pem)
        self.limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.limit, ssl=self.ssl)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout,
                                              auto_decompress=False)
        return self._session

    async def request(self) -> Reply:
        session = self._session or self._open()
        try:
            async with session.request(self.method, self.url, headers=self.headers,
                                       data=self.body, allow_redirects=False) as resp:
                nbytes = 0
                async for chunk in resp.content.iter_any():
                    nbytes += len(chunk)
                return Reply(resp.status, resp.headers.get("X-Router-Code"), nbytes)
        except TimeoutError:
            raise RequestTimeout("no full response before the timeout") from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectFailed(str(exc)) from None
        except aiohttp.ClientResponseError as exc:
            raise ProtocolFailure(str(exc)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Disconnected(f"{type(exc).__name__}: {exc}", True) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
