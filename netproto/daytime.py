"""
The Daytime Protocol (RFC 867), over TCP and UDP, server and client.

The server answers with one line of ASCII text ending in CRLF: over TCP it
writes the line on connection and closes (whatever the client sends is
discarded, never buffered); over UDP it answers every admitted datagram with
one datagram holding the line. The line's format is chosen from
:data:`FORMATS` (see :func:`format_daytime`), in local time or UTC, and the
time comes from the reactor (or any :class:`~twisted.internet.interfaces.IReactorTime`)
the factory is given.

Both servers apply a :class:`~netproto.limits.Limits` (connection caps and
deadlines for TCP, source rules and reply budgets for UDP) and count what they
do in ``.counters`` (:class:`~netproto.limits.Counters`).

The clients, :func:`daytime_tcp` and :func:`daytime_udp`, return the line the
server sent and raise a :class:`ServiceError` subclass on
refusal, timeout or a malformed answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Set
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Any

from twisted.internet.defer import Deferred

from netproto._service import (
    AnswerFactory,
    AnswerProtocol,
    Datagram,
    PolicedDatagramProtocol,
    ProtocolError,
    RefusedError,
    ServiceError,
    ServiceTimeoutError,
    UnreachableError,
    tcp_exchange,
    udp_exchange,
)
from netproto.limits import DEFAULT_LIMITS, Limits
from netproto.util import format_host_port

__all__ = [
    "FORMATS",
    "MAX_LINE",
    "DaytimeDatagramProtocol",
    "DaytimeFactory",
    "DaytimeProtocol",
    "ProtocolError",
    "RefusedError",
    "ServiceError",
    "ServiceTimeoutError",
    "UnreachableError",
    "daytime_tcp",
    "daytime_udp",
    "format_daytime",
]

MAX_LINE = 1024
"""The longest daytime answer the clients accept, in bytes."""


def _ctime(seconds: float, utc: bool) -> str:
    # time.asctime is locale-independent: "Thu Nov 26 23:48:51 2026", day padded with a space.
    return time.asctime(time.gmtime(seconds) if utc else time.localtime(seconds))


def _iso(seconds: float, utc: bool) -> str:
    moment = datetime.fromtimestamp(int(seconds), timezone.utc)
    if utc:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.astimezone().isoformat()


def _rfc2822(seconds: float, utc: bool) -> str:
    return formatdate(int(seconds), localtime=not utc, usegmt=utc)


_FORMATTERS: dict[str, Callable[[float, bool], str]] = {
    "ctime": _ctime,
    "iso": _iso,
    "rfc2822": _rfc2822,
}

FORMATS: tuple[str, ...] = tuple(_FORMATTERS)
"""
The names of the line formats, the first being the default:

- ``ctime``: like inetd's built-in daytime, ``Thu Nov 26 23:48:51 2026``;
- ``iso``: ISO 8601 to the second, ``2026-11-26T23:48:51Z`` in UTC,
  ``2026-11-27T00:48:51+01:00`` in local time;
- ``rfc2822``: the e-mail date, ``Thu, 26 Nov 2026 23:48:51 GMT`` in UTC,
  ``Fri, 27 Nov 2026 00:48:51 +0100`` in local time.
