"""
``--metrics``: the services' counters, netproto's build and the process's
CPU, memory and descriptors, exposed through ``prometheus_client`` and served
over HTTP by :mod:`twisted.web`.

Each :class:`MetricsRegistry` owns an explicit ``CollectorRegistry`` (never
the library's global one): a collector over netproto's counters, read live
at each scrape, plus the library's process, platform and garbage-collector
collectors and a build-info metric. The Prometheus text format (0.0.4) is
served by default, OpenMetrics when the scraper's ``Accept`` asks for it
(``prometheus_client``'s own negotiation).

The page is rendered by a small synchronous resource in the reactor's
thread: ``prometheus_client.twisted.MetricsResource`` is a WSGI resource run
on the reactor's thread pool, where a scrape would read the counters while
the reactor thread changes them, and it takes the global reactor at import.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import Collector

from netproto.limits import COUNTERS

__all__ = [
    "CONTENT_TYPE",
    "GAUGES",
    "METRIC_NAMES",
    "MetricsRegistry",
    "NetprotoCollector",
    "metric_name",
    "metrics_site",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What a scrape without an OpenMetrics ``Accept`` gets."""

_INVALID = re.compile(r"[^a-zA-Z0-9_]")

_TRANSPORTS = ("tcp", "udp")

_RENAMED: dict[str, str] = {
    # "refused_total" would read as a running total of refusals.
    "tcp_refused_total": "refused_max_connections",
    "tcp_refused_peer": "refused_max_connections_per_peer",
}
"""Counters whose name, less the transport, would mislead as a metric name."""

GAUGES: dict[str, str] = {
    "tcp_connections_open": "TCP connections open now",
    "udp_sources_tracked": "source addresses in the UDP rate limiter's table now",
}
"""The gauges: values that go up and down, read from the services at each scrape."""


def metric_name(counter: str) -> tuple[str, str | None]:
    """
    The metric name of netproto counter or gauge *counter*, and the transport
    it is about: ``tcp_bytes_sent`` is ``netproto_bytes_sent`` with
    ``transport="tcp"`` (a counter's samples end in ``_total``).
    """
    if counter in _RENAMED:
        return "netproto_" + _RENAMED[counter], counter.partition("_")[0]
    kind, _, rest = counter.partition("_")
    if kind in _TRANSPORTS and rest:
        return "netproto_" + _INVALID.sub("_", rest), kind
    return "netproto_" + _INVALID.sub("_", counter), None


def _metric_names() -> dict[str, str]:
    names: dict[str, list[str]] = {}
    for counter, help_text in {**COUNTERS, **GAUGES}.items():
        name, _ = metric_name(counter)
        if counter in COUNTERS:
            name += "_total"
        names.setdefault(name, []).append(help_text)
    return {name: "; ".join(helps) for name, helps in names.items()}


METRIC_NAMES: dict[str, str] = _metric_names()
"""Every netproto metric name (as exposed) with its help text."""


def _help(counters: Iterable[str]) -> str:
    texts = [COUNTERS.get(c) or GAUGES.get(c) or f"netproto counter {c}" for c in counters]
    return "; ".join(dict.fromkeys(texts))


class NetprotoCollector(Collector):
    """
    The counters and gauges of every registered source, read at each
    scrape: one metric per counter name, less the transport, with
    ``service`` and ``transport`` labels; the samples of one service and
    transport are summed (a service's UDP sockets each count apart).
    """

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

    def collect(self) -> Iterator[Metric]:
        counters: dict[str, dict[tuple[str, str], int]] = {}
        sources: dict[str, list[str]] = {}
        for service, transport, snapshot in self.snapshots():
            for counter, value in snapshot.items():
                name, about = metric_name(counter)
                if about is not None and about != transport:
                    continue
                samples = counters.setdefault(name, {})
                samples[(service, transport)] = samples.get((service, transport), 0) + value
                sources.setdefault(name, []).append(counter)
        for name in sorted(counters):
            family = CounterMetricFamily(
                name, _help(sources[name]), labels=("service", "transport")
            )
            for (service, transport), value in sorted(counters[name].items()):
                family.add_metric((service, transport), value)
            yield family
        levels: dict[str, dict[tuple[str, str], int]] = {}
        gauge_sources: dict[str, list[str]] = {}
        for service, gauge, value in self.gauges():
            name, about = metric_name(gauge)
            key = (service, about or "")
            levels.setdefault(name, {})[key] = levels.get(name, {}).get(key, 0) + value
            gauge_sources.setdefault(name, []).append(gauge)
        for name in sorted(levels):
            gauge_family = GaugeMetricFamily(
                name, _help(gauge_sources[name]), labels=("service", "transport")
            )
            for labels, value in sorted(levels[name].items()):
                gauge_family.add_metric(labels, value)
            yield gauge_family


class MetricsRegistry:
    """
    The objects (factories, datagram protocols) whose ``counters`` are
    exposed, and the ``CollectorRegistry`` (:attr:`collectors`) that exposes
    them with the process's metrics and ``netproto_build_info``; *collector*
    replaces the counters' collector, *extra* adds others.
    """

    def __init__(
        self, collector: NetprotoCollector | None = None, extra: Iterable[Collector] = ()
    ) -> None:
        from netproto import __version__

        self.collector = collector or NetprotoCollector()
        """Where the services' counters come from (``--workers``: the workers' sums)."""
        self.collectors = CollectorRegistry(auto_describe=True)
        self.collectors.register(self.collector)
        for more in extra:
            self.collectors.register(more)
        ProcessCollector(registry=self.collectors)
        PlatformCollector(registry=self.collectors)
        GCCollector(registry=self.collectors)
        build = Info("netproto_build", "the netproto release serving", registry=self.collectors)
        build.info(
            {
                "version": __version__,
                "twisted": _twisted_version(),
                "python": platform.python_version(),
            }
        )

    def register(self, service: str, transport: str, source: Any) -> None:
        """Expose ``source.counters`` (a :class:`~netproto.limits.Counters`) as *service*."""
        self.collector.register(service, transport, source)

    def snapshots(self) -> list[tuple[str, str, dict[str, int]]]:
        """The current counters of every registered source."""
        return self.collector.snapshots()

    def gauges(self) -> list[tuple[str, str, int]]:
        """Open TCP connections and tracked UDP sources, where the source exposes them."""
        return self.collector.gauges()

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The page and its content type for a scrape sending ``Accept: `` *accept*."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.collectors), content_type

    def render(self) -> str:
        """The current page in the Prometheus text format."""
        return generate_latest(self.collectors).decode("utf-8")


def _twisted_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("twisted")
    except PackageNotFoundError:
        return "unknown"


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
            accept = request.getHeader(b"accept")
            body, content_type = registry.exposition(
                accept.decode("latin-1") if accept is not None else None
            )
            request.setHeader(b"content-type", content_type.encode("ascii"))
            return body

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
