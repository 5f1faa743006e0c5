"""
The ICMP echo codec and the reply-matching rules of :mod:`netproto.ping`, on
synthetic buffers: no sockets.
"""

from __future__ import annotations

import ipaddress
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from netproto.ping import (
    DAMAGED,
    DUPLICATE,
    ECHO_REPLY,
    ECHO_REQUEST,
    ERROR,
    LATE,
    MALFORMED,
    NOT_OURS,
    OTHER,
    REPLY,
    Packet,
    Probe,
    ProbeTable,
    describe_error,
    echo_request,
    expand_targets,
    icmpv6_checksum,
    parse_icmpv4,
    parse_icmpv6,
    parse_ipv4,
)
from netproto.util import AddressError, checksum
from tests._icmp_packets import icmp, icmp_error, ipv4, ipv6_header

US = "127.0.0.1"
HOST = "127.0.0.2"
IDENT = 0x4242
PAYLOAD = b"COOKIE01" + bytes(range(48))


def reply_packet(
    seq: int,
    *,
    source: str = HOST,
    payload: bytes = PAYLOAD,
    ident: int = IDENT,
    ihl: int = 5,
    good: bool = True,
) -> bytes:
    """A raw-socket IPv4 echo reply to one of our probes."""
    return ipv4(source, US, icmp(0, 0, ident, seq, payload, good=good), ihl=ihl)


def request_quote(
    seq: int, *, destination: str = HOST, ident: int = IDENT, payload: bytes = PAYLOAD, ihl: int = 5
) -> bytes:
    """Our echo request as an ICMP error quotes it: its IP header and what follows."""
    return ipv4(US, destination, icmp(8, 0, ident, seq, payload), ihl=ihl)


def table_with_probe(
    seq: int = 7, target: str = HOST, payload: bytes = PAYLOAD, timeout: float = 1.0
) -> tuple[ProbeTable, Probe]:
    """A table whose next probe, to *target*, gets sequence number *seq*, sent at time 0."""
    table = ProbeTable(IDENT, first_seq=seq)
    probe = Probe(target, payload, number=1)
    probe.packed = bytes(int(part) for part in target.split("."))
    table.add(probe, table.next_seq(), 0.0, timeout)
    return table, probe


class EchoRequestTests(SynchronousTestCase):
    """Building echo requests."""

    def test_classic_packet(self) -> None:
        """Identifier 13, sequence 37, no payload: bytes 8 0 247 205 0 13 0 37."""
        self.assertEqual(list(echo_request(4, 13, 37, b"")), [8, 0, 247, 205, 0, 13, 0, 37])

    def test_checksum_verifies(self) -> None:
        """Any IPv4 request sums to zero: its checksum is right, odd payloads included."""
        for size in (0, 1, 7, 56, 1471):
            packet = echo_request(4, 0xFFFF, 0xFFFF, bytes(range(256)) * 6)[: 8 + size]
            packet = echo_request(4, 0xFFFF, 0xFFFF, packet[8:])
            self.assertEqual(checksum(packet), 0, size)

    def test_fields_wrap(self) -> None:
        """Identifier and sequence are taken modulo 65,536."""
        packet = echo_request(4, 65536 + 5, 65536 * 3 + 9, b"x")
        self.assertEqual(struct.unpack("!HH", packet[4:8]), (5, 9))

    def test_ipv6_type_and_kernel_checksum(self) -> None:
        """ICMPv6 requests are type 128 with the checksum left to the kernel."""
        packet = echo_request(6, 1, 2, b"abc")
        self.assertEqual(packet, b"\x80\x00\x00\x00\x00\x01\x00\x02abc")

    def test_icmpv6_checksum(self) -> None:
        """The RFC 4443 checksum, written into the message, makes the pseudo-header sum zero."""
        message = bytearray(echo_request(6, 0x1234, 1, b"hello"))
        struct.pack_into("!H", message, 2, icmpv6_checksum("::1", "fe80::1", bytes(message)))
        self.assertEqual(
            icmpv6_checksum("::1", "fe80::1", bytes(message)), struct.unpack("!H", message[2:4])[0]
        )
        pseudo = (
            ipaddress.IPv6Address("::1").packed
            + ipaddress.IPv6Address("fe80::1").packed
            + struct.pack("!I3xB", len(message), 58)
        )
        self.assertEqual(checksum(pseudo + bytes(message)), 0)


