"""Datagrams in batches: recvmmsg/sendmmsg, and the UDP port's batch path with every rule."""

from __future__ import annotations

import os
import socket
import sys
from types import SimpleNamespace
from typing import Any

from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto._listen import MAX_DATAGRAM, DestinationCheckingPort
from netproto._listen._mmsg import BATCH, _open, ancillary_items, batch
from netproto._listen._udp import _source
from netproto.daytime import DaytimeDatagramProtocol
from netproto.echo import EchoDatagramProtocol
from netproto.limits import Limits
from tests._servers import IPV6_SKIP, deferred, reactor, sleep, wait_until

BATCH_SKIP = None if batch() is not None else "no recvmmsg/sendmmsg here (not Linux?)"
BIG = 10**9
OPEN = Limits(udp_rate=BIG, udp_burst=BIG, udp_global_rate=BIG, udp_global_burst=BIG)


def _sender(family: int = socket.AF_INET, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket, into: list[bytes]) -> None:
    while True:
        try:
            into.append(sock.recv(70000))
        except BlockingIOError:
            return


class BatchCallTests(SynchronousTestCase):
    """:class:`~netproto._listen._mmsg.Batch` on real loopback sockets."""

    skip = BATCH_SKIP

    def setUp(self) -> None:
        self.server = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.addCleanup(self.server.close)
        self.server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.server.bind(("::", 0))
        self.server.setsockopt(socket.IPPROTO_IP, 8, 1)  # IP_PKTINFO
        self.port = self.server.getsockname()[1]

    def test_bounded_batches_in_order(self) -> None:
        """100 queued datagrams come as 64 then 36, in order, each answered to its sender."""
        one, two = _sender(), _sender()
        self.addCleanup(one.close)
        self.addCleanup(two.close)
        for i in range(100):
            (one if i % 2 else two).sendto(b"d%d" % i, ("127.0.0.1", self.port))
        b = batch()
        assert b is not None
        first = b.recv(self.server.fileno())
        second = b.recv(self.server.fileno())
        self.assertEqual(len(first), BATCH)
        self.assertEqual([d for d, _, _ in first + second], [b"d%d" % i for i in range(100)])
        self.assertEqual(b.recv(self.server.fileno()), [])
        for part in (first, second):
            sent = b.send(self.server.fileno(), [(d + b"!", name) for d, name, _ in part])
            self.assertEqual(sent[0], len(part))
            self.assertEqual(sent[2], 0)
        got_one: list[bytes] = []
        got_two: list[bytes] = []
        _drain(one, got_one)
        _drain(two, got_two)
        self.assertEqual(got_one, [b"d%d!" % i for i in range(1, 100, 2)])
        self.assertEqual(got_two, [b"d%d!" % i for i in range(0, 100, 2)])

    def test_as_recvmsg_says(self) -> None:
        """Source address and ancillary data read as ``recvmsg`` reads them."""
        b = batch()
        assert b is not None
        sender = _sender()
        self.addCleanup(sender.close)
        for _ in range(2):
            sender.sendto(b"x", ("127.0.0.1", self.port))
        _data, ancillary, _flags, addr = self.server.recvmsg(100, 256)
        ((data, name, control),) = b.recv(self.server.fileno())
        self.assertEqual(data, b"x")
        self.assertEqual(_source(name), addr[:2])
        self.assertEqual(ancillary_items(control), ancillary)

    def test_largest_datagram(self) -> None:
        """A 65,507-byte datagram comes in and goes back whole."""
        b = batch()
        assert b is not None
        sender = _sender()
        self.addCleanup(sender.close)
        payload = bytes(range(256)) * 255 + b"x" * 227
        sender.sendto(payload, ("127.0.0.1", self.port))
        ((data, name, _control),) = b.recv(self.server.fileno())
        self.assertEqual(data, payload)
        self.assertEqual(b.send(self.server.fileno(), [(data, name)]), (1, len(payload), 0))
        self.assertEqual(sender.recv(70000), payload)

    def test_refused_datagram_skipped(self) -> None:
        """A datagram the kernel refuses is counted as failed; the ones after it still go."""
        b = batch()
        assert b is not None
        sender = _sender()
        self.addCleanup(sender.close)
        sender.sendto(b"a", ("127.0.0.1", self.port))
        ((_d, name, _c),) = b.recv(self.server.fileno())
        bad = bytearray(name)
        bad[0:2] = (12345).to_bytes(2, sys.byteorder)  # no such address family
        sent = b.send(self.server.fileno(), [(b"1", name), (b"2", bytes(bad)), (b"3", name)])
        self.assertEqual(sent, (2, 2, 1))
        got: list[bytes] = []
        _drain(sender, got)
        self.assertEqual(got, [b"1", b"3"])

    def test_layouts_change_between_batches(self) -> None:
        """
        Batches of one payload size, of mixed sizes, with IPv4 (16-byte) and
        IPv6 (28-byte) addresses mixed, longer and shorter than the last: each
        datagram arrives whole at its own sender, and one longer than a
        datagram holds is counted failed.
        """
        b = batch()
        assert b is not None
        one, two = _sender(), _sender()
        self.addCleanup(one.close)
        self.addCleanup(two.close)
        one.sendto(b"?", ("127.0.0.1", self.port))
        two.sendto(b"?", ("127.0.0.1", self.port))
        (_, six_one, _), (_, six_two, _) = b.recv(self.server.fileno())
        family = socket.AF_INET.to_bytes(2, sys.byteorder)
        four_two = (
            family
            + two.getsockname()[1].to_bytes(2, "big")
            + socket.inet_aton("127.0.0.1")
            + bytes(8)
        )
        fd = self.server.fileno()
        self.assertEqual(b.send(fd, [(b"aaa", six_one)] * 4), (4, 12, 0))
        mixed = [(b"b", six_one), (b"bbbbb", four_two), (b"x" * 70000, six_one), (b"bb", six_two)]
        self.assertEqual(b.send(fd, [(b"ccc", six_two), (b"ccc", six_one)] * 3), (6, 18, 0))
        self.assertEqual(b.send(fd, mixed), (3, 8, 1))
        self.assertEqual(b.send(fd, [(b"ddd", 1, six_one), (b"ddd", 2, four_two)]), (2, 6, 0))
        got_one: list[bytes] = []
        got_two: list[bytes] = []
        _drain(one, got_one)
        _drain(two, got_two)
        self.assertEqual(got_one, [b"aaa"] * 4 + [b"ccc"] * 3 + [b"b", b"ddd"])
        self.assertEqual(got_two, [b"ccc"] * 3 + [b"bbbbb", b"bb", b"ddd"])

    def test_private_after_fork(self) -> None:
        """A forked worker's reads land in its own copy of the buffers, not in ours."""
        b = batch()
        assert b is not None
        sender = _sender()
        self.addCleanup(sender.close)
        sender.sendto(b"parent", ("127.0.0.1", self.port))
        self.assertEqual(b.recv(self.server.fileno())[0][0], b"parent")
        sender.sendto(b"child!", ("127.0.0.1", self.port))
        pid = os.fork()
        if pid == 0:  # the worker: read into its buffers, leave at once
            code = 4
            try:
                code = 0 if b.recv(self.server.fileno())[0][0] == b"child!" else 3
            finally:
                os._exit(code)
        _pid, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertEqual(b._rx_data[:6], b"parent")

    def test_unavailable(self) -> None:
        """A C library without the calls gives no batch (the port reads one by one)."""
        self.assertIsNone(_open(SimpleNamespace()))


