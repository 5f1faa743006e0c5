"""``netproto daytime`` and ``netproto echo``, run as a user runs them against real servers."""

from __future__ import annotations

import calendar
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto.cli import CommandError
from netproto.cli._services import parse_target
from netproto.daytime import DaytimeDatagramProtocol, DaytimeFactory
from netproto.echo import EchoDatagramProtocol, EchoFactory
from tests._helpers import on_terminal, run_cli
from tests._servers import IPV6_SKIP, closed_port, reactor, wait_until


class ParseTargetTests(SynchronousTestCase):
    """:func:`parse_target`."""

    def test_forms(self) -> None:
        """HOST:PORT, [V6]:PORT, bare hosts and bare IPv6 literals (default port)."""
        self.assertEqual(parse_target("127.0.0.1:13", 7), ("127.0.0.1", 13))
        self.assertEqual(parse_target("[::1]:1200", 7), ("::1", 1200))
        self.assertEqual(parse_target("[::1]", 7), ("::1", 7))
        self.assertEqual(parse_target("::1", 7), ("::1", 7))
        self.assertEqual(parse_target("[::1:1313]", 7), ("::1:1313", 7))
        self.assertEqual(parse_target("localhost", 13), ("localhost", 13))

    @given(st.ip_addresses(), st.integers(min_value=1, max_value=65535))
    def test_round_trip(self, address: Any, port: int) -> None:
        """
        Any address written as the docs say (IPv6 bracketed) parses back to it
        and its port; bare, it is its own host with the default port, unless it
        reads as an address and a port (``::1:1313``): then a usage error asks
        whether the user meant the bracketed form.
        """
        text = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
        self.assertEqual(parse_target(text, 7), (str(address), port))
        if address.version == 4:
            self.assertEqual(parse_target(str(address), 7), (str(address), 7))
            return
        self.assertEqual(parse_target(f"[{address}]", 7), (str(address), 7))
        try:
            parsed = parse_target(str(address), 7)
        except CommandError as e:
            head, _, tail = str(address).rpartition(":")
            self.assertEqual(e.status, 2)
            self.assertIn(f"did you mean [{head}]:{tail}?", str(e))
        else:
            self.assertEqual(parsed, (str(address), 7))

    @given(st.text(max_size=40))
    def test_never_crashes(self, text: str) -> None:
        """Any text gives a host and a valid port, or a usage error (status 2)."""
        try:
            host, port = parse_target(text, 7)
        except CommandError as e:
            self.assertEqual(e.status, 2)
        else:
            self.assertTrue(host)
            self.assertTrue(1 <= port <= 65535)

    def test_errors(self) -> None:
        """Malformed targets are usage errors (status 2) saying what is wrong."""
        for text, reason in (
            ("[::1", "missing ']'"),
            ("[::1]x", "expected ':PORT'"),
            ("host:", "empty port"),
            (":13", "empty host"),
            ("host:0", "1 to 65535"),
            ("host:65536", "1 to 65535"),
            ("host:1e3", "1 to 65535"),
            ("[]:7", "empty host"),
            ("::1:1313", "did you mean [::1]:1313?"),
            ("2001:db8::8:13", "did you mean [2001:db8::8]:13?"),
        ):
            with self.assertRaises(CommandError) as caught:
                parse_target(text, 7)
            self.assertEqual(caught.exception.status, 2, text)
            self.assertIn(reason, str(caught.exception), text)


