"""
Echo requests that carry their own proof, for sweeps that keep no table of
probes (zmap's idea): the payload starts with a keyed MAC (BLAKE2b under a
random per-sweep key) of the probe number, the send time and the target's
address (in that order: the probes of a batch, sent at one time, share the
MAC's first part), then the probe number and the send time themselves; the
sequence number carries two more bytes of the same MAC (its first two: the
ten MAC bytes are then one run from the sequence number on, checked in one
comparison). A reply is ours when the MAC recomputed over its *source*
verifies, and only then is its send time trusted: a forger who cannot
compute the MAC cannot credit a target, move an RTT or replay a reply from
another address.

Payload layout (20 bytes, then ping(8)'s counting fill)::

    0               8            12              20
    | MAC bytes 2-9 | number !I  | send time !d  | fill ...
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct

from netproto.ping._codec import ECHO_REPLY, ERROR, Packet
from netproto.ping._targets import packed_key
from netproto.util import checksum

__all__ = ["PROOF_SIZE", "Stamper"]

PROOF_SIZE = 20
"""Payload bytes a sweep's probe needs for its proof; -s must be at least this."""

_BODY = struct.Struct("!Id")
_IPV4_ECHO = struct.Struct("!BxHxxBBBBxx4s4xBBxxH")
Found = tuple[int, "tuple[int, float] | None"]
"""What a checked packet is: the target's key and (probe number, send time), None if damaged."""
_HEADER = struct.Struct("!BBHHH")


class Stamper:
    """
    Builds and checks the probes of one sweep on identifier *ident* for IP
    *version*, *size* payload bytes each, under *key* (random by default).
    """

    def __init__(self, version: int, ident: int, size: int, key: bytes | None = None) -> None:
        if size < PROOF_SIZE:
            raise ValueError(f"a sweep's probes need at least {PROOF_SIZE} payload bytes")
        self.version = version
        self.ident = ident & 0xFFFF
        self.size = size
        self.key = key if key is not None else os.urandom(32)
        self._mac = hashlib.blake2b(digest_size=10, key=self.key)
        self.tail = bytes(i & 0xFF for i in range(PROOF_SIZE, size))
        """The fill after the proof, as ping(8) fills a payload."""
        self._type = 8 if version == 4 else 128
        # RFC 1071 arithmetic (as RFC 1624 updates a sum): the words that never
        # change (type and code, identifier, fill) are summed once; each probe
        # adds only its sequence number and proof.
        fixed = _HEADER.pack(self._type, 0, 0, self.ident, 0) + bytes(PROOF_SIZE) + self.tail
        self.template = fixed
        """A request with the sequence number, checksum and proof left zero."""
        self.fixed_sum = int.from_bytes(fixed + b"\0" * (len(fixed) & 1), "big") % 0xFFFF
        """The one's complement sum (mod 0xffff) of the unchanging words of a request."""

    def request(self, packed: bytes, number: int, sent: float) -> bytes:
        """The echo request (ICMP header and payload) of probe *number* to *packed*."""
        body = _BODY.pack(number, sent)
        mac = self._mac.copy()
        mac.update(body + packed)
        digest = mac.digest()
        payload = digest[2:] + body + self.tail
        seq = digest[0] << 8 | digest[1]
        if self.version == 4:
            varying = int.from_bytes(digest + body, "big")
            total = 0xFFFF - ((self.fixed_sum + varying) % 0xFFFF or 0xFFFF)
            return _HEADER.pack(8, 0, total, self.ident, seq) + payload
        # The kernel fills in ICMPv6 checksums.
        return _HEADER.pack(128, 0, 0, self.ident, seq) + payload

    def verify(
        self, packed: bytes, ident: int, seq: int, payload: bytes
    ) -> tuple[int, float] | None:
        """
        (probe number, send time) when *ident*, *seq* and the first 20 bytes
        of *payload* are a probe this stamper sent to *packed*; else None.
        """
        if ident != self.ident or len(payload) < PROOF_SIZE:
            return None
        body = payload[8:PROOF_SIZE]
        mac = self._mac.copy()
        mac.update(body + packed)
        digest = mac.digest()
        if digest[2:] != payload[:8] or (digest[0] << 8 | digest[1]) != seq:
            return None
        number, sent = _BODY.unpack(body)
        return number, sent

    def check_raw4(self, data: bytes) -> Found | None:
        """
        The fast path of a raw IPv4 socket: *data* is a plain IPv4 packet
        (IHL 5, unfragmented, exact length) carrying an echo reply whose
        proof verifies for its source. None for anything else (the general
        path then decides).
        """
        if len(data) < 28 + PROOF_SIZE:
            return None
        first, total, flags, offset, _, protocol, source, kind, _, ident = _IPV4_ECHO.unpack_from(
            data
        )
        if first != 0x45 or kind != 0 or protocol != 1 or total != len(data):
            return None
        if flags & 0x3F or offset or ident != self.ident:
            return None
        # verify(), inlined: every reply of a sweep comes this way.
        body = data[36:48]
        mac = self._mac.copy()
        mac.update(body + source)
        digest = mac.digest()
        if digest != data[26:36]:
            return None
        if checksum(data[20:]) or data[48:] != self.tail:
            return int.from_bytes(source, "big"), None
        return int.from_bytes(source, "big"), _BODY.unpack(body)

    def check(self, packet: Packet) -> Found | None:
        """
        *packet* checked: an echo reply whose proof verifies for its source,
        or an ICMP error (good checksum) quoting a probe whose proof verifies
        for its destination; None for anything else.
        """
        if packet.kind is ECHO_REPLY:
            address = packet.source
        elif packet.kind is ERROR and packet.checksum_ok:
            address = packet.target
        else:
            return None
        family = socket.AF_INET6 if self.version == 6 else socket.AF_INET
        try:
            packed = socket.inet_pton(family, address or "")
        except OSError:
            return None
        proof = self.verify(packed, packet.ident, packet.seq, packet.payload)
        if proof is None:
            return None
        damaged = packet.kind is ECHO_REPLY and (
            not packet.checksum_ok or packet.payload[PROOF_SIZE:] != self.tail
        )
        return packed_key(packed), None if damaged else proof
