"""
The plugin's promises under attack, on fakes: bind errors that name their
remedy, deadlines that fire on time, fds fitted to the limit, metrics bounds.
The attacks themselves, on real sockets, are in ``test_tap_attacks_live.py``.
"""

from __future__ import annotations

import errno

from twisted.internet.error import CannotListenError
from twisted.trial.unittest import SynchronousTestCase

from netproto._listen._bound import PRIVILEGED_PORT_REMEDY, describe_bind_error


class BindErrorTests(SynchronousTestCase):
    """A refused bind says what fixes it."""

    def test_privileged_port_names_remedy(self) -> None:
        """EACCES on a port number: the reason, then --uid/--gid, CAP_NET_BIND_SERVICE, sockets."""
        exc = CannotListenError("", 7, OSError(errno.EACCES, "Permission denied"))
        text = describe_bind_error(exc)
        self.assertEqual(text, f"permission denied ({PRIVILEGED_PORT_REMEDY})")
        for remedy in ("--uid/--gid", "CAP_NET_BIND_SERVICE", "socket activation"):
            self.assertIn(remedy, text)
        self.assertNotIn("\n", text)

    def test_other_errors_unchanged(self) -> None:
        """'Address in use' and a UNIX path refused by file permissions get no port remedy."""
        in_use = CannotListenError("", 7, OSError(errno.EADDRINUSE, "in use"))
        self.assertEqual(describe_bind_error(in_use), "address already in use")
        path = CannotListenError(None, "/run/x.sock", OSError(errno.EACCES, "Permission denied"))
        self.assertEqual(describe_bind_error(path), "permission denied")


class BacklogTests(SynchronousTestCase):
    """:mod:`netproto._listen._backlog`."""

    def test_with_backlog(self) -> None:
        """backlog= is added to tcp/tcp6/ssl/unix descriptions without one, nothing else."""
        from netproto._listen._backlog import with_backlog

        self.assertEqual(with_backlog("tcp:7", 9), "tcp:7:backlog=9")
        self.assertEqual(
            with_backlog("tcp6:7:interface=\\:\\:1", 9), "tcp6:7:interface=\\:\\:1:backlog=9"
        )
        self.assertEqual(with_backlog("unix:/run/e.sock", 9), "unix:/run/e.sock:backlog=9")
        self.assertEqual(with_backlog("tcp:7:backlog=3", 9), "tcp:7:backlog=3")
        self.assertEqual(
            with_backlog("systemd:domain=INET:index=0", 9), "systemd:domain=INET:index=0"
        )
        # An escaped colon is part of a value, not a field separator.
        self.assertEqual(with_backlog("unix:/x\\:backlog=1", 9), "unix:/x\\:backlog=1:backlog=9")

    def test_effective_backlog(self) -> None:
        """Clamped to the system maximum; 0 asks for it."""
        from netproto._listen._backlog import effective_backlog

        self.assertEqual(effective_backlog(1024, 4096), 1024)
        self.assertEqual(effective_backlog(9000, 4096), 4096)
        self.assertEqual(effective_backlog(0, 4096), 4096)

    def test_system_maximum_unreadable(self) -> None:
        """Without /proc, the kernel default (4096) is assumed."""
        from netproto._listen._backlog import system_maximum

        self.assertEqual(system_maximum("/nonexistent/somaxconn"), 4096)


class MetricsIdleTests(SynchronousTestCase):
    """A metrics connection without a request is closed after METRICS_IDLE_TIMEOUT."""

    def test_idle_closed(self) -> None:
        """Closed by the idle timeout, not before; the cap counts it out again."""
        from twisted.internet.address import IPv4Address
        from twisted.internet.task import Clock
        from twisted.internet.testing import StringTransport

        from netproto._listen._capped import METRICS_IDLE_TIMEOUT, bound_metrics
        from netproto._listen._metrics import MetricsRegistry, metrics_site

        clock = Clock()
        factory = bound_metrics(metrics_site(MetricsRegistry()), clock)
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(len(factory.protocols), 1)
        clock.advance(METRICS_IDLE_TIMEOUT - 0.1)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.2)
        self.assertTrue(transport.disconnecting)


