"""
The lookups that scripts ran with getent and dig: ``lookup-mx``, ``-txt``,
``-srv``, ``-ns``, ``-soa``, ``lookup-addr`` and the reverse ``lookup-port``,
against this test's loopback DNS server (and ``dig`` and ``getent`` side by
side where installed), in this process; their exit statuses and JSON errors.
"""

from __future__ import annotations

import json
import random
import subprocess

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer, reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto.lookup import MX, NS, SOA, SRV, Lookup, record_text
from netproto.lookup._records import order_srv
from tests._dns_server import DNSServer, SilentServer, Zone, system_files_skip_reason
from tests._helpers import run_cli, run_here, tool_skip_reason

SOA_FIELDS = ("ns1.example.test", "hostmaster.example.test", 2026120201, 3600, 600, 86400, 60)

RECORDS = {
    "example.test": [
        ("MX", (20, "mx2.example.test")),
        ("MX", (10, "mx1.example.test")),
        ("NS", "ns1.example.test"),
        ("NS", "ns2.example.test"),
        ("SOA", SOA_FIELDS),
        ("TXT", (b"v=spf1", b" -all")),
        ("TXT", (b'say "hi" \\ \x01',)),
    ],
    "mail.example.test": [("CNAME", "example.test")],
    "_sip._udp.example.test": [
        ("SRV", (20, 0, 5061, "sip2.example.test")),
        ("SRV", (10, 5, 5060, "sip1.example.test")),
    ],
    "web.example.test": [("A", "127.0.0.10")],
    "10.0.0.127.in-addr.arpa": [("PTR", "web.example.test")],
}

TEXT = {
    ("lookup-mx", "example.test"): "10 mx1.example.test.\n20 mx2.example.test.\n",
    ("lookup-mx", "mail.example.test"): "10 mx1.example.test.\n20 mx2.example.test.\n",
    ("lookup-ns", "example.test"): "ns1.example.test.\nns2.example.test.\n",
    ("lookup-soa", "example.test"): (
        "ns1.example.test. hostmaster.example.test. 2026120201 3600 600 86400 60\n"
    ),
    ("lookup-txt", "example.test"): '"v=spf1" " -all"\n"say \\"hi\\" \\\\ \\001"\n',
    ("lookup-srv", "sip", "udp", "example.test"): (
        "10 5 5060 sip1.example.test.\n20 0 5061 sip2.example.test.\n"
    ),
    ("lookup-srv", "_sip._udp.example.test"): (
        "10 5 5060 sip1.example.test.\n20 0 5061 sip2.example.test.\n"
    ),
    ("lookup-addr", "127.0.0.10"): "web.example.test.\n",
}
"""Each command's output: ``dig +short``'s lines."""


