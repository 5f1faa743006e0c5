"""
What the supervisor and its worker processes share (``twistd netproto
--workers N``): how many workers, each worker's share of the limits, and the
plan a worker is started with.

Every protection that counts (connections in total and per peer, the UDP
reply budgets, the source table) is *split* between the workers: worker *i*
of *N* gets ``1/N`` of each rate and an integer share of each cap and burst,
the shares adding up to the configured value. A looping or flooding source
therefore gets no more from N workers than from one, whichever worker the
kernel hands its packets to; an honest client whose packets all land on one
worker meets ``1/N`` of its rate there (see the operator's guide). A non-zero
integer limit smaller than N cannot be split (a share of 0 would mean
unlimited) and is refused with a usage error. Timeouts, intervals and the
allowed ports are the same in every worker.

Nothing here touches a socket or a process.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netproto.access import AccessRules
from netproto.limits import Limits

__all__ = [
    "REACTOR_VARIABLE",
    "SPLIT_LIMITS",
    "STANDBY",
    "WorkerPlan",
    "WorkerSocket",
    "access_share",
    "check_shares",
    "check_workers",
    "parse_workers",
    "share_of",
    "usable_cpus",
]

SPLIT_LIMITS = (
    "max_connections",
    "max_connections_per_peer",
    "udp_rate",
    "udp_burst",
    "udp_global_rate",
    "udp_global_burst",
    "udp_max_sources",
    "buffer_budget",
)
"""The :class:`~netproto.limits.Limits` fields divided between the workers (the
buffered-bytes budget too: memory under attack stays the figure per service)."""

STANDBY = "--standby"
"""A worker's argument when started ahead of need: its plan comes on standard input."""

REACTOR_VARIABLE = "NETPROTO_WORKER_REACTOR"
"""The environment variable naming the module whose ``install()`` gives a worker the
supervisor's kind of reactor (``twisted.internet.epollreactor``, ...)."""

MAX_WORKERS = 256
"""More worker processes than this is a typo, not a plan."""


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parse_workers(value: object) -> int:
    """``--workers``: a whole number from 1 to :data:`MAX_WORKERS`, or ``auto`` (one per CPU).

    :raises ValueError: with a reason naming what was given.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().lower()
        if text == "auto":
            return usable_cpus()
        if not text.isdigit():
            raise ValueError(f"{value!r} is not a whole number or 'auto'")
        number = int(text)
    if not 1 <= number <= MAX_WORKERS:
        raise ValueError(f"must be from 1 to {MAX_WORKERS} (or 'auto'), not {value}")
    return number


def check_shares(limits: Limits, workers: int) -> None:
    """Raise ValueError unless every split limit can be divided between *workers*."""
    for name in SPLIT_LIMITS:
        value = getattr(limits, name)
        if isinstance(value, int) and 0 < value < workers:
            option = name.replace("_", "-")
            raise ValueError(
                f"--{option}={value} cannot be split between {workers} workers "
                f"(each needs at least 1): raise it to {workers} or more, or use fewer workers"
            )


def share_of(limits: Limits, workers: int, index: int) -> Limits:
    """Worker *index*'s (0-based) share of *limits* when *workers* serve together.

    Rates are divided exactly; an integer cap ``n`` gives ``n // workers`` to
    every worker and one more to the first ``n % workers``, so the shares add
    up to ``n``. Zero (unlimited) stays zero.
    """
    if workers == 1:
        return limits
    check_shares(limits, workers)
    changes: dict[str, Any] = {}
    for name in SPLIT_LIMITS:
        value = getattr(limits, name)
        if not value:
            continue
        if isinstance(value, int):
            changes[name] = value // workers + (1 if index < value % workers else 0)
        else:
            # Never 0 (unlimited) for a tiny rate: the smallest positive float.
            changes[name] = max(value / workers, math.nextafter(0.0, 1.0))
    return dataclasses.replace(limits, **changes)


def access_share(rules: AccessRules | None, workers: int, index: int) -> AccessRules | None:
    """
    Worker *index*'s (0-based) share of the access rules: the same allow and
    deny networks, the per-source connection rate divided as :func:`share_of`
    divides rates (a burst as it divides caps, at least 1), so that a source
    gets no more new connections from N workers than from one.
    """
    if rules is None or workers == 1:
        return rules
    changes: dict[str, Any] = {}
    if rules.connection_rate:
        changes["connection_rate"] = max(rules.connection_rate / workers, math.nextafter(0.0, 1.0))
    burst = rules.connection_burst
    if burst:
        changes["connection_burst"] = max(
            1, burst // workers + (1 if index < burst % workers else 0)
        )
    return dataclasses.replace(rules, **changes)


def _access_json(rules: AccessRules | None) -> dict[str, Any] | None:
    if rules is None:
        return None
    return {
        "allow": [str(n) for n in rules.allow],
        "deny": [str(n) for n in rules.deny],
        "connection_rate": rules.connection_rate,
        "connection_burst": rules.connection_burst,
        "max_sources": rules.max_sources,
    }


@dataclass(frozen=True)
class WorkerSocket:
    """One bound socket a worker serves: its service, the option it came from, its fd there."""

    service: str
    option: str
    description: str
    fd: int


def _plain(value: Any) -> Any:
    """*value* as JSON can carry it, or ``None`` if it cannot be carried."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (frozenset, set)):
        return sorted(value)
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (str, int, float, bool)) for v in value
    ):
        return list(value)
    return None


