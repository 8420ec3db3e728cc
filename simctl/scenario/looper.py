"""An asyncio loop in a daemon thread: where the load generator and the probes' HTTP run.

The engine itself is synchronous and runs in the caller's thread (the main thread for
``simctl verify``), so that SIGINT and SIGTERM arrive there as exceptions between two
steps of the run and ``finally`` blocks roll back. Everything asynchronous (the open-loop
load generator, log tails, parallel scrapes) runs here; the engine waits for results
with ``run(coro, timeout)``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    def __init__(self, name: str = "simctl-engine") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self.closed = False

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the loop and wait for its result (cancelled on timeout or on an
        exception in the waiting thread, such as KeyboardInterrupt)."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def call(self, func: Any, *args: Any) -> None:
        """Schedule a plain callable on the loop (thread-safe)."""
        self.loop.call_soon_threadsafe(func, *args)

    def close(self, timeout: float = 10.0) -> None:
        """Cancel what is still running, then stop the loop and its thread."""
        if self.closed:
            return
        self.closed = True
        try:
            self.submit(_cancel_all()).result(timeout)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


async def _cancel_all() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()
