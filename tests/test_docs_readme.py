"""README.md: its first command serves this machine only, and works as shown."""

from __future__ import annotations

import re
import shlex
import socket
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.test_tap_live import CTIME, Twistd, _skip, free_port, tcp_exchange, udp_exchange

README = Path(__file__).resolve().parent.parent / "README.md"


def first_command() -> list[str]:
    """The ``twistd ... netproto ...`` words of the README's first shell block."""
    block = re.search(r"```sh\n(.*?)\n```", README.read_text(), re.S)
    assert block is not None
    words = shlex.split(block.group(1))
    return words[words.index("netproto") + 1 :]


class FirstCommandTests(SynchronousTestCase):
    """``Two commands``: the first one a new user copies."""

    def test_loopback_only(self) -> None:
        """Every service the first command asks for is bound to 127.0.0.1, none to every address."""
        specs = first_command()
        self.assertTrue(specs)
        for spec in specs:
            with self.subTest(spec=spec):
                self.assertRegex(spec, r"^--(daytime|echo)=(tcp|udp):\d+:interface=127\.0\.0\.1$")

    def test_works_as_shown(self) -> None:
        """Run with free ports instead of 1200 and 1201: daytime and echo answer, TCP and UDP."""
        reason = _skip()
        if reason:
            self.skipTest(reason)
        ports = {"1200": free_port(), "1201": free_port()}
        specs = [
            re.sub(r":(1200|1201):", lambda m: f":{ports[m.group(1)]}:", s) for s in first_command()
        ]
        server = Twistd(*specs, listeners=len(specs))
        self.addCleanup(server.stop)
        daytime, echo = ports["1200"], ports["1201"]
        with socket.create_connection(("127.0.0.1", daytime), timeout=10) as conn:
            self.assertRegex(conn.recv(100), CTIME)
        self.assertRegex(udp_exchange("127.0.0.1", daytime, b""), CTIME)
        self.assertEqual(tcp_exchange("127.0.0.1", echo, b"hello\n"), b"hello\n")
        self.assertEqual(udp_exchange("127.0.0.1", echo, b"hello"), b"hello")
