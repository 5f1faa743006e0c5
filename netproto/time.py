"""
The Time Protocol (RFC 868), over TCP and UDP, server and client.

The answer is four bytes: the seconds since 1900-01-01 00:00 UTC, an unsigned
32-bit big-endian number, taken modulo 2**32. It wraps on 2036-02-07 06:28:16
UTC (era 1 starts at 0 again); :func:`to_rfc868` writes any POSIX time in its
era, and :func:`from_rfc868` reads a value back in the era nearest a
reference time (the client's clock), as ``rdate`` must after 2036.

Over TCP the server writes the four bytes on connection and closes (whatever
the client sends is dropped); over UDP it answers every admitted datagram,
whatever it holds, with one four-byte datagram, under the source rules and
reply budgets of :class:`~netproto.limits.SourcePolicy`. The time comes from
the reactor (any :class:`~twisted.internet.interfaces.IReactorTime`) the
service is given.

The clients, :func:`time_tcp` and :func:`time_udp`, return a
:class:`TimeAnswer`: the server's time in the era nearest the local clock, and
the offset from the local clock.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred

from netproto._service import (
    AnswerFactory,
    PolicedDatagramProtocol,
    ProtocolError,
    RefusedError,
    ServiceError,
    ServiceTimeoutError,
    UnreachableError,
    tcp_exchange,
    udp_exchange,
)
from netproto.util import format_host_port

__all__ = [
    "EPOCH_OFFSET",
    "ProtocolError",
    "RefusedError",
    "ServiceError",
    "ServiceTimeoutError",
    "TimeAnswer",
    "TimeDatagramProtocol",
    "TimeFactory",
    "UnreachableError",
    "from_rfc868",
    "time_tcp",
    "time_udp",
    "to_rfc868",
]

EPOCH_OFFSET = 2208988800
"""Seconds from 1900-01-01 to 1970-01-01 (UTC): RFC 868 time minus POSIX time."""

_ERA = 1 << 32
_PACK = struct.Struct("!I")


def to_rfc868(seconds: float) -> bytes:
    """The RFC 868 answer for the POSIX time *seconds*: 4 bytes, modulo 2**32."""
    return _PACK.pack((int(seconds // 1) + EPOCH_OFFSET) % _ERA)


def from_rfc868(answer: bytes, near: float) -> tuple[int, int]:
    """
    The POSIX time an RFC 868 *answer* (4 bytes) means, in the era nearest the
    POSIX time *near*, and that era (0 until 2036-02-07, then 1, ...). Raises
    :class:`ValueError` unless *answer* is 4 bytes.
    """
    if len(answer) != 4:
        raise ValueError(f"a time answer is 4 bytes, not {len(answer)}")
    (value,) = _PACK.unpack(answer)
    reference = int(near // 1) + EPOCH_OFFSET
    era = (reference - value + _ERA // 2) // _ERA
    return value + era * _ERA - EPOCH_OFFSET, era


class TimeFactory(AnswerFactory):
    """
    The TCP time service: four bytes of RFC 868 time from *reactor* on each
    connection, then close; the protections of *limits* (connection caps).
    """

    service = "time/tcp"

    def answer(self) -> bytes:
        """The RFC 868 time now."""
        return to_rfc868(self.reactor.seconds())


class TimeDatagramProtocol(PolicedDatagramProtocol):
    """
    The UDP time service: every datagram the source policy of *limits* admits
    is answered with four bytes of RFC 868 time. Datagrams from a port in
    *served_ports* are refused (the loop guard).
    """

    service = "time/udp"

    def reply(self, data: bytes) -> bytes:
        """The RFC 868 time now."""
        return to_rfc868(self.reactor.seconds())


@dataclass(frozen=True)
class TimeAnswer:
    """What a time server said, read against the local clock."""

    seconds: int
    """The server's time, POSIX seconds, in the era nearest the local clock."""
    era: int
    """The RFC 868 era the answer was read in (0 until 2036-02-07)."""
    offset: float
    """Server minus local time, in seconds, the local time taken halfway
    through the exchange; RFC 868 has whole seconds, so this is good to about one."""
    round_trip: float
    """Seconds from connecting (or sending) to the answer."""


def _answer(data: bytes, started: float, ended: float, what: str) -> TimeAnswer:
    if len(data) != 4:
        raise ProtocolError(f"{what}: answered {len(data)} bytes, not the 4 of RFC 868")
    middle = (started + ended) / 2
    seconds, era = from_rfc868(data, middle)
    # The server's whole second began at seconds and ends before seconds + 1.
    return TimeAnswer(seconds, era, seconds + 0.5 - middle, ended - started)


def time_tcp(
    reactor: Any, host: str, port: int = 37, *, timeout: float = 10.0
) -> Deferred[TimeAnswer]:
    """
    Ask the time server at (*host*, *port*) over TCP; fire with a
    :class:`TimeAnswer`, the local clock read from *reactor*. Fails with
    :class:`RefusedError`, :class:`UnreachableError`,
    :class:`ServiceTimeoutError` or :class:`ProtocolError` (not 4 bytes).
    """
    what = format_host_port(host, port)

    async def run() -> TimeAnswer:
        started = reactor.seconds()
        data = await tcp_exchange(
            reactor, host, port, None, expect=None, limit=4, timeout=timeout, what=what
        )
        return _answer(data, started, reactor.seconds(), what)

    return Deferred.fromCoroutine(run())


def time_udp(
    reactor: Any, host: str, port: int = 37, *, timeout: float = 5.0
) -> Deferred[TimeAnswer]:
    """
    Ask the time server at (*host*, *port*) with one empty UDP datagram; fire
    with a :class:`TimeAnswer`. Fails like :func:`time_tcp`.
    """
    what = f"{format_host_port(host, port)} (udp)"

    async def run() -> TimeAnswer:
        started = reactor.seconds()
        data = await udp_exchange(reactor, host, port, b"", timeout=timeout, what=what)
        return _answer(data, started, reactor.seconds(), what)

    return Deferred.fromCoroutine(run())
