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