class ParseIPv4Tests(SynchronousTestCase):
    """Parsing what a raw IPv4 ICMP socket delivers."""

    def test_every_ihl(self) -> None:
        """IHL 5 to 15: the ICMP message starts at IHL * 4 and parses the same."""
        for ihl in range(5, 16):
            packet = parse_ipv4(reply_packet(0x1234, ihl=ihl))
            self.assertEqual(
                (
                    packet.kind,
                    packet.ident,
                    packet.seq,
                    packet.payload,
                    packet.source,
                    packet.ttl,
                    packet.size,
                    packet.checksum_ok,
                ),
                (ECHO_REPLY, IDENT, 0x1234, PAYLOAD, HOST, 64, 8 + len(PAYLOAD), True),
                ihl,
            )

    def test_ihl_below_five(self) -> None:
        """IHL 0 to 4 is malformed, whatever follows."""
        good = reply_packet(1)
        for ihl in range(5):
            packet = parse_ipv4(bytes([0x40 | ihl]) + good[1:])
            self.assertEqual(packet.kind, MALFORMED, ihl)
            self.assertIn("IHL", packet.reason)

    def test_not_ipv4(self) -> None:
        """A version other than 4 is malformed."""
        good = reply_packet(1)
        self.assertEqual(parse_ipv4(b"\x65" + good[1:]).kind, MALFORMED)

    def test_every_truncation(self) -> None:
        """Every prefix of a reply (IHL 5 and 15) is malformed, never an exception."""
        for ihl in (5, 15):
            good = reply_packet(1, ihl=ihl)
            for length in range(len(good)):
                self.assertEqual(parse_ipv4(good[:length]).kind, MALFORMED, (ihl, length))

    def test_short_icmp(self) -> None:
        """An IP packet whose ICMP part is under 8 bytes is malformed."""
        for size in range(8):
            packet = parse_ipv4(ipv4(HOST, US, b"\0" * size))
            self.assertEqual(packet.kind, MALFORMED, size)
            self.assertIn("shorter than 8", packet.reason)

    def test_padding_trimmed(self) -> None:
        """Bytes beyond the IP total length are padding, not payload."""
        packet = parse_ipv4(reply_packet(3) + b"\xff" * 6)
        self.assertEqual((packet.kind, packet.payload), (ECHO_REPLY, PAYLOAD))

    def test_total_length_too_short(self) -> None:
        """A total length shorter than the header is malformed."""
        bad = ipv4(HOST, US, icmp(0, 0, 1, 1, b""), total=12)
        self.assertEqual(parse_ipv4(bad).kind, MALFORMED)

    def test_bad_checksum_flagged(self) -> None:
        """A wrong ICMP checksum is reported, not hidden."""
        packet = parse_ipv4(reply_packet(1, good=False))
        self.assertEqual((packet.kind, packet.checksum_ok), (ECHO_REPLY, False))

    def test_other_protocol_and_type(self) -> None:
        """UDP inside IP, or ICMP timestamp replies, are other traffic."""
        self.assertEqual(parse_ipv4(ipv4(HOST, US, b"\0" * 16, protocol=17)).kind, OTHER)
        timestamp = icmp(14, 0, 1, 1, b"\0" * 12)
        self.assertEqual(parse_ipv4(ipv4(HOST, US, timestamp)).kind, OTHER)

    def test_fragment(self) -> None:
        """A fragment (MF set or an offset) is not parsed as ICMP."""
        packet = bytearray(reply_packet(1))
        packet[6] = 0x20
        self.assertEqual(parse_ipv4(bytes(packet)).kind, OTHER)

    def test_requests_recognised(self) -> None:
        """Echo requests (ours, looping back on a raw socket) parse as requests."""
        packet = parse_ipv4(ipv4(US, HOST, icmp(8, 0, IDENT, 5, PAYLOAD)))
        self.assertEqual((packet.kind, packet.seq), (ECHO_REQUEST, 5))

    def test_dgram_delivery(self) -> None:
        """Ping sockets deliver ICMP without the IP header: parse_icmpv4 takes source and TTL."""
        packet = parse_icmpv4(icmp(0, 0, IDENT, 9, PAYLOAD), HOST, 63)
        self.assertEqual(
            (packet.kind, packet.source, packet.ttl, packet.seq), (ECHO_REPLY, HOST, 63, 9)
        )


