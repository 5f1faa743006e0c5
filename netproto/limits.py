"""
Protection for the daytime and echo services: the limits, the counters, and
the policies that apply them.

Nothing here owns a socket or reads the clock by itself: callers pass the
current time (from an injected :class:`~twisted.internet.interfaces.IReactorTime`)
and act on the verdicts. The protocols in :mod:`netproto.daytime` and
:mod:`netproto.echo` are thin adapters over these classes.

- :class:`Limits` holds every knob, with defaults that an honest client never
  notices and that stop abuse; ``0`` means unlimited.
- :class:`Counters` counts what happened (connections, bytes, datagrams,
  refusals, drops) under the names listed in :data:`COUNTERS`.
- :class:`ConnectionLimiter` caps TCP connections in total and per peer.
- :class:`ConnectionWatch` finds idle and write-stalled connections with a
  coarse periodic sweep, so that the data path never touches a timer.
- :class:`SourcePolicy` decides whether a UDP datagram gets an answer: source
  rules against reflection and loops, then a per-source token bucket and a
  global budget, with a bounded source table.
- :class:`RefusalSummary` turns counters into one periodic log event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address
from typing import Any, Protocol

from twisted.logger import Logger

from netproto.access import ACCESS_COUNTERS
from netproto.util import peer_prefix, unmap

__all__ = [
    "COUNTERS",
    "DEFAULT_LIMITS",
    "ConnectionLimiter",
    "ConnectionWatch",
    "Counters",
    "Limits",
    "RefusalSummary",
    "SourcePolicy",
    "Watched",
    "bad_source",
    "peer_key",
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
      bucket table (about 2.6 MB when full of IPv6 sources); beyond it, new
      sources share one overflow bucket until old entries refill.
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


def peer_key(address: object, v4_prefix: int = 32, v6_prefix: int = 128) -> str | None:
    """
    The identity of a TCP peer for per-peer limits: its IP address's network
    of *v4_prefix* / *v6_prefix* bits (:func:`~netproto.util.peer_prefix`;
    by default the address itself), IPv4-mapped addresses unwrapped, or
    ``None`` for peers without an IP address (UNIX sockets), which only the
    total cap applies to.
    """
    host = getattr(address, "host", None)
    if not isinstance(host, str):
        return None
    if ":" not in host and v4_prefix >= 32:
        return host  # dotted quad from the kernel: already canonical
    return peer_prefix(host, v4_prefix, v6_prefix)


class ConnectionLimiter:
    """
    A total and a per-peer cap on concurrent connections.

    :meth:`admit` returns ``None`` and counts the connection in, or the name
    of the refusal counter; :meth:`release` must be called once for every
    admitted connection when it ends.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0
        self.by_peer: dict[str, int] = {}
        self._max_total = limits.max_connections or float("inf")
        self._max_peer = limits.max_connections_per_peer or float("inf")

    def admit(self, peer: str | None) -> str | None:
        """Count a new connection from *peer* in, or say why it is refused."""
        total = self.total
        if total >= self._max_total:
            return "tcp_refused_total"
        if peer is not None:
            by_peer = self.by_peer
            current = by_peer.get(peer, 0)
            if current >= self._max_peer:
                return "tcp_refused_peer"
            by_peer[peer] = current + 1
        self.total = total + 1
        return None

    def release(self, peer: str | None) -> None:
        """Count one connection from *peer* out."""
        self.total -= 1
        if peer is not None:
            left = self.by_peer.get(peer, 0) - 1
            if left > 0:
                self.by_peer[peer] = left
            else:
                self.by_peer.pop(peer, None)


class Watched(Protocol):
    """What :class:`ConnectionWatch` needs from a connection."""

    def activity(self) -> int:
        """A number that changes whenever the peer sent us bytes."""

    def pending(self) -> int | None:
        """Bytes still queued for the peer, or ``None`` if unknown."""

    def write_blocked(self) -> bool:
        """Whether output is backed up (the transport paused us)."""

    def abort(self, reason: str) -> None:
        """Abort the connection at once; *reason* is a counter name."""

    # Optional (see ConnectionWatch): active_at(), blocked_at() -> float | None.


class _Entry:
    __slots__ = ("activity", "last_active", "last_pending", "stalled_since")

    def __init__(self, now: float, activity: int) -> None:
        self.activity = activity
        self.last_active = now
        self.last_pending: int | None = 0
        self.stalled_since: float | None = None


