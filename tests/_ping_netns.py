"""
Forged-reply scenarios for ``tests/test_ping_netns.py``, run as a program
inside a network namespace of the test's own (``unshare -n``): the kernel is
told not to answer echo requests (``icmp_echo_ignore_all``), a sniffer reads
each request netproto sends, and an ``IPPROTO_RAW`` socket injects whatever
reply or error the scenario calls for. Prints one JSON object: the outcome
of every scenario.

Never run it outside a namespace of its own: it changes sysctls.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import task
from twisted.internet.defer import Deferred

from netproto.ping import (
    ECHO_REQUEST,
    Packet,
    PingClient,
    ProbeResult,
    icmpv6_checksum,
    parse_icmpv6,
    parse_ipv4,
)
from tests._icmp_packets import icmp, icmp_error, ipv4, ipv6_header

TARGET = "127.0.0.2"


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


class Forger:
    """Reads our echo requests off the wire and injects answers to them."""

    def __init__(self) -> None:
        self.sniffer = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.injector = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def flush(self) -> None:
        """Forget everything seen so far."""
        self.sniffer.setblocking(False)
        try:
            while True:
                self.sniffer.recv(65535)
        except BlockingIOError:
            pass

    def request(self) -> Packet:
        """The next echo request seen (our probes go out synchronously on loopback)."""
        self.sniffer.settimeout(2.0)
        while True:
            packet = parse_ipv4(self.sniffer.recv(65535))
            if packet.kind == ECHO_REQUEST:
                return packet

    def inject(self, data: bytes) -> None:
        """Put a forged IPv4 packet on the loopback wire, addressed to its destination."""
        self.injector.sendto(data, (socket.inet_ntoa(data[16:20]), 0))

    def reply(
        self, request: Packet, *, source: str | None = None, good: bool = True, ihl: int = 5
    ) -> bytes:
        """An echo reply to *request* (from its target unless *source* says otherwise)."""
        assert request.source is not None
        message = icmp(0, 0, request.ident, request.seq, request.payload, good=good)
        return ipv4(source or self.target_of(request), request.source, message, ihl=ihl)

    def unreachable(self, request: Packet, code: int = 1, router: str = "127.0.0.9") -> bytes:
        """A Destination Unreachable from *router* quoting *request*."""
        assert request.source is not None
        quoted = ipv4(
            request.source,
            self.target_of(request),
            icmp(8, 0, request.ident, request.seq, request.payload),
        )
        return ipv4(router, request.source, icmp_error(3, code, quoted))

    @staticmethod
    def target_of(request: Packet) -> str:
        return TARGET


def _record(summary: Any, results: list[ProbeResult]) -> dict[str, Any]:
    return {
        "transmitted": summary.transmitted,
        "received": summary.received,
        "duplicates": summary.duplicates,
        "damaged": summary.damaged,
        "errors": summary.errors,
        "late": summary.late,
        "results": [[r.kind, r.seq, r.source, r.error, r.ttl] for r in results],
    }


async def _one(reactor: Any, forger: Forger, mode: str, answers: list[str]) -> dict[str, Any]:
    """Ping TARGET once; answer the request with each of *answers* in turn."""
    forger.flush()
    client = PingClient(reactor, mode)
    results: list[ProbeResult] = []
    running = client.ping(TARGET, count=1, timeout=0.3, on_result=results.append)
    request = forger.request()
    for answer in answers:
        if answer == "good":
            forger.inject(forger.reply(request))
        elif answer == "wrong-source":
            forger.inject(forger.reply(request, source="127.0.0.3"))
        elif answer == "bad-checksum":
            forger.inject(forger.reply(request, good=False))
        elif answer == "options":
            forger.inject(forger.reply(request, ihl=9))
        elif answer == "unreachable":
            forger.inject(forger.unreachable(request))
    summary = await running.done
    not_ours = client.socket_for(4).table.not_ours
    client.close()
    return {**_record(summary, results), "not_ours": not_ours}


async def _same_identifier(reactor: Any, forger: Forger) -> dict[str, Any]:
    """Two pingers, same identifier and sequence number: only the one answered is credited."""
    forger.flush()
    first, second = PingClient(reactor, "raw"), PingClient(reactor, "raw")
    table1, table2 = first.socket_for(4).table, second.socket_for(4).table
    second.socket_for(4).set_ident(table1.ident)
    table2._next = table1._next
    results1: list[ProbeResult] = []
    results2: list[ProbeResult] = []
    ping1 = first.ping(TARGET, count=1, timeout=0.3, on_result=results1.append)
    request1 = forger.request()
    ping2 = second.ping(TARGET, count=1, timeout=0.3, on_result=results2.append)
    request2 = forger.request()
    forger.inject(forger.reply(request1))
    summary1, summary2 = await ping1.done, await ping2.done
    first.close()
    second.close()
    return {
        "same_wire_fields": [request1.ident, request1.seq] == [request2.ident, request2.seq],
        "first": _record(summary1, results1),
        "second": _record(summary2, results2),
    }


async def _duplicates(reactor: Any, forger: Forger) -> dict[str, Any]:
    """Three copies of the first reply: one received, two duplicates (DUP!), counted once each."""
    forger.flush()
    client = PingClient(reactor, "raw")
    results: list[ProbeResult] = []
    running = client.ping(TARGET, count=2, interval=0.2, timeout=0.3, on_result=results.append)
    first = forger.request()
    for _ in range(3):
        forger.inject(forger.reply(first))
    await _sleep(reactor, 0.25)
    forger.inject(forger.reply(forger.request()))
    summary = await running.done
    client.close()
    return _record(summary, results)


async def _rapid(reactor: Any, forger: Forger) -> dict[str, Any]:
    """
    ``-i 0`` back to back (``iterate=False``): each of three probes is
    answered from another source, with the next probe's sequence number,
    with a bad checksum, then twice correctly. Only the good replies count;
    the second copy is a duplicate of its own probe.
    """
    forger.flush()
    client = PingClient(reactor, "raw")
    results: list[ProbeResult] = []
    running = client.ping(
        TARGET, count=3, interval=0.0, timeout=0.3, iterate=False, on_result=results.append
    )
    for _ in range(3):
        request = forger.request()
        forger.inject(forger.reply(request, source="127.0.0.3"))
        message = icmp(0, 0, request.ident, (request.seq + 1) & 0xFFFF, request.payload)
        assert request.source is not None
        forger.inject(ipv4(TARGET, request.source, message))
        forger.inject(forger.reply(request, good=False))
        forger.inject(forger.reply(request))
        forger.inject(forger.reply(request))
        await _sleep(reactor, 0.005)
    summary = await running.done
    not_ours = client.socket_for(4).table.not_ours
    client.close()
    return {**_record(summary, results), "not_ours": not_ours}


async def _late(reactor: Any, forger: Forger) -> dict[str, Any]:
    """A reply after its probe's timeout is late; the next probe is still credited."""
    forger.flush()
    client = PingClient(reactor, "raw")
    results: list[ProbeResult] = []
    running = client.ping(TARGET, count=2, interval=0.5, timeout=0.2, on_result=results.append)
    first = forger.request()
    await _sleep(reactor, 0.3)
    forger.inject(forger.reply(first))
    await _sleep(reactor, 0.25)
    forger.inject(forger.reply(forger.request()))
    summary = await running.done
    client.close()
    return _record(summary, results)


