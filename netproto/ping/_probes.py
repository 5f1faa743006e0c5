"""
Which packet answers which probe: the state of every echo request in flight
on one socket, and the rules that credit a reply to it.

Follows iputils' ``ping4_parse_reply`` and goes further: a reply is ours only
if its identifier, sequence number, source address and per-probe random
cookie all match a probe we sent, so another pinger that happens to use our
identifier (or a stale reply after the sequence number wrapped) is never
credited. A probe is answered once; later copies are duplicates, replies
after the probe's timeout are late, and neither counts as received.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from typing import Any

from netproto.ping._codec import COOKIE_SIZE, ECHO_REPLY, ERROR, MALFORMED, Packet

__all__ = [
    "ANSWERED",
    "DAMAGED",
    "DUPLICATE",
    "ERROR",
    "EXPIRED",
    "LATE",
    "MALFORMED",
    "NOT_OURS",
    "PENDING",
    "REPLY",
    "Payloads",
    "Probe",
    "ProbeTable",
    "TableFullError",
]

# Verdicts: what a packet is to us.
REPLY = "reply"
"""The first valid reply to a probe still waiting: credited."""
DUPLICATE = "duplicate"
"""Another copy of the reply to an answered probe (ping's ``DUP!``)."""
LATE = "late"
"""A reply (or error) for a probe whose timeout has passed: not credited."""
DAMAGED = "damaged"
"""Our reply, but with a bad checksum or altered payload: not credited."""
NOT_OURS = "not-ours"
"""Another process's traffic, our own requests, anything not about our probes."""
# ERROR (an ICMP error quoting one of our waiting probes) and MALFORMED are
# the packet kinds of the same names.

# An IPv4 header without options, then an ICMP header: version and IHL,
# total length, flags and fragment offset (two bytes), TTL, protocol, source
# address, ICMP type, code, identifier, sequence number.
_IPV4_ECHO = struct.Struct("!BxHxxBBBBxx4s4xBBxxHH")

_KEEP = 64
"""Resolved probes with larger payloads keep only their cookie: the table
holds up to 65,536 probes, and 64 KiB payloads would otherwise pin 4 GiB."""


def _trim(probe: Probe) -> None:
    probe.payload = probe.payload[:8]
    probe.trimmed = True


# Probe states.
PENDING = "pending"
ANSWERED = "answered"
EXPIRED = "expired"


class TableFullError(Exception):
    """All 65,536 sequence numbers are in use by probes still waiting."""


class Probe:
    """
    One echo request: where it went, what it carried, when it left and
    what became of it. *owner* is whoever sent it (a pinger or a sweep); the
    table never looks at it.
    """

    __slots__ = (
        "deadline",
        "errors",
        "number",
        "owner",
        "packed",
        "payload",
        "rtt",
        "sent",
        "seq",
        "state",
        "target",
        "trimmed",
    )

    def __init__(self, target: str, payload: bytes, owner: Any = None, number: int = 0) -> None:
        self.target = target
        """The destination, as :func:`socket.inet_ntop` writes it."""
        self.packed = b""
        """The destination's bytes (set by the socket that sends it)."""
        self.payload = payload
        """The payload sent; it starts with the probe's random cookie."""
        self.owner = owner
        self.number = number
        """The owner's own count of this probe (ping's ``icmp_seq``)."""
        self.seq = -1
        """The sequence number on the wire, given by :meth:`ProbeTable.add`."""
        self.sent = 0.0
        """Monotonic send time, in seconds."""
        self.deadline = 0.0
        self.state = PENDING
        self.rtt: float | None = None
        """Round-trip time in seconds, once answered."""
        self.errors = 0
        """ICMP errors received about this probe."""
        self.trimmed = False
        """True once a large payload was cut down to its cookie (the probe is resolved)."""

    def __repr__(self) -> str:
        return f"<Probe #{self.number} seq={self.seq} {self.target} {self.state}>"


class ProbeTable:
    """
    The probes of one identifier (one socket), by wire sequence number.

    Sequence numbers are handed out in order modulo 65,536 (:meth:`next_seq`),
    skipping any still waiting, so a number is reused as late as possible; the cookie
    stops an old reply from matching a new probe after a wrap.
    """

    def __init__(self, ident: int, first_seq: int = 0) -> None:
        self.ident = ident & 0xFFFF
        self.pending = 0
        """Probes waiting for an answer or their timeout."""
        self.not_ours = 0
        self.malformed = 0
        self._probes: dict[int, Probe] = {}
        self._next = first_seq & 0xFFFF
        # Probes by timeout, each deque in send (hence deadline) order.
        self._deadlines: dict[float, deque[Probe]] = {}

    def next_seq(self) -> int:
        """
        The sequence number for the next probe: the next in order modulo
        65,536 that no waiting probe holds. Pass it to :meth:`add` once the
        probe is sent.

        :raises TableFullError: 65,536 probes are already waiting.
        """
        if self.pending >= 0x10000:
            raise TableFullError("65536 probes in flight")
        probes = self._probes
        seq = self._next
        old = probes.get(seq)
        while old is not None and old.state is PENDING:
            seq = (seq + 1) & 0xFFFF
            old = probes.get(seq)
        return seq

    def add(self, probe: Probe, seq: int, sent: float, timeout: float) -> None:
        """
        Register *probe*, sent with sequence number *seq* (from
        :meth:`next_seq`) at monotonic time *sent*, expiring *timeout*
        seconds later.
        """
        self._next = (seq + 1) & 0xFFFF
        self._probes[seq] = probe
        probe.seq = seq
        probe.sent = sent
        probe.deadline = sent + timeout
        self.pending += 1
        waiting = self._deadlines.get(timeout)
        if waiting is None:
            waiting = self._deadlines[timeout] = deque()
        waiting.append(probe)

    def classify(self, packet: Packet, now: float) -> tuple[str, Probe | None]:
        """
        What *packet*, received at monotonic time *now*, is to us: one of
        :data:`REPLY`, :data:`DUPLICATE`, :data:`LATE`, :data:`ERROR`,
        :data:`DAMAGED`, :data:`MALFORMED` or :data:`NOT_OURS`, with the probe
        it concerns (``None`` for the last two). A :data:`REPLY` marks the
        probe answered and sets its RTT.
        """
        kind = packet.kind
        if kind is ECHO_REPLY:
            probe = self._match(packet)
            if probe is None:
                self.not_ours += 1
                return NOT_OURS, None
            if not packet.checksum_ok or (not probe.trimmed and packet.payload != probe.payload):
                return DAMAGED, probe
            state = probe.state
            if state is PENDING:
                probe.state = ANSWERED
                probe.rtt = now - probe.sent
                self.pending -= 1
                if len(probe.payload) > _KEEP:
                    _trim(probe)
                return REPLY, probe
            return (DUPLICATE if state is ANSWERED else LATE), probe
        if kind is ERROR:
            if not packet.checksum_ok:
                # Damaged in transit, or forged carelessly: never about a probe.
                self.malformed += 1
                return MALFORMED, None
            probe = self._match(packet)
            if probe is None:
                self.not_ours += 1
                return NOT_OURS, None
            if probe.state is not PENDING:
                return LATE, probe
            probe.errors += 1
            return ERROR, probe
        if kind is MALFORMED:
            self.malformed += 1
            return MALFORMED, None
        self.not_ours += 1
        return NOT_OURS, None

    def fast_reply(self, data: bytes, now: float) -> Probe | None:
        """
        The common case of a raw IPv4 socket, decided without the general
        parser: *data* is a plain IPv4 packet (IHL 5, unfragmented, exact
        length) carrying a valid echo reply to a waiting probe of ours, with
        the right source and payload. Then the probe is marked answered and
        returned, exactly as :func:`parse_ipv4` and :meth:`classify` would
        have decided (its TTL is ``data[8]``, its ICMP size ``len(data) -
        20``); for anything else, ``None`` and no change: use the general path.
        """
        if len(data) < 28:
            return None
        first, total, flags, offset, _, protocol, source, kind, _, ident, seq = (
            _IPV4_ECHO.unpack_from(data)
        )
        if (
            first != 0x45
            or kind != 0
            or protocol != 1
            or ident != self.ident
            or total != len(data)
            or flags & 0x3F
            or offset
        ):
            return None
        probe = self._probes.get(seq)
        if probe is None or probe.state is not PENDING or source != probe.packed:
            return None
        payload = probe.payload
        if total != 28 + len(payload) or not data.endswith(payload):
            return None
        # checksum(data[20:]) == 0, inlined (RFC 1071: the sum is 0 modulo 0xffff).
        value = int.from_bytes(data[20:], "big")
        if total & 1:
            value <<= 8
        if not value or value % 0xFFFF:
            return None
        probe.state = ANSWERED
        probe.rtt = now - probe.sent
        self.pending -= 1
        if total > _KEEP + 28:
            _trim(probe)
        return probe

    def add_answered(
        self,
        target: str,
        packed: bytes,
        payload: bytes,
        owner: Any,
        number: int,
        seq: int,
        sent: float,
        now: float,
    ) -> Probe:
        """
        A new probe to *target* (*packed*: its bytes) carrying *payload*, sent
        by *owner* as its probe *number* with sequence number *seq* (from
        :meth:`next_seq`) at monotonic time *sent*, registered as answered
        at *now*: for a sender that read and checked its reply (as
        :meth:`fast_reply` checks one, or more strictly) before anything else
        saw the table. Later copies of that reply are then duplicates, as
        after :meth:`add` and a reply. (Each field is set once: this runs
        for every probe of a fast ping.)
        """
        probe = Probe.__new__(Probe)
        probe.target = target
        probe.packed = packed
        probe.owner = owner
        probe.number = number
        probe.seq = seq
        probe.sent = probe.deadline = sent
        probe.state = ANSWERED
        probe.rtt = now - sent
        probe.errors = 0
        probe.trimmed = False
        probe.payload = payload
        if len(payload) > _KEEP:
            _trim(probe)
        self._next = (seq + 1) & 0xFFFF
        self._probes[seq] = probe
        return probe

    def _match(self, packet: Packet) -> Probe | None:
        """The probe *packet* is about, by identifier, sequence, address and cookie."""
        if packet.ident != self.ident:
            return None
        probe = self._probes.get(packet.seq)
        if probe is None:
            return None
        address = packet.target if packet.kind is ERROR else packet.source
        if address != probe.target:
            return None
        payload = packet.payload
        sent = probe.payload
        if packet.kind is ERROR:
            # An error quotes at least 8 bytes after the IP header: the cookie
            # may be cut short, but what is there must agree.
            return probe if sent.startswith(payload[: len(sent)]) else None
        cookie = min(len(sent), 8)
        return probe if payload[:cookie] == sent[:cookie] else None

    def next_deadline(self) -> float | None:
        """The earliest deadline of a waiting probe, if any."""
        earliest = None
        for waiting in self._deadlines.values():
            while waiting and waiting[0].state is not PENDING:
                waiting.popleft()
            if waiting and (earliest is None or waiting[0].deadline < earliest):
                earliest = waiting[0].deadline
        return earliest

    def forget_deadlines(self) -> None:
        """Drop the deadline queues when no probe is waiting (they then hold only old probes)."""
        if not self.pending:
            self._deadlines.clear()

    def expire(self, now: float) -> list[Probe]:
        """Mark every probe whose deadline is at or before *now* expired; return them."""
        expired = []
        for waiting in self._deadlines.values():
            while waiting and waiting[0].deadline <= now:
                probe = waiting.popleft()
                if probe.state is PENDING:
                    probe.state = EXPIRED
                    self.pending -= 1
                    if len(probe.payload) > _KEEP:
                        _trim(probe)
                    expired.append(probe)
        return expired


class Payloads:
    """
    Payloads of a fixed size, each starting with a fresh random cookie; the
    rest is *pattern* repeated (ping(8)'s ``-p``), or by default the bytes
    counting up from the cookie's end, as ping(8) fills them.
    """

    def __init__(self, size: int, pattern: bytes = b"") -> None:
        self.size = size
        self.cookie_size = min(size, COOKIE_SIZE)
        """Bytes of random cookie each payload starts with."""
        if pattern:
            rest = size - self.cookie_size
            self.tail = (pattern * (rest // len(pattern) + 1))[:rest]
        else:
            self.tail = bytes(i & 0xFF for i in range(self.cookie_size, size))
        """The fixed bytes after the cookie."""
        self._pool = b""
        self._at = 0

    def next(self) -> bytes:
        """The next payload: a fresh cookie, then the fixed tail."""
        n = self.cookie_size
        if self._at + n > len(self._pool):
            self._pool = os.urandom(max(n, 1) * 4096)
            self._at = 0
        at = self._at
        self._at = at + n
        return self._pool[at : at + n] + self.tail
