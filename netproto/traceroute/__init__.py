"""
traceroute for IPv4 and IPv6, on Twisted: the path to a host, hop by hop.

Probes go out with increasing TTL (IPv6 hop limit), several at once; each
router on the way answers with an ICMP time exceeded, the destination with a
port unreachable (UDP) or an echo reply (ICMP), and an unreachable error
ends the trace with traceroute(8)'s mark (``!H``, ``!N``, ``!P``, ``!X``...).

- :func:`trace` starts a :class:`Trace`: hops arrive in order through a
  callback or ``async for``, :attr:`Trace.done` fires with the
  :class:`TraceSummary`; :func:`traceroute` is the one-call Deferred.
- Methods: :data:`UDP` (a destination port per probe, from 33434),
  :data:`PARIS` (one constant flow, so load balancers keep one path) and
  :data:`ICMP` (echo requests).
- Answers are read from a raw ICMP socket when permitted, or without
  privilege: the UDP socket's error queue (``IP_RECVERR``), or a Linux ping
  socket for ICMP. An answer counts only when what it quotes is one of our
  probes (ports or identifier and sequence, destination, the payload's random
  cookie): forged or foreign errors are never shown.
- :func:`interpret` and :func:`udp_quote` are the pure rules underneath.
"""

from netproto.traceroute._client import ICMP, METHODS, PARIS, UDP, trace, traceroute
from netproto.traceroute._codec import (
    BASE_PORT,
    DATAGRAM,
    IP_HEADER,
    UDP_PORT,
    UdpQuote,
    interpret,
    udp_quote,
)
from netproto.traceroute._hops import Hop, Reply, Responder, TraceSummary
from netproto.traceroute._trace import Trace, TraceError, TracePermissionError

__all__ = [
    "BASE_PORT",
    "DATAGRAM",
    "ICMP",
    "IP_HEADER",
    "METHODS",
    "PARIS",
    "UDP",
    "UDP_PORT",
    "Hop",
    "Reply",
    "Responder",
    "Trace",
    "TraceError",
    "TracePermissionError",
    "TraceSummary",
    "UdpQuote",
    "interpret",
    "trace",
    "traceroute",
    "udp_quote",
]
