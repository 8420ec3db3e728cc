"""Timing profiles: every platform timer comes from one of these.

``heroku`` carries the real numbers (docs/platform.md: "Vegur's defaults and
limits", "Routing behaviour", "Drain rules"); ``fast`` divides
every timeout by 10 for CI and quick drills. Sizes (buffers, limits) never change.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Timing:
    name: str = "heroku"
    # router (Vegur defaults and Heroku's routing rules)
    connect_timeout: float = 5.0  # H19
    first_byte_timeout: float = 30.0  # H12
    idle_timeout: float = 55.0  # H15 / H28
    keepalive_timeout: float = 60.0  # idle client keep-alive connection
    quarantine: float = 5.0  # per router, per dyno
    all_quarantined_retry: float = 75.0  # then H99
    boot_wait: float = 75.0  # H20
    boot_timeout: float = 60.0  # R10: a Procfile web process must bind $PORT by then
    crash_cooldown: float = 600.0  # a crashed dyno's second and later restarts wait this
    # logplex drains
    drain_connect_timeout: float = 3.0
    drain_request_timeout: float = 5.0
    drain_reconnect_base: float = 0.010
    drain_shrink_after: float = 300.0
    drain_batch_wait: float = 0.1
    # log-shuttle
    shuttle_wait: float = 0.25
    shuttle_timeout: float = 5.0
    # sync
    sync_reconnect: float = 1.0
    # sizes: unchanged by profiles
    max_retries: int = 10
    dyno_concurrency: int = 50
    backlog_per_dyno: int = 50
    drain_buffer: int = 1024
    drain_degraded_buffer: int = 10
    drain_batch_bytes: int = 100_000
    drain_frame_retries: int = 2
    tail_buffer: int = 1024
    shuttle_batch: int = 500
    shuttle_back_buffer: int = 50
    shuttle_attempts: int = 3
    router_log_buffer: int = 10_000

    def scaled(self, factor: float, name: str) -> Timing:
        changes = {
            f.name: getattr(self, f.name) / factor
            for f in fields(self)
            if f.type in ("float", float)
        }
        return replace(self, name=name, **changes)


HEROKU = Timing()
FAST = HEROKU.scaled(10, "fast")
PROFILES = {"heroku": HEROKU, "fast": FAST}


def boot_timeout(profile_name: str) -> float:
    """Seconds a Procfile web process has to bind $PORT (R10) under a profile."""
    return PROFILES.get(profile_name, HEROKU).boot_timeout


def profile(name: str) -> Timing:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown timing profile {name!r} (choose from heroku, fast)") from None
