"""
Proxies as curl finds them in the environment (:func:`proxy_for`):
``http_proxy`` for ``http://`` targets, ``https_proxy`` / ``HTTPS_PROXY``
for ``https://``, ``all_proxy`` / ``ALL_PROXY`` for both, and
``no_proxy`` / ``NO_PROXY`` for the hosts that go direct; and the
``CONNECT`` request that opens a tunnel through one. Pure code.
"""

from __future__ import annotations

from collections.abc import Mapping

from netproto.head._target import Target, TargetError, parse_target
from netproto.util import AddressError, format_host_port, parse_ip, split_host_port

__all__ = ["connect_request", "parse_proxy", "proxy_for"]


def parse_proxy(text: str) -> Target:
    """
    A proxy given as ``http://HOST:PORT`` or ``HOST:PORT`` (curl's default
    port for a proxy is 1080); only HTTP proxies are spoken to.

    :raises TargetError: another scheme (``socks5://``...), or not a host and port.
    """
    scheme = text.partition("://")[0].lower() if "://" in text else "http"
    if scheme != "http":
        raise TargetError(f"proxy {text!r}: only http:// proxies are supported")
    bare = text.partition("://")[2] if "://" in text else text
    authority = bare.partition("/")[0].rpartition("@")[2]
    try:
        host, port = split_host_port(authority, 1080)
    except AddressError as e:
        raise TargetError(f"proxy {text!r}: {e}") from None
    return parse_target(f"http://{format_host_port(host, port)}/")


def _no_proxy_matches(host: str, patterns: str) -> bool:
    """Whether *host* is one of the comma-separated *patterns*, as curl reads ``no_proxy``."""
    host = host.lower().rstrip(".")
    for raw in patterns.split(","):
        pattern = raw.strip().lower().rstrip(".")
        if not pattern:
            continue
        if pattern == "*":
            return True
        if "/" in pattern:
            import ipaddress

            try:
                if parse_ip(host) in ipaddress.ip_network(pattern, strict=False):
                    return True
            except (AddressError, ValueError):
                pass
            continue
        pattern = pattern.lstrip(".")
        if pattern.startswith("[") and pattern.endswith("]"):
            pattern = pattern[1:-1]
        if host == pattern or host.endswith("." + pattern):
            return True
    return False


def proxy_for(target: Target, environ: Mapping[str, str]) -> Target | None:
    """
    The proxy *target* goes through according to *environ* (as curl reads
    it), or ``None`` to go direct: ``no_proxy`` (or ``NO_PROXY``) lists host
    names, domains (``example.test`` covers its subdomains), addresses,
    CIDR ranges or ``*``; then ``http_proxy`` (lower case only: a CGI
    program's ``HTTP_PROXY`` comes from a request header) for ``http``,
    ``https_proxy`` or ``HTTPS_PROXY`` for ``https``, else ``all_proxy`` or
    ``ALL_PROXY``.

    :raises TargetError: the proxy variable does not hold a usable proxy.
    """
    no_proxy = environ.get("no_proxy", environ.get("NO_PROXY", ""))
    if no_proxy and _no_proxy_matches(target.host.partition("%")[0], no_proxy):
        return None
    names: tuple[str, ...] = ("http_proxy", "all_proxy", "ALL_PROXY")
    if target.scheme == "https":
        names = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            try:
                return parse_proxy(value)
            except TargetError as e:
                raise TargetError(f"{name}: {e}") from None
    return None


def connect_request(target: Target) -> bytes:
    """The ``CONNECT host:port`` request that asks a proxy for a tunnel to *target*."""
    host = f"[{target.host.partition('%')[0]}]" if target.is_ipv6 else target.host
    where = f"{host}:{target.port}"
    return f"CONNECT {where} HTTP/1.1\r\nHost: {where}\r\n\r\n".encode("ascii")
