"""``python -m simctl.apps.container_relay``: the dyno manager of an app's containers on
the compose backend (docs/apps.md, "The compose backend").

One host process per project, started by `simctl up --backend compose` and ended by
`simctl down`. Through the Docker SDK it follows every app container of the project
(label org.simctl.dyno): what the container prints goes to Logplex as ``app[web.N]``
through the stack's `dyno-logs` proxy, as a built-in dyno's lines do; it writes the
platform's ``heroku[web.N]`` lines (starting, up, exit status, crashed) and, when a
container exits, tells sync the dyno is `crashed` and starts it again as the local
supervisor does: at once after the first crash, after ``timing.crash_cooldown`` after
each later one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from typing import Any

import aiohttp
import click

from simctl.apps.compose_apps import APP_LABEL
from simctl.platform.shipper import LogShipper
from simctl.platform.timing import PROFILES, Timing

log = logging.getLogger("simctl.container-relay")
PROJECT_LABEL = "com.docker.compose.project"


class ContainerDyno:
    """One app container: its lines, its state changes, its restarts."""

    def __init__(self, docker: Any, container: Any, app: str, logplex: str, sync: str,
                 timing: Timing, session: aiohttp.ClientSession) -> None:
        self.docker = docker
        self.container = container
        self.dyno = str(container.labels[APP_LABEL])
        self.health_url = str(container.labels.get("org.simctl.admin", ""))
        self.app = app
        self.sync = sync
        self.timing = timing
        self.session = session
        self.shipper = LogShipper(logplex, f"t.{app}", timing=timing, host=self.dyno)
        config = container.attrs.get("Config") or {}
        self.command = " ".join([*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])])
        self.state = "starting"

    def platform_line(self, text: str) -> None:
        print(f"heroku[{self.dyno}]: {text}", flush=True)
        self.shipper.emit("heroku", self.dyno, text)

    def change_state(self, new: str) -> None:
        self.platform_line(f"State changed from {self.state} to {new}")
        self.state = new

    async def run(self) -> None:
        await self.shipper.start()
        try:
            await self._supervise()
        finally:
            await self.shipper.stop()

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        crashes = 0
        since: float | None = None  # the first round relays what it printed before we came
        self.platform_line(f"Starting process with command `{self.command}`")
        while True:
            started = time.monotonic()
            pump = loop.run_in_executor(None, self._pump, loop, since)
            await self._wait_up()
            status = await asyncio.to_thread(self._wait_exit)
            await asyncio.wait({pump}, timeout=2)  # its last lines first
            if status is None:
                return  # removed: scaled down, or the stack goes down
            self.platform_line(f"Process exited with status {status}")
            self.change_state("crashed")
            await self._report("crashed")
            if time.monotonic() - started >= self.timing.crash_cooldown:
                crashes = 0
            crashes += 1
            if crashes > 1:
                await asyncio.sleep(self.timing.crash_cooldown)
            self.change_state("starting")
            since = time.time()
            self.platform_line(f"Starting process with command `{self.command}`")
            try:
                await asyncio.to_thread(self.container.start)
            except Exception as exc:  # removed meanwhile, or its supervisor is gone
                log.warning("%s: cannot start again: %s", self.dyno, exc)
                return

    def _pump(self, loop: asyncio.AbstractEventLoop, since: float | None) -> None:
        """Relay the container's output until it stops (a thread: the SDK blocks)."""
        try:
            stream = self.container.logs(stream=True, follow=True, stdout=True, stderr=True,
                                         **({"since": since} if since else {}))
            pending = b""
            for chunk in stream:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    text = line.decode(errors="replace").rstrip("\r")
                    loop.call_soon_threadsafe(self.shipper.emit, "app", self.dyno, text)
            if pending:
                loop.call_soon_threadsafe(self.shipper.emit, "app", self.dyno,
                                          pending.decode(errors="replace"))
        except Exception as exc:  # the container was removed
            log.info("%s: log stream ended: %s", self.dyno, exc)

    async def _wait_up(self) -> None:
        """`up` once the supervisor beside the container says $PORT accepts."""
        while self.state != "up":
            try:
                async with self.session.get(self.health_url) as response:
                    if response.status == 200:
                        self.change_state("up")
                        if self.sync:
                            await self._report("up")
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if not await asyncio.to_thread(self._running):
                return
            await asyncio.sleep(0.5)

    def _running(self) -> bool:
        try:
            self.container.reload()
        except Exception:
            return False
        return self.container.status in ("running", "paused")

    def _wait_exit(self) -> int | None:
        """The exit status, or None when the container was removed."""
        try:
            return int(self.container.wait()["StatusCode"])
        except Exception:
            return None

    async def _report(self, state: str) -> None:
        url = f"{self.sync}/apps/{self.app}/dynos/{self.dyno}"
        try:
            async with self.session.post(url, json={"state": state}) as response:
                if response.status >= 400:
                    log.warning("sync refused %s for %s: %s", state, self.dyno, response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("sync unreachable (%s for %s): %s", state, self.dyno, exc)


async def relay(project: str, app: str, logplex: str, sync: str, timing: Timing) -> None:
    import docker  # noqa: PLC0415 (the docker extra; the compose backend needs it)

    client = docker.from_env(timeout=60)
    followed: dict[str, asyncio.Task[None]] = {}
    filters: dict[str, str | list[str] | bool] = {
        "label": [f"{PROJECT_LABEL}={project}", APP_LABEL]}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        while True:
            containers = await asyncio.to_thread(client.containers.list, all=True,
                                                 filters=filters)
            for container in containers:
                if container.id is None:  # docker-py's type; a listed container has one
                    continue
                task = followed.get(container.id)
                if task is None or task.done():
                    dyno = ContainerDyno(client, container, app, logplex, sync, timing, session)
                    followed[container.id] = asyncio.create_task(dyno.run())
            await asyncio.sleep(2)  # new containers: a scale up, a restart by hand


@click.command()
@click.option("--project", required=True)
@click.option("--app", default="web", show_default=True)
@click.option("--logplex-url", required=True, help="Logplex ingest URL (the dyno-logs proxy).")
@click.option("--sync-url", required=True, help="Sync, told when a dyno crashes or is up.")
@click.option("--timing", type=click.Choice(sorted(PROFILES)), default="heroku")
def main(project: str, app: str, logplex_url: str, sync_url: str, timing: str) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(relay(project, app, logplex_url, sync_url.rstrip("/"), PROFILES[timing]))


if __name__ == "__main__":
    main()
