import asyncio

from simctl.faults.toxics.base import EOF, Attribute, Stub, Toxic


class Timeout(Toxic):
    type_name = "timeout"
    summary = (
        "Drops all data; closes the stream after timeout ms without data (0: never). "
        "Removing it closes the connection."
    )
    attributes = (Attribute("timeout", "ms", "idle time before closing; 0 keeps it open"),)
    closes_on_removal = True

    @staticmethod
    async def pipe(stub: Stub) -> None:
        timeout = stub.attrs["timeout"] / 1000
        while True:
            try:
                # The timer restarts with every chunk, as in Toxiproxy.
                chunk = (
                    await asyncio.wait_for(stub.recv(), timeout) if timeout else (await stub.recv())
                )
            except TimeoutError:
                stub.close()
                return
            if chunk is EOF:
                stub.close()
                return
            stub.drop()
