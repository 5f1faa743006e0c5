"""
UDP sockets for the twistd plugin: what one UDP listener binds
(:class:`UDPSpec`), a port that checks each datagram's destination, and the
service that binds (or adopts) it in ``privilegedStartService``.

:class:`DestinationCheckingPort` reads each datagram with ``recvmsg`` and the
``IP_PKTINFO`` / ``IPV6_PKTINFO`` ancillary data, and never hands the protocol a
datagram that was sent to a broadcast or multicast address (the Fraggle
amplifier); those are counted as ``udp_refused_destination``.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet import fdesc, udp
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from netproto._listen._bound import BindError, BoundService, describe_bind_error, has_ipv6
from netproto._listen._mmsg import Batch, ancillary_items, batch
from netproto._twisted import adopt_datagram_port

__all__ = [
    "MAX_DATAGRAM",
    "DestinationCheckingPort",
    "UDPService",
    "UDPSpec",
    "refused_destination",
]

log = Logger(namespace="netproto.tap")
"""Events of this module, under the public namespace ``netproto.tap``."""

#: Receive buffer for one datagram: the largest UDP payload plus headroom
#: (Twisted's default, 8192, silently truncates larger datagrams).
MAX_DATAGRAM = 65535

# Linux values; the socket module does not export IP_PKTINFO on every build.
_IP_PKTINFO: int = getattr(socket, "IP_PKTINFO", 8)
_IPV6_PKTINFO: int = getattr(socket, "IPV6_PKTINFO", 50)
_IPV6_RECVPKTINFO: int = getattr(socket, "IPV6_RECVPKTINFO", 49)
_IP_MULTICAST_ALL: int = getattr(socket, "IP_MULTICAST_ALL", 49)
_IPV6_MULTICAST_ALL: int = getattr(socket, "IPV6_MULTICAST_ALL", 29)
_UNKNOWN = bytes(4)
_SOL_IP = socket.IPPROTO_IP
_SOL_IPV6 = socket.IPPROTO_IPV6
_PKTINFO4_LEN = socket.CMSG_LEN(12)
_PKTINFO4_SPACE = socket.CMSG_SPACE(12)
_PKTINFO4_HEAD = struct.pack("@ii", _SOL_IP, _IP_PKTINFO)
_PKTINFO4_DATA = _PKTINFO4_LEN - 12
_FAMILY = struct.Struct("@H")
_SCOPE = struct.Struct("@I")
_ADDRESSES = 4096  # parsed sources (and destination verdicts) kept per port, then forgotten
# Room for both an in_pktinfo (12 bytes) and an in6_pktinfo (20 bytes) message:
# a dual-stack socket gets both for an IPv4 datagram.
_ANCILLARY_SPACE = socket.CMSG_SPACE(12) + socket.CMSG_SPACE(20)

_READ_IGNORE = frozenset(
    {
        errno.EAGAIN,
        errno.EWOULDBLOCK,
        errno.EINTR,
        errno.ECONNREFUSED,
        errno.EMSGSIZE,
        errno.ENOBUFS,
        errno.ENOMEM,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ECONNRESET,
    }
)


class _Counting(Protocol):
    """What the port needs from the protocol's counters."""

    def add(self, name: str, n: int = 1) -> None: ...


@dataclass(frozen=True)
class UDPSpec:
    """A parsed ``udp:PORT[:interface=ADDR]`` description.

    ``interface`` is an IP literal, or ``""`` for every address: dual-stack IPv6
    and IPv4 where the host has IPv6, else IPv4 only.
    """

    port: int
    interface: str = ""
    #: On ``::``: IPv6 only (the plugin binds IPv4 with a socket of its own).
    v6only: bool = False

    def __str__(self) -> str:
        if not self.interface:
            return f"udp:{self.port}"
        return "udp:{}:interface={}".format(self.port, self.interface.replace(":", "\\:"))


