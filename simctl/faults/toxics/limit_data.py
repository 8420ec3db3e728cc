from simctl.faults.toxics.base import EOF, Attribute, Stub, Toxic


class LimitData(Toxic):
    type_name = "limit_data"
    summary = "Closes the stream once bytes have passed (the last chunk is truncated)."
    attributes = (Attribute("bytes", "bytes", "bytes to let through before closing", 0, 2**62),)

    @staticmethod
    async def pipe(stub: Stub) -> None:
        # The count lives in the stub's state so it survives toxic updates.
        sent = stub.state.setdefault("bytes_transmitted", 0)
        remaining = max(stub.attrs["bytes"] - sent, 0)
        while True:
            chunk = await stub.recv()
            if chunk is EOF:
                stub.close()
                return
            if remaining < len(chunk.data):
                chunk.data = chunk.data[:remaining]
            if chunk.data:
                n = len(chunk.data)
                await stub.send(chunk)
                stub.state["bytes_transmitted"] += n
                remaining -= n
            else:
                stub.drop()
            if remaining <= 0:
                stub.close()
                return
