"""Open-loop traffic for the simulated platform: HTTP requests and log lines.

    from simctl.load import HttpTraffic, LoadGenerator, LogTraffic

    gen = LoadGenerator(
        HttpTraffic("http://127.0.0.1:8080/", rate=200, host="web.example"),
        LogTraffic("http://127.0.0.1:8090", rate=2000, app="web"),
        duration=30,
    )
    await gen.start()
    gen.snapshot()            # any time: LoadSnapshot (http, logs, last window)
    result = await gen.wait()  # LoadResult: final snapshot + per-window series

Modules: generator.py (scheduling, the public classes), results.py (dataclasses,
HdrHistogram recording), rawhttp.py (the fast HTTP/1.1 client), aiohttp_client.py
(the same interface on aiohttp), logs.py (logplex-1 batches).
"""

from simctl.load.generator import CLIENTS, HttpTraffic, LoadGenerator, LogTraffic
from simctl.load.results import (
    HttpStats,
    Latency,
    LoadResult,
    LoadSnapshot,
    LogStats,
    Window,
)

__all__ = [
    "CLIENTS",
    "HttpStats",
    "HttpTraffic",
    "Latency",
    "LoadGenerator",
    "LoadResult",
    "LoadSnapshot",
    "LogStats",
    "LogTraffic",
    "Window",
]
