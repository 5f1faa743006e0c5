"""RFC 867 daytime: the line formats, the TCP and UDP servers, and the clients."""

from __future__ import annotations

import calendar
import email.utils
import errno
import os
import shutil
import socket
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto import _twisted, daytime
from netproto.daytime import (
    FORMATS,
    MAX_LINE,
    DaytimeDatagramProtocol,
    DaytimeFactory,
    DaytimeProtocol,
    ProtocolError,
    RefusedError,
    ServiceTimeoutError,
    daytime_tcp,
    daytime_udp,
    format_daytime,
)
from netproto.limits import DEFAULT_LIMITS, Limits
from tests._fakes import UDPMemoryReactor, assert_refused
from tests._helpers import tool_skip_reason
from tests._servers import IPV6_SKIP, closed_port, reactor, sleep, wait_until

MOMENT = calendar.timegm((2026, 11, 26, 23, 48, 51))
EARLY = calendar.timegm((2026, 11, 5, 3, 4, 5))
PEER = IPv4Address("TCP", "127.0.0.1", 40000)

SECONDS = st.integers(min_value=0, max_value=calendar.timegm((9999, 12, 30, 0, 0, 0)))


class FormatTests(SynchronousTestCase):
    """:func:`format_daytime`."""

    def test_formats(self) -> None:
        """The three formats, in UTC, give the documented lines ending in CRLF."""
        self.assertEqual(FORMATS, ("ctime", "iso", "rfc2822"))
        self.assertEqual(format_daytime(MOMENT, utc=True), b"Thu Nov 26 23:48:51 2026\r\n")
        self.assertEqual(format_daytime(EARLY, utc=True), b"Thu Nov  5 03:04:05 2026\r\n")
        self.assertEqual(format_daytime(MOMENT, "iso", True), b"2026-11-26T23:48:51Z\r\n")
        self.assertEqual(
            format_daytime(MOMENT + 0.9, "rfc2822", True), b"Thu, 26 Nov 2026 23:48:51 GMT\r\n"
        )

    def test_unknown_format(self) -> None:
        """An unknown format is a ValueError naming the choices, also at factory creation."""
        with self.assertRaisesRegex(ValueError, "ctime, iso, rfc2822"):
            format_daytime(0, "unix")
        with self.assertRaises(ValueError):
            DaytimeFactory(Clock(), fmt="unix")
        with self.assertRaises(ValueError):
            DaytimeDatagramProtocol(Clock(), fmt="unix")

    @given(SECONDS)
    def test_ctime_matches_libc(self, seconds: int) -> None:
        """ctime in local time and in UTC is what time.ctime / asctime(gmtime) say (inetd's)."""
        self.assertEqual(format_daytime(seconds), time.ctime(seconds).encode() + b"\r\n")
        self.assertEqual(
            calendar.timegm(time.strptime(format_daytime(seconds, utc=True).decode()[:-2])),
            seconds,
        )

    @given(SECONDS, st.booleans())
    def test_iso_round_trip(self, seconds: int, utc: bool) -> None:
        """The ISO 8601 line names exactly the instant given (to the second)."""
        line = format_daytime(seconds + 0.5, "iso", utc).decode("ascii")
        self.assertTrue(line.endswith("\r\n"))
        parsed = datetime.fromisoformat(line[:-2].replace("Z", "+00:00"))
        self.assertEqual(parsed.timestamp(), seconds)

    @given(SECONDS, st.booleans())
    def test_rfc2822_round_trip(self, seconds: int, utc: bool) -> None:
        """The RFC 2822 line parses back (email.utils) to the instant given."""
        line = format_daytime(seconds, "rfc2822", utc).decode("ascii")
        self.assertEqual(email.utils.parsedate_to_datetime(line[:-2]).timestamp(), seconds)

    def test_local_iso_has_offset(self) -> None:
        """Local ISO 8601 carries the local UTC offset."""
        line = format_daytime(MOMENT, "iso").decode()[:-2]
        expected = datetime.fromtimestamp(MOMENT, timezone.utc).astimezone().isoformat()
        self.assertEqual(line, expected)


def tcp(factory: DaytimeFactory) -> tuple[DaytimeProtocol, StringTransport]:
    protocol = factory.buildProtocol(PEER)
    assert isinstance(protocol, DaytimeProtocol)
    transport = StringTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    return protocol, transport


