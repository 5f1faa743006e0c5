"""
What a fresh ``netproto`` process loads before its command runs: the
commands that never use TLS (ping, fping, traceroute) start without
pyOpenSSL, and Twisted's reactor still runs so.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from twisted.trial.unittest import SynchronousTestCase

from netproto.cli._main import without_tls
from tests._helpers import ping_skip_reason

_LOADED = textwrap.dedent(
    """
    import atexit, sys

    def loaded():
        names = ("OpenSSL", "cryptography", "twisted.internet.reactor")
        print(" ".join(f"{n}={sys.modules.get(n) is not None}" for n in names))

    atexit.register(loaded)
    sys.argv = ["netproto", *sys.argv[1:]]
    from netproto.__main__ import main

    main()
    """
)


def _fresh(*args: str) -> tuple[int, str]:
    """Run ``netproto ARGS`` as the console script does, in a new process: (status, stdout)."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout


class StartupTests(SynchronousTestCase):
    """The modules a command's own process loads."""

    def test_ping_without_openssl(self) -> None:
        """``netproto ping -c 1 127.0.0.1`` runs its reactor and never imports pyOpenSSL."""
        if ping_skip_reason():
            raise self.skipTest(ping_skip_reason())
        status, out = _fresh("ping", "-q", "-c", "1", "127.0.0.1")
        self.assertEqual(status, 0, out)
        self.assertIn("1 received", out)
        self.assertIn("OpenSSL=False cryptography=False twisted.internet.reactor=True", out)

    def test_fping_without_openssl(self) -> None:
        """``netproto fping`` to a few loopback hosts never imports pyOpenSSL either."""
        if ping_skip_reason():
            raise self.skipTest(ping_skip_reason())
        status, out = _fresh("fping", "-q", "-r", "0", "-g", "127.0.0.0/30")
        self.assertEqual(status, 0, out)
        self.assertIn("OpenSSL=False cryptography=False", out)

    def test_reactor_runs_without_openssl(self) -> None:
        """
        Canary for what :func:`without_tls` relies on: with pyOpenSSL's import
        failing, Twisted's reactor imports and carries a TCP connection on
        loopback (its TLS imports are guarded).
        """
        script = textwrap.dedent(
            """
            import sys
            sys.modules["OpenSSL"] = None
            from twisted.internet import protocol, reactor

            class Hello(protocol.Protocol):
                def connectionMade(self):
                    self.transport.write(b"hi")
                    self.transport.loseConnection()

            class Read(protocol.Protocol):
                def dataReceived(self, data):
                    print(data.decode())
                    reactor.stop()

            server = protocol.ServerFactory.forProtocol(Hello)
            port = reactor.listenTCP(0, server, interface="127.0.0.1")
            client = protocol.ClientFactory.forProtocol(Read)
            reactor.connectTCP("127.0.0.1", port.getHost().port, client)
            reactor.callLater(10, reactor.stop)
            reactor.run()
            print("OpenSSL loaded:", sys.modules.get("OpenSSL") is not None)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.split("\n")[:2], ["hi", "OpenSSL loaded: False"])

    def test_no_effect_once_the_reactor_is_loaded(self) -> None:
        """In a process that already has Twisted's TCP (this one), nothing is blocked."""
        before = sys.modules.get("OpenSSL", "absent")
        without_tls()
        self.assertIs(sys.modules.get("OpenSSL", "absent"), before)
