"""
:class:`netproto.ping.Ping` and :class:`netproto.ping.Sweep` driven by a fake
ICMP socket and a fake clock: counts, intervals, timeouts, deadlines, rate
limits, duplicates, errors, stopping, async iteration.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from netproto.ping import (
    DGRAM,
    RAW,
    IcmpSocket,
    PingClient,
    PingPermissionError,
    ProbeResult,
    Statistics,
)
from netproto.ping import _open as _icmpopen
from netproto.util import checksum
from tests._icmp_packets import icmp, icmp_error, ipv4

US = "127.0.0.1"


class FakeSocket:
    """
    Enough of a raw IPv4 ICMP socket: records what is sent, and lets a test
    decide what comes back (by default, a reply from the target at once, as
    loopback does).
    """

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.inbox: deque[bytes] = deque()
        self.options: list[tuple[Any, ...]] = []
        self.failures: list[OSError] = []
        self.answer: Callable[[bytes, str], list[bytes]] = self.echo
        self.closed = False
        self.deepest = 0

    @staticmethod
    def echo(request: bytes, target: str) -> list[bytes]:
        """The reply a host sends: type 0, same id, seq and payload."""
        reply = bytearray(request)
        reply[0] = 0
        struct.pack_into("!H", reply, 2, 0)
        struct.pack_into("!H", reply, 2, checksum(reply))
        return [ipv4(target, US, bytes(reply))]

    def setblocking(self, flag: bool) -> None:
        pass

    def setsockopt(self, *args: Any) -> None:
        self.options.append(args)

    def getsockopt(self, *args: Any) -> int:
        return 0

    def bind(self, address: tuple[str, int]) -> None:
        self.bound = address

    def getsockname(self) -> tuple[str, int]:
        return ("0.0.0.0", 4321)

    def fileno(self) -> int:
        return -1 if self.closed else 99

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((data, address))
        self.inbox.extend(self.answer(data, address[0]))
        self.deepest = max(self.deepest, len(self.inbox))
        return len(data)

    def recv(self, size: int) -> bytes:
        if not self.inbox:
            raise BlockingIOError(errno.EAGAIN, "nothing")
        return self.inbox.popleft()[:size]

    def close(self) -> None:
        self.closed = True


class Harness:
    """A client on a MemoryReactorClock whose IPv4 socket is a FakeSocket."""

    def __init__(self) -> None:
        self.reactor = MemoryReactorClock()
        self.fake = FakeSocket()
        self.client = PingClient(self.reactor, RAW, clock=self.reactor.seconds)
        sock = IcmpSocket(
            self.reactor, socket.AF_INET, RAW, clock=self.reactor.seconds, sock=self.fake
        )  # type: ignore[arg-type]
        sock.start()
        self.client._sockets[4] = sock
        self.socket = sock
        self.results: list[ProbeResult] = []

    def seqs(self) -> list[int]:
        return [struct.unpack("!H", data[6:8])[0] for data, _ in self.fake.sent]


class FakePingSocket(FakeSocket):
    """
    Enough of a Linux ping socket (``SOCK_DGRAM``, ``IPPROTO_ICMP``): replies
    come without an IP header through ``recvmsg``, and, as on a real socket,
    every call on it fails with ``EBADF`` once it is closed.
    """

    @staticmethod
    def echo(request: bytes, target: str) -> list[bytes]:
        """The reply as a ping socket delivers it: the ICMP message alone."""
        return [FakeSocket.echo(request, target)[0][20:]]

    def __init__(self) -> None:
        super().__init__()
        self.answer = self.echo
        self.targets: deque[str] = deque()

    def _check_open(self) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "Bad file descriptor")

    def getsockopt(self, *args: Any) -> int:
        self._check_open()
        return 0

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        self._check_open()
        before = len(self.inbox)
        sent = super().sendto(data, address)
        self.targets.extend([address[0]] * (len(self.inbox) - before))
        return sent

    def recvmsg(self, size: int, ancillary: int = 0, flags: int = 0) -> Any:
        self._check_open()
        if flags or not self.inbox:
            raise BlockingIOError(errno.EAGAIN, "nothing")
        return self.inbox.popleft()[:size], [], 0, (self.targets.popleft(), 0)


class PingSocketTests(SynchronousTestCase):
    """A ping on an unprivileged ping socket whose owner closes it as the last reply comes."""

    def test_closed_by_the_last_reply(self) -> None:
        """
        ``ping()`` closes its client when the last reply is credited, inside
        the socket's read: the read stops there, without touching the closed
        socket (it raised EBADF from ``drain()``), for 2, 3 and 4 probes.
        """
        from netproto import ping as ping_module
        from netproto.ping import _client as client_module

        for count in (2, 3, 4):
            reactor = MemoryReactorClock()
            fake = FakePingSocket()
            client = PingClient(reactor, DGRAM, clock=reactor.seconds)
            sock = IcmpSocket(reactor, socket.AF_INET, DGRAM, clock=reactor.seconds, sock=fake)  # type: ignore[arg-type]
            sock.start()
            client._sockets[4] = sock
            self.patch(client_module, "PingClient", lambda *a, c=client, **k: c)
            done = ping_module.ping(reactor, US, count=count, interval=1.0)
            for _ in range(count - 1):
                reactor.advance(1.0)
            summary = self.successResultOf(done)
            self.assertEqual((summary.transmitted, summary.received), (count, count))
            self.assertTrue(fake.closed)
            self.assertEqual(sock.drain(), 0)
            sock.doRead()
            sock.readConnectionLost(None)  # type: ignore[arg-type]


class PingTests(SynchronousTestCase):
    """One host."""

    def setUp(self) -> None:
        self.h = Harness()

    def test_count_and_interval(self) -> None:
        """-c 3 -i 1: probes at 0, 1, 2 s; all answered; done right after the third."""
        h = self.h
        ping = h.client.ping(US, count=3, interval=1.0, on_result=h.results.append)
        self.assertEqual(len(h.fake.sent), 1)
        h.reactor.advance(0.999)
        self.assertEqual(len(h.fake.sent), 1)
        h.reactor.advance(0.001)
        h.reactor.advance(1.0)
        self.assertEqual(len(h.fake.sent), 3)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.transmitted, summary.received, summary.loss), (3, 3, 0.0))
        self.assertEqual([r.seq for r in h.results], [1, 2, 3])
        self.assertEqual({r.kind for r in h.results}, {"reply"})
        self.assertEqual(h.results[0].bytes, 64)
        self.assertEqual(h.results[0].ttl, 64)
        self.assertEqual(h.fake.sent[0][1], (US, 0))
        self.assertEqual(len(set(h.seqs())), 3)

    def test_timeout(self) -> None:
        """Unanswered probes time out after -W; the summary shows 100% loss."""
        h = self.h
        h.fake.answer = lambda data, target: []
        ping = h.client.ping(US, count=2, interval=1.0, timeout=5.0, on_result=h.results.append)
        h.reactor.advance(1.0)
        h.reactor.advance(4.0)
        self.assertEqual([r.kind for r in h.results], ["timeout"])
        self.assertNoResult(ping.done)
        h.reactor.advance(1.0)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.transmitted, summary.received, summary.loss), (2, 0, 100.0))
        self.assertIsNone(summary.avg)

    def test_late_reply_after_timeout(self) -> None:
        """A reply after its probe timed out is late, not received."""
        h = self.h
        held: list[bytes] = []

        def hold(data: bytes, target: str) -> list[bytes]:
            held.extend(FakeSocket.echo(data, target))
            return []

        h.fake.answer = hold
        ping = h.client.ping(US, count=2, interval=1.0, timeout=0.5, on_result=h.results.append)
        h.reactor.advance(0.5)
        h.fake.inbox.append(held.pop(0))
        h.reactor.advance(0.5)
        h.fake.answer = FakeSocket.echo
        h.reactor.advance(0.5)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.received, summary.late), (0, 1))
        self.assertEqual([r.kind for r in h.results], ["timeout", "late", "timeout"])

    def test_duplicates(self) -> None:
        """Two copies of a reply: one received, one duplicate, flagged in the results."""
        h = self.h
        h.fake.answer = lambda data, target: FakeSocket.echo(data, target) * 2
        ping = h.client.ping(US, count=1, on_result=h.results.append)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.received, summary.duplicates), (1, 0))
        h2 = Harness()
        h2.fake.answer = lambda data, target: []
        ping = h2.client.ping(US, count=2, interval=1.0, on_result=h2.results.append)
        h2.fake.inbox.extend(FakeSocket.echo(h2.fake.sent[0][0], US) * 2)
        h2.socket.doRead()
        h2.reactor.advance(1.0)
        h2.fake.inbox.extend(FakeSocket.echo(h2.fake.sent[1][0], US))
        h2.socket.doRead()
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.received, summary.duplicates), (2, 1))
        self.assertEqual([r.kind for r in h2.results], ["reply", "duplicate", "reply"])

    def test_error_reported(self) -> None:
        """A Destination Host Unreachable quoting our probe is an error result."""
        h = self.h

        def unreachable(data: bytes, target: str) -> list[bytes]:
            quoted = ipv4(US, target, data)
            return [ipv4("127.0.0.9", US, icmp_error(3, 1, quoted))]

        h.fake.answer = unreachable
        ping = h.client.ping(US, count=1, timeout=1.0, on_result=h.results.append)
        h.reactor.advance(1.0)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.received, summary.errors), (0, 1))
        self.assertEqual(h.results[0].kind, "error")
        self.assertEqual(h.results[0].source, "127.0.0.9")
        self.assertEqual(h.results[0].error, "Destination Host Unreachable")

    def test_send_errors(self) -> None:
        """EAGAIN retries shortly; a hard error (no route) is a send-error result."""
        h = self.h
        h.fake.failures = [
            BlockingIOError(errno.EAGAIN, "full"),
            OSError(errno.EHOSTUNREACH, "No route to host"),
        ]
        ping = h.client.ping(US, count=2, interval=1.0, on_result=h.results.append)
        self.assertEqual(h.fake.sent, [])
        h.reactor.advance(0.001)
        self.assertEqual(h.results[0].kind, "send-error")
        self.assertEqual(h.results[0].error, "No route to host")
        h.reactor.advance(1.0)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.transmitted, summary.received, summary.errors), (2, 1, 1))

    def test_deadline_with_count(self) -> None:
        """-c 2 -w 10: keep probing until two replies (ping(8)'s rule), here the third probe."""
        h = self.h
        answers = iter([False, True, True, True])
        h.fake.answer = lambda data, target: FakeSocket.echo(data, target) if next(answers) else []
        ping = h.client.ping(US, count=2, interval=1.0, timeout=0.5, deadline=10.0)
        h.reactor.advance(1.0)
        h.reactor.advance(1.0)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.transmitted, summary.received), (3, 2))

    def test_deadline_stops(self) -> None:
        """-w 2.5 with no count: probes at 0, 1, 2, then the summary at 2.5 s."""
        h = self.h
        ping = h.client.ping(US, count=None, interval=1.0, deadline=2.5)
        for _ in range(5):
            h.reactor.advance(0.5)
        summary = self.successResultOf(ping.done)
        self.assertEqual((summary.transmitted, summary.received), (3, 3))
        self.assertEqual(
            [c for c in h.reactor.getDelayedCalls() if c.func.__name__ != "_expire"], []
        )
        h.reactor.advance(10.0)
        self.assertEqual(h.reactor.getDelayedCalls(), [])

    def test_stop_ignores_what_follows(self) -> None:
        """After stop(), the summary is fixed: a late reply changes nothing."""
        h = self.h
        h.fake.answer = lambda data, target: []
        ping = h.client.ping(US, count=None, interval=1.0)
        ping.stop()
        summary = self.successResultOf(ping.done)
        h.fake.inbox.extend(FakeSocket.echo(h.fake.sent[0][0], US))
        h.socket.doRead()
        self.assertEqual(ping.summary().received, 0)
        self.assertEqual(summary.transmitted, 1)
        ping.stop()

    def test_async_iteration(self) -> None:
        """``async for`` yields every result in order, then ends."""
        h = self.h
        ping = h.client.ping(US, count=3, interval=1.0)
        seen: list[int] = []

        async def consume() -> int:
            async for result in ping:
                seen.append(result.seq)
            return len(seen)

        d = ensureDeferred(consume())
        h.reactor.advance(1.0)
        h.reactor.advance(1.0)
        self.assertEqual(self.successResultOf(d), 3)
        self.assertEqual(seen, [1, 2, 3])

    def test_interval_zero_bursts(self) -> None:
        """-i 0: answered probes follow each other at once, a bounded burst per turn."""
        h = self.h
        ping = h.client.ping(US, count=1000, interval=0.0)
        self.assertEqual(len(h.fake.sent), 256)
        h.reactor.advance(0)
        h.reactor.advance(0)
        h.reactor.advance(0)
        self.assertEqual(self.successResultOf(ping.done).received, 1000)

    def test_request_checksums(self) -> None:
        """Every request sent sums to 0 (RFC 1071), for even and odd payload sizes alike."""
        for size in (0, 1, 7, 8, 9, 55, 56, 57, 1001):
            h = Harness()
            ping = h.client.ping(US, count=5, interval=0.0, size=size)
            self.assertEqual(self.successResultOf(ping.done).received, 5)
            self.assertEqual(len(h.fake.sent), 5)
            for data, _ in h.fake.sent:
                self.assertEqual(len(data), 8 + size)
                self.assertEqual(checksum(data), 0, size)

    def test_failing_consumer(self) -> None:
        """An on_result that raises stops the ping; done fails with its exception."""
        h = self.h

        def broken(result: ProbeResult) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        ping = h.client.ping(US, count=5, interval=1.0, on_result=broken)
        self.failureResultOf(ping.done, BrokenPipeError)
        h.reactor.advance(5.0)
        self.assertEqual(len(h.fake.sent), 1)

    def test_statistics(self) -> None:
        """min/avg/max/mdev as ping(8) computes them (mdev: the standard deviation)."""
        stats = Statistics("x", transmitted=4, received=3, rtts=[0.001, 0.002, 0.006])
        summary = stats.summary(1.0)
        self.assertEqual((summary.min, summary.max), (0.001, 0.006))
        self.assertAlmostEqual(summary.avg or 0, 0.003)
        self.assertAlmostEqual(summary.mdev or 0, ((0.002**2 + 0.001**2 + 0.003**2) / 3) ** 0.5)
        self.assertEqual(summary.loss, 25.0)

    def test_client_close(self) -> None:
        """Closing the client closes its sockets and cancels their timers."""
        h = self.h
        h.fake.answer = lambda data, target: []
        h.client.ping(US, count=1, timeout=10.0)
        h.client.close()
        self.assertTrue(h.fake.closed)
        self.assertEqual(h.reactor.getDelayedCalls(), [])


