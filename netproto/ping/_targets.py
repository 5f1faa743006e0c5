"""
Ping targets: address literals and CIDR ranges expanded, checked, each once,
in the form sockets report sources in.
"""

from __future__ import annotations

import bisect
import ipaddress
import socket
from collections.abc import Iterable

from netproto.lookup import InvalidLookupError, check_host_name
from netproto.util import AddressError, canonical, parse_ip

__all__ = [
    "MAX_TARGETS",
    "TargetList",
    "TargetSpace",
    "address_text",
    "expand_targets",
    "key_packed",
    "key_text",
    "packed_key",
    "read_exclude_file",
]

MAX_TARGETS = 1 << 20
"""The largest sweep :func:`expand_targets` builds (a /12 of IPv4)."""


class TargetList(list[str]):
    """
    Addresses as :func:`expand_targets` returns them: checked, each once, in
    the form sockets report sources in. :class:`Sweep` takes them as they are.
    """


def expand_targets(
    texts: Iterable[str], version: int | None = None, limit: int = MAX_TARGETS
) -> TargetList:
    """
    The addresses named by *texts*: address literals and CIDR ranges
    (``127.0.0.0/24``: its hosts, without the network and broadcast
    addresses of IPv4 ranges larger than /31), in order, each once. With
    *version*, every target must be of that IP version.

    :raises AddressError: a text is neither, is of the wrong version, or
        the total passes *limit* addresses.
    """
    everything: list[str] = []
    for text in texts:
        text_version, addresses = _expand(text, limit)
        if version is not None and text_version != version:
            raise AddressError(f"{text} is not an IPv{version} target")
        everything.extend(addresses)
        if len(everything) > limit:
            everything = list(dict.fromkeys(everything))
            if len(everything) > limit:
                raise AddressError(f"more than {limit} targets")
    return TargetList(dict.fromkeys(everything))


_OCTETS = [str(i) for i in range(256)]


def _expand(text: str, limit: int) -> tuple[int, Iterable[str]]:
    if "/" not in text:
        try:
            address = parse_ip(text)
        except AddressError:
            if _is_name(text):
                raise AddressError(
                    f"{text}: give an address, not a name (netproto.lookup resolves names)"
                ) from None
            raise
        return address.version, [_socket_form(canonical(address))]
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise AddressError(f"{text}: not a valid CIDR range ({e})") from None
    if net.num_addresses > limit + 2:
        raise AddressError(f"{text} has {net.num_addresses} addresses, more than {limit}")
    if net.version == 6:
        return 6, [_socket_form(str(a)) for a in net.hosts()]
    first = int(net.network_address)
    last = int(net.broadcast_address)
    if net.prefixlen < 31:
        first, last = first + 1, last - 1
    # Whole runs of the last octet at a time: a /20 in a fraction of a millisecond.
    out: list[str] = []
    for high in range(first >> 8, (last >> 8) + 1):
        prefix = f"{high >> 16}.{high >> 8 & 255}.{high & 255}."
        low, up = max(first, high << 8) & 255, min(last, high << 8 | 255) & 255
        out += [prefix + octet for octet in _OCTETS[low : up + 1]]
    return 4, out


def _is_name(text: str) -> bool:
    """Whether *text*, not an address, is a host name (which a ping target may not be)."""
    try:
        check_host_name(text)
    except InvalidLookupError:
        return False
    return True


def _socket_form(text: str) -> str:
    """An address literal as :func:`socket.inet_ntop` writes it (sockets report sources so)."""
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, text))
    except (OSError, ValueError):
        return canonical(parse_ip(text))


def address_text(text: str) -> str:
    """
    An address literal in the form sockets report sources in, or
    :class:`~netproto.util.AddressError` (zones such as ``%eth0`` included:
    link-local targets are not supported).
    """
    if "/" in text:
        raise AddressError(f"{text}: one address, not a range")
    return expand_targets([text])[0]


_V6 = 1 << 129
"""Added to an IPv6 address's integer to key it apart from every IPv4 address."""


def _key(version: int, value: int) -> int:
    return value + _V6 if version == 6 else value


