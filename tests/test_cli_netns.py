"""
The commands' messages where the network itself fails, inside a network
namespace of the test's own (``unshare -n``, loopback only): nothing leaves
it, and no route leads anywhere else.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.test_ping_netns import in_netns, netns_skip_reason, netproto


def _hosts_sources() -> list[str]:
    """The sources of the ``hosts`` line of /etc/nsswitch.conf (a DNS-only setup is checked)."""
    try:
        with open("/etc/nsswitch.conf") as f:
            for line in f:
                if line.split(":")[0].strip() == "hosts":
                    return line.split(":", 1)[1].split("#")[0].split()
    except OSError:
        pass
    return []


class UnreachableTests(SynchronousTestCase):
    """No route to the server: one line in the system's words, no Twisted text."""

    skip = netns_skip_reason()

    def test_no_route(self) -> None:
        """
        daytime, echo over UDP and head to 10.0.0.2 and 2001:db8::1, which no
        route reaches: "network is unreachable", never "An error occurred while
        connecting", an errno number or a Failure's repr; exit 1 (head: 7,
        curl's "cannot connect").
        """
        commands = [
            ("daytime", "10.0.0.2:13"),
            ("echo", "--udp", "10.0.0.2:7", "x"),
            ("head", "10.0.0.2"),
            ("head", "[2001:db8::1]:8080"),
        ]
        script = " ; ".join(f"{netproto(*c)} ; echo rc=$?" for c in commands)
        result = in_netns(script)
        self.assertEqual(
            result.stderr.splitlines(),
            [
                "netproto daytime: 10.0.0.2:13: cannot connect: network is unreachable",
                "netproto echo: 10.0.0.2:7 (udp): cannot send: network is unreachable",
                "netproto head: cannot connect to 10.0.0.2:80: network is unreachable",
                "netproto head: cannot connect to [2001:db8::1]:8080: network is unreachable",
            ],
        )
        self.assertEqual(result.stdout.split(), ["rc=1", "rc=1", "rc=7", "rc=7"])

    def test_resolver_unreachable(self) -> None:
        """
        A name the hosts file does not list, with the DNS servers of
        resolv.conf out of reach (no route leaves the namespace): "the
        system's DNS servers did not answer", not "no address" (which a name
        that does not exist gets).
        """
        if _hosts_sources() != ["files", "dns"]:
            raise self.skipTest("nsswitch.conf's hosts are not 'files dns'")
        result = in_netns(
            f"{netproto('resolve', 'nosuch.invalid')} ; {netproto('daytime', 'nosuch.invalid')}"
        )
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 2, result.stderr)
        self.assertTrue(
            lines[0].startswith(
                "netproto resolve: nosuch.invalid: the system's DNS servers did not answer ("
            ),
            lines[0],
        )
        self.assertTrue(
            lines[1].startswith(
                "netproto daytime: cannot resolve nosuch.invalid: the system's DNS servers did not"
            ),
            lines[1],
        )
