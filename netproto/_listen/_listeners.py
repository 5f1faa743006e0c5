"""
The kinds of listener a ``--SERVICE=SPEC`` can ask for, each a small class
that says what it listens on and makes the service that binds it:

- :class:`AnyAddressTCP`: TCP on every address of one family (a bare port);
- :class:`EndpointTCP`: any Twisted server endpoint description (TCP only);
- :class:`UDP`: a UDP socket (a bare port, or ``udp:...``);
- :class:`Inherited`: a socket systemd passed (stream or datagram).

What a listener serves comes from a :class:`Wiring`: one TCP factory per
service, shared by its TCP listeners, and a datagram protocol per UDP socket.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet.endpoints import AdoptedStreamServerEndpoint, serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.protocol import DatagramProtocol, Factory
from zope.interface import implementer

from netproto._listen._backlog import with_backlog
from netproto._listen._bound import BindError, BoundService, describe_bind_error
from netproto._listen._stream import AnyAddressTCPEndpoint, ReusePortTCP, StreamService
from netproto._listen._udp import UDPService, UDPSpec

__all__ = [
    "UDP",
    "AnyAddressTCP",
    "EndpointTCP",
    "Inherited",
    "Listener",
    "Wiring",
]


class Wiring(Protocol):
    """What listeners are served with: the reactor, the protocols, the served UDP ports."""

    reactor: Any
    backlog: int
    """The listen backlog of TCP listeners (``--listen-backlog``, clamped)."""
    served_ports: set[int]
    """Every UDP port bound so far: the loop guard of every datagram protocol."""
    reuse_port: bool
    """Bind inet TCP listeners with ``SO_REUSEPORT`` (``--workers``: the first
    socket of a group of one per worker); UNIX, inherited and TLS listeners
    are bound as always."""

    def tcp_factory(self, service: str) -> Factory:
        """The one TCP factory of *service* (its caps count over all its listeners)."""

    def udp_protocol(self, service: str) -> DatagramProtocol | None:
        """A new datagram protocol for one UDP socket of *service*; ``None``: TCP only."""


@dataclass(frozen=True)
class Listener:
    """One socket to serve *service* on; *option* is the ``--SERVICE=SPEC`` it came from."""

    service: str
    option: str

    def describe(self) -> str:
        """What is listened on, for messages: ``TCP port 7 (IPv4)``."""
        raise NotImplementedError

    def describe_bound(self, port: int | None) -> str:
        """What is listened on, once bound to *port* (``None``: no port number)."""
        return self.describe()

    def make_service(self, wiring: Wiring) -> BoundService:
        """The service that binds this listener in ``privilegedStartService``."""
        raise NotImplementedError


@dataclass(frozen=True)
class AnyAddressTCP(Listener):
    """
    TCP on every address of one *family* (4 or 6) on *port*. A bare port is
    served by an IPv4 and an IPv6-only socket per transport, so IPv4 peers
    are plain IPv4 (never ``::ffff:a.b.c.d``) and the kernel keeps the
    families apart.
    """

    port: int
    family: int

    def describe(self) -> str:
        return self.describe_bound(None)

    def describe_bound(self, port: int | None) -> str:
        """``TCP port 7 (IPv4)``: the port bound (the one the kernel chose for 0)."""
        return f"TCP port {self.port if port is None else port} (IPv{self.family})"

    def make_service(self, wiring: Wiring) -> BoundService:
        endpoint = AnyAddressTCPEndpoint(
            wiring.reactor, self.port, self.family, wiring.backlog, reuse_port=wiring.reuse_port
        )
        return StreamService(
            self, endpoint, wiring.tcp_factory(self.service), needs_ipv6=self.family == 6
        )


@dataclass(frozen=True)
class EndpointTCP(Listener):
    """A Twisted server endpoint *description* (``tcp:...``, ``unix:...``, ``ssl:...``)."""

    description: str

    def describe(self) -> str:
        return self.description

    def describe_bound(self, port: int | None) -> str:
        return self.description if port is None else f"{self.description} (port {port})"

    def make_service(self, wiring: Wiring) -> BoundService:
        endpoint: IStreamServerEndpoint
        description = with_backlog(self.description, wiring.backlog)
        if description.startswith("unix:") and not _MODE.search(description):
            endpoint = _UmaskUNIXEndpoint(wiring.reactor, description)
        elif wiring.reuse_port and description.partition(":")[0] in ("tcp", "tcp6"):
            endpoint = serverFromString(ReusePortTCP(wiring.reactor), description)
        else:
            endpoint = serverFromString(wiring.reactor, description)
        return StreamService(self, endpoint, wiring.tcp_factory(self.service))


_MODE = re.compile(r"(?<!\\):mode=")


@implementer(IStreamServerEndpoint)
class _UmaskUNIXEndpoint:
    """
    ``unix:PATH`` without ``mode=``: the socket file gets 0666 less the
    umask in force when it is bound (twistd's ``--umask``, 0077 for a
    daemon), as any file would, not Twisted's 0666 (anyone may connect).
    """

    def __init__(self, reactor: Any, description: str) -> None:
        self.reactor = reactor
        self.description = description

    def listen(self, protocolFactory: Any) -> Any:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o666 & ~mask
        endpoint = serverFromString(self.reactor, f"{self.description}:mode={mode:o}")
        return endpoint.listen(protocolFactory)


@dataclass(frozen=True)
class UDP(Listener):
    """A UDP socket bound as *spec* says."""

    spec: UDPSpec

    def describe(self) -> str:
        return self.describe_bound(None)

    def describe_bound(self, port: int | None) -> str:
        """``UDP port 7 (IPv4)``: the port bound (the one the kernel chose for 0)."""
        spec = self.spec
        if spec.interface == "0.0.0.0":
            where = " (IPv4)"
        elif spec.interface == "::" and spec.v6only:
            where = " (IPv6)"
        elif spec.interface:
            where = f" on {spec.interface}"
        else:
            where = " (IPv4 and IPv6)"
        return f"UDP port {spec.port if port is None else port}{where}"

    def make_service(self, wiring: Wiring) -> BoundService:
        protocol = wiring.udp_protocol(self.service)
        if protocol is None:
            raise ValueError(f"{self.service} is served over TCP only")
        return UDPService(
            wiring.reactor,
            protocol,
            spec=self.spec,
            served_ports=wiring.served_ports,
            listener=self,
        )


@dataclass(frozen=True)
class Inherited(Listener):
    """
    The socket systemd passed as *fileno* (named by *description*,
    ``systemd:...``): served as UDP if it is a datagram socket, else as a
    stream endpoint.
    """

    description: str
    fileno: int

    def describe(self) -> str:
        return f"inherited socket fd {self.fileno}"

    def make_service(self, wiring: Wiring) -> BoundService:
        return _InheritedService(self, wiring)


class _InheritedService(BoundService):
    """Serve an inherited socket: UDP if it is a datagram socket, else a stream endpoint."""

    inner: BoundService | None = None

    def __init__(self, listener: Inherited, wiring: Wiring) -> None:
        self.listener = listener
        self.wiring = wiring

    @property
    def port(self) -> Any:
        return self.inner.port if self.inner is not None else None

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        if self.inner is not None:
            return
        listener, wiring = self.listener, self.wiring
        try:
            probe = socket.socket(fileno=listener.fileno)
        except OSError as exc:
            raise BindError(describe_bind_error(exc)) from exc
        family, kind = probe.family, probe.type
        probe.detach()
        inner: BoundService
        if kind == socket.SOCK_DGRAM:
            protocol = wiring.udp_protocol(listener.service)
            if protocol is None:
                raise BindError("a datagram socket cannot serve this (TCP only)")
            inner = UDPService(
                wiring.reactor,
                protocol,
                fileno=listener.fileno,
                served_ports=wiring.served_ports,
                listener=listener,
            )
        elif kind == socket.SOCK_STREAM:
            endpoint = AdoptedStreamServerEndpoint(wiring.reactor, listener.fileno, family)
            inner = StreamService(listener, endpoint, wiring.tcp_factory(listener.service))
        else:
            raise BindError(f"unsupported socket type {kind!r}")
        inner.privilegedStartService()
        self.inner = inner

    def startService(self) -> None:
        if self.inner is None:
            self.privilegedStartService()
        Service.startService(self)

    def stopService(self) -> Any:
        Service.stopService(self)
        inner, self.inner = self.inner, None
        return inner.stopService() if inner is not None else None

    def served(self) -> str:
        kind = "UDP" if isinstance(self.inner, UDPService) else "TCP"
        number = self.listening_port()
        where = self.listener.describe()
        return f"{where} ({kind} port {number})" if number is not None else where
