"""
``netproto resolve``, ``lookup-host``, ``lookup-cname`` and ``lookup-port``,
run as a user runs them (a subprocess) against this test's loopback DNS
server, its hosts files, and the system resolver for ``localhost`` only.
"""

from __future__ import annotations

import json
import subprocess

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from tests._dns_server import DNSServer, SilentServer, Zone, system_files_skip_reason
from tests._helpers import run_here, tool_skip_reason

RECORDS = {
    "www.example.test": [("CNAME", "web.example.test")],
    "web.example.test": [("A", "127.0.0.10"), ("AAAA", "fd00::10")],
    "v6only.test": [("AAAA", "fd00::20")],
    "loop1.test": [("CNAME", "loop2.test")],
    "loop2.test": [("CNAME", "loop1.test")],
}


async def netproto(*args: str) -> tuple[int, str, str]:
    """
    Run ``netproto ARGS`` in this process, on the reactor the server runs in
    (``tests/test_cli_records.py`` runs the console script itself once).
    """
    return await run_here(*args)


class NameCommandTests(TestCase):
    """The name commands against the loopback server."""

    def setUp(self) -> None:
        self.zone = Zone(RECORDS)
        self.server = DNSServer(self.zone)
        host, port = self.server.start(reactor)
        self.spec = f"{host}:{port}"
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.server.stop()))

    async def test_text_output(self) -> None:
        """Each command prints its answer alone: one address, all addresses, one name."""
        self.assertEqual(
            await netproto("resolve", "--server", self.spec, "www.example.test"),
            (0, "127.0.0.10\n", ""),
        )
        self.assertEqual(
            await netproto("resolve", "--net", "ip6", "--server", self.spec, "www.example.test"),
            (0, "fd00::10\n", ""),
        )
        self.assertEqual(
            await netproto("lookup-host", "--server", self.spec, "www.example.test"),
            (0, "127.0.0.10\nfd00::10\n", ""),
        )
        self.assertEqual(
            await netproto("lookup-cname", "--server", self.spec, "www.example.test"),
            (0, "web.example.test.\n", ""),
        )

    async def test_json(self) -> None:
        """--json: one object with stable keys."""
        status, out, _ = await netproto("resolve", "--json", "--server", self.spec, "v6only.test")
        self.assertEqual(
            (status, json.loads(out)),
            (
                0,
                {
                    "host": "v6only.test",
                    "network": "ip",
                    "address": "fd00::20",
                    "version": 6,
                    "zone": None,
                    "source": "dns",
                },
            ),
        )
        status, out, _ = await netproto(
            "lookup-host", "--json", "--server", self.spec, "web.example.test"
        )
        self.assertEqual(
            json.loads(out),
            {"host": "web.example.test", "addresses": ["127.0.0.10", "fd00::10"], "source": "dns"},
        )
        status, out, _ = await netproto(
            "lookup-cname", "--json", "--server", self.spec, "www.example.test"
        )
        self.assertEqual(
            json.loads(out),
            {"host": "www.example.test", "cname": "web.example.test.", "source": "dns"},
        )

    async def test_failures(self) -> None:
        """
        Not found and family mismatches exit 2 (as getent), a loop 3 (the
        lookup failed); one line on stderr, no stdout.
        """
        for args, expected, message in [
            (("lookup-host", "nosuch.test"), 2, "netproto lookup-host: nosuch.test: no such host"),
            (
                ("resolve", "--net", "ip4", "v6only.test"),
                2,
                "netproto resolve: v6only.test: no IPv4 address",
            ),
            (
                ("lookup-cname", "loop1.test"),
                3,
                "netproto lookup-cname: loop1.test: CNAME loop at loop1.test",
            ),
            (
                ("resolve", "--net", "ip6", "127.0.0.1"),
                2,
                "netproto resolve: 127.0.0.1 is an IPv4 address, not ip6",
            ),
            (
                ("resolve", "bad\x1b[31mname"),
                2,
                "netproto resolve: bad\\x1b[31mname: character '\\x1b' is not allowed in a "
                "host name",
            ),
            (("lookup-cname", ""), 2, "netproto lookup-cname: empty host name"),
        ]:
            with self.subTest(args=args):
                status, out, err = await netproto(*args[:-1], "--server", self.spec, args[-1])
                self.assertEqual((status, out, err), (expected, "", message + "\n"))

    async def test_hosts_file(self) -> None:
        """--hosts: names in the file answered from it, others from --server."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("127.0.0.7 box.example.test box\nfe80::7%lo box\n")
        hosts = ("--hosts", path, "--server", self.spec)
        self.assertEqual(
            await netproto("lookup-host", *hosts, "box"), (0, "127.0.0.7\nfe80::7%lo\n", "")
        )
        self.assertEqual(
            await netproto("lookup-cname", *hosts, "box"), (0, "box.example.test.\n", "")
        )
        status, out, _ = await netproto("lookup-cname", "--json", *hosts, "BOX")
        self.assertEqual(
            json.loads(out), {"host": "BOX", "cname": "box.example.test.", "source": "hosts"}
        )
        status, out, _ = await netproto("resolve", "--json", "--net", "ip6", *hosts, "box")
        record = json.loads(out)
        self.assertEqual(
            (record["address"], record["zone"], record["source"]), ("fe80::7%lo", "lo", "hosts")
        )
        self.assertEqual(
            await netproto("resolve", *hosts, "www.example.test"), (0, "127.0.0.10\n", "")
        )
        self.assertEqual({name for name, _ in self.zone.queries}, {"www.example.test"})
        status, out, err = await netproto(
            "lookup-host", "--hosts", "/nonexistent/hosts", "--server", self.spec, "box"
        )
        self.assertEqual(status, 1)  # getent's usage status: the file cannot be used
        self.assertIn("cannot read hosts file /nonexistent/hosts", err)

    async def test_timeout(self) -> None:
        """A server that never answers: exit 3 (no answer) after --timeout, saying so."""
        silent = SilentServer()
        port = reactor.listenUDP(0, silent, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        spec = f"127.0.0.1:{port.getHost().port}"
        status, out, err = await netproto(
            "lookup-host", "--timeout", "0.5", "--server", spec, "www.example.test"
        )
        self.assertEqual((status, out), (3, ""))
        self.assertEqual(
            err, f"netproto lookup-host: www.example.test: no answer from {spec} within 0.5 s\n"
        )
        self.assertGreater(silent.received, 0)


class IPv6ServerCommandTests(TestCase):
    """``--server [::1]:PORT``."""

    async def test_bracketed(self) -> None:
        """A bracketed IPv6 server with a port is asked over IPv6."""
        server = DNSServer(Zone(RECORDS))
        try:
            host, port = server.start(reactor, "::1")
        except Exception as e:
            raise self.skipTest(f"no IPv6 loopback: {e}") from None
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(server.stop()))
        self.assertEqual(
            await netproto("resolve", "--server", f"[{host}]:{port}", "www.example.test"),
            (0, "127.0.0.10\n", ""),
        )
        self.assertEqual(server.zone.queries[0][0], "www.example.test")


class SystemCommandTests(TestCase):
    """The name commands through the system resolver, for localhost only."""

    async def test_localhost(self) -> None:
        """localhost resolves as the C library says (``getent ahosts``: from /etc/hosts)."""
        reason = system_files_skip_reason("localhost")
        if reason:
            raise self.skipTest(reason)
        status, out, err = await netproto("lookup-host", "--json", "localhost")
        self.assertEqual((status, err), (0, ""))
        record = json.loads(out)
        self.assertEqual(record["source"], "system")
        self.assertEqual(await netproto("resolve", "127.0.0.1"), (0, "127.0.0.1\n", ""))
        reason = tool_skip_reason("getent")
        if reason:
            raise self.skipTest(reason)
        lines = subprocess.run(
            ["getent", "ahosts", "localhost"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.splitlines()
        system = {line.split()[0] for line in lines}
        ours = set(record["addresses"])
        # getent asks with AI_ADDRCONFIG, which may hide ::1 where no IPv6 is configured.
        self.assertEqual({a for a in ours if ":" not in a}, {a for a in system if ":" not in a})
        self.assertLessEqual(system, ours)
        status, out, _ = await netproto("resolve", "localhost")
        self.assertEqual(out, record["addresses"][0] + "\n")


class PortCommandTests(TestCase):
    """``netproto lookup-port``."""

    async def test_ports(self) -> None:
        """tcp telnet 23, udp domain 53 (as getent says), a number its service; errors exit 2."""
        self.assertEqual(await netproto("lookup-port", "tcp", "telnet"), (0, "23\n", ""))
        status, out, _ = await netproto("lookup-port", "--json", "udp", "domain")
        self.assertEqual(status, 0)
        self.assertEqual(json.loads(out), {"network": "udp", "service": "domain", "port": 53})
        self.assertEqual(await netproto("lookup-port", "tcp6", "23"), (0, "telnet\n", ""))
        self.assertEqual(
            await netproto("lookup-port", "tcp", "no-such-service"),
            (2, "", "netproto lookup-port: no-such-service/tcp: unknown service\n"),
        )
        self.assertEqual(
            await netproto("lookup-port", "udp", "65536"),
            (2, "", "netproto lookup-port: port 65536 is out of range (0 to 65535)\n"),
        )
        if tool_skip_reason("getent") is None:
            line = subprocess.run(
                ["getent", "services", "telnet/tcp"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
            self.assertEqual(line.split()[1], "23/tcp")


class UsageTests(TestCase):
    """Malformed command lines exit 1 (getent's usage status) with one line."""

    async def test_usage(self) -> None:
        """Bad --server, --timeout, --net, network, or a missing operand: exit 1."""
        for args in [
            ("resolve", "--server", "localhost", "x.test"),
            ("resolve", "--server", "[::1]:0", "x.test"),
            ("lookup-host", "--timeout", "0", "x.test"),
            ("lookup-host", "--timeout", "soon", "x.test"),
            ("resolve", "--net", "ip5", "x.test"),
            ("lookup-port", "sctp", "80"),
            ("lookup-cname",),
        ]:
            with self.subTest(args=args):
                status, out, err = await netproto(*args)
                self.assertEqual((status, out), (1, ""))
                self.assertEqual(len(err.splitlines()), 1, err)
                self.assertNotIn("Traceback", err)
