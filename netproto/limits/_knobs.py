"""
The knobs, the counters and the refusal summary of the protections (see
:mod:`netproto.limits`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.logger import Logger

from netproto.access import ACCESS_COUNTERS

__all__ = [
    "COUNTERS",
    "DEFAULT_LIMITS",
    "REFUSALS",
    "Counters",
    "Limits",
    "RefusalSummary",
    "periodic",
]


@dataclass(frozen=True)
class Limits:
    """
    Every protection knob of the daytime and echo services. ``0`` (or an
    empty set) means unlimited / disabled for that knob.

    The defaults are chosen so that an honest client never meets them and an
    abusive one is stopped:

    - ``max_connections`` = 4096 TCP connections per service in total, and
      ``max_connections_per_peer`` = 256 from one address (IPv4-mapped
      addresses count as their IPv4 address). Excess connections are closed
      at once, before any byte is read or written.
    - ``idle_timeout`` = 300 s: a connection that neither sends a byte nor
      takes one of ours for five minutes is aborted (clients may be
      slow humans at a terminal).
    - ``write_stall_timeout`` = 60 s: a connection whose output is stuck
      (our send buffer full and not draining) for a minute is aborted, even if
      the peer keeps trickling bytes in.
    - ``udp_rate`` = 20 replies/s per source address with a burst of
      ``udp_burst`` = 40: a client probing by hand or a monitoring script never
      notices; a forged loop between two servers dies after at most
      ``udp_burst`` bounces.
    - ``udp_global_rate`` = 5000 replies/s over all sources with a burst of
      ``udp_global_burst`` = 10000: caps what a spoofing attacker can reflect
      in total, without ever switching the service off.
    - ``udp_allowed_ports``: source ports below 1024 (and 2049, NFS) that are
      admitted anyway; empty by default.
    - ``udp_max_sources`` = 16384 source addresses remembered by the token
      bucket table (about 2.6 MB when full of IPv6 sources, and up to about
      2 MB more for as many addresses as they came, each judged once); beyond
      it, new sources share one overflow bucket until old entries refill.
    - ``summary_interval`` = 60 s between refusal summaries in the log.
    - ``sweep_interval`` = 0 means derived: a tenth of the shortest timeout,
      between 1 and 30 seconds; timeouts fire within one sweep interval late.
    - ``listen_backlog`` = 1024 connections the kernel queues per TCP listener
      (clamped to ``net.core.somaxconn``; 0: that maximum) during a storm.
    - ``write_high_water`` = 16 KiB queued for one echo peer before its reads pause, and
      ``buffer_budget`` = 16 MiB queued per echo service before every read pauses.
    - ``peer_prefix_v4`` = 32, ``peer_prefix_v6`` = 64: the network that is one peer
      for ``max_connections_per_peer`` and the UDP buckets (a host may hold a /64).
    """

    max_connections: int = 4096
    max_connections_per_peer: int = 256
    idle_timeout: float = 300.0
    write_stall_timeout: float = 60.0
    udp_rate: float = 20.0
    udp_burst: int = 40
    udp_global_rate: float = 5000.0
    udp_global_burst: int = 10000
    udp_allowed_ports: frozenset[int] = field(default_factory=frozenset)
    udp_max_sources: int = 16384
    summary_interval: float = 60.0
    sweep_interval: float = 0.0
    listen_backlog: int = 1024
    write_high_water: int = 16384
    buffer_budget: int = 16 << 20
    peer_prefix_v4: int = 32
    peer_prefix_v6: int = 64

    def __post_init__(self) -> None:
        for name in (
            "max_connections",
            "max_connections_per_peer",
            "idle_timeout",
            "write_stall_timeout",
            "udp_rate",
            "udp_burst",
            "udp_global_rate",
            "udp_global_burst",
            "udp_max_sources",
            "summary_interval",
            "sweep_interval",
            "listen_backlog",
            "write_high_water",
            "buffer_budget",
            "peer_prefix_v4",
            "peer_prefix_v6",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a number >= 0 (0: unlimited), not {value!r}")
        for name, bits in (("peer_prefix_v4", 32), ("peer_prefix_v6", 128)):
            if getattr(self, name) > bits or not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} must be a prefix length 0-{bits}")
        for port in self.udp_allowed_ports:
            if not isinstance(port, int) or not 0 <= port <= 65535:
                raise ValueError(f"udp_allowed_ports: {port!r} is not a port number")
        if not isinstance(self.udp_allowed_ports, frozenset):
            object.__setattr__(self, "udp_allowed_ports", frozenset(self.udp_allowed_ports))

    def sweep_period(self) -> float:
        """Seconds between two sweeps for idle and write-stalled connections."""
        if self.sweep_interval:
            return self.sweep_interval
        timeouts = [t for t in (self.idle_timeout, self.write_stall_timeout) if t]
        if not timeouts:
            return 30.0
        return min(30.0, max(1.0, min(timeouts) / 10))


DEFAULT_LIMITS = Limits()
"""The default :class:`Limits`."""

COUNTERS: dict[str, str] = {
    "tcp_connections": "TCP connections accepted",
    "tcp_refused_total": "TCP connections closed at once: max_connections reached",
    "tcp_refused_peer": "TCP connections closed at once: max_connections_per_peer reached",
    "tcp_idle_aborted": "TCP connections aborted after idle_timeout without traffic",
    "tcp_stall_aborted": "TCP connections aborted after write_stall_timeout with output stuck",
    "tcp_accept_errors": "accepts put off: out of file descriptors (EMFILE, ENFILE) or buffers",
    "tcp_bytes_received": "bytes read from TCP peers",
    "tcp_bytes_sent": "bytes handed to TCP transports (echo replies, daytime lines)",
    "udp_datagrams_received": "UDP datagrams received",
    "udp_replies_sent": "UDP replies sent",
    "udp_bytes_received": "bytes in UDP datagrams received",
    "udp_bytes_sent": "bytes in UDP replies sent",
    "udp_refused_port": "datagrams refused: source port 0, below 1024 or 2049",
    "udp_refused_served": "datagrams refused: source port is one this process serves (loop)",
    "udp_refused_source": "datagrams refused: source address multicast, broadcast, 0/8 or 255/8",
    "udp_refused_destination": "datagrams refused: sent to a broadcast or multicast address",
    "udp_rate_limited": "replies dropped: the source's token bucket was empty",
    "udp_global_limited": "replies dropped: the global reply budget was empty",
    "udp_sources_overflow": "datagrams charged to the shared overflow bucket (source table full)",
    "udp_send_errors": "replies lost: the socket refused them (EAGAIN, ENOBUFS, ...)",
    **ACCESS_COUNTERS,
}
"""Every counter name, with what it counts. Counters start at 0 and only grow."""

REFUSALS = tuple(
    name
    for name in COUNTERS
    if "refused" in name or "limited" in name or "aborted" in name or "errors" in name
)
"""The counters that :class:`RefusalSummary` reports."""


class Counters:
    """
    Named integer counters (see :data:`COUNTERS` for the names and meanings).

    :meth:`add` counts any name; :meth:`snapshot` returns a copy with every
    known name present (0 if never counted). The hot path is :attr:`values`
    itself: a per-datagram or per-connection path holds it in a local and
    does ``values["udp_replies_sent"] += 1`` for a name of :data:`COUNTERS`,
    saving a method call.
    """

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        """Every counter by name; every name of :data:`COUNTERS` is present."""

    def add(self, name: str, n: int = 1) -> None:
        """Add *n* to counter *name* (created at 0 if unknown)."""
        values = self.values
        values[name] = values.get(name, 0) + n

    def get(self, name: str) -> int:
        """The current value of counter *name* (0 if never counted)."""
        return self.values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter, by name."""
        return dict(self.values)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.values.items() if v)
        return f"Counters({shown})"


