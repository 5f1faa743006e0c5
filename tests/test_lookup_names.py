"""
The transport-free half of the lookups: host name checks, ``ADDR[:PORT]``
server specifications, hosts files, ``resolv.conf``, service ports and the
choice of one address, with the standard library and ``getent`` as oracles.
"""

from __future__ import annotations

import ipaddress
import subprocess
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from netproto.lookup import (
    HostsFile,
    InvalidLookupError,
    NameNotFoundError,
    ServiceNotFoundError,
    check_host_name,
    format_server,
    order_addresses,
    parse_resolv_conf,
    parse_server,
    pick_address,
    service_port,
)
from netproto.util import canonical, parse_ip
from tests._dns_server import system_files_skip_reason
from tests._helpers import tool_skip_reason

ipv4s = st.ip_addresses(v=4)
ipv6s = st.ip_addresses(v=6)
addresses = st.one_of(ipv4s, ipv6s)
labels = st.from_regex(r"[a-z0-9_](?:[a-z0-9_-]{0,20}[a-z0-9_])?", fullmatch=True)
names = st.builds(
    lambda ls, tld: ".".join([*ls, tld]),
    st.lists(labels, min_size=0, max_size=4),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
)


def _getent(*args: str) -> list[str]:
    result = subprocess.run(
        ["getent", *args], capture_output=True, text=True, timeout=10, check=False
    )
    return result.stdout.splitlines() if result.returncode == 0 else []