class QuotedErrorTests(SynchronousTestCase):
    """ICMP errors quoting one of our echo requests."""

    def test_unreachable_every_quoted_ihl(self) -> None:
        """Destination unreachable quoting a request with IHL 5 to 15 gives its id, seq, target."""
        for ihl in range(5, 16):
            quoted = request_quote(77, ihl=ihl)
            packet = parse_ipv4(ipv4("127.0.0.9", US, icmp_error(3, 1, quoted), ihl=6))
            self.assertEqual(
                (
                    packet.kind,
                    packet.type,
                    packet.code,
                    packet.ident,
                    packet.seq,
                    packet.target,
                    packet.source,
                    packet.payload,
                ),
                (ERROR, 3, 1, IDENT, 77, HOST, "127.0.0.9", PAYLOAD),
                ihl,
            )

    def test_minimal_quote(self) -> None:
        """An error quoting only the IP header and 8 bytes (RFC 792) still matches."""
        quoted = request_quote(5)[:28]
        table, probe = table_with_probe(5)
        packet = parse_ipv4(ipv4("127.0.0.9", US, icmp_error(11, 0, quoted)))
        self.assertEqual(packet.payload, b"")
        self.assertEqual(table.classify(packet, 0.1), (ERROR, probe))
        self.assertEqual(probe.errors, 1)

    def test_truncated_quotes(self) -> None:
        """Quotes cut inside the IP header or the 8 bytes are malformed."""
        quoted = request_quote(5, ihl=8)
        for length in range(32 + 8):
            packet = parse_ipv4(ipv4("127.0.0.9", US, icmp_error(3, 0, quoted[:length])))
            self.assertEqual(packet.kind, MALFORMED, length)

    def test_error_about_other_traffic(self) -> None:
        """An error about a UDP datagram or about an echo reply is not about our probes."""
        udp = ipv4(US, HOST, b"\0" * 8, protocol=17)
        self.assertEqual(parse_ipv4(ipv4("127.0.0.9", US, icmp_error(3, 3, udp))).kind, OTHER)
        reply = ipv4(US, HOST, icmp(0, 0, IDENT, 1, PAYLOAD))
        self.assertEqual(parse_ipv4(ipv4("127.0.0.9", US, icmp_error(3, 3, reply))).kind, OTHER)

    def test_error_kinds_and_words(self) -> None:
        """Unreachable codes, time exceeded, parameter problem: ping(8)'s words."""
        self.assertEqual(describe_error(4, 3, 1), "Destination Host Unreachable")
        self.assertEqual(describe_error(4, 3, 0), "Destination Net Unreachable")
        self.assertEqual(describe_error(4, 3, 13), "Packet filtered")
        self.assertEqual(describe_error(4, 11, 0), "Time to live exceeded")
        self.assertEqual(describe_error(4, 12, 0), "Parameter problem")
        self.assertEqual(describe_error(6, 1, 3), "Address unreachable")
        self.assertEqual(describe_error(6, 3, 0), "Time exceeded: Hop limit")
        self.assertIn("Bad Code: 99", describe_error(4, 3, 99))
        for kind in (3, 11, 12):
            packet = parse_ipv4(ipv4("127.0.0.9", US, icmp_error(kind, 0, request_quote(1))))
            self.assertEqual(packet.kind, ERROR, kind)

    def test_ipv6_errors(self) -> None:
        """ICMPv6 unreachable, too big, time exceeded, parameter problem quoting our request."""
        request = echo_request(6, IDENT, 300, PAYLOAD)
        quoted = ipv6_header("::1", "2001:db8::2", len(request)) + request
        for kind in (1, 2, 3, 4):
            packet = parse_icmpv6(struct.pack("!BBHI", kind, 3, 0, 0) + quoted, "2001:db8::9")
            self.assertEqual(
                (
                    packet.kind,
                    packet.type,
                    packet.ident,
                    packet.seq,
                    packet.target,
                    packet.source,
                    packet.payload,
                ),
                (ERROR, kind, IDENT, 300, "2001:db8::2", "2001:db8::9", PAYLOAD),
            )
        other = ipv6_header("::1", "2001:db8::2", 8, next_header=17) + b"\0" * 8
        self.assertEqual(parse_icmpv6(b"\x01\x03\0\0\0\0\0\0" + other, "::1").kind, OTHER)
        self.assertEqual(parse_icmpv6(b"\x01\x03\0\0\0\0\0\0" + quoted[:47], "::1").kind, MALFORMED)

    def test_ipv6_echo(self) -> None:
        """ICMPv6 replies and requests, with the hop limit from the socket."""
        packet = parse_icmpv6(b"\x81\x00\x12\x34" + struct.pack("!HH", 1, 2) + b"p", "::1", 61)
        self.assertEqual(
            (packet.kind, packet.ident, packet.seq, packet.ttl, packet.payload),
            (ECHO_REPLY, 1, 2, 61, b"p"),
        )
        self.assertEqual(parse_icmpv6(b"\x80\0\0\0\0\1\0\2", "::1").kind, ECHO_REQUEST)
        self.assertEqual(parse_icmpv6(b"\x81\0\0\0\0\1\0", "::1").kind, MALFORMED)


