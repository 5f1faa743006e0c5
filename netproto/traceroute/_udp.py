"""
UDP probes (:class:`UdpProber`): sent from one UDP socket, to a destination
port per probe (classic traceroute, from 33434 up) or to one port (a constant
flow, Paris traceroute: every probe has the same addresses and ports, so a
load balancer hashing them keeps them on one path).

Answers are ICMP errors quoting a probe, read in one of two ways:

- ``raw``: a raw ICMP socket (root or ``CAP_NET_RAW``), which sees every
  ICMP error on the host; an error counts only if its quote is UDP from our
  address and socket's port to the target, on a probe's port, with our
  payload;
- ``dgram``: the UDP socket's own error queue (``IP_RECVERR``), which needs
  no privilege; the kernel has matched the quote's addresses and ports to
  the socket (bound to the address the route to the target uses), and the
  payload must still be ours.

In a constant flow, only the payload tells probes apart: an error that
quotes it (Linux, and every ICMPv6 router, quote it whole) is credited to the
probe whose cookie it carries; one quoting only the UDP header (RFC 792's
minimum) to the oldest probe in flight, all of which have the same TTL
(:attr:`UdpProber.one_hop_at_a_time`).
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IHalfCloseableDescriptor, IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from netproto._linux import (
    ICMP6_FILTER,
    ICMP_FILTER,
    IP_RECVERR,
    IPV6_RECVERR,
    SO_TIMESTAMPNS,
    SOL_RAW,
    bitmap_allowing,
    extended_error,
    kernel_time,
    set_receive_buffer,
)
from netproto.ping import AUTO, DGRAM, RAW, Packet, parse_icmpv6, parse_ipv4
from netproto.traceroute._codec import BASE_PORT, DATAGRAM, udp_quote
from netproto.traceroute._trace import Trace, TracePermissionError, TraceProbe

__all__ = ["PendingErrors", "UdpProber", "set_ttl"]

log = Logger(namespace="netproto.traceroute")

_BLOCKED = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS)
_ASYNCHRONOUS = (
    errno.ECONNREFUSED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EPROTO,
    errno.EACCES,
    errno.EMSGSIZE,
)
"""What a send reports once when an ICMP error is pending on the socket."""
_READ_BATCH = 1024
_RECEIVE_BUFFER = 4 << 20
_ANCILLARY = 512
_ICMP = {4: socket.IPPROTO_ICMP, 6: socket.IPPROTO_ICMPV6}
_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}


class PendingErrors:
    """
    Sends that fail because an ICMP error is pending on the socket (any
    error on an unprivileged socket, some unreachable codes on a raw one):
    Linux reports it once, to the next send, as the error's errno.
    Such a send is tried again (the pending error cleared first), later if
    errors keep coming (a flood of them, forged or not), and given up only
    after :attr:`limit` failures in a row: then the error is the route's own.
    """

    limit = 64

    def __init__(self) -> None:
        self.failures = 0

    def clear(self, sock: socket.socket) -> None:
        """Clear a pending error of *sock* (reading ``SO_ERROR`` resets it)."""
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)

    def again(self, error: OSError, errors: tuple[int, ...]) -> bool:
        """Whether a send that failed with *error* is worth another try."""
        if error.errno not in errors:
            return False
        self.failures += 1
        return self.failures <= self.limit

    def sent(self) -> None:
        """A send went through."""
        self.failures = 0


def set_ttl(sock: socket.socket, version: int, ttl: int) -> None:
    """Set the TTL (IPv4) or unicast hop limit (IPv6) of the datagrams *sock* sends next."""
    if version == 6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)


@implementer(IReadDescriptor, IHalfCloseableDescriptor)
class _Reader:
    """A socket added to the reactor as a reader; *drain* reads what is waiting."""

    def __init__(self, reactor: Any, sock: socket.socket, drain: Callable[[], None]) -> None:
        self.reactor = reactor
        self.socket = sock
        self.drain = drain
        self.reading = False

    def start(self) -> None:
        if not self.reading:
            self.reading = True
            self.reactor.addReader(self)

    def stop(self) -> None:
        if self.reading:
            self.reading = False
            self.reactor.removeReader(self)

    def fileno(self) -> int:
        """The socket's descriptor, for the reactor."""
        return self.socket.fileno()

    def logPrefix(self) -> str:
        """How log events name this reader."""
        return "traceroute"

    def doRead(self) -> None:
        """Readable: drain (a bug must not stop the reading; it is logged)."""
        try:
            self.drain()
        except Exception:
            log.failure("unexpected error reading answers")

    def readConnectionLost(self, reason: Failure) -> None:
        """EPOLLERR without EPOLLIN: an error is queued. Read it and keep reading."""
        self.doRead()
        if self.reading and self.socket.fileno() != -1:
            self.reactor.addReader(self)

    def connectionLost(self, reason: Failure) -> None:
        """The reactor dropped this descriptor."""
        self.reading = False

    def writeConnectionLost(self, reason: Failure) -> None:
        """Never called: not a writer."""


