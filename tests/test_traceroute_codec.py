"""
The pure rules of :mod:`netproto.traceroute`: what an ICMP answer means
(traceroute(8)'s marks), the UDP datagram an error quotes, probe payloads.
No sockets.
"""

from __future__ import annotations

import socket
import struct

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from netproto.ping import parse_icmpv6, parse_ipv4
from netproto.traceroute import DATAGRAM, UdpQuote, interpret, udp_quote
from netproto.traceroute._codec import probe_payload
from tests._icmp_packets import icmp_error, ipv4, ipv6_header

US, THEM = "10.17.1.1", "10.17.4.2"
PAYLOAD = b"COOKIE01" + bytes(24)


def udp(source_port: int, destination_port: int, payload: bytes = PAYLOAD) -> bytes:
    """A UDP header and payload (the checksum is not looked at)."""
    return struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0) + payload


class InterpretTests(SynchronousTestCase):
    """ICMP type and code to (final, mark), as traceroute(8) 2.1 prints them."""

    def test_ipv4_unreachable_codes(self) -> None:
        """Every RFC 792 / RFC 1812 unreachable code, and one beyond them."""
        expected = {
            0: "!N",
            1: "!H",
            2: "!P",
            3: "",
            4: "!F-1400",
            5: "!S",
            6: "!N",
            7: "!H",
            8: "!N",
            9: "!X",
            10: "!X",
            11: "!N",
            12: "!H",
            13: "!X",
            14: "!V",
            15: "!C",
            16: "!<16>",
        }
        for code, mark in expected.items():
            self.assertEqual(interpret(4, 3, code, 1400), (True, mark), code)

    def test_ipv6_unreachable_codes(self) -> None:
        """RFC 4443's codes: no route !N, prohibited !X, scope and address !H, port reached."""
        expected = {0: "!N", 1: "!X", 2: "!H", 3: "!H", 4: "", 5: "!<5>", 6: "!<6>"}
        for code, mark in expected.items():
            self.assertEqual(interpret(6, 1, code), (True, mark), code)

    def test_routers_and_destination(self) -> None:
        """Hop limit exceeded in transit is a router; echo replies are the destination."""
        self.assertEqual(interpret(4, 11, 0), (False, ""))
        self.assertEqual(interpret(6, 3, 0), (False, ""))
        self.assertEqual(interpret(4, 0, 0), (True, ""))
        self.assertEqual(interpret(6, 129, 0), (True, ""))
        self.assertEqual(interpret(4, DATAGRAM, 0), (True, ""))

    def test_other_types(self) -> None:
        """Reassembly time exceeded, parameter problems, too big: final, with a generic mark."""
        self.assertEqual(interpret(4, 11, 1), (True, "!<11-1>"))
        self.assertEqual(interpret(6, 3, 1), (True, "!<3-1>"))
        self.assertEqual(interpret(4, 12, 0), (True, "!<12-0>"))
        self.assertEqual(interpret(6, 4, 1), (True, "!<4-1>"))
        self.assertEqual(interpret(6, 2, 0, 1280), (True, "!F-1280"))


