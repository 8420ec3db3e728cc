"""Memory growth for R14-style drills: hold written (not just reserved) megabytes."""

from __future__ import annotations

import psutil

MB = 1024 * 1024


class MemoryHog:
    """Keeps byte strings alive so the process RSS grows; ``release()`` frees them."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.held = 0  # bytes

    def grow(self, mb: float, cap_mb: float) -> int:
        """Hold ``mb`` more megabytes without exceeding ``cap_mb`` in total; returns bytes added."""
        room = int(cap_mb * MB) - self.held
        size = min(int(mb * MB), room)
        if size <= 0:
            return 0
        # Repeating a non-zero byte writes every page, so the pages count in RSS
        # (a zero-filled bytearray may stay lazily mapped).
        self._chunks.append(b"\xa5" * size)
        self.held += size
        return size

    def release(self) -> None:
        self._chunks.clear()
        self.held = 0


def rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)