def _route_source(version: int, target: str, interface: str | None) -> str | None:
    """
    The address this host sends from to *target* (a UDP socket's connect
    chooses it; nothing is sent), or None without a route.
    """
    with socket.socket(_FAMILY[version], socket.SOCK_DGRAM) as scratch:
        try:
            if interface is not None:
                scratch.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            scratch.connect((target, BASE_PORT))
        except OSError:
            return None
        address: str = scratch.getsockname()[0]
        return address.partition("%")[0]


def _raw_icmp(version: int) -> socket.socket:
    """A raw ICMP socket that the kernel lets ICMP errors only through to."""
    sock = socket.socket(_FAMILY[version], socket.SOCK_RAW, _ICMP[version])
    try:
        if version == 6:
            allowed = bitmap_allowing({1, 2, 3, 4}, 8)
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, allowed)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        else:
            sock.setsockopt(SOL_RAW, ICMP_FILTER, bitmap_allowing({3, 11, 12}, 1))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class UdpProber:
    """
    Sends UDP probes to *target* (IPv*version*) and reads their answers, in
    *mode* ``raw``, ``dgram`` or ``auto`` (raw when permitted). With *flow*,
    every probe goes to *port*; without, probe *n* goes to ``port + n``.

    :raises TracePermissionError: ``raw`` was asked for and is not permitted.
    :raises OSError: the socket cannot be set up (*source* not local...).
    """

    method = "udp"
    one_hop_at_a_time = False

    def __init__(
        self,
        reactor: Any,
        target: str,
        version: int,
        *,
        mode: str = AUTO,
        flow: bool = False,
        port: int,
        source: str | None = None,
        interface: str | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.reactor = reactor
        self.target = target
        self.version = version
        self.flow = flow
        self.port = port
        self.clock = clock
        if flow:
            self.method = "paris"
            self.one_hop_at_a_time = True
        self._trace: Trace | None = None
        self._ignored = 0
        self._raw: socket.socket | None = None
        self._reader: _Reader | None = None
        self._datagrams: _Reader | None = None
        self._pending = PendingErrors()
        if mode in (RAW, AUTO):
            try:
                self._raw = _raw_icmp(version)
            except PermissionError as e:
                if mode == RAW:
                    raise TracePermissionError(
                        f"cannot open a raw ICMP socket to read the answers to UDP probes: "
                        f"it needs root or CAP_NET_RAW ({e.strerror}); the unprivileged mode "
                        "(--socket dgram, or auto) reads them from the UDP socket's error queue"
                    ) from None
        self.mode = RAW if self._raw is not None else DGRAM
        self.udp = socket.socket(_FAMILY[version], socket.SOCK_DGRAM)
        try:
            self.udp.setblocking(False)
            if interface is not None:
                self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            self.source = source or _route_source(version, target, interface)
            # Bound to that address, the error queue only gets errors quoting it.
            try:
                self.udp.bind((self.source or ("::" if version == 6 else "0.0.0.0"), 0))
            except OSError:
                if source is not None:
                    raise
                self.source = None
                self.udp.bind(("::" if version == 6 else "0.0.0.0", 0))
            self.source_port = self.udp.getsockname()[1]
            if self.mode == DGRAM:
                if version == 6:
                    self.udp.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
                else:
                    self.udp.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            for listened in {self.udp, self._raw or self.udp}:
                # The kernel stamps each answer as it arrives: round trips do
                # not include the time the reactor took to read it.
                listened.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                # A raw socket sees every ICMP error on the host: room for bursts.
                set_receive_buffer(listened, _RECEIVE_BUFFER)
        except BaseException:
            self.close()
            raise
        self._reader = _Reader(reactor, self._raw or self.udp, self._drain)
        self._datagrams = None if self._raw is None else _Reader(reactor, self.udp, self._drain)

    # -- the Prober interface ----------------------------------------------

    def start(self, trace: Trace) -> None:
        """Read answers for *trace*."""
        self._trace = trace
        assert self._reader is not None
        self._reader.start()
        if self._datagrams is not None:
            self._datagrams.start()

    def send(self, probe: TraceProbe) -> bool:
        """Send *probe*; False when the kernel has no room now."""
        set_ttl(self.udp, self.version, probe.ttl)
        port = self.port if self.flow else self.port + probe.number
        self._pending.clear(self.udp)
        probe.sent_wall = time.time()
        probe.sent = self.clock()
        try:
            self.udp.sendto(probe.payload, (self.target, port))
        except OSError as e:
            if e.errno in _BLOCKED:
                return False
            if self._pending.again(e, _ASYNCHRONOUS):
                return False
            raise
        self._pending.sent()
        # Read what has come back already (one packet), so that a round trip
        # timed without a kernel timestamp is not charged with the time the
        # next sends take.
        self._drain(1)
        return True

    def forget(self, probe: TraceProbe) -> None:
        """Nothing to forget: the trace keeps the probes in flight."""

    def ignored(self) -> int:
        """Packets read that answered none of our probes."""
        return self._ignored

    def drain(self) -> None:
        """Read every answer waiting now."""
        self._drain()

    def close(self) -> None:
        """Stop reading, close the sockets (idempotent)."""
        for reader in (self._reader, self._datagrams):
            if reader is not None:
                reader.stop()
        if self._raw is not None:
            self._raw.close()
        self.udp.close()

    # -- matching ----------------------------------------------------------

    def _probe_for(self, destination: str, port: int, payload: bytes) -> TraceProbe | None:
        """The probe in flight an error quoting a datagram to *destination*:*port* is about."""
        trace = self._trace
        if trace is None or destination != self.target:
            return None
        if self.flow:
            if port != self.port:
                return None
            return next((p for p in trace.waiting() if p.payload.startswith(payload)), None)
        found = trace.probe(port - self.port)
        if found is None or not found.payload.startswith(payload):
            return None
        return found

    def _credit(
        self,
        probe: TraceProbe | None,
        source: str | None,
        packet: tuple[int, int, int],
        stamp: float | None,
    ) -> None:
        if probe is None or source is None or self._trace is None:
            self._ignored += 1
            return
        kind_type, code, info = packet
        now = self.clock()
        if stamp is not None:
            # The kernel's wall-clock arrival, when it is consistent with the
            # monotonic clock (the wall clock was not stepped meanwhile).
            kernel_rtt = stamp - probe.sent_wall
            if 0 <= kernel_rtt <= now - probe.sent:
                now = probe.sent + kernel_rtt
        self._trace.on_answer(probe, source, kind_type, code, info, now)

    # -- reading -----------------------------------------------------------

    def _drain(self, limit: int = _READ_BATCH) -> None:
        if self._raw is not None:
            self._drain_raw(self._raw, limit)
        else:
            self._drain_errors(limit)
        self._drain_datagrams(limit)

    def _drain_raw(self, sock: socket.socket, limit: int) -> None:
        for _ in range(limit):
            if sock.fileno() == -1:
                return
            try:
                data, cmsgs, _, address = sock.recvmsg(2048, _ANCILLARY)
            except BlockingIOError:
                return
            except OSError:
                continue
            if self.version == 4:
                packet = parse_ipv4(data)
                at = (data[0] & 0x0F) * 4 + 6 if data else 0
                info = int.from_bytes(data[at : at + 2], "big")
            else:
                packet = parse_icmpv6(data, address[0].partition("%")[0] if address else None)
                info = int.from_bytes(data[4:8], "big")
            self._raw_packet(packet, info, kernel_time(cmsgs))

    def _raw_packet(self, packet: Packet, info: int, stamp: float | None) -> None:
        quote = udp_quote(self.version, packet.quoted) if packet.quoted else None
        if (
            quote is None
            or not packet.checksum_ok
            or quote.source_port != self.source_port
            or (self.source is not None and quote.source != self.source)
        ):
            self._ignored += 1
            return
        probe = self._probe_for(quote.destination, quote.destination_port, quote.payload)
        self._credit(probe, packet.source, (packet.type, packet.code, info), stamp)

    def _drain_errors(self, limit: int) -> None:
        udp = self.udp
        for _ in range(limit):
            if udp.fileno() == -1:
                return
            try:
                data, cmsgs, _, address = udp.recvmsg(2048, _ANCILLARY, socket.MSG_ERRQUEUE)
            except OSError:
                break
            error = extended_error(cmsgs, self.version)
            if error is None or not address:
                self._ignored += 1
                continue
            probe = self._probe_for(address[0].partition("%")[0], address[1], bytes(data))
            self._credit(
                probe, error.offender, (error.type, error.code, error.info), kernel_time(cmsgs)
            )

    def _drain_datagrams(self, limit: int) -> None:
        """
        Datagrams back from the target's probed port: a service answered
        (a DNS server on port 53, say), which ends the trace as a port
        unreachable would. Anything else sent to our port is counted.
        """
        udp = self.udp
        for _ in range(limit):
            if udp.fileno() == -1:
                return
            try:
                _, cmsgs, _, address = udp.recvmsg(2048, _ANCILLARY)
            except BlockingIOError:
                return
            except OSError:
                continue
            probe = None
            if address and address[0].partition("%")[0] == self.target:
                probe = self._probe_for(self.target, address[1], b"")
            self._credit(probe, self.target, (DATAGRAM, 0, 0), kernel_time(cmsgs))
