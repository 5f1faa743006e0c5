"""Tests for :mod:`netproto.util`: addresses, masks and the Internet checksum."""

from __future__ import annotations

import ipaddress
import re
import socket

from hypothesis import assume, example, given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from netproto.util import (
    AddressError,
    Mask,
    MaskError,
    canonical,
    checksum,
    default_mask,
    host,
    ipv4_mapped,
    network,
    parse_ip,
    split_host_port,
    unmap,
)

ipv4_ints = st.integers(min_value=0, max_value=2**32 - 1)
ipv6_ints = st.integers(min_value=0, max_value=2**128 - 1)


def slow_checksum(data: bytes) -> int:
    """The textbook word-by-word RFC 1071 loop: the reference."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class ParseTests(SynchronousTestCase):
    """parse_ip accepts exactly the addresses it should, strictly."""

    def test_examples_refused(self) -> None:
        """Every malformed example of the issue is refused with AddressError."""
        for text in [
            "127.001.2.3",
            "",
            "1.2..4",
            "a1:a2:a3:a4::b1:b2:b3:b4",
            "1.2.3.4/24",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            " 1.2.3.4",
            "1.2.3.4\n",
            "::ffff:127.001.2.3",
            "1:2:3:4:5:6:7:8:9",
            "12345::",
            "fe80::1%eth0",
            "fe80::1%",
            "localhost",
            "\u0661.2.3.4",
        ]:
            with self.subTest(text=text):
                self.assertRaises(AddressError, parse_ip, text)

    def test_reason_is_one_line(self) -> None:
        """The error names the problem in one line, without a traceback-like dump."""
        error = self.assertRaises(AddressError, parse_ip, "127.001.2.3")
        self.assertEqual(
            str(error), "not a valid IPv4 address: leading zeros are not permitted in '001'"
        )

    def test_neither_kind(self) -> None:
        """
        Text that is neither dotted digits nor has a colon is "not an IPv4 or
        IPv6 address", not an IPv4 address with the wrong number of octets.
        """
        for text in ("bogus", "localhost", "127.0.0.1x", "1.2.3.a"):
            with self.subTest(text=text):
                error = self.assertRaises(AddressError, parse_ip, text)
                self.assertEqual(str(error), "not an IPv4 or IPv6 address")
        error = self.assertRaises(AddressError, parse_ip, "1.2.3")
        self.assertEqual(str(error), "not a valid IPv4 address: expected 4 octets")

    def test_not_text(self) -> None:
        """Non-text input is refused, not coerced (ipaddress would take an int)."""
        self.assertRaises(AddressError, parse_ip, 2130706433)  # type: ignore[arg-type]

    def test_canonical_ipv6(self) -> None:
        """RFC 5952: zeros compressed, lower case, no leading zeros."""
        self.assertEqual(canonical(parse_ip("0:0:0:0:0:0:0:1")), "::1")
        self.assertEqual(canonical(parse_ip("2001:DB8:0:0:1:0:0:1")), "2001:db8::1:0:0:1")
        self.assertEqual(canonical(parse_ip("2001:db8:0:1:1:1:1:1")), "2001:db8:0:1:1:1:1:1")

    def test_mapped(self) -> None:
        """An IPv4-mapped address is recognised in both spellings, shown mixed (RFC 5952 §5)."""
        for text in ["::ffff:127.1.2.3", "::ffff:7f01:0203", "0:0:0:0:0:FFFF:7F01:203"]:
            address = parse_ip(text)
            self.assertEqual(address.version, 6)
            self.assertEqual(ipv4_mapped(address), ipaddress.IPv4Address("127.1.2.3"))
            self.assertEqual(canonical(address), "::ffff:127.1.2.3")
            self.assertEqual(unmap(address), ipaddress.IPv4Address("127.1.2.3"))

    def test_not_mapped(self) -> None:
        """Other addresses have no IPv4 form and unmap to themselves."""
        for text in ["127.1.2.3", "::1", "::127.1.2.3", "64:ff9b::1.2.3.4"]:
            address = parse_ip(text)
            self.assertIsNone(ipv4_mapped(address))
            self.assertIs(unmap(address), address)

    def test_scope(self) -> None:
        """A zone is kept when allowed."""
        address = parse_ip("fe80::1%eth0", allow_scope=True)
        self.assertEqual(canonical(address), "fe80::1%eth0")

    @given(ipv4_ints)
    def test_ipv4_round_trip(self, value: int) -> None:
        """Every IPv4 address parses back from its text, and that text is canonical."""
        text = str(ipaddress.IPv4Address(value))
        self.assertEqual(canonical(parse_ip(text)), text)
        self.assertEqual(socket.inet_aton(text), parse_ip(text).packed)

    @given(ipv6_ints)
    def test_ipv6_round_trip(self, value: int) -> None:
        """Every IPv6 address parses from its exploded form to the stdlib's compressed form."""
        address = ipaddress.IPv6Address(value)
        parsed = parse_ip(address.exploded.upper())
        self.assertEqual(parsed, address)
        if address.ipv4_mapped is None:
            self.assertEqual(canonical(parsed), address.compressed)
        else:
            self.assertEqual(canonical(parsed), f"::ffff:{address.ipv4_mapped}")
        self.assertEqual(parse_ip(canonical(parsed)), address)
        self.assertEqual(socket.inet_pton(socket.AF_INET6, canonical(parsed)), address.packed)

    @given(st.text(alphabet="0123456789abcdefABCDEF.:/% x", max_size=45))
    @example("1.2.3.04")
    @example("::ffff:1.2.3.4")
    def test_oracle(self, text: str) -> None:
        """parse_ip accepts a string exactly when the stdlib does (zones and prefixes aside)."""
        try:
            expected = ipaddress.ip_address(text)
        except ValueError:
            expected = None
        if "%" in text:
            expected = None
        try:
            got = parse_ip(text)
        except AddressError:
            got = None
        self.assertEqual(got, expected)


