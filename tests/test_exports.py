"""
The public surface of every public module, pinned: each name of today imports
from the same path, and nothing is added to or dropped from ``__all__`` by
accident (change the table below on purpose, with the docs).
"""

from __future__ import annotations

import importlib

from twisted.trial.unittest import SynchronousTestCase

PUBLIC: dict[str, list[str]] = {
    "netproto": [
        "__version__",
    ],
    "netproto.util": [
        "Address",
        "AddressError",
        "Mask",
        "MaskError",
        "canonical",
        "checksum",
        "default_mask",
        "format_host_port",
        "host",
        "ipv4_mapped",
        "network",
        "parse_ip",
        "parse_port",
        "positive_seconds",
        "split_host_port",
        "unmap",
    ],
    "netproto.daytime": [
        "DaytimeDatagramProtocol",
        "DaytimeFactory",
        "DaytimeProtocol",
        "FORMATS",
        "MAX_LINE",
        "ProtocolError",
        "RefusedError",
        "ServiceError",
        "ServiceTimeoutError",
        "UnreachableError",
        "daytime_tcp",
        "daytime_udp",
        "format_daytime",
    ],
    "netproto.echo": [
        "EchoDatagramProtocol",
        "EchoFactory",
        "EchoProtocol",
        "MAX_UDP_IPV4",
        "MAX_UDP_IPV6",
        "MismatchError",
        "ProtocolError",
        "RefusedError",
        "ServiceError",
        "ServiceTimeoutError",
        "UnreachableError",
        "echo_tcp",
        "echo_udp",
    ],
    "netproto.limits": [
        "COUNTERS",
        "ConnectionLimiter",
        "ConnectionWatch",
        "Counters",
        "DEFAULT_LIMITS",
        "Limits",
        "RefusalSummary",
        "SourcePolicy",
        "Watched",
        "bad_source",
        "peer_key",
        "periodic",
    ],
    "netproto.tap": [
        "Options",
        "makeService",
    ],
    "netproto.journal": [
        "JournalObserver",
        "PRIORITIES",
        "observer",
    ],
    "netproto.ping": [
        "AUTO",
        "DAMAGED",
        "DGRAM",
        "DUPLICATE",
        "ECHO_REPLY",
        "ECHO_REQUEST",
        "ERROR",
        "HostResult",
        "IcmpSocket",
        "LATE",
        "MALFORMED",
        "NOT_OURS",
        "OTHER",
        "Packet",
        "Ping",
        "PingClient",
        "PingPermissionError",
        "Probe",
        "ProbeResult",
        "ProbeTable",
        "RAW",
        "REPLY",
        "Statistics",
        "Summary",
        "Sweep",
        "SweepSummary",
        "describe_error",
        "echo_request",
        "expand_targets",
        "icmpv6_checksum",
        "parse_icmpv4",
        "parse_icmpv6",
        "parse_ipv4",
        "ping",
        "sweep",
    ],
    "netproto.head": [
        "CLOSE_GRACE",
        "HeadCertificateError",
        "HeadClientProtocol",
        "HeadConnectError",
        "HeadError",
        "HeadFields",
        "HeadLimits",
        "HeadParseError",
        "HeadParser",
        "HeadProtocolError",
        "HeadProxyError",
        "HeadResolveError",
        "HeadResponse",
        "HeadTLSError",
        "HeadTimeoutError",
        "HeadTooLargeError",
        "NotHTTPError",
        "REDIRECT_STATUSES",
        "RedirectError",
        "ResponseHead",
        "Target",
        "TargetError",
        "Timing",
        "build_request",
        "head",
        "parse_header",
        "parse_proxy",
        "parse_target",
        "proxy_for",
    ],
    "netproto.lookup": [
        "Answer",
        "CNAMELoopError",
        "DEFAULT_DNS_PORT",
        "DEFAULT_TIMEOUT",
        "HostsFile",
        "IP_NETWORKS",
        "InvalidLookupError",
        "Lookup",
        "LookupRefusedError",
        "LookupTimeoutError",
        "MAX_CNAME_HOPS",
        "MX",
        "NS",
        "NameLookupError",
        "NameNotFoundError",
        "PORT_NETWORKS",
        "RECORD_TYPES",
        "SOA",
        "SRV",
        "ServerFailureError",
        "ServiceNotFoundError",
        "check_host_name",
        "format_server",
        "lookup_addr",
        "lookup_cname",
        "lookup_host",
        "lookup_mx",
        "lookup_ns",
        "lookup_port",
        "lookup_service",
        "lookup_soa",
        "lookup_srv",
        "lookup_txt",
        "order_addresses",
        "parse_resolv_conf",
        "parse_server",
        "pick_address",
        "record_text",
        "resolve_ip",
        "service_name",
        "service_port",
    ],
    "netproto.traceroute": [
        "BASE_PORT",
        "DATAGRAM",
        "Hop",
        "ICMP",
        "IP_HEADER",
        "METHODS",
        "PARIS",
        "Reply",
        "Responder",
        "Trace",
        "TraceError",
        "TracePermissionError",
        "TraceSummary",
        "UDP",
        "UDP_PORT",
        "UdpQuote",
        "interpret",
        "trace",
        "traceroute",
        "udp_quote",
    ],
    "netproto.cli": [
        "CommandError",
        "EXIT_FAILED",
        "EXIT_INTERRUPTED",
        "EXIT_OK",
        "EXIT_USAGE",
        "add_command",
        "build_parser",
        "main",
        "run_command",
    ],
}


class ExportsTests(SynchronousTestCase):
    """Every public module exports exactly its pinned names, each documented."""

    def test_all_pinned(self) -> None:
        """``__all__`` of each public module is the pinned list."""
        for name, expected in PUBLIC.items():
            module = importlib.import_module(name)
            self.assertEqual(sorted(module.__all__), sorted(expected), name)

    def test_names_import(self) -> None:
        """Each pinned name is an attribute of its module (``from M import N`` works)."""
        for name, expected in PUBLIC.items():
            module = importlib.import_module(name)
            for attribute in expected:
                self.assertTrue(hasattr(module, attribute), f"{name}.{attribute}")

    def test_documented(self) -> None:
        """Each public class and function has a docstring, and so has its module."""
        for name, expected in PUBLIC.items():
            module = importlib.import_module(name)
            self.assertTrue(module.__doc__, name)
            for attribute in expected:
                value = getattr(module, attribute)
                if isinstance(value, type) or callable(value):
                    self.assertTrue(getattr(value, "__doc__", None), f"{name}.{attribute}")