class ServicesCommandTests(TestCase):
    """The commands in a subprocess against servers in this process."""

    timeout = 60

    def serve(self, interface: str = "127.0.0.1") -> dict[str, int]:
        ports: dict[str, int] = {}
        for name, factory in (
            ("daytime", DaytimeFactory(reactor, utc=True)),
            ("echo", EchoFactory(reactor)),
        ):
            listening = reactor.listenTCP(0, factory, interface=interface)
            self.addCleanup(listening.stopListening)
            self.addCleanup(wait_until, lambda f=factory: f.limiter.total == 0)
            ports[name] = listening.getHost().port
        for name, protocol in (
            ("udp-daytime", DaytimeDatagramProtocol(reactor, utc=True)),
            ("udp-echo", EchoDatagramProtocol(reactor)),
        ):
            udp = reactor.listenUDP(0, protocol, interface=interface, maxPacketSize=65535)
            self.addCleanup(udp.stopListening)
            ports[name] = udp.getHost().port
        return ports

    async def cli(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
        result: subprocess.CompletedProcess[str] = await deferToThread(
            run_cli, *args, stdin=stdin, timeout=30
        )
        return result

    def assert_now(self, text: str) -> None:
        stamp = calendar.timegm(time.strptime(text))
        self.assertLess(abs(stamp - time.time()), 5)

    async def test_daytime_tcp_and_udp(self) -> None:
        """daytime prints the server's line over TCP, and one JSON object with --udp --json."""
        ports = self.serve()
        result = await self.cli("daytime", f"127.0.0.1:{ports['daytime']}")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        self.assert_now(result.stdout.rstrip("\n"))
        result = await self.cli("daytime", f"127.0.0.1:{ports['udp-daytime']}", "--udp", "--json")
        record: dict[str, Any] = json.loads(result.stdout)
        self.assertEqual(sorted(record), ["host", "line", "port", "time_ms", "transport"])
        self.assertEqual((record["transport"], record["port"]), ("udp", ports["udp-daytime"]))
        self.assert_now(record["line"])

    async def test_ipv6_literal(self) -> None:
        """[::1]:PORT reaches the IPv6 servers, TCP and UDP."""
        ports = self.serve("::1")
        result = await self.cli("echo", f"[::1]:{ports['echo']}", "over six")
        self.assertEqual((result.returncode, result.stdout), (0, "over six\n"))
        result = await self.cli("daytime", f"[::1]:{ports['udp-daytime']}", "--udp")
        self.assertEqual(result.returncode, 0)
        self.assert_now(result.stdout.rstrip("\n"))

    test_ipv6_literal.skip = IPV6_SKIP  # type: ignore[attr-defined]

    async def test_echo_message_and_stdin(self) -> None:
        """echo sends MESSAGE, or standard input when absent, and prints what came back."""
        ports = self.serve()
        result = await self.cli("echo", f"127.0.0.1:{ports['echo']}", "hello, echo")
        self.assertEqual(
            (result.returncode, result.stdout, result.stderr), (0, "hello, echo\n", "")
        )
        payload = b"from stdin \x1b[31m\n"
        result = await self.cli(
            "echo", f"127.0.0.1:{ports['udp-echo']}", "--udp", "--json", stdin=payload
        )
        record = json.loads(result.stdout)
        self.assertEqual(
            (record["bytes"], record["match"], record["echo"], record["transport"]),
            (len(payload), True, payload.decode(), "udp"),
        )
        result = await self.cli("echo", f"127.0.0.1:{ports['echo']}", stdin=payload)
        self.assertEqual(result.stdout, payload.decode())  # a pipe: the bytes as they came

    async def cli_bytes(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        """Run ``netproto ARGS`` with bytes in and out (standard output a pipe)."""
        result: subprocess.CompletedProcess[bytes] = await deferToThread(
            subprocess.run,
            [sys.executable, "-m", "netproto", *args],
            input=stdin,
            capture_output=True,
            timeout=60,
            check=False,
        )
        return result

    async def test_binary_passes_through(self) -> None:
        """
        Random bytes (NULs, invalid UTF-8, CR LF) on standard input come back
        byte for byte on a pipe, over TCP (1 MB) and UDP (one 60,000-byte
        datagram), as ``nc -N`` passes them through; nothing is added.
        """
        ports = self.serve()
        for transport, size in (("tcp", 1 << 20), ("udp", 60000)):
            with self.subTest(transport=transport):
                payload = os.urandom(size) + b"\xc8\x00\r\n"
                port = ports["echo" if transport == "tcp" else "udp-echo"]
                args = ["echo", f"127.0.0.1:{port}"] + (["--udp"] if transport == "udp" else [])
                result = await self.cli_bytes(*args, stdin=payload)
                self.assertEqual((result.returncode, result.stderr), (0, b""))
                self.assertEqual(len(result.stdout), len(payload))
                self.assertTrue(result.stdout == payload, "the bytes came back changed")

    async def test_json_is_lossless(self) -> None:
        """
        --json: UTF-8 comes back as text ('encoding': 'utf-8'); anything else in
        base64 ('encoding': 'base64'), which decodes to the very bytes sent.
        """
        import base64

        ports = self.serve()
        target = f"127.0.0.1:{ports['echo']}"
        binary = bytes(range(256)) * 4
        result = await self.cli_bytes("echo", "--json", target, stdin=binary)
        record = json.loads(result.stdout)
        self.assertEqual((record["encoding"], record["bytes"]), ("base64", len(binary)))
        self.assertEqual(base64.b64decode(record["echo"]), binary)
        text = "caf\u00e9 \x1b[31m\x00\n"
        result = await self.cli_bytes("echo", "--json", target, stdin=text.encode())
        record = json.loads(result.stdout)
        self.assertEqual((record["encoding"], record["echo"]), ("utf-8", text))

    async def test_words_joined(self) -> None:
        """
        Several words after HOST:PORT are sent joined with single spaces, as
        echo(1) does, and come back as a line.
        """
        ports = self.serve()
        result = await self.cli_bytes("echo", f"127.0.0.1:{ports['echo']}", "a", "b", "c  d")
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, b"a b c  d\n", b""))
        result = await self.cli_bytes(
            "echo", f"127.0.0.1:{ports['udp-echo']}", "two", "--udp", "words", "--json"
        )
        self.assertEqual(json.loads(result.stdout)["echo"], "two words")

    async def test_terminal_escapes_unless_raw(self) -> None:
        """
        On a terminal the echo is text with control bytes and invalid UTF-8
        escaped and a final newline; --raw writes the bytes as they are there too.
        """
        ports = self.serve()
        target = f"127.0.0.1:{ports['echo']}"
        payload = b"term \x1b[31m\xc8\n"

        def shown(*extra: str) -> bytes:
            return on_terminal(["echo", target, *extra], stdin=payload, timeout=30)[2]

        escaped = await deferToThread(shown)
        self.assertEqual(escaped.replace(b"\r\n", b"\n"), b"term \\x1b[31m\\xc8\n")
        raw = await deferToThread(shown, "--raw")
        self.assertIn(b"term \x1b[31m\xc8", raw)

    async def test_failures(self) -> None:
        """Refusal and timeout: exit 1, one line on stderr naming the target, no traceback."""
        tcp_port = closed_port(socket.SOCK_STREAM)
        result = await self.cli("echo", f"127.0.0.1:{tcp_port}", "x")
        self.assertEqual(
            (result.returncode, result.stderr),
            (1, f"netproto echo: 127.0.0.1:{tcp_port}: connection refused\n"),
        )
        udp_port = closed_port(socket.SOCK_DGRAM)
        result = await self.cli("daytime", f"127.0.0.1:{udp_port}", "--udp")
        self.assertEqual(result.returncode, 1)
        self.assertIn("port unreachable", result.stderr)
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(silent.close)
        silent.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{silent.getsockname()[1]}"
        result = await self.cli("echo", target, "x", "--udp", "--timeout", "0.3")
        self.assertEqual(
            (result.returncode, result.stderr),
            (1, f"netproto echo: {target} (udp): no answer within 0.3 s\n"),
        )

    async def test_usage_errors(self) -> None:
        """Bad targets and timeouts exit 2 with one line; oversized UDP input exits 1."""
        for args in (
            ("echo", "127.0.0.1:0", "x"),
            ("daytime", "[::1"),
            ("daytime", "127.0.0.1:13", "--timeout", "-1"),
            ("daytime", "127.0.0.1:13", "--timeout", "soon"),
        ):
            result = await self.cli(*args)
            self.assertEqual(result.returncode, 2, args)
            self.assertEqual(len(result.stderr.splitlines()), 1, args)
            self.assertNotIn("Traceback", result.stderr)
        result = await self.cli("echo", "127.0.0.1:7", "--udp", stdin=b"x" * 70000)
        self.assertEqual(result.returncode, 1)
        self.assertIn("do not fit in one UDP datagram", result.stderr)


class InterruptTests(SynchronousTestCase):
    """Ctrl-C while ``netproto echo`` waits for standard input."""

    skip = None if os.path.isdir("/proc/self/task") else "needs /proc to see the process's threads"

    def test_ctrl_c_while_reading_stdin(self) -> None:
        """SIGINT ends the command with status 130 even though stdin stays open."""
        # An explicit pipe: under pytest's capture, stdin=PIPE can reach the child closed.
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, write_end)
        process = subprocess.Popen(
            [sys.executable, "-m", "netproto", "echo", "127.0.0.1:7"],
            stdin=read_end,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(read_end)
        self.addCleanup(process.kill)
        # The reading thread exists once the command runs (signal handlers set).
        deadline = time.monotonic() + 20
        while len(os.listdir(f"/proc/{process.pid}/task")) < 2:
            self.assertLess(time.monotonic(), deadline, "the command never started reading")
            time.sleep(0.05)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
        self.assertEqual(process.returncode, 130, err.decode(errors="replace"))
        self.assertNotIn(b"Fatal", err)