class DaytimeTCPTests(SynchronousTestCase):
    """The TCP daytime protocol over a StringTransport, time from a Clock."""

    def test_one_line_then_close(self) -> None:
        """On connect: the line for the injected clock's time, then close."""
        clock = Clock()
        clock.advance(MOMENT)
        factory = DaytimeFactory(clock, fmt="iso", utc=True)
        protocol, transport = tcp(factory)
        self.assertEqual(transport.value(), b"2026-11-26T23:48:51Z\r\n")
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost()
        self.assertEqual(factory.counters.get("tcp_bytes_sent"), 22)
        self.assertEqual(factory.limiter.total, 0)

    def test_input_discarded(self) -> None:
        """Whatever the client sends changes nothing and is not kept."""
        clock = Clock()
        protocol, transport = tcp(DaytimeFactory(clock, utc=True))
        before = transport.value()
        protocol.dataReceived(b"x" * 1_000_000)
        self.assertEqual(transport.value(), before)
        self.assertEqual(vars(protocol).get("buffer"), None)

    def test_time_moves(self) -> None:
        """Each connection gets the time of its own moment."""
        clock = Clock()
        factory = DaytimeFactory(clock, utc=True)
        _, first = tcp(factory)
        clock.advance(61)
        _, second = tcp(factory)
        self.assertEqual(first.value(), b"Thu Jan  1 00:00:00 1970\r\n")
        self.assertEqual(second.value(), b"Thu Jan  1 00:01:01 1970\r\n")

    def test_connection_caps(self) -> None:
        """The per-peer cap refuses extra connections from one peer before any write."""
        factory = DaytimeFactory(Clock(), Limits(max_connections_per_peer=1))
        tcp(factory)
        assert_refused(self, factory, PEER)
        self.assertEqual(factory.counters.get("tcp_refused_peer"), 1)


class LineCacheTests(SynchronousTestCase):
    """The line is formatted once per second of the injected clock, for TCP and UDP alike."""

    def test_once_per_second(self) -> None:
        """Many answers in one second format one line; the next second formats anew."""
        calls: list[float] = []

        def counting(seconds: float, fmt: str = "ctime", utc: bool = False) -> bytes:
            calls.append(seconds)
            return format_daytime(seconds, fmt, utc)

        self.patch(daytime, "format_daytime", counting)
        clock = UDPMemoryReactor()
        clock.advance(MOMENT + 0.25)
        factory = DaytimeFactory(clock, fmt="iso", utc=True)
        protocol = DaytimeDatagramProtocol(clock, fmt="iso", utc=True)
        port = clock.listenUDP(13, protocol)
        calls.clear()  # the formats were validated at construction
        for i in range(50):
            tcp(factory)
            protocol.datagramReceived(b"", ("127.0.0.1", 40000 + i))
        clock.advance(0.7)
        _, same = tcp(factory)
        self.assertEqual(calls, [MOMENT, MOMENT])  # one per server, none after
        clock.advance(0.1)
        _, later = tcp(factory)
        self.assertEqual(later.value(), b"2026-11-26T23:48:52Z\r\n")
        self.assertEqual(same.value(), b"2026-11-26T23:48:51Z\r\n")
        self.assertEqual(port.fake.sent[-1][0], b"2026-11-26T23:48:51Z\r\n")
        self.assertEqual(len(calls), 3)


class DaytimeUDPTests(SynchronousTestCase):
    """The UDP daytime protocol, with a MemoryReactorClock and a listenUDP stub."""

    def test_answers_each_datagram(self) -> None:
        """Each admitted datagram, whatever it holds, gets one line for the reactor's time."""
        reactor = UDPMemoryReactor()
        reactor.advance(MOMENT)
        protocol = DaytimeDatagramProtocol(reactor, fmt="rfc2822", utc=True)
        port = reactor.listenUDP(13, protocol)
        protocol.datagramReceived(b"", ("127.0.0.1", 40000))
        protocol.datagramReceived(os.urandom(1000), ("::1", 40001))
        self.assertEqual(
            port.fake.sent,
            [
                (b"Thu, 26 Nov 2026 23:48:51 GMT\r\n", ("127.0.0.1", 40000)),
                (b"Thu, 26 Nov 2026 23:48:51 GMT\r\n", ("::1", 40001)),
            ],
        )

    def test_refusals(self) -> None:
        """Low, served and bad-source datagrams are refused silently and counted."""
        reactor = UDPMemoryReactor()
        protocol = DaytimeDatagramProtocol(reactor, served_ports={40013})
        port = reactor.listenUDP(13, protocol)
        protocol.datagramReceived(b"", ("127.0.0.1", 13))
        protocol.datagramReceived(b"", ("127.0.0.1", 40013))
        protocol.datagramReceived(b"", ("0.0.0.0", 40000))
        self.assertEqual(port.fake.sent, [])
        self.assertEqual(
            [
                protocol.counters.get(n)
                for n in ("udp_refused_port", "udp_refused_served", "udp_refused_source")
            ],
            [1, 1, 1],
        )


