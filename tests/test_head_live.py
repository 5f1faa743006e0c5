"""netproto.head against real loopback peers: Twisted web, hostile raw servers, TLS, nginx."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.protocol import Factory
from twisted.internet.ssl import Certificate, PrivateCertificate
from twisted.trial.unittest import TestCase

from netproto import __version__
from netproto.head import (
    HeadConnectError,
    HeadError,
    HeadLimits,
    HeadProtocolError,
    HeadResponse,
    HeadTimeoutError,
    HeadTLSError,
    HeadTooLargeError,
    NotHTTPError,
    RedirectError,
    head,
)
from tests._head_helpers import (
    ScriptedFactory,
    TrackingSite,
    free_port,
    make_certificates,
    run_tool,
    start_nginx,
)
from tests._helpers import tool_skip_reason

reactor: Any = _reactor

LONG_HEAD = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"s" * 200 + b"\r\n\r\n"


class LiveTestCase(TestCase):
    """Listening helpers that clean up ports and wait for server-side connections to close."""

    timeout = 30

    def listen(self, factory: Factory, interface: str = "127.0.0.1", tls: Any = None) -> int:
        if tls is None:
            port = reactor.listenTCP(0, factory, interface=interface)
        else:
            port = reactor.listenSSL(0, factory, tls, interface=interface)
        self.addCleanup(port.stopListening)
        if isinstance(factory, TrackingSite):
            self.addCleanup(lambda: DeferredList(factory.closed))
        if isinstance(factory, ScriptedFactory):
            self.addCleanup(lambda: DeferredList([c.closed for c in factory.connections]))
        number: int = port.getHost().port
        return number

    def web(self, interface: str = "127.0.0.1", tls: Any = None) -> int:
        return self.listen(TrackingSite(), interface, tls)

    async def failure(self, d: Deferred[HeadResponse], kind: type[HeadError]) -> HeadError:
        try:
            result = await d
        except HeadError as e:
            self.assertIsInstance(e, kind)
            return e
        self.fail(f"expected {kind.__name__}, got {result!r}")


class TwistedWebTests(LiveTestCase):
    """Against Twisted's own web server."""

    async def test_plain(self) -> None:
        """One Host, our User-Agent and Connection: close go out; the head comes back in order."""
        port = self.web()
        r = await head(reactor, f"127.0.0.1:{port}")
        self.assertEqual(
            (r.status_line, r.url, r.peer),
            ("HTTP/1.1 200 OK", f"http://127.0.0.1:{port}/", f"127.0.0.1:{port}"),
        )
        self.assertEqual(r.get("X-Host-Count"), "1")
        self.assertEqual(r.get("X-Seen-Host"), f"127.0.0.1:{port}")
        self.assertEqual(r.get("X-Seen-UA"), f"netproto/{__version__}")
        self.assertEqual(r.get("X-Seen-Connection"), "close")
        self.assertEqual(r.get_all("Set-Cookie"), ["a=1", "b=2"])
        self.assertEqual(r.get("Content-Length"), "5")
        self.assertLessEqual(r.timing.connect, r.timing.first_byte)
        self.assertLessEqual(r.timing.first_byte, r.timing.total)
        self.assertIsNone(r.timing.tls)

    async def test_status_and_big_content_length(self) -> None:
        """A 404 is a response, not an error; a huge Content-Length does not make it wait."""
        port = self.web()
        r = await head(reactor, f"http://127.0.0.1:{port}/missing")
        self.assertEqual(r.status, 404)
        r = await head(reactor, f"http://127.0.0.1:{port}/big", timeout=5)
        self.assertEqual(r.get("Content-Length"), "1000000000000")

    async def test_http10(self) -> None:
        """http10=True sends the bare HTTP/1.0 request: no Host field reaches the server."""
        port = self.web()
        r = await head(reactor, f"127.0.0.1:{port}", http10=True)
        self.assertEqual(r.status, 200)
        self.assertEqual((r.get("X-Host-Count"), r.get("X-Seen-UA")), ("0", ""))

    async def test_ipv6_and_names(self) -> None:
        """IPv6 literals are bracketed in Host; host names go through HostnameEndpoint."""
        port = self.web("::1")
        for target in (f"[::1]:{port}", f"http://[::1]:{port}/"):
            r = await head(reactor, target)
            self.assertEqual((r.get("X-Seen-Host"), r.peer), (f"[::1]:{port}", f"[::1]:{port}"))
        port4 = self.web()
        r = await head(reactor, f"http://localhost:{port4}/")
        self.assertEqual(
            (r.get("X-Seen-Host"), r.peer), (f"localhost:{port4}", f"127.0.0.1:{port4}")
        )

    async def test_redirects(self) -> None:
        """Redirects are reported by default, followed with follow=True, across hosts too."""
        port = self.web()
        port6 = self.web("::1")
        base = f"http://127.0.0.1:{port}"
        r = await head(reactor, f"{base}/r/2")
        self.assertEqual((r.status, r.redirect, r.history), (302, f"{base}/r/1", ()))
        r = await head(reactor, f"{base}/r/5", follow=True)
        self.assertEqual((r.status, r.url, len(r.history)), (200, f"{base}/r/0", 5))
        self.assertEqual([h.status for h in r.history], [302] * 5)
        e = await self.failure(head(reactor, f"{base}/r/6", follow=True), RedirectError)
        self.assertEqual(str(e), "stopped after 5 redirects")
        e = await self.failure(head(reactor, f"{base}/loop/a", follow=True), RedirectError)
        self.assertEqual(str(e), f"redirect loop: {base}/loop/a was already visited")
        e = await self.failure(
            head(reactor, f"{base}/to?ftp://127.0.0.1/", follow=True), RedirectError
        )
        self.assertIn("redirect to a ftp URL", str(e))
        r = await head(reactor, f"{base}/to?http://[::1]:{port6}/", follow=True)
        self.assertEqual((r.peer, r.get("X-Seen-Host")), (f"[::1]:{port6}", f"[::1]:{port6}"))


