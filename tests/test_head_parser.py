"""The HTTP response-head parser (pure code): RFC 9112 choices, caps, any split of the bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from netproto.head import (
    HeadLimits,
    HeadParseError,
    HeadParser,
    HeadTooLargeError,
    NotHTTPError,
    ResponseHead,
)

SIMPLE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: test\r\n"
    b"Set-Cookie: a=1\r\n"
    b"Content-Length: 123456789\r\n"
    b"Set-Cookie: b=2\r\n"
    b"\r\n"
)


def parse(data: bytes, limits: HeadLimits | None = None) -> ResponseHead | None:
    return HeadParser(limits or HeadLimits()).feed(data)


class StatusLineTests(SynchronousTestCase):
    """The status line."""

    def test_simple(self) -> None:
        """Version, code, reason and fields come out in order, repeated names kept."""
        head = parse(SIMPLE)
        assert head is not None
        self.assertEqual((head.version, head.status, head.reason), ("HTTP/1.1", 200, "OK"))
        self.assertEqual(
            head.headers,
            (
                ("Server", "test"),
                ("Set-Cookie", "a=1"),
                ("Content-Length", "123456789"),
                ("Set-Cookie", "b=2"),
            ),
        )
        self.assertEqual(head.get_all("set-cookie"), ["a=1", "b=2"])
        self.assertEqual(head.get("SERVER"), "test")
        self.assertIsNone(head.get("Location"))
        self.assertEqual(head.status_line, "HTTP/1.1 200 OK")

    def test_reason_with_spaces_and_missing_reason(self) -> None:
        """A reason may hold spaces; a missing reason (with or without its SP) is empty."""
        head = parse(b"HTTP/1.0 404 Not  Found Here\r\n\r\n")
        assert head is not None
        self.assertEqual((head.version, head.reason), ("HTTP/1.0", "Not  Found Here"))
        for line in (b"HTTP/1.1 204\r\n\r\n", b"HTTP/1.1 204 \r\n\r\n"):
            head = parse(line)
            assert head is not None
            self.assertEqual(
                (head.status, head.reason, head.status_line), (204, "", "HTTP/1.1 204")
            )

    def test_malformed_status_lines(self) -> None:
        """Malformed status lines are HeadParseError with the line quoted."""
        for line in (
            b"HTTP/1.1 abc OK",
            b"HTTP/1.1  200 OK",
            b"HTTP/11 200 OK",
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1\t200 OK",
            b"HTTP/1.1",
        ):
            with self.assertRaises(HeadParseError) as caught:
                parse(line + b"\r\n\r\n")
            self.assertNotIsInstance(caught.exception, NotHTTPError)
            self.assertIn("malformed status line", str(caught.exception))

    def test_status_range_and_version(self) -> None:
        """Codes outside 100..599 and major versions other than 1 are refused."""
        with self.assertRaises(HeadParseError) as caught:
            parse(b"HTTP/1.1 600 Weird\r\n\r\n")
        self.assertIn("outside 100..599", str(caught.exception))
        with self.assertRaises(HeadParseError) as caught:
            parse(b"HTTP/1.1 099 Low\r\n\r\n")
        self.assertIn("outside 100..599", str(caught.exception))
        with self.assertRaises(HeadParseError) as caught:
            parse(b"HTTP/2.0 200 OK\r\n\r\n")
        self.assertIn("unsupported HTTP version HTTP/2.0", str(caught.exception))

    def test_not_http_fails_at_first_byte(self) -> None:
        """An SSH banner fails at its first byte, a near miss at the first wrong byte."""
        parser = HeadParser()
        with self.assertRaises(NotHTTPError) as caught:
            parser.feed(b"S")
        self.assertEqual(str(caught.exception), "not an HTTP server: it sent 'S'")
        parser = HeadParser()
        self.assertIsNone(parser.feed(b"HTT"))
        with self.assertRaises(NotHTTPError):
            parser.feed(b"X")
        with self.assertRaises(NotHTTPError) as caught:
            HeadParser().feed(b"SSH-2.0-OpenSSH_9.6\r\n")
        self.assertIn("'SSH-2.0-OpenSSH_9.6\\r\\n'", str(caught.exception))
        with self.assertRaises(NotHTTPError):
            HeadParser().feed(b"\r\nHTTP/1.1 200 OK\r\n\r\n")

    def test_eof(self) -> None:
        """End of connection before the head: a message saying how far it got."""
        parser = HeadParser()
        with self.assertRaises(HeadParseError) as caught:
            parser.eof()
        self.assertEqual(
            str(caught.exception), "the server closed the connection without a response"
        )
        parser.feed(b"HTTP/1.1 200 OK\r\nServer: x")
        with self.assertRaises(HeadParseError) as caught:
            parser.eof()
        self.assertIn(
            "before the end of the response head (26 bytes received)", str(caught.exception)
        )
        parser = HeadParser()
        parser.feed(SIMPLE)
        parser.eof()  # complete: no error


class FieldTests(SynchronousTestCase):
    """Field lines and the RFC 9112 edge cases."""

    def test_ows_and_empty_values(self) -> None:
        """White space around a value is removed; an empty value is kept."""
        head = parse(b"HTTP/1.1 200 OK\r\nA:   x y \t\r\nB:\r\nC:\t\r\n\r\n")
        assert head is not None
        self.assertEqual(head.headers, (("A", "x y"), ("B", ""), ("C", "")))

    def test_bare_lf(self) -> None:
        """A bare LF ends a line (RFC 9112 2.2)."""
        head = parse(b"HTTP/1.1 200 OK\nA: 1\r\nB: 2\n\n")
        assert head is not None
        self.assertEqual(head.headers, (("A", "1"), ("B", "2")))

    def test_bare_cr(self) -> None:
        """A bare CR in a line is an error."""
        for data in (b"HTTP/1.1 200 OK\rX\r\n\r\n", b"HTTP/1.1 200 OK\r\nA: 1\r2\r\n\r\n"):
            with self.assertRaises(HeadParseError) as caught:
                parse(data)
            self.assertIn("bare CR", str(caught.exception))

    def test_obs_fold(self) -> None:
        """An obsolete fold continues the previous field, replaced by one SP."""
        head = parse(b"HTTP/1.1 200 OK\r\nA: one\r\n   two\r\n\tthree\r\nB: 2\r\n\r\n")
        assert head is not None
        self.assertEqual(head.headers, (("A", "one two three"), ("B", "2")))
        head = parse(b"HTTP/1.1 200 OK\r\nA:\r\n x\r\n\r\n")
        assert head is not None
        self.assertEqual(head.headers, (("A", "x"),))

    def test_fold_before_first_field(self) -> None:
        """White space between the status line and the first field is an error."""
        with self.assertRaises(HeadParseError) as caught:
            parse(b"HTTP/1.1 200 OK\r\n Evil: 1\r\n\r\n")
        self.assertIn("white space before the first field line", str(caught.exception))

    def test_bad_field_lines(self) -> None:
        """No colon, space before the colon, bad names and NUL are errors."""
        cases = {
            b"NoColon": "without a colon",
            b"Name : v": "white space before the colon",
            b"Na me: v": "invalid field name",
            b": v": "invalid field name",
            b"A: x\x00y": "NUL byte",
        }
        for line, message in cases.items():
            with self.assertRaises(HeadParseError) as caught:
                parse(b"HTTP/1.1 200 OK\r\n" + line + b"\r\n\r\n")
            self.assertIn(message, str(caught.exception))

    def test_control_bytes_and_latin1_kept(self) -> None:
        """Control bytes other than NUL/CR and obs-text are kept, ISO-8859-1 decoded, losslessly."""
        head = parse(b"HTTP/1.1 200 \xe9t\xe9\r\nX: \x1b[31mred\xff\r\n\r\n")
        assert head is not None
        self.assertEqual(head.reason.encode("latin-1"), b"\xe9t\xe9")
        self.assertEqual(head.headers[0][1].encode("latin-1"), b"\x1b[31mred\xff")

    def test_stray_body_ignored(self) -> None:
        """Bytes after the head are not parsed; later feeds return the same head."""
        parser = HeadParser()
        head = parser.feed(SIMPLE + b"garbage\x00 that is no head")
        self.assertIsNotNone(head)
        self.assertTrue(parser.done)
        self.assertIs(parser.feed(b"more garbage"), head)


class InterimTests(SynchronousTestCase):
    """1xx interim responses."""

    def test_interim_collected(self) -> None:
        """100 and 103 are collected in order; parsing goes on to the final head."""
        parser = HeadParser()
        head = parser.feed(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n"
        )
        assert head is not None
        self.assertEqual(head.status, 200)
        self.assertEqual([h.status for h in parser.interim], [100, 103])
        self.assertEqual(parser.interim[1].headers, (("Link", "</s.css>; rel=preload"),))

    def test_switching_protocols_refused(self) -> None:
        """101 is an error: a HEAD request never asks for an upgrade."""
        with self.assertRaises(HeadParseError) as caught:
            parse(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
        self.assertIn("101", str(caught.exception))

    def test_garbage_after_interim(self) -> None:
        """A non-HTTP line after an interim head is a malformed status line."""
        with self.assertRaises(HeadParseError) as caught:
            parse(b"HTTP/1.1 100 Continue\r\n\r\nhello\r\n")
        self.assertIn("after an interim response", str(caught.exception))

    def test_interim_cap(self) -> None:
        """More interim responses than the cap is HeadTooLargeError."""
        with self.assertRaises(HeadTooLargeError):
            parse(b"HTTP/1.1 100 Continue\r\n\r\n" * 11)


class LimitTests(SynchronousTestCase):
    """Caps on line length, head size and field count."""

    def test_long_line_fails_before_its_end(self) -> None:
        """A line longer than max_line fails as soon as that many bytes are buffered."""
        parser = HeadParser(HeadLimits(max_line=100))
        parser.feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 90)
        with self.assertRaises(HeadTooLargeError) as caught:
            parser.feed(b"a" * 20)
        self.assertIn("longer than 100 bytes", str(caught.exception))
        with self.assertRaises(HeadTooLargeError):
            HeadParser(HeadLimits(max_line=100)).feed(
                b"HTTP/1.1 200 OK\r\nX: " + b"a" * 200 + b"\r\n"
            )

    def test_head_size(self) -> None:
        """Many short lines still stop at max_head."""
        parser = HeadParser(HeadLimits(max_head=1000, max_fields=1000))
        parser.feed(b"HTTP/1.1 200 OK\r\n")
        with self.assertRaises(HeadTooLargeError) as caught:
            for _ in range(200):
                parser.feed(b"X: 12345678\r\n")
        self.assertIn("larger than 1000 bytes", str(caught.exception))
        self.assertLessEqual(parser.received, 1000 + len(b"X: 12345678\r\n"))

    def test_field_count(self) -> None:
        """One field more than max_fields is HeadTooLargeError; exactly max_fields is fine."""
        ok = b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 5 + b"\r\n"
        head = parse(ok, HeadLimits(max_fields=5))
        assert head is not None
        self.assertEqual(len(head.headers), 5)
        with self.assertRaises(HeadTooLargeError) as caught:
            parse(b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 6 + b"\r\n", HeadLimits(max_fields=5))
        self.assertIn("more than 5 fields", str(caught.exception))


_TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_names = st.text(_TOKEN_CHARS, min_size=1, max_size=20)
_values = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, start = [], 0
    for point in [*points, len(data)]:
        out.append(data[start:point])
        start = point
    return out


class PropertyTests(SynchronousTestCase):
    """Hypothesis: any split gives the same head; only HeadParseError ever escapes."""

    @settings(max_examples=200, deadline=None)
    @given(
        status=st.integers(100, 599).filter(lambda s: s >= 200),
        reason=st.text("abcdefghijklmnopqrstuvwxyz ", max_size=20),
        fields=st.lists(st.tuples(_names, _values), max_size=30),
        cuts=st.lists(st.integers(0, 10_000), max_size=20),
        lf_only=st.booleans(),
    )
    def test_model(
        self,
        status: int,
        reason: str,
        fields: list[tuple[str, str]],
        cuts: list[int],
        lf_only: bool,
    ) -> None:
        """A generated valid head parses to what was generated, however it is split."""
        eol = "\n" if lf_only else "\r\n"
        text = (
            f"HTTP/1.1 {status} {reason}{eol}" + "".join(f"{n}: {v}{eol}" for n, v in fields) + eol
        )
        parser = HeadParser()
        result = None
        for chunk in _chunks(text.encode("latin-1"), cuts):
            result = parser.feed(chunk)
        assert result is not None
        self.assertEqual((result.status, result.reason), (status, reason))
        self.assertEqual(list(result.headers), fields)

    @settings(max_examples=500, deadline=None)
    @given(
        data=st.binary(max_size=400),
        cuts=st.lists(st.integers(0, 1000), max_size=10),
        prefix=st.sampled_from([b"", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 100 x\r\n\r\n"]),
    )
    def test_fuzz(self, data: bytes, cuts: list[int], prefix: bytes) -> None:
        """Arbitrary bytes in arbitrary chunks: a head, None, or HeadParseError, nothing else."""
        parser = HeadParser(HeadLimits(max_head=300, max_line=120, max_fields=8, max_interim=2))
        try:
            for chunk in _chunks(prefix + data, cuts):
                result = parser.feed(chunk)
                if result is not None:
                    self.assertIsInstance(result, ResponseHead)
            parser.eof()
        except HeadParseError:
            pass
