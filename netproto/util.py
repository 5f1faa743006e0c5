"""
Addresses, masks and the Internet checksum.

The semantics follow Go's ``net`` package (``net.ParseIP``,
``net.CIDRMask``, ``net.IPv4Mask``, ``IP.DefaultMask``, ``IPMask.Size`` and
``IP.Mask``), expressed on top of the standard library's :mod:`ipaddress`:

- :func:`parse_ip` parses one address strictly and :func:`canonical` gives
  its RFC 5952 text, with IPv4-mapped addresses in the mixed form
  ``::ffff:127.1.2.3``.
- :class:`Mask` is a network mask of 32 or 128 bits that need not be
  canonical (``255.0.255.0`` is a mask whose :meth:`Mask.size` is
  ``(0, 0)``, as in Go).
- :func:`network` and :func:`host` split an address by a mask.
- :func:`checksum` is the RFC 1071 Internet checksum.
- :func:`split_host_port`, :func:`format_host_port`, :func:`parse_port` and
  :func:`positive_seconds` are the one parser or formatter of each of those
  that every command and service uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address

__all__ = [
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
    "peer_prefix",
    "positive_seconds",
    "split_host_port",
    "unmap",
]

Address = IPv4Address | IPv6Address
"""An IPv4 or IPv6 address, as the standard library represents it."""

_WIDTHS = (32, 128)


class AddressError(ValueError):
    """
    A string is not a valid IP address; the message says why, in one line.
    """


class MaskError(ValueError):
    """
    A mask cannot be built, or cannot be applied; the message says why.
    """


def parse_ip(text: str, *, allow_scope: bool = False) -> Address:
    """
    Parse one IPv4 or IPv6 address strictly.

    Accepted: dotted-quad IPv4 with no leading zeros (``127.1.2.3``), and every
    RFC 4291 text form of IPv6, including an embedded dotted quad
    (``::ffff:127.1.2.3``). Refused, with :class:`AddressError`: empty text,
    surrounding white space, leading zeros (``127.001.2.3``), out-of-range
    parts, empty parts (``1.2..4``), too many groups
    (``a1:a2:a3:a4::b1:b2:b3:b4``), prefixes (``1.2.3.4/24``), and a zone
    (``fe80::1%eth0``) unless *allow_scope* is true.
    """
    if not isinstance(text, str):
        raise AddressError(f"expected text, got {type(text).__name__}")
    if not text:
        raise AddressError("empty address")
    if text != text.strip():
        raise AddressError("white space around the address")
    if "/" in text:
        raise AddressError("a prefix length is not part of an address")
    if "%" in text and not allow_scope:
        raise AddressError("a zone (%scope) is not allowed here")
    version = 6 if ":" in text else 4
    if version == 4 and not all(c in "0123456789." for c in text):
        raise AddressError("not an IPv4 or IPv6 address")
    try:
        if version == 4:
            return IPv4Address(text)
        address = IPv6Address(text)
    except ValueError as e:
        raise AddressError(_reason(e, text, version)) from None
    if "%" in text and not address.scope_id:
        raise AddressError("empty zone after %")
    return address


def _reason(error: ValueError, text: str, version: int) -> str:
    """
    Turn an :mod:`ipaddress` error into a one-line reason without repeating
    the whole input.
    """
    message = str(error).splitlines()[0] if str(error) else "malformed"
    message = message.replace(f" in {text!r}", "").rstrip(".")
    if message.startswith(f"{text!r} does not appear"):
        message = "malformed"
    return f"not a valid IPv{version} address: {message[:1].lower()}{message[1:]}"


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """
    Split the ``HOST:PORT`` form: ``127.0.0.1:13``, ``[::1]:13``,
    ``localhost`` or ``[::1]`` (then the port is *default_port*), or a bare
    IPv6 literal ``::1`` (which cannot carry a port).

    The host is returned as written (a name or an address: the caller decides
    what it accepts); brackets are for IPv6 literals only.

    A bare IPv6 literal whose last group could be a port, ``::1:1313``, is
    refused: it is a valid address (``::1:1313``), but far more often a
    mistyped ``[::1]:1313``, and taking it as an address would send traffic
    to a host the user never meant. The error asks "did you mean
    [::1]:1313?"; ``[::1:1313]`` names the address itself.

    :raises AddressError: with the reason, for an empty host or port, a
        missing ``]``, text after ``]``, an ambiguous bare IPv6 literal, or a
        bad port (see :func:`parse_port`).
    """
    port_text: str | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddressError("missing ']' after an IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise AddressError("expected ':PORT' after ']'")
            port_text = rest[1:]
        if host and ":" not in host:
            raise AddressError("brackets are for IPv6 addresses only")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text
        _check_unbracketed(text)
    if not host:
        raise AddressError("empty host")
    if port_text is None:
        return host, default_port
    if not port_text:
        raise AddressError("empty port")
    return host, parse_port(port_text)


def _check_unbracketed(text: str) -> None:
    """
    Refuse a bare IPv6 literal that reads as an address and a port: one whose
    last group is decimal digits (up to 5) after a valid address, as in
    ``::1:1313`` or ``fe80::1%lo:80``. ``::1`` (``::`` then ``1``) and
    full eight-group forms are not ambiguous and pass.

    :raises AddressError: "... did you mean [::1]:1313? ...".
    """
    address, _, last = text.rpartition(":")
    if not (last.isascii() and last.isdigit() and len(last) <= 5) or address.endswith(":"):
        return
    try:
        parse_ip(address, allow_scope=True)
    except AddressError:
        return
    itself = "" if "%" in text else f" (the address {text} itself is written [{text}])"
    raise AddressError(
        f"an IPv6 address with a port goes in brackets: did you mean [{address}]:{last}?{itself}"
    )


def parse_port(text: str, *, allow_zero: bool = False) -> int:
    """
    A port number from 1 (0 with *allow_zero*: a server's "any free port")
    to 65535, written in ASCII decimal digits.

    :raises AddressError: for anything else.
    """
    low = 0 if allow_zero else 1
    if not (text.isascii() and text.isdigit()) or len(text) > 5:
        raise AddressError(f"port {text!r} is not a number from {low} to 65535")
    port = int(text)
    if not low <= port <= 65535:
        raise AddressError(f"port {port} is out of range ({low} to 65535)")
    return port


def format_host_port(host: str, port: int) -> str:
    """
    ``host:port`` as :func:`split_host_port` reads it back: ``127.0.0.1:7``,
    ``localhost:7``, and an IPv6 literal in brackets, ``[::1]:7``.
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def positive_seconds(
    value: float | str, *, allow_zero: bool = False, maximum: float | None = None
) -> float:
    """
    *value* (a number, or its decimal text) as a duration in seconds: finite
    and more than 0 (0 too with *allow_zero*), at most *maximum* if given.

    :raises ValueError: with a one-line reason.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a number of seconds: {value!r}")
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"not a number of seconds: {value!r}") from None
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        raise ValueError(f"not a number of seconds: {value!r}")
    low = "0 or more" if allow_zero else "more than 0"
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"must be {low} seconds, not {value}")
    if maximum is not None and number > maximum:
        raise ValueError(f"must be at most {maximum:g} seconds, not {value}")
    return number


def ipv4_mapped(address: Address) -> IPv4Address | None:
    """
    The IPv4 address inside an IPv4-mapped IPv6 address (``::ffff:0:0/96``),
    or ``None`` for any other address.
    """
    if isinstance(address, IPv6Address):
        return address.ipv4_mapped
    return None


def unmap(address: Address) -> Address:
    """
    The IPv4 address for an IPv4-mapped IPv6 address, else the address itself.

    Use it before any per-peer rule: a dual-stack listener sees IPv4 peers as
    ``::ffff:a.b.c.d``.
    """
    return ipv4_mapped(address) or address


@lru_cache(maxsize=16384)
def peer_prefix(host: str, v4_prefix: int = 32, v6_prefix: int = 128) -> str:
    """
    The identity of a peer at *host* (an address's text) for per-peer limits:
    its network of *v4_prefix* bits (IPv4) or *v6_prefix* bits (IPv6) as
    ``"2001:db8::/64"``, or, with the full length, the address's canonical
    text. IPv4-mapped addresses count as IPv4, a zone (``%eth0``) is
    dropped, and text that is no address is its own identity. The last
    16,384 answers are cached: per-datagram callers pay a dict lookup.
    """
    text = host.partition("%")[0]
    try:
        address = unmap(ip_address(text))
    except ValueError:
        return host
    bits, prefix = (32, v4_prefix) if address.version == 4 else (128, v6_prefix)
    if prefix >= bits:
        return str(address)
    drop = bits - max(prefix, 0)
    return f"{type(address)(int(address) >> drop << drop)}/{max(prefix, 0)}"


def canonical(address: Address) -> str:
    """
    The RFC 5952 text of an address: lower case, no leading zeros, the
    longest run of two or more zero groups as ``::`` (the first on a tie), and
    an IPv4-mapped address in the mixed form ``::ffff:127.1.2.3`` (§5).
    A zone, if any, is kept after ``%``.
    """
    mapped = ipv4_mapped(address)
    if mapped is None:
        return str(address)
    text = f"::ffff:{mapped}"
    scope = getattr(address, "scope_id", None)
    return f"{text}%{scope}" if scope else text


@dataclass(frozen=True)
class Mask:
    """
    A network mask of 32 (IPv4) or 128 (IPv6) bits.

    The bits need not be canonical: any pattern is a mask, as in Go's
    ``IPMask``; :meth:`size` tells whether it is a run of ones then zeros.
    """

    value: int
    """The mask as an unsigned integer."""

    bits: int
    """The mask's width: 32 or 128."""

    def __post_init__(self) -> None:
        if self.bits not in _WIDTHS:
            raise MaskError(f"a mask has 32 or 128 bits, not {self.bits}")
        if not 0 <= self.value < 1 << self.bits:
            raise MaskError(f"mask value out of range for {self.bits} bits")

    @classmethod
    def cidr(cls, ones: int, bits: int) -> Mask:
        """
        The mask of *ones* leading one bits out of *bits* (Go's ``CIDRMask``).

        :raises MaskError: *bits* is not 32 or 128, or *ones* is negative or
            greater than *bits*.
        """
        if bits not in _WIDTHS:
            raise MaskError(f"mask width must be 32 or 128 bits, not {bits}")
        if not 0 <= ones <= bits:
            raise MaskError(f"leading ones must be between 0 and {bits}, not {ones}")
        return cls(((1 << bits) - 1) ^ ((1 << (bits - ones)) - 1), bits)

    @classmethod
    def ipv4(cls, a: int, b: int, c: int, d: int) -> Mask:
        """
        The IPv4 mask with these four octets (Go's ``IPv4Mask``):
        ``Mask.ipv4(255, 255, 254, 0)``.
        """
        octets = (a, b, c, d)
        if not all(0 <= o <= 255 for o in octets):
            raise MaskError(f"mask octets must be 0 to 255: {octets}")
        return cls(int.from_bytes(bytes(octets), "big"), 32)

    @classmethod
    def from_address(cls, address: Address) -> Mask:
        """The mask with the bits of an address (``255.255.254.0``)."""
        return cls(int(address), address.max_prefixlen)

    def size(self) -> tuple[int, int]:
        """
        ``(ones, bits)`` for a canonical mask (a run of ones, then zeros), and
        ``(0, 0)`` for any other (Go's ``IPMask.Size``).
        """
        inverted = self.value ^ ((1 << self.bits) - 1)
        if inverted & (inverted + 1):
            return (0, 0)
        return (self.bits - inverted.bit_length(), self.bits)

    def hex(self) -> str:
        """The mask's bytes in lower-case hex: ``ffffff00`` (Go's ``IPMask.String``)."""
        return f"{self.value:0{self.bits // 4}x}"

    def as_address(self) -> Address:
        """The mask written as an address: ``255.255.255.0``, ``ffff:ffff::``."""
        return IPv4Address(self.value) if self.bits == 32 else IPv6Address(self.value)

    def __str__(self) -> str:
        return self.hex()


def default_mask(address: Address) -> Mask:
    """
    The classful default mask of an IPv4 address (Go's ``DefaultMask``):
    class A (``0.0.0.0``-``127.255.255.255``) ``/8``, class B (up to
    ``191.255.255.255``) ``/16``, class C (up to ``223.255.255.255``) ``/24``.
    An IPv4-mapped IPv6 address is taken as its IPv4 address, as Go does.

    :raises MaskError: for class D (multicast, ``224/4``) and class E
        (reserved, ``240/4``), which have no default mask (Go answers with
        the class C mask; that hides a mistake), and for IPv6, which has no
        address classes.
    """
    v4 = unmap(address)
    if not isinstance(v4, IPv4Address):
        raise MaskError(f"{canonical(address)} is IPv6: IPv6 has no address classes")
    first = v4.packed[0]
    if first < 0x80:
        return Mask.cidr(8, 32)
    if first < 0xC0:
        return Mask.cidr(16, 32)
    if first < 0xE0:
        return Mask.cidr(24, 32)
    kind = "D (multicast)" if first < 0xF0 else "E (reserved)"
    raise MaskError(f"{v4} is a class {kind} address: it has no default mask")


def _operand(address: Address, mask: Mask) -> Address:
    """
    The address a mask applies to: itself when the widths agree, the IPv4
    form of an IPv4-mapped address under a 32-bit mask.
    """
    if address.max_prefixlen == mask.bits:
        return address
    mapped = ipv4_mapped(address)
    if mapped is not None and mask.bits == 32:
        return mapped
    raise MaskError(
        f"a {mask.bits}-bit mask does not apply to IPv{address.version} "
        f"address {canonical(address)}"
    )


def network(address: Address, mask: Mask) -> Address:
    """
    The network part of *address* under *mask* (Go's ``IP.Mask``):
    ``192.168.1.3`` with ``/16`` gives ``192.168.0.0``.

    An IPv4-mapped IPv6 address under a 32-bit mask answers in IPv4, as Go
    does; any other mix of widths raises :class:`MaskError`.
    """
    operand = _operand(address, mask)
    return type(operand)(int(operand) & mask.value)


def host(address: Address, mask: Mask) -> Address:
    """
    The host part of *address* under *mask*, the complement of
    :func:`network`: ``192.168.1.3`` with ``/16`` gives ``0.0.1.3``.
    """
    operand = _operand(address, mask)
    return type(operand)(int(operand) & ~mask.value & ((1 << mask.bits) - 1))


def checksum(data: bytes | bytearray | memoryview) -> int:
    """
    The RFC 1071 Internet checksum of *data*: the one's complement of the one's
    complement sum of its 16-bit big-endian words, an odd last byte padded
    with a zero.

    A buffer holding a correct checksum sums to 0. The echo request
    ``08 00 00 00 00 0d 00 25`` (identifier 13, sequence 37) gives ``0xf7cd``.

    It reads the whole buffer as one big integer: because 2**16 is 1 modulo
    0xffff, that integer modulo 0xffff is the folded one's complement sum,
    except that a non-zero sum congruent to 0 is 0xffff. The work is done in
    C by ``int.from_bytes`` and one division by a small number. (Folding the
    big integer in halves first was measured: no faster on CPython 3.11.)
    """
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    if not value:
        return 0xFFFF
    return 0xFFFF - (value % 0xFFFF or 0xFFFF)