class RefusalSummary:
    """
    One log event per interval with the refusal counters that grew, never one
    per packet or connection. :meth:`tick` is called by the owner's periodic
    timer; it logs only when something was refused since the last tick.
    """

    log = Logger()

    def __init__(self, service: str, counters: Counters) -> None:
        self.service = service
        self.counters = counters
        self._last = dict.fromkeys(REFUSALS, 0)

    def tick(self) -> dict[str, int]:
        """Log (and return) the refusal counters that grew since the last tick."""
        now = self.counters.snapshot()
        grown = {k: now.get(k, 0) - v for k, v in self._last.items() if now.get(k, 0) != v}
        self._last = {k: now.get(k, 0) for k in REFUSALS}
        if grown:
            self.log.info(
                "{service}: refused or dropped since last summary: {summary}",
                service=self.service,
                summary=", ".join(f"{k}={v}" for k, v in sorted(grown.items())),
                refusals=grown,
                totals={k: now.get(k, 0) for k in REFUSALS},
            )
        return grown


def periodic(clock: Any, interval: float, call: Callable[[], object]) -> Any:
    """
    Start a :class:`~twisted.internet.task.LoopingCall` of *call* every
    *interval* seconds on *clock* (not now); return it, or ``None`` if
    *interval* is 0.
    """
    from twisted.internet.task import LoopingCall

    if not interval:
        return None
    loop = LoopingCall(call)
    loop.clock = clock
    loop.start(interval, now=False).addErrback(
        lambda f: RefusalSummary.log.failure("periodic task failed", f)
    )
    return loop
