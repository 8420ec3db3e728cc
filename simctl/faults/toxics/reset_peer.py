from simctl.faults.toxics.base import Attribute, Stub, Toxic


class ResetPeer(Toxic):
    type_name = "reset_peer"
    summary = (
        "On the first data (or end of stream), waits timeout ms and closes with a TCP RST "
        "(RST only on connections accepted while the toxic existed)."
    )
    attributes = (Attribute("timeout", "ms", "time to wait before resetting"),)
    resets_connections = True

    @staticmethod
    async def pipe(stub: Stub) -> None:
        await stub.recv()
        stub.drop()
        await stub.sleep(stub.attrs["timeout"] / 1000)
        stub.close()
