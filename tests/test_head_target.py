"""HEAD targets, the Host field and the request bytes (pure code)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from netproto.head._target import (
    USER_AGENT,
    TargetError,
    build_request,
    parse_target,
    redirect_target,
)


class TargetTests(SynchronousTestCase):
    """Targets, the Host field and the request bytes."""

    def test_urls(self) -> None:
        """URLs keep scheme, host, port and path; default ports are left out of the authority."""
        t = parse_target("http://127.0.0.1:8080/a/b?c=d#frag")
        self.assertEqual(
            (t.scheme, t.host, t.port, t.path), ("http", "127.0.0.1", 8080, "/a/b?c=d")
        )
        self.assertEqual(t.authority, "127.0.0.1:8080")
        t = parse_target("HTTPS://LocalHost")
        self.assertEqual(
            (t.scheme, t.host, t.port, t.path, t.url),
            ("https", "localhost", 443, "/", "https://localhost/"),
        )
        self.assertEqual(parse_target("http://h:80/").authority, "h")
        self.assertEqual(parse_target("https://h:80/").authority, "h:80")

    def test_host_port_form(self) -> None:
        """host:port, [v6]:port, a bare host (port 80) and a bare IPv6 literal."""
        t = parse_target("[::1]:8080")
        self.assertEqual(
            (t.host, t.port, t.is_ipv6, t.authority), ("::1", 8080, True, "[::1]:8080")
        )
        t = parse_target("127.0.0.1:8080")
        self.assertEqual((t.scheme, t.host, t.port, t.path), ("http", "127.0.0.1", 8080, "/"))
        self.assertEqual(parse_target("localhost").port, 80)
        t = parse_target("0:0::1")
        self.assertEqual((t.host, t.authority), ("::1", "[::1]"))

    def test_zone(self) -> None:
        """An IPv6 zone is kept for connecting and in the URL, never sent in Host."""
        t = parse_target("http://[fe80::1%25lo]:8080/x")
        self.assertEqual(
            (t.connect_host, t.authority, t.url),
            ("fe80::1%lo", "[fe80::1]:8080", "http://[fe80::1%25lo]:8080/x"),
        )
        self.assertEqual(redirect_target(t, "/y").connect_host, "fe80::1%lo")
        self.assertIn(b"\r\nHost: [fe80::1]:8080\r\n", build_request(t))
        self.assertEqual(
            parse_target("[fe80::1%lo]:8080"),
            t.__class__("http", "fe80::1%lo", 8080, "/", is_ipv6=True),
        )

    def test_idn(self) -> None:
        """Non-ASCII host names are IDNA-encoded for DNS and Host."""
        t = parse_target("http://b\u00fccher.test/")
        self.assertEqual((t.host, t.authority), ("xn--bcher-kva.test", "xn--bcher-kva.test"))

    def test_bad_targets(self) -> None:
        """Bad targets are TargetError with a reason."""
        cases = {
            "": "empty",
            "ftp://h/": "unsupported scheme 'ftp'",
            "http://user:pw@h/": "credentials",
            "http://h:99999/": "invalid port",
            "http://h:0/": "outside 1..65535",
            "::1:8080x": "an IPv6 address is written [ADDR]:PORT",
            "::1:8080": "did you mean [::1]:8080?",
            "http://::1:8080/": "did you mean [::1]:8080?",
            "http://::1/x": "goes in brackets: http://[::1]/",
            "http://[1.2.3.4]/": "IPv4 address cannot be in brackets",
            "http://[fe80::1%25]/": "IPv6",
            "http://bad_host!/": "invalid host name",
            " h": "white space",
            "h\x1b": "control",
            "http:///x": "no host",
        }
        for text, message in cases.items():
            with self.assertRaises(TargetError) as caught:
                parse_target(text)
            self.assertIn(message, str(caught.exception), text)

    def test_path_escaped(self) -> None:
        """Spaces and non-ASCII in a path are percent-encoded: no request splitting."""
        t = parse_target("http://h/a b/\u00e9?x=%41")
        self.assertEqual(t.path, "/a%20b/%C3%A9?x=%41")

    def test_requests(self) -> None:
        """HTTP/1.1: one Host, User-Agent, Connection: close; http10: bare HTTP/1.0 exactly."""
        t = parse_target("[::1]:8080")
        self.assertEqual(
            build_request(t),
            b"HEAD / HTTP/1.1\r\nHost: [::1]:8080\r\nUser-Agent: "
            + USER_AGENT.encode()
            + b"\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        )
        self.assertEqual(build_request(t, http10=True), b"HEAD / HTTP/1.0\r\n\r\n")
        self.assertIn(b"\r\nHost: h\r\n", build_request(parse_target("https://h:443/x")))

    def test_redirects(self) -> None:
        """Relative and absolute Locations resolve against the current URL; http(s) only."""
        here = parse_target("http://127.0.0.1:8080/a/b")
        self.assertEqual(redirect_target(here, "c").url, "http://127.0.0.1:8080/a/c")
        self.assertEqual(redirect_target(here, "/x?y").url, "http://127.0.0.1:8080/x?y")
        self.assertEqual(redirect_target(here, "//[::1]:81/").url, "http://[::1]:81/")
        self.assertEqual(redirect_target(here, "https://h/").url, "https://h/")
        for bad, message in (
            ("ftp://h/", "redirect to a ftp URL"),
            ("", "empty Location"),
            ("/x\x1b", "control"),
        ):
            with self.assertRaises(TargetError) as caught:
                redirect_target(here, bad)
            self.assertIn(message, str(caught.exception))
