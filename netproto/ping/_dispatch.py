"""
Who gets what an ICMP socket reads: a stateless sweep (its proof verifies),
else the probe table (a probe's reply, duplicate, error...), else nobody.
While a sweep reads a raw IPv4 socket, the socket reads a batch at a time
(``recvmmsg`` where Linux has it) and each sweep takes its replies from the
batch on the bytes; the rest goes packet by packet the general way.
"""

from __future__ import annotations

from typing import Any

from netproto.ping._batch import SLOTS, batch_receiver
from netproto.ping._codec import Packet, parse_ipv4
from netproto.ping._probes import REPLY, Probe

__all__ = ["dispatch", "drain_raw4_batched", "take_raw4", "taken", "taken_raw"]


def dispatch(verdict: str, probe: Probe, packet: Packet, now: float) -> None:
    """Tell a probe's owner about a packet: ``on_reply`` if credited, else ``on_packet``."""
    if verdict is REPLY:
        probe.owner.on_reply(probe, packet.ttl, packet.size, now)
    else:
        probe.owner.on_packet(verdict, probe, packet, now)


def taken_raw(sweeps: list[Any], data: bytes, now: float) -> bool:
    """Whether a sweep took raw IPv4 *data* as its reply."""
    for sweep in sweeps:
        if sweep.take_raw4(data, now):
            return True
    return False


def taken(sweeps: list[Any], packet: Packet, now: float) -> bool:
    """Whether a sweep took *packet* (its proof verified)."""
    for sweep in sweeps:
        if sweep.take(packet, now):
            return True
    return False


def _receive_raw4(sock: Any, limit: int) -> list[bytes]:
    """
    Up to *limit* (at most 64) datagrams waiting on :class:`IcmpSocket`
    *sock*: one ``recvmmsg``, or ``recv`` after ``recv`` where that call is
    not to be had.
    """
    receiver = sock._receiver
    if receiver is None or receiver.size < sock._bufsize:
        receiver = sock._receiver = (
            batch_receiver(sock.socket, sock._bufsize) if sock._batched else None
        )
        sock._batched = receiver is not None
    if receiver is not None:
        datagrams: list[bytes] = receiver.receive(limit)
        return datagrams
    recv = sock.socket.recv
    bufsize = sock._bufsize
    datagrams = []
    for _ in range(min(limit, SLOTS)):
        try:
            datagrams.append(recv(bufsize))
        except BlockingIOError:
            break
    return datagrams


def drain_raw4_batched(sock: Any, limit: int) -> int:
    """
    Read up to *limit* raw IPv4 packets from :class:`IcmpSocket` *sock* a
    batch at a time, while sweeps read it; return how many were read.
    """
    clock = sock.clock
    count = 0
    while count < limit:
        try:
            datagrams = _receive_raw4(sock, min(SLOTS, limit - count))
        except OSError:
            count += 1
            continue
        if not datagrams:
            break
        now = clock()
        count += len(datagrams)
        rest = datagrams
        for sweep in list(sock.sweeps):
            rest = sweep.take_raw4_many(rest, now)
            if sock._closed:
                return count
        for data in rest:
            take_raw4(sock, data, now)
            if sock._closed:
                return count
        if len(datagrams) < SLOTS:
            break  # the queue was empty: the next read would find nothing
    return count


def take_raw4(sock: Any, data: bytes, now: float) -> None:
    """One raw IPv4 packet no sweep took: a probe's reply, an error, or not ours."""
    table = sock.table
    answered = table.fast_reply(data, now) if table.pending else None
    if answered is not None:
        answered.owner.on_reply(answered, data[8], len(data) - 20, now)
        return
    packet = parse_ipv4(data)
    if sock.sweeps and taken(sock.sweeps, packet, now):
        return
    verdict, probe = table.classify(packet, now)
    if probe is not None:
        dispatch(verdict, probe, packet, now)