def _check_line(case: SynchronousTestCase, line: bytes) -> None:
    """*line* is a UTC ctime daytime line of about now."""
    stamp = calendar.timegm(time.strptime(line.decode("ascii")[:-2]))
    case.assertTrue(line.endswith(b"\r\n"))
    case.assertLess(abs(stamp - time.time()), 5)


class DaytimeLoopbackTests(TestCase):
    """Daytime on real loopback sockets, TCP and UDP, IPv4 and IPv6."""

    timeout = 30

    def serve(self, interface: str) -> tuple[DaytimeFactory, int, DaytimeDatagramProtocol, int]:
        factory = DaytimeFactory(reactor, utc=True)
        tcp_port = reactor.listenTCP(0, factory, interface=interface)
        self.addCleanup(tcp_port.stopListening)
        self.addCleanup(wait_until, lambda: factory.limiter.total == 0)
        udp = DaytimeDatagramProtocol(reactor, utc=True)
        udp_port = reactor.listenUDP(0, udp, interface=interface, maxPacketSize=65535)
        self.addCleanup(udp_port.stopListening)
        return factory, tcp_port.getHost().port, udp, udp_port.getHost().port

    def check_line(self, line: bytes) -> None:
        _check_line(self, line)

    async def test_ipv4(self) -> None:
        """TCP and UDP daytime over 127.0.0.1 give the current time."""
        _, tcp_port, _, udp_port = self.serve("127.0.0.1")
        self.check_line(await daytime_tcp(reactor, "127.0.0.1", tcp_port))
        self.check_line(await daytime_udp(reactor, "127.0.0.1", udp_port))

    async def test_ipv6(self) -> None:
        """TCP and UDP daytime over ::1 give the current time."""
        _, tcp_port, _, udp_port = self.serve("::1")
        self.check_line(await daytime_tcp(reactor, "::1", tcp_port))
        self.check_line(await daytime_udp(reactor, "::1", udp_port))

    test_ipv6.skip = IPV6_SKIP  # type: ignore[attr-defined]

    async def test_unix_socket(self) -> None:
        """Over a UNIX socket (no peer address): the line, then close; no per-peer cap."""
        factory = DaytimeFactory(reactor, Limits(max_connections_per_peer=1), utc=True)
        directory = tempfile.mkdtemp(prefix="netproto")  # AF_UNIX paths are short
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "daytime.sock")
        listening = reactor.listenUNIX(path, factory)
        self.addCleanup(listening.stopListening)
        self.addCleanup(wait_until, lambda: factory.limiter.total == 0)
        for _ in range(2):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.addCleanup(client.close)
            client.setblocking(False)
            client.connect(path)
            chunks: list[bytes] = []

            def read(client: socket.socket = client, chunks: list[bytes] = chunks) -> bool:
                try:
                    data = client.recv(100)
                except BlockingIOError:
                    return False
                chunks.append(data)
                return data == b""

            await wait_until(read)
            self.check_line(b"".join(chunks))
        self.assertEqual(factory.counters.get("tcp_refused_peer"), 0)

    async def test_refused(self) -> None:
        """Closed TCP and UDP ports are RefusedErrors."""
        with self.assertRaises(RefusedError):
            await daytime_tcp(reactor, "127.0.0.1", closed_port(socket.SOCK_STREAM))
        with self.assertRaises(RefusedError):
            await daytime_udp(reactor, "127.0.0.1", closed_port(socket.SOCK_DGRAM))

    async def test_bad_servers(self) -> None:
        """An endless answer is a ProtocolError (bounded); a server that never closes, a timeout."""

        class Endless(Protocol):
            def connectionMade(self) -> None:
                self.transport.write(b"x" * (MAX_LINE + 1))  # type: ignore[union-attr]

        class Mute(Protocol):
            pass

        ports: list[Any] = []
        for proto in (Endless, Mute):
            listening = reactor.listenTCP(0, Factory.forProtocol(proto), interface="127.0.0.1")
            self.addCleanup(listening.stopListening)
            ports.append(listening.getHost().port)
        with self.assertRaises(ProtocolError):
            await daytime_tcp(reactor, "127.0.0.1", ports[0])
        with self.assertRaises(ServiceTimeoutError):
            await daytime_tcp(reactor, "127.0.0.1", ports[1], timeout=0.2)
        await sleep(0.05)

    async def test_nc_client(self) -> None:
        """The system's nc reads one line over TCP and one over UDP."""
        _, tcp_port, udp, udp_port = self.serve("127.0.0.1")
        out, _, code = await getProcessOutputAndValue(
            "nc", ["-d", "127.0.0.1", str(tcp_port)], env=os.environ
        )
        self.assertEqual(code, 0)
        self.check_line(out)
        out, _, code = await getProcessOutputAndValue(
            "/bin/sh", ["-c", f"echo | nc -u -w 1 127.0.0.1 {udp_port}"], env=os.environ
        )
        self.check_line(out)
        self.assertEqual(udp.counters.get("udp_replies_sent"), 1)

    test_nc_client.skip = tool_skip_reason("nc")  # type: ignore[attr-defined]

    async def test_loop_between_two_daytime_servers_stops(self) -> None:
        """A forged datagram between two daytime servers on high ports stops bouncing."""
        a = DaytimeDatagramProtocol(reactor)
        b = DaytimeDatagramProtocol(reactor)
        port_a = reactor.listenUDP(0, a, interface="127.0.0.1")
        port_b = reactor.listenUDP(0, b, interface="127.0.0.1")
        self.addCleanup(port_a.stopListening)
        self.addCleanup(port_b.stopListening)
        port_a.write(b"", ("127.0.0.1", port_b.getHost().port))

        def replies() -> int:
            return a.counters.get("udp_replies_sent") + b.counters.get("udp_replies_sent")

        await wait_until(
            lambda: a.counters.get("udp_rate_limited") + b.counters.get("udp_rate_limited") == 1, 3
        )
        settled = replies()
        await sleep(0.3)
        self.assertEqual(replies(), settled)
        self.assertLessEqual(settled, 2 * Limits().udp_burst + 2)


