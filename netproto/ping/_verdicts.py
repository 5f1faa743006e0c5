"""
What a sweep reports: a :class:`HostResult` per target as it is decided,
a :class:`SweepSummary` at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["HostResult", "SweepSummary"]


class HostResult(NamedTuple):
    """The verdict on one target of a sweep."""

    host: str
    alive: bool
    """True if at least one probe was answered."""
    transmitted: int
    received: int
    duplicates: int
    errors: int
    rtts: tuple[float, ...]
    """Round-trip times of the replies, in seconds."""
    error: str | None
    """The last ICMP error (or send error) about this target, if any."""

    @property
    def rtt(self) -> float | None:
        """The mean round-trip time in seconds, None when no reply came."""
        return sum(self.rtts) / len(self.rtts) if self.rtts else None


@dataclass(frozen=True)
class SweepSummary:
    """The totals of a sweep."""

    targets: int
    """
    Targets covered (this shard's, from the resume point on); for a sweep
    stopped early, the number it would have covered (estimated for a shard
    or a resumed sweep: exact only once the walk is done).
    """
    alive: int
    unreachable: int
    transmitted: int
    received: int
    duplicates: int
    damaged: int
    errors: int
    late: int
    elapsed: float
    """Seconds from the first probe to the last verdict."""
    complete: bool
    """False when the sweep was stopped before every target had its verdict."""
    resume: int = 0
    """The walk position to resume from (see :attr:`Sweep.resume_step`)."""
    rtt_min: float = 0.0
    """The shortest round trip of a credited reply, in seconds (0 when none came)."""
    rtt_max: float = 0.0
    """The longest round trip of a credited reply, in seconds."""
    rtt_total: float = 0.0
    """The sum of the credited replies' round trips (their mean: divided by :attr:`received`)."""
