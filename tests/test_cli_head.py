"""``netproto head`` run as a user runs it (subprocess), against loopback servers."""

from __future__ import annotations

import json
import os
import tempfile

from twisted.internet.ssl import PrivateCertificate
from twisted.trial.unittest import SynchronousTestCase

from netproto import __version__
from tests._head_helpers import ScriptedFactory, make_certificates, run_netproto
from tests._helpers import run_cli
from tests.test_head_live import LiveTestCase


class HeadCommandTests(LiveTestCase):
    """Output, options and exit statuses of ``netproto head``."""

    async def test_curl_like_output(self) -> None:
        """The status line and fields, one per line, then an empty line; exit 0."""
        port = self.web()
        out, err, status = await run_netproto("head", f"127.0.0.1:{port}")
        self.assertEqual((status, err), (0, b""))
        lines = out.decode().split("\r\n")
        self.assertEqual(lines[0], "HTTP/1.1 200 OK")
        self.assertIn(f"X-Seen-Host: 127.0.0.1:{port}", lines)
        self.assertIn(f"X-Seen-Ua: netproto/{__version__}", lines)
        self.assertEqual(
            [x for x in lines if x.startswith("Set-Cookie")], ["Set-Cookie: a=1", "Set-Cookie: b=2"]
        )
        self.assertEqual(lines[-2:], ["", ""])

    async def test_json(self) -> None:
        """--json: one object with stable keys; headers as ordered pairs."""
        port = self.web()
        out, err, status = await run_netproto("head", "--json", f"http://127.0.0.1:{port}/r/1")
        self.assertEqual((status, err), (0, b""))
        record = json.loads(out)
        self.assertEqual(
            sorted(record),
            [
                "headers",
                "http_version",
                "interim",
                "peer",
                "reason",
                "redirect",
                "status",
                "timing",
                "url",
            ],
        )
        self.assertEqual(
            (record["status"], record["redirect"]), (302, f"http://127.0.0.1:{port}/r/0")
        )
        self.assertIn(["Location", "/r/0"], record["headers"])
        self.assertEqual(
            sorted(record["timing"]),
            ["connect_ms", "first_byte_ms", "name_lookup_ms", "tls_ms", "total_ms"],
        )
        timing = record["timing"]
        self.assertIsNone(timing["tls_ms"])
        self.assertLessEqual(timing["name_lookup_ms"], timing["connect_ms"])
        self.assertLessEqual(timing["connect_ms"], timing["first_byte_ms"])
        self.assertLessEqual(timing["first_byte_ms"], timing["total_ms"])

    async def test_follow(self) -> None:
        """-L prints every hop; a loop prints the hops, then one error line, exit 47 (curl's)."""
        port = self.web()
        out, err, status = await run_netproto("head", "-L", f"http://127.0.0.1:{port}/r/2")
        self.assertEqual(status, 0)
        starts = [x for x in out.decode().split("\r\n") if x.startswith("HTTP/")]
        self.assertEqual(starts, ["HTTP/1.1 302 Found", "HTTP/1.1 302 Found", "HTTP/1.1 200 OK"])
        out, err, status = await run_netproto(
            "head", "-L", "--json", f"http://127.0.0.1:{port}/loop/a"
        )
        self.assertEqual(status, 47)
        records = [json.loads(x) for x in out.splitlines()]
        self.assertEqual([r.get("status") for r in records], [301, 308, None])
        self.assertEqual(records[-1]["error"]["kind"], "redirect")
        self.assertEqual(
            err.decode(),
            f"netproto head: redirect loop: http://127.0.0.1:{port}/loop/a was already visited\n",
        )

    async def test_fail(self) -> None:
        """A 404 is exit 0 (as curl); with --fail it is exit 22 with one line, head still shown."""
        port = self.web()
        out, err, status = await run_netproto("head", f"127.0.0.1:{port}/missing")
        self.assertEqual((status, out.split(b"\r\n")[0]), (0, b"HTTP/1.1 404 Not Found"))
        out, err, status = await run_netproto("head", "--fail", f"127.0.0.1:{port}/missing")
        self.assertEqual((status, out.split(b"\r\n")[0]), (22, b"HTTP/1.1 404 Not Found"))
        self.assertEqual(err, b"netproto head: the server answered HTTP/1.1 404 Not Found\n")

    async def test_control_bytes_escaped(self) -> None:
        """Terminal escapes a server sends are printed escaped, never raw."""
        reply = b"HTTP/1.1 200 \x1b]0;pwned\x07\r\nX-Evil: \x1b[31mred\x9b\r\n\r\n"
        port = self.listen(ScriptedFactory(reply=reply))
        out, err, status = await run_netproto("head", f"127.0.0.1:{port}")
        self.assertEqual((status, err), (0, b""))
        self.assertNotIn(b"\x1b", out)
        self.assertNotIn(b"\x07", out)
        self.assertEqual(
            out.decode().split("\r\n")[:2],
            ["HTTP/1.1 200 \\x1b]0;pwned\\x07", "X-Evil: \\x1b[31mred\\x9b"],
        )

    async def test_errors_are_one_line(self) -> None:
        """Not HTTP (curl's 8) and a timeout (28): one line on stderr."""
        port = self.listen(ScriptedFactory(greeting=b"SSH-2.0-OpenSSH_9.6\r\n\x1b[2J"))
        out, err, status = await run_netproto("head", f"127.0.0.1:{port}")
        self.assertEqual((status, out), (8, b""))
        self.assertEqual(
            err, b"netproto head: not an HTTP server: it sent 'SSH-2.0-OpenSSH_9.6\\r\\n\\x1b[2J'\n"
        )
        silent = self.listen(ScriptedFactory())
        out, err, status = await run_netproto("head", "--timeout", "0.5", f"127.0.0.1:{silent}")
        self.assertEqual(status, 28)
        self.assertEqual(
            err,
            b"netproto head: timed out after 0.5 s waiting for the response "
            b"head from 127.0.0.1:%d (0 bytes of head received)\n" % silent,
        )

    async def test_http10(self) -> None:
        """--http1.0 sends the bare HTTP/1.0 request: the server sees no Host."""
        port = self.web()
        out, err, status = await run_netproto("head", "--http1.0", f"127.0.0.1:{port}")
        self.assertEqual((status, err), (0, b""))
        self.assertIn(b"\r\nX-Host-Count: 0\r\n", out)

    async def test_tls_options(self) -> None:
        """--cacert trusts a CA file; without it verification fails; -k skips verification."""
        ca, server = make_certificates()
        port = self.web(tls=PrivateCertificate.loadPEM(server).options())
        fd, path = tempfile.mkstemp(suffix=".pem")
        self.addCleanup(os.unlink, path)
        os.write(fd, ca)
        os.close(fd)
        url = f"https://127.0.0.1:{port}/"
        out, err, status = await run_netproto("head", "--cacert", path, url)
        self.assertEqual((status, out.split(b"\r\n")[0]), (0, b"HTTP/1.1 200 OK"))
        out, err, status = await run_netproto("head", url)
        self.assertEqual(
            (status, err), (60, b"netproto head: TLS handshake failed: certificate verify failed\n")
        )
        out, err, status = await run_netproto("head", "-k", url)
        self.assertEqual(status, 0)


class HeadUsageTests(SynchronousTestCase):
    """Bad arguments: no network at all."""

    def test_bad_target(self) -> None:
        """A target that is not http(s) is curl's exit 1 (unsupported protocol), one line."""
        result = run_cli("head", "ftp://127.0.0.1/")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stderr,
            "netproto head: ftp://127.0.0.1/: unsupported scheme 'ftp' (http and https only)\n",
        )

    def test_bad_options(self) -> None:
        """A bad --timeout or a missing target is a usage error, exit 2."""
        for args in (
            ["--timeout", "0", "h"],
            ["--timeout", "nan", "h"],
            ["--timeout", "x", "h"],
            [],
        ):
            result = run_cli("head", *args)
            self.assertEqual(result.returncode, 2, args)
            self.assertEqual(len(result.stderr.splitlines()), 1)

    def test_bad_cacert(self) -> None:
        """An unreadable or non-PEM --cacert is curl's exit 77 with one line."""
        result = run_cli("head", "--cacert", "/nonexistent.pem", "https://127.0.0.1:9/")
        self.assertEqual(result.returncode, 77)
        self.assertEqual(
            result.stderr, "netproto head: --cacert /nonexistent.pem: No such file or directory\n"
        )
