"""
The twistd plugin's options and service: ``twistd -n netproto ...``.

``makeService`` only parses and constructs; every socket is bound (or adopted)
in ``privilegedStartService``, so twistd's ``--uid/--gid`` can run the service
unprivileged on ports 7 and 13.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.application.service import IService
from twisted.python import usage
from twisted.python.systemd import ListenFDs

from netproto._listen import (
    SERVICES,
    Listener,
    NetprotoService,
    SupervisedService,
    build_listeners,
    check_workers,
    parse_metrics_spec,
    parse_service_spec,
)
from netproto.access import AccessRules, Network, parse_network
from netproto.daytime import FORMATS
from netproto.journal import observer as journal_observer
from netproto.limits import Limits
from netproto.qotd import load_quotes
from netproto.util import AddressError, parse_port

__all__ = ["Options", "makeService"]

_LIMIT_HELP: dict[str, str] = {
    "max_connections": "TCP connections per service in total (0: unlimited)",
    "max_connections_per_peer": "TCP connections per service from one address (0: unlimited)",
    "idle_timeout": "seconds without traffic before a TCP connection is aborted (0: never)",
    "write_stall_timeout": "seconds a TCP connection's output may stay stuck before it is "
    "aborted (0: never)",
    "udp_rate": "UDP replies per second to one source address (0: unlimited)",
    "udp_burst": "UDP replies one source address may get in a burst",
    "udp_global_rate": "UDP replies per second over all sources, per UDP listener (0: unlimited)",
    "udp_global_burst": "UDP replies in a burst over all sources, per UDP listener",
    "udp_allowed_ports": "comma-separated source ports below 1024 (or 2049) to answer anyway "
    "(default: none)",
    "udp_max_sources": "source addresses the UDP rate limiter remembers (0: unlimited)",
    "summary_interval": "seconds between refusal summaries in the log (0: no summaries)",
    "sweep_interval": "seconds between idle/stall sweeps (0: a tenth of the shortest timeout, "
    "1-30 s)",
    "listen_backlog": "connections queued by the kernel per TCP listener before they are "
    "accepted (clamped to net.core.somaxconn; 0: that maximum)",
    "write_high_water": "bytes queued for one echo peer before reading from it pauses "
    "(0: Twisted's 64 KiB)",
    "buffer_budget": "bytes queued for all echo peers of a service before every read "
    "pauses until they drain (0: unlimited)",
    "peer_prefix_v4": "IPv4 prefix length that counts as one peer for the per-peer caps "
    "and UDP buckets",
    "peer_prefix_v6": "IPv6 prefix length that counts as one peer for the per-peer caps "
    "and UDP buckets",
}


def _option_name(field: str) -> str:
    return field.replace("_", "-")


def _limit_parameters() -> list[list[Any]]:
    """One ``optParameters`` row per :class:`Limits` field, default in final type."""
    defaults = Limits()
    rows: list[list[Any]] = []
    for field in dataclasses.fields(Limits):
        default = getattr(defaults, field.name)
        if isinstance(default, frozenset):
            # Shown as text (none by default); postOptions turns it into a frozenset.
            shown: Any = ",".join(str(p) for p in sorted(default)) or None
        elif isinstance(default, float) and default.is_integer():
            # "[default: 300]", not "300.0"; postOptions gives it back as a float.
            shown = int(default)
        else:
            shown = default
        rows.append([_option_name(field.name), None, shown, _LIMIT_HELP[field.name]])
    return rows


def _coerce_limit(option: str, default: Any, value: Any) -> Any:
    """*value* (text from the command line, or the default) in the type of *default*."""
    if isinstance(default, frozenset):
        if value is None:
            return default
        if isinstance(value, frozenset):
            return value
        ports: set[int] = set()
        for item in str(value).split(","):
            item = item.strip()
            if not item:
                continue
            try:
                ports.add(parse_port(item, allow_zero=True))
            except AddressError as e:
                raise usage.UsageError(f"--{option}: {e}") from None
        return frozenset(ports)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return type(default)(value)
    text = str(value).strip()
    try:
        number: int | float = int(text) if isinstance(default, int) else float(text)
    except ValueError:
        kind = "a whole number" if isinstance(default, int) else "a number"
        raise usage.UsageError(f"--{option}: {value!r} is not {kind}") from None
    if number < 0 or number != number or number == float("inf"):
        raise usage.UsageError(f"--{option}: must be >= 0 (0: unlimited), not {value}")
    return number


class Options(usage.Options):
    """The ``twistd netproto`` command line."""

    synopsis = " ".join(f"[--{name}=SPEC]..." for name in SERVICES) + " [options]"
    longdesc = (
        "Serve the classic Internet services (RFC 867 daytime, RFC 862 echo, RFC 863 "
        "discard, RFC 864 chargen, RFC 868 time, RFC 865 qotd) over TCP "
        "and UDP, IPv4 and IPv6, with abuse protection on by default. "
        "SPEC is a bare port (TCP and UDP, dual-stack), a Twisted server endpoint "
        "description for TCP only (tcp:13:interface=127.0.0.1, tcp6:13, unix:/path, "
        "ssl:..., systemd:domain=INET:index=0; a systemd datagram socket is served as "
        "UDP), or udp:PORT[:interface=ADDR] for UDP only. Each may be repeated."
    )

    optFlags = [
        ["utc", None, "daytime: UTC instead of local time"],
        [
            "chargen-rfc-udp",
            None,
            "chargen: answer every UDP datagram, even an empty one, with a whole 74-byte "
            "line as RFC 864 and inetd do (an amplifier for forged sources); without it a "
            "reply is never larger than the datagram asking for it",
        ],
    ]
    optParameters = [
        ["daytime-format", None, "ctime", "daytime line format: " + ", ".join(FORMATS)],
        [
            "qotd-file",
            None,
            None,
            "qotd: the quotes, separated by lines holding only % (or by blank lines); "
            "printable ASCII, each under 512 bytes",
        ],
        [
            "connection-rate",
            None,
            0,
            "new TCP connections per second one source address may open, per service, "
            "like xinetd's cps but per source (0: no cap)",
        ],
        [
            "connection-burst",
            None,
            0,
            "TCP connections a source may open at once above --connection-rate (0: twice the rate)",
        ],
        [
            "metrics",
            None,
            None,
            "serve counters in the Prometheus text format on this TCP endpoint "
            "(a bare port means tcp:PORT:interface=127.0.0.1)",
        ],
        [
            "workers",
            None,
            1,
            "worker processes serving the same ports: a number, or auto (one per CPU); "
            "the limits are split between them",
        ],
        *_limit_parameters(),
    ]

    #: The sockets inherited from systemd; ``None``: those of this process.
    listen_fds: ListenFDs | None = None

    def __init__(self) -> None:
        super().__init__()
        for name in SERVICES:
            self[name] = []
        self["allow"] = []
        self["deny"] = []

    def opt_allow(self, network: str) -> None:
        """Serve only sources in this address or CIDR network (xinetd's only_from); repeatable."""
        self["allow"].append(network)

    def opt_deny(self, network: str) -> None:
        """Never serve sources in this address or CIDR network (xinetd's no_access); repeatable."""
        self["deny"].append(network)

    def postOptions(self) -> None:
        """Check every option, build ``limits`` and ``listeners``; UsageError names the option."""
        if self.get("extra"):
            raise usage.UsageError(f"unexpected argument {self['extra']!r}")
        defaults = Limits()
        values: dict[str, Any] = {}
        for field in dataclasses.fields(Limits):
            option = _option_name(field.name)
            values[field.name] = _coerce_limit(option, getattr(defaults, field.name), self[option])
            self[option] = values[field.name]
        try:
            self["limits"] = Limits(**values)
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from None
        if self["daytime-format"] not in FORMATS:
            raise usage.UsageError(
                f"--daytime-format: {self['daytime-format']!r} is not one of " + ", ".join(FORMATS)
            )
        self["access"] = self._access_rules()
        if self["qotd-file"] is not None:
            try:
                self["qotd-quotes"] = load_quotes(self["qotd-file"])
            except ValueError as exc:
                raise usage.UsageError(f"--qotd-file: {exc}") from None
        listeners: list[Listener] = []
        for service in SERVICES:
            for spec in self[service]:
                try:
                    listeners.extend(parse_service_spec(service, spec, self.listen_fds))
                except ValueError as exc:
                    raise usage.UsageError(f"--{service}={spec}: {exc}") from None
        if self["metrics"] is not None:
            try:
                listeners.extend(parse_metrics_spec(self["metrics"], self.listen_fds))
            except ValueError as exc:
                raise usage.UsageError(f"--metrics={self['metrics']}: {exc}") from None
        if not any(self[service] for service in SERVICES):
            choices = " and/or ".join(f"--{service}=SPEC" for service in SERVICES)
            raise usage.UsageError(f"nothing to serve: give {choices}")
        self["listeners"] = listeners
        try:
            self["workers"] = check_workers(self["workers"], self["limits"], listeners)
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from None

    def _access_rules(self) -> AccessRules:
        networks: dict[str, list[Network]] = {"allow": [], "deny": []}
        for option, found in networks.items():
            for text in self[option]:
                try:
                    found.append(parse_network(text))
                except ValueError as exc:
                    raise usage.UsageError(f"--{option}={text}: {exc}") from None
        numbers: dict[str, Any] = {}
        for option, kind in (("connection-rate", float), ("connection-burst", int)):
            value = self[option]
            try:
                number = kind(value)
            except (TypeError, ValueError):
                what = "a whole number" if kind is int else "a number"
                raise usage.UsageError(f"--{option}: {value!r} is not {what}") from None
            if not 0 <= number < float("inf"):
                raise usage.UsageError(f"--{option}: must be >= 0 (0: no cap), not {value}")
            numbers[option] = self[option] = number
        return AccessRules(
            allow=tuple(networks["allow"]),
            deny=tuple(networks["deny"]),
            connection_rate=numbers["connection-rate"],
            connection_burst=numbers["connection-burst"],
        )

    def parseArgs(self, *extra: str) -> None:
        """No positional arguments: everything is an option."""
        self["extra"] = extra

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse *options* (``sys.argv[1:]`` by default) as :class:`usage.Options`
        does, except that an option must be written in full: getopt would take
        ``--ech=1207`` for ``--echo=1207``, and any later option starting with
        the same letters would change what it means.

        Under twistd (a parent command line), a mistake is one line on stderr
        and exit status 1, as twistd exits for usage errors, instead of
        twistd's whole usage text on stdout.

        :raises usage.UsageError: used without twistd, naming the option.
        """
        import sys

        arguments = sys.argv[1:] if options is None else list(options)
        try:
            self._refuse_abbreviations(arguments)
            super().parseOptions(arguments)
        except usage.UsageError as e:
            if self.parent is None:
                raise
            sys.stderr.write(f"twistd netproto: {e} (see 'twistd netproto --help')\n")
            sys.stderr.flush()
            raise SystemExit(1) from None

    def _refuse_abbreviations(self, arguments: list[str]) -> None:
        names = {name.rstrip("=") for name in self.longOpt} | {"help", "version"}
        for argument in arguments:
            if argument == "--":
                break
            if not argument.startswith("--"):
                continue
            name = argument[2:].partition("=")[0]
            if name in names:
                continue
            matches = sorted(n for n in names if n.startswith(name)) if name else []
            hint = f" (did you mean --{matches[0]}?)" if len(matches) == 1 else ""
            raise usage.UsageError(f"unknown option --{name}{hint}")


def makeService(config: Options, reactor: Any = None) -> IService:
    """Build, without binding any socket, the services *config* asks for."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    parent = config.parent
    daemon = parent is not None and not parent.get("nodaemon", True)
    # twistd -n logs to standard output unless told otherwise: a bind failure
    # then goes on standard error only, not on the terminal twice.
    logger = parent.get("logger") if parent is not None else None
    log_to_stdout = (
        parent is not None
        and not daemon
        and not parent.get("syslog")
        and logger is None
        and parent.get("logfile") in (None, "-")
    )
    # --logger=netproto.journal.observer: the log is the journal, stdout.
    journal = logger is journal_observer and not daemon
    workers = config.get("workers", 1)
    if workers > 1:
        return SupervisedService(
            reactor,
            config["listeners"],
            workers=workers,
            limits=config["limits"],
            options=config,
            daemon=daemon,
            log_to_stdout=log_to_stdout,
            journal=journal,
        )
    service = NetprotoService(daemon=daemon, log_to_stdout=log_to_stdout, journal=journal)
    build_listeners(service, reactor, config["listeners"], limits=config["limits"], options=config)
    return service


def _service_option(name: str, help_text: str) -> Any:
    """The ``opt_NAME`` method of one row of the table: ``--NAME=SPEC``, repeatable."""

    def option(self: Options, spec: str) -> None:
        self[name].append(spec)

    option.__doc__ = help_text[:1].upper() + help_text[1:] + "."
    option.__name__ = f"opt_{name}"
    return option


for _row in SERVICES.values():
    setattr(Options, f"opt_{_row.name}", _service_option(_row.name, _row.help))
del _row
