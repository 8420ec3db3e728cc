from simctl.faults.toxics.base import EOF, Attribute, Stub, Toxic


class Latency(Toxic):
    type_name = "latency"
    summary = "Delays every chunk by latency +/- jitter, counted from when it arrived."
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
            # Deadline-based, so chunks that queued up are not delayed twice (pipelined),
            # on the precise timer (simctl.faults.timer), not the loop's millisecond ticks.
            await stub.send_at(chunk.ts + delay / 1000, chunk)