class SourceTests(SynchronousTestCase):
    """Raw source addresses parsed as Python's socket module writes them."""

    def test_families(self) -> None:
        """IPv4, IPv6 and IPv4-mapped addresses and their ports."""
        four = socket.AF_INET.to_bytes(2, sys.byteorder) + (7).to_bytes(2, "big")
        self.assertEqual(_source(four + socket.inet_aton("10.1.2.3") + bytes(8)), ("10.1.2.3", 7))
        six = socket.AF_INET6.to_bytes(2, sys.byteorder) + (65535).to_bytes(2, "big") + bytes(4)
        for host in ("2001:db8::1", "::ffff:127.0.0.1", "::"):
            raw = six + socket.inet_pton(socket.AF_INET6, host) + bytes(4)
            self.assertEqual(_source(raw), (host, 65535))


class _Answering(EchoDatagramProtocol):
    """Echo, but a datagram ``boom`` makes ``reply`` raise."""

    def reply(self, data: bytes) -> bytes:
        if data == b"boom":
            raise ZeroDivisionError("boom")
        return data


class BatchedPortTests(TestCase):
    """The UDP port reading in batches (the subclass: one by one); every rule per datagram."""

    batched = True
    skip = BATCH_SKIP

    def listen(self, protocol: Any, interface: str = "::") -> DestinationCheckingPort:
        """A started port on *interface* port 0, stopped after the test."""
        port = DestinationCheckingPort(0, protocol, interface, MAX_DATAGRAM, reactor)
        port.batched = self.batched
        port.startListening()
        self.addCleanup(port.stopListening)
        self.assertEqual(port._batch is not None, self.batched)
        return port

    def test_many_queued_all_answered_in_order(self) -> Any:
        """120 datagrams from three sockets queued at once (two batches): each answered, in order.

        (More would overflow a default receive buffer: loopback datagrams are
        dropped, not delayed, when it is full.)
        """

        async def run() -> None:
            protocol = EchoDatagramProtocol(reactor, OPEN)
            number = self.listen(protocol).getHost().port
            senders = [_sender() for _ in range(3)]
            for sock in senders:
                self.addCleanup(sock.close)
            for i in range(120):
                senders[i % 3].sendto(b"n%d" % i, ("127.0.0.1", number))
            got: list[list[bytes]] = [[], [], []]

            def done() -> bool:
                for sock, into in zip(senders, got, strict=True):
                    _drain(sock, into)
                return sum(map(len, got)) >= 120

            await wait_until(done, timeout=30)
            for k in range(3):
                self.assertEqual(got[k], [b"n%d" % i for i in range(k, 120, 3)])
            values = protocol.counters.values
            self.assertEqual(values["udp_datagrams_received"], 120)
            self.assertEqual(values["udp_replies_sent"], 120)
            self.assertEqual(values["udp_bytes_sent"], values["udp_bytes_received"])

        return deferred(run())

    def test_rules_per_datagram(self) -> Any:
        """In one queue: a served source port, a broadcast, a rate-limited source, a raiser."""

        async def run() -> None:
            served: set[int] = set()
            limits = Limits(udp_rate=0.001, udp_burst=5, udp_global_rate=BIG, udp_global_burst=BIG)
            protocol = _Answering(reactor, limits, served_ports=served)
            number = self.listen(protocol).getHost().port
            looped, limited, other = _sender(), _sender(), _sender(host="127.0.0.2")
            for sock in (looped, limited, other):
                self.addCleanup(sock.close)
            served.add(looped.getsockname()[1])
            looped.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            for i in range(20):
                limited.sendto(b"l%d" % i, ("127.0.0.1", number))
                looped.sendto(b"loop", ("127.0.0.1", number))
                looped.sendto(b"fraggle", ("127.255.255.255", number))
                other.sendto(b"boom" if i == 3 else b"o%d" % i, ("127.0.0.1", number))
            values = protocol.counters.values
            await wait_until(lambda: values["udp_datagrams_received"] >= 60, timeout=30)
            await wait_until(lambda: values["udp_replies_sent"] >= 9, timeout=30)
            await sleep(0.05)
            got_limited: list[bytes] = []
            got_other: list[bytes] = []
            got_looped: list[bytes] = []
            _drain(limited, got_limited)
            _drain(other, got_other)
            _drain(looped, got_looped)
            self.assertEqual(got_limited, [b"l%d" % i for i in range(5)])
            self.assertEqual(got_other, [b"o0", b"o1", b"o2", b"o4"])  # boom: a token, no reply
            self.assertEqual(got_looped, [])
            self.assertEqual(values["udp_refused_served"], 20)
            self.assertEqual(values["udp_refused_destination"], 20)
            self.assertEqual(values["udp_rate_limited"], 30)
            self.assertEqual(values["udp_replies_sent"], 9)
            self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

        return deferred(run())

    def test_daytime_ipv6(self) -> Any:
        """Daytime over IPv6 on a dual-stack port: one line per datagram, to the right peer."""
        if IPV6_SKIP:
            raise self.skipTest(IPV6_SKIP)

        async def run() -> None:
            protocol = DaytimeDatagramProtocol(reactor, OPEN)
            number = self.listen(protocol).getHost().port
            sender = _sender(socket.AF_INET6, "::1")
            self.addCleanup(sender.close)
            for _ in range(10):
                sender.sendto(b"", ("::1", number))
            got: list[bytes] = []

            def done() -> bool:
                _drain(sender, got)
                return len(got) >= 10

            await wait_until(done, timeout=30)
            self.assertEqual(len(set(got) - {got[0], got[-1]}), 0)
            self.assertTrue(got[0].endswith(b"\r\n"))

        return deferred(run())


class UnbatchedPortTests(BatchedPortTests):
    """The same, with the port forced to read one datagram per ``recvmsg`` (the fallback)."""

    batched = False
    skip = None
