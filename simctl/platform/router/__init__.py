"""The router: an HTTP/1.1 reverse proxy in Vegur's spirit with Heroku's routing rules.

Modules, in the order a request meets them: http (client connections, h11 server) and
fasthead (httptools for plain heads), exchange (one request: validate, route, dispatch,
proxy, log), dispatch (dyno slots and backlog), quarantine, pool (kept-alive dyno
connections), proxying (dyno connections) and response (the dyno's response),
codes and logline (H-codes, pages, log lines), logs (shipping to logplex), metrics. The
table comes from sync through follower (records and table hold the data model); core
holds the shared state; service, tls and cli wire it up. testing has misbehaving dynos,
a logplex capture and an in-process stack for tests.
"""

from simctl.platform.router.cli import command
from simctl.platform.router.service import RouterService

__all__ = ["RouterService", "command"]
