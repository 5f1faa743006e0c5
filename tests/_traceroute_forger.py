"""
A fake path for ``tests/test_traceroute_netns.py``, run as a program inside
the namespace next to the client (``ip netns exec``), whose kernel drops every
probe (a blackhole route): it reads each probe off its veth end (an
``AF_PACKET`` socket) and injects, with an ``IPPROTO_RAW`` socket, ICMP
answers as a path of routers would, each preceded by forgeries that get one
thing wrong: a port, the identifier or sequence number, the quoted source
(UDP) or destination, the payload's cookie, the protocol, the checksum, the
length.

Probes with TTL 1 and 3 get a true answer from ``PREFIX.1.1`` and
``PREFIX.3.1``; TTL 2 gets forgeries only (the hop must show ``* * *``);
TTL 4 and more get the target's own answer (port unreachable, echo reply),
or, for targets ``PREFIX.8.8`` and ``PREFIX:8::8``, a protocol unreachable
(``!P``; ICMPv6's "unrecognized next header"). Forgeries claim to
come from ``10.66.66.66`` (``fd66::66``). Prints ``ready``, serves until its
standard input closes (or ``--seconds`` pass), then prints one JSON object:
what it saw and sent.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from netproto.ping import icmpv6_checksum
from netproto.util import checksum
from tests._icmp_packets import ipv4, ipv6_header

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
FORGED = {4: "10.66.66.66", 6: "fd66::66"}


def icmp4(kind: int, code: int, rest: bytes, body: bytes, *, good: bool = True) -> bytes:
    message = bytearray(struct.pack("!BB2x", kind, code) + rest + body)
    total = checksum(message)
    struct.pack_into("!H", message, 2, total if good else total ^ 0x0F0F)
    return bytes(message)


class Probe:
    """One probe as read off the wire."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.version = data[0] >> 4
        if self.version == 4:
            header = (data[0] & 0x0F) * 4
            self.ttl, self.protocol = data[8], data[9]
            self.source = socket.inet_ntop(socket.AF_INET, data[12:16])
            self.destination = socket.inet_ntop(socket.AF_INET, data[16:20])
            self.header = header
        else:
            self.ttl, self.protocol = data[7], data[6]
            self.source = socket.inet_ntop(socket.AF_INET6, data[8:24])
            self.destination = socket.inet_ntop(socket.AF_INET6, data[24:40])
            self.header = 40
        self.transport = data[self.header :]

    @property
    def udp(self) -> bool:
        return self.protocol == 17

    @property
    def request(self) -> bool:
        """An ICMP echo request (type 8 or 128)."""
        return self.protocol in (1, 58) and self.transport[:1] in (b"\x08", b"\x80")


def altered(probe: Probe, what: str) -> bytes:
    """The probe as a forger who got *what* wrong would quote it."""
    data = bytearray(probe.data)
    at = probe.header
    if what == "source-port" and probe.udp:
        data[at + 1] ^= 0x01
    elif what == "destination-port" and probe.udp:
        data[at + 2] ^= 0x40
    elif what == "identifier" and not probe.udp:
        data[at + 4] ^= 0x01
    elif what == "sequence" and not probe.udp:
        data[at + 6] ^= 0x40
    elif what == "destination":
        where = 19 if probe.version == 4 else 39
        data[where] ^= 0x01
    elif what == "source":
        where = 15 if probe.version == 4 else 23
        data[where] ^= 0x01
    elif what == "cookie":
        data[at + 8] ^= 0xFF
    elif what == "protocol":
        if probe.version == 4:
            data[9] = 6
        else:
            data[6] = 6
    elif what == "request-type" and not probe.udp:
        data[at] = 0 if probe.version == 4 else 129
    return bytes(data)


