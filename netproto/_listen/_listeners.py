"""
Listeners for the twistd plugin: what a ``--daytime`` / ``--echo`` / ``--metrics``
SPEC means, and the services that bind each one in ``privilegedStartService``.

A bad SPEC is a ``ValueError`` at parse time (no socket is touched); a port
that cannot be bound stops the whole service with one line naming the option.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from twisted.application.service import IService, MultiService, Service
from twisted.internet import defer, tcp
from twisted.internet.endpoints import AdoptedStreamServerEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.systemd import ListenFDs
from zope.interface import implementer

from netproto._udp import (
    BindError,
    BoundService,
    UDPService,
    UDPSpec,
    _split_escaped,
    describe_bind_error,
    has_ipv6,
    parse_server_port,
    parse_udp_spec,
)

__all__ = [
    "AnyAddressTCPEndpoint",
    "Listener",
    "NetprotoService",
    "build_listeners",
    "inherited_sockets",
    "parse_service_spec",
]

log = Logger()


def inherited_sockets() -> ListenFDs:
    """The sockets systemd passed to this process (``LISTEN_FDS``).

    Twisted reads (and removes) ``LISTEN_FDS`` from the environment when
    :mod:`twisted.internet.endpoints` is imported; its parser keeps them, so
    read them from there, or from the environment if it never did.
    """
    from twisted.internet import endpoints

    parser = getattr(endpoints, "_SystemdParser", None)
    fds = getattr(parser, "_sddaemon", None)
    if isinstance(fds, ListenFDs):
        return fds
    return ListenFDs.fromEnvironment()  # pragma: no cover (older Twisted)


@dataclass(frozen=True)
class Listener:
    """One socket to serve: *service* on *kind* (``tcp-any``, ``tcp``, ``udp``, ``systemd``).

    ``option`` is the command-line option it came from, for messages. ``tcp-any``
    is every address of one *family* (4 or 6) on *port*: a bare port is served
    by an IPv4 and an IPv6-only socket per transport, so IPv4 peers are plain
    IPv4 (never ``::ffff:a.b.c.d``) and the kernel keeps the families apart.
    """

    service: str
    option: str
    kind: str
    port: int = 0
    description: str = ""
    udp: UDPSpec | None = None
    fileno: int | None = None
    family: int = 0

    def describe(self) -> str:
        """What is listened on, for messages: 'TCP port 7 (IPv4)'."""
        if self.kind == "tcp-any":
            return f"TCP port {self.port} (IPv{self.family})"
        if self.kind == "udp":
            assert self.udp is not None
            if self.udp.interface == "0.0.0.0":
                where = " (IPv4)"
            elif self.udp.interface == "::" and self.udp.v6only:
                where = " (IPv6)"
            elif self.udp.interface:
                where = f" on {self.udp.interface}"
            else:
                where = " (IPv4 and IPv6)"
            return f"UDP port {self.udp.port}{where}"
        if self.kind == "systemd":
            return f"inherited socket fd {self.fileno}"
        return self.description


_PARSE_ONLY = object()
"""A stand-in reactor: endpoint parsers only store it."""

_PORT_FIRST = ("tcp", "tcp6", "ssl")


def _check_endpoint(description: str) -> None:
    """Raise ValueError unless *description* is a valid Twisted server endpoint."""
    fields = _split_escaped(description)
    if fields[0] in _PORT_FIRST and len(fields) > 1 and "=" not in fields[1]:
        parse_server_port(fields[1])
    try:
        serverFromString(_PARSE_ONLY, description)
    except Exception as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


def _systemd_fileno(description: str, fds: ListenFDs) -> int:
    """The descriptor a ``systemd:[domain=..:](index=N|name=NAME)`` description names."""
    args: dict[str, str] = {}
    for field in _split_escaped(description)[1:]:
        key, eq, value = field.partition("=")
        if not eq or key not in ("domain", "index", "name"):
            raise ValueError(f"unknown systemd option {field!r} (domain=, index= or name=)")
        args[key] = value
    if ("index" in args) == ("name" in args):
        raise ValueError("give exactly one of index=N or name=NAME")
    if "domain" in args and args["domain"] not in ("INET", "INET6", "UNIX"):
        raise ValueError(f"domain {args['domain']!r} is not INET, INET6 or UNIX")
    descriptors = fds.inheritedDescriptors()
    if "index" in args:
        if not args["index"].isdigit():
            raise ValueError(f"index {args['index']!r} is not a number")
        index = int(args["index"])
        if index >= len(descriptors):
            raise ValueError(f"no inherited socket at index {index} "
                             f"(LISTEN_FDS passed {len(descriptors)})")
        return descriptors[index]
    named = fds.inheritedNamedDescriptors()
    if args["name"] not in named:
        known = ", ".join(sorted(named)) or "none"
        raise ValueError(f"no inherited socket named {args['name']!r} (names: {known})")
    return named[args["name"]]


def _any_udp(service: str, option: str, port: int) -> list[Listener]:
    """UDP on every address: an IPv4 socket and an IPv6-only socket."""
    return [Listener(service, option, "udp", udp=UDPSpec(port, "0.0.0.0")),
            Listener(service, option, "udp", udp=UDPSpec(port, "::", v6only=True))]


def parse_service_spec(service: str, spec: str,
                       fds: ListenFDs | None = None) -> list[Listener]:
    """The listeners one ``--SERVICE=SPEC`` asks for; ValueError with a reason if SPEC is bad.

    A bare port is TCP and UDP on every IPv4 and IPv6 address, one socket per
    family and transport (for ``metrics``: TCP on 127.0.0.1);
    ``udp:...`` is UDP only; ``systemd:...`` adopts an inherited socket of either
    type; anything else is a Twisted server endpoint description, TCP only.
    """
    option = f"--{service}={spec}"
    spec = spec.strip()
    if not spec:
        raise ValueError("empty SPEC")
    if spec.isdigit():
        port = parse_server_port(spec)
        if service == "metrics":
            description = f"tcp:{port}:interface=127.0.0.1"
            return [Listener(service, option, "tcp", description=description)]
        return [Listener(service, option, "tcp-any", port=port, family=4),
                Listener(service, option, "tcp-any", port=port, family=6),
                *_any_udp(service, option, port)]
    prefix = spec.partition(":")[0]
    if prefix == "udp":
        if service == "metrics":
            raise ValueError("metrics are served over TCP only")
        parsed = parse_udp_spec(spec)
        if not parsed.interface:
            return _any_udp(service, option, parsed.port)
        return [Listener(service, option, "udp", udp=parsed)]
    if prefix == "systemd":
        fileno = _systemd_fileno(spec, fds if fds is not None else inherited_sockets())
        return [Listener(service, option, "systemd", description=spec, fileno=fileno)]
    _check_endpoint(spec)
    return [Listener(service, option, "tcp", description=spec)]


class _V6OnlyPort(tcp.Port):
    """A TCP port on ``::`` for IPv6 only, whatever ``net.ipv6.bindv6only`` says."""

    def createInternetSocket(self) -> socket.socket:
        skt: socket.socket = super().createInternetSocket()
        skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        return skt


@implementer(IStreamServerEndpoint)
class AnyAddressTCPEndpoint:
    """TCP on every address of one family: ``0.0.0.0``, or ``::`` with IPv6 only."""

    def __init__(self, reactor: Any, port: int, family: int = 4, backlog: int = 50) -> None:
        self.reactor = reactor
        self.port = port
        self.family = family
        self.backlog = backlog

    def listen(self, protocolFactory: Any) -> defer.Deferred[IListeningPort]:
        """Bind and listen now; the Deferred has already fired."""
        def bind() -> IListeningPort:
            port: tcp.Port
            if self.family == 6:
                port = _V6OnlyPort(self.port, protocolFactory, self.backlog, "::", self.reactor)
            else:
                port = tcp.Port(self.port, protocolFactory, self.backlog, "0.0.0.0",
                                self.reactor)
            port.startListening()
            return port

        return defer.execute(bind)


class _StreamService(BoundService):
    """Listen on a stream endpoint in ``privilegedStartService``."""

    _port: IListeningPort | None = None

    def __init__(self, listener: Listener, endpoint: IStreamServerEndpoint,
                 factory: Factory) -> None:
        self.listener = listener
        self.endpoint = endpoint
        self.factory = factory

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        if self._port is not None:
            return
        if self.listener.kind == "tcp-any" and self.listener.family == 6 and not has_ipv6():
            self.skipped = True
            log.info("no IPv6 on this host: {option} serves TCP over IPv4 only",
                     option=self.listener.option)
            return
        outcome: list[Any] = []
        self.endpoint.listen(self.factory).addBoth(outcome.append)
        if not outcome:
            raise BindError("the endpoint did not listen at once")
        if isinstance(outcome[0], Failure):
            raise BindError(describe_bind_error(outcome[0].value or Exception()))
        self._port = outcome[0]


class _SystemdService(Service):
    """Serve an inherited socket: UDP if it is a datagram socket, else a stream endpoint."""

    inner: _StreamService | UDPService | None = None

    def __init__(self, listener: Listener, reactor: Any,
                 make_factory: Callable[[], Factory] | None,
                 make_protocol: Callable[[], DatagramProtocol] | None,
                 served_ports: set[int]) -> None:
        self.listener = listener
        self.reactor = reactor
        self.make_factory = make_factory
        self.make_protocol = make_protocol
        self.served_ports = served_ports

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        if self.inner is not None:
            return
        fileno = self.listener.fileno
        assert fileno is not None
        try:
            probe = socket.socket(fileno=fileno)
        except OSError as exc:
            raise BindError(describe_bind_error(exc)) from exc
        family, kind = probe.family, probe.type
        probe.detach()
        if kind == socket.SOCK_DGRAM:
            if self.make_protocol is None:
                raise BindError("a datagram socket cannot serve this (TCP only)")
            self.inner = UDPService(self.reactor, self.make_protocol(), fileno=fileno,
                                    served_ports=self.served_ports, listener=self.listener)
        elif kind == socket.SOCK_STREAM and self.make_factory is not None:
            endpoint = AdoptedStreamServerEndpoint(self.reactor, fileno, family)
            self.inner = _StreamService(self.listener, endpoint, self.make_factory())
        else:
            raise BindError(f"unsupported socket type {kind!r}")
        self.inner.privilegedStartService()

    def startService(self) -> None:
        if self.inner is None:
            self.privilegedStartService()
        Service.startService(self)

    def stopService(self) -> Any:
        Service.stopService(self)
        inner, self.inner = self.inner, None
        return inner.stopService() if inner is not None else None


def _constant(factory: Factory) -> Callable[[], Factory]:
    return lambda: factory


def _listening_ports(service: IService) -> Iterator[int]:
    port: Any = getattr(service, "port", None)
    inner = getattr(service, "inner", None)
    if inner is not None:
        port = getattr(inner, "port", None)
    if port is not None:
        host = port.getHost()
        number = getattr(host, "port", None)
        if isinstance(number, int):
            yield number


class NetprotoService(MultiService):
    """The plugin's root service: binds every listener first, fails as one clean line.

    If any listener cannot bind, the ones already bound are closed, one
    critical event names the option and the reason, and the process exits 1:
    in the foreground with that one line on stderr and no traceback; as a
    daemon (*daemon* true) through twistd's start-up status report. Still
    running as root on a port below 1024 after twistd's privilege drop logs a
    warning.
    """

    log = Logger()

    def __init__(self, *, daemon: bool = False) -> None:
        super().__init__()
        self.daemon = daemon

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        started: list[IService] = []
        for child in self:
            try:
                child.privilegedStartService()
            except BindError as exc:
                for done in started:
                    done.stopService()
                listener: Listener = getattr(child, "listener")  # noqa: B009
                self._fail(f"{listener.option}: cannot listen on "
                           f"{listener.describe()}: {exc}")
            started.append(child)

    def _fail(self, message: str) -> None:
        self.log.critical("netproto: {message}", message=message)
        if self.daemon:
            # twistd's daemon parent waits on a status pipe that only an
            # Exception (not SystemExit) reports, with the pid file removed.
            raise BindError(message)
        stderr = sys.__stderr__
        if stderr is not None and not stderr.closed:
            try:
                stderr.write(f"netproto: {message}\n")
                stderr.flush()
            except OSError:
                pass
        raise SystemExit(1)

    def startService(self) -> None:
        MultiService.startService(self)
        for child in self:
            listener = getattr(child, "listener", None)
            if listener is not None and not getattr(child, "skipped", False):
                ports = list(_listening_ports(child))
                where = listener.describe()
                if listener.kind == "systemd" and ports:
                    kind = "UDP" if isinstance(getattr(child, "inner", None), UDPService) else "TCP"
                    where = f"{where} ({kind} port {ports[0]})"
                elif listener.kind == "tcp" and ports:
                    where = f"{where} (port {ports[0]})"
                self.log.info("netproto: {service} on {where}", service=listener.service,
                              where=where)
        if os.geteuid() == 0:
            low = sorted({p for child in self for p in _listening_ports(child) if 0 < p < 1024})
            if low:
                self.log.warn(
                    "netproto: running as root on privileged port(s) {ports}; "
                    "pass --uid and --gid to twistd to drop privileges after binding",
                    ports=", ".join(map(str, low)))


def build_listeners(root: MultiService, reactor: Any, listeners: list[Listener], *,
                    limits: Any, daytime_format: str, utc: bool) -> Any:
    """Add a service to *root* for each listener; return the metrics registry.

    One TCP factory per service is shared by its TCP listeners (so the
    connection caps count over all of them); each UDP listener gets its own
    datagram protocol. Every UDP port bound is added to one shared set of
    served ports, the loop guard of every datagram protocol.
    """
    from netproto._metrics import MetricsRegistry, metrics_site
    from netproto.daytime import DaytimeDatagramProtocol, DaytimeFactory
    from netproto.echo import EchoDatagramProtocol, EchoFactory

    served_ports: set[int] = set()
    registry = MetricsRegistry()
    factories: dict[str, Factory] = {}

    def tcp_factory(service: str) -> Callable[[], Factory]:
        def make() -> Factory:
            if service not in factories:
                if service == "daytime":
                    made: Factory = DaytimeFactory(reactor, limits, fmt=daytime_format, utc=utc)
                else:
                    made = EchoFactory(reactor, limits)
                registry.register(service, "tcp", made)
                factories[service] = made
            return factories[service]
        return make

    def udp_protocol(service: str) -> Callable[[], DatagramProtocol]:
        def make() -> DatagramProtocol:
            if service == "daytime":
                made: DatagramProtocol = DaytimeDatagramProtocol(
                    reactor, limits, fmt=daytime_format, utc=utc, served_ports=served_ports)
            else:
                made = EchoDatagramProtocol(reactor, limits, served_ports=served_ports)
            registry.register(service, "udp", made)
            return made
        return make

    for listener in listeners:
        child: Service
        if listener.service == "metrics":
            site: Factory = metrics_site(registry)
            if listener.kind == "systemd":
                child = _SystemdService(listener, reactor, _constant(site), None, served_ports)
            else:
                endpoint = serverFromString(reactor, listener.description)
                child = _StreamService(listener, endpoint, site)
        elif listener.kind == "udp":
            assert listener.udp is not None
            child = UDPService(reactor, udp_protocol(listener.service)(), spec=listener.udp,
                               served_ports=served_ports, listener=listener)
        elif listener.kind == "systemd":
            child = _SystemdService(listener, reactor, tcp_factory(listener.service),
                                    udp_protocol(listener.service), served_ports)
        elif listener.kind == "tcp-any":
            endpoint = AnyAddressTCPEndpoint(reactor, listener.port, listener.family)
            child = _StreamService(listener, endpoint, tcp_factory(listener.service)())
        else:
            child = _StreamService(listener, serverFromString(reactor, listener.description),
                                   tcp_factory(listener.service)())
        child.setServiceParent(root)
    root.registry = registry  # type: ignore[attr-defined]
    root.served_ports = served_ports  # type: ignore[attr-defined]
    return registry
