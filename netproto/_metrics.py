"""
``--metrics``: the services' counters in the Prometheus text exposition format
(version 0.0.4), served over HTTP by :mod:`twisted.web`.

The format is a few lines of text per counter, so it is written here rather
than pulling in ``prometheus_client`` (a run-time dependency, a global
registry and a thread-based server, none of which a Twisted service wants).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from netproto.limits import COUNTERS

__all__ = ["CONTENT_TYPE", "MetricsRegistry", "metrics_site", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def _metric_name(counter: str) -> str:
    name = "netproto_" + _INVALID.sub("_", counter)
    return name if name.endswith("_total") else name + "_total"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _applies(counter: str, transport: str) -> bool:
    """Whether *counter* means anything for a *transport* listener (tcp_* vs udp_*)."""
    kind = counter.partition("_")[0]
    return kind not in ("tcp", "udp") or kind == transport


def render(sources: Iterable[tuple[str, str, dict[str, int]]]) -> str:
    """The exposition text for (service, transport, counter snapshot) triples.

    Snapshots of one service and transport are summed; each counter becomes
    ``netproto_<name>_total{service="..."}`` with its HELP text from
    :data:`netproto.limits.COUNTERS`.
    """
    totals: dict[str, dict[str, int]] = {}
    for service, transport, snapshot in sources:
        for counter, value in snapshot.items():
            if not _applies(counter, transport):
                continue
            by_service = totals.setdefault(counter, {})
            by_service[service] = by_service.get(service, 0) + value
    lines: list[str] = []
    for counter in sorted(totals):
        name = _metric_name(counter)
        help_text = COUNTERS.get(counter, f"netproto counter {counter}")
        lines.append(f"# HELP {name} {help_text.replace(chr(92), chr(92) * 2)}")
        lines.append(f"# TYPE {name} counter")
        for service, value in sorted(totals[counter].items()):
            lines.append(f'{name}{{service="{_label(service)}"}} {value}')
    return "".join(line + "\n" for line in lines)


class MetricsRegistry:
    """The objects (factories, datagram protocols) whose ``counters`` are exposed."""

    def __init__(self) -> None:
        self._sources: list[tuple[str, str, Any]] = []

    def register(self, service: str, transport: str, source: Any) -> None:
        """Expose ``source.counters`` (a :class:`~netproto.limits.Counters`) as *service*."""
        self._sources.append((service, transport, source))

    def snapshots(self) -> list[tuple[str, str, dict[str, int]]]:
        """The current counters of every registered source."""
        return [(s, t, src.counters.snapshot()) for s, t, src in self._sources]

    def render(self) -> str:
        """The current exposition text."""
        return render(self.snapshots())


def metrics_site(registry: MetricsRegistry) -> Any:
    """A :class:`twisted.web.server.Site` answering ``GET /metrics`` (and ``/``)."""
    from twisted.web.resource import Resource
    from twisted.web.server import Request, Site

    class Metrics(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            if request.path not in (b"/", b"/metrics"):
                request.setResponseCode(404)
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                return b"not found: try /metrics\n"
            request.setHeader(b"content-type", CONTENT_TYPE.encode("ascii"))
            return registry.render().encode("utf-8")

        def render_HEAD(self, request: Request) -> bytes:
            return self.render_GET(request)

    class MetricsSite(Site):
        """No access-log line per scrape."""

        noisy = False

        def log(self, request: Any) -> None:
            pass

    return MetricsSite(Metrics())