def _prepare_destination_check(skt: socket.socket) -> bool:
    """Set *skt* up so broadcast and multicast datagrams can be refused; True if it must check.

    Multicast for groups this socket never joined is not delivered at all
    (``IP_MULTICAST_ALL`` / ``IPV6_MULTICAST_ALL`` off: the kernel drops it, at
    no cost per datagram). A socket bound to a unicast address never receives
    broadcast or multicast, so it needs no per-datagram check. A wildcard socket
    asks for ``IP_PKTINFO`` (IPv4, also for the IPv4 side of a dual-stack
    socket), and for ``IPV6_PKTINFO`` only if multicast could not be turned off.
    """
    six = skt.family == socket.AF_INET6
    v6_multicast_off = False
    try:
        skt.setsockopt(_SOL_IP, _IP_MULTICAST_ALL, 0)
    except OSError:
        pass
    if six:
        try:
            skt.setsockopt(_SOL_IPV6, _IPV6_MULTICAST_ALL, 0)
            v6_multicast_off = True
        except OSError:
            pass
    bound = skt.getsockname()[0]
    if bound not in ("0.0.0.0", "::", ""):
        return False
    if not six:
        skt.setsockopt(_SOL_IP, _IP_PKTINFO, 1)
        return True
    check = False
    if not skt.getsockopt(_SOL_IPV6, socket.IPV6_V6ONLY):
        # IPv4 on a dual-stack socket: the IPv4 message tells broadcasts apart.
        skt.setsockopt(_SOL_IP, _IP_PKTINFO, 1)
        check = True
    if not v6_multicast_off:
        skt.setsockopt(_SOL_IPV6, _IPV6_RECVPKTINFO, 1)
        check = True
    # An IPv6-only socket with multicast off cannot receive broadcast or
    # multicast (IPv6 has no broadcast): nothing to check per datagram.
    return check


def refused_destination(ancillary: list[tuple[int, int, bytes]]) -> bool:
    """Whether the ancillary data says the datagram went to a broadcast or multicast address.

    ``in_pktinfo`` is (ifindex, spec_dst, addr): for a datagram to one of our
    unicast addresses the kernel sets spec_dst to the header's destination; for a
    broadcast (limited or directed) or multicast it picks an interface address
    instead. A datagram queued before ``IP_PKTINFO`` was set (an adopted socket)
    carries spec_dst 0.0.0.0: only its address is judged (multicast, or
    255.255.255.255). ``in6_pktinfo`` is (addr, ifindex): IPv6 has multicast (ff00::/8),
    no broadcast; an IPv4-mapped destination is judged by its IPv4 message.
    """
    for level, kind, data in ancillary:
        if level == _SOL_IP and kind == _IP_PKTINFO:
            return data[8] >= 224 or (data[4:8] != data[8:12] and data[4:8] != _UNKNOWN)
        if level == _SOL_IPV6 and kind == _IPV6_PKTINFO and data[0] == 0xFF:
            return True
    return False


def _refused_raw(control: bytes) -> bool:
    """:func:`refused_destination` for raw ancillary bytes (a lone ``in_pktinfo``: at once)."""
    if len(control) in (_PKTINFO4_LEN, _PKTINFO4_SPACE) and control[8:16] == _PKTINFO4_HEAD:
        info = control[_PKTINFO4_DATA:_PKTINFO4_LEN]
        return info[8] >= 224 or (info[4:8] != info[8:12] and info[4:8] != _UNKNOWN)
    return refused_destination(ancillary_items(control))


def _source(name: bytes) -> tuple[str, int]:
    """``(host, port)`` of the raw ``sockaddr_in``/``sockaddr_in6`` *name* (as ``recvmsg``)."""
    port = int.from_bytes(name[2:4], "big")
    if _FAMILY.unpack_from(name)[0] == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, name[4:8]), port
    host = socket.inet_ntop(socket.AF_INET6, name[8:24])
    scope = _SCOPE.unpack_from(name, 24)[0]
    if scope:  # link-local: the zone, as Python writes it ("fe80::1%eth0")
        flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        host = socket.getnameinfo((host, port, 0, scope), flags)[0]
    return host, port


