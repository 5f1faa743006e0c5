"""
The Quote of the Day Protocol (RFC 865), over TCP and UDP, server and client.

Each TCP connection and each admitted UDP datagram gets one quotation, the
next in turn (the quotes rotate). RFC 865 asks for printable ASCII, spaces,
CR and LF, under 512 characters: :func:`parse_quotes` checks every quote when
the file is read, so a bad file is refused at start-up, never served.

A quotes file (``--qotd-file``) is in the format of ``fortune``: quotes
separated by lines holding only ``%``; a file without such lines holds one
quote per paragraph (separated by blank lines). Lines are sent ending in
CRLF.

Over TCP the server writes the quote and closes, reading nothing; over UDP it
answers under the source rules and reply budgets of
:class:`~netproto.limits.SourcePolicy`, as for echo.

The clients, :func:`qotd_tcp` and :func:`qotd_udp`, return the quote sent.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
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
from netproto.limits import DEFAULT_LIMITS, Limits
from netproto.util import format_host_port

__all__ = [
    "DEFAULT_QUOTES",
    "MAX_CLIENT_QUOTE",
    "MAX_QUOTE",
    "ProtocolError",
    "QotdDatagramProtocol",
    "QotdFactory",
    "Quotes",
    "RefusedError",
    "ServiceError",
    "ServiceTimeoutError",
    "UnreachableError",
    "load_quotes",
    "parse_quotes",
    "qotd_tcp",
    "qotd_udp",
]

MAX_QUOTE = 511
"""The longest quote served, in bytes with its CRLFs: RFC 865 says under 512."""

MAX_CLIENT_QUOTE = 4096
"""The longest answer the clients accept (other servers may send more than the RFC says)."""

DEFAULT_QUOTES: tuple[bytes, ...] = (
    b"Be liberal in what you accept, and conservative in what you send.\r\n",
    b"The network is reliable, until it is not.\r\n",
    b"A server that answers everyone answers attackers too.\r\n",
)
"""What is served without ``--qotd-file``."""

_ALLOWED = frozenset(range(32, 127)) | {9}


def parse_quotes(text: str, source: str = "quotes") -> tuple[bytes, ...]:
    """
    The quotes in *text* (``fortune`` format, or paragraphs), each as bytes
    with CRLF line endings. Raises :class:`ValueError`, naming *source* and
    the line where the quote begins, for a quote with anything but printable
    ASCII, tabs and line breaks, for one of 512 bytes or more, or for no quote
    at all.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fortune = any(line.strip() == "%" for line in lines)
    quotes: list[bytes] = []
    current: list[str] = []
    start = 1

    def close(number: int) -> None:
        while current and not current[-1].strip():
            current.pop()
        while current and not current[0].strip():
            current.pop(0)
        if not current:
            return
        for line in current:
            bad = next((c for c in line if ord(c) not in _ALLOWED), None)
            if bad is not None:
                raise ValueError(
                    f"{source}, quote at line {number}: {bad!r} is not printable ASCII "
                    "(RFC 865 quotes are ASCII)"
                )
        quote = "".join(line + "\r\n" for line in current).encode("ascii")
        if len(quote) > MAX_QUOTE:
            raise ValueError(
                f"{source}, quote at line {number}: {len(quote)} bytes "
                f"(RFC 865: under 512, CRLFs included)"
            )
        quotes.append(quote)
        current.clear()

    for number, line in enumerate(lines, 1):
        separator = line.strip() == "%" if fortune else not line.strip()
        if separator:
            close(start)
            start = number + 1
        else:
            if not current:
                start = number
            current.append(line.rstrip())
    close(start)
    if not quotes:
        raise ValueError(f"{source}: no quote in it")
    return tuple(quotes)


def load_quotes(path: str) -> tuple[bytes, ...]:
    """The quotes of the file at *path* (see :func:`parse_quotes`); :class:`ValueError` if bad."""
    try:
        with open(path, "rb") as f:
            raw = f.read(1 << 24)
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or e}") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not ASCII (RFC 865 quotes are ASCII)") from None
    return parse_quotes(text, path)


class Quotes:
    """The quotes in turn: :meth:`next` gives one, then the one after, round and round."""

    def __init__(self, quotes: Sequence[bytes] = DEFAULT_QUOTES) -> None:
        if not quotes:
            raise ValueError("no quotes")
        self.quotes = tuple(quotes)
        self._next = 0

    def next(self) -> bytes:
        """The next quote."""
        i = self._next
        self._next = (i + 1) % len(self.quotes)
        return self.quotes[i]


class QotdFactory(AnswerFactory):
    """
    The TCP qotd service: each connection gets the next of *quotes* (a
    :class:`Quotes` or a sequence of them), then is closed; the protections of
    *limits* (connection caps).
    """

    service = "qotd/tcp"

    def __init__(
        self,
        reactor: Any,
        limits: Limits = DEFAULT_LIMITS,
        *,
        quotes: Quotes | Sequence[bytes] = DEFAULT_QUOTES,
    ) -> None:
        super().__init__(reactor, limits)
        self.quotes = quotes if isinstance(quotes, Quotes) else Quotes(quotes)

    def answer(self) -> bytes:
        """The next quote."""
        return self.quotes.next()


class QotdDatagramProtocol(PolicedDatagramProtocol):
    """
    The UDP qotd service: every admitted datagram gets the next of *quotes*.
    Datagrams from a port in *served_ports* are refused (the loop guard).
    """

    service = "qotd/udp"

    def __init__(
        self,
        reactor: Any,
        limits: Limits = DEFAULT_LIMITS,
        *,
        quotes: Quotes | Sequence[bytes] = DEFAULT_QUOTES,
        served_ports: Set[int] | None = None,
    ) -> None:
        super().__init__(reactor, limits, served_ports=served_ports)
        self.quotes = quotes if isinstance(quotes, Quotes) else Quotes(quotes)

    def reply(self, data: bytes) -> bytes:
        """The next quote."""
        return self.quotes.next()


def _check(quote: bytes, what: str) -> bytes:
    if not quote:
        raise ProtocolError(f"{what}: empty answer")
    return quote


def qotd_tcp(reactor: Any, host: str, port: int = 17, *, timeout: float = 10.0) -> Deferred[bytes]:
    """
    Ask the qotd server at (*host*, *port*) over TCP; fire with the quote
    (bytes, as sent). Fails with :class:`RefusedError`,
    :class:`UnreachableError`, :class:`ServiceTimeoutError` or
    :class:`ProtocolError` (empty, or over :data:`MAX_CLIENT_QUOTE` bytes).
    """
    what = format_host_port(host, port)

    async def run() -> bytes:
        got = await tcp_exchange(
            reactor,
            host,
            port,
            None,
            expect=None,
            limit=MAX_CLIENT_QUOTE,
            timeout=timeout,
            what=what,
        )
        return _check(got, what)

    return Deferred.fromCoroutine(run())


def qotd_udp(reactor: Any, host: str, port: int = 17, *, timeout: float = 5.0) -> Deferred[bytes]:
    """Ask the qotd server at (*host*, *port*) with one empty datagram; fire with the quote."""
    what = f"{format_host_port(host, port)} (udp)"

    async def run() -> bytes:
        got = await udp_exchange(reactor, host, port, b"", timeout=timeout, what=what)
        if len(got) > MAX_CLIENT_QUOTE:
            raise ProtocolError(f"{what}: answer longer than {MAX_CLIENT_QUOTE} bytes")
        return _check(got, what)

    return Deferred.fromCoroutine(run())
