"""
How a HEAD request connects: the endpoint for one address of a target (names
are resolved before, through :mod:`netproto.lookup`) and its TLS wrapping,
verified or not.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IStreamClientEndpoint
from twisted.internet.ssl import optionsForClientTLS
from zope.interface import implementer

from netproto.head._target import Target
from netproto.util import format_host_port

__all__ = ["endpoint_for", "host_port"]


@implementer(IOpenSSLClientConnectionCreator)
class _InsecureTLS:
    """TLS with server name indication but no certificate verification (``insecure=True``)."""

    def __init__(self, host: str, is_ip: bool) -> None:
        self._name = None if is_ip else host.encode("ascii")
        self._context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        self._context.set_verify(SSL.VERIFY_NONE)
        self._context.set_alpn_protos([b"http/1.1"])

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        if self._name:
            connection.set_tlsext_host_name(self._name)
        connection.set_connect_state()
        return connection


def endpoint_for(
    reactor: Any, target: Target, address: str, timeout: float, insecure: bool, trust_root: Any
) -> IStreamClientEndpoint:
    """
    The endpoint that connects to *target* at *address* (one of its
    addresses, as text), TLS-wrapped for ``https``: verified against
    *trust_root* (what :func:`twisted.internet.ssl.trustRootFromCertificates`
    returns; ``None``: the platform's) unless *insecure*.
    """
    endpoint: IStreamClientEndpoint
    seconds = max(timeout, 0.001)
    if ":" in address:
        endpoint = TCP6ClientEndpoint(reactor, address, target.port, timeout=seconds)
    else:
        endpoint = TCP4ClientEndpoint(reactor, address, target.port, timeout=seconds)
    if target.scheme == "https":
        is_ip = target.is_ipv6 or target.is_ipv4
        creator: IOpenSSLClientConnectionCreator
        if insecure:
            creator = _InsecureTLS(target.host, is_ip)
        else:
            creator = optionsForClientTLS(
                target.host.partition("%")[0],
                trustRoot=trust_root,
                acceptableProtocols=[b"http/1.1"],
            )
        endpoint = wrapClientTLS(creator, endpoint)
    return endpoint


def host_port(target: Target) -> str:
    """``host:port`` for messages, IPv6 bracketed, the port always shown."""
    return format_host_port(target.host, target.port)