class Forger6:
    """The IPv6 forger: ICMPv6 requests sniffed, replies and errors injected with a header."""

    def __init__(self) -> None:
        self.sniffer = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        self.injector = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def request(self) -> Packet:
        self.sniffer.settimeout(2.0)
        while True:
            data, address = self.sniffer.recvfrom(65535)
            packet = parse_icmpv6(data, address[0])
            if packet.kind == ECHO_REQUEST:
                return packet

    def inject(self, source: str, message: bytes) -> None:
        """Send ICMPv6 *message* from *source* to ::1, checksum filled in."""
        body = bytearray(message)
        struct.pack_into("!H", body, 2, 0)
        struct.pack_into("!H", body, 2, icmpv6_checksum(source, "::1", bytes(body)))
        packet = ipv6_header(source, "::1", len(body)) + bytes(body)
        self.injector.sendto(packet, ("::1", 0))

    def reply(self, request: Packet, source: str = "::1") -> None:
        self.inject(
            source, struct.pack("!BBHHH", 129, 0, 0, request.ident, request.seq) + request.payload
        )

    def unreachable(self, request: Packet, router: str = "2001:db8::9") -> None:
        quoted_icmp = struct.pack("!BBHHH", 128, 0, 0, request.ident, request.seq)
        quoted = ipv6_header("::1", "::1", 8 + len(request.payload)) + quoted_icmp
        self.inject(router, struct.pack("!BBHI", 1, 3, 0, 0) + quoted + request.payload)


async def _ipv6(reactor: Any, answer: str) -> dict[str, Any]:
    """Ping ::1 once (kernel silent); answer as told."""
    forger = Forger6()
    client = PingClient(reactor, "raw")
    results: list[ProbeResult] = []
    running = client.ping("::1", count=1, timeout=0.3, on_result=results.append)
    request = forger.request()
    if answer == "good":
        forger.reply(request)
    elif answer == "wrong-source":
        forger.reply(request, source="2001:db8::5")
    elif answer == "unreachable":
        forger.unreachable(request)
    summary = await running.done
    not_ours = client.socket_for(6).table.not_ours
    client.close()
    forger.sniffer.close()
    forger.injector.close()
    return {**_record(summary, results), "not_ours": not_ours}


async def _sleep(reactor: Any, seconds: float) -> None:
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    await d


async def main(reactor: Any) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    _write("/proc/sys/net/ipv4/icmp_echo_ignore_all", "1")
    _write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647")
    forger = Forger()
    outcome: dict[str, Any] = {}
    started = time.monotonic()
    for name, mode, answers in [
        ("silence", "raw", []),
        ("good", "raw", ["good"]),
        ("wrong_source", "raw", ["wrong-source"]),
        ("bad_checksum", "raw", ["bad-checksum"]),
        ("ip_options", "raw", ["options"]),
        ("unreachable", "raw", ["unreachable"]),
        ("dgram_good", "dgram", ["good", "good"]),
        ("dgram_unreachable", "dgram", ["unreachable"]),
    ]:
        outcome[name] = await _one(reactor, forger, mode, answers)
    outcome["same_identifier"] = await _same_identifier(reactor, forger)
    outcome["duplicates"] = await _duplicates(reactor, forger)
    outcome["rapid"] = await _rapid(reactor, forger)
    _write("/proc/sys/net/ipv6/icmp/echo_ignore_all", "1")
    for answer in ("silence", "good", "wrong-source", "unreachable"):
        outcome[f"ipv6_{answer}"] = await _ipv6(reactor, answer)
    outcome["late"] = await _late(reactor, forger)
    outcome["seconds"] = time.monotonic() - started
    print(json.dumps(outcome))


if __name__ == "__main__":
    task.react(main)