class SweepTests(SynchronousTestCase):
    """Many hosts."""

    def setUp(self) -> None:
        self.h = Harness()

    def test_alive_unreachable_error(self) -> None:
        """
        One target answers, one is silent, one gets an unreachable: three
        verdicts, the reply's and the error's at once, the silent one's when
        its window closes.
        """
        h = self.h

        def answer(data: bytes, target: str) -> list[bytes]:
            if target == "127.0.0.2":
                return FakeSocket.echo(data, target)
            if target == "127.0.0.4":
                return [ipv4("127.0.0.9", US, icmp_error(3, 1, ipv4(US, target, data)))]
            return []

        h.fake.answer = answer
        hosts: list[Any] = []
        sweep = h.client.sweep(
            ["127.0.0.2", "127.0.0.3", "127.0.0.4"], timeout=1.0, on_host=hosts.append
        )
        self.assertEqual(sorted(r.host for r in hosts), ["127.0.0.2", "127.0.0.4"])
        h.reactor.advance(1.0)
        summary = self.successResultOf(sweep.done)
        self.assertEqual((summary.targets, summary.alive, summary.unreachable), (3, 1, 2))
        by_host = {r.host: r for r in hosts}
        self.assertTrue(by_host["127.0.0.2"].alive)
        self.assertIsNotNone(by_host["127.0.0.2"].rtt)
        self.assertFalse(by_host["127.0.0.3"].alive)
        self.assertIsNone(by_host["127.0.0.3"].rtt)
        self.assertEqual(by_host["127.0.0.4"].error, "Destination Host Unreachable from 127.0.0.9")

    def test_rate_limit(self) -> None:
        """--rate 10: one probe every 0.1 s, not a burst."""
        h = self.h
        targets = [f"127.0.0.{i}" for i in range(1, 11)]
        sweep = h.client.sweep(targets, rate=10.0)
        self.assertEqual(len(h.fake.sent), 1)
        h.reactor.pump([0.1] * 4)
        self.assertEqual(len(h.fake.sent), 5)
        h.reactor.pump([0.1] * 6)
        self.assertEqual(self.successResultOf(sweep.done).received, 10)

    def test_unlimited_rate_batches(self) -> None:
        """--rate 0: batches of 128, the replies drained after each (never more queued)."""
        h = self.h
        targets = [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(1000)]
        sweep = h.client.sweep(targets, rate=0, batch=128)
        summary = self.successResultOf(sweep.done)
        self.assertEqual((summary.transmitted, summary.received, summary.alive), (1000, 1000, 1000))
        self.assertEqual(h.fake.deepest, 128)
        self.assertEqual(len(h.fake.inbox), 0)

    def test_time_slice(self) -> None:
        """At full speed a turn of the reactor sends for at most 5 ms, then yields."""
        h = self.h
        ticks = iter(range(10**6))
        h.socket.clock = h.client.clock = lambda: next(ticks) * 0.0001
        targets = [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(1000)]
        sweep = h.client.sweep(targets, rate=0, batch=10)
        first = len(h.fake.sent)
        self.assertLess(first, 1000)
        self.assertGreater(first, 0)
        for _ in range(200):
            if sweep.done.called:
                break
            h.reactor.advance(0)
        self.assertEqual(self.successResultOf(sweep.done).received, 1000)

    def test_rounds(self) -> None:
        """-c 3 -i 1: three rounds a second apart; every reply counted per host."""
        h = self.h
        hosts: list[Any] = []
        sweep = h.client.sweep(
            ["127.0.0.2", "127.0.0.3"], count=3, interval=1.0, on_host=hosts.append
        )
        self.assertEqual(len(h.fake.sent), 2)
        h.reactor.advance(1.0)
        self.assertEqual(len(h.fake.sent), 4)
        h.reactor.advance(1.0)
        summary = self.successResultOf(sweep.done)
        self.assertEqual((summary.transmitted, summary.received), (6, 6))
        self.assertEqual([len(r.rtts) for r in hosts], [3, 3])

    def test_stop(self) -> None:
        """stop() reports targets probed so far and fires done, marked incomplete."""
        h = self.h
        h.fake.answer = lambda data, target: []
        hosts: list[Any] = []
        sweep = h.client.sweep(["127.0.0.2", "127.0.0.3"], rate=1.0, on_host=hosts.append)
        sweep.stop()
        summary = self.successResultOf(sweep.done)
        self.assertFalse(summary.complete)
        first = h.fake.sent[0][1][0]
        self.assertEqual([(r.host, r.alive) for r in hosts], [(first, False)])
        self.assertEqual([c for c in h.reactor.getDelayedCalls() if c.func.__name__ == "_step"], [])

    def test_failing_consumer(self) -> None:
        """An on_host that raises stops the sweep; done fails with its exception."""
        h = self.h

        def broken(result: Any) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        sweep = h.client.sweep(["127.0.0.2", "127.0.0.3"], rate=1.0, on_host=broken)
        self.failureResultOf(sweep.done, BrokenPipeError)
        h.reactor.advance(5.0)
        self.assertEqual(len(h.fake.sent), 1)

    def test_empty(self) -> None:
        """No targets: done at once."""
        sweep = self.h.client.sweep([])
        self.assertEqual(self.successResultOf(sweep.done).targets, 0)