class ConnectionWatch:
    """
    Idle and write-stall deadlines checked by a coarse periodic :meth:`sweep`.

    Nothing happens per read: a connection only exposes a number that changes
    when bytes arrive (a byte count it keeps anyway) and its output state; a
    sweep every :meth:`Limits.sweep_period` compares them with the previous
    sweep. The clocks start when the connection itself saw the event (its
    optional ``active_at()`` and ``blocked_at()``), not when a sweep noticed
    it, so a deadline fires at the first sweep after it: within one sweep
    period late, never early. A connection is aborted with reason

    - ``tcp_stall_aborted`` when its output has been blocked (the transport
      paused reading because its buffer is full) with no drain progress for
      ``write_stall_timeout`` seconds, whatever the peer keeps sending;
    - ``tcp_idle_aborted`` when, with no output blocked, it has received
      nothing and drained nothing for ``idle_timeout`` seconds.
    """

    def __init__(self, limits: Limits, counters: Counters) -> None:
        self.limits = limits
        self.counters = counters
        self._entries: dict[Watched, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, conn: Watched, now: float) -> None:
        """Start watching *conn*."""
        self._entries[conn] = _Entry(now, conn.activity())

    def discard(self, conn: Watched) -> None:
        """Stop watching *conn* (it ended)."""
        self._entries.pop(conn, None)

    def connections(self) -> Iterable[Watched]:
        """The connections being watched."""
        return list(self._entries)

    def sweep(self, now: float) -> list[tuple[Watched, str]]:
        """Abort every connection past a deadline; return them with their reasons."""
        idle = self.limits.idle_timeout
        stall = self.limits.write_stall_timeout
        doomed: list[tuple[Watched, str]] = []
        for conn, entry in self._entries.items():
            activity = conn.activity()
            if activity != entry.activity:
                entry.activity = activity
                entry.last_active = _seen(conn, "active_at", now)
            pending = conn.pending()
            blocked = conn.write_blocked() or bool(pending)
            if blocked:
                progress = (
                    pending is not None
                    and entry.last_pending is not None
                    and pending < entry.last_pending
                )
                entry.last_pending = pending
                if entry.stalled_since is None:
                    entry.stalled_since = _seen(conn, "blocked_at", now)
                elif progress:
                    entry.stalled_since = entry.last_active = now
                if stall and now - entry.stalled_since >= stall:
                    doomed.append((conn, "tcp_stall_aborted"))
                    continue
            else:
                if entry.stalled_since is not None:
                    # The output drained since the last sweep: that is activity.
                    entry.last_active = _seen(conn, "active_at", now)
                entry.stalled_since = None
                entry.last_pending = 0
            if idle and now - entry.last_active >= idle and not blocked:
                doomed.append((conn, "tcp_idle_aborted"))
        for conn, reason in doomed:
            self._entries.pop(conn, None)
            self.counters.add(reason)
            conn.abort(reason)
        return doomed


def _seen(conn: Watched, what: str, now: float) -> float:
    """When *conn* saw event *what* itself (never later than *now*), else *now*."""
    when = getattr(conn, what, lambda: None)()
    return when if isinstance(when, (int, float)) and when <= now else now


_BAD_V4 = (
    IPv4Network("0.0.0.0/8"),
    IPv4Network("255.0.0.0/8"),  # includes 255.255.255.255
    IPv4Network("224.0.0.0/4"),
)


