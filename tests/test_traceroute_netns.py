"""
``netproto traceroute`` across network namespaces the tests create: a chain
of three routers with forwarding on between a client and a target (IPv4 and
IPv6), routes that fail on purpose, a router that answers nothing, an
unprivileged user, Debian's ``traceroute`` and ``tracepath`` run on the same
chain, and a namespace that forges ICMP errors. Nothing is sent outside the
namespaces; each group of runs builds its own and deletes them at the end.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests._helpers import tool_skip_reason
from tests._traceroute_netns import (
    Namespaces,
    build_chain,
    build_forged,
    netproto,
    normalized,
    remove_stale,
    start_forger,
    stop_forger,
    tracepath_hops,
    traceroute_hops,
    warm_up,
)
from tests.test_ping_netns import netns_skip_reason as ping_netns_skip_reason

ROUTERS = {4: ["10.17.1.2", "10.17.2.2", "10.17.3.2"], 6: ["fd17:1::2", "fd17:2::2", "fd17:3::2"]}
TARGET = {4: "10.17.4.2", 6: "fd17:4::2"}
NOBODY = 65534
WAIT = ("-w", "5,0,0")
"""traceroute(8)'s adaptive waits (HERE, NEAR) off, for both tools: these tests are about
what answers, and on a loaded machine a late answer would otherwise be a star, for either."""
# Destinations whose last router answers with a mark, and the source each run uses (Linux
# rate-limits route errors per source address, so no two runs share one).
MARKS = [
    ("x4", "10.18.7.1", "!X", 3),
    ("h4", "10.18.8.1", "!H", 3),
    ("n4", "10.18.9.1", "!N", 3),
    ("neighbour4", "10.17.4.99", "!H", 4),
    ("x6", "fd18:7::1", "!X", 3),
    ("n6", "fd18:8::1", "!N", 3),
    ("noroute6", "fd18:9::1", "!N", 3),
    ("neighbour6", "fd17:4::99", "!H", 4),
]
HOSTS = "".join(
    f"{address} r{n}.chain.test\n"
    for version in (4, 6)
    for n, address in enumerate(ROUTERS[version], start=1)
)


def netns_skip_reason() -> str | None:
    """Why these tests cannot run here, or None."""
    reason = ping_netns_skip_reason()
    if reason:
        return reason
    for tool in ("sysctl", "ping"):
        reason = tool_skip_reason(tool)
        if reason:
            return reason
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False)
    if probe.returncode != 0:
        return "ip netns is not usable here"
    return None


def _result(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return {"rc": completed.returncode, "out": completed.stdout, "err": completed.stderr}


def _sources() -> Any:
    """Client addresses of the chain, one per run that needs its own."""
    return iter(f"10.17.1.{n}" for n in range(11, 41))


Run = tuple[str, list[str], "int | None"]


def _chain_runs() -> list[list[Run]]:
    """What runs on the chain, in phases (each phase's runs side by side)."""
    have_traceroute = tool_skip_reason("traceroute") is None
    have_tracepath = tool_skip_reason("tracepath") is None
    normal: list[Run] = []
    for version in (4, 6):
        target = TARGET[version]
        normal += [
            (f"udp{version}", netproto("traceroute", *WAIT, "--json", "-n", target), None),
            (f"icmp{version}", netproto("traceroute", *WAIT, "--json", "-n", "-I", target), None),
            (f"paris{version}", netproto("traceroute", *WAIT, "--json", "-n", "-U", target), None),
            (
                f"dgram{version}",
                netproto("traceroute", *WAIT, "--json", "-n", "--socket=dgram", target),
                None,
            ),
            (f"names{version}", netproto("traceroute", *WAIT, target), None),
        ]
        for flags, label in ((), "text"), (("-I",), "icmp_text"), (("-U",), "paris_text"):
            normal.append(
                (f"{label}{version}", netproto("traceroute", *WAIT, "-n", *flags, target), None)
            )
            if have_traceroute:
                normal.append(
                    (f"peer_{label}{version}", ["traceroute", *WAIT, "-n", *flags, target], None)
                )
        if have_traceroute:
            normal.append((f"peer_names{version}", ["traceroute", *WAIT, target], None))
        if have_tracepath:
            normal.append((f"tracepath{version}", ["tracepath", "-n", target], None))
    sources = _sources()
    for name, destination, _, _ in MARKS:
        six = ":" in destination
        for kind, tool in (("mark", netproto("traceroute")), ("peer_mark", ["traceroute"])):
            if kind == "peer_mark" and not have_traceroute:
                continue
            source = "fd17:1::1" if six else next(sources)
            normal.append(
                (f"{kind}_{name}", [*tool, "-n", "-w", "1,0,0", "-s", source, destination], None)
            )
        source = "fd17:1::1" if six else next(sources)
        normal.append(
            (
                f"mark_json_{name}",
                netproto("traceroute", "--json", "-n", "-w", "1,0,0", "-s", source, destination),
                None,
            )
        )
    silent: list[Run] = []
    unprivileged: list[Run] = []
    for version in (4, 6):
        target = TARGET[version]
        silent += [
            (
                f"silent{version}",
                netproto("traceroute", "--json", "-n", "-w", "0.5,0,0", target),
                None,
            ),
            (f"silent_text{version}", netproto("traceroute", "-n", "-w", "0.5,0,0", target), None),
        ]
        if have_traceroute:
            silent.append(
                (f"peer_silent_text{version}", ["traceroute", "-n", "-w", "0.5,0,0", target], None)
            )
        unprivileged += [
            (f"user_udp{version}", netproto("traceroute", *WAIT, "--json", "-n", target), NOBODY),
            (
                f"user_icmp{version}",
                netproto("traceroute", *WAIT, "--json", "-n", "-I", target),
                NOBODY,
            ),
        ]
    unprivileged.append(
        ("user_raw", netproto("traceroute", *WAIT, "-n", "--socket=raw", TARGET[4]), NOBODY)
    )
    closed: list[Run] = [
        ("user_icmp_closed", netproto("traceroute", *WAIT, "-n", "-I", TARGET[4]), NOBODY),
        ("user_udp_closed", netproto("traceroute", *WAIT, "-n", TARGET[4]), NOBODY),
    ]
    return [normal, silent, unprivileged, closed]


@cache
def chain_outcome() -> dict[str, dict[str, Any]]:
    """Every run on the chain, once: exit status and output by name."""
    remove_stale()
    spaces = Namespaces()
    runs: dict[str, dict[str, Any]] = {}
    try:
        roles = build_chain(spaces)
        client = roles["c"]
        spaces.etc(client, "hosts", HOSTS)
        # Names not in that file go to a DNS server on the namespace's own loopback (none).
        spaces.etc(client, "resolv.conf", "nameserver 127.0.0.1\n")
        warm_up(spaces, client)

        def run(item: Run) -> tuple[str, dict[str, Any]]:
            name, argv, user = item
            return name, _result(spaces.run(client, *argv, user=user))

        normal, silent, unprivileged, closed = _chain_runs()
        with ThreadPoolExecutor(max_workers=4) as pool:
            runs.update(pool.map(run, normal))
            # r2 gives up answering: its hop must be all stars, the rest of the path intact.
            quiet = {"net.ipv4.icmp_ratelimit": 1000000, "net.ipv6.icmp.ratelimit": 1000000}
            spaces.sysctl(roles["r2"], **quiet)
            runs.update(pool.map(run, silent))
            spaces.sysctl(roles["r2"], **{key: 0 for key in quiet})
            # A user without privileges: UDP always, ICMP while ping_group_range admits it.
            runs.update(pool.map(run, unprivileged))
            spaces.sysctl(client, **{"net.ipv4.ping_group_range": "1 0"})
            runs.update(pool.map(run, closed))
    finally:
        spaces.close()
    return runs


FORGED_RUNS = {
    f"{method}_{mode}_{version}": ((*flags, f"--socket={mode}"), target)
    for method, flags in (("udp", ()), ("paris", ("-U",)), ("icmp", ("-I",)))
    for mode in ("raw", "dgram")
    for version, target in ((4, "10.19.9.9"), (6, "fd19:9::9"))
}
FORGED_RUNS["protocol_4"] = ((), "10.19.8.8")
FORGED_RUNS["protocol_6"] = ((), "fd19:8::8")


@cache
def forged_outcome() -> dict[str, Any]:
    """Every trace through the forger's namespace, run side by side, and the forger's counts."""
    remove_stale()
    spaces = Namespaces()
    try:
        roles, interface = build_forged(spaces)
        forger = start_forger(spaces, roles["ff"], interface)
        try:

            def run(item: tuple[str, tuple[tuple[str, ...], str]]) -> tuple[str, dict[str, Any]]:
                name, (flags, target) = item
                argv = netproto(
                    "traceroute", "--json", "-n", "-w", "3,0,0", "-m", "6", *flags, target
                )
                return name, _result(spaces.run(roles["fc"], *argv))

            # Side by side, so that each raw socket also sees the others' answers (foreign
            # errors); half at a time, so that every process keeps up with the flood.
            with ThreadPoolExecutor(max_workers=len(FORGED_RUNS) // 2) as pool:
                runs = dict(pool.map(run, FORGED_RUNS.items()))
        finally:
            runs["forger"] = stop_forger(forger)
    finally:
        spaces.close()
    return runs


def records(run: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The hop objects and the summary of a ``--json`` run."""
    lines = [json.loads(line) for line in run["out"].splitlines()]
    return [r for r in lines if not r.get("summary")], lines[-1]


def addresses(hops: list[dict[str, Any]]) -> list[list[str | None]]:
    """Each hop's probes as their responders (None for ``*``)."""
    return [[p and p["address"] for p in hop["probes"]] for hop in hops]


def path(version: int) -> list[list[str | None]]:
    """The chain as every probe of every hop should see it."""
    return [[a] * 3 for a in [*ROUTERS[version], TARGET[version]]]


class ChainTests(SynchronousTestCase):
    """Traces across the chain: every hop, both families, every method."""

    skip = netns_skip_reason()

    def check_path(self, name: str, version: int, socket: str, method: str) -> None:
        run = chain_outcome()[name]
        self.assertEqual(run["rc"], 0, run["err"])
        hops, summary = records(run)
        self.assertEqual(addresses(hops), path(version))
        self.assertEqual([h["ttl"] for h in hops], [1, 2, 3, 4])
        self.assertEqual([h["reached"] for h in hops], [False, False, False, True])
        self.assertEqual(
            (summary["reached"], summary["hops"], summary["socket"], summary["method"]),
            (True, 4, socket, method),
        )

    def test_udp_every_hop(self) -> None:
        """UDP probes (raw socket, as root) find r1, r2, r3 and the target, IPv4 and IPv6."""
        for version in (4, 6):
            self.check_path(f"udp{version}", version, "raw", "udp")

    def test_udp_error_queue(self) -> None:
        """The unprivileged way (the UDP socket's error queue) finds the same path."""
        for version in (4, 6):
            self.check_path(f"dgram{version}", version, "dgram", "udp")

    def test_icmp_every_hop(self) -> None:
        """ICMP echo probes (-I) find the same path; the target's echo reply ends it."""
        for version in (4, 6):
            self.check_path(f"icmp{version}", version, "raw", "icmp")
            hops, _ = records(chain_outcome()[f"icmp{version}"])
            self.assertEqual(hops[-1]["probes"][0]["icmp_type"], 0 if version == 4 else 129)

    def test_constant_flow_every_hop(self) -> None:
        """A constant flow (-U, port 53) finds the same path."""
        for version in (4, 6):
            self.check_path(f"paris{version}", version, "raw", "paris")

    def test_names(self) -> None:
        """Without -n, responders are shown by name when they have one, as traceroute(8) shows."""
        for version in (4, 6):
            run = chain_outcome()[f"names{version}"]
            lines = normalized(run["out"])
            self.assertEqual(
                lines[1], f" 1  r1.chain.test ({ROUTERS[version][0]})  T ms  T ms  T ms"
            )
            self.assertEqual(
                lines[4], f" 4  {TARGET[version]} ({TARGET[version]})  T ms  T ms  T ms"
            )


class PeerTests(SynchronousTestCase):
    """Debian's traceroute and tracepath on the same chain agree with netproto."""

    skip = netns_skip_reason() or tool_skip_reason("traceroute")

    def test_same_output_as_traceroute(self) -> None:
        """UDP, ICMP and constant-flow traces print what traceroute(8) prints, times aside."""
        outcome = chain_outcome()
        for version in (4, 6):
            for label in ("text", "icmp_text", "paris_text", "names"):
                ours, theirs = outcome[f"{label}{version}"], outcome[f"peer_{label}{version}"]
                self.assertEqual(ours["rc"], 0, ours["err"])
                self.assertEqual(normalized(ours["out"]), normalized(theirs["out"]), label)
                self.assertEqual(len(normalized(ours["out"])), 5)

    def test_same_hops_as_tracepath(self) -> None:
        """tracepath finds the same responder at every hop."""
        reason = tool_skip_reason("tracepath")
        if reason:
            raise self.skipTest(reason)
        for version in (4, 6):
            hops, _ = records(chain_outcome()[f"udp{version}"])
            ours = {h["ttl"]: {r["address"] for r in h["responders"]} for h in hops}
            self.assertEqual(tracepath_hops(chain_outcome()[f"tracepath{version}"]["out"]), ours)

    def test_same_marks_as_traceroute(self) -> None:
        """Prohibited, unreachable, unrouted, neighbourless: the same line, mark and all."""
        outcome = chain_outcome()
        for name, _, mark, _ in MARKS:
            ours, theirs = outcome[f"mark_{name}"], outcome[f"peer_mark_{name}"]
            self.assertEqual(normalized(ours["out"]), normalized(theirs["out"]), name)
            self.assertIn(mark, ours["out"])

    def test_same_stars_as_traceroute(self) -> None:
        """A router that answers nothing is * * * in both."""
        outcome = chain_outcome()
        for version in (4, 6):
            ours = normalized(outcome[f"silent_text{version}"]["out"])
            theirs = normalized(outcome[f"peer_silent_text{version}"]["out"])
            self.assertEqual(ours, theirs)
            self.assertEqual(ours[2], " 2  * * *")
            self.assertEqual(traceroute_hops("\n".join(ours))[3], [ROUTERS[version][2]])


class MarkTests(SynchronousTestCase):
    """Unreachable answers: the mark, the hop it ends at, the exit status."""

    skip = netns_skip_reason()

    def test_marks(self) -> None:
        """Each failing route ends the trace at its router with its mark; exit status 1."""
        for name, _, mark, last in MARKS:
            run = chain_outcome()[f"mark_json_{name}"]
            self.assertEqual(run["rc"], 1, name)
            hops, summary = records(run)
            self.assertEqual(len(hops), last, name)
            self.assertEqual(hops[-1]["marks"], [mark], name)
            self.assertEqual([p["mark"] for p in hops[-1]["probes"]], [mark] * 3, name)
            self.assertFalse(summary["reached"], name)

    def test_silent_router(self) -> None:
        """A router that rate-limits ICMP to nothing: * for its probes, the trace goes on."""
        for version in (4, 6):
            run = chain_outcome()[f"silent{version}"]
            self.assertEqual(run["rc"], 0, run["err"])
            hops, summary = records(run)
            expected = path(version)
            expected[1] = [None, None, None]
            self.assertEqual(addresses(hops), expected)
            self.assertEqual(hops[1]["responders"], [])
            self.assertTrue(summary["reached"])


class UnprivilegedTests(SynchronousTestCase):
    """A user without privileges (uid 65534, no capabilities) inside the chain's client."""

    skip = netns_skip_reason()

    def test_udp_without_privileges(self) -> None:
        """UDP probes read from the socket's error queue: the full path, socket dgram."""
        for version in (4, 6):
            run = chain_outcome()[f"user_udp{version}"]
            self.assertEqual(run["rc"], 0, run["err"])
            hops, summary = records(run)
            self.assertEqual(addresses(hops), path(version))
            self.assertEqual(summary["socket"], "dgram")

    def test_icmp_through_ping_sockets(self) -> None:
        """-I through a ping socket (ping_group_range admits the user): the full path."""
        for version in (4, 6):
            run = chain_outcome()[f"user_icmp{version}"]
            self.assertEqual(run["rc"], 0, run["err"])
            hops, summary = records(run)
            self.assertEqual(addresses(hops), path(version))
            self.assertEqual((summary["socket"], summary["method"]), ("dgram", "icmp"))

    def test_raw_refused_in_one_line(self) -> None:
        """--socket raw without CAP_NET_RAW: one line saying what to do, exit 1."""
        run = chain_outcome()["user_raw"]
        self.assertEqual(run["rc"], 1)
        self.assertEqual(len(run["err"].splitlines()), 1, run["err"])
        self.assertIn("CAP_NET_RAW", run["err"])
        self.assertIn("--socket dgram", run["err"])

    def test_no_icmp_socket_explained(self) -> None:
        """-I with ping_group_range closed: one line naming the sysctl and UDP; UDP still works."""
        closed = chain_outcome()["user_icmp_closed"]
        self.assertEqual(closed["rc"], 1)
        lines = closed["err"].splitlines()
        self.assertEqual(len(lines), 1, closed["err"])
        self.assertTrue(lines[0].startswith("netproto traceroute: cannot open an ICMP socket"))
        self.assertIn("net.ipv4.ping_group_range", lines[0])
        self.assertIn("UDP probes", lines[0])
        self.assertNotIn("Traceback", closed["err"])
        udp = chain_outcome()["user_udp_closed"]
        self.assertEqual(udp["rc"], 0, udp["err"])
        self.assertEqual(len(udp["out"].splitlines()), 5)


class ForgedTests(SynchronousTestCase):
    """
    ICMP errors forged next to the client, each wrong in one thing (ports,
    identifier, sequence, quoted destination, cookie, protocol, checksum, a
    short quote), before the true answer: only true answers are shown.
    """

    skip = netns_skip_reason()

    def test_forgeries_never_shown(self) -> None:
        """Every method and socket, both families: the true path, forgeries ignored."""
        outcome = forged_outcome()
        for name in FORGED_RUNS:
            if name.startswith("protocol"):
                continue
            run = outcome[name]
            self.assertEqual(run["rc"], 0, f"{name}: {run['err']}")
            hops, summary = records(run)
            six = name.endswith("_6")
            routers = ["fd19:1::1", None, "fd19:3::1", "fd19:9::9"]
            if not six:
                routers = ["10.19.1.1", None, "10.19.3.1", "10.19.9.9"]
            self.assertEqual(addresses(hops), [[a] * 3 for a in routers], name)
            self.assertTrue(summary["reached"], name)
            self.assertGreater(summary["ignored"], 0, name)

    def test_forger_sent_them(self) -> None:
        """The forger saw the probes and sent more forgeries than true answers."""
        counts = forged_outcome()["forger"]
        self.assertGreater(counts["seen"], 0)
        self.assertGreater(counts["forged"], 5 * counts["true"])

    def test_protocol_unreachable(self) -> None:
        """A destination answering protocol unreachable: !P (IPv4), !<4-1> (ICMPv6), exit 1."""
        for name, mark in (("protocol_4", "!P"), ("protocol_6", "!<4-1>")):
            run = forged_outcome()[name]
            self.assertEqual(run["rc"], 1, run["err"])
            hops, summary = records(run)
            self.assertEqual(len(hops), 4)
            self.assertEqual(hops[-1]["marks"], [mark])
            self.assertFalse(summary["reached"])
