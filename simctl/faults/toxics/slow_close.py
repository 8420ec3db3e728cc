from simctl.faults.toxics.base import EOF, Attribute, Stub, Toxic


class SlowClose(Toxic):
    type_name = "slow_close"
    summary = "Delays the close of the stream by delay ms; data passes at once."
    attributes = (Attribute("delay", "ms", "time to wait before closing"),)

    @staticmethod
    async def pipe(stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is EOF:
                await stub.sleep(stub.attrs["delay"] / 1000)
                stub.close()
                return
            await stub.send(chunk)