class SocketChoiceTests(SynchronousTestCase):
    """Raw or unprivileged, and the one-line explanation when neither is allowed."""

    def patch_socket(self, refuse: set[int]) -> list[int]:
        """Make socket.socket refuse the given socket types with EPERM/EACCES."""
        opened: list[int] = []

        def fake(family: int, kind: int, protocol: int) -> Any:
            opened.append(kind)
            if kind in refuse:
                code = errno.EPERM if kind == socket.SOCK_RAW else errno.EACCES
                raise PermissionError(code, "Operation not permitted")
            return FakeSocket()

        self.patch(_icmpopen.socket, "socket", fake)
        return opened

    def test_auto_prefers_raw(self) -> None:
        """auto opens a raw socket when allowed."""
        opened = self.patch_socket(set())
        self.assertEqual(_icmpopen.open_icmp_socket(socket.AF_INET)[1], RAW)
        self.assertEqual(opened, [socket.SOCK_RAW])

    def test_auto_falls_back(self) -> None:
        """auto falls back to a ping socket when raw is refused."""
        self.patch_socket({socket.SOCK_RAW})
        self.assertEqual(_icmpopen.open_icmp_socket(socket.AF_INET)[1], DGRAM)

    def test_neither(self) -> None:
        """
        Neither allowed (auto): one line naming both causes, the setting as it
        is, and the exact remedy (the sysctl command, /etc/sysctl.d/ to keep it).
        """
        self.patch_socket({socket.SOCK_RAW, socket.SOCK_DGRAM})
        self.patch(_icmpopen, "_ping_group_range", lambda: (1, 0))
        with self.assertRaises(PingPermissionError) as caught:
            _icmpopen.open_icmp_socket(socket.AF_INET)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        self.assertTrue(message.startswith("cannot open an ICMP socket: raw sockets need root"))
        self.assertIn("CAP_NET_RAW", message)
        self.assertIn('net.ipv4.ping_group_range is "1 0", which admits no group', message)
        self.assertIn('as root: sysctl -w net.ipv4.ping_group_range="0 2147483647"', message)
        self.assertIn("/etc/sysctl.d/", message)

    def test_range_without_our_groups(self) -> None:
        """A range that admits other groups: the message names ours."""
        self.patch_socket({socket.SOCK_RAW, socket.SOCK_DGRAM})
        self.patch(_icmpopen, "_ping_group_range", lambda: (100, 200))
        self.patch(_icmpopen, "_groups", lambda: [1000, 27])
        with self.assertRaises(PingPermissionError) as caught:
            _icmpopen.open_icmp_socket(socket.AF_INET6)
        self.assertIn(
            "cannot open an ICMPv6 socket: raw sockets need root or CAP_NET_RAW, and unprivileged"
            ' ping sockets are not allowed: net.ipv4.ping_group_range is "100 200", which admits'
            " none of your groups (1000, 27); to allow them",
            str(caught.exception),
        )

    def test_dgram_refused(self) -> None:
        """
        A ping socket asked for (as root, too) and refused: the message is about
        ping sockets and their setting, not about raw sockets or root.
        """
        opened = self.patch_socket({socket.SOCK_DGRAM})
        self.patch(_icmpopen, "_ping_group_range", lambda: (1, 0))
        with self.assertRaises(PingPermissionError) as caught:
            _icmpopen.open_icmp_socket(socket.AF_INET, DGRAM)
        message = str(caught.exception)
        self.assertEqual(opened, [socket.SOCK_DGRAM])
        self.assertTrue(message.startswith("cannot open an unprivileged ICMP ping socket: "))
        self.assertNotIn("raw", message)
        self.assertNotIn("CAP_NET_RAW", message)
        self.assertIn('sysctl -w net.ipv4.ping_group_range="0 2147483647"', message)

    def test_no_ping_sockets_in_kernel(self) -> None:
        """A kernel without ping sockets (EPROTONOSUPPORT): said so, no sysctl to suggest."""

        def fake(family: int, kind: int, protocol: int) -> Any:
            if kind == socket.SOCK_RAW:
                raise PermissionError(errno.EPERM, "Operation not permitted")
            raise OSError(errno.EPROTONOSUPPORT, "Protocol not supported")

        self.patch(_icmpopen.socket, "socket", fake)
        with self.assertRaises(PingPermissionError) as caught:
            _icmpopen.open_icmp_socket(socket.AF_INET)
        message = str(caught.exception)
        self.assertTrue(
            message.endswith("unprivileged ping sockets are not allowed: this kernel has none"),
            message,
        )

    def test_raw_forced(self) -> None:
        """--socket raw without privileges: an explanation about raw sockets, no fallback."""
        opened = self.patch_socket({socket.SOCK_RAW})
        with self.assertRaises(PingPermissionError) as caught:
            _icmpopen.open_icmp_socket(socket.AF_INET, RAW)
        self.assertEqual(opened, [socket.SOCK_RAW])
        self.assertEqual(
            str(caught.exception),
            "cannot open a raw ICMP socket: raw sockets need root or CAP_NET_RAW (Operation not"
            " permitted); without them, use an unprivileged ping socket (dgram)",
        )

    def test_dgram_identifier_is_port(self) -> None:
        """On a ping socket the identifier is the socket's port (the kernel rewrites it)."""
        reactor = MemoryReactorClock()
        sock = IcmpSocket(reactor, socket.AF_INET, DGRAM, sock=FakeSocket())  # type: ignore[arg-type]
        self.assertEqual(sock.table.ident, 4321)
        sock.close()