class MatchingTests(SynchronousTestCase):
    """What a packet is to us: the ProbeTable's verdicts."""

    def test_reply_credited_once(self) -> None:
        """The first reply is credited with its RTT; a copy is a duplicate."""
        table, probe = table_with_probe(7)
        self.assertEqual(table.classify(parse_ipv4(reply_packet(7)), 0.25), (REPLY, probe))
        self.assertEqual(probe.rtt, 0.25)
        self.assertEqual(table.pending, 0)
        self.assertEqual(table.classify(parse_ipv4(reply_packet(7)), 0.3), (DUPLICATE, probe))
        self.assertEqual(probe.rtt, 0.25)

    def test_wrong_source(self) -> None:
        """A reply from another address than the target is not ours."""
        table, probe = table_with_probe(7)
        verdict = table.classify(parse_ipv4(reply_packet(7, source="127.0.0.3")), 0.1)
        self.assertEqual(verdict, (NOT_OURS, None))
        self.assertEqual(probe.state, "pending")

    def test_wrong_identifier_or_sequence(self) -> None:
        """Another identifier, or a sequence number we did not send, is not ours."""
        table, _ = table_with_probe(7)
        self.assertEqual(
            table.classify(parse_ipv4(reply_packet(7, ident=IDENT + 1)), 0.1)[0], NOT_OURS
        )
        self.assertEqual(table.classify(parse_ipv4(reply_packet(8)), 0.1)[0], NOT_OURS)

    def test_colliding_identifier_other_cookie(self) -> None:
        """Another pinger with our identifier and sequence (another cookie) is not ours."""
        table, probe = table_with_probe(7)
        theirs = b"OTHERPNG" + PAYLOAD[8:]
        self.assertEqual(
            table.classify(parse_ipv4(reply_packet(7, payload=theirs)), 0.1), (NOT_OURS, None)
        )
        self.assertEqual(table.classify(parse_ipv4(reply_packet(7)), 0.2), (REPLY, probe))

    def test_damaged(self) -> None:
        """A bad checksum, or an altered payload after the cookie, is damaged and not credited."""
        table, probe = table_with_probe(7)
        self.assertEqual(
            table.classify(parse_ipv4(reply_packet(7, good=False)), 0.1), (DAMAGED, probe)
        )
        altered = PAYLOAD[:20] + b"X" + PAYLOAD[21:]
        self.assertEqual(
            table.classify(parse_ipv4(reply_packet(7, payload=altered)), 0.1), (DAMAGED, probe)
        )
        self.assertEqual(probe.state, "pending")

    def test_requests_are_not_replies(self) -> None:
        """Our own echo request seen on a raw socket is never a reply."""
        table, _probe = table_with_probe(7)
        request = parse_ipv4(ipv4(US, HOST, icmp(8, 0, IDENT, 7, PAYLOAD)))
        self.assertEqual(table.classify(request, 0.1), (NOT_OURS, None))

    def test_late(self) -> None:
        """A reply after the timeout is late: counted, never credited."""
        table, probe = table_with_probe(7, timeout=1.0)
        self.assertEqual(table.expire(0.5), [])
        self.assertEqual(table.expire(1.0), [probe])
        self.assertEqual(table.classify(parse_ipv4(reply_packet(7)), 1.5), (LATE, probe))
        self.assertIsNone(probe.rtt)

    def test_late_reply_never_credited_to_a_later_probe(self) -> None:
        """After the sequence number is reused, the old probe's reply (its cookie) is not ours."""
        table, old = table_with_probe(7)
        table.expire(5.0)
        for _ in range(65535):
            table.next_seq()
            table._next = (table._next + 1) & 0xFFFF
        seq = table.next_seq()
        self.assertEqual(seq, 7)
        new = Probe(HOST, b"NEWCOOKI" + PAYLOAD[8:])
        new.packed = old.packed
        table.add(new, seq, 6.0, 1.0)
        self.assertEqual(table.classify(parse_ipv4(reply_packet(7)), 6.1), (NOT_OURS, None))
        self.assertEqual(new.state, "pending")

    def test_sequence_wrap(self) -> None:
        """Numbers go 65534, 65535, 0, 1, skipping one still waiting."""
        table = ProbeTable(IDENT, first_seq=65534)
        waiting = Probe(HOST, PAYLOAD)
        table._probes[0] = waiting
        seqs = []
        for _ in range(3):
            seq = table.next_seq()
            table.add(Probe(HOST, PAYLOAD), seq, 0.0, 1.0)
            seqs.append(seq)
        self.assertEqual(seqs, [65534, 65535, 1])

    def test_errors_matched_by_quote(self) -> None:
        """An unreachable error quoting our request is an error about that probe."""
        table, probe = table_with_probe(7)
        error = parse_ipv4(ipv4("127.0.0.9", US, icmp_error(3, 1, request_quote(7))))
        self.assertEqual(table.classify(error, 0.1), (ERROR, probe))
        elsewhere = parse_ipv4(
            ipv4("127.0.0.9", US, icmp_error(3, 1, request_quote(7, destination="127.0.0.5")))
        )
        self.assertEqual(table.classify(elsewhere, 0.1), (NOT_OURS, None))
        wrong_cookie = parse_ipv4(
            ipv4("127.0.0.9", US, icmp_error(3, 1, request_quote(7, payload=b"OTHERPNG")))
        )
        self.assertEqual(table.classify(wrong_cookie, 0.1), (NOT_OURS, None))
        # The probe may still be answered within its timeout.
        self.assertEqual(table.classify(parse_ipv4(reply_packet(7)), 0.2), (REPLY, probe))
        self.assertEqual(table.classify(error, 0.3), (LATE, probe))

    def test_error_with_bad_checksum_ignored(self) -> None:
        """An IPv4 error quoting our request but failing its ICMP checksum is never credited."""
        table, probe = table_with_probe(7)
        message = bytearray(icmp_error(11, 0, request_quote(7)))
        message[2] ^= 0x5A
        damaged = parse_ipv4(ipv4("127.0.0.9", US, bytes(message)))
        self.assertFalse(damaged.checksum_ok)
        self.assertEqual(table.classify(damaged, 0.1), (MALFORMED, None))
        self.assertEqual((probe.errors, table.malformed), (0, 1))

    def test_quote_kept_for_other_errors(self) -> None:
        """An error quoting a UDP datagram is OTHER, and carries the checked quote."""
        udp = ipv4(US, HOST, b"\x82\x9a\x82\x9a\x00\x08\x00\x00", protocol=17)
        packet = parse_ipv4(ipv4("127.0.0.9", US, icmp_error(11, 0, udp)))
        self.assertEqual((packet.kind, packet.type, packet.quoted), (OTHER, 11, udp))
        error = parse_ipv4(ipv4("127.0.0.9", US, icmp_error(3, 1, request_quote(7))))
        self.assertEqual(error.quoted, request_quote(7))

    def test_large_payloads_trimmed_once_resolved(self) -> None:
        """Answered or expired probes keep only their cookie; duplicates and late still match."""
        big = b"BIGCOOKI" + bytes(range(256)) * 40
        table, probe = table_with_probe(7, payload=big)
        self.assertEqual(
            table.classify(parse_ipv4(reply_packet(7, payload=big)), 0.1), (REPLY, probe)
        )
        self.assertEqual(probe.payload, b"BIGCOOKI")
        self.assertEqual(
            table.classify(parse_ipv4(reply_packet(7, payload=big)), 0.2), (DUPLICATE, probe)
        )
        table2, late = table_with_probe(9, payload=big)
        self.assertEqual(table2.expire(2.0), [late])
        self.assertEqual(
            table2.classify(parse_ipv4(reply_packet(9, payload=big)), 2.5), (LATE, late)
        )
        table3, fast = table_with_probe(11, payload=big)
        self.assertIs(table3.fast_reply(reply_packet(11, payload=big), 0.1), fast)
        self.assertEqual(fast.payload, b"BIGCOOKI")

    def test_table_full(self) -> None:
        """65,536 waiting probes exhaust the numbers: next_seq refuses."""
        from netproto.ping._probes import TableFullError

        table = ProbeTable(IDENT)
        table.pending = 65536
        self.assertRaises(TableFullError, table.next_seq)

    def test_malformed_counted(self) -> None:
        """Malformed and foreign packets are counted on the table."""
        table, _ = table_with_probe(7)
        table.classify(parse_ipv4(b"\x45"), 0.1)
        table.classify(parse_ipv4(reply_packet(7, ident=1)), 0.1)
        self.assertEqual((table.malformed, table.not_ours), (1, 1))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A random corruption of *data*: flipped bytes, a cut, or an extension."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.6 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif choice < 0.8:
            del out[rng.randrange(len(out) + 1) :]
        else:
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
    return bytes(out)


