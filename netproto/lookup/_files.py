"""
The files a :class:`~netproto.lookup.Lookup` reads: ``hosts(5)`` and the
``nameserver`` lines of ``resolv.conf(5)``. Pure parsing; the one read is in
:meth:`HostsFile.read` and :func:`read_text`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netproto.lookup._errors import InvalidLookupError
from netproto.lookup._names import DEFAULT_DNS_PORT, absolute, name_key
from netproto.util import Address, AddressError, canonical, parse_ip

__all__ = ["HostsFile", "parse_resolv_conf", "read_text"]


def parse_resolv_conf(text: str) -> list[tuple[str, int]]:
    """
    The name servers of a ``resolv.conf(5)`` text, in order, as
    ``(address, 53)``; lines that are not a valid ``nameserver ADDR`` are
    skipped. With none, the C library's default: ``127.0.0.1``.
    """
    servers: list[tuple[str, int]] = []
    for line in text.split("\n"):
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                servers.append((canonical(parse_ip(fields[1])), DEFAULT_DNS_PORT))
            except AddressError:
                continue
    return servers or [("127.0.0.1", DEFAULT_DNS_PORT)]


@dataclass
class HostsFile:
    """
    A parsed ``hosts(5)`` file: for each name, its addresses in file order and
    its canonical name.

    Each line is an address followed by names; ``#`` starts a comment. Lines
    whose address does not parse are skipped (as the C library does); an IPv6
    address may carry a zone (``fe80::1%lo``), which is kept. Names compare
    without regard to case or a trailing dot. A name listed on several lines
    has the addresses of all of them, duplicates dropped. Its canonical name
    is the first name of the first line that lists it (``hosts(5)`` calls it
    the canonical host name; the C library and Go agree).
    """

    path: str | None = None
    """Where the file was read from, if from a file."""

    _addresses: dict[str, list[Address]] = field(default_factory=dict, init=False, repr=False)
    _canonical: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _names: dict[Address, list[str]] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def parse(cls, text: str, path: str | None = None) -> HostsFile:
        """Parse the text of a hosts file."""
        hosts = cls(path)
        for line in text.split("\n"):
            fields = line.split("#", 1)[0].split()
            if len(fields) < 2:
                continue
            try:
                address = parse_ip(fields[0], allow_scope=True)
            except AddressError:
                continue
            listed = hosts._names.setdefault(address, [])
            for name in fields[1:]:
                key = name_key(name)
                if not key:
                    continue
                if absolute(name) not in listed:
                    listed.append(absolute(name))
                known = hosts._addresses.setdefault(key, [])
                if address not in known:
                    known.append(address)
                hosts._canonical.setdefault(key, fields[1])
        return hosts

    @classmethod
    def read(cls, path: str) -> HostsFile:
        """
        Read and parse the hosts file at *path* (a local file read).

        :raises InvalidLookupError: the file cannot be read.
        """
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return cls.parse(f.read(), path)
        except OSError as e:
            raise InvalidLookupError(f"cannot read hosts file {path}: {e.strerror or e}") from None

    def addresses(self, name: str) -> tuple[Address, ...]:
        """The addresses of *name*, in file order (empty if not listed)."""
        return tuple(self._addresses.get(name_key(name), ()))

    def canonical_name(self, name: str) -> str | None:
        """The canonical name of *name*, fully qualified, or ``None`` if not listed."""
        found = self._canonical.get(name_key(name))
        return absolute(found) if found is not None else None

    def names(self, address: Address) -> tuple[str, ...]:
        """
        The names listed for *address*, fully qualified, in file order (the
        first is the canonical one); empty if the address is not listed.
        """
        return tuple(self._names.get(address, ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name_key(name) in self._addresses


def read_text(path: str) -> str:
    """The text of *path*, empty if it does not exist.

    :raises InvalidLookupError: it exists but cannot be read.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise InvalidLookupError(f"cannot read {path}: {e.strerror or e}") from None