class MaskTests(SynchronousTestCase):
    """Mask construction, size, hex form, and splitting addresses."""

    def test_issue_examples(self) -> None:
        """The examples of Mask.go and IPv4Mask.go."""
        mask = Mask.cidr(24, 32)
        self.assertEqual(mask.hex(), "ffffff00")
        self.assertEqual(network(parse_ip("103.232.159.187"), mask), parse_ip("103.232.159.0"))
        mask6 = Mask.cidr(52, 128)
        self.assertEqual(mask6.hex(), "fffffffffffff0000000000000000000")
        self.assertEqual(
            canonical(network(parse_ip("fda3:97c:1eb:fff0:5444:903a:33f0:3a6b"), mask6)),
            "fda3:97c:1eb:f000::",
        )
        address = parse_ip("192.168.1.3")
        self.assertEqual(default_mask(address).size(), (24, 32))
        self.assertEqual(str(network(address, Mask.cidr(16, 32))), "192.168.0.0")
        self.assertEqual(str(host(address, Mask.cidr(16, 32))), "0.0.1.3")

    def test_invalid_cidr(self) -> None:
        """ones > bits, negative ones, and widths other than 32 and 128 are refused."""
        for ones, bits in [(33, 32), (-1, 32), (129, 128), (8, 64), (0, 0), (8, 16)]:
            with self.subTest(ones=ones, bits=bits):
                self.assertRaises(MaskError, Mask.cidr, ones, bits)

    def test_ipv4_octets(self) -> None:
        """IPv4 masks from octets; non-canonical ones have size (0, 0)."""
        self.assertEqual(Mask.ipv4(255, 255, 254, 0).size(), (23, 32))
        self.assertEqual(Mask.ipv4(255, 0, 255, 0).size(), (0, 0))
        self.assertEqual(Mask.ipv4(255, 0, 255, 0).hex(), "ff00ff00")
        self.assertEqual(Mask.ipv4(0, 0, 0, 0).size(), (0, 32))
        self.assertRaises(MaskError, Mask.ipv4, 256, 0, 0, 0)

    def test_default_masks(self) -> None:
        """Classes A, B, C; IPv4-mapped taken as IPv4; D, E and IPv6 refused."""
        for text, ones in [
            ("10.1.2.3", 8),
            ("127.0.0.1", 8),
            ("128.0.0.1", 16),
            ("191.255.0.1", 16),
            ("192.0.2.1", 24),
            ("223.255.255.255", 24),
            ("::ffff:10.0.0.1", 8),
        ]:
            with self.subTest(text=text):
                self.assertEqual(default_mask(parse_ip(text)).size(), (ones, 32))
        for text in ["224.0.0.1", "239.1.1.1", "240.0.0.1", "255.255.255.255", "::1"]:
            with self.subTest(text=text):
                self.assertRaises(MaskError, default_mask, parse_ip(text))

    def test_width_mismatch(self) -> None:
        """A mask of the wrong width is refused; a mapped address takes a 32-bit mask."""
        self.assertRaises(MaskError, network, parse_ip("::1"), Mask.cidr(8, 32))
        self.assertRaises(MaskError, network, parse_ip("1.2.3.4"), Mask.cidr(8, 128))
        self.assertEqual(
            network(parse_ip("::ffff:10.1.2.3"), Mask.cidr(8, 32)), parse_ip("10.0.0.0")
        )
        self.assertEqual(
            canonical(network(parse_ip("::ffff:10.1.2.3"), Mask.cidr(104, 128))),
            "::ffff:10.0.0.0",
        )

    @given(
        st.sampled_from([32, 128]).flatmap(
            lambda bits: st.tuples(st.integers(0, bits), st.just(bits), st.integers(0, 2**bits - 1))
        )
    )
    def test_cidr_against_stdlib(self, case: tuple[int, int, int]) -> None:
        """CIDR masks, networks and hosts agree with ipaddress, and split addresses exactly."""
        ones, bits, value = case
        address = ipaddress.IPv4Address(value) if bits == 32 else ipaddress.IPv6Address(value)
        mask = Mask.cidr(ones, bits)
        reference = ipaddress.ip_network((address, ones), strict=False)
        self.assertEqual(mask.size(), (ones, bits))
        self.assertEqual(mask.as_address(), reference.netmask)
        self.assertEqual(int(mask.hex(), 16), int(reference.netmask))
        self.assertEqual(len(mask.hex()), bits // 4)
        net, part = network(address, mask), host(address, mask)
        self.assertEqual(net, reference.network_address)
        self.assertEqual(int(part), int(address) & int(reference.hostmask))
        self.assertEqual(int(net) | int(part), int(address))
        self.assertEqual(int(net) & int(part), 0)

    @given(
        st.sampled_from([32, 128]).flatmap(
            lambda bits: st.tuples(st.integers(0, 2**bits - 1), st.just(bits))
        )
    )
    def test_size_of_any_mask(self, case: tuple[int, int]) -> None:
        """size() is (ones, bits) exactly for a run of ones then zeros, else (0, 0)."""
        value, bits = case
        pattern = format(value, f"0{bits}b")
        mask = Mask(value, bits)
        if re.fullmatch("1*0*", pattern):
            self.assertEqual(mask.size(), (pattern.count("1"), bits))
        else:
            self.assertEqual(mask.size(), (0, 0))

    def test_bad_mask_values(self) -> None:
        """A Mask cannot hold more bits than its width, or a width other than 32/128."""
        self.assertRaises(MaskError, Mask, 2**32, 32)
        self.assertRaises(MaskError, Mask, -1, 32)
        self.assertRaises(MaskError, Mask, 0, 64)


class ChecksumTests(SynchronousTestCase):
    """The RFC 1071 checksum."""

    def test_classic_packets(self) -> None:
        """Echo request id 13 seq 37 checksums to bytes 247 205, its reply to 255 205."""
        request = bytes([8, 0, 0, 0, 0, 13, 0, 37])
        reply = bytes([0, 0, 0, 0, 0, 13, 0, 37])
        self.assertEqual(list(checksum(request).to_bytes(2, "big")), [247, 205])
        self.assertEqual(list(checksum(reply).to_bytes(2, "big")), [255, 205])

    def test_edges(self) -> None:
        """Empty and zero data give 0xffff; data summing to 0xffff gives 0; odd bytes pad."""
        self.assertEqual(checksum(b""), 0xFFFF)
        self.assertEqual(checksum(b"\0\0\0"), 0xFFFF)
        self.assertEqual(checksum(b"\xff\xff"), 0)
        self.assertEqual(checksum(b"\xff\xff\xff\xff"), 0)
        self.assertEqual(checksum(b"\xff\x00\x00\xff"), 0)
        self.assertEqual(checksum(b"\x01"), 0xFEFF)
        self.assertEqual(checksum(bytearray(b"\x01")), checksum(memoryview(b"\x01")))

    def test_rfc1071_example(self) -> None:
        """RFC 1071 §3's example words 0001 f203 f4f5 f6f7 sum to ddf2."""
        data = bytes.fromhex("0001f203f4f5f6f7")
        self.assertEqual(checksum(data), 0xFFFF ^ 0xDDF2)

    @given(st.binary(max_size=600))
    @example(b"\xff\xff" * 3)
    @example(b"\x00" * 5)
    def test_reference(self, data: bytes) -> None:
        """Equals the textbook word-by-word loop for every input, odd lengths included."""
        self.assertEqual(checksum(data), slow_checksum(data))

    @given(st.binary(max_size=600), st.data())
    def test_verifies_to_zero(self, data: bytes, draw: st.DataObject) -> None:
        """A buffer with its checksum written in at any even offset checksums to 0."""
        offset = draw.draw(st.integers(0, len(data) // 2)) * 2
        buffer = bytearray(data[:offset] + b"\0\0" + data[offset:])
        buffer[offset : offset + 2] = checksum(buffer).to_bytes(2, "big")
        self.assertEqual(checksum(buffer), 0)

    @given(st.binary(min_size=1, max_size=64))
    def test_sensitive(self, data: bytes) -> None:
        """Flipping any single bit changes the checksum."""
        assume(any(data))
        flipped = bytes([data[0] ^ 0x01]) + data[1:]
        self.assertNotEqual(checksum(flipped), checksum(data))


class HostPortTests(SynchronousTestCase):
    """split_host_port: the HOST:PORT form."""

    def test_forms(self) -> None:
        """Names, IPv4, bracketed IPv6 with and without a port, bare IPv6."""
        for text, expected in [
            ("127.0.0.1:13", ("127.0.0.1", 13)),
            ("localhost", ("localhost", 7)),
            ("[::1]:1200", ("::1", 1200)),
            ("[::1]", ("::1", 7)),
            ("::1", ("::1", 7)),
            ("fe80::1%lo", ("fe80::1%lo", 7)),
            ("host:65535", ("host", 65535)),
            ("2001:db8::7", ("2001:db8::7", 7)),
            ("1:2:3:4:5:6:7:8", ("1:2:3:4:5:6:7:8", 7)),
            ("::ffff:127.0.0.1", ("::ffff:127.0.0.1", 7)),
            ("::", ("::", 7)),
            ("[::1:1313]", ("::1:1313", 7)),
        ]:
            with self.subTest(text=text):
                self.assertEqual(split_host_port(text, 7), expected)

    def test_errors(self) -> None:
        """Each malformed form is refused with its reason."""
        for text, reason in [
            ("", "empty host"),
            (":13", "empty host"),
            ("[]:13", "empty host"),
            ("host:", "empty port"),
            ("[::1", "missing ']'"),
            ("[::1]x", "expected ':PORT'"),
            ("[127.0.0.1]:13", "brackets are for IPv6"),
            ("host:0", "out of range (1 to 65535)"),
            ("host:65536", "out of range"),
            ("host:+13", "not a number"),
            ("host:\u0661\u0663", "not a number"),
            ("host:000013", "not a number"),
            ("::1:1313", "did you mean [::1]:1313? (the address ::1:1313 itself is written"),
            ("fe80::1%lo:80", "did you mean [fe80::1%lo]:80?"),
            ("2001:db8::8:1", "did you mean [2001:db8::8]:1?"),
        ]:
            with self.subTest(text=text):
                error = self.assertRaises(AddressError, split_host_port, text, 7)
                self.assertIn(reason, str(error))

    @given(st.text(max_size=30), st.integers(1, 65535))
    def test_never_crashes(self, text: str, default: int) -> None:
        """Any text gives a host and a valid port, or AddressError."""
        try:
            host, port = split_host_port(text, default)
        except AddressError:
            return
        self.assertTrue(host)
        self.assertTrue(1 <= port <= 65535)

    @given(st.sampled_from(["localhost", "127.0.0.1", "::1", "2001:db8::7"]), st.integers(1, 65535))
    def test_round_trip(self, host: str, port: int) -> None:
        """A host and port written in the HOST:PORT form come back unchanged."""
        text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.assertEqual(split_host_port(text, 7), (host, port))

    @given(st.ip_addresses(v=6), st.integers(1, 65535))
    def test_unbracketed_port_refused(self, address: ipaddress.IPv6Address, port: int) -> None:
        """
        An IPv6 address and a port written without brackets is never taken
        as an address (which ``ipaddress`` may well accept): it is refused with
        the bracketed form it most likely means.
        """
        text = f"{address}:{port}"
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            return  # not an address either: the caller's parser refuses it
        if str(address).endswith("::"):
            return  # '::' then a group: '::1' is the address, not '::' port 1
        error = self.assertRaises(AddressError, split_host_port, text, 7)
        self.assertIn(f"did you mean [{address}]:{port}?", str(error))
