"""The HEAD client protocol and deadline, driven with StringTransport and Clock."""

from __future__ import annotations

import ipaddress
from typing import Any

from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

import netproto.head as head_module
import netproto.head._client as client_module
from netproto.head import (
    CLOSE_GRACE,
    HeadClientProtocol,
    HeadConnectError,
    HeadError,
    HeadProtocolError,
    HeadResponse,
    HeadTimeoutError,
    HeadTLSError,
    RedirectError,
    head,
)
from netproto.lookup import LookupTimeoutError, NameNotFoundError

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\nServer: t\r\n\r\n"


def _transport() -> StringTransport:
    return StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 8080))


class ProtocolTests(SynchronousTestCase):
    """HeadClientProtocol on a StringTransport."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(100)
        self.proto = HeadClientProtocol(b"HEAD / HTTP/1.0\r\n\r\n", self.clock)
        self.transport = _transport()
        self.results: list[Any] = []
        self.proto.finished.addBoth(self.results.append)

    def test_request_written(self) -> None:
        """connectionMade writes the request bytes exactly, and notes the peer."""
        self.proto.makeConnection(self.transport)
        self.assertEqual(self.transport.value(), b"HEAD / HTTP/1.0\r\n\r\n")
        self.assertEqual(self.proto.peer, "127.0.0.1:8080")

    def test_completes_at_end_of_head(self) -> None:
        """At the empty line the connection is closed (whatever Content-Length says)."""
        self.proto.makeConnection(self.transport)
        self.clock.advance(0.25)
        self.proto.dataReceived(OK[:10])
        self.clock.advance(0.5)
        self.assertFalse(self.transport.disconnecting)
        self.proto.dataReceived(OK[10:] + b"stray body bytes")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.results, [])
        self.proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.results, [self.proto])
        assert self.proto.head is not None
        self.assertEqual(self.proto.head.headers[1], ("Server", "t"))
        self.assertEqual(self.proto.first_byte_at, 100.25)
        self.assertEqual(self.proto.done_at, 100.75)

    def test_close_grace(self) -> None:
        """A peer that does not let the connection close is aborted after CLOSE_GRACE."""
        self.proto.makeConnection(self.transport)
        self.proto.dataReceived(OK)
        self.assertFalse(self.transport.disconnected)
        self.clock.advance(CLOSE_GRACE)
        self.assertTrue(self.transport.disconnected)
        self.proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.results, [self.proto])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_parse_error_aborts(self) -> None:
        """A non-HTTP peer aborts the connection at once; finished fails with its reason."""
        self.proto.makeConnection(self.transport)
        self.proto.dataReceived(b"SSH-2.0-OpenSSH_9.6\r\n")
        self.assertTrue(self.transport.disconnected)
        self.proto.dataReceived(b"HTTP/1.1 200 OK\r\n\r\n")  # ignored after the error
        self.proto.connectionLost(Failure(ConnectionDone()))
        failure = self.results[0]
        self.assertIsInstance(failure.value, HeadProtocolError)
        self.assertIn("not an HTTP server: it sent 'SSH-2.0", str(failure.value))

    def test_early_close(self) -> None:
        """A close before the end of the head is a HeadProtocolError saying how far it got."""
        self.proto.makeConnection(self.transport)
        self.proto.dataReceived(b"HTTP/1.1 200 OK\r\n")
        self.proto.connectionLost(Failure(ConnectionDone()))
        self.assertIn(
            "before the end of the response head (17 bytes received)", str(self.results[0].value)
        )

    def test_tls_failure(self) -> None:
        """A connection lost to an OpenSSL error is a HeadTLSError naming OpenSSL's reason."""
        self.proto.makeConnection(self.transport)
        error = SSL.Error([("SSL routines", "", "certificate verify failed")])
        self.proto.connectionLost(Failure(error))
        self.assertIsInstance(self.results[0].value, HeadTLSError)
        self.assertEqual(
            str(self.results[0].value), "TLS handshake failed: certificate verify failed"
        )

    def test_cancel(self) -> None:
        """Cancelling finished aborts the connection; a later connectionLost is harmless."""
        self.proto.makeConnection(self.transport)
        self.proto.finished.cancel()
        self.assertTrue(self.transport.disconnected)
        self.proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.results), 1)
        self.results[0].trap(Exception)