class HostilePeerTests(LiveTestCase):
    """Against raw TCP servers that misbehave."""

    async def test_keepalive_stray_body(self) -> None:
        """A server that ignores Connection: close and sends a body anyway: done at the head."""
        reply = (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\nConnection: keep-alive\r\n"
            b"\r\nthis body should never have been sent"
        )
        factory = ScriptedFactory(reply=reply)
        port = self.listen(factory)
        r = await head(reactor, f"127.0.0.1:{port}", timeout=10)
        self.assertEqual((r.status, r.get("Connection")), (200, "keep-alive"))
        await factory.connections[0].closed

    async def test_ssh(self) -> None:
        """An SSH server fails at once as not HTTP (long before a 10 s deadline)."""
        port = self.listen(ScriptedFactory(greeting=b"SSH-2.0-OpenSSH_9.6\r\n"))
        e = await self.failure(head(reactor, f"127.0.0.1:{port}", timeout=10), HeadProtocolError)
        self.assertIsInstance(e, HeadProtocolError)
        assert isinstance(e, HeadProtocolError)
        self.assertIsInstance(e.cause, NotHTTPError)
        self.assertEqual(str(e), "not an HTTP server: it sent 'SSH-2.0-OpenSSH_9.6\\r\\n'")

    async def test_silent(self) -> None:
        """A peer that accepts and says nothing meets the deadline."""
        port = self.listen(ScriptedFactory())
        e = await self.failure(head(reactor, f"127.0.0.1:{port}", timeout=0.5), HeadTimeoutError)
        self.assertIn("(0 bytes of head received)", str(e))

    async def test_drip(self) -> None:
        """One byte every 250 ms cannot hold the client past its deadline."""
        port = self.listen(ScriptedFactory(drip=LONG_HEAD, interval=0.25))
        e = await self.failure(head(reactor, f"127.0.0.1:{port}", timeout=1), HeadTimeoutError)
        received = int(str(e).rpartition("(")[2].split()[0])
        self.assertGreater(received, 0)
        self.assertLess(received, len(LONG_HEAD))

    async def test_endless_headers(self) -> None:
        """An endless stream of fields stops at the field cap, or at the size cap."""
        port = self.listen(ScriptedFactory(endless=True))
        e = await self.failure(head(reactor, f"127.0.0.1:{port}"), HeadProtocolError)
        self.assertEqual(str(e), "the response head has more than 100 fields")
        e = await self.failure(
            head(reactor, f"127.0.0.1:{port}", limits=HeadLimits(max_fields=10**6)),
            HeadProtocolError,
        )
        assert isinstance(e, HeadProtocolError)
        self.assertIsInstance(e.cause, HeadTooLargeError)
        self.assertEqual(str(e), "the response head is larger than 65536 bytes")

    async def test_malformed_and_early_close(self) -> None:
        """A malformed status line and a close in mid-head are clear protocol errors."""
        port = self.listen(ScriptedFactory(reply=b"HTTP/1.1 2xx OK\r\n\r\n"))
        e = await self.failure(head(reactor, f"127.0.0.1:{port}"), HeadProtocolError)
        self.assertEqual(str(e), "malformed status line 'HTTP/1.1 2xx OK'")
        port = self.listen(
            ScriptedFactory(reply=b"HTTP/1.1 200 OK\r\nA: b\r\n", close_after_reply=True)
        )
        e = await self.failure(head(reactor, f"127.0.0.1:{port}"), HeadProtocolError)
        self.assertIn("before the end of the response head (23 bytes received)", str(e))

    async def test_interim(self) -> None:
        """1xx interim heads are reported before the final one."""
        reply = (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
            b"Link: </a.css>; rel=preload\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
        )
        port = self.listen(ScriptedFactory(reply=reply))
        r = await head(reactor, f"127.0.0.1:{port}")
        self.assertEqual(r.status, 204)
        self.assertEqual(
            [(i.status, i.headers) for i in r.interim],
            [(100, ()), (103, (("Link", "</a.css>; rel=preload"),))],
        )

    async def test_refused(self) -> None:
        """A closed port is HeadConnectError naming it."""
        port = free_port()
        e = await self.failure(head(reactor, f"127.0.0.1:{port}"), HeadConnectError)
        self.assertEqual(str(e), f"connection to 127.0.0.1:{port} refused")