class FuzzTests(SynchronousTestCase):
    """No input makes the parsers raise; the fast path agrees with the general one."""

    def test_seeded_fuzz(self) -> None:
        """20,000 seeded corruptions of replies, errors and requests: no exception escapes."""
        rng = random.Random(4)
        seeds = [
            reply_packet(7),
            reply_packet(7, ihl=9),
            request_quote(7),
            ipv4("127.0.0.9", US, icmp_error(3, 1, request_quote(7, ihl=7))),
        ]
        table, _ = table_with_probe(7)
        for i in range(20000):
            data = mutate(seeds[i % len(seeds)], rng)
            for packet in (parse_ipv4(data), parse_icmpv4(data, HOST), parse_icmpv6(data, "::1")):
                self.assertIsInstance(packet, Packet)
                table.classify(packet, 0.1)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200))
    def test_arbitrary_bytes(self, data: bytes) -> None:
        """Arbitrary bytes parse to some Packet, whatever the parser."""
        for packet in (parse_ipv4(data), parse_icmpv4(data, None), parse_icmpv6(data, None)):
            self.assertIn(packet.kind, (ECHO_REPLY, ECHO_REQUEST, ERROR, OTHER, MALFORMED))

    @settings(max_examples=300, deadline=None)
    @given(st.integers(min_value=0, max_value=2**32 - 1), st.data())
    def test_fast_path_agrees(self, seed: int, data: st.DataObject) -> None:
        """For any corruption of a reply, the fast path answers as the general path does."""
        rng = random.Random(seed)
        good = reply_packet(7, ihl=data.draw(st.sampled_from([5, 5, 6])))
        candidate = good if data.draw(st.booleans()) else mutate(good, rng)
        fast_table, _ = table_with_probe(7)
        slow_table, _ = table_with_probe(7)
        found = fast_table.fast_reply(candidate, 0.5)
        verdict, _probe = slow_table.classify(parse_ipv4(candidate), 0.5)
        if found is None:
            self.assertEqual(fast_table.pending, 1)
        else:
            self.assertEqual(verdict, REPLY)
            self.assertEqual(found.state, "answered")
            self.assertEqual(found.rtt, 0.5)
            packet = parse_ipv4(candidate)
            # What the socket then reports: TTL at byte 8, ICMP size after 20 bytes.
            self.assertEqual(
                (candidate[8], len(candidate) - 20, found.target),
                (packet.ttl, packet.size, packet.source),
            )

    def test_fast_path_takes_plain_replies(self) -> None:
        """The fast path does take a plain good reply (so the property above is not vacuous)."""
        table, probe = table_with_probe(7)
        self.assertIs(table.fast_reply(reply_packet(7), 0.5), probe)
        self.assertIsNone(table_with_probe(7)[0].fast_reply(reply_packet(7, ihl=6), 0.5))