class DestinationCheckingPort(udp.Port):
    """A UDP port that drops datagrams addressed to broadcast or multicast addresses.

    A bare ``::`` interface is bound dual-stack (``IPV6_V6ONLY`` off), whatever the
    host's ``net.ipv6.bindv6only``, unless :attr:`v6only` is set. Refusals are
    counted on the protocol's ``counters`` as ``udp_refused_destination``;
    nothing is logged per datagram.
    Multicast is dropped by the kernel before it reaches the socket (see
    :func:`_prepare_destination_check`), and a socket bound to a unicast address
    reads with Twisted's plain ``recvfrom`` loop.
    """

    def createInternetSocket(self) -> socket.socket:
        skt: socket.socket = super().createInternetSocket()
        if self.addressFamily == socket.AF_INET6 and self.interface == "::":
            skt.setsockopt(_SOL_IPV6, socket.IPV6_V6ONLY, 1 if self.v6only else 0)
        return skt

    _check_destination = True
    _batch: Batch | None = None
    _answer: Any = None
    #: On ``::``: IPv6 only instead of dual-stack.
    v6only = False
    #: Read and answer in batches (``recvmmsg``/``sendmmsg``) where the C
    #: library has them; ``False``: one ``recvmsg`` per datagram.
    batched = True

    def startListening(self) -> None:
        """Bind (or take the adopted socket), set up the destination check, start reading."""
        super().startListening()
        # Before the reactor's next turn, so before any datagram is read.
        self._check_destination = _prepare_destination_check(self.socket)
        self._batch = batch() if self.batched else None
        self._addresses: dict[bytes, tuple[str, int]] = {}
        self._verdicts: dict[bytes, bool] = {}
        protocol = self.protocol
        if callable(getattr(protocol, "answer_batch", None)) and callable(
            getattr(protocol, "count_sent", None)
        ):
            self._answer = protocol.answer_batch

    def doRead(self) -> None:
        """
        Read what is waiting: a batch of up to :data:`~netproto._listen._mmsg.BATCH`
        datagrams where batches work, else datagrams one by one until the
        socket is empty or ``maxThroughput`` bytes were read.
        """
        if self._batch is not None:
            return self._read_batch(self._batch)
        if not self._check_destination:
            # Bound to a unicast address: the kernel never delivers broadcast or
            # multicast here, so Twisted's recvfrom loop is all there is to do.
            return super().doRead()  # type: ignore[no-any-return]
        recvmsg = self.socket.recvmsg
        size = self.maxPacketSize
        protocol = self.protocol
        deliver = protocol.datagramReceived
        six = self.addressFamily == socket.AF_INET6
        read = 0
        while read < self.maxThroughput:
            try:
                data, ancillary, _flags, addr = recvmsg(size, _ANCILLARY_SPACE)
            except OSError as exc:
                if exc.errno in _READ_IGNORE:
                    return None
                raise
            read += len(data) + 1
            if ancillary:
                # in_pktinfo (12 bytes): ifindex, spec_dst, addr; in6_pktinfo
                # (20 bytes): addr, ifindex. See refused_destination().
                info = ancillary[0][2]
                if len(info) == 12:
                    refused = info[8] >= 224 or (info[4:8] != info[8:12] and info[4:8] != _UNKNOWN)
                else:
                    refused = info[0] == 0xFF or (
                        len(ancillary) > 1 and refused_destination(ancillary)
                    )
                if refused:
                    counters: _Counting | None = getattr(protocol, "counters", None)
                    if counters is not None:
                        counters.add("udp_refused_destination")
                    continue
            if six:
                addr = addr[:2]
            try:
                deliver(data, addr)
            except Exception:
                log.failure("datagramReceived raised; datagram dropped")
        return None

    def _read_batch(self, batch: Batch) -> None:
        """
        One ``recvmmsg``: each datagram's destination is checked, then the
        batch goes to the protocol's ``answer_batch`` (its policy, its
        replies, one clock reading) and the replies leave in one
        ``sendmmsg``, in order. A protocol without ``answer_batch`` gets each
        datagram through ``datagramReceived``.
        """
        fd = self.socket.fileno()
        try:
            received = batch.recv(fd)
        except OSError as exc:
            if exc.errno in _READ_IGNORE:
                return None
            raise
        protocol = self.protocol
        addresses = self._addresses
        verdicts = self._verdicts
        check = self._check_destination
        refused = 0
        # (data, addr, sockaddr): the source parsed once per distinct sockaddr.
        datagrams: list[tuple[bytes, tuple[str, int], bytes]] = []
        append = datagrams.append
        for data, name, control in received:
            if check and control:
                # Few distinct (interface, destination) pairs: judged once each.
                verdict = verdicts.get(control)
                if verdict is None:
                    if len(verdicts) >= _ADDRESSES:
                        verdicts.clear()
                    verdict = verdicts[control] = _refused_raw(control)
                if verdict:
                    refused += 1
                    continue
            addr = addresses.get(name)
            if addr is None:
                if len(addresses) >= _ADDRESSES:
                    addresses.clear()
                addr = addresses[name] = _source(name)
            append((data, addr, name))
        if refused:
            counters: _Counting | None = getattr(protocol, "counters", None)
            if counters is not None:
                counters.add("udp_refused_destination", refused)
        answer = self._answer
        if answer is None:
            for data, addr, _name in datagrams:
                try:
                    protocol.datagramReceived(data, addr)
                except Exception:
                    log.failure("datagramReceived raised; datagram dropped")
            return None
        try:
            replies = answer(datagrams)
        except Exception:
            log.failure("answer_batch raised; {count} datagrams dropped", count=len(datagrams))
            return None
        if replies:
            protocol.count_sent(*batch.send(fd, replies))
        return None


