"""
Network namespaces for ``tests/test_traceroute_netns.py``: each run creates
its own (``ip netns``, names unique to the process), joins them with veth
pairs and deletes them at the end, whatever happened. Nothing is ever sent
outside them.

The chain: a client, three routers with forwarding on, a target::

    client 10.17.1.1 -- 10.17.1.2 r1 10.17.2.1 -- 10.17.2.2 r2 10.17.3.1 --
        10.17.3.2 r3 10.17.4.1 -- 10.17.4.2 target        (fd17:N::1/2 alike)

Behind r3, routes that fail on purpose: ``10.18.7.0/24`` prohibit (``!X``),
``10.18.8.0/24`` unreachable (``!H``), ``10.18.9.0/24`` no route at all
(``!N``), and the same for ``fd18:7::``, ``fd18:8::``, ``fd18:9::``.
Every node answers ICMP without rate limit, so that runs back to back see
every answer (r2 is made silent for one scenario).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "np17t"

_IP_TIME = re.compile(r"\d+\.\d{3} ms")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> None:
    """Delete namespaces an earlier run of these tests left behind (its process is gone)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in listed.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) >= 3 and parts[0] == PREFIX and parts[1].isdigit():
            if not _alive(int(parts[1])):
                subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
                shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)


class Namespaces:
    """The namespaces of one run; :meth:`close` deletes them (and their /etc/netns files)."""

    def __init__(self) -> None:
        self.tag = f"{PREFIX}-{os.getpid()}-{os.urandom(2).hex()}"
        self.names: list[str] = []
        self._links = 0

    def add(self, role: str) -> str:
        """A new namespace, its loopback up, IPv6 addresses usable at once (no DAD)."""
        name = f"{self.tag}-{role}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.names.append(name)
        self.sysctl(
            name,
            **{
                "net.ipv6.conf.all.accept_dad": 0,
                "net.ipv6.conf.default.accept_dad": 0,
                "net.ipv4.icmp_ratelimit": 0,
                "net.ipv6.icmp.ratelimit": 0,
                "net.ipv4.icmp_msgs_per_sec": 100000,
                "net.ipv4.icmp_msgs_burst": 100000,
            },
        )
        self.ip(name, "link", "set", "dev", "lo", "up")
        return name

    def ip(self, namespace: str, *argv: str) -> None:
        """``ip -n NAMESPACE ARGV``, which must succeed."""
        subprocess.run(["ip", "-n", namespace, *argv], check=True, capture_output=True)

    def sysctl(self, namespace: str, **settings: Any) -> None:
        """Set sysctls (dots in the names) inside *namespace*."""
        words = [f"{key}={value}" for key, value in settings.items()]
        self.run(namespace, "sysctl", "-qw", *words, check=True)

    def link(self, left: str, right: str) -> tuple[str, str]:
        """A veth pair between two namespaces, both ends up; their names."""
        self._links += 1
        stem = f"v{os.getpid() % 10000}{self._links}"
        a, b = f"{stem}a", f"{stem}b"
        peer = ["peer", "name", b, "netns", right]
        subprocess.run(
            ["ip", "link", "add", a, "netns", left, "type", "veth", *peer],
            check=True,
            capture_output=True,
        )
        self.ip(left, "link", "set", "dev", a, "up")
        self.ip(right, "link", "set", "dev", b, "up")
        return a, b

    def etc(self, namespace: str, name: str, text: str) -> None:
        """A file ``ip netns exec`` shows as ``/etc/NAME`` inside *namespace*."""
        directory = Path("/etc/netns") / namespace
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)

    def run(
        self,
        namespace: str,
        *argv: str,
        timeout: float = 30,
        check: bool = False,
        user: int | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run *argv* inside *namespace* (as uid and gid *user* if given, no capabilities)."""
        prefix = ["ip", "netns", "exec", namespace]
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        return subprocess.run(
            [*prefix, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            cwd=ROOT,
        )

    def close(self) -> None:
        """Delete every namespace of this run (their veth pairs go with them)."""
        for name in reversed(self.names):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)
        self.names.clear()


def netproto(*args: str) -> list[str]:
    """The command line running ``netproto ARGS`` with this Python."""
    return [sys.executable, "-m", "netproto", *args]


def build_chain(spaces: Namespaces) -> dict[str, str]:
    """The chain of the module's description; the namespaces by role."""
    roles = {role: spaces.add(role) for role in ("c", "r1", "r2", "r3", "t")}
    order = ["c", "r1", "r2", "r3", "t"]
    client_device = ""
    for n, (left, right) in enumerate(itertools.pairwise(order), start=1):
        a, b = spaces.link(roles[left], roles[right])
        client_device = client_device or a
        spaces.ip(roles[left], "addr", "add", f"10.17.{n}.1/24", "dev", a)
        spaces.ip(roles[right], "addr", "add", f"10.17.{n}.2/24", "dev", b)
        spaces.ip(roles[left], "addr", "add", f"fd17:{n}::1/64", "dev", a, "nodad")
        spaces.ip(roles[right], "addr", "add", f"fd17:{n}::2/64", "dev", b, "nodad")
        if right == "t":
            # A missing neighbour (10.17.4.99, fd17:4::99) fails fast: !H in about 0.2 s.
            for family in ("ipv4", "ipv6"):
                spaces.sysctl(
                    roles[left],
                    **{
                        f"net.{family}.neigh.{a}.retrans_time_ms": 100,
                        f"net.{family}.neigh.{a}.mcast_solicit": 2,
                    },
                )
    for n in range(11, 41):
        # More client addresses: Linux rate-limits route errors per source address.
        spaces.ip(roles["c"], "addr", "add", f"10.17.1.{n}/24", "dev", client_device)
    routes = {
        "c": [("10.17.0.0/16", "10.17.1.2"), ("10.18.0.0/16", "10.17.1.2")],
        "r1": [("10.17.0.0/16", "10.17.2.2"), ("10.18.0.0/16", "10.17.2.2")],
        "r2": [("10.17.1.0/24", "10.17.2.1"), ("10.17.0.0/16", "10.17.3.2")],
        "r3": [("10.17.0.0/16", "10.17.3.1")],
        "t": [("10.17.0.0/16", "10.17.4.1")],
    }
    routes["r2"].append(("10.18.0.0/16", "10.17.3.2"))
    for role, table in routes.items():
        for prefix, via in table:
            spaces.ip(roles[role], "route", "add", prefix, "via", via)
            spaces.ip(roles[role], "-6", "route", "add", _v6(prefix), "via", _v6(via))
    for kind, n in (("prohibit", 7), ("unreachable", 8)):
        spaces.ip(roles["r3"], "route", "add", kind, f"10.18.{n}.0/24")
        spaces.ip(roles["r3"], "-6", "route", "add", kind, f"fd18:{n}::/64")
    for role in ("r1", "r2", "r3"):
        spaces.sysctl(roles[role], **{"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1})
    spaces.sysctl(roles["c"], **{"net.ipv4.ping_group_range": "0 2147483647"})
    return roles


def build_forged(spaces: Namespaces) -> tuple[dict[str, str], str]:
    """
    A client and, next to it, the namespace of the forger: every probe to
    ``10.19.0.0/16`` or ``fd19::/16`` goes there and is dropped (a blackhole
    route), so that all answers are the forger's. The roles, and the forger's
    interface.
    """
    roles = {role: spaces.add(role) for role in ("fc", "ff")}
    a, b = spaces.link(roles["fc"], roles["ff"])
    spaces.ip(roles["fc"], "addr", "add", "10.20.0.1/24", "dev", a)
    spaces.ip(roles["ff"], "addr", "add", "10.20.0.2/24", "dev", b)
    spaces.ip(roles["fc"], "addr", "add", "fd20::1/64", "dev", a, "nodad")
    spaces.ip(roles["ff"], "addr", "add", "fd20::2/64", "dev", b, "nodad")
    spaces.ip(roles["fc"], "route", "add", "10.19.0.0/16", "via", "10.20.0.2")
    spaces.ip(roles["fc"], "-6", "route", "add", "fd19::/16", "via", "fd20::2")
    spaces.ip(roles["ff"], "route", "add", "blackhole", "10.19.0.0/16")
    spaces.ip(roles["ff"], "-6", "route", "add", "blackhole", "fd19::/16")
    spaces.sysctl(roles["fc"], **{"net.ipv4.ping_group_range": "0 2147483647"})
    return roles, b


def start_forger(spaces: Namespaces, namespace: str, interface: str) -> subprocess.Popen[str]:
    """Start ``tests/_traceroute_forger.py`` in *namespace*; return once it is ready."""
    forger = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            namespace,
            sys.executable,
            str(ROOT / "tests" / "_traceroute_forger.py"),
            interface,
            "10.19",
            "fd19",
            "--seconds",
            "60",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert forger.stdout is not None
    line = forger.stdout.readline()
    if line.strip() != "ready":
        forger.kill()
        _, error = forger.communicate(timeout=10)
        raise AssertionError(f"the forger did not start: {line!r} {error[-2000:]}")
    return forger


def stop_forger(forger: subprocess.Popen[str]) -> dict[str, Any]:
    """Stop the forger (its standard input closed); what it saw and sent."""
    try:
        out, error = forger.communicate(input="", timeout=10)
    except subprocess.TimeoutExpired:
        forger.kill()
        out, error = forger.communicate(timeout=10)
    if forger.returncode != 0:
        raise AssertionError(f"the forger failed: {error[-2000:]}")
    stats: dict[str, Any] = json.loads(out.splitlines()[-1])
    return stats


def _v6(v4: str) -> str:
    """The IPv6 twin of a chain address or prefix: 10.17.2.2 is fd17:2::2, 10.18/16 fd18::/16."""
    address, _, length = v4.partition("/")
    _, second, third, fourth = address.split(".")
    site = f"fd{second}"
    if length == "16":
        return f"{site}::/16"
    if length == "24":
        return f"{site}:{third}::/64"
    return f"{site}:{third}::{fourth}"


def warm_up(spaces: Namespaces, client: str) -> None:
    """Resolve every neighbour on the way, both families, before anything is timed."""
    for target in ("10.17.4.2", "fd17:4::2"):
        spaces.run(client, "ping", "-c", "1", "-W", "2", target, timeout=10)


def normalized(text: str) -> list[str]:
    """Output lines with round-trip times replaced by ``T ms`` (for side-by-side checks)."""
    return [_IP_TIME.sub("T ms", line).rstrip() for line in text.splitlines()]


def traceroute_hops(text: str) -> dict[int, list[str]]:
    """The responders of each hop in traceroute(8)-style output (``*`` for silence)."""
    hops: dict[int, list[str]] = {}
    for line in text.splitlines():
        match = re.match(r"^\s*(\d+)\s+(.*)$", line)
        if not match:
            continue
        found = []
        for token in match.group(2).split():
            looks = re.fullmatch(r"[0-9a-f:.]+", token) and ("." in token or ":" in token)
            if token == "*" or (looks and not re.fullmatch(r"\d+\.\d+", token)):
                found.append(token)
        hops[int(match.group(1))] = found
    return hops


def tracepath_hops(text: str) -> dict[int, set[str]]:
    """The responders of each hop in ``tracepath -n`` output."""
    hops: dict[int, set[str]] = {}
    for line in text.splitlines():
        match = re.match(r"^\s*(\d+):\s+(\S+)", line)
        if match and match.group(2) not in ("no", "[LOCALHOST]"):
            hops.setdefault(int(match.group(1)), set()).add(match.group(2))
    return hops


def timed(function: Any, *args: Any) -> tuple[Any, float]:
    """*function*'s result and the seconds it took."""
    started = time.monotonic()
    result = function(*args)
    return result, time.monotonic() - started
