"""
What a HEAD request gives: the response of each hop with its timing, and
the errors, one class per kind of failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from netproto.head._parser import HeadFields, HeadParseError, ResponseHead

__all__ = [
    "REDIRECT_STATUSES",
    "HeadCertificateError",
    "HeadConnectError",
    "HeadError",
    "HeadProtocolError",
    "HeadProxyError",
    "HeadResolveError",
    "HeadResponse",
    "HeadTLSError",
    "HeadTimeoutError",
    "RedirectError",
    "Timing",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
"""Status codes whose ``Location`` is a redirect to report (or follow)."""


class HeadError(Exception):
    """The HEAD request failed; the message says why, in one line."""


class HeadTimeoutError(HeadError):
    """The deadline passed before the response head was complete."""


class HeadConnectError(HeadError):
    """No connection: the name did not resolve, or the peer refused."""


class HeadResolveError(HeadConnectError):
    """The host name (with :attr:`proxy`, the proxy's) could not be resolved."""

    def __init__(self, message: str, *, proxy: bool = False) -> None:
        super().__init__(message)
        self.proxy = proxy
        """Whether the name was the proxy's."""


class HeadProxyError(HeadConnectError):
    """The proxy did not open the tunnel (its answer to ``CONNECT`` was not 2xx)."""


class HeadTLSError(HeadError):
    """The TLS handshake failed (certificate not trusted, wrong name, not TLS)."""


class HeadCertificateError(HeadTLSError):
    """The server's certificate could not be verified: not trusted, expired, another name."""


class HeadProtocolError(HeadError):
    """The peer's response is not a valid HTTP/1.x head (or it is too large)."""

    def __init__(
        self, message: str, cause: HeadParseError | None = None, *, empty: bool = False
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.empty = empty
        """Whether the peer closed the connection without sending a byte."""


class RedirectError(HeadError):
    """A redirect could not be followed: loop, too many, or not http(s)."""

    def __init__(self, message: str, response: HeadResponse) -> None:
        super().__init__(message)
        self.response = response
        """The redirect response that could not be followed (its ``history`` holds the rest)."""


@dataclass(frozen=True)
class Timing:
    """
    Seconds since the request started, each point after the one before
    (curl's ``time_namelookup``, ``time_connect``, ``time_appconnect``,
    ``time_starttransfer``, ``time_total``).
    """

    connect: float
    """TCP connection established (to the proxy, when there is one)."""
    tls: float | None
    """TLS handshake complete (None for ``http://``)."""
    first_byte: float
    """First byte of the response."""
    total: float
    """End of the response head."""
    name_lookup: float = 0.0
    """The host name resolved (0 for an IP address or a ``resolve`` entry)."""


@dataclass(frozen=True)
class HeadResponse(HeadFields):
    """The answer to one HEAD request (one hop)."""

    url: str
    """The normalised URL asked."""
    peer: str
    """The address connected to: ``127.0.0.1:8080`` or ``[::1]:8080``."""
    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    """Field lines in order, repeated names kept, values ISO-8859-1 decoded."""
    interim: tuple[ResponseHead, ...]
    """1xx responses received before this one."""
    timing: Timing
    redirect: str | None
    """For 301, 302, 303, 307, 308 with a ``Location``: the absolute URL it points to."""
    history: tuple[HeadResponse, ...] = ()
    """With ``follow=True``: the redirects that led here, first first."""