def _ranges_of(text: str, hosts: bool = True) -> tuple[int, int, int]:
    """
    (version, first, last) of one target text: an address, a CIDR range (its
    hosts, or with *hosts* false every address), or ``A-B``.
    """
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError as e:
            raise AddressError(f"{text}: not a valid CIDR range ({e})") from None
        first, last = int(net.network_address), int(net.broadcast_address)
        if not hosts:
            pass
        elif net.version == 4 and net.prefixlen < 31:
            first, last = first + 1, last - 1
        elif net.version == 6 and net.prefixlen < 127:
            # As ipaddress's hosts(): not the Subnet-Router anycast address.
            first += 1
        return net.version, first, last
    if "-" in text:
        low, _, high = text.partition("-")
        try:
            a, b = parse_ip(low.strip()), parse_ip(high.strip())
        except AddressError:
            raise AddressError(f"{text}: a range is two addresses, FIRST-LAST") from None
        if a.version != b.version:
            raise AddressError(f"{text}: both ends of a range must be of one IP version")
        if int(b) < int(a):
            raise AddressError(f"{text}: the range ends before it starts")
        return a.version, int(a), int(b)
    try:
        # A long list's common case, a plain IPv4 literal: inet_pton reads it
        # as strictly as parse_ip does (four decimal parts, no leading zeros).
        value = int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, TypeError, ValueError):
        pass
    else:
        return 4, value, value
    try:
        address = parse_ip(text)
    except AddressError:
        if _is_name(text):
            raise AddressError(
                f"{text}: give an address, not a name (netproto.lookup resolves names)"
            ) from None
        raise
    value = int(ipaddress.ip_address(canonical(address)))
    return address.version, value, value


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Key spans (first, last), sorted, overlapping and adjacent ones joined."""
    out: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if out and first <= out[-1][1] + 1:
            if last > out[-1][1]:
                out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


def _subtract(spans: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merged *spans* without merged *holes*."""
    out: list[tuple[int, int]] = []
    at = 0
    for first, last in spans:
        while at < len(holes) and holes[at][1] < first:
            at += 1
        scan = at
        while first <= last:
            if scan >= len(holes) or holes[scan][0] > last:
                out.append((first, last))
                break
            hole_first, hole_last = holes[scan]
            if hole_first > first:
                out.append((first, hole_first - 1))
            first = max(first, hole_last + 1)
            scan += 1
    return out


def read_exclude_file(path: str) -> list[str]:
    """
    The ranges of an exclude file: one address, CIDR range or ``A-B`` range
    a line; ``#`` starts a comment; blank lines are skipped.

    :raises AddressError: the file cannot be read (naming it).
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise AddressError(f"{path}: {getattr(e, 'strerror', None) or e}") from None
    out = []
    for line in lines:
        text = line.partition("#")[0].strip()
        if text:
            out.append(text)
    return out


class TargetSpace:
    """
    The targets of a sweep as ranges, never expanded: IPv4 and IPv6 CIDR
    ranges (without the network and broadcast addresses of IPv4 ranges
    larger than /31, nor the Subnet-Router anycast address of IPv6 ones, as
    :meth:`ipaddress.IPv4Network.hosts` does), ``FIRST-LAST`` ranges and
    single addresses, each address once whatever the overlaps, minus the
    *exclude* ranges. Target *i* (``0 <= i < len(space)``) is computed, not
    looked up in a list; :meth:`index_of` maps an address back.

    :raises AddressError: a text is none of these, or not of *version*.
    """

    def __init__(
        self, texts: Iterable[str], version: int | None = None, exclude: Iterable[str] = ()
    ) -> None:
        spans = []
        self.versions: set[int] = set()
        """The IP versions present."""
        for text in texts:
            text_version, first, last = _ranges_of(text)
            if version is not None and text_version != version:
                raise AddressError(f"{text} is not an IPv{version} target")
            spans.append((_key(text_version, first), _key(text_version, last)))
        holes = []
        for text in exclude:
            text_version, first, last = _ranges_of(text, hosts=False)
            holes.append((_key(text_version, first), _key(text_version, last)))
        kept = _subtract(_merged(spans), _merged(holes))
        self.spans = kept
        """The ranges kept, as (first key, last key), sorted: a fingerprint of the space."""
        self._firsts = [first for first, _ in kept]
        self._lasts = [last for _, last in kept]
        self._offsets = []
        total = 0
        for first, last in kept:
            self._offsets.append(total)
            total += last - first + 1
            self.versions.add(6 if first >= _V6 else 4)
        self._size = total

    def __len__(self) -> int:
        return self._size

    def key(self, index: int) -> int:
        """The key of target *index*: its address's integer (plus a tag for IPv6)."""
        if len(self._firsts) == 1:
            return self._firsts[0] + index
        at = bisect.bisect_right(self._offsets, index) - 1
        return self._firsts[at] + index - self._offsets[at]

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < self._size:
            raise IndexError(index)
        return key_text(self.key(index))

    def index_of(self, key: int) -> int | None:
        """The index of the target with *key*, None if it is not a target."""
        at = bisect.bisect_right(self._firsts, key) - 1
        if at < 0 or key > self._lasts[at]:
            return None
        return self._offsets[at] + key - self._firsts[at]


def key_text(key: int) -> str:
    """The address of a :class:`TargetSpace` key, as :func:`socket.inet_ntop` writes it."""
    if key >= _V6:
        return socket.inet_ntop(socket.AF_INET6, (key - _V6).to_bytes(16, "big"))
    return socket.inet_ntop(socket.AF_INET, key.to_bytes(4, "big"))


def packed_key(packed: bytes) -> int:
    """The :class:`TargetSpace` key of an address in its 4 or 16 bytes."""
    value = int.from_bytes(packed, "big")
    return value + _V6 if len(packed) == 16 else value


def key_packed(key: int) -> bytes:
    """The 4 or 16 bytes of the address of a :class:`TargetSpace` key."""
    return (key - _V6).to_bytes(16, "big") if key >= _V6 else key.to_bytes(4, "big")