class Forger:
    def __init__(self, interface: str, prefix4: str, prefix6: str) -> None:
        self.sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        self.sniffer.bind((interface, 0))
        self.raw4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.raw6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.prefix = {4: prefix4, 6: prefix6}
        self.refusing = {f"{prefix4}.8.8", f"{prefix6}:8::8"}
        self.seen = 0
        self.true = 0
        self.forged = 0

    def router(self, version: int, hop: int) -> str:
        return f"{self.prefix[4]}.{hop}.1" if version == 4 else f"{self.prefix[6]}:{hop}::1"

    def send(self, version: int, source: str, destination: str, message: bytes) -> None:
        if version == 4:
            self.raw4.sendto(ipv4(source, destination, message), (destination, 0))
            return
        body = bytearray(message)
        struct.pack_into("!H", body, 2, 0)
        struct.pack_into("!H", body, 2, icmpv6_checksum(source, destination, bytes(body)))
        packet = ipv6_header(source, destination, len(body)) + bytes(body)
        self.raw6.sendto(packet, (destination, 0))

    def error(
        self, probe: Probe, source: str, kind: str, quoted: bytes, *, good: bool = True
    ) -> None:
        """An ICMP error of *kind* (``time``, ``port``, ``protocol``) quoting *quoted*."""
        v4 = probe.version == 4
        types = {
            "time": (11, 0) if v4 else (3, 0),
            "port": (3, 3) if v4 else (1, 4),
            "protocol": (3, 2) if v4 else (4, 1),
        }
        kind_type, code = types[kind]
        if v4:
            message = icmp4(kind_type, code, b"\0\0\0\0", quoted, good=good)
        else:
            message = struct.pack("!BBHI", kind_type, code, 0, 0) + quoted
        self.send(probe.version, source, probe.source, message)

    def reply(self, probe: Probe, source: str, payload: bytes | None = None) -> None:
        """An echo reply to *probe* (a request), from *source*."""
        ident, seq = struct.unpack_from("!HH", probe.transport, 4)
        body = probe.transport[8:] if payload is None else payload
        if probe.version == 4:
            message = icmp4(0, 0, struct.pack("!HH", ident, seq), body)
        else:
            message = struct.pack("!BBHHH", 129, 0, 0, ident, seq) + body
        self.send(probe.version, source, probe.source, message)

    def answer(self, probe: Probe) -> None:
        """Forgeries first, then (but for TTL 2) the true answer."""
        self.seen += 1
        forged = FORGED[probe.version]
        final = probe.ttl >= 4
        refusing = probe.destination in self.refusing
        kind = "time"
        if final:
            kind = "protocol" if refusing else "port"
        variants = ["destination", "cookie", "protocol"]
        if probe.udp:
            variants += ["source", "source-port", "destination-port"]
        else:
            variants += ["identifier", "sequence"]
        if not probe.udp:
            variants.append("request-type")
        for what in variants:
            self.error(probe, forged, "time", altered(probe, what))
            self.forged += 1
        # Too short a quote: the IP header and four bytes.
        self.error(probe, forged, "time", probe.data[: probe.header + 4])
        self.forged += 1
        if probe.version == 4:
            self.error(probe, forged, "time", probe.data, good=False)
            self.forged += 1
        if final and not probe.udp:
            self.reply(probe, forged)
            self.reply(probe, probe.destination, payload=b"\xff" * len(probe.transport[8:]))
            self.forged += 2
        if probe.ttl == 2:
            return
        self.true += 1
        if final and not probe.udp and not refusing:
            self.reply(probe, probe.destination)
        elif final:
            self.error(probe, probe.destination, kind, probe.data)
        else:
            self.error(probe, self.router(probe.version, probe.ttl), "time", probe.data)

    def serve(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        print("ready", flush=True)
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.sniffer, sys.stdin], [], [], 0.2)
            if sys.stdin in readable and not sys.stdin.readline():
                return
            if self.sniffer in readable:
                data, address = self.sniffer.recvfrom(65535)
                if address[2] == PACKET_OUTGOING or not data or data[0] >> 4 not in (4, 6):
                    continue
                probe = Probe(data)
                if probe.udp or probe.request:
                    self.answer(probe)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("interface")
    parser.add_argument("prefix4")
    parser.add_argument("prefix6")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    forger = Forger(args.interface, args.prefix4, args.prefix6)
    forger.serve(args.seconds)
    print(json.dumps({"seen": forger.seen, "true": forger.true, "forged": forger.forged}))


if __name__ == "__main__":
    main()