@dataclass(frozen=True)
class WorkerPlan:
    """Everything a worker process is started with (sent as one JSON argument)."""

    worker: int
    """This worker's id, 1 to ``workers``."""
    workers: int
    limits: Limits
    """This worker's share (see :func:`share_of`)."""
    options: Mapping[str, Any]
    """The plugin's options the services read (``daytime-format``, ``utc``, ...)."""
    sockets: tuple[WorkerSocket, ...]
    stats_interval: float = 1.0
    """Seconds between two counter reports to the supervisor."""
    access: AccessRules | None = None
    """This worker's share of ``--allow``/``--deny`` and the connection rate (see
    :func:`access_share`); the services read it as the ``access`` option."""
    unused: tuple[int, ...] = ()
    """Inherited descriptors of the other workers' sockets (a worker inherits every
    socket, as the standby must): the worker closes them before serving."""

    def to_json(self) -> str:
        """The plan as one line of JSON."""
        limits = {f.name: _plain(getattr(self.limits, f.name)) for f in dataclasses.fields(Limits)}
        options = {}
        for key, value in self.options.items():
            plain = _plain(value)
            if plain is not None or value is None:
                options[key] = plain
        return json.dumps(
            {
                "worker": self.worker,
                "workers": self.workers,
                "limits": limits,
                "options": options,
                "sockets": [dataclasses.asdict(s) for s in self.sockets],
                "stats_interval": self.stats_interval,
                "access": _access_json(self.access),
                "unused": list(self.unused),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> WorkerPlan:
        """Read a plan written by :meth:`to_json`; ValueError if it is not one."""
        try:
            data = json.loads(text)
            defaults = Limits()
            values: dict[str, Any] = {}
            for f in dataclasses.fields(Limits):
                if f.name not in data["limits"]:
                    continue
                value = data["limits"][f.name]
                if isinstance(getattr(defaults, f.name), frozenset):
                    value = frozenset(value)
                values[f.name] = value
            return cls(
                worker=int(data["worker"]),
                workers=int(data["workers"]),
                limits=Limits(**values),
                options=dict(data["options"]),
                sockets=tuple(WorkerSocket(**s) for s in data["sockets"]),
                stats_interval=float(data["stats_interval"]),
                access=AccessRules(**data["access"]) if data.get("access") else None,
                unused=tuple(int(fd) for fd in data.get("unused", ())),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a worker plan: {exc}") from None


def check_workers(value: object, limits: Limits, listeners: list[Any]) -> int:
    """``--workers``: the number of workers, checked against the limits and the listeners.

    :raises ValueError: naming ``--workers`` (or the limit that cannot be split).
    """
    try:
        workers = parse_workers(value)
    except ValueError as exc:
        raise ValueError(f"--workers: {exc}") from None
    if workers == 1:
        return 1
    check_shares(limits, workers)
    for listener in listeners:
        description = str(getattr(listener, "description", ""))
        if description.startswith("ssl:"):
            raise ValueError(
                f"{listener.option}: a TLS endpoint cannot be shared by workers; "
                "serve it with --workers 1"
            )
    return workers
