"""
Name and service lookups, asynchronous, never blocking the reactor: the
Go's ResolveIPAddr, LookupHost, LookupPort, LookupCNAME, LookupAddr,
LookupMX, LookupTXT, LookupSRV and LookupNS, on Twisted (and SOA records,
and the service name on a port).

A :class:`Lookup` answers from one of two sources, chosen when it is made:

- **the system** (no ``servers``, no ``hosts``): addresses come from
  ``getaddrinfo`` in the reactor's thread pool (what ``reactor.nameResolver``
  does, but keeping its errors: "no such host" is not "the DNS servers did
  not answer"), so ``nsswitch.conf``, the system hosts file, ``resolv.conf``
  and its search list all apply; canonical names come from ``getaddrinfo``
  with ``AI_CANONNAME``. An :class:`~twisted.internet.interfaces.IHostnameResolver`
  given as ``name_resolver`` is asked for addresses instead.
- **a hosts file and DNS servers** (``servers``, ``hosts`` or
  ``resolv_conf`` given): a name listed in the hosts file is answered from the
  file alone; any other name is asked of the DNS servers through
  :mod:`twisted.names.client` (the given ``servers``, or else the
  ``nameserver`` lines of ``resolv_conf``, by default ``/etc/resolv.conf``),
  as an absolute name (no search list). ``A`` and ``AAAA`` are asked in
  parallel; CNAME chains are followed, within an answer and by asking again
  for the chain's last name, for at most :data:`MAX_CNAME_HOPS` records, and
  loops are detected.

In both, an IP address literal is answered without any query, and an IPv6
zone (``fe80::1%lo``) is kept, as Go's ``IPAddr`` keeps it. Every answer lists
IPv4 addresses first, then IPv6, each family in the order its source gave,
without duplicates (:func:`order_addresses`); :meth:`Lookup.resolve_ip` picks
one address from that list as Go's ``ResolveIPAddr`` does
(:func:`pick_address`).

Failures raise a subclass of :class:`NameLookupError` with a one-line message:
:class:`InvalidLookupError` (bad input; nothing was sent), :class:`NameNotFoundError`,
:class:`ServiceNotFoundError`, :class:`LookupTimeoutError`, :class:`LookupRefusedError`,
:class:`ServerFailureError`, :class:`CNAMELoopError`.

Records other than addresses (:meth:`Lookup.lookup_mx`, ``lookup_txt``,
``lookup_srv``, ``lookup_ns``, ``lookup_soa``) always come from DNS servers:
those given, or else the ``nameserver`` lines of ``resolv.conf`` (the system
has no call for them); a hosts file never answers them. A CNAME chain inside
the answer is followed. :func:`record_text` writes a record as ``dig +short``
does.
"""

from netproto.lookup._calls import (
    lookup_addr,
    lookup_cname,
    lookup_host,
    lookup_mx,
    lookup_ns,
    lookup_port,
    lookup_service,
    lookup_soa,
    lookup_srv,
    lookup_txt,
    resolve_ip,
)
from netproto.lookup._errors import (
    CNAMELoopError,
    InvalidLookupError,
    LookupRefusedError,
    LookupTimeoutError,
    NameLookupError,
    NameNotFoundError,
    ServerFailureError,
    ServiceNotFoundError,
)
from netproto.lookup._files import HostsFile, parse_resolv_conf
from netproto.lookup._names import (
    DEFAULT_DNS_PORT,
    DEFAULT_TIMEOUT,
    IP_NETWORKS,
    MAX_CNAME_HOPS,
    PORT_NETWORKS,
    check_host_name,
    format_server,
    order_addresses,
    parse_server,
    pick_address,
    service_name,
    service_port,
)
from netproto.lookup._records import MX, NS, RECORD_TYPES, SOA, SRV, record_text
from netproto.lookup._resolver import Answer, Lookup

__all__ = [
    "DEFAULT_DNS_PORT",
    "DEFAULT_TIMEOUT",
    "IP_NETWORKS",
    "MAX_CNAME_HOPS",
    "MX",
    "NS",
    "PORT_NETWORKS",
    "RECORD_TYPES",
    "SOA",
    "SRV",
    "Answer",
    "CNAMELoopError",
    "HostsFile",
    "InvalidLookupError",
    "Lookup",
    "LookupRefusedError",
    "LookupTimeoutError",
    "NameLookupError",
    "NameNotFoundError",
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
]
