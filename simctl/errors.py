"""The exceptions simctl raises, each carrying the exit code the CLI turns it into.

    SimctlError (1)                  anything simctl reports as a one-line error
    ├── InvalidInput (2)             bad arguments, files or values from the user
    ├── StackStartError (3)          the stack (or a server) could not start
    ├── ToxiproxyError (4)           a Toxiproxy server answered with an error status
    ├── ToxiproxyUnreachable (5)     no Toxiproxy server answered at the given URL
    └── AddressInUse (6)             a port simctl must bind is already taken

Exit codes 130 and 143 are reserved for SIGINT and SIGTERM.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_STACK = 3
EXIT_API = 4
EXIT_UNREACHABLE = 5
EXIT_ADDRESS_IN_USE = 6
EXIT_MONITOR_UNREACHABLE = 7
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class SimctlError(Exception):
    exit_code = EXIT_FAILED


class InvalidInput(SimctlError):
    exit_code = EXIT_INVALID


class StackStartError(SimctlError):
    exit_code = EXIT_STACK


class ToxiproxyError(SimctlError):
    """The server answered, with an error status and message."""

    exit_code = EXIT_API

    def __init__(self, status: int, message: str, method: str = "", path: str = "") -> None:
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        where = f" ({method} {path})" if method else ""
        super().__init__(f"toxiproxy: {message} [HTTP {status}]{where}")


class ToxiproxyUnreachable(SimctlError):
    exit_code = EXIT_UNREACHABLE


class AddressInUse(SimctlError):
    exit_code = EXIT_ADDRESS_IN_USE


class MonitorUnreachable(SimctlError):
    """No Prometheus API (the stack's monitor, or a Prometheus) answered at the URL."""

    exit_code = EXIT_MONITOR_UNREACHABLE
