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
