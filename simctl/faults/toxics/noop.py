from simctl.faults.toxics.base import EOF, Stub, Toxic


class Noop(Toxic):
    type_name = "noop"
    summary = "Passes data through unchanged."

    @staticmethod
    async def pipe(stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is EOF:
                stub.close()
                return
            await stub.send(chunk)