class HostNameTests(SynchronousTestCase):
    """:func:`check_host_name`."""

    def test_valid(self) -> None:
        """Ordinary, underscore, single-label, absolute and 63-character-label names pass."""
        for name in [
            "localhost",
            "www.example.test",
            "_dmarc.example.test",
            "a",
            "x1.y-2.z",
            "example.test.",
            "a" * 63 + ".test",
            "xn--bcher-kva.test",
            "1.2.3.x",
        ]:
            with self.subTest(name=name):
                self.assertEqual(check_host_name(name), name)

    def test_invalid(self) -> None:
        """Each malformed name is refused with its reason."""
        for name, reason in [
            ("", "empty host name"),
            (".", "the root"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            ("a b", "character ' '"),
            ("a%lo", "character '%'"),
            ("-a.test", "start or end with '-'"),
            ("a-.test", "start or end with '-'"),
            ("a" * 64 + ".test", "longer than 63"),
            (".".join(["a" * 50] * 6), "longer than 253"),
            ("bücher.test", "IDNA"),
            ("127.1", "numeric"),
            ("1.2.3", "numeric"),
            ("2130706433", "numeric"),
            ("a\x00b", "character '\\x00'"),
        ]:
            with self.subTest(name=name):
                with self.assertRaises(InvalidLookupError) as caught:
                    check_host_name(name)
                self.assertIn(reason, str(caught.exception))

    @given(names)
    def test_generated_names_pass(self, name: str) -> None:
        """Every name built from valid labels and an alphabetic top label passes."""
        self.assertEqual(check_host_name(name), name)

    @given(st.text(max_size=300))
    def test_any_text_is_checked_or_refused_cleanly(self, text: str) -> None:
        """Any text is accepted or refused with InvalidLookupError, never anything else."""
        try:
            check_host_name(text)
        except InvalidLookupError as e:
            self.assertNotIn("\n", str(e))
        else:
            self.assertTrue(text.isascii() and 0 < len(text.rstrip(".")) <= 253)
            self.assertTrue(
                set(text)
                <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
            )


class ServerSpecTests(SynchronousTestCase):
    """:func:`parse_server` and :func:`format_server`."""

    def test_examples(self) -> None:
        """Port 53 by default; IPv6 bare or bracketed; addresses canonical."""
        for text, expected in [
            ("127.0.0.1", ("127.0.0.1", 53)),
            ("127.0.0.1:5353", ("127.0.0.1", 5353)),
            ("::1", ("::1", 53)),
            ("[::1]", ("::1", 53)),
            ("[::1]:5353", ("::1", 5353)),
            ("[0:0:0:0:0:0:0:1]:1", ("::1", 1)),
            ("[::ffff:7f00:1]", ("::ffff:127.0.0.1", 53)),
        ]:
            with self.subTest(text=text):
                self.assertEqual(parse_server(text), expected)

    def test_invalid(self) -> None:
        """Names, zones, bad ports and stray text are refused with the reason."""
        for text, reason in [
            ("", "empty"),
            ("localhost", "not an IPv4 or IPv6 address"),
            ("::1:5353", "did you mean [::1]:5353?"),
            ("::ffff:7f00:1", "did you mean [::ffff:7f00]:1?"),
            ("127.0.0.1:0", "out of range"),
            ("127.0.0.1:65536", "out of range"),
            ("127.0.0.1:+53", "not a number"),
            ("127.0.0.1:", "empty port"),
            ("127.0.0.1:053x", "not a number"),
            ("[::1", "missing ']'"),
            ("[::1]x", "expected ':PORT'"),
            ("[127.0.0.1]:53", "brackets are for IPv6"),
            ("::1:53x", "not a valid IPv6 address"),
            ("[fe80::1%lo]:53", "zone"),
            ("1.2.3.4:5:6", "not a valid IPv6"),
        ]:
            with self.subTest(text=text):
                with self.assertRaises(InvalidLookupError) as caught:
                    parse_server(text)
                self.assertIn(reason, str(caught.exception))

    @given(addresses, st.integers(1, 65535))
    def test_round_trip(self, address: ipaddress._BaseAddress, port: int) -> None:
        """format_server then parse_server gives back the address (canonical) and port."""
        text = format_server((str(address), port))
        host, parsed_port = parse_server(text)
        self.assertEqual(parsed_port, port)
        self.assertEqual(ipaddress.ip_address(host), address)
        self.assertEqual(host, canonical(parse_ip(str(address))))

    @given(ipv6s)
    def test_bare_ipv6_takes_port_53(self, address: ipaddress.IPv6Address) -> None:
        """
        An unbracketed IPv6 address is all address (the port is 53), unless it
        reads as an address and a port (``::1:5353``): that is refused, with
        the bracketed form it most likely means.
        """
        try:
            parsed = parse_server(str(address))
        except InvalidLookupError as e:
            head, _, tail = str(address).rpartition(":")
            self.assertIn(f"did you mean [{head}]:{tail}?", str(e))
        else:
            self.assertEqual(parsed, (canonical(address), 53))

    @given(st.text(max_size=60))
    def test_any_text(self, text: str) -> None:
        """Any text parses to a valid (address, port) or raises InvalidLookupError."""
        try:
            host, port = parse_server(text)
        except InvalidLookupError:
            return
        self.assertTrue(1 <= port <= 65535)
        ipaddress.ip_address(host)


class ResolvConfTests(SynchronousTestCase):
    """:func:`parse_resolv_conf`."""

    def test_nameservers(self) -> None:
        """nameserver lines in order; other lines, comments and bad addresses skipped."""
        text = (
            "# comment\nsearch example.test\nnameserver 127.0.0.53\n"
            "nameserver ::1 # trailing\nnameserver bogus\noptions ndots:2\n"
            ";nameserver 1.1.1.1\nnameserver\n"
        )
        self.assertEqual(parse_resolv_conf(text), [("127.0.0.53", 53), ("::1", 53)])

    def test_default(self) -> None:
        """No name server: the C library's default, 127.0.0.1."""
        self.assertEqual(parse_resolv_conf(""), [("127.0.0.1", 53)])

    @given(
        st.lists(
            st.one_of(
                addresses.map(lambda a: ("server", a)),
                st.text(max_size=40).map(lambda t: ("junk", t)),
            ),
            max_size=10,
        )
    )
    def test_generated(self, lines: list[tuple[str, Any]]) -> None:
        """The nameserver lines written come back in order, whatever junk surrounds them."""
        text = "\n".join(
            f"nameserver {v}"
            if kind == "server"
            else "# " + v.replace("\n", " ").replace("\r", " ")
            for kind, v in lines
        )
        expected = [(canonical(parse_ip(str(v))), 53) for kind, v in lines if kind == "server"]
        self.assertEqual(parse_resolv_conf(text), expected or [("127.0.0.1", 53)])


class HostsFileTests(SynchronousTestCase):
    """:class:`HostsFile`."""

    TEXT = """\
# The canonical name is the first of a line.
127.0.0.1   localhost
127.0.1.1\tbox.example.test box   # a comment
::1         localhost ip6-localhost
fe80::1%lo  linklocal
127.0.0.2   Box.Example.Test. alias.test
not-an-address broken.test
300.1.1.1   broken.test
127.0.0.1   localhost
"""

    def test_lookup(self) -> None:
        """Addresses of all lines, file order, no duplicates; case and dot ignored."""
        hosts = HostsFile.parse(self.TEXT)
        self.assertEqual([str(a) for a in hosts.addresses("localhost")], ["127.0.0.1", "::1"])
        self.assertEqual(
            [str(a) for a in hosts.addresses("BOX.example.test.")], ["127.0.1.1", "127.0.0.2"]
        )
        self.assertEqual([str(a) for a in hosts.addresses("linklocal")], ["fe80::1%lo"])
        self.assertEqual(hosts.addresses("broken.test"), ())
        self.assertNotIn("broken.test", hosts)
        self.assertIn("Alias.Test", hosts)

    def test_canonical(self) -> None:
        """The canonical name is the first name of the first line listing the name."""
        hosts = HostsFile.parse(self.TEXT)
        self.assertEqual(hosts.canonical_name("box"), "box.example.test.")
        self.assertEqual(hosts.canonical_name("ip6-localhost"), "localhost.")
        self.assertEqual(hosts.canonical_name("alias.test"), "Box.Example.Test.")
        self.assertIsNone(hosts.canonical_name("nowhere"))

    def test_lines_end_at_newline_only(self) -> None:
        """Only \\n ends a line, as in the C library: \\x1c or \\u2028 do not end a comment."""
        hosts = HostsFile.parse(
            "# c\x1c127.0.0.9 sneaky\n# c\u2028127.0.0.9 sly\r\n127.0.0.1 fine\r\n"
        )
        self.assertNotIn("sneaky", hosts)
        self.assertNotIn("sly", hosts)
        self.assertEqual([str(a) for a in hosts.addresses("fine")], ["127.0.0.1"])
        self.assertEqual(parse_resolv_conf("# c\x1cnameserver 127.0.0.9\n"), [("127.0.0.1", 53)])

    def test_unreadable(self) -> None:
        """A missing file is an InvalidLookupError naming it."""
        with self.assertRaises(InvalidLookupError) as caught:
            HostsFile.read("/nonexistent/hosts")
        self.assertIn("/nonexistent/hosts", str(caught.exception))

    @given(
        st.lists(st.tuples(addresses, st.lists(names, min_size=1, max_size=3)), max_size=12),
        st.sampled_from([" ", "\t", "  \t "]),
    )
    def test_generated(
        self, lines: list[tuple[ipaddress._BaseAddress, list[str]]], space: str
    ) -> None:
        """Any file of valid lines parses back to the addresses and canonical names written."""
        text = "\n".join(space.join([str(a), *ns]) + "  # c" for a, ns in lines)
        hosts = HostsFile.parse(text)
        for name in {n.lower() for _, ns in lines for n in ns}:
            expected: list[ipaddress._BaseAddress] = []
            for a, ns in lines:
                if name in (n.lower() for n in ns) and a not in expected:
                    expected.append(a)
            self.assertEqual(list(hosts.addresses(name)), expected)
            first = next(ns[0] for _, ns in lines if name in (n.lower() for n in ns))
            self.assertEqual(hosts.canonical_name(name), first + ".")

    def test_system_hosts_file_agrees_with_getent(self) -> None:
        """
        For every IPv4 name of /etc/hosts, our parser finds the addresses that
        ``getent ahosts`` (the C library, AF_UNSPEC: answered from the file,
        no DNS) finds.
        """
        reason = tool_skip_reason("getent")
        if reason:
            raise self.skipTest(reason)
        hosts = HostsFile.read("/etc/hosts")
        with open("/etc/hosts") as f:
            listed = [line.split("#")[0].split() for line in f]
        names = sorted(
            {
                n
                for fields in listed
                if len(fields) > 1
                for n in fields[1:]
                if ":" not in fields[0] and not n.endswith(".")
            }
        )[:20]
        if not names:
            raise self.skipTest("/etc/hosts lists no IPv4 name")
        reason = system_files_skip_reason(*names)
        if reason:
            raise self.skipTest(reason)
        checked = 0
        for name in names:
            lines = _getent("ahosts", name)
            system = {line.split()[0] for line in lines}
            ours = {canonical(a) for a in hosts.addresses(name)}
            if system:
                checked += 1
                self.assertEqual(
                    {a for a in system if "." in a and ":" not in a},
                    {a for a in ours if ":" not in a},
                    name,
                )
        self.assertGreater(checked, 0)


class ServicePortTests(SynchronousTestCase):
    """:func:`service_port`."""

    def test_examples(self) -> None:
        """tcp telnet is 23, udp domain is 53; any tcp/udp network variant works."""
        self.assertEqual(service_port("tcp", "telnet"), 23)
        self.assertEqual(service_port("udp", "domain"), 53)
        self.assertEqual(service_port("tcp6", "http"), 80)
        self.assertEqual(service_port("udp4", "ntp"), 123)
        self.assertEqual(service_port("tcp", "HTTP"), 80)

    def test_numeric(self) -> None:
        """Numbers pass through after a range check, without the database."""

        def never(name: str, proto: str) -> int:
            raise AssertionError("the database was read")

        for text, port in [("0", 0), ("23", 23), ("0080", 80), ("65535", 65535)]:
            self.assertEqual(service_port("tcp", text, getservbyname=never), port)
        with self.assertRaises(InvalidLookupError):
            service_port("tcp", "65536", getservbyname=never)

    def test_errors(self) -> None:
        """Unknown service, bad network, malformed names: distinct errors, no traceback."""
        with self.assertRaises(ServiceNotFoundError) as caught:
            service_port("tcp", "no-such-service")
        self.assertEqual(str(caught.exception), "no-such-service/tcp: unknown service")
        self.assertIsInstance(caught.exception, NameNotFoundError)
        for network, service in [
            ("sctp", "http"),
            ("ip", "http"),
            ("tcp", ""),
            ("tcp", "-23"),
            ("tcp", "+23"),
            ("tcp", "a b"),
            ("tcp", "a\x00b"),
            ("tcp", "x" * 100),
        ]:
            with self.subTest(network=network, service=service):
                with self.assertRaises(InvalidLookupError):
                    service_port(network, service)

    def test_agrees_with_getent(self) -> None:
        """
        Every name and alias of ``getent services`` gives its port; a name
        listed twice (``dicom`` is an alias of 104 and a name at 11112) gives
        the first, as the C library does.
        """
        reason = tool_skip_reason("getent")
        if reason:
            raise self.skipTest(reason)
        entries = _getent("services")
        if not entries:
            raise self.skipTest("getent services lists nothing")
        expected: dict[tuple[str, str], int] = {}
        for line in entries:
            fields = line.split()
            port, _, protocol = fields[1].partition("/")
            if protocol in ("tcp", "udp"):
                for name in [fields[0], *fields[2:]]:
                    expected.setdefault((name, protocol), int(port))
        for (name, protocol), port in expected.items():
            if not name.isdigit():
                with self.subTest(name=name, protocol=protocol):
                    self.assertEqual(service_port(protocol, name), port)


class PickTests(SynchronousTestCase):
    """:func:`pick_address` and :func:`order_addresses`."""

    A = [parse_ip(t) for t in ["::1", "127.0.0.2", "::ffff:127.0.0.3", "127.0.0.4"]]

    def test_go_semantics(self) -> None:
        """ip: first IPv4; ip4: first IPv4, mapped counts; ip6: first non-mapped IPv6."""
        self.assertEqual(str(pick_address(self.A, "ip")), "127.0.0.2")
        self.assertEqual(str(pick_address(self.A, "ip6")), "::1")
        self.assertEqual(str(pick_address(self.A[2:3], "ip4")), "127.0.0.3")
        self.assertEqual(str(pick_address(self.A[:1], "ip")), "::1")
        with self.assertRaises(NameNotFoundError):
            pick_address(self.A[1:3], "ip6")
        with self.assertRaises(NameNotFoundError):
            pick_address(self.A[:1], "ip4")
        with self.assertRaises(NameNotFoundError):
            pick_address([], "ip")
        with self.assertRaises(InvalidLookupError):
            pick_address(self.A, "tcp")

    @given(st.lists(addresses, max_size=10))
    def test_order(self, given_addresses: list[ipaddress._BaseAddress]) -> None:
        """IPv4 before IPv6, each in the given order, no duplicates, nothing lost."""
        ordered = order_addresses(given_addresses)  # type: ignore[arg-type]
        self.assertEqual(set(ordered), set(given_addresses))
        self.assertEqual(len(ordered), len(set(given_addresses)))
        versions = [a.version for a in ordered]
        self.assertEqual(versions, sorted(versions))
        for version in (4, 6):
            mine = [a for a in ordered if a.version == version]
            firsts = list(dict.fromkeys(a for a in given_addresses if a.version == version))
            self.assertEqual(mine, firsts)

    @settings(max_examples=200)
    @given(st.lists(addresses, min_size=1, max_size=8))
    def test_ip_picks_first_of_order(self, given_addresses: list[ipaddress._BaseAddress]) -> None:
        """In the lookup order, network ip picks the first address."""
        ordered = order_addresses(given_addresses)  # type: ignore[arg-type]
        self.assertEqual(pick_address(ordered, "ip"), ordered[0])
