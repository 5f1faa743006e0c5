"""
What a trace finds: the answer to one probe (:class:`Reply`), one hop's
answers (:class:`Hop`) and the whole path (:class:`TraceSummary`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Hop", "Reply", "Responder", "TraceSummary"]


class Reply(NamedTuple):
    """The answer to one probe."""

    address: str
    """Who answered: a router on the way, or the destination."""
    rtt: float
    """Seconds from sending the probe to reading its answer."""
    type: int
    """The ICMP type of the answer (time exceeded, unreachable, echo reply), or
    -1 (:data:`~netproto.traceroute.DATAGRAM`) for a UDP datagram back from the
    probed port."""
    code: int
    """Its ICMP code."""
    final: bool
    """True when the answer ends the trace: the destination answered, or a
    router reported it unreachable."""
    mark: str = ""
    """traceroute(8)'s mark for an unreachable answer (``!H``, ``!N``, ``!P``,
    ``!X``...); empty for a router on the way and for the destination."""


class Responder(NamedTuple):
    """One address that answered at a hop, with the round-trip times of its answers."""

    address: str
    rtts: tuple[float, ...]


@dataclass(frozen=True)
class Hop:
    """
    One hop: the probes sent with one TTL (IPv6 hop limit), in order, each
    with its :class:`Reply` or ``None`` when nothing credible came back in
    time (traceroute(8)'s ``*``).
    """

    ttl: int
    replies: tuple[Reply | None, ...]

    @property
    def responders(self) -> tuple[Responder, ...]:
        """The addresses that answered, in the order of their first answer."""
        seen: dict[str, list[float]] = {}
        for reply in self.replies:
            if reply is not None:
                seen.setdefault(reply.address, []).append(reply.rtt)
        return tuple(Responder(address, tuple(rtts)) for address, rtts in seen.items())

    @property
    def marks(self) -> tuple[str, ...]:
        """The distinct marks of this hop's answers (``!H``...), in order."""
        found: list[str] = []
        for reply in self.replies:
            if reply is not None and reply.mark and reply.mark not in found:
                found.append(reply.mark)
        return tuple(found)

    @property
    def final(self) -> bool:
        """True when an answer here ends the trace (destination, or unreachable)."""
        return any(r is not None and r.final for r in self.replies)

    @property
    def reached(self) -> bool:
        """True when the destination itself answered here (no mark)."""
        return any(r is not None and r.final and not r.mark for r in self.replies)


@dataclass(frozen=True)
class TraceSummary:
    """The path found, and how it was probed."""

    target: str
    """The destination address."""
    method: str
    """``udp`` (one destination port per probe), ``paris`` (UDP, one constant flow) or
    ``icmp`` (echo requests)."""
    mode: str
    """``raw`` (a raw ICMP socket read the answers) or ``dgram`` (unprivileged
    sockets: the UDP socket's error queue, or a ping socket)."""
    hops: tuple[Hop, ...]
    """Every hop probed, from the first TTL on, in order."""
    reached: bool
    """True when the destination answered."""
    first_hop: int
    max_hops: int
    probes: int
    """Probes per hop."""
    elapsed: float
    """Seconds from the first probe to the end."""
    ignored: int
    """Packets read on the trace's sockets that answered none of its probes:
    other traffic, forgeries, late or damaged answers. Never shown as hops."""
    stopped: bool = False
    """True when the trace was stopped before it finished."""
