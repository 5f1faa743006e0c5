"""
``netproto head`` as a drop-in for ``curl -I`` in scripts: curl's exit
statuses, ``-w``, ``-H``, ``-A``, ``-v``, ``--resolve``, ``-4``/``-6``,
``-o``, ``-s`` and the proxy variables, side by side with curl where it is
installed, against loopback servers and a loopback proxy (in this process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from twisted.internet.ssl import PrivateCertificate

from tests._head_helpers import (
    ProxyFactory,
    ScriptedFactory,
    direct_environ,
    make_certificates,
    run_tool,
)
from tests._helpers import root_skip_reason, run_here, tool_skip_reason
from tests._servers import has_ipv6
from tests.test_head_live import LiveTestCase

WRITE_OUT = "%{http_code} %{remote_ip} %{remote_port} %{num_redirects} %{url_effective}\\n"


class CurlParityTests(LiveTestCase):
    """The same command lines given to netproto head and to curl."""

    def setUp(self) -> None:
        self.patch(os, "environ", direct_environ())
        self.ca, server = make_certificates()
        self.tls = PrivateCertificate.loadPEM(server).options()
        fd, self.ca_file = tempfile.mkstemp(suffix=".pem")
        self.addCleanup(os.unlink, self.ca_file)
        os.write(fd, self.ca)
        os.close(fd)

    def curl_skip(self) -> None:
        reason = tool_skip_reason("curl")
        if reason:
            raise self.skipTest(reason)

    async def curl(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, bytes]:
        out, _err, status = await run_tool("curl", "-sI", *args, env=env)
        return status, out

    async def test_exit_statuses(self) -> None:
        """Each failure exits as curl does for it, with one JSON error object."""
        web = self.web()
        tls = self.web(tls=self.tls)
        silent = self.listen(ScriptedFactory())
        empty = self.listen(ScriptedFactory(close_after_reply=True))
        plain = self.listen(ScriptedFactory(greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n"))
        proxy = self.listen(ProxyFactory(refuse=("127.0.0.1",)))
        # A port nothing listens on: one that was just freed.
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            refused = s.getsockname()[1]
        cases: list[tuple[tuple[str, ...], int, str, bool]] = [
            ((f"http://127.0.0.1:{refused}/",), 7, "refused", True),
            (("-f", f"http://127.0.0.1:{web}/missing"), 22, "http", True),
            (("-m", "0.5", f"http://127.0.0.1:{silent}/"), 28, "timeout", True),
            ((f"http://127.0.0.1:{empty}/",), 52, "protocol", True),
            (("-L", f"http://127.0.0.1:{web}/loop/a"), 47, "redirect", False),
            (("http://[::1/",), 3, "invalid", True),
            ((f"https://127.0.0.1:{plain}/",), 35, "tls", True),
            ((f"https://127.0.0.1:{tls}/",), 60, "certificate", True),
            (("--cacert", "/nonexistent.pem", f"https://127.0.0.1:{tls}/"), 77, "tls", True),
            (("-x", f"127.0.0.1:{proxy}", f"https://127.0.0.1:{tls}/"), 56, "refused", True),
            (("ftp://127.0.0.1/",), 1, "invalid", False),
        ]
        for argv, status, kind, compare in cases:
            with self.subTest(argv=argv):
                got, out, err = await run_here("head", "--json", *argv)
                self.assertEqual(got, status, err)
                self.assertEqual(json.loads(out.splitlines()[-1])["error"]["kind"], kind)
                self.assertEqual(len(err.splitlines()), 1, err)
                if compare and shutil.which("curl"):
                    # curl's -L loop stops at its own --max-redirs: compared apart.
                    theirs, _ = await self.curl("--max-redirs", "5", *argv)
                    self.assertEqual(theirs, status)
        if shutil.which("curl"):
            theirs, _ = await self.curl("-L", "--max-redirs", "5", f"http://127.0.0.1:{web}/loop/a")
            self.assertEqual(theirs, 47)

    async def test_write_out(self) -> None:
        """-w prints curl's variables as curl prints them; 000 when nothing answered."""
        web = self.web()
        url = f"http://127.0.0.1:{web}/r/1"
        got, out, err = await run_here("head", "-s", "-L", "-o", os.devnull, "-w", WRITE_OUT, url)
        self.assertEqual((got, err), (0, ""))
        self.assertEqual(out, f"200 127.0.0.1 {web} 1 http://127.0.0.1:{web}/r/0\n")
        got, out, _ = await run_here(
            "head", "-s", "-o", os.devnull, "-w", "%{time_namelookup} %{time_total}", url
        )
        self.assertRegex(out, r"\A\d+\.\d{6} \d+\.\d{6}\Z")
        got, out, err = await run_here("head", "-s", "-w", "%{http_code}", "http://127.0.0.1:1/")
        self.assertEqual((got, out, err), (7, "000", ""))
        got, out, err = await run_here("head", "-w", "%{nonsense}", url)
        self.assertEqual(got, 2)
        self.assertIn("unknown variable %{nonsense}", err)
        self.curl_skip()
        status, theirs = await self.curl("-L", "-o", os.devnull, "-w", WRITE_OUT, url)
        self.assertEqual((status, theirs.decode()), (0, f"200 127.0.0.1 {web} 1 {url[:-1]}0\n"))

    async def test_request_fields(self) -> None:
        """-H replaces, removes and adds fields, -A sets User-Agent: the server sees curl's."""
        web = self.web()
        url = f"http://127.0.0.1:{web}/"
        argv = ("-H", "X-Extra: 1", "-H", "Accept:", "-A", "scripted/1.0", url)
        got, out, _ = await run_here("head", *argv)
        self.assertEqual(got, 0)
        self.assertIn("X-Seen-Ua: scripted/1.0\r\n", out)
        got, _, _ = await run_here("head", "-H", "Bad\r\nX: y", url)
        self.assertEqual(got, 3)
        self.curl_skip()
        _, theirs = await self.curl(*argv)
        self.assertIn(b"X-Seen-Ua: scripted/1.0\r\n", theirs)

    async def test_verbose(self) -> None:
        """-v: the request ('> ') and the response ('< ') on stderr, the head on stdout."""
        web = self.web()
        got, out, err = await run_here("head", "-v", f"http://127.0.0.1:{web}/")
        self.assertEqual(got, 0)
        self.assertIn(f"* Connected to 127.0.0.1:{web}\n> HEAD / HTTP/1.1\n", err)
        self.assertIn("< HTTP/1.1 200 OK\n", err)
        self.assertTrue(out.startswith("HTTP/1.1 200 OK\r\n"))

    async def test_resolve_and_family(self) -> None:
        """--resolve connects to the address given, the Host field names the host; -4, -6."""
        web = self.web()
        url = f"http://example.test:{web}/"
        got, out, _ = await run_here("head", "--resolve", f"example.test:{web}:127.0.0.1", url)
        self.assertEqual(got, 0)
        self.assertIn(f"X-Seen-Host: example.test:{web}\r\n", out)
        got, _, err = await run_here("head", "-6", f"http://127.0.0.1:{web}/")
        self.assertEqual((got, err), (6, "netproto head: 127.0.0.1 is an IPv4 address, not IPv6\n"))
        got, _, _ = await run_here("head", "--resolve", "example.test:x:127.0.0.1", url)
        self.assertEqual(got, 2)
        if has_ipv6():
            web6 = self.web("::1")
            got, out, _ = await run_here("head", "-6", f"http://[::1]:{web6}/")
            self.assertEqual(got, 0)
        self.curl_skip()
        _, theirs = await self.curl("--resolve", f"example.test:{web}:127.0.0.1", url)
        self.assertIn(f"X-Seen-Host: example.test:{web}\r\n".encode(), theirs)

    async def test_output_file(self) -> None:
        """-o FILE gets the head, CRLF line ends kept, as curl -I -o writes it."""
        web = self.web()
        path = self.mktemp()
        got, out, _ = await run_here("head", "-o", path, f"http://127.0.0.1:{web}/missing")
        self.assertEqual((got, out), (0, ""))
        with open(path, "rb") as f:
            self.assertTrue(f.read().startswith(b"HTTP/1.1 404 Not Found\r\n"))

    async def test_proxies(self) -> None:
        """
        http_proxy: the whole URL asked of the proxy; https_proxy: a CONNECT
        tunnel, TLS verified end to end; no_proxy: direct. curl, given the same
        environment, sends the proxy the same request lines.
        """
        web = self.web()
        tls = self.web(tls=self.tls)
        factory = ProxyFactory()
        proxy = f"http://127.0.0.1:{self.listen(factory)}"
        env = direct_environ(http_proxy=proxy, https_proxy=proxy)
        self.patch(os, "environ", env)
        plain, secure = f"http://127.0.0.1:{web}/", f"https://127.0.0.1:{tls}/"
        got, out, _ = await run_here("head", plain)
        self.assertEqual(got, 0)
        self.assertIn(f"X-Seen-Host: 127.0.0.1:{web}\r\n", out)
        got, out, err = await run_here("head", "--cacert", self.ca_file, secure)
        self.assertEqual((got, err), (0, ""))
        self.assertTrue(out.startswith("HTTP/1.1 200 OK\r\n"))
        ours = list(factory.requests)
        self.assertEqual(ours, [f"HEAD {plain} HTTP/1.1", f"CONNECT 127.0.0.1:{tls} HTTP/1.1"])
        got, out, _ = await run_here("head", "--noproxy", "127.0.0.0/8", plain)
        self.patch(os, "environ", direct_environ(http_proxy=proxy, no_proxy="127.0.0.1"))
        got2, _, _ = await run_here("head", plain)
        self.assertEqual((got, got2, factory.requests), (0, 0, ours))
        self.curl_skip()
        del factory.requests[:]
        await self.curl(plain, env=env)
        await self.curl("--cacert", self.ca_file, secure, env=env)
        self.assertEqual(
            [line.rpartition(" ")[0] for line in factory.requests],
            [line.rpartition(" ")[0] for line in ours],
        )


class UnresolvedTests(LiveTestCase):
    """Names that do not resolve, in a network namespace of their own (no query leaves)."""

    def test_statuses(self) -> None:
        """A host name or a proxy name that does not resolve: curl's 6 and 5, as curl exits."""
        reason = root_skip_reason() or tool_skip_reason("unshare")
        if reason:
            raise self.skipTest(reason)
        env = direct_environ()
        for argv, status in (
            (["http://nosuch.invalid/"], 6),
            (["-x", "http://nosuch.invalid:3128", "http://127.0.0.1:1/"], 5),
        ):
            for command in ([sys.executable, "-m", "netproto", "head"], ["curl", "-sI"]):
                if command[0] == "curl" and not shutil.which("curl"):
                    continue
                with self.subTest(argv=argv, command=command[0]):
                    result = subprocess.run(
                        ["unshare", "-n", *command, *argv],
                        capture_output=True,
                        timeout=60,
                        env=env,
                        check=False,
                    )
                    self.assertEqual(result.returncode, status, result.stderr)
