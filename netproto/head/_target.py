"""
Where a HEAD request goes and what it says: target parsing (URLs and the
the ``host:port`` form), the ``Host`` field, and the request bytes.
Pure code, no transport.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, urljoin, urlsplit

from netproto import __version__
from netproto.util import AddressError, parse_ip, split_host_port

__all__ = [
    "Target",
    "TargetError",
    "build_request",
    "parse_header",
    "parse_target",
    "redirect_target",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?\Z")
# What may stay unescaped in a request target; everything else (space,
# control bytes, non-ASCII) is percent-encoded so it cannot split the request.
_SAFE_PATH = "/%:@!$&'()*+,;=-._~?[]"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")

USER_AGENT = f"netproto/{__version__}"
"""The ``User-Agent`` of every HTTP/1.1 request."""


class TargetError(ValueError):
    """A target is not an http(s) URL or a ``host:port``; the message says why."""


@dataclass(frozen=True)
class Target:
    """A parsed HEAD target."""

    scheme: str
    """``http`` or ``https``."""
    host: str
    """Host name (ASCII, IDNA-encoded) or IP address text, without brackets."""
    port: int
    path: str
    """The request target: absolute path and query, percent-encoded."""
    is_ipv6: bool = False
    is_ipv4: bool = False

    @property
    def authority(self) -> str:
        """``host[:port]`` as in a URL and the Host field: IPv6 bracketed, default port omitted."""
        host = self.host
        if self.is_ipv6:
            host = f"[{host.partition('%')[0]}]"
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """
        The normalised URL (used to report hops, resolve relative redirects and
        detect loops); an IPv6 zone is kept, written ``%25zone`` (RFC 6874).
        """
        authority = self.authority
        if self.is_ipv6 and "%" in self.host:
            address, _, zone = self.host.partition("%")
            authority = authority.replace(f"[{address}]", f"[{address}%25{zone}]", 1)
        return f"{self.scheme}://{authority}{self.path}"

    @property
    def connect_host(self) -> str:
        """The host to connect to (IPv6 zone kept for link-local addresses)."""
        return self.host


def parse_target(text: str) -> Target:
    """
    Parse ``http://...``, ``https://...``, or the ``host:port`` form
    (``127.0.0.1:8080``, ``[::1]:8080``, ``localhost``; no port means 80).
    """
    if not isinstance(text, str) or not text:
        raise TargetError("empty target")
    if text != text.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise TargetError("white space or control characters in the target")
    if "://" in text:
        scheme = text.partition("://")[0].lower()
        if scheme not in _DEFAULT_PORTS:
            raise TargetError(f"unsupported scheme {scheme!r} (http and https only)")
    else:
        authority, slash, path = text.partition("/")
        if authority.count(":") > 1 and not authority.startswith("["):
            # A bare IPv6 literal (``::1``, ``::1/path``): bracket it, unless it
            # reads as an address and a port (``::1:8080``), which
            # split_host_port refuses.
            try:
                split_host_port(authority, 80)
            except AddressError as e:
                raise TargetError(str(e)) from None
            try:
                parse_ip(authority, allow_scope=True)
            except AddressError as e:
                raise TargetError(
                    f"{e} (with a port, an IPv6 address is written [ADDR]:PORT)"
                ) from None
            text = f"[{authority}]{slash}{path}"
        text = "http://" + text
    return _from_split(_split(text))


def redirect_target(current: Target, location: str) -> Target:
    """The target a ``Location`` value points to, relative to *current*."""
    location = location.strip()
    if not location:
        raise TargetError("empty Location")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in location):
        raise TargetError("control characters in Location")
    try:
        joined = urljoin(current.url, location)
    except ValueError as e:
        raise TargetError(f"invalid Location: {e}") from None
    parts = _split(joined)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise TargetError(f"redirect to a {scheme or 'schemeless'} URL (http and https only)")
    return _from_split(parts)


def _split(text: str) -> SplitResult:
    try:
        return urlsplit(text)
    except ValueError as e:
        raise TargetError(f"invalid URL: {e}") from None


def _from_split(parts: SplitResult) -> Target:
    scheme = parts.scheme.lower()
    if parts.username is not None or parts.password is not None:
        raise TargetError("credentials in the URL are not supported")
    netloc = parts.netloc.rpartition("@")[2]
    if netloc.count(":") > 1 and not netloc.startswith("["):
        try:
            split_host_port(netloc, _DEFAULT_PORTS[scheme])
        except AddressError as e:
            raise TargetError(str(e)) from None
        try:
            parse_ip(netloc, allow_scope=True)
        except AddressError:
            pass
        else:
            raise TargetError(f"an IPv6 address in a URL goes in brackets: {scheme}://[{netloc}]/")
    raw_host = parts.hostname
    if not raw_host:
        raise TargetError("no host in the target")
    try:
        port = parts.port
    except ValueError:
        raise TargetError("invalid port in the target") from None
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise TargetError(f"port {port} is outside 1..65535")
    host, version = _host(raw_host, bracketed=parts.netloc.rpartition("@")[2].startswith("["))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not path.startswith("/"):
        path = "/" + path
    path = quote(path, safe=_SAFE_PATH, encoding="utf-8")
    return Target(scheme, host, port, path, is_ipv6=version == 6, is_ipv4=version == 4)


def _host(text: str, *, bracketed: bool) -> tuple[str, int]:
    """
    Validate a host: an IP literal (IPv6 only inside brackets) or a DNS name;
    return it with its IP version (0 for a name).
    """
    if bracketed:
        text = text.replace("%25", "%")
        try:
            address = parse_ip(text, allow_scope=True)
        except AddressError as e:
            raise TargetError(f"invalid IPv6 address in brackets: {e}") from None
        if address.version != 6:
            # What Python >= 3.11's urlsplit says itself; 3.10's lets it through.
            raise TargetError("an IPv4 address cannot be in brackets (only IPv6 goes there)")
        return str(address) if "%" not in text else text, 6
    try:
        return str(parse_ip(text)), 4
    except AddressError:
        pass
    try:
        ascii_host = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise TargetError(f"invalid host name {text!r}") from None
    if not _HOSTNAME.match(ascii_host) or len(ascii_host) > 253:
        raise TargetError(f"invalid host name {text!r}")
    return ascii_host.lower(), 0


def parse_header(text: str) -> tuple[str, str | None]:
    """
    A header given as curl's ``-H`` takes it: ``Name: value`` sets the field
    (replacing the client's own of that name), ``Name:`` removes the client's
    own, ``Name;`` sends it empty. Returns ``(name, value)``, value ``None``
    for a removal.

    :raises TargetError: not a field name, or a value holding CR, LF or NUL
        (which would split the request).
    """
    name, separator, value = text.partition(":")
    if not separator and text.endswith(";"):
        name, value = text[:-1], ""
        empty = True
    else:
        empty = False
        if not separator:
            raise TargetError(f"header {text!r}: expected 'Name: value'")
    name = name.strip()
    if not _TOKEN.match(name):
        raise TargetError(f"header {text!r}: {name!r} is not a field name")
    if any(c in value for c in "\r\n\x00"):
        raise TargetError(f"header {name}: CR, LF or NUL in the value")
    value = value.strip(" \t")
    if not value and not empty:
        return name, None
    return name, value


def build_request(
    target: Target,
    *,
    http10: bool = False,
    headers: tuple[tuple[str, str | None], ...] = (),
    absolute: bool = False,
) -> bytes:
    """
    The request bytes. HTTP/1.1: request line, exactly one ``Host``,
    ``User-Agent``, ``Accept`` and ``Connection: close``, each replaced or
    removed by *headers* of the same name (:func:`parse_header`), which come
    in order after them. *http10*: the bare HTTP/1.0 request, ``HEAD <path>
    HTTP/1.0`` and only the *headers*. *absolute*: the request target is the
    whole URL, as a request to an HTTP proxy must be (RFC 9112 §3.2.2).
    """
    where = target.url if absolute else target.path
    if http10:
        own: list[tuple[str, str]] = []
    else:
        own = [
            ("Host", target.authority),
            ("User-Agent", USER_AGENT),
            ("Accept", "*/*"),
            ("Connection", "close"),
        ]
    given = {name.lower(): value for name, value in headers}
    fields = [(name, given.pop(name.lower(), value)) for name, value in own]
    replaced = {name.lower() for name, _ in own}
    fields += [(n, v) for n, v in headers if n.lower() not in replaced]
    version = "1.0" if http10 else "1.1"
    lines = [f"HEAD {where} HTTP/{version}"]
    lines += [f"{name}: {value}" for name, value in fields if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
