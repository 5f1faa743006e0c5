"""
How a HEAD request connects: the endpoint for a target (no resolver for
address literals, :class:`~twisted.internet.endpoints.HostnameEndpoint` for
names) and its TLS wrapping, verified or not.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet._sslverify import IOpenSSLTrustRoot
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IStreamClientEndpoint
from twisted.internet.ssl import Certificate, optionsForClientTLS
from zope.interface import implementer

from netproto._httptarget import Target

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
    reactor: Any, target: Target, timeout: float, insecure: bool,
    trust_root: IOpenSSLTrustRoot | Certificate | None,
) -> IStreamClientEndpoint:
    """The endpoint that connects to *target* (TLS-wrapped for ``https``)."""
    endpoint: IStreamClientEndpoint
    seconds = max(timeout, 0.001)
    if target.is_ipv4:
        # An address needs no resolution: skip HostnameEndpoint's resolver thread.
        endpoint = TCP4ClientEndpoint(reactor, target.host, target.port, timeout=seconds)
    elif target.is_ipv6 and "%" not in target.host:
        endpoint = TCP6ClientEndpoint(reactor, target.host, target.port, timeout=seconds)
    else:
        endpoint = HostnameEndpoint(reactor, target.connect_host, target.port, timeout=seconds)
    if target.scheme == "https":
        is_ip = target.is_ipv6 or target.is_ipv4
        creator: IOpenSSLClientConnectionCreator
        if insecure:
            creator = _InsecureTLS(target.host, is_ip)
        else:
            creator = optionsForClientTLS(
                target.host.partition("%")[0], trustRoot=trust_root,
                acceptableProtocols=[b"http/1.1"],
            )
        endpoint = wrapClientTLS(creator, endpoint)
    return endpoint


def host_port(target: Target) -> str:
    """``host:port`` for messages, IPv6 bracketed, the port always shown."""
    host = f"[{target.host}]" if target.is_ipv6 else target.host
    return f"{host}:{target.port}"