class QuoteTests(SynchronousTestCase):
    """The UDP datagram an ICMP error quotes."""

    def test_ipv4_every_ihl(self) -> None:
        """The quoted header's own length (IHL 5 to 15) locates the UDP header."""
        for ihl in range(5, 16):
            quoted = ipv4(US, THEM, udp(40000, 33434), ihl=ihl, protocol=17)
            self.assertEqual(udp_quote(4, quoted), UdpQuote(US, THEM, 40000, 33434, PAYLOAD), ihl)

    def test_rfc792_minimum(self) -> None:
        """A quote stopping after the UDP header has the ports and no payload."""
        quoted = ipv4(US, THEM, udp(40000, 33434), protocol=17)[:28]
        self.assertEqual(udp_quote(4, quoted), UdpQuote(US, THEM, 40000, 33434, b""))

    def test_truncated(self) -> None:
        """A quote cut inside the IP or UDP header is nothing."""
        quoted = ipv4(US, THEM, udp(40000, 33434), ihl=7, protocol=17)
        for length in range(28 + 8):
            self.assertIsNone(udp_quote(4, quoted[:length]), length)

    def test_padding_trimmed(self) -> None:
        """Bytes after the quoted datagram's total length are not its payload."""
        quoted = ipv4(US, THEM, udp(40000, 33434), protocol=17) + b"\0" * 12
        self.assertEqual(udp_quote(4, quoted).payload, PAYLOAD)  # type: ignore[union-attr]

    def test_other_protocols_and_versions(self) -> None:
        """A quoted TCP segment or ICMP message, or a wrong version, is not a UDP quote."""
        self.assertIsNone(udp_quote(4, ipv4(US, THEM, udp(1, 2), protocol=6)))
        self.assertIsNone(udp_quote(4, ipv4(US, THEM, udp(1, 2), protocol=1)))
        six = ipv6_header("fd17:1::1", "fd17:4::2", 8, next_header=17) + udp(1, 2, b"")
        self.assertIsNone(udp_quote(4, six))
        self.assertIsNone(udp_quote(6, ipv4(US, THEM, udp(1, 2), protocol=17)))

    def test_ipv6(self) -> None:
        """An ICMPv6 error's quote: UDP right after the fixed header."""
        body = udp(40000, 33434)
        quoted = ipv6_header("fd17:1::1", "fd17:4::2", len(body), next_header=17) + body
        self.assertEqual(
            udp_quote(6, quoted), UdpQuote("fd17:1::1", "fd17:4::2", 40000, 33434, PAYLOAD)
        )
        self.assertIsNone(udp_quote(6, quoted[:47]))
        other = ipv6_header("fd17:1::1", "fd17:4::2", len(body), next_header=6) + body
        self.assertIsNone(udp_quote(6, other))

    def test_through_the_ping_codec(self) -> None:
        """A raw socket's packet, parsed by ping's codec, keeps the quote that udp_quote reads."""
        quoted = ipv4(US, THEM, udp(40000, 33440), protocol=17)
        packet = parse_ipv4(ipv4("10.17.2.2", US, icmp_error(11, 0, quoted)))
        self.assertEqual(udp_quote(4, packet.quoted).destination_port, 33440)  # type: ignore[union-attr]
        body = udp(40000, 33441)
        quoted6 = ipv6_header("fd17:1::1", "fd17:4::2", len(body), next_header=17) + body
        packet6 = parse_icmpv6(struct.pack("!BBHI", 3, 0, 0, 0) + quoted6, "fd17:2::2")
        self.assertEqual(udp_quote(6, packet6.quoted).destination_port, 33441)  # type: ignore[union-attr]

    @given(st.binary(max_size=120), st.sampled_from([4, 6]))
    def test_arbitrary_bytes(self, data: bytes, version: int) -> None:
        """Whatever the bytes, udp_quote returns a quote or None, never raises."""
        result = udp_quote(version, data)
        self.assertTrue(result is None or isinstance(result, UdpQuote))

    @given(
        st.integers(5, 15),
        st.integers(0, 65535),
        st.integers(0, 65535),
        st.binary(max_size=64),
        st.integers(0, 64),
    )
    def test_fields_round_trip(
        self, ihl: int, sport: int, dport: int, payload: bytes, cut: int
    ) -> None:
        """Ports and addresses come back as packed; the payload as far as it is quoted."""
        quoted = ipv4(US, THEM, udp(sport, dport, payload), ihl=ihl, protocol=17)
        header = ihl * 4 + 8
        kept = quoted[: header + min(cut, len(payload))]
        quote = udp_quote(4, kept)
        assert quote is not None
        self.assertEqual(
            (socket.inet_aton(quote.source), quote.destination, quote.source_port),
            (socket.inet_aton(US), THEM, sport),
        )
        self.assertEqual(quote.destination_port, dport)
        self.assertEqual(quote.payload, payload[: min(cut, len(payload))])


class PayloadTests(SynchronousTestCase):
    """Probe payloads: the cookie first, then a filler, exactly the size asked."""

    def test_sizes(self) -> None:
        """Every size from 0 to 100 bytes, the cookie cut to fit."""
        for size in range(101):
            payload = probe_payload(size, b"ABCDEFGH")
            self.assertEqual(len(payload), size)
            self.assertEqual(payload[:8], b"ABCDEFGH"[:size])