class _FakeEndpoint:
    """Connects to StringTransports on demand, or never (to test the deadline)."""

    def __init__(self, replies: dict[str, bytes | None]) -> None:
        self.replies = replies
        self.cancelled: list[str] = []
        self.protocols: list[HeadClientProtocol] = []
        self.error: Exception | None = None
        self.addresses: list[str] = []

    def for_target(
        self, reactor: Any, target: Any, address: str, timeout: float, insecure: bool, trust: Any
    ) -> _FakeEndpoint:
        self.current = target.url
        self.addresses.append(address)
        return self

    def connect(self, factory: Factory) -> Deferred[Any]:
        url = self.current
        reply = self.replies.get(url)
        if self.error is not None:
            d: Deferred[Any] = Deferred()
            d.errback(self.error)
            return d
        if reply is None:
            return Deferred(lambda d: self.cancelled.append(url))
        proto = factory.buildProtocol(None)
        assert isinstance(proto, HeadClientProtocol)
        transport = _transport()
        proto.makeConnection(transport)
        self.protocols.append(proto)
        if reply:
            proto.dataReceived(reply)
        if transport.disconnecting:
            proto.connectionLost(Failure(ConnectionDone()))
        return succeed(proto)


class _FakeLookup:
    """Answers every name with one address, or fails as told."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.error: Exception | None = None

    async def lookup_host(self, host: str) -> list[Any]:
        self.asked.append(host)
        if self.error is not None:
            raise self.error
        return [ipaddress.ip_address("127.0.0.9")]


class DeadlineTests(SynchronousTestCase):
    """head() with a fake endpoint and a Clock: one deadline, redirects."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.endpoint = _FakeEndpoint({})
        self.lookup = _FakeLookup()
        self.patch(client_module, "_endpoint", self.endpoint.for_target)

    def _start(self, target: str, **kwargs: Any) -> list[Any]:
        results: list[Any] = []
        kwargs.setdefault("lookup", self.lookup)
        head(self.clock, target, **kwargs).addBoth(results.append)
        return results

    def test_connect_deadline(self) -> None:
        """A connect that never completes is cancelled at the deadline: HeadTimeoutError."""
        results = self._start("http://127.0.0.1:8080/", timeout=2)
        self.clock.advance(1.9)
        self.assertEqual(results, [])
        self.clock.advance(0.1)
        self.assertEqual(self.endpoint.cancelled, ["http://127.0.0.1:8080/"])
        self.assertIsInstance(results[0].value, HeadTimeoutError)
        self.assertEqual(str(results[0].value), "timed out after 2 s connecting to 127.0.0.1:8080")

    def test_response_deadline(self) -> None:
        """A peer that drips bytes is aborted at the deadline, whatever it keeps sending."""
        self.endpoint.replies["http://127.0.0.1:8080/"] = b""
        results = self._start("127.0.0.1:8080", timeout=1)
        proto = self.endpoint.protocols[0]
        for byte in OK[:3]:
            self.clock.advance(0.25)
            proto.dataReceived(bytes([byte]))
        self.clock.advance(0.25)
        self.assertTrue(proto.transport.disconnected)  # type: ignore[attr-defined]
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertIsInstance(results[0].value, HeadTimeoutError)
        self.assertIn("(3 bytes of head received)", str(results[0].value))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_refused(self) -> None:
        """A refused connection is HeadConnectError naming host and port."""
        self.endpoint.error = ConnectionRefusedError()
        results = self._start("[::1]:8080")
        self.assertIsInstance(results[0].value, HeadConnectError)
        self.assertEqual(str(results[0].value), "connection to [::1]:8080 refused")

    def test_name_not_found(self) -> None:
        """
        A name that does not resolve is HeadConnectError naming it, in the
        lookup's words (no such host, no answer); nothing connects.
        """
        self.lookup.error = NameNotFoundError("nowhere.test: no such host")
        results = self._start("http://nowhere.test:8080/")
        self.assertIsInstance(results[0].value, HeadConnectError)
        self.assertEqual(str(results[0].value), "cannot resolve nowhere.test: no such host")
        self.assertEqual(self.endpoint.addresses, [])
        self.lookup.error = LookupTimeoutError("nowhere.test: no answer from 127.0.0.1:53")
        results = self._start("http://nowhere.test:8080/")
        self.assertEqual(
            str(results[0].value),
            "cannot resolve nowhere.test: no answer from 127.0.0.1:53",
        )
        self.lookup.error = None
        self.endpoint.error = OSError("network is unreachable")
        results = self._start("http://nowhere.test/")
        self.assertEqual(
            str(results[0].value), "cannot connect to nowhere.test:80: network is unreachable"
        )
        self.assertEqual(self.endpoint.addresses, ["127.0.0.9"])

    def test_literals_are_not_looked_up(self) -> None:
        """An address literal connects to itself; only names go to the lookup."""
        self.endpoint.replies["http://[::1]:8080/"] = OK
        self.endpoint.replies["http://h/"] = OK
        self._start("[::1]:8080")
        self._start("http://h/")
        self.assertEqual(self.lookup.asked, ["h"])
        self.assertEqual(self.endpoint.addresses, ["::1", "127.0.0.9"])

    def test_response_and_timing(self) -> None:
        """A complete response gives version, status, fields, peer and timings."""
        self.endpoint.replies["http://127.0.0.1:8080/"] = OK
        results = self._start("127.0.0.1:8080")
        response = results[0]
        self.assertIsInstance(response, HeadResponse)
        self.assertEqual(
            (response.status_line, response.peer, response.redirect),
            ("HTTP/1.1 200 OK", "127.0.0.1:8080", None),
        )
        self.assertEqual(response.timing.total, 0)
        self.assertIsNone(response.timing.tls)

    def test_redirect_reported_not_followed(self) -> None:
        """By default a redirect is the result, with its absolute target."""
        self.endpoint.replies["http://h/a"] = b"HTTP/1.1 301 Moved\r\nLocation: /b\r\n\r\n"
        results = self._start("http://h/a")
        self.assertEqual((results[0].status, results[0].redirect), (301, "http://h/b"))

    def test_redirects_followed(self) -> None:
        """follow=True follows redirects and keeps the hops in history."""
        self.endpoint.replies.update(
            {
                "http://h/a": b"HTTP/1.1 302 Found\r\nLocation: /b\r\n\r\n",
                "http://h/b": b"HTTP/1.1 307 Temporary\r\nLocation: http://h:81/c\r\n\r\n",
                "http://h:81/c": OK,
            }
        )
        results = self._start("http://h/a", follow=True)
        self.assertEqual([r.url for r in results[0].history], ["http://h/a", "http://h/b"])
        self.assertEqual((results[0].url, results[0].status), ("http://h:81/c", 200))

    def test_loop_and_limit(self) -> None:
        """A loop, one redirect too many and a non-HTTP Location are RedirectError."""
        self.endpoint.replies.update(
            {
                "http://h/a": b"HTTP/1.1 302 Found\r\nLocation: /b\r\n\r\n",
                "http://h/b": b"HTTP/1.1 302 Found\r\nLocation: /a\r\n\r\n",
            }
        )
        results = self._start("http://h/a", follow=True)
        self.assertIsInstance(results[0].value, RedirectError)
        self.assertEqual(str(results[0].value), "redirect loop: http://h/a was already visited")
        for n in range(8):
            self.endpoint.replies[f"http://c/{n}"] = (
                f"HTTP/1.1 301 Moved\r\nLocation: /{n + 1}\r\n\r\n".encode()
            )
        results = self._start("http://c/0", follow=True)
        self.assertEqual(str(results[0].value), "stopped after 5 redirects")
        self.assertEqual(len(results[0].value.response.history), 5)
        self.endpoint.replies["http://c/8"] = OK
        results = self._start("http://c/3", follow=True)
        self.assertEqual((results[0].url, len(results[0].history)), ("http://c/8", 5))
        results = self._start("http://c/4", follow=True, max_redirects=4)
        self.assertEqual(results[0].url, "http://c/8")
        results = self._start("http://c/3", follow=True, max_redirects=4)
        self.assertEqual(str(results[0].value), "stopped after 4 redirects")
        self.endpoint.replies["http://f/"] = b"HTTP/1.1 301 M\r\nLocation: ftp://f/\r\n\r\n"
        results = self._start("http://f/", follow=True)
        self.assertIn("redirect to a ftp URL", str(results[0].value))

    def test_deadline_covers_all_hops(self) -> None:
        """With follow=True the deadline is for all hops together."""
        self.endpoint.replies["http://h/a"] = b"HTTP/1.1 302 Found\r\nLocation: /b\r\n\r\n"
        results = self._start("http://h/a", follow=True, timeout=3)
        self.clock.advance(3)
        self.assertIsInstance(results[0].value, HeadTimeoutError)
        self.assertEqual(self.endpoint.cancelled, ["http://h/b"])

    def test_bad_arguments(self) -> None:
        """A bad target or timeout fails at once, before any connection."""
        from netproto.head import TargetError

        self.assertRaises(TargetError, head, self.clock, "ftp://h/")
        self.assertRaises(ValueError, head, self.clock, "h", timeout=0)
        self.assertTrue(issubclass(HeadTimeoutError, HeadError))


class PublicSurfaceTests(SynchronousTestCase):
    """What netproto.head promises to export."""

    def test_all(self) -> None:
        """Every name in __all__ exists and is documented."""
        for name in head_module.__all__:
            value = getattr(head_module, name)
            if callable(value):
                self.assertTrue(value.__doc__, name)
        self.assertTrue(
            {"head", "HeadResponse", "HeadError", "HeadLimits", "parse_target"}
            <= set(head_module.__all__)
        )
