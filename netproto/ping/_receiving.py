"""
The other hot loop of a sweep: a batch of raw IPv4 datagrams checked on
their bytes, before any :class:`~netproto.ping.Packet` is built. A plain
echo reply (IHL 5, unfragmented, exact length, our identifier) whose proof
verifies for its source is credited, or counted a duplicate, late or
damaged; everything else is handed back for the general path (ICMP errors,
other pingers' traffic, forgeries), which parses it and decides.

This is :meth:`Stamper.check_raw4 <netproto.ping._stamp.Stamper.check_raw4>`
and :meth:`Sweep._reply <netproto.ping.Sweep>` in one loop, for the case of
one probe per target: the same checks in the same order, with the sweep's
constants looked up once per batch.
"""

from __future__ import annotations

import struct
from typing import Any

from netproto.ping._targets import key_text
from netproto.ping._verdicts import HostResult

__all__ = ["take_replies"]

_IPV4_ECHO = struct.Struct("!BxHxxBBBBxx4s4xBBxxH")
_BODY = struct.Struct("!Id")
_SHORTEST = 48  # an IPv4 header, an ICMP header and the 20-byte proof


def take_replies(sweep: Any, datagrams: list[bytes], now: float) -> list[bytes]:
    """
    Take from *datagrams* (read at *now*) the replies that are *sweep*'s;
    return the others, in order.
    """
    stamper = sweep._stampers.get(4)
    if stamper is None or sweep._finished:
        return datagrams
    if sweep._rounds:
        return [data for data in datagrams if not sweep.take_raw4(data, now)]
    unpack = _IPV4_ECHO.unpack_from
    unpack_body = _BODY.unpack
    ident = stamper.ident
    mac_copy = stamper._mac.copy
    tail = stamper.tail
    from_bytes = int.from_bytes
    single = sweep._single
    n = sweep._n
    index_of = sweep.targets.index_of
    passes = sweep._passes
    waits = sweep._waits
    bits = sweep._bits
    on_host = sweep.on_host
    covered = sweep.covered
    sending = sweep._windows_pending_sends()
    rest: list[bytes] = []
    received = damaged = late = duplicates = 0
    low, high, total = sweep.rtt_low, sweep.rtt_high, sweep.rtt_total
    decided = sweep.decided
    for at, data in enumerate(datagrams):
        size = len(data)
        if size < _SHORTEST:
            rest.append(data)
            continue
        first, length, flags, offset, _, protocol, source, kind, _, their_ident = unpack(data)
        if (
            first != 0x45
            or kind
            or protocol != 1
            or length != size
            or flags & 0x3F
            or offset
            or their_ident != ident
        ):
            rest.append(data)
            continue
        body = data[36:48]
        mac = mac_copy()
        mac.update(body + source)
        digest = mac.digest()
        if digest != data[26:36]:  # the sequence number and the proof
            rest.append(data)
            continue
        # The proof verified: the reply is ours, whatever else is wrong with it.
        # The ICMP checksum (RFC 1071, as netproto.util.checksum reads it: the
        # words' one's complement sum is 0xffff, 0 modulo 0xffff).
        word_sum = from_bytes(data[20:], "big")
        if size & 1:
            word_sum <<= 8
        if not word_sum or word_sum % 0xFFFF or data[48:] != tail:
            damaged += 1
            continue
        number, sent = unpack_body(body)
        key = from_bytes(source, "big")
        if single is not None:
            index: int | None = key - single
            if not 0 <= key - single < n:
                continue
        else:
            index = index_of(key)
        if index is None or number >= passes:
            continue
        rtt = now - sent
        if rtt > waits[number]:
            late += 1
            continue
        byte, bit = index >> 3, 1 << (index & 7)
        if bits[byte] & bit:
            duplicates += 1
            continue
        bits[byte] |= bit
        received += 1
        decided += 1
        total += rtt
        if rtt < low:
            low = rtt
        if rtt > high:
            high = rtt
        if on_host is not None or (decided >= covered and not sending):
            # Hand the counts over before anything can end the sweep.
            _hand_over(sweep, received, decided, damaged, late, duplicates, low, high, total)
            received = damaged = late = duplicates = 0
            if on_host is not None:
                sweep._deliver(HostResult(key_text(key), True, number + 1, 1, 0, 0, (rtt,), None))
            if not sweep._finished and sweep.decided >= sweep.covered and not sending:
                sweep._finish(True)
            if sweep._finished:
                rest.extend(datagrams[at + 1 :])
                return rest
            decided, covered = sweep.decided, sweep.covered
            low, high, total = sweep.rtt_low, sweep.rtt_high, sweep.rtt_total
    _hand_over(sweep, received, decided, damaged, late, duplicates, low, high, total)
    return rest


def _hand_over(
    sweep: Any,
    received: int,
    decided: int,
    damaged: int,
    late: int,
    duplicates: int,
    low: float,
    high: float,
    total: float,
) -> None:
    """Add a batch's counts to *sweep*'s."""
    sweep.received += received
    sweep.alive += received
    sweep.decided = decided
    sweep.damaged += damaged
    sweep.late += late
    sweep.duplicates += duplicates
    sweep.rtt_low, sweep.rtt_high, sweep.rtt_total = low, high, total
