"""HEAD targets, the Host field and the request bytes (pure code)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
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


class CurlOptionTests(SynchronousTestCase):
    """-H as curl reads it, and the proxy curl picks from the environment."""

    def test_parse_header(self) -> None:
        """'Name: v' sets, 'Name:' removes, 'Name;' sends empty; CR/LF never pass."""
        from netproto.head import parse_header

        self.assertEqual(parse_header("X-A:  one two "), ("X-A", "one two"))
        self.assertEqual(parse_header("Accept:"), ("Accept", None))
        self.assertEqual(parse_header("X-Empty;"), ("X-Empty", ""))
        for bad in ("no colon", "Bad Name: x", "X: a\r\nInjected: 1", ": x"):
            with self.subTest(bad=bad):
                self.assertRaises(TargetError, parse_header, bad)

    @given(st.text(max_size=40))
    def test_header_never_splits_the_request(self, text: str) -> None:
        """Whatever -H is given, the request keeps one line per field."""
        from netproto.head import parse_header

        try:
            name, value = parse_header(text)
        except TargetError:
            return
        request = build_request(parse_target("http://127.0.0.1/"), headers=((name, value),))
        lines = request.split(b"\r\n")
        self.assertEqual(lines[-2:], [b"", b""])
        self.assertNotIn(b"\r", b"".join(lines))
        self.assertNotIn(b"\n", b"".join(lines))

    def test_proxy_for(self) -> None:
        """http_proxy (lower case only), https_proxy, all_proxy and no_proxy, as curl reads them."""
        from netproto.head import proxy_for

        plain, secure = parse_target("http://www.example.test/"), parse_target("https://[::1]/")
        proxy = "http://127.0.0.1:3128"
        self.assertEqual(proxy_for(plain, {"http_proxy": proxy}).port, 3128)  # type: ignore[union-attr]
        self.assertIsNone(proxy_for(plain, {"HTTP_PROXY": proxy}))
        self.assertIsNone(proxy_for(plain, {"https_proxy": proxy}))
        self.assertEqual(proxy_for(secure, {"HTTPS_PROXY": "127.0.0.1"}).port, 1080)  # type: ignore[union-attr]
        self.assertIsNotNone(proxy_for(secure, {"all_proxy": proxy}))
        for no_proxy in ("example.test", ".example.test", "www.example.test", "*"):
            with self.subTest(no_proxy=no_proxy):
                self.assertIsNone(proxy_for(plain, {"http_proxy": proxy, "no_proxy": no_proxy}))
        self.assertIsNone(proxy_for(secure, {"https_proxy": proxy, "NO_PROXY": "::1/128"}))
        self.assertIsNotNone(proxy_for(plain, {"http_proxy": proxy, "no_proxy": "ample.test"}))
        self.assertRaises(TargetError, proxy_for, plain, {"http_proxy": "socks5://127.0.0.1"})
