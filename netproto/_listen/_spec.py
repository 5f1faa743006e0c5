"""
What a ``--SERVICE=SPEC`` means: the listeners it asks for, parsed without
touching a socket. SPEC is a bare port, ``udp:PORT[:interface=ADDR]`` (Twisted
has no UDP endpoints, so that form is parsed here), ``systemd:...``, or any
Twisted server endpoint description.
"""

from __future__ import annotations

from twisted.internet.endpoints import serverFromString
from twisted.python.systemd import ListenFDs

from netproto._listen._listeners import UDP, AnyAddressTCP, EndpointTCP, Inherited, Listener
from netproto._listen._udp import UDPSpec
from netproto._twisted import inherited_sockets
from netproto.util import AddressError, parse_ip, parse_port

__all__ = ["parse_metrics_spec", "parse_service_spec", "parse_udp_spec"]


def _split_escaped(text: str) -> list[str]:
    """Split *text* on colons not escaped with a backslash, unescaping ``\\:`` and ``\\\\``."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _ip_literal(text: str) -> str:
    """*text* if it is an IPv4 or IPv6 literal (no scope id), else raise ValueError."""
    try:
        parse_ip(text)
    except AddressError:
        raise ValueError(f"interface {text!r} is not an IPv4 or IPv6 address") from None
    return text


def parse_udp_spec(description: str) -> UDPSpec:
    """Parse ``udp:PORT[:interface=ADDR]``; raise ValueError with a readable message.

    The interface may be written with escaped colons like Twisted's endpoints
    (``interface=\\:\\:1``) or plainly (``interface=::1``): it is the last field.
    """
    head, sep, rest = description.partition(":")
    if head != "udp" or not sep:
        raise ValueError(f"{description!r} is not of the form udp:PORT[:interface=ADDR]")
    port_text, sep, options = rest.partition(":")
    port = parse_port(port_text, allow_zero=True)
    if not sep:
        return UDPSpec(port)
    key, eq, value = options.partition("=")
    if key != "interface" or not eq:
        raise ValueError(f"unknown UDP option {options!r} (only interface=ADDR)")
    fields = _split_escaped(value)
    address = ":".join(fields)
    return UDPSpec(port, _ip_literal(address))


_PARSE_ONLY = object()
"""A stand-in reactor: endpoint parsers only store it."""

_PORT_FIRST = ("tcp", "tcp6", "ssl")


def _check_endpoint(description: str) -> None:
    """Raise ValueError unless *description* is a valid Twisted server endpoint."""
    fields = _split_escaped(description)
    if fields[0] in _PORT_FIRST and len(fields) > 1 and "=" not in fields[1]:
        parse_port(fields[1], allow_zero=True)
    try:
        serverFromString(_PARSE_ONLY, description)
    except Exception as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


def _systemd_fileno(description: str, fds: ListenFDs) -> int:
    """The descriptor a ``systemd:[domain=..:](index=N|name=NAME)`` description names."""
    args: dict[str, str] = {}
    for field in _split_escaped(description)[1:]:
        key, eq, value = field.partition("=")
        if not eq or key not in ("domain", "index", "name"):
            raise ValueError(f"unknown systemd option {field!r} (domain=, index= or name=)")
        args[key] = value
    if ("index" in args) == ("name" in args):
        raise ValueError("give exactly one of index=N or name=NAME")
    if "domain" in args and args["domain"] not in ("INET", "INET6", "UNIX"):
        raise ValueError(f"domain {args['domain']!r} is not INET, INET6 or UNIX")
    descriptors = fds.inheritedDescriptors()
    if "index" in args:
        if not args["index"].isdigit():
            raise ValueError(f"index {args['index']!r} is not a number")
        index = int(args["index"])
        if index >= len(descriptors):
            raise ValueError(
                f"no inherited socket at index {index} (LISTEN_FDS passed {len(descriptors)})"
            )
        return descriptors[index]
    named = fds.inheritedNamedDescriptors()
    if args["name"] not in named:
        known = ", ".join(sorted(named)) or "none"
        raise ValueError(f"no inherited socket named {args['name']!r} (names: {known})")
    return named[args["name"]]


def _any_udp(service: str, option: str, port: int) -> list[Listener]:
    """UDP on every address: an IPv4 socket and an IPv6-only socket."""
    return [
        UDP(service, option, UDPSpec(port, "0.0.0.0")),
        UDP(service, option, UDPSpec(port, "::", v6only=True)),
    ]


def parse_service_spec(service: str, spec: str, fds: ListenFDs | None = None) -> list[Listener]:
    """
    The listeners one ``--SERVICE=SPEC`` asks for; ValueError with a reason if
    SPEC is bad (no socket is touched).

    A bare port is TCP and UDP on every IPv4 and IPv6 address, one socket per
    family and transport (with *tcp_only*, as for ``metrics``: TCP on
    127.0.0.1); ``udp:...`` is UDP only; ``systemd:...`` adopts an inherited
    socket of either type; anything else is a Twisted server endpoint
    description, TCP only.
    """
    return _parse(service, spec, fds, tcp_only=False)


def parse_metrics_spec(spec: str, fds: ListenFDs | None = None) -> list[Listener]:
    """The listener of ``--metrics=SPEC``: TCP only, a bare port on 127.0.0.1."""
    return _parse("metrics", spec, fds, tcp_only=True)


def _parse(service: str, spec: str, fds: ListenFDs | None, *, tcp_only: bool) -> list[Listener]:
    option = f"--{service}={spec}"
    spec = spec.strip()
    if not spec:
        raise ValueError("empty SPEC")
    if spec.isdigit():
        port = parse_port(spec, allow_zero=True)
        if tcp_only:
            return [EndpointTCP(service, option, f"tcp:{port}:interface=127.0.0.1")]
        return [
            AnyAddressTCP(service, option, port, 4),
            AnyAddressTCP(service, option, port, 6),
            *_any_udp(service, option, port),
        ]
    prefix = spec.partition(":")[0]
    if prefix == "udp":
        if tcp_only:
            raise ValueError(f"{service} is served over TCP only")
        parsed = parse_udp_spec(spec)
        if not parsed.interface:
            return _any_udp(service, option, parsed.port)
        return [UDP(service, option, parsed)]
    if prefix == "systemd":
        fileno = _systemd_fileno(spec, fds if fds is not None else inherited_sockets())
        return [Inherited(service, option, spec, fileno)]
    _check_endpoint(spec)
    return [EndpointTCP(service, option, spec)]
