"""host:port strings as Toxiproxy's API carries them, parsed, resolved and formatted."""

from __future__ import annotations

import ipaddress
import socket

DEFAULT_HOST = "127.0.0.1"  # deliberate fix: Toxiproxy's empty listen binds every interface


def split(address: str) -> tuple[str, int]:
    """Split "host:port" / "[v6]:port" / ":port" / "" into (host, port)."""
    if address == "":
        return DEFAULT_HOST, 0
    host, sep, port_text = address.rpartition(":")
    if not sep:
        raise ValueError(f"address {address}: missing port in address")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text) if port_text else 0
    except ValueError:
        raise ValueError(f"lookup port {port_text}: invalid port") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"address {address}: invalid port")
    return host or DEFAULT_HOST, port


def join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve(address: str) -> tuple[str, int]:
    """Resolve the host to an IP (IPv4 preferred), as net.ResolveTCPAddr does."""
    host, port = split(address)
    try:
        ipaddress.ip_address(host)
        return host, port
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0]), port


def same(a: str, b: str) -> bool:
    try:
        return resolve(a) == resolve(b)
    except (OSError, ValueError):
        return a == b
