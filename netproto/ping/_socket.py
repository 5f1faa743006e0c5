"""
ICMP sockets for Twisted: a raw socket (root or CAP_NET_RAW) or a Linux
unprivileged ping socket (``SOCK_DGRAM``, ``IPPROTO_ICMP``, when
``net.ipv4.ping_group_range`` admits the caller's group), read by the reactor
in batches and matched through a :class:`~netproto.ping.ProbeTable`.

One :class:`IcmpSocket` per address family serves any number of probes to
any number of targets. What it reads goes, classified, to the owner of the
probe it concerns: ``owner.on_reply(probe, ttl, size, now)`` for a credited
reply, ``owner.on_packet(verdict, probe, packet, now)`` for anything else
(duplicates, late replies, errors, damage); probes whose time is up go to
``owner.on_expired(probe)``, probes that cannot be sent to
``owner.on_send_error(probe, error)``.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
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
    IP_RECVTTL,
    IPV6_RECVERR,
    SOL_RAW,
    bitmap_allowing,
    extended_error,
    set_receive_buffer,
)
from netproto.ping._batch import BatchReceiver
from netproto.ping._codec import ERROR, Packet, parse_icmpv4, parse_icmpv6, parse_ipv4
from netproto.ping._dispatch import dispatch, drain_raw4_batched, take_raw4, taken, taken_raw
from netproto.ping._open import (
    AUTO,
    DGRAM,
    RAW,
    SO_ATTACH_FILTER,
    PingPermissionError,
    open_icmp_socket,
    reply_filter,
)
from netproto.ping._probes import NOT_OURS, Probe, ProbeTable, TableFullError
from netproto.util import checksum

__all__ = [
    "AUTO",
    "DGRAM",
    "RAW",
    "IcmpSocket",
    "PingPermissionError",
    "open_icmp_socket",
]

log = Logger(namespace="netproto.ping")
"""Events of this module, under the public namespace ``netproto.ping``."""

_BLOCKED = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS)
_READ_BATCH = 4096
_pack_header = struct.Struct("!BBHHH").pack


@implementer(IReadDescriptor, IHalfCloseableDescriptor)
class IcmpSocket:
    """
    One ICMP socket of one family and mode, added to the reactor as a reader.

    *clock* gives the monotonic time in seconds used for RTTs (read right
    before each send and right after each receive); it defaults to
    :func:`time.monotonic`. The reactor schedules probe timeouts.
    """

    def __init__(
        self,
        reactor: Any,
        family: int = socket.AF_INET,
        mode: str = AUTO,
        *,
        ttl: int | None = None,
        source: str | None = None,
        interface: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        receive_buffer: int = 8 << 20,
        sock: socket.socket | None = None,
    ) -> None:
        self.reactor = reactor
        self.family = family
        self.version = 6 if family == socket.AF_INET6 else 4
        self.clock = clock
        if sock is None:
            sock, mode = open_icmp_socket(family, mode)
        self.mode = mode
        self.socket = sock
        self._raw4 = mode == RAW and self.version == 4
        self._bufsize = 2048
        self._largest = 0
        self._sendto = sock.sendto
        self._receiver: BatchReceiver | None = None
        self._batched = True
        """Whether to try ``recvmmsg`` (raw IPv4, while a sweep reads this socket)."""
        self._timer: Any = None
        self._timer_at = 0.0
        self._reading = False
        self._errors_waiting = False
        self._closed = False
        self.send_errors = 0
        self.sweeps: list[Any] = []
        """Stateless sweeps reading this socket: each may ``take_raw4(data, now)`` or
        ``take(packet, now)`` a packet whose proof verifies, before the table sees it."""
        try:
            self._configure(ttl, source, interface, receive_buffer)
        except BaseException:
            sock.close()
            raise
        if mode == DGRAM:
            ident = sock.getsockname()[1]
        else:
            ident = int.from_bytes(os.urandom(2), "big")
        self.table = ProbeTable(ident, first_seq=int.from_bytes(os.urandom(2), "big"))
        self._addresses: dict[str, tuple[tuple[str, int], bytes]] = {}
        self.filtered = False
        """True when the kernel drops other identifiers' replies for us (raw sockets)."""
        self.set_ident(ident)

    def set_ident(self, ident: int) -> None:
        """
        Use identifier *ident* from now on (raw sockets only: a ping socket's
        identifier is its port). On a raw socket, a classic BPF filter makes
        the kernel drop echo replies carrying any other identifier, as iputils
        does: on a busy host, other pingers' replies then cost us nothing.
        """
        if self.mode == DGRAM:
            if ident != self.table.ident:
                raise ValueError("a ping socket's identifier is its port")
            return
        self.table.ident = ident & 0xFFFF
        try:
            self.socket.setsockopt(
                socket.SOL_SOCKET, SO_ATTACH_FILTER, reply_filter(self.version, self.table.ident)
            )
        except (OSError, ValueError) as e:
            self.filtered = False
            log.info("no kernel filter on {socket}: {error}", socket=self, error=e)
        else:
            self.filtered = True

    def _configure(
        self, ttl: int | None, source: str | None, interface: str | None, receive_buffer: int
    ) -> None:
        sock = self.socket
        v6 = self.version == 6
        sock.setblocking(False)
        set_receive_buffer(sock, receive_buffer)
        if interface is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        if ttl is not None:
            if v6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        if self.mode == RAW:
            if v6:
                allowed = bitmap_allowing({129, 1, 2, 3, 4}, 8)
                sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, allowed)
            else:
                sock.setsockopt(SOL_RAW, ICMP_FILTER, bitmap_allowing({0, 3, 11, 12}, 1))
        else:
            if v6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        if v6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        if source is not None or self.mode == DGRAM:
            sock.bind((source or ("::" if v6 else "0.0.0.0"), 0))

    # -- sending ---------------------------------------------------------

    def send(self, probe: Probe, timeout: float) -> bool:
        """
        Send *probe* and wait up to *timeout* seconds for its answer. Return
        False, with nothing sent, when the kernel has no room now (EAGAIN,
        ENOBUFS) or 65,536 probes are waiting: try again later. A send that
        fails for good (no route...) is reported to
        ``probe.owner.on_send_error(probe, error)`` and counts as done.
        """
        # send_many's work for one probe, without its loop: a fast ping's path.
        table = self.table
        try:
            seq = table.next_seq()
        except TableFullError:
            return False
        payload = probe.payload
        ident = table.ident
        if self.version == 4:
            # RFC 1071 over header and payload, the payload read once: its
            # words' sum is the big integer of its bytes modulo 0xffff.
            words = int.from_bytes(payload, "big") << (8 * (len(payload) & 1))
            total = 0xFFFF - ((0x0800 + ident + seq + words) % 0xFFFF or 0xFFFF)
            data = _pack_header(8, 0, total, ident, seq) + payload
        else:
            data = _pack_header(128, 0, 0, ident, seq) + payload
        target = probe.target
        address = self._addresses.get(target)
        if address is None:
            address = self._addresses[target] = (
                (target, 0),
                socket.inet_pton(self.family, target),
            )
        probe.packed = address[1]
        now = self.clock()
        try:
            self._sendto(data, address[0])
        except OSError as e:
            if e.errno in _BLOCKED:
                return False
            self.send_errors += 1
            probe.owner.on_send_error(probe, e)
            return True
        table.add(probe, seq, now, timeout)
        if len(payload) + 8 > self._largest:
            self._largest = len(payload) + 8
            self._bufsize = max(self._bufsize, self._largest + 1024)
        if self._timer is None or probe.deadline < self._timer_at:
            self._schedule(probe.deadline, now)
        return True

    def send_many(self, probes: list[Probe], timeout: float) -> int:
        """
        Send *probes* in order, as :meth:`send` does; return how many were
        dealt with (sent, or failed for good). The rest found the kernel or
        the table full: send them later.
        """
        table = self.table
        next_seq = table.next_seq
        add = table.add
        ident = table.ident
        addresses = self._addresses
        clock = self.clock
        sendto = self._sendto
        pack = _pack_header
        v4 = self.version == 4
        kind_type = 8 if v4 else 128
        done = 0
        now = 0.0
        earliest: float | None = None
        for probe in probes:
            try:
                seq = next_seq()
            except TableFullError:
                break
            payload = probe.payload
            if v4:
                total = checksum(pack(8, 0, 0, ident, seq) + payload)
                data = pack(8, 0, total, ident, seq) + payload
            else:
                data = pack(kind_type, 0, 0, ident, seq) + payload
            target = probe.target
            address = addresses.get(target)
            if address is None:
                address = addresses[target] = ((target, 0), socket.inet_pton(self.family, target))
            probe.packed = address[1]
            now = clock()
            try:
                sendto(data, address[0])
            except OSError as e:
                if e.errno in _BLOCKED:
                    break
                self.send_errors += 1
                done += 1
                probe.owner.on_send_error(probe, e)
                continue
            add(probe, seq, now, timeout)
            done += 1
            if earliest is None:
                earliest = probe.deadline
        if done:
            size = len(probes[0].payload) + 8
            if size > self._largest:
                self._largest = size
                self._bufsize = max(self._bufsize, size + 1024)
            if earliest is not None and (self._timer is None or earliest < self._timer_at):
                self._schedule(earliest, now)
        return done

    @staticmethod
    def blocked(error: OSError) -> bool:
        """Whether a send failed only for want of room now (EAGAIN, ENOBUFS): try later."""
        return error.errno in _BLOCKED

    # -- timeouts --------------------------------------------------------

    def watch(self, deadline: float, now: float) -> None:
        """Make sure the timer fires by *deadline* (monotonic seconds; *now* is the time)."""
        if self._timer is None or deadline < self._timer_at:
            self._schedule(deadline, now)

    def _schedule(self, deadline: float, now: float) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.reactor.callLater(max(0.0, deadline - now), self._expire)

    def _expire(self) -> None:
        self._timer = None
        self.drain()
        for probe in self.table.expire(self.clock()):
            if self._closed:
                return
            probe.owner.on_expired(probe)
        if self._closed:
            return
        following = self.table.next_deadline()
        if following is not None and self._timer is None:
            self._schedule(following, self.clock())

    # -- receiving -------------------------------------------------------

    def start(self) -> None:
        """Start reading (idempotent)."""
        if not self._reading:
            self._reading = True
            self.reactor.addReader(self)

    def close(self) -> None:
        """
        Stop reading, cancel the timer, close the socket (idempotent). An owner
        may call this from one of its callbacks, in the middle of a read: the
        read stops at that packet.
        """
        self._closed = True
        if self._reading:
            self._reading = False
            self.reactor.removeReader(self)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.socket.close()

    def fileno(self) -> int:
        """The socket's descriptor, for the reactor."""
        return self.socket.fileno()

    def logPrefix(self) -> str:
        """How log events name this socket."""
        return f"IcmpSocket({self.mode}, IPv{self.version})"

    def connectionLost(self, reason: Failure) -> None:
        """The reactor dropped this descriptor: reading has stopped."""
        self._reading = False

    def readConnectionLost(self, reason: Failure) -> None:
        """
        The reactor saw EPOLLERR without EPOLLIN: an ICMP error is waiting
        on a ping socket's error queue. Read it and keep reading.
        """
        self._errors_waiting = True
        self.drain()
        if self._reading and not self._closed:
            self.reactor.addReader(self)

    def writeConnectionLost(self, reason: Failure) -> None:
        """Never called: this descriptor is not a writer."""

    def doRead(self) -> None:
        """The socket is readable: drain it."""
        try:
            self.drain()
        except Exception:
            # A bug here must not stop the reading (Twisted would drop the
            # descriptor): log it and carry on with the next packet.
            log.failure("unexpected error reading {socket}", socket=self)

    def drain(self, limit: int = _READ_BATCH) -> int:
        """
        Read and dispatch up to *limit* waiting packets; return how many were
        read. A probe's owner that closes this socket while told about a
        packet (the last reply of a ping) ends the read there.
        """
        if self._closed or self.socket.fileno() == -1:
            return 0
        if self._raw4:
            if limit == 1 and not self.sweeps:
                return self._read_one()
            count = self._drain_raw4(limit)
        else:
            count = self._drain_msg(limit)
        if self._closed:
            return count
        if self.mode == DGRAM and (
            self._errors_waiting or self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        ):
            # An ICMP error queued on a ping socket also sets the socket's
            # error, which recv or SO_ERROR report (once): only then is the
            # error queue worth a read.
            self._errors_waiting = False
            count += self._drain_errors(limit)
            if self._closed:
                return count
        if not self.table.pending:
            # Nothing waits: keep no old probes in the deadline queues. (The
            # timer stays: cancelling and re-arming it for every probe of a
            # fast ping costs more than letting it fire once for nothing.)
            self.table.forget_deadlines()
        return count

    def _read_one(self) -> int:
        """:meth:`drain` of one raw IPv4 packet: after each send of a fast ping."""
        try:
            data = self.socket.recv(self._bufsize)
        except BlockingIOError:
            return 0
        except OSError:
            return 1
        now = self.clock()
        table = self.table
        answered = table.fast_reply(data, now) if table.pending else None
        if answered is not None:
            answered.owner.on_reply(answered, data[8], len(data) - 20, now)
        else:
            take_raw4(self, data, now)
        if not self._closed and not table.pending:
            table.forget_deadlines()
        return 1

    def _drain_raw4(self, limit: int) -> int:
        if self.sweeps:
            return drain_raw4_batched(self, limit)
        recv = self.socket.recv
        clock = self.clock
        table = self.table
        fast = table.fast_reply
        classify = table.classify
        bufsize = self._bufsize
        count = 0
        while count < limit:
            try:
                data = recv(bufsize)
            except BlockingIOError:
                break
            except OSError:
                count += 1
                continue
            now = clock()
            count += 1
            answered = fast(data, now) if table.pending else None
            if answered is not None:
                # fast_reply takes only IHL-5 packets: TTL at 8, ICMP after 20.
                answered.owner.on_reply(answered, data[8], len(data) - 20, now)
            else:
                sweeps = self.sweeps
                if sweeps and (
                    sweeps[0].take_raw4(data, now)
                    if len(sweeps) == 1
                    else taken_raw(sweeps, data, now)
                ):
                    if self._closed:
                        break
                    continue
                packet = parse_ipv4(data)
                if sweeps and taken(sweeps, packet, now):
                    if self._closed:
                        break
                    continue
                verdict, probe = classify(packet, now)
                if probe is None:
                    continue
                dispatch(verdict, probe, packet, now)
            if self._closed:
                break
        return count

    def _drain_msg(self, limit: int) -> int:
        recvmsg = self.socket.recvmsg
        clock = self.clock
        classify = self.table.classify
        v6 = self.version == 6
        ancillary = socket.CMSG_SPACE(4)
        count = 0
        while count < limit:
            try:
                data, cmsgs, _, address = recvmsg(self._bufsize, ancillary)
            except BlockingIOError:
                break
            except OSError:
                # A ping socket reports a pending ICMP error once through
                # recv (EHOSTUNREACH...); the error queue has the details.
                self._errors_waiting = True
                count += 1
                continue
            now = clock()
            count += 1
            ttl = None
            for _, kind, value in cmsgs:
                if len(value) >= 4 and kind in (socket.IPV6_HOPLIMIT, socket.IP_TTL):
                    ttl = int.from_bytes(value[:4], sys.byteorder)
            source = address[0].partition("%")[0] if address else None
            if v6:
                packet = parse_icmpv6(data, source, ttl)
            else:
                packet = parse_icmpv4(data, source, ttl)
            if self.sweeps and taken(self.sweeps, packet, now):
                if self._closed:
                    break
                continue
            verdict, probe = classify(packet, now)
            if probe is not None:
                dispatch(verdict, probe, packet, now)
                if self._closed:
                    break
        return count

    def _drain_errors(self, limit: int) -> int:
        """Read a ping socket's error queue: ICMP errors about our requests."""
        count = 0
        while count < limit:
            try:
                data, cmsgs, _, address = self.socket.recvmsg(
                    self._bufsize, 512, socket.MSG_ERRQUEUE
                )
            except OSError:
                break
            now = self.clock()
            count += 1
            packet = self._error_packet(data, cmsgs, address)
            if packet is None:
                continue
            if self.sweeps and taken(self.sweeps, packet, now):
                if self._closed:
                    break
                continue
            verdict, probe = self.table.classify(packet, now)
            if probe is not None and verdict is not NOT_OURS:
                dispatch(verdict, probe, packet, now)
                if self._closed:
                    break
        return count

    def _error_packet(
        self, data: bytes, cmsgs: list[tuple[int, int, bytes]], address: Any
    ) -> Packet | None:
        error = extended_error(cmsgs, self.version)
        if error is None or len(data) < 8:
            return None
        ident, seq = struct.unpack_from("!HH", data, 4)
        target = address[0].partition("%")[0] if address else None
        return Packet(
            ERROR,
            source=error.offender,
            type=error.type,
            code=error.code,
            ident=ident,
            seq=seq,
            payload=bytes(data[8:]),
            target=target,
            size=len(data),
        )
