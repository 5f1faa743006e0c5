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

from netproto.limits._connections import ConnectionLimiter, ConnectionWatch, Watched, peer_key
from netproto.limits._knobs import (
    COUNTERS,
    DEFAULT_LIMITS,
    Counters,
    Limits,
    RefusalSummary,
    periodic,
)
from netproto.limits._sources import SourcePolicy, bad_source

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
