"""``python -m simctl.platform procfile-dyno``: one dyno of a team's own app (docs/apps.md).

A small supervisor: it runs the Procfile command with Heroku's variables (``PORT``,
``DYNO``, ``PS``, ...), relays every line the process prints to Logplex as
``app[web.N]`` (LogShipper), writes the platform's ``heroku[web.N]`` lines (starting,
state changes, R10, exit status) and serves ``/health`` on ``--admin-port``: 503 while
the process has not bound ``$PORT`` (Heroku's boot timeout: R10 after
``timing.boot_timeout``), 200 once the port accepts a connection. When the first
process exits, or never binds, the supervisor ends too, with its last stderr line saying
why, so `simctl up` fails. A process that crashes after it was up is restarted as
Heroku's dyno manager does (at once, then after a cool-off), and sync is told the dyno
is `crashed` meanwhile (docs/apps.md, "Boot and crashes").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import signal
import sys
from typing import Any

import aiohttp
import click
from aiohttp import web
from prometheus_client import Counter, Gauge

from simctl.platform.dyno.command import OneLineCommand
from simctl.platform.dyno.command import logplex_url as checked_logplex_url
from simctl.platform.service import Service, serve, setup_logging
from simctl.platform.shipper import LogShipper, ShipperCollector
from simctl.platform.timing import HEROKU, PROFILES, Timing

log = logging.getLogger(__name__)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
BEHAVIOUR_REFUSED = ("{dyno} runs the project's own app (a Procfile process): dyno behaviours "
                     "apply only to built-in dynos; use a toxic or a process fault instead")


def expand(text: str, env: dict[str, str]) -> str:
    """``$VAR`` and ``${VAR}`` from the dyno's environment, as the shell would (no shell)."""
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def argv_for(command: str, env: dict[str, str], shell: bool) -> list[str]:
    """The process to run: split like a shell would, or `sh -c` when shell is allowed.
    Leading NAME=value words set variables for the process, as in a shell (they are
    added to `env`)."""
    if shell:
        return ["sh", "-c", command]
    words = shlex.split(command)
    while words and _ASSIGNMENT.match(words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = expand(value, env)
    return [expand(arg, env) for arg in words]


def process_type(dyno: str) -> str:
    return dyno.rsplit(".", 1)[0]


class ProcfileDyno(Service):
    name = "procfile-dyno"

    def __init__(self, *, timing: Timing = HEROKU, dyno: str, heroku_dyno: str, app: str,
                 command: str, cwd: str, port: int, env: dict[str, str], shell: bool,
                 logplex: str | None, sync_url: str | None = None,
                 attach: bool = False) -> None:
        super().__init__(timing)
        self.dyno = dyno  # the name in the route table and the fault plane, e.g. web.1
        self.heroku_dyno = heroku_dyno  # $DYNO and the log PROCID, e.g. web.1
        self.app_name = app
        self.command = command
        self.cwd = cwd
        self.app_port = port
        self.extra_env = env
        self.shell = shell
        self.failed = ""
        # not "starting": Service.listen() would take that for "nothing to wait for"
        self.health.set("booting", f"waiting for {heroku_dyno} to bind $PORT {port}")
        self.shipper = (LogShipper(logplex, f"t.{app}", timing=timing, host=heroku_dyno)
                        if logplex else None)
        self._process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[Any]] = []  # the output relays of the current process
        self._supervisor: asyncio.Task[None] | None = None
        self._spawn_error = ""
        self.sync_url = sync_url.rstrip("/") if sync_url else None
        self._session: aiohttp.ClientSession | None = None
        self.has_been_up = False
        self.attach = attach  # probe $PORT only: the process is another container's
        self._state = "starting"
        self.up_gauge = Gauge("dyno_up", "1 once $PORT accepts connections",
                              registry=self.registry)
        self.lines = Counter("dyno_app_lines_total", "Lines the process printed",
                             ["stream"], registry=self.registry)
        self.registry.register(ShipperCollector(lambda: [self.shipper] if self.shipper else []))

    # -- log lines -------------------------------------------------------------------

    def platform_line(self, text: str) -> None:
        print(f"heroku[{self.heroku_dyno}]: {text}", file=sys.stderr, flush=True)
        if self.shipper is not None:
            self.shipper.emit("heroku", self.heroku_dyno, text)

    def app_line(self, text: str, stream: str) -> None:
        self.lines.labels(stream).inc()
        print(f"app[{self.heroku_dyno}]: {text}", file=sys.stderr, flush=True)
        if self.shipper is not None:
            self.shipper.emit("app", self.heroku_dyno, text)

    def _change_state(self, new: str) -> None:
        self.platform_line(f"State changed from {self._state} to {new}")
        self._state = new

    # -- the process -----------------------------------------------------------------

    def child_env(self) -> dict[str, str]:
        # simctl's own settings are not the app's; the owner mark stays, so that `down`
        # finds the team's processes too (simctl/backends/procs.py)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SIMCTL_") or k == "SIMCTL_OWNER"}
        env.update(self.extra_env)
        env.update({"PORT": str(self.app_port), "DYNO": self.heroku_dyno,
                    "PS": self.heroku_dyno, "HEROKU_APP_NAME": self.app_name})
        return env

    async def start(self) -> None:
        if self.shipper is not None:
            await self.shipper.start()
        if self.sync_url:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        if self.attach:
            self._supervisor = asyncio.get_running_loop().create_task(self._probe_only())
            return
        if not await self._spawn():
            self._fail(f"{self.heroku_dyno}: `{self.command}` could not start: {self._spawn_error}")
            return
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _probe_only(self) -> None:
        """`--attach`: the process runs in a container sharing this network namespace
        (the compose backend; docs/apps.md): /health follows whether $PORT accepts."""
        while True:
            if await self._bound():
                if not self.has_been_up:
                    self.health.set("ok", f"{self.heroku_dyno}: {self.command} on $PORT "
                                          f"{self.app_port}")
                    self.up_gauge.set(1)
                    self.has_been_up = True
            elif self.has_been_up:
                self.health.set("crashed", f"{self.heroku_dyno}: nothing accepts on $PORT "
                                           f"{self.app_port}")
                self.up_gauge.set(0)
                self.has_been_up = False
            await asyncio.sleep(0.5)

    async def _spawn(self) -> bool:
        """Start the process and relay its output; False (its exit line written) if it
        cannot start at all."""
        self.platform_line(f"Starting process with command `{self.command}`")
        env = self.child_env()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *argv_for(self.command, env, self.shell), cwd=self.cwd, env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            self._spawn_error = exc.strerror or str(exc)
            self.platform_line(f"Process exited with status 127 ({self._spawn_error})")
            return False
        loop = asyncio.get_running_loop()
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        self._tasks = [loop.create_task(self._relay(self._process.stdout, "stdout")),
                       loop.create_task(self._relay(self._process.stderr, "stderr"))]
        return True

    async def _relay(self, stream: asyncio.StreamReader, name: str) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over the reader's limit: take what is there
                line = await stream.read(65536)
            if not line:
                return
            self.app_line(line.decode(errors="replace").rstrip("\r\n"), name)

    async def _bound(self) -> bool:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.app_port), 0.5)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def _supervise(self) -> None:
        """Run the process until it ends; restart it like Heroku's dyno manager.

        The first boot decides `simctl up`: a process that never binds (R10) or exits
        before binding ends the supervisor, so `up` fails. Once the dyno has been up, a
        crash marks it `crashed` in sync (the router answers H10 when every dyno is) and
        restarts it: at once after the first crash, after `timing.crash_cooldown` after
        each later one, until it stays up that long (docs/apps.md, "Boot and crashes")."""
        crashes = 0
        loop = asyncio.get_running_loop()
        spawned = True
        while True:
            started = loop.time()
            failure = await self._run_once() if spawned else \
                f"{self.heroku_dyno}: `{self.command}` could not start: {self._spawn_error}"
            if not self.has_been_up:
                self._fail(failure)
                return
            self.health.set("crashed", failure)
            await self._report("crashed")
            if loop.time() - started >= self.timing.crash_cooldown:
                crashes = 0  # it stayed up a cool-off's length: the next crash is a first
            crashes += 1
            if crashes > 1:
                await asyncio.sleep(self.timing.crash_cooldown)
            self._change_state("starting")
            self.health.set("booting", f"restarting {self.heroku_dyno} after a crash")
            spawned = await self._spawn()
            if not spawned:
                self._change_state("crashed")

    async def _run_once(self) -> str:
        """Boot (bind within the boot timeout, else R10), then wait for the process to
        end. Returns why it ended, with its `Process exited` and `crashed` lines written."""
        assert self._process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timing.boot_timeout
        exited = loop.create_task(self._process.wait())
        while not exited.done():
            if await self._bound():
                # the reason `simctl status` shows: which process this dyno runs
                self.health.set("ok", f"{self.heroku_dyno}: `{self.command}` on $PORT "
                                      f"{self.app_port}")
                self.up_gauge.set(1)
                self._change_state("up")
                if self.has_been_up:
                    await self._report("up")
                self.has_been_up = True
                break
            if loop.time() >= deadline:
                seconds = f"{self.timing.boot_timeout:g}"
                self.platform_line(f"Error R10 (Boot timeout) -> Web process failed to bind to "
                                   f"$PORT within {seconds} seconds of launch")
                self.platform_line("Stopping process with SIGKILL")
                self._signal(signal.SIGKILL)
                status = await exited
                await asyncio.gather(*self._tasks, return_exceptions=True)
                self.platform_line(f"Process exited with status {_status(status)}")
                self._change_state("crashed")
                return (f"{self.heroku_dyno}: Error R10 (Boot timeout): `{self.command}` did "
                        f"not bind $PORT ({self.app_port}) within {seconds} s")
            await asyncio.wait({exited}, timeout=0.1)
        status = await exited
        await asyncio.gather(*self._tasks, return_exceptions=True)  # the last lines first
        self.up_gauge.set(0)
        self.platform_line(f"Process exited with status {_status(status)}")
        before = "before binding $PORT" if self._state == "starting" else "after it was up"
        self._change_state("crashed")
        return f"{self.heroku_dyno}: `{self.command}` exited with status {_status(status)} {before}"

    async def _report(self, state: str) -> None:
        """Tell sync the dyno's state, as Heroku's dyno manager does (H10 needs it)."""
        if self._session is None:
            return
        url = f"{self.sync_url}/apps/{self.app_name}/dynos/{self.dyno}"
        try:
            async with self._session.post(url, json={"state": state}) as response:
                if response.status >= 400:
                    log.warning("sync refused state %s for %s: %s", state, self.dyno,
                                response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("sync unreachable (state %s for %s): %s", state, self.dyno, exc)

    def _signal(self, signum: int) -> None:
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signum)

    def _fail(self, message: str) -> None:
        """Say why (the backend shows the last stderr line), then end the supervisor."""
        self.failed = message
        self.health.set("crashed", message)
        print(f"error: {message}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self.platform_line("Stopping all processes with SIGTERM")
            self._signal(signal.SIGTERM)
            try:
                status = await asyncio.wait_for(self._process.wait(), 2.0)
            except TimeoutError:
                self._signal(signal.SIGKILL)
                status = await self._process.wait()
            self.platform_line(f"Process exited with status {_status(status)}")
        tasks = [*self._tasks, *([self._supervisor] if self._supervisor else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self.shipper is not None:
            await self.shipper.stop()

    # -- HTTP ------------------------------------------------------------------------

    def setup(self, app: web.Application) -> None:
        app.router.add_get("/control", self._control_normal)
        app.router.add_delete("/control", self._control_normal)
        app.router.add_post("/control", self._control_refused)

    async def _control_normal(self, request: web.Request) -> web.Response:
        # A baseline reset asks every dyno for `normal`: that is all this dyno ever is.
        return web.json_response({"behaviour": "normal"})

    async def _control_refused(self, request: web.Request) -> web.Response:
        return web.json_response({"error": BEHAVIOUR_REFUSED.format(dyno=self.dyno)},
                                 status=400)

    def health_details(self) -> dict[str, Any]:
        return {"dyno": self.dyno, "port": self.app_port, "command": self.command,
                "pid": self._process.pid if self._process else None}

    def ready_line(self) -> str:
        return f"ready service={self.name} url={self.url} app=http://127.0.0.1:{self.app_port}"


def _status(returncode: int) -> int:
    """A signal's death as the shell reports it (128 + N), like Heroku's exit lines."""
    return 128 - returncode if returncode < 0 else returncode


def _env_pair(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
              ) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise click.BadParameter(f"{value!r}: want KEY=VALUE")
        out[key] = val
    return out


@click.command("procfile-dyno", cls=OneLineCommand,
               help="Run one Procfile process as a dyno: $PORT, logs to Logplex, R10.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Admin listen address.")
@click.option("--admin-port", type=click.IntRange(0, 65535), default=0,
              help="/health and /metrics of the supervisor.")
@click.option("--port", type=click.IntRange(1, 65535), required=True,
              help="The process's $PORT (what the router's proxy forwards to).")
@click.option("--name", "dyno", required=True, help="Dyno name in the route table (web.1).")
@click.option("--app", "app_name", required=True, help="App name; logs go to token t.<app>.")
@click.option("--command", "command_line", required=True, help="The Procfile command.")
@click.option("--cwd", type=click.Path(file_okay=False, exists=True), default=".",
              help="Directory the command runs in (the Procfile's).")
@click.option("--env", "env", multiple=True, callback=_env_pair, metavar="KEY=VALUE",
              help="Config var for the process (repeatable).")
@click.option("--shell/--no-shell", default=False,
              help="Run the command with sh -c (only when the user allowed shell).")
@click.option("--logplex-url", default=None, help="Logplex ingest URL.")
@click.option("--sync-url", default=None,
              help="Sync's URL: a crash marks the dyno crashed there, a restart up again.")
@click.option("--attach", is_flag=True,
              help="Run nothing: the process is a container sharing this network namespace; "
                   "only probe $PORT (the compose backend).")
@click.option("--timing", type=click.Choice(sorted(PROFILES)), default="heroku")
@click.option("--log-level", default="info")
def command(host: str, admin_port: int, port: int, dyno: str, app_name: str,
            command_line: str, cwd: str, env: dict[str, str], shell: bool,
            logplex_url: str | None, sync_url: str | None, attach: bool, timing: str,
            log_level: str) -> None:
    logplex = checked_logplex_url(logplex_url)
    index = dyno.rsplit(".", 1)[-1]
    service = ProcfileDyno(timing=PROFILES[timing], dyno=dyno, heroku_dyno=f"web.{index}",
                           app=app_name, command=command_line, cwd=cwd, port=port, env=env,
                           shell=shell, logplex=logplex, sync_url=sync_url, attach=attach)
    setup_logging(log_level)
    try:
        asyncio.run(serve(service, host, admin_port))
    except OSError as exc:
        print(f"error: {dyno}: cannot listen on {host}:{admin_port}: {exc.strerror}",
              file=sys.stderr)
        sys.exit(6)
    sys.exit(1 if service.failed else 0)
