"""
Giving memory back after an attack. The queues of stalled peers are many
16-64 KiB buffers; once the peers are gone, glibc's allocator keeps most of
the freed pages (fragmentation, not a leak: RSS moved between +10 and +24 MiB
over repeated stress cycles and stayed there). :class:`Trimmer` watches a
service's connection count and queued bytes at each sweep and, when an
episode has clearly ended, asks the allocator to return free pages
(``malloc_trim(0)``; a no-op where the C library has none).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

__all__ = ["Trimmer", "malloc_trim"]


def _find_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _find_trim()


def malloc_trim() -> bool:
    """Return the allocator's free pages to the system; False where not possible."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class Trimmer:
    """
    Trim after an episode: when, since the last trim, the connection count
    fell by *connections* or more from its peak, or the queued bytes by
    *queued* or more from theirs. Costs nothing between episodes.
    """

    def __init__(
        self,
        connections: int = 32,
        queued: int = 1 << 20,
        trim: Callable[[], bool] = malloc_trim,
    ) -> None:
        self.connections = connections
        self.queued = queued
        self.trim = trim
        self.trims = 0
        self._peak_connections = 0
        self._peak_queued = 0

    def observe(self, connections: int, queued: int) -> bool:
        """Called at each sweep with the current figures; True if it trimmed."""
        self._peak_connections = max(self._peak_connections, connections)
        self._peak_queued = max(self._peak_queued, queued)
        if (
            self._peak_connections - connections < self.connections
            and self._peak_queued - queued < self.queued
        ):
            return False
        self._peak_connections, self._peak_queued = connections, queued
        self.trims += 1
        self.trim()
        return True
