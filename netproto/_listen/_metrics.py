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

__all__ = ["CONTENT_TYPE", "GAUGES", "MetricsRegistry", "metrics_site", "render"]

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


GAUGES: dict[str, str] = {
    "tcp_connections_open": "TCP connections open now",
    "udp_sources_tracked": "source addresses in the UDP rate limiter's table now",
}
"""The gauges: values that go up and down, read from the services at each scrape."""


def render(
    sources: Iterable[tuple[str, str, dict[str, int]]], gauges: Iterable[tuple[str, str, int]] = ()
) -> str:
    """The exposition text for (service, transport, counter snapshot) triples.

    Snapshots of one service and transport are summed; each counter becomes
    ``netproto_<name>_total{service="..."}`` with its HELP text from
    :data:`netproto.limits.COUNTERS`. *gauges* are (service, name, value)
    triples, summed per service and name, exposed as ``netproto_<name>``.
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
    levels: dict[str, dict[str, int]] = {}
    for service, gauge, value in gauges:
        by_service = levels.setdefault(gauge, {})
        by_service[service] = by_service.get(service, 0) + value
    for gauge in sorted(levels):
        name = "netproto_" + _INVALID.sub("_", gauge)
        lines.append(f"# HELP {name} {GAUGES.get(gauge, gauge)}")
        lines.append(f"# TYPE {name} gauge")
        for service, value in sorted(levels[gauge].items()):
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

    def gauges(self) -> list[tuple[str, str, int]]:
        """Open TCP connections and tracked UDP sources, where the source exposes them."""
        found: list[tuple[str, str, int]] = []
        for service, transport, source in self._sources:
            limiter = getattr(source, "limiter", None)
            total = getattr(limiter, "total", None)
            if transport == "tcp" and isinstance(total, int):
                found.append((service, "tcp_connections_open", total))
            policy = getattr(source, "policy", None)
            if transport == "udp" and policy is not None:
                try:
                    found.append((service, "udp_sources_tracked", len(policy)))
                except TypeError:
                    pass
        return found

    def render(self) -> str:
        """The current exposition text."""
        return render(self.snapshots(), self.gauges())


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
            # The length of what GET would send, and no body: Twisted logs a
            # warning for a HEAD answer that returns one.
            body = self.render_GET(request)
            request.setHeader(b"content-length", str(len(body)).encode("ascii"))
            return b""

    class MetricsSite(Site):
        """No access-log line per scrape."""

        noisy = False

        def log(self, request: Any) -> None:
            pass

    return MetricsSite(Metrics())
