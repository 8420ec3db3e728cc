"""An address that never answers a TCP connect, on 127.0.0.1
(docs/platform.md, "Unreachable addresses").

A toxic cannot make a connect time out: the proxy accepts first. H19 (backend connect
timeout) needs a listener whose accept queue is full: the kernel then drops new SYNs
and the connecting side waits until its own timeout. This service holds such a
listener on --hole-port (backlog 0, never accepting, filled by its own connection)
and serves /health and /metrics on --port like every service.
"""

from __future__ import annotations

import socket

import click

from simctl.platform.service import Service, kv, run_service
from simctl.platform.timing import HEROKU, PROFILES, Timing, profile


class BlackholeService(Service):
    name = "blackhole"

    def __init__(self, timing: Timing = HEROKU, host: str = "127.0.0.1", hole_port: int = 0):
        super().__init__(timing)
        self.hole_host = host
        self.hole_port = hole_port
        self._sockets: list[socket.socket] = []

    async def start(self) -> None:
        hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hole.bind((self.hole_host, self.hole_port))
        hole.listen(0)
        self.hole_port = hole.getsockname()[1]
        self._sockets.append(hole)
        # Fill the accept queue so that every later SYN is dropped, not answered.
        for _ in range(2):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            try:
                filler.connect((self.hole_host, self.hole_port))
            except BlockingIOError:
                pass
            self._sockets.append(filler)
        self.log.info(kv(at="holding", address=f"{self.hole_host}:{self.hole_port}"))

    async def stop(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def health_details(self) -> dict[str, object]:
        return {"address": f"{self.hole_host}:{self.hole_port}"}


@click.command("blackhole")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="/health and /metrics.")
@click.option("--hole-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="The address that never answers.")
@click.option("--timing", type=click.Choice(sorted(PROFILES)), default="heroku")
@click.option("--log-level", default="info")
def command(host: str, port: int, hole_port: int, timing: str, log_level: str) -> None:
    """Hold a TCP address whose connects time out (for H19)."""
    run_service(BlackholeService(profile(timing), host, hole_port), host, port, log_level)