class RecordCommandTests(TestCase):
    """The record commands against the loopback server."""

    def setUp(self) -> None:
        self.zone = Zone(RECORDS, refused=["refused.test"], servfail=["broken.test"])
        self.server = DNSServer(self.zone)
        host, port = self.server.start(reactor)
        self.port = port
        self.spec = f"{host}:{port}"
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.server.stop()))

    async def test_text(self) -> None:
        """One record a line, as ``dig +short`` prints it; exit 0, nothing on stderr."""
        for argv, text in TEXT.items():
            with self.subTest(argv=argv):
                got = await run_here(argv[0], "--server", self.spec, *argv[1:])
                self.assertEqual(got, (0, text, ""))

    async def test_json(self) -> None:
        """--json: one object, the name asked, the type and the records' fields."""
        status, out, _ = await run_here(
            "lookup-mx", "--json", "--server", self.spec, "example.test"
        )
        self.assertEqual(
            (status, json.loads(out)),
            (
                0,
                {
                    "name": "example.test",
                    "type": "MX",
                    "records": [
                        {"host": "mx1.example.test.", "pref": 10},
                        {"host": "mx2.example.test.", "pref": 20},
                    ],
                    "source": "dns",
                },
            ),
        )
        _, out, _ = await run_here(
            "lookup-srv", "--json", "--server", self.spec, "sip", "udp", "example.test"
        )
        record = json.loads(out)
        self.assertEqual(record["name"], "_sip._udp.example.test")
        self.assertEqual(
            record["records"][0],
            {"target": "sip1.example.test.", "port": 5060, "priority": 10, "weight": 5},
        )
        _, out, _ = await run_here("lookup-txt", "--json", "--server", self.spec, "example.test")
        self.assertEqual(
            json.loads(out)["records"][0], {"text": "v=spf1 -all", "strings": ["v=spf1", " -all"]}
        )
        _, out, _ = await run_here("lookup-soa", "--json", "--server", self.spec, "example.test")
        self.assertEqual(json.loads(out)["records"][0]["serial"], 2026120201)
        _, out, _ = await run_here("lookup-addr", "--json", "--server", self.spec, "127.0.0.10")
        self.assertEqual(
            json.loads(out),
            {"address": "127.0.0.10", "names": ["web.example.test."], "source": "dns"},
        )

    async def test_failures(self) -> None:
        """
        getent's statuses: 2 not found (no such name, no record of the type),
        3 no answer (refused, server failure, timeout), 1 usage; with --json
        one error object whose kind says which.
        """
        silent = SilentServer()
        udp = reactor.listenUDP(0, silent, interface="127.0.0.1")
        self.addCleanup(udp.stopListening)
        mute = f"127.0.0.1:{udp.getHost().port}"
        cases = [
            (("lookup-mx", "nosuch.test"), 2, "not-found", "nosuch.test: no such host"),
            (("lookup-mx", "web.example.test"), 2, "not-found", "web.example.test: no MX record"),
            (("lookup-addr", "127.0.0.99"), 2, "not-found", "127.0.0.99: no name"),
            (("lookup-ns", "refused.test"), 3, "refused", "refused.test: query refused by "),
            (("lookup-txt", "broken.test"), 3, "server-failure", "broken.test: server failure"),
            (("lookup-soa", "bad..name"), 2, "invalid", "bad..name: empty label in host name"),
            (("lookup-srv", "a", "b"), 1, "usage", "give SERVICE PROTO NAME, or NAME alone"),
        ]
        for argv, status, kind, message in cases:
            with self.subTest(argv=argv):
                got, out, err = await run_here(argv[0], "--json", "--server", self.spec, *argv[1:])
                self.assertEqual(got, status)
                error = json.loads(out)["error"]
                self.assertEqual(error["kind"], kind)
                self.assertTrue(error["message"].startswith(message), error["message"])
                self.assertEqual(err, f"netproto {argv[0]}: {error['message']}\n")
        status, out, err = await run_here(
            "lookup-mx", "--json", "--timeout", "0.3", "--server", mute, "example.test"
        )
        self.assertEqual((status, json.loads(out)["error"]["kind"]), (3, "timeout"))
        self.assertEqual(
            await run_here("lookup-mx", "--bogus", "example.test"),
            (
                1,
                "",
                "netproto lookup-mx: unrecognized arguments: --bogus "
                "(see 'netproto lookup-mx --help')\n",
            ),
        )

    async def test_dig_side_by_side(self) -> None:
        """
        ``dig +short`` asked the same server prints the same lines (in answer
        order, where we sort MX and SRV records as Go does; and with the names
        of a CNAME chain, which we leave out).
        """
        reason = tool_skip_reason("dig")
        if reason:
            raise self.skipTest(reason)
        for argv, text in TEXT.items():
            command, *names = argv
            kind = command.removeprefix("lookup-").upper()
            question = ["-x", names[0]] if kind == "ADDR" else [kind, names[-1]]
            if kind == "SRV" and len(names) == 3:
                question = ["SRV", "_sip._udp.example.test"]
            out, err, status = await getProcessOutputAndValue(
                "dig",
                ["+short", "+tries=1", "+time=2", "@127.0.0.1", "-p", str(self.port), *question],
                reactor=reactor,
            )
            with self.subTest(argv=argv):
                self.assertEqual(status, 0, err)
                lines = out.decode().splitlines()
                if kind not in ("NS", "ADDR"):
                    # dig +short shows a CNAME chain's names too: we show the records only.
                    lines = [line for line in lines if " " in line]
                self.assertEqual(sorted(lines), sorted(text.splitlines()))

    async def test_library(self) -> None:
        """The library calls beside the commands return the records as Go orders them."""
        lookup = Lookup(reactor, servers=[("127.0.0.1", self.port)])
        self.assertEqual(
            await lookup.lookup_mx("mail.example.test"),
            [MX("mx1.example.test.", 10), MX("mx2.example.test.", 20)],
        )
        self.assertEqual(
            await lookup.lookup_txt("example.test"), ["v=spf1 -all", 'say "hi" \\ \x01']
        )
        self.assertEqual(
            await lookup.lookup_srv("sip", "udp", "example.test"),
            (
                "_sip._udp.example.test.",
                [SRV("sip1.example.test.", 5060, 10, 5), SRV("sip2.example.test.", 5061, 20, 0)],
            ),
        )
        self.assertEqual(
            await lookup.lookup_ns("example.test"),
            [NS("ns1.example.test."), NS("ns2.example.test.")],
        )
        self.assertEqual(
            await lookup.lookup_soa("example.test"),
            SOA("ns1.example.test.", "hostmaster.example.test.", *SOA_FIELDS[2:]),  # type: ignore[arg-type]
        )