class ConvenienceTests(SynchronousTestCase):
    """The one-call forms close their client; cancelling stops the work."""

    def test_name_refused(self) -> None:
        """
        ``ping(reactor, "localhost")`` (and sweep) fail at once saying to give
        an address, not a name; no socket is opened.
        """
        from netproto import ping as ping_module
        from netproto.util import AddressError

        reactor = MemoryReactorClock()
        for call in (ping_module.ping, ping_module.sweep):
            with self.subTest(call=call.__name__):
                target: Any = "localhost" if call is ping_module.ping else ["localhost"]
                with self.assertRaises(AddressError) as caught:
                    call(reactor, target, mode="nonsense")
                self.assertEqual(
                    str(caught.exception),
                    "localhost: give an address, not a name (netproto.lookup resolves names)",
                )

    def test_cancel_stops(self) -> None:
        """Cancelling ping()'s Deferred stops the ping, fires with the summary, closes sockets."""
        from netproto import ping as ping_module
        from netproto.ping import _client as client_module

        h = Harness()
        self.patch(client_module, "PingClient", lambda *a, **k: h.client)
        d: Deferred[Any] = ping_module.ping(h.reactor, US, count=None)
        d.cancel()
        self.assertEqual(self.successResultOf(d).transmitted, 1)
        self.assertTrue(h.fake.closed)

    def test_icmp_helper_packets(self) -> None:
        """The test helpers build what the parser accepts (a sanity check of the harness)."""
        from netproto.ping import parse_ipv4

        self.assertEqual(parse_ipv4(ipv4("127.0.0.2", US, icmp(0, 0, 1, 2, b"x"))).seq, 2)