class ConnectReasonTests(SynchronousTestCase):
    """What the clients say when a connect fails (``netproto._service.connect_reason``)."""

    def test_system_words(self) -> None:
        """
        Twisted's connect errors in the system's words: no "An error occurred
        while connecting", no errno number, never the repr of a wrapped Failure.
        """
        from twisted.internet import error
        from twisted.python.failure import Failure

        from netproto._service import connect_reason

        for failure, words in (
            (error.NoRouteError(113, "No route to host"), "no route to host"),
            (error.NoRouteError(101, "Network is unreachable"), "network is unreachable"),
            (error.ConnectError("113: No route to host"), "no route to host"),
            (error.ConnectError(osError=Failure(error.ConnectionLost())), "connection lost"),
            (error.TCPTimedOutError(), "timed out"),
            (error.TimeoutError(), "timed out"),
            (error.ConnectError(), "connection failed"),
            (OSError(101, "Network is unreachable"), "network is unreachable"),
        ):
            with self.subTest(failure=failure):
                self.assertEqual(connect_reason(failure), words)


class _Counted(DaytimeProtocol):
    """A daytime protocol that counts the connections it was made for."""

    made = 0

    def connectionMade(self) -> None:
        type(self).made += 1
        super().connectionMade()


class DirectAnswerTests(TestCase):
    """TCP daytime answered on the accepted socket (answer_accepted through the seam)."""

    timeout = 30

    def serve(self, interface: str, limits: Limits = DEFAULT_LIMITS) -> tuple[DaytimeFactory, int]:
        factory = DaytimeFactory(reactor, limits, utc=True)
        factory.protocol_class = _Counted
        _Counted.made = 0
        port = reactor.listenTCP(0, factory, interface=interface)
        self.addCleanup(port.stopListening)
        self.assertTrue(_twisted.accept_directly(port, factory.answer_accepted))
        return factory, port.getHost().port

    async def check_lines(self, host: str) -> None:
        factory, port = self.serve(host)
        for _ in range(20):
            line = await daytime_tcp(reactor, host, port)
            self.assertTrue(line.endswith(b"\r\n"))
            self.assertLess(
                abs(calendar.timegm(time.strptime(line[:-2].decode())) - time.time()), 5
            )
        self.assertEqual(_Counted.made, 0, "a transport and protocol were made per connection")
        self.assertEqual(factory.counters.get("tcp_connections"), 20)
        self.assertEqual(factory.counters.get("tcp_bytes_sent"), 20 * len(line))
        self.assertEqual((factory.limiter.total, factory.limiter.by_peer), (0, {}))

    async def test_ipv4(self) -> None:
        """Each connection over 127.0.0.1 gets the line, is counted and released, and no
        protocol is made for it."""
        await self.check_lines("127.0.0.1")

    async def test_ipv6(self) -> None:
        """The same over ::1."""
        await self.check_lines("::1")

    test_ipv6.skip = IPV6_SKIP  # type: ignore[attr-defined]

    async def test_unread_input(self) -> None:
        """A client that wrote before the server accepted still gets the whole line (the
        close does not reset the connection over the bytes it left unread)."""
        factory, port = self.serve("127.0.0.1")
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(client.close)
        client.sendall(b"what time is it?\r\n")  # queued before the reactor accepts
        client.setblocking(False)
        received = bytearray()

        def read() -> bool:
            try:
                chunk = client.recv(100)
            except BlockingIOError:
                return False
            received.extend(chunk)
            return not chunk

        await wait_until(read)
        _check_line(self, bytes(received))
        self.assertEqual(factory.counters.get("tcp_connections"), 1)

    async def test_refused_reset(self) -> None:
        """A connection over the per-peer cap is reset, counted as refused, nothing sent."""
        factory, port = self.serve("127.0.0.1", Limits(max_connections_per_peer=1))
        self.assertIsNone(factory.limiter.admit("127.0.0.1"))  # the peer's one connection
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(client.close)
        client.setblocking(False)
        got: list[object] = []

        def outcome() -> bool:
            try:
                got.append(client.recv(100))
            except BlockingIOError:
                return False
            except OSError as exc:
                got.append(exc.errno)
            return True

        await wait_until(outcome)
        self.assertEqual(got, [errno.ECONNRESET])
        self.assertEqual(factory.counters.get("tcp_refused_peer"), 1)
        self.assertEqual(factory.counters.get("tcp_connections"), 0)
        factory.limiter.release("127.0.0.1")