"""


def format_daytime(seconds: float, fmt: str = "ctime", utc: bool = False) -> bytes:
    """
    The daytime line for the POSIX time *seconds* in format *fmt* (one of
    :data:`FORMATS`), in UTC or local time: ASCII, ending in CRLF.
    Raises :class:`ValueError` for an unknown format.
    """
    try:
        formatter = _FORMATTERS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown daytime format {fmt!r} (choose from {', '.join(FORMATS)})"
        ) from None
    return formatter(seconds, utc).encode("ascii") + b"\r\n"


def _formatter(fmt: str, utc: bool) -> Callable[[float], bytes]:
    format_daytime(0, fmt, utc)  # validate now, not on the first connection
    last: list[Any] = [None, b""]

    def line(seconds: float) -> bytes:
        # One line per second at most: cache it, daytime servers get bursts.
        whole = int(seconds)
        if last[0] != whole:
            last[0] = whole
            last[1] = format_daytime(whole, fmt, utc)
        result: bytes = last[1]
        return result

    return line


class DaytimeProtocol(AnswerProtocol):
    """
    One TCP daytime connection: write the line, close, read nothing.

    It is counted against the connection caps but not watched for idle or
    stalled output: the line always fits in a fresh socket's send buffer, so
    the connection closes at once whatever the peer does.
    """

    factory: DaytimeFactory


class DaytimeFactory(AnswerFactory):
    """
    The TCP daytime service: a factory for :class:`DaytimeProtocol` with the
    protections of *limits*, the line in format *fmt* (one of
    :data:`FORMATS`) in local time or UTC, the time from *reactor*.
    """

    protocol_class = DaytimeProtocol
    service = "daytime/tcp"

    def __init__(
        self,
        reactor: Any,
        limits: Limits = DEFAULT_LIMITS,
        *,
        fmt: str = "ctime",
        utc: bool = False,
    ) -> None:
        super().__init__(reactor, limits)
        self.fmt = fmt
        self.utc = utc
        self.line = _formatter(fmt, utc)

    def answer(self) -> bytes:
        """The daytime line of this second."""
        return self.line(self.reactor.seconds())


class DaytimeDatagramProtocol(PolicedDatagramProtocol):
    """
    The UDP daytime service: every datagram the source policy of *limits*
    admits is answered with one daytime line, whatever it holds. Datagrams
    from a port in *served_ports* (a live set the caller keeps filled with the
    UDP ports this process serves) are refused, so two of our services never
    answer each other.
    """

    service = "daytime/udp"

    def __init__(
        self,
        reactor: Any,
        limits: Limits = DEFAULT_LIMITS,
        *,
        fmt: str = "ctime",
        utc: bool = False,
        served_ports: Set[int] | None = None,
    ) -> None:
        super().__init__(reactor, limits, served_ports=served_ports)
        self.fmt = fmt
        self.utc = utc
        self.line = _formatter(fmt, utc)

    def reply(self, data: bytes) -> bytes:
        """The daytime line for now."""
        return self.line(self.reactor.seconds())

    def replies(self, admitted: list[Datagram]) -> list[Datagram]:
        """The daytime line for now, to each admitted datagram's source."""
        if type(self).reply is not DaytimeDatagramProtocol.reply:
            return super().replies(admitted)
        line = self.line(self.reactor.seconds())
        return [(line, addr, key) for _, addr, key in admitted]


def _check_line(line: bytes, what: str) -> bytes:
    if not line:
        raise ProtocolError(f"{what}: empty answer")
    return line


def daytime_tcp(
    reactor: Any, host: str, port: int = 13, *, timeout: float = 10.0
) -> Deferred[bytes]:
    """
    Ask the daytime server at (*host*, *port*) over TCP; fire with the line it
    sent (bytes, line ending included). Fails with :class:`RefusedError`,
    :class:`UnreachableError`, :class:`ServiceTimeoutError` (nothing complete
    within *timeout* seconds, 0 for none) or :class:`ProtocolError` (empty, or
    longer than :data:`MAX_LINE`).
    """
    what = format_host_port(host, port)

    async def run() -> bytes:
        line = await tcp_exchange(
            reactor, host, port, None, expect=None, limit=MAX_LINE, timeout=timeout, what=what
        )
        return _check_line(line, what)

    return Deferred.fromCoroutine(run())


def daytime_udp(
    reactor: Any, host: str, port: int = 13, *, timeout: float = 5.0
) -> Deferred[bytes]:
    """
    Ask the daytime server at (*host*, *port*) with one empty UDP datagram;
    fire with the datagram it answers. Fails like :func:`daytime_tcp`
    (:class:`RefusedError` when an ICMP port unreachable comes back).
    """
    what = f"{format_host_port(host, port)} (udp)"

    async def run() -> bytes:
        line = await udp_exchange(reactor, host, port, b"", timeout=timeout, what=what)
        if len(line) > MAX_LINE:
            raise ProtocolError(f"{what}: answer longer than {MAX_LINE} bytes")
        return _check_line(line, what)

    return Deferred.fromCoroutine(run())
