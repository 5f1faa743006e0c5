"""
DNS records other than addresses, as Go's ``net`` package returns them:
:class:`MX`, :class:`SRV`, :class:`NS`, and :class:`SOA` (which Go has no
lookup for); the order Go gives them (:func:`order_mx`, :func:`order_srv`)
and their ``dig +short`` text (:func:`record_text`). Pure code: no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "MX",
    "NS",
    "RECORD_TYPES",
    "SOA",
    "SRV",
    "order_mx",
    "order_srv",
    "record_text",
    "srv_name",
    "txt_text",
]

RECORD_TYPES = ("MX", "TXT", "SRV", "NS", "SOA")
"""The record types :class:`~netproto.lookup.Lookup` asks for by name, besides addresses."""


@dataclass(frozen=True)
class MX:
    """A mail exchanger (Go's ``net.MX``): *host* fully qualified, and its preference."""

    host: str
    pref: int


@dataclass(frozen=True)
class SRV:
    """A service location (Go's ``net.SRV``, RFC 2782): *target* fully qualified."""

    target: str
    port: int
    priority: int
    weight: int


@dataclass(frozen=True)
class NS:
    """A name server of a zone (Go's ``net.NS``): *host* fully qualified."""

    host: str


@dataclass(frozen=True)
class SOA:
    """The start of authority of a zone (RFC 1035 §3.3.13); names fully qualified."""

    mname: str
    """The primary name server."""
    rname: str
    """The mailbox of the person responsible, written as a name (``hostmaster.example.``)."""
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


def order_mx(
    records: Iterable[MX], shuffle: Callable[[list[MX]], None] = random.shuffle
) -> list[MX]:
    """
    *records* by preference, lowest first, records of equal preference in a
    random order (as Go's ``LookupMX`` sorts them, RFC 5321 §5.1).
    """
    listed = list(records)
    shuffle(listed)
    return sorted(listed, key=lambda mx: mx.pref)


def order_srv(records: Iterable[SRV], rng: random.Random | None = None) -> list[SRV]:
    """
    *records* by priority, lowest first, and within one priority in the
    weighted random order of RFC 2782 (as Go's ``LookupSRV``): a record of
    weight 0 comes last unless chosen by chance among other zeros.
    """
    pick = rng or random.Random()
    result: list[SRV] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        group.sort(key=lambda r: r.weight)  # zeros first, as RFC 2782 asks
        while group:
            total = sum(r.weight for r in group)
            if total == 0:
                pick.shuffle(group)
                result.extend(group)
                break
            threshold = pick.randint(0, total)
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= threshold:
                    result.append(group.pop(index))
                    break
    return result


def srv_name(service: str, proto: str, name: str) -> str:
    """
    The name an SRV lookup asks for: ``_service._proto.name`` (Go's
    ``LookupSRV``), or *name* itself when *service* and *proto* are empty.
    """
    if not service and not proto:
        return name
    return f"_{service}._{proto}.{name}"


def txt_text(strings: Iterable[bytes]) -> str:
    """
    One TXT record as Go's ``LookupTXT`` gives it: its character strings
    joined without separator, decoded as UTF-8 (invalid bytes as ``\\xNN``).
    """
    return b"".join(strings).decode("utf-8", "backslashreplace")


def _quoted(data: bytes) -> str:
    """A character string as ``dig`` writes it: quoted, ``"`` and ``\\`` escaped, ``\\DDD``."""
    out = []
    for byte in data:
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def record_text(record: MX | SRV | NS | SOA | tuple[bytes, ...]) -> str:
    """
    The line ``dig +short`` prints for *record* (a TXT record is the tuple of
    its character strings): ``10 mail.example.``, ``10 5 5060 sip.example.``,
    ``ns1.example.``, ``ns1.example. hostmaster.example. 1 3600 600 86400 60``,
    ``"v=spf1" "-all"``.
    """
    if isinstance(record, MX):
        return f"{record.pref} {record.host}"
    if isinstance(record, SRV):
        return f"{record.priority} {record.weight} {record.port} {record.target}"
    if isinstance(record, NS):
        return record.host
    if isinstance(record, SOA):
        return (
            f"{record.mname} {record.rname} {record.serial} {record.refresh} "
            f"{record.retry} {record.expire} {record.minimum}"
        )
    return " ".join(_quoted(part) for part in record)
