"""The ``netproto ip``, ``mask`` and ``defaultmask`` commands, run as a user runs them."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from tests._helpers import run_cli


class IpCommandTests(SynchronousTestCase):
    """``netproto ip``."""

    def test_valid_and_invalid(self) -> None:
        """Valid inputs go to stdout in canonical form; invalid ones to stderr; exit 1."""
        result = run_cli("ip", "0:0:0:0:0:0:0:1", "127.001.2.3", "::ffff:7f01:0203")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stdout.splitlines(),
            [
                "0:0:0:0:0:0:0:1 -> ::1 (IPv6)",
                "::ffff:7f01:0203 -> ::ffff:127.1.2.3 (IPv6, IPv4-mapped 127.1.2.3)",
            ],
        )
        self.assertEqual(
            result.stderr.splitlines(),
            [
                "netproto ip: 127.001.2.3: not a valid IPv4 address: "
                "leading zeros are not permitted in '001'"
            ],
        )

    def test_neither_ipv4_nor_ipv6(self) -> None:
        """``netproto ip bogus``: not an IP address at all, not "not a valid IPv4 address"."""
        result = run_cli("ip", "bogus")
        self.assertEqual(
            (result.returncode, result.stderr),
            (1, "netproto ip: bogus: not an IPv4 or IPv6 address\n"),
        )

    def test_all_valid(self) -> None:
        """Exit 0 when every input is valid."""
        result = run_cli("ip", "127.0.0.1")
        self.assertEqual((result.returncode, result.stdout), (0, "127.0.0.1 -> 127.0.0.1 (IPv4)\n"))

    def test_json(self) -> None:
        """--json: one object per input, in input order, with stable keys."""
        result = run_cli("ip", "--json", "1.2.3.4", "1.2..4", "::ffff:127.1.2.3")
        records = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr, "")
        self.assertEqual([r["input"] for r in records], ["1.2.3.4", "1.2..4", "::ffff:127.1.2.3"])
        self.assertEqual([r["valid"] for r in records], [True, False, True])
        self.assertEqual([r["version"] for r in records], [4, None, 6])
        self.assertEqual([r["address"] for r in records], ["1.2.3.4", None, "::ffff:127.1.2.3"])
        self.assertEqual(records[2]["ipv4_mapped"], "127.1.2.3")
        self.assertIn("empty octet", records[1]["error"]["message"])
        self.assertEqual(records[1]["error"]["kind"], "invalid")

    def test_options_between_operands(self) -> None:
        """Options may follow or sit between operands, as with GNU tools."""
        result = run_cli("ip", "1.2.3.4", "--json", "::1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            [json.loads(line)["address"] for line in result.stdout.splitlines()], ["1.2.3.4", "::1"]
        )
        mask = run_cli("mask", "10.1.2.3", "--json", "8", "32")
        self.assertEqual(json.loads(mask.stdout)["network"], "10.0.0.0")

    def test_operands_after_double_dash(self) -> None:
        """After --, arguments starting with - are addresses (and invalid ones)."""
        result = run_cli("ip", "--", "-1.2.3.4")
        self.assertEqual(result.returncode, 1)
        self.assertIn("netproto ip: -1.2.3.4: ", result.stderr)

    def test_control_bytes_escaped(self) -> None:
        """Terminal escapes in an argument are shown escaped, never raw."""
        result = run_cli("ip", "\x1b[31m1.2.3.4")
        self.assertNotIn("\x1b", result.stderr)
        self.assertIn("\\x1b[31m1.2.3.4", result.stderr)

    def test_usage_errors(self) -> None:
        """No argument, an unknown option, or no command: exit 2, one line, no traceback."""
        for args in [("ip",), ("ip", "--frobnicate", "1.2.3.4"), (), ("nosuchcommand",)]:
            with self.subTest(args=args):
                result = run_cli(*args)
                self.assertEqual(result.returncode, 2)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertNotIn("Traceback", result.stderr)


class MaskCommandTests(SynchronousTestCase):
    """``netproto mask`` and ``netproto defaultmask``."""

    def mask_json(self, *args: str) -> dict[str, object]:
        result = run_cli(*args, "--json")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        record: dict[str, object] = json.loads(result.stdout)
        return record

    def test_ipv4_example(self) -> None:
        """103.232.159.187 24 32: mask ffffff00, network 103.232.159.0."""
        record = self.mask_json("mask", "103.232.159.187", "24", "32")
        self.assertEqual(
            {k: record[k] for k in ("address", "ones", "bits", "mask", "network", "host")},
            {
                "address": "103.232.159.187",
                "ones": 24,
                "bits": 32,
                "mask": "ffffff00",
                "network": "103.232.159.0",
                "host": "0.0.0.187",
            },
        )

    def test_ipv6_example(self) -> None:
        """The IPv6 example of the issue, and the ADDR/ONES spelling gives the same."""
        record = self.mask_json("mask", "fda3:97c:1eb:fff0:5444:903a:33f0:3a6b", "52", "128")
        self.assertEqual(record["mask"], "fffffffffffff0000000000000000000")
        self.assertEqual(record["network"], "fda3:97c:1eb:f000::")
        self.assertEqual(self.mask_json("mask", "fda3:97c:1eb:fff0:5444:903a:33f0:3a6b/52"), record)

    def test_human(self) -> None:
        """The human form shows every field on its own line."""
        result = run_cli("mask", "192.168.1.3/16")
        self.assertEqual(result.returncode, 0)
        self.assertIn("network: 192.168.0.0\n", result.stdout)
        self.assertIn("host:    0.0.1.3\n", result.stdout)
        self.assertIn("mask:    ffff0000 (255.255.0.0)\n", result.stdout)

    def test_dotted_and_noncanonical(self) -> None:
        """ADDR/MASK takes a dotted mask; a non-canonical one has size (0, 0)."""
        self.assertEqual(self.mask_json("mask", "10.1.2.3/255.255.254.0")["ones"], 23)
        record = self.mask_json("mask", "192.168.1.3/255.0.255.0")
        self.assertEqual((record["ones"], record["bits"], record["network"]), (0, 0, "192.0.1.0"))

    def test_invalid(self) -> None:
        """Invalid masks and addresses exit 1 with one line; malformed numbers exit 2."""
        for args, status in [
            (("mask", "1.2.3.4", "33", "32"), 1),
            (("mask", "1.2.3.4", "-1", "32"), 1),
            (("mask", "1.2.3.4", "8", "64"), 1),
            (("mask", "1.2.3.4", "8", "128"), 1),
            (("mask", "::1", "8", "32"), 1),
            (("mask", "1.2.3.400", "8", "32"), 1),
            (("mask", "1.2.3.4/40"), 1),
            (("mask", "1.2.3.4/x"), 1),
            (("mask", "1.2.3.4", "x", "32"), 2),
            (("mask", "1.2.3.4"), 2),
            (("mask", "1.2.3.4/8", "8"), 2),
            (("defaultmask", "224.0.0.1"), 1),
            (("defaultmask", "::1"), 1),
            (("defaultmask", "nonsense"), 1),
        ]:
            with self.subTest(args=args):
                result = run_cli(*args)
                self.assertEqual(result.returncode, status, result.stderr)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertEqual(result.stdout, "")

    def test_defaultmask(self) -> None:
        """192.168.1.3: 24 ones, ffffff00, network 192.168.1.0."""
        record = self.mask_json("defaultmask", "192.168.1.3")
        self.assertEqual(
            (record["ones"], record["bits"], record["mask"], record["network"]),
            (24, 32, "ffffff00", "192.168.1.0"),
        )
