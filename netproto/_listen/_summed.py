"""
``--metrics`` under ``--workers``: the supervisor's registry, the services'
counters and gauges as every worker last reported them, summed (a dead
worker's kept, so no counter goes down), the per-worker metrics, and the site
that asks every worker for fresh counters before each scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from netproto._listen._metrics import MetricsRegistry, NetprotoCollector

__all__ = ["metrics_site", "summed_registry", "worker_metrics"]


def summed_registry(supervisor: Any) -> MetricsRegistry:
    """The registry a :class:`~netproto._listen._supervisor.SupervisedService` serves."""
    return MetricsRegistry(_SummedCollector(supervisor), extra=[_WorkersCollector(supervisor)])


def worker_metrics(self: Any) -> Iterator[Metric]:
    """netproto_workers, and per worker: up, restarts, requests served."""
    workers = GaugeMetricFamily("netproto_workers", "worker processes configured (--workers)")
    workers.add_metric((), self.workers)
    yield workers
    up = GaugeMetricFamily(
        "netproto_worker_up", "whether the worker is running now", labels=("worker",)
    )
    for worker in range(1, self.workers + 1):
        process = self.processes.get(worker)
        up.add_metric((str(worker),), 1 if process is not None and process.ready else 0)
    yield up
    restarts = CounterMetricFamily(
        "netproto_worker_restarts", "times the worker was started again", labels=("worker",)
    )
    for worker, count in sorted(self.restarts.items()):
        restarts.add_metric((str(worker),), count)
    yield restarts
    requests = CounterMetricFamily(
        "netproto_worker_requests",
        "TCP connections accepted and UDP datagrams received, by worker",
        labels=("worker", "service", "transport"),
    )
    for worker in range(1, self.workers + 1):
        process = self.processes.get(worker)
        stats = list(self._retired_by_worker.get(worker, []))
        stats += process.stats if process is not None else []
        served: dict[tuple[str, str], int] = {}
        for service, transport, snapshot in stats:
            key = "tcp_connections" if transport == "tcp" else "udp_datagrams_received"
            served[service, transport] = served.get((service, transport), 0) + int(
                snapshot.get(key, 0)
            )
        for (service, transport), count in sorted(served.items()):
            requests.add_metric((str(worker), service, transport), count)
    yield requests


class _SummedCollector(NetprotoCollector):
    """The services' counters and gauges as the workers last reported them, summed."""

    def __init__(self, supervisor: Any) -> None:
        super().__init__()
        self.supervisor = supervisor

    def snapshots(self) -> list[tuple[str, str, dict[str, int]]]:
        sources: list[tuple[str, str, dict[str, int]]] = self.supervisor.summed()[0]
        return sources

    def gauges(self) -> list[tuple[str, str, int]]:
        gauges: list[tuple[str, str, int]] = self.supervisor.summed()[1]
        return gauges


class _WorkersCollector:
    """The per-worker metrics (see :meth:`SupervisedService.worker_metrics`)."""

    def __init__(self, supervisor: Any) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        return worker_metrics(self.supervisor)


def metrics_site(supervisor: Any) -> Any:
    """
    A :class:`twisted.web.server.Site` answering ``GET /metrics``: fresh
    counters asked of every worker, then the same exposition as one
    process's (OpenMetrics when the scraper asks for it).
    """
    from twisted.web.resource import Resource
    from twisted.web.server import NOT_DONE_YET, Request, Site

    class Metrics(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> Any:
            if request.path not in (b"/", b"/metrics"):
                request.setResponseCode(404)
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                return b"not found: try /metrics\n"
            head = request.method == b"HEAD"
            accept = request.getHeader(b"accept")
            finished = request.notifyFinish()
            gone: list[bool] = []
            finished.addErrback(lambda _: gone.append(True))

            def answer(_: object) -> None:
                if gone:
                    return
                body, content_type = supervisor.metrics.exposition(
                    accept.decode("latin-1") if accept is not None else None
                )
                request.setHeader(b"content-type", content_type.encode("ascii"))
                request.setHeader(b"content-length", str(len(body)).encode("ascii"))
                if not head:
                    request.write(body)
                request.finish()

            supervisor.poll().addCallback(answer)
            return NOT_DONE_YET

        def render_HEAD(self, request: Request) -> Any:
            return self.render_GET(request)

    class MetricsSite(Site):
        """No access-log line per scrape."""

        noisy = False

        def log(self, request: Any) -> None:
            pass

    return MetricsSite(Metrics())