class TLSTests(LiveTestCase):
    """https:// with a certificate made by the test and trusted through a custom CA."""

    def setUp(self) -> None:
        ca, server = make_certificates(ip_sans=("127.0.0.1", "::1"))
        self.ca = Certificate.loadPEM(ca)
        self.options = PrivateCertificate.loadPEM(server).options()

    async def test_verified(self) -> None:
        """The certificate verifies against the test CA, over IPv4 and IPv6."""
        port = self.web(tls=self.options)
        r = await head(reactor, f"https://127.0.0.1:{port}/", trust_root=self.ca)
        self.assertEqual((r.status, r.get("X-Seen-Host")), (200, f"127.0.0.1:{port}"))
        assert r.timing.tls is not None
        self.assertLessEqual(r.timing.connect, r.timing.tls)
        self.assertLessEqual(r.timing.tls, r.timing.first_byte)
        port6 = self.web("::1", tls=self.options)
        r = await head(reactor, f"https://[::1]:{port6}/", trust_root=self.ca)
        self.assertEqual(r.status, 200)

    async def test_untrusted_and_insecure(self) -> None:
        """Without the CA verification fails; insecure=True skips it."""
        port = self.web(tls=self.options)
        e = await self.failure(head(reactor, f"https://127.0.0.1:{port}/"), HeadTLSError)
        self.assertEqual(str(e), "TLS handshake failed: certificate verify failed")
        r = await head(reactor, f"https://127.0.0.1:{port}/", insecure=True)
        self.assertEqual(r.status, 200)

    async def test_wrong_name(self) -> None:
        """A trusted certificate for another name is refused."""
        port = self.web(tls=self.options)
        e = await self.failure(
            head(reactor, f"https://localhost:{port}/", trust_root=self.ca), HeadTLSError
        )
        self.assertEqual(
            str(e), "TLS handshake failed: the certificate does not match the host name"
        )

    async def test_plain_server(self) -> None:
        """https:// to a plain HTTP server is a TLS error, not a hang."""
        port = self.listen(ScriptedFactory(greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n"))
        e = await self.failure(head(reactor, f"https://127.0.0.1:{port}/", timeout=5), HeadTLSError)
        self.assertTrue(str(e).startswith("TLS handshake failed: "), str(e))


class NginxTests(LiveTestCase):
    """Against nginx, started by the test on a loopback high port."""

    skip = tool_skip_reason("nginx")

    async def test_nginx(self) -> None:
        """nginx answers over IPv4 and IPv6; its redirect is reported, then followed."""
        port = start_nginx(self)
        r = await head(reactor, f"http://127.0.0.1:{port}/index.html")
        self.assertEqual(r.status, 200)
        self.assertTrue((r.get("Server") or "").startswith("nginx"))
        self.assertEqual(r.get("Content-Length"), str(len("<p>hello from nginx</p>\n") * 1000))
        r = await head(reactor, f"[::1]:{port}")
        self.assertEqual(r.status, 200)
        r = await head(reactor, f"http://127.0.0.1:{port}/moved")
        self.assertEqual((r.status, r.redirect), (301, f"http://127.0.0.1:{port}/index.html"))
        r = await head(reactor, f"http://127.0.0.1:{port}/moved", follow=True)
        self.assertEqual((r.status, len(r.history)), (200, 1))

    async def test_same_as_curl(self) -> None:
        """
        netproto head prints what curl -I prints for nginx and Twisted web (Date aside, and
        Connection: curl keeps the connection alive where we ask for close).
        """
        skip = tool_skip_reason("curl")
        if skip:
            self.skipTest(skip)
        from tests._head_helpers import run_netproto

        for url in (
            f"http://127.0.0.1:{start_nginx(self)}/index.html",
            f"http://127.0.0.1:{self.web()}/missing",
        ):
            ours, _, status = await run_netproto("head", url)
            self.assertEqual(status, 0)
            theirs, _, curl_status = await run_tool("curl", "-sI", "--max-time", "10", url)
            self.assertEqual(curl_status, 0)

            def lines(output: bytes) -> list[str]:
                # Byte for byte, CRLF line ends included.
                return [
                    line
                    for line in output.decode().split("\r\n")
                    if not line.startswith(("Date:", "Connection:"))
                ]

            self.assertEqual(lines(ours), lines(theirs))
