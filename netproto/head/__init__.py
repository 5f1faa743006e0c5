"""
An HTTP HEAD client that cannot hang.

:func:`head` sends ``HEAD <path> HTTP/1.1`` with exactly one ``Host``
(IPv6 literals bracketed, default ports omitted), ``User-Agent:
netproto/<version>`` and ``Connection: close``; it parses the response head
as it arrives (:class:`HeadParser`), completes at the empty line that
ends it, whatever ``Content-Length`` says, and closes the connection. One
deadline covers name resolution, connect, TLS and the whole response (and,
with ``follow=True``, every hop), so a peer that drips one byte every 250 ms
cannot keep it waiting. Caps bound the head (:class:`HeadLimits`). Peers that do
not speak HTTP fail at their first byte.

Targets are ``http://`` and ``https://`` URLs (TLS with certificate
verification through :func:`twisted.internet.ssl.optionsForClientTLS`) or
the ``host:port`` form (``[::1]:8080``). Host names are resolved through
:mod:`netproto.lookup` (by default the system's resolver, in a thread), never
blocking the reactor.

.. code-block:: python

    from twisted.internet import task
    from twisted.internet.defer import Deferred
    from netproto.head import head

    async def main(reactor):
        response = await head(reactor, "http://127.0.0.1:8080/", timeout=5)
        print(response.status_line, response.get("Server"))

    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor)))

curl's options have their keyword arguments (``headers``, ``resolve``,
``family``, ``proxy``, ``proxy_env``), and each response its
:class:`Timing` (name lookup, connect, TLS, first byte, total).

The parsing rules (RFC 9112 choices) are listed in the guide, *HTTP HEAD*.
"""

from netproto.head._client import CLOSE_GRACE, HeadClientProtocol, head
from netproto.head._parser import (
    HeadFields,
    HeadLimits,
    HeadParseError,
    HeadParser,
    HeadTooLargeError,
    NotHTTPError,
    ResponseHead,
)
from netproto.head._proxy import parse_proxy, proxy_for
from netproto.head._response import (
    REDIRECT_STATUSES,
    HeadCertificateError,
    HeadConnectError,
    HeadError,
    HeadProtocolError,
    HeadProxyError,
    HeadResolveError,
    HeadResponse,
    HeadTimeoutError,
    HeadTLSError,
    RedirectError,
    Timing,
)
from netproto.head._target import Target, TargetError, build_request, parse_header, parse_target

__all__ = [
    "CLOSE_GRACE",
    "REDIRECT_STATUSES",
    "HeadCertificateError",
    "HeadClientProtocol",
    "HeadConnectError",
    "HeadError",
    "HeadFields",
    "HeadLimits",
    "HeadParseError",
    "HeadParser",
    "HeadProtocolError",
    "HeadProxyError",
    "HeadResolveError",
    "HeadResponse",
    "HeadTLSError",
    "HeadTimeoutError",
    "HeadTooLargeError",
    "NotHTTPError",
    "RedirectError",
    "ResponseHead",
    "Target",
    "TargetError",
    "Timing",
    "build_request",
    "head",
    "parse_header",
    "parse_proxy",
    "parse_target",
    "proxy_for",
]
