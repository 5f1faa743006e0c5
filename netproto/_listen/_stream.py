"""
TCP sockets for the twistd plugin: every address of one family on a port
(:class:`AnyAddressTCPEndpoint`), and the service that listens on any stream
endpoint in ``privilegedStartService``.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, tcp
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from netproto._listen._bound import BindError, BoundService, describe_bind_error, has_ipv6
from netproto._listen._exhaustion import AcceptPause, pause_when_exhausted
from netproto._twisted import accept_directly

__all__ = ["AnyAddressTCPEndpoint", "ReusePortTCP", "StreamService"]

log = Logger(namespace="netproto.tap")
"""Events of this module, under the public namespace ``netproto.tap``."""


def _check_unused(family: int, interface: str, port: int, v6only: bool) -> None:
    """
    Raise ``OSError`` (address already in use) if a socket listens on *port*
    of *interface* already: bound without ``SO_REUSEPORT``, this probe fails
    exactly where a plain listener would, where a socket with it would join
    a group of another process of the same user listening there (a second
    instance started by mistake) instead of failing as a plain one does.
    """
    host = interface or ("::" if family == socket.AF_INET6 else "0.0.0.0")
    try:
        address = socket.getaddrinfo(
            host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
        )[0][4]
    except socket.gaierror:
        return  # not a literal: the bind itself says what it thinks
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if v6only:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        probe.bind(address)
    finally:
        probe.close()


class _ReusePort(tcp.Port):
    """
    A TCP port whose socket has ``SO_REUSEPORT`` set before it is bound: the
    first of a group (see :func:`netproto._listen._slots.reuse_port_group`).
    A port some socket listens on already is refused, as without
    ``SO_REUSEPORT`` (:func:`_check_unused`).
    """

    #: IPv6 only (the probe must conflict as the socket would).
    v6only = False

    def createInternetSocket(self) -> socket.socket:
        if self.port:
            _check_unused(self.addressFamily, self.interface, self.port, self.v6only)
        skt: socket.socket = super().createInternetSocket()
        skt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        return skt


class _V6OnlyPort(tcp.Port):
    """A TCP port on ``::`` for IPv6 only, whatever ``net.ipv6.bindv6only`` says."""

    def createInternetSocket(self) -> socket.socket:
        skt: socket.socket = super().createInternetSocket()
        skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        return skt


class _V6OnlyReusePort(_V6OnlyPort, _ReusePort):
    """IPv6 only, ``SO_REUSEPORT`` set before the bind."""

    v6only = True


class ReusePortTCP:
    """
    A reactor for :func:`~twisted.internet.endpoints.serverFromString` whose
    ``listenTCP`` sets ``SO_REUSEPORT`` before binding (``tcp:`` and ``tcp6:``
    endpoints call nothing else of it); the ports run on *reactor*.
    """

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def listenTCP(
        self, port: int, factory: Factory, backlog: int = 50, interface: str = ""
    ) -> tcp.Port:
        """Bind and listen on *port* as ``IReactorTCP.listenTCP`` does, ``SO_REUSEPORT`` on."""
        listening = _ReusePort(port, factory, backlog, interface, self.reactor)
        listening.startListening()
        return listening


@implementer(IStreamServerEndpoint)
class AnyAddressTCPEndpoint:
    """TCP on every address of one family: ``0.0.0.0``, or ``::`` with IPv6 only."""

    def __init__(
        self,
        reactor: Any,
        port: int,
        family: int = 4,
        backlog: int = 50,
        *,
        reuse_port: bool = False,
    ) -> None:
        self.reactor = reactor
        self.port = port
        self.family = family
        self.backlog = backlog
        #: ``SO_REUSEPORT`` set before the bind (``--workers``: one socket per worker).
        self.reuse_port = reuse_port

    def listen(self, protocolFactory: Any) -> defer.Deferred[IListeningPort]:
        """Bind and listen now; the Deferred has already fired."""

        def bind() -> IListeningPort:
            kind: type[tcp.Port]
            if self.family == 6:
                kind = _V6OnlyReusePort if self.reuse_port else _V6OnlyPort
            else:
                kind = _ReusePort if self.reuse_port else tcp.Port
            interface = "::" if self.family == 6 else "0.0.0.0"
            port = kind(self.port, protocolFactory, self.backlog, interface, self.reactor)
            port.startListening()
            return port

        return defer.execute(bind)


class StreamService(BoundService):
    """
    Listen on a stream *endpoint* with *factory* in ``privilegedStartService``.
    With *needs_ipv6*, a host without IPv6 skips it (logged once) instead of
    failing: the IPv6 half of a bare port.
    """

    _port: IListeningPort | None = None
    _pause: AcceptPause | None = None

    def __init__(
        self,
        listener: Any,
        endpoint: IStreamServerEndpoint,
        factory: Factory,
        *,
        needs_ipv6: bool = False,
    ) -> None:
        self.listener = listener
        self.endpoint = endpoint
        self.factory = factory
        self.needs_ipv6 = needs_ipv6

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        if self._port is not None:
            return
        if self.needs_ipv6 and not has_ipv6():
            self.skipped = True
            log.info(
                "no IPv6 on this host: {option} serves TCP over IPv4 only",
                option=self.listener.option,
            )
            return
        outcome: list[Any] = []
        self.endpoint.listen(self.factory).addBoth(outcome.append)
        if not outcome:
            raise BindError("the endpoint did not listen at once")
        if isinstance(outcome[0], Failure):
            raise BindError(describe_bind_error(outcome[0].value or Exception()))
        self._port = outcome[0]
        self._pause = pause_when_exhausted(self._port, self.listener.describe(), self.factory)
        # A service that answers once and closes (daytime, time, qotd) answers
        # on the accepted socket itself, without a transport per connection;
        # not where the port serves a wrapping factory (TLS for ssl:).
        take = getattr(self.factory, "answer_accepted", None)
        if take is not None and getattr(self._port, "factory", None) is self.factory:
            accept_directly(self._port, take)

    def stopService(self) -> Any:
        if self._pause is not None:
            self._pause.stop()
        return super().stopService()
