import time

from simctl.faults.toxics.base import EOF, Attribute, Stub, Toxic

TIMER_TICK_CORRECTION = 0.0005


class Latency(Toxic):
    type_name = "latency"
    summary = "Delays every chunk by latency +/- jitter, counted from when it was read."
    attributes = (
        Attribute("latency", "ms", "time to add to each chunk"),
        Attribute("jitter", "ms", "random variation, drawn per chunk in [-jitter, +jitter)"),
    )
    buffer_size = 1024

    @staticmethod
    async def pipe(stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is EOF:
                stub.close()
                return
            delay = stub.attrs["latency"]
            jitter = stub.attrs["jitter"]
            if jitter > 0:
                delay += stub.rng.randrange(2 * jitter) - jitter
            # Deadline-based, so chunks that queued up are not delayed twice (pipelined).
            sleep = delay / 1000 - (time.monotonic() - chunk.ts)
            # Event-loop timers fire on millisecond ticks, late by 0-1 ms (about 0.7 ms on
            # average with uvloop): ask for half a tick less so the error centres on zero.
            await stub.sleep(sleep - TIMER_TICK_CORRECTION)
            chunk.ts += sleep  # a later latency toxic counts from here, so two add up
            await stub.send(chunk)
