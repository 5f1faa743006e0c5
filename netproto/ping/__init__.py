"""
ICMP echo (ping) for IPv4 and IPv6, on Twisted.

Three layers:

- the codec (:func:`echo_request`, :func:`parse_ipv4`, :func:`parse_icmpv4`,
  :func:`parse_icmpv6`, :class:`Packet`) builds requests and parses anything
  an ICMP socket delivers, never raising;
- :class:`ProbeTable` decides what a packet is to us: our reply, a
  duplicate, a late reply, an ICMP error about one of our probes, damaged,
  malformed, or not ours, matching identifier, sequence number, source
  address and a per-probe random cookie;
- :class:`PingClient` owns one ICMP socket per address family (raw, or a
  Linux unprivileged ping socket, chosen automatically) and runs
  :class:`Ping` (one host) and :class:`Sweep` (many hosts and CIDR ranges
  at a bounded rate) over it.

:func:`ping` and :func:`sweep` are the one-call forms.
"""

from netproto.ping._client import PingClient, ping, sweep
from netproto.ping._codec import (
    ECHO_REPLY,
    ECHO_REQUEST,
    ERROR,
    MALFORMED,
    OTHER,
    Packet,
    describe_error,
    echo_request,
    icmpv6_checksum,
    parse_icmpv4,
    parse_icmpv6,
    parse_ipv4,
)
from netproto.ping._host import Ping, ProbeResult, Statistics, Summary
from netproto.ping._open import AUTO, DGRAM, RAW, PingPermissionError
from netproto.ping._permutation import Permutation
from netproto.ping._probes import (
    DAMAGED,
    DUPLICATE,
    LATE,
    NOT_OURS,
    REPLY,
    Probe,
    ProbeTable,
)
from netproto.ping._socket import IcmpSocket
from netproto.ping._stamp import PROOF_SIZE
from netproto.ping._sweep import MAX_PROBES, Sweep
from netproto.ping._targets import (
    TargetSpace,
    expand_targets,
    key_text,
    read_exclude_file,
)
from netproto.ping._verdicts import HostResult, SweepSummary

__all__ = [
    "AUTO",
    "DAMAGED",
    "DGRAM",
    "DUPLICATE",
    "ECHO_REPLY",
    "ECHO_REQUEST",
    "ERROR",
    "LATE",
    "MALFORMED",
    "MAX_PROBES",
    "NOT_OURS",
    "OTHER",
    "PROOF_SIZE",
    "RAW",
    "REPLY",
    "HostResult",
    "IcmpSocket",
    "Packet",
    "Permutation",
    "Ping",
    "PingClient",
    "PingPermissionError",
    "Probe",
    "ProbeResult",
    "ProbeTable",
    "Statistics",
    "Summary",
    "Sweep",
    "SweepSummary",
    "TargetSpace",
    "describe_error",
    "echo_request",
    "expand_targets",
    "icmpv6_checksum",
    "key_text",
    "parse_icmpv4",
    "parse_icmpv6",
    "parse_ipv4",
    "ping",
    "read_exclude_file",
    "sweep",
]