class TargetTests(SynchronousTestCase):
    """Expanding hosts and CIDR ranges for sweeps."""

    @settings(max_examples=100, deadline=None)
    @given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=18, max_value=32))
    def test_ipv4_ranges_match_ipaddress(self, base: int, prefix: int) -> None:
        """A CIDR range gives exactly ipaddress's hosts(), in order."""
        net = ipaddress.ip_network(f"{ipaddress.IPv4Address(base)}/{prefix}", strict=False)
        self.assertEqual(expand_targets([str(net)]), [str(a) for a in net.hosts()])

    def test_mixed_and_deduplicated(self) -> None:
        """Literals and ranges mix; each address once, first position kept."""
        self.assertEqual(
            expand_targets(["127.0.0.2", "127.0.0.0/30", "::1", "0::1"]),
            ["127.0.0.2", "127.0.0.1", "::1"],
        )

    def test_refusals(self) -> None:
        """Bad text, a version mismatch, or too many addresses raise AddressError."""
        for texts, version in (
            (["127.1"], None),
            (["::1"], 4),
            (["10.0.0.0/33"], None),
            (["::/64"], None),
            (["127.0.0.0/8"], None),
        ):
            with self.subTest(texts=texts):
                self.assertRaises(
                    AddressError,
                    expand_targets,
                    texts,
                    version,
                    1 << 20 if texts != ["127.0.0.0/8"] else 1000,
                )