class UDPService(BoundService):
    """Serve *protocol* on a UDP port, bound in ``privilegedStartService``.

    ``_log`` records the rare start-up events.

    Either a :class:`UDPSpec` (bind) or an inherited descriptor ``fileno`` (adopt,
    e.g. from systemd socket activation) is given. Every bound port number is
    added to *served_ports*, the loop guard the protocols consult.
    """

    _port: udp.Port | None = None

    def __init__(
        self,
        reactor: Any,
        protocol: DatagramProtocol,
        *,
        spec: UDPSpec | None = None,
        fileno: int | None = None,
        served_ports: set[int] | None = None,
        listener: Any = None,
    ) -> None:
        if (spec is None) == (fileno is None):
            raise ValueError("give exactly one of spec or fileno")
        self.reactor = reactor
        self.protocol = protocol
        self.spec = spec
        self.fileno = fileno
        self.served_ports = served_ports if served_ports is not None else set()
        self.listener = listener

    def _bind(self) -> udp.Port:
        if self.fileno is not None:
            probe = socket.socket(fileno=self.fileno)
            family = probe.family
            probe.detach()
            fdesc.setNonBlocking(self.fileno)
            port: udp.Port = adopt_datagram_port(
                DestinationCheckingPort,
                self.reactor,
                self.fileno,
                family,
                self.protocol,
                MAX_DATAGRAM,
            )
            port.startListening()
            os.close(self.fileno)
            return port
        assert self.spec is not None
        interface = self.spec.interface
        if not interface:
            interface = "::" if has_ipv6() else "0.0.0.0"
        port = DestinationCheckingPort(
            self.spec.port, self.protocol, interface, MAX_DATAGRAM, self.reactor
        )
        port.v6only = self.spec.v6only
        port.startListening()
        return port

    def privilegedStartService(self) -> None:
        """Bind (or adopt) the socket; raise :class:`BindError` with a readable reason.

        An IPv6-only wildcard socket (the IPv6 half of a bare port) is skipped on
        a host without IPv6.
        """
        Service.privilegedStartService(self)
        if self._port is not None:
            return
        if self.spec is not None and self.spec.v6only and not has_ipv6():
            self.skipped = True
            log.info(
                "no IPv6 on this host: UDP port {port} served over IPv4 only", port=self.spec.port
            )
            return
        try:
            self._port = self._bind()
        except Exception as exc:
            raise BindError(describe_bind_error(exc)) from exc
        self.served_ports.add(self._port.getHost().port)