class FitDescriptorsTests(SynchronousTestCase):
    """The caps fitted to ``RLIMIT_NOFILE`` at start."""

    def fit(self, soft: int, hard: int, *specs: str, settable: bool = True, **limits: int):  # type: ignore[no-untyped-def]
        from netproto._listen import parse_service_spec
        from netproto._listen._fds import fit_descriptors
        from netproto.limits import Limits

        listeners = [x for spec in specs for x in parse_service_spec(*spec.split("=", 1))]
        calls: list[tuple[int, int]] = []

        def setrlimit(kind: int, values: tuple[int, int]) -> None:
            if not settable:
                raise ValueError("not allowed")
            calls.append(values)

        result = fit_descriptors(Limits(**limits), listeners, lambda kind: (soft, hard), setrlimit)
        return result, calls

    def test_fits(self) -> None:
        """Caps that fit leave the limit and the caps alone."""
        fit, calls = self.fit(100000, 100000, "echo=7")
        self.assertEqual((fit.limits.max_connections, fit.raised_from, calls), (4096, None, []))

    def test_soft_raised(self) -> None:
        """A soft limit of 1024 under a hard one of 1M is raised just far enough."""
        from netproto._listen import parse_service_spec
        from netproto._listen._fds import descriptors_needed

        fit, calls = self.fit(1024, 1 << 20, "echo=7", "daytime=13")
        self.assertEqual(fit.limits.max_connections, 4096)
        self.assertEqual(fit.raised_from, 1024)
        self.assertEqual(calls, [(fit.soft, 1 << 20)])
        listeners = parse_service_spec("echo", "7") + parse_service_spec("daytime", "13")
        self.assertEqual(fit.soft, descriptors_needed(fit.limits, listeners))
        self.assertGreaterEqual(fit.soft, 2 * 4096)

    def test_clamped(self) -> None:
        """1024 hard: max-connections lowered so both services fit, with fds to spare."""
        from netproto._listen._fds import RESERVED_FDS

        fit, _ = self.fit(1024, 1024, "echo=7", "daytime=13")
        self.assertEqual(fit.lowered_from, 4096)
        self.assertLessEqual(2 * fit.limits.max_connections + RESERVED_FDS + 8 * 2, 1024)
        self.assertGreater(fit.limits.max_connections, 400)

    def test_not_allowed(self) -> None:
        """If raising fails, the caps are lowered to the soft limit instead."""
        fit, _ = self.fit(256, 4096, "echo=7", settable=False)
        self.assertIsNone(fit.raised_from)
        self.assertEqual(fit.soft, 256)
        self.assertLess(fit.limits.max_connections, 256)

    def test_unlimited_kept(self) -> None:
        """--max-connections=0 asks for the hard limit and stays unlimited."""
        fit, calls = self.fit(1024, 8192, "echo=7", max_connections=0)
        self.assertEqual((fit.limits.max_connections, calls), (0, [(8192, 8192)]))

    def test_udp_only(self) -> None:
        """UDP listeners hold no connections: nothing to fit."""
        fit, calls = self.fit(64, 64, "echo=udp:7", max_connections=4096)
        self.assertEqual((fit.limits.max_connections, calls), (4096, []))


class GuardAcceptsTests(SynchronousTestCase):
    """The canary of ``_twisted.guard_accepts``: Twisted's accept loop still takes EAGAIN."""

    def test_emfile_becomes_one_callback(self) -> None:
        """EMFILE on accept: the callback, no log event, no reserved-fd recovery."""
        from twisted.internet import reactor
        from twisted.internet.protocol import Factory, Protocol
        from twisted.logger import globalLogPublisher

        from netproto._twisted import guard_accepts

        class Exhausted:
            def __init__(self, real: object) -> None:
                self.real = real

            def accept(self) -> None:
                raise OSError(errno.EMFILE, "Too many open files")

            def __getattr__(self, name: str) -> object:
                return getattr(self.real, name)

        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        port.socket = Exhausted(port.socket)
        seen: list[int] = []
        accepted: list[int] = []
        self.assertTrue(guard_accepts(port, seen.append, lambda: accepted.append(1)))
        events: list[dict[str, object]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        port.doRead()
        port.doRead()
        self.assertEqual(seen, [errno.EMFILE, errno.EMFILE])
        self.assertEqual((events, accepted), ([], []))

    def test_other_ports_refused(self) -> None:
        """Anything but a Twisted TCP/UNIX port is left alone."""
        from netproto._twisted import guard_accepts

        self.assertFalse(guard_accepts(object(), lambda e: None, lambda: None))