class _Taking:
    """A socket that takes *room* bytes of a send and records it, for answer_accepted."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.sent = b""
        self.closed = False
        self.shut: int | None = None

    def send(self, data: bytes, flags: int = 0) -> int:
        if not self.room:
            raise BlockingIOError(errno.EAGAIN, "full")
        self.sent += data[: self.room]
        return min(self.room, len(data))

    def shutdown(self, how: int) -> None:
        self.shut = how

    def close(self) -> None:
        self.closed = True


class DirectAnswerRestTests(SynchronousTestCase):
    """What answer_accepted does when the socket does not take the whole line at once."""

    def factory(self) -> DaytimeFactory:
        clock = Clock()
        clock.advance(1_700_000_000)
        return DaytimeFactory(clock, utc=True)

    def check(self, room: int) -> None:
        factory = self.factory()
        skt = _Taking(room)
        protocol = factory.answer_accepted(skt, IPv4Address("TCP", "127.0.0.1", 4000))  # type: ignore[arg-type]
        self.assertIsInstance(protocol, DaytimeProtocol)
        self.assertFalse(skt.closed)
        transport = StringTransport()
        assert protocol is not None
        protocol.makeConnection(transport)
        line = factory.answer()
        self.assertEqual(skt.sent + transport.value(), line)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(factory.counters.get("tcp_connections"), 1)
        self.assertEqual(factory.counters.get("tcp_bytes_sent"), len(line))
        self.assertEqual(factory.limiter.total, 1)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((factory.limiter.total, factory.limiter.by_peer), (0, {}))

    def test_part_taken(self) -> None:
        """The rest goes out through a transport, then the connection closes and is released."""
        self.check(5)

    def test_nothing_taken(self) -> None:
        """A socket that takes nothing at once: the whole line through the transport."""
        self.check(0)

    def test_all_taken(self) -> None:
        """The whole line taken: the socket is closed, the peer released, no protocol left."""
        factory = self.factory()
        skt = _Taking(1000)
        self.assertIsNone(
            factory.answer_accepted(skt, IPv4Address("TCP", "127.0.0.1", 4000))  # type: ignore[arg-type]
        )
        self.assertEqual((skt.shut, skt.closed), (socket.SHUT_RDWR, True))
        self.assertEqual(skt.sent, factory.answer())
        self.assertEqual((factory.limiter.total, factory.limiter.by_peer), (0, {}))
