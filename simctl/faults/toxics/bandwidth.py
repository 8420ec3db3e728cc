import time

from simctl.faults.toxics.base import EOF, Attribute, Chunk, Stub, Toxic


class Bandwidth(Toxic):
    type_name = "bandwidth"
    summary = "Limits throughput to rate KB/s (1 KB = 1000 bytes); rate 0 stops data."
    attributes = (Attribute("rate", "KB/s", "bytes per millisecond; 0 holds all data", 0, 10**9),)

    @staticmethod
    async def pipe(stub: Stub) -> None:
        sleep = 0.0
        while True:
            chunk = await stub.recv()
            if chunk is EOF:
                stub.close()
                return
            rate = stub.attrs["rate"]
            if rate <= 0:
                # Toxiproxy sends empty chunks forever here; holding the data is the same
                # to the peer and keeps it for an interrupt to flush.
                await stub.sleep(10**9)
                continue
            sleep += len(chunk.data) / rate / 1000
            piece = rate * 100
            while len(chunk.data) > piece:
                await stub.sleep(0.1)
                head = Chunk(chunk.data[:piece], chunk.ts)
                chunk.data = chunk.data[piece:]
                await stub.output.put(head)
                sleep -= 0.1
            start = time.monotonic()
            await stub.sleep(sleep)
            # Carry the timer error forward, as Toxiproxy does.
            sleep -= time.monotonic() - start
            await stub.send(chunk)
