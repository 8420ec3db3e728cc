"""The registry of toxic types, keyed by the name the Toxiproxy API uses."""

from simctl.faults.toxics.bandwidth import Bandwidth
from simctl.faults.toxics.base import EOF, Attribute, Chunk, Stub, Toxic
from simctl.faults.toxics.latency import Latency
from simctl.faults.toxics.limit_data import LimitData
from simctl.faults.toxics.noop import Noop
from simctl.faults.toxics.reset_peer import ResetPeer
from simctl.faults.toxics.slicer import Slicer
from simctl.faults.toxics.slow_close import SlowClose
from simctl.faults.toxics.timeout import Timeout

REGISTRY: dict[str, type[Toxic]] = {
    cls.type_name: cls
    for cls in (Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData, Noop)
}

__all__ = ["EOF", "REGISTRY", "Attribute", "Chunk", "Stub", "Toxic"]
