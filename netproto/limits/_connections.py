"""
TCP connection caps and deadlines (see :mod:`netproto.limits`): who a peer
is, how many connections it holds, and the periodic sweep for idle and
write-stalled connections.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from netproto.limits._knobs import Counters, Limits
from netproto.util import peer_prefix

__all__ = ["ConnectionLimiter", "ConnectionWatch", "Watched", "peer_key"]


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
    if v4_prefix >= 32:
        if ":" not in host:
            return host  # dotted quad from the kernel: already canonical
        if host.startswith("::ffff:") and "." in host and ":" not in host[7:]:
            # A dual-stack listener's IPv4 peer, as the kernel writes it: its
            # dotted quad, with no parsing (per connection, from any number of
            # addresses: more than peer_prefix's cache holds).
            return host[7:]
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