class ReverseCommandTests(TestCase):
    """lookup-addr from a hosts file and the system; lookup-port given a number."""

    async def test_hosts_file(self) -> None:
        """--hosts: every name of the address's lines, the canonical one first; no query."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("127.0.0.7 box.example.test box\n127.0.0.7 other\n")
        self.assertEqual(
            await run_here("lookup-addr", "--hosts", path, "--server", "127.0.0.1:1", "127.0.0.7"),
            (0, "box.example.test.\nbox.\nother.\n", ""),
        )

    async def test_system_as_getent(self) -> None:
        """127.0.0.1 through the system resolver: the name ``getent hosts`` gives."""
        reason = system_files_skip_reason("localhost") or tool_skip_reason("getent")
        if reason:
            raise self.skipTest(reason)
        status, out, err = await run_here("lookup-addr", "127.0.0.1")
        getent = subprocess.run(
            ["getent", "hosts", "127.0.0.1"], capture_output=True, text=True, timeout=10
        )
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(out.split()[0], getent.stdout.split()[1] + ".")

    async def test_port_to_service(self) -> None:
        """``lookup-port tcp 23`` is telnet, as ``getent services 23/tcp`` says; --json has both."""
        self.assertEqual(await run_here("lookup-port", "tcp", "23"), (0, "telnet\n", ""))
        status, out, _ = await run_here("lookup-port", "--json", "udp", "53")
        self.assertEqual(json.loads(out), {"network": "udp", "service": "domain", "port": 53})
        status, out, err = await run_here("lookup-port", "--json", "tcp", "64999")
        self.assertEqual((status, json.loads(out)["error"]["kind"]), (2, "not-found"))
        self.assertEqual(err, "netproto lookup-port: 64999/tcp: no service on this port\n")
        reason = tool_skip_reason("getent")
        if reason:
            raise self.skipTest(reason)
        for port in ("22", "25", "80", "443"):
            getent = subprocess.run(
                ["getent", "services", f"{port}/tcp"], capture_output=True, text=True, timeout=10
            )
            with self.subTest(port=port):
                self.assertEqual(
                    await run_here("lookup-port", "tcp", port),
                    (0, getent.stdout.split()[0] + "\n", ""),
                )


class ConsoleScriptTests(SynchronousTestCase):
    """The installed command's own process: the lookups' usage status is getent's 1."""

    def test_usage_status(self) -> None:
        """An unknown option of a lookup is its own usage error, exit 1, as getent exits."""
        result = run_cli("lookup-host", "--json", "-n", "localhost")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stderr,
            "netproto lookup-host: unrecognized arguments: -n "
            "(see 'netproto lookup-host --help')\n",
        )
        self.assertEqual(json.loads(result.stdout)["error"]["kind"], "usage")


class OrderTests(SynchronousTestCase):
    """The orders Go gives records in, and dig's text of them."""

    @given(
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5)), min_size=0, max_size=8),
        st.integers(0, 2**32),
    )
    def test_srv_order(self, fields: list[tuple[int, int]], seed: int) -> None:
        """order_srv keeps every record once, priorities ascending (RFC 2782)."""
        records = [SRV(f"t{i}.", 1, p, w) for i, (p, w) in enumerate(fields)]
        ordered = order_srv(records, random.Random(seed))
        self.assertEqual(sorted(ordered, key=id), sorted(records, key=id))
        self.assertEqual([r.priority for r in ordered], sorted(r.priority for r in records))

    def test_weights_count(self) -> None:
        """Within one priority, a heavier record comes first more often."""
        records = [SRV("light.", 1, 0, 1), SRV("heavy.", 1, 0, 9)]
        rng = random.Random(7)
        first = [order_srv(records, rng)[0].target for _ in range(400)]
        self.assertGreater(first.count("heavy."), 300)

    def test_text(self) -> None:
        """record_text writes each type as dig +short does."""
        self.assertEqual(record_text(MX("mx.", 5)), "5 mx.")
        self.assertEqual(record_text((b'a"b', b"\xff")), '"a\\"b" "\\255"')