def bad_source(host: str) -> bool:
    """
    Whether a datagram from *host* must never be answered: a multicast,
    broadcast (255.255.255.255), ``0.0.0.0/8`` or ``255.0.0.0/8`` source,
    an IPv6 multicast or unspecified source, or text that is no address at
    all. IPv4-mapped IPv6 addresses are judged as their IPv4 address.
    """
    try:
        address = unmap(ip_address(host.partition("%")[0]))
    except ValueError:
        return True
    if isinstance(address, IPv4Address):
        return any(address in net for net in _BAD_V4)
    assert isinstance(address, IPv6Address)
    return address.is_multicast or address.is_unspecified


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class SourcePolicy:
    """
    Whether a UDP datagram from a given source gets a reply.

    :meth:`check` returns ``None`` (answer it) or the name of the counter to
    add (drop it silently). The rules, in order:

    1. source port 0, below 1024, or 2049 (NFS), unless in
       ``limits.udp_allowed_ports`` -> ``udp_refused_port``;
    2. a source port in *served_ports* (a live set of every UDP port this
       process serves, filled by the caller) -> ``udp_refused_served``;
    3. a bad source address (see :func:`bad_source`) -> ``udp_refused_source``;
    4. the source address's token bucket (``udp_rate`` per second, at most
       ``udp_burst``) is empty -> ``udp_rate_limited``;
    5. the global bucket (``udp_global_rate``, ``udp_global_burst``) is empty
       -> ``udp_global_limited``.

    Buckets are per source *network* (``peer_prefix_v4`` / ``peer_prefix_v6``
    bits: an IPv4 address, an IPv6 /64 by default; IPv4-mapped unwrapped),
    whatever the source port, so changing ports or addresses inside one's
    own /64 buys nothing. The table of buckets holds at
    most ``udp_max_sources`` addresses: entries that have refilled carry no
    information and are pruned; if the table is still full, new sources share
    one overflow bucket (counted as ``udp_sources_overflow``), so spoofing
    many sources costs memory nowhere and buys no extra replies.
    """

    def __init__(
        self,
        limits: Limits,
        counters: Counters,
        served_ports: Set[int] | None = None,
    ) -> None:
        self.limits = limits
        self.counters = counters
        self.served_ports: Set[int] = served_ports if served_ports is not None else frozenset()
        self._buckets: dict[str, _Bucket] = {}
        self._global = _Bucket(float(limits.udp_global_burst), 0.0)
        self._global_started = False
        self._overflow = _Bucket(float(limits.udp_burst), 0.0)
        self._next_prune = 0.0
        # A datagram that has answered once needs no address check again: the
        # bucket table doubles as the cache of sources already judged good.
        self._rate = float(limits.udp_rate)
        self._burst = float(limits.udp_burst)
        self._grate = float(limits.udp_global_rate)
        self._gburst = float(limits.udp_global_burst)
        self._v4, self._v6 = limits.peer_prefix_v4, limits.peer_prefix_v6
        self._prefixed = self._v4 < 32 or self._v6 < 128

    def __len__(self) -> int:
        """How many source addresses the table holds."""
        return len(self._buckets)

    def check(self, host: str, port: int, now: float) -> str | None:
        """The refusal counter for a datagram from (*host*, *port*), or ``None``."""
        if port < 1024 or port == 2049:
            if port not in self.limits.udp_allowed_ports:
                return "udp_refused_port"
        if port in self.served_ports:
            return "udp_refused_served"
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]  # a dual-stack socket's IPv4 peer: one bucket per address
        key = host
        if self._prefixed and (":" in host or self._v4 < 32):
            key = peer_prefix(host, self._v4, self._v6)  # cached
        bucket = self._buckets.get(key)
        if bucket is None:
            if bad_source(host):
                return "udp_refused_source"
            bucket = self._new_bucket(key, now)
        rate = self._rate
        if rate:
            tokens = bucket.tokens + (now - bucket.stamp) * rate
            if tokens > self._burst:
                tokens = self._burst
            bucket.stamp = now
            if tokens < 1.0:
                bucket.tokens = tokens
                return "udp_rate_limited"
            bucket.tokens = tokens - 1.0
        grate = self._grate
        if grate:
            glob = self._global
            if not self._global_started:
                glob.stamp = now
                self._global_started = True
            tokens = glob.tokens + (now - glob.stamp) * grate
            if tokens > self._gburst:
                tokens = self._gburst
            glob.stamp = now
            if tokens < 1.0:
                glob.tokens = tokens
                return "udp_global_limited"
            glob.tokens = tokens - 1.0
        return None

    def _new_bucket(self, host: str, now: float) -> _Bucket:
        maximum = self.limits.udp_max_sources
        if maximum and len(self._buckets) >= maximum:
            if now >= self._next_prune:
                self.prune(now)
            if len(self._buckets) >= maximum:
                self.counters.add("udp_sources_overflow")
                return self._overflow
        bucket = _Bucket(self._burst, now)
        self._buckets[host] = bucket
        return bucket

    def prune(self, now: float) -> int:
        """
        Forget every source whose bucket has refilled (it holds no state a
        fresh bucket would not); return how many were forgotten. Called when
        the table is full, at most once per refill time, and by the owner's
        periodic tick.
        """
        rate, burst = self._rate, self._burst
        refill = burst / rate if rate else 0.0
        self._next_prune = now + max(refill, 1.0)
        stale = [h for h, b in self._buckets.items() if not rate or now - b.stamp >= refill]
        for host in stale:
            del self._buckets[host]
        return len(stale)


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
