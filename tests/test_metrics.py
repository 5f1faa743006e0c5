"""
The ``--metrics`` exposition through prometheus_client: netproto's counters
with ``service`` and ``transport`` labels, process and build metrics, the
text format by default and OpenMetrics on request, each read back with
prometheus_client's own parsers.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

import prometheus_client
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

import netproto
from netproto._listen._metrics import METRIC_NAMES, MetricsRegistry, metric_name, metrics_site
from netproto.echo import EchoDatagramProtocol, EchoFactory
from netproto.limits import COUNTERS, Counters
from tests.test_tap_live import TWISTD, Twistd, free_port, tcp_exchange, udp_exchange

ROOT = Path(__file__).resolve().parent.parent


class _Source:
    """Anything with ``counters``, as the registry reads it."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters


def samples(text: str, parser: Any = parse_text) -> dict[tuple[str, tuple[Any, ...]], float]:
    """Every sample of *text*: (name, sorted labels) -> value."""
    found = {}
    for family in parser(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def labels(service: str, transport: str) -> tuple[tuple[str, str], ...]:
    return (("service", service), ("transport", transport))


class NamingTests(SynchronousTestCase):
    """netproto's counter names become metric names with a transport label."""

    def test_metric_name(self) -> None:
        """The transport leaves the name; misleading names are renamed."""
        self.assertEqual(metric_name("tcp_bytes_sent"), ("netproto_bytes_sent", "tcp"))
        self.assertEqual(metric_name("udp_bytes_sent"), ("netproto_bytes_sent", "udp"))
        self.assertEqual(
            metric_name("tcp_refused_total"), ("netproto_refused_max_connections", "tcp")
        )
        self.assertEqual(metric_name("tcp_connections_open"), ("netproto_connections_open", "tcp"))

    def test_names_unique(self) -> None:
        """No two counters of one transport share a metric name."""
        seen = [metric_name(counter) for counter in COUNTERS]
        self.assertEqual(len(seen), len(set(seen)))

    def test_names_documented(self) -> None:
        """Every metric name is in the operators' guide."""
        guide = (ROOT / "docs" / "guides" / "operators.rst").read_text()
        for name in [*METRIC_NAMES, "netproto_build_info", "process_resident_memory_bytes"]:
            self.assertTrue(f"``{name}``" in guide, f"{name} is not in docs/guides/operators.rst")


class RegistryTests(SynchronousTestCase):
    """The explicit registry: live counters, gauges, process and build metrics."""

    def test_summed_and_labelled(self) -> None:
        """Snapshots of one service and transport are summed; HELP comes from COUNTERS."""
        registry = MetricsRegistry()
        one, two, tcp = Counters(), Counters(), Counters()
        one.add("udp_replies_sent", 2)
        two.add("udp_replies_sent", 3)
        tcp.add("tcp_connections")
        registry.register("echo", "udp", _Source(one))
        registry.register("echo", "udp", _Source(two))
        registry.register("daytime", "tcp", _Source(tcp))
        text = registry.render()
        found = samples(text)
        self.assertEqual(found[("netproto_replies_sent_total", labels("echo", "udp"))], 5)
        self.assertEqual(found[("netproto_connections_total", labels("daytime", "tcp"))], 1)
        # A TCP counter is not shown for a UDP source, and the reverse.
        self.assertNotIn(("netproto_connections_total", labels("echo", "udp")), found)
        self.assertNotIn(("netproto_replies_sent_total", labels("daytime", "tcp")), found)
        self.assertIn(f"# HELP netproto_replies_sent_total {COUNTERS['udp_replies_sent']}\n", text)
        self.assertIn("# TYPE netproto_replies_sent_total counter\n", text)

    def test_live_gauges(self) -> None:
        """Open connections and tracked sources are read at each scrape."""
        registry = MetricsRegistry()
        factory = EchoFactory(MemoryReactorClock())
        protocol = EchoDatagramProtocol(MemoryReactorClock())
        registry.register("echo", "tcp", factory)
        registry.register("echo", "udp", protocol)
        factory.counters.add("tcp_connections", 4)
        factory.limiter.admit("192.0.2.1")
        protocol.policy.check("192.0.2.7", 5000, 0.0)
        found = samples(registry.render())
        self.assertEqual(found[("netproto_connections_total", labels("echo", "tcp"))], 4)
        self.assertEqual(found[("netproto_connections_open", labels("echo", "tcp"))], 1)
        self.assertEqual(found[("netproto_sources_tracked", labels("echo", "udp"))], 1)
        factory.limiter.admit("192.0.2.2")
        found = samples(registry.render())
        self.assertEqual(found[("netproto_connections_open", labels("echo", "tcp"))], 2)

    def test_process_and_build(self) -> None:
        """process_* of this process, python_info, and netproto_build_info with versions."""
        from twisted import __version__ as twisted_version

        found = samples(MetricsRegistry().render())
        self.assertGreater(found[("process_resident_memory_bytes", ())], 0)
        self.assertGreater(found[("process_open_fds", ())], 2)
        self.assertIn(("process_cpu_seconds_total", ()), found)
        build = [key for key in found if key[0] == "netproto_build_info"]
        self.assertEqual(len(build), 1)
        self.assertEqual(dict(build[0][1])["version"], netproto.__version__)
        self.assertEqual(dict(build[0][1])["twisted"], twisted_version)

    def test_no_global_registry(self) -> None:
        """Two registries do not clash, and the library's global one gets nothing."""
        MetricsRegistry()
        MetricsRegistry()
        text = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
        self.assertNotIn("netproto_", text)

    def test_openmetrics_negotiated(self) -> None:
        """``Accept: application/openmetrics-text`` gets OpenMetrics, ``# EOF`` last."""
        registry = MetricsRegistry()
        source = Counters()
        source.add("tcp_bytes_sent", 7)
        registry.register("echo", "tcp", _Source(source))
        body, content_type = registry.exposition("application/openmetrics-text; version=1.0.0")
        self.assertTrue(content_type.startswith("application/openmetrics-text"), content_type)
        text = body.decode()
        self.assertTrue(text.endswith("# EOF\n"))
        found = samples(text, parse_openmetrics)
        self.assertEqual(found[("netproto_bytes_sent_total", labels("echo", "tcp"))], 7)
        plain, plain_type = registry.exposition(None)
        self.assertTrue(plain_type.startswith("text/plain"), plain_type)
        self.assertNotIn(b"# EOF", plain)


class ResourceTests(SynchronousTestCase):
    """The HTTP resource: /metrics, content negotiation, HEAD, 404."""

    def request(self, path: bytes, method: bytes = b"GET", accept: bytes | None = None) -> Any:
        site = metrics_site(MetricsRegistry())
        request = DummyRequest(path.lstrip(b"/").split(b"/"))
        request.path = path
        request.method = method
        if accept is not None:
            request.requestHeaders.setRawHeaders(b"accept", [accept])
        resource = site.getResourceFor(request)
        body = resource.render(request)
        return request, body

    def test_get(self) -> None:
        """GET /metrics: the text format, parseable."""
        request, body = self.request(b"/metrics")
        (content_type,) = request.responseHeaders.getRawHeaders(b"content-type")
        self.assertTrue(content_type.startswith(b"text/plain; version=0.0.4"), content_type)
        self.assertIn(("process_open_fds", ()), samples(body.decode()))

    def test_openmetrics(self) -> None:
        """Prometheus's own Accept header gets OpenMetrics."""
        accept = (
            b"application/openmetrics-text;version=1.0.0;q=0.5,"
            b"application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3"
        )
        request, body = self.request(b"/metrics", accept=accept)
        (content_type,) = request.responseHeaders.getRawHeaders(b"content-type")
        self.assertTrue(content_type.startswith(b"application/openmetrics-text"), content_type)
        samples(body.decode(), parse_openmetrics)

    def test_head(self) -> None:
        """HEAD: no body, the GET's length."""
        request, body = self.request(b"/metrics", method=b"HEAD")
        self.assertEqual(body, b"")
        (length,) = request.responseHeaders.getRawHeaders(b"content-length")
        self.assertGreater(int(length), 100)

    def test_not_found(self) -> None:
        """Another path: 404 with a hint."""
        request, body = self.request(b"/other")
        self.assertEqual((request.responseCode, body), (404, b"not found: try /metrics\n"))


class LiveTests(SynchronousTestCase):
    """``twistd netproto --metrics``, scraped over loopback as Prometheus would."""

    def setUp(self) -> None:
        if TWISTD is None:
            self.skipTest("twistd is not installed")

    def test_scrape(self) -> None:
        """
        The endpoint parses with prometheus_client's parsers in both formats,
        counts the traffic sent, and carries the server process's metrics.
        """
        echo, metrics = free_port(), free_port()
        server = Twistd(f"--echo={echo}", f"--metrics={metrics}", listeners=5)
        self.addCleanup(server.stop)
        tcp_exchange("127.0.0.1", echo, b"12345")
        udp_exchange("::1", echo, b"123")
        url = f"http://127.0.0.1:{metrics}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        found = samples(text)
        self.assertGreaterEqual(found[("netproto_bytes_received_total", labels("echo", "tcp"))], 5)
        self.assertGreaterEqual(found[("netproto_bytes_received_total", labels("echo", "udp"))], 3)
        self.assertGreater(found[("process_resident_memory_bytes", ())], 10_000_000)
        self.assertGreater(found[("process_start_time_seconds", ())], 0)
        request = urllib.request.Request(
            url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            content_type = response.headers["content-type"]
            body = response.read().decode()
        self.assertTrue(content_type.startswith("application/openmetrics-text"), content_type)
        found = samples(body, parse_openmetrics)
        self.assertTrue(any(name == "netproto_build_info" for name, _ in found))
        self.assertFalse(re.search(r"Warning|Traceback", server.text()), server.text())
