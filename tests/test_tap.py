"""The twistd plugin's wiring: options, SPEC parsing, makeService, the UDP port and metrics."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.application.service import IService
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.policies import WrappingFactory
from twisted.python import usage
from twisted.python.systemd import ListenFDs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from netproto import tap
from netproto._listen import (
    MAX_DATAGRAM,
    UDP,
    AnyAddressTCP,
    AnyAddressTCPEndpoint,
    DestinationCheckingPort,
    EndpointTCP,
    Inherited,
    NetprotoService,
    StreamService,
    UDPService,
    UDPSpec,
    build_listeners,
    parse_service_spec,
    parse_udp_spec,
)
from netproto._listen._udp import refused_destination
from netproto.daytime import FORMATS, DaytimeDatagramProtocol, DaytimeFactory
from netproto.echo import EchoDatagramProtocol, EchoFactory
from netproto.limits import Counters, Limits


def parse(*argv: str, fds: ListenFDs | None = None) -> tap.Options:
    """Parse *argv* as ``twistd netproto`` would."""
    options = tap.Options()
    options.listen_fds = fds if fds is not None else ListenFDs([], ())
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """``twistd netproto`` options: defaults, coercion, validation."""

    def test_every_limit_has_an_option(self) -> None:
        """Each Limits field has an option whose default equals the Limits default, same type."""
        defaults = Limits()
        options = tap.Options()
        for field in dataclasses.fields(Limits):
            name = field.name.replace("_", "-")
            self.assertIn(name, options.defaults)
            parsed = parse("--echo=7")[name]
            self.assertEqual(parsed, getattr(defaults, field.name))
            self.assertIs(type(parsed), type(getattr(defaults, field.name)))
        self.assertEqual(parse("--echo=7")["limits"], defaults)

    def test_limits_from_options(self) -> None:
        """Every limit option reaches the Limits given to the services."""
        options = parse(
            "--echo=7",
            "--max-connections=10",
            "--max-connections-per-peer=2",
            "--idle-timeout=1.5",
            "--write-stall-timeout=0",
            "--udp-rate=3",
            "--udp-burst=4",
            "--udp-global-rate=50",
            "--udp-global-burst=60",
            "--udp-allowed-ports=53, 123",
            "--udp-max-sources=9",
            "--summary-interval=0",
            "--sweep-interval=2",
        )
        self.assertEqual(
            options["limits"],
            Limits(
                max_connections=10,
                max_connections_per_peer=2,
                idle_timeout=1.5,
                write_stall_timeout=0.0,
                udp_rate=3.0,
                udp_burst=4,
                udp_global_rate=50.0,
                udp_global_burst=60,
                udp_allowed_ports=frozenset({53, 123}),
                udp_max_sources=9,
                summary_interval=0.0,
                sweep_interval=2.0,
            ),
        )

    def test_bad_limits_name_the_option(self) -> None:
        """A negative, non-numeric or fractional count is a UsageError naming its option."""
        cases = [
            ("--max-connections=-1", "--max-connections"),
            ("--idle-timeout=soon", "--idle-timeout"),
            ("--udp-burst=1.5", "--udp-burst"),
            ("--udp-rate=nan", "--udp-rate"),
            ("--udp-allowed-ports=53,x", "--udp-allowed-ports"),
            ("--udp-allowed-ports=70000", "--udp-allowed-ports"),
            ("--daytime-format=julian", "--daytime-format"),
        ]
        for arg, name in cases:
            with self.assertRaises(usage.UsageError) as caught:
                parse("--echo=7", arg)
            self.assertIn(name, str(caught.exception), arg)

    def test_daytime_formats(self) -> None:
        """Every daytime format the protocol knows is accepted, with --utc."""
        for fmt in FORMATS:
            options = parse("--daytime=13", f"--daytime-format={fmt}", "--utc")
            self.assertEqual((options["daytime-format"], options["utc"]), (fmt, 1))

    def test_nothing_to_serve(self) -> None:
        """Without --daytime or --echo there is nothing to do: a usage error."""
        with self.assertRaises(usage.UsageError) as caught:
            parse()
        self.assertIn("--daytime", str(caught.exception))

    def test_abbreviations_refused(self) -> None:
        """
        ``--ech=1207`` is not ``--echo=1207`` (getopt would take any unique
        prefix): unknown, with the option it may mean; exact names, ``--``
        and option values that look like options still work.
        """
        for arg, message in (
            ("--ech=1207", "unknown option --ech (did you mean --echo?)"),
            ("--udp-r=5", "unknown option --udp-r (did you mean --udp-rate?)"),
            ("--udp=5", "unknown option --udp"),
            ("--nothing", "unknown option --nothing"),
        ):
            with self.subTest(arg=arg):
                with self.assertRaises(usage.UsageError) as caught:
                    parse("--daytime=13", arg)
                self.assertEqual(str(caught.exception), message)
        self.assertEqual(parse("--echo=1207", "--udp-rate=5")["udp-rate"], 5.0)

    def test_whole_number_defaults(self) -> None:
        """--help shows "[default: 300]", not "300.0"; the options still parse to floats."""
        text = str(tap.Options())
        self.assertIn("[default: 300]", " ".join(text.split()))
        self.assertNotRegex(" ".join(text.split()), r"\[default: \d+\.0\]")
        options = parse("--echo=7")
        self.assertEqual((options["idle-timeout"], type(options["idle-timeout"])), (300.0, float))

    def test_usage_error_under_twistd(self) -> None:
        """
        Under twistd a mistake is one line on stderr naming the plugin and
        SystemExit(1), not twistd's usage text; alone, it stays a UsageError.
        """
        import contextlib
        import io

        from twisted.scripts.twistd import ServerOptions

        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as caught:
            ServerOptions().parseOptions(["-n", "netproto", "--udp-rate=abc"])
        self.assertEqual(caught.exception.code, 1)
        self.assertEqual(
            err.getvalue(),
            "twistd netproto: --udp-rate: 'abc' is not a number (see 'twistd netproto --help')\n",
        )
        self.assertRaises(usage.UsageError, parse, "--udp-rate=abc")

    def test_positional_argument(self) -> None:
        """A stray positional argument is refused."""
        self.assertRaises(usage.UsageError, parse, "--echo=7", "13")

    def test_repeated_and_bare(self) -> None:
        """A bare port gives TCP and UDP; the options repeat; order is kept."""
        options = parse("--echo=7", "--echo=udp:1207", "--daytime=tcp:13:interface=127.0.0.1")
        option = "--daytime=tcp:13:interface=127.0.0.1"
        self.assertEqual(
            options["listeners"],
            [
                EndpointTCP("daytime", option, "tcp:13:interface=127.0.0.1"),
                AnyAddressTCP("echo", "--echo=7", 7, 4),
                AnyAddressTCP("echo", "--echo=7", 7, 6),
                UDP("echo", "--echo=7", UDPSpec(7, "0.0.0.0")),
                UDP("echo", "--echo=7", UDPSpec(7, "::", v6only=True)),
                UDP("echo", "--echo=udp:1207", UDPSpec(1207, "0.0.0.0")),
                UDP("echo", "--echo=udp:1207", UDPSpec(1207, "::", v6only=True)),
            ],
        )
        self.assertEqual(
            [lis.describe() for lis in options["listeners"][1:5]],
            ["TCP port 7 (IPv4)", "TCP port 7 (IPv6)", "UDP port 7 (IPv4)", "UDP port 7 (IPv6)"],
        )

    def test_bad_specs_name_the_option(self) -> None:
        """A bad SPEC is a UsageError quoting the option and SPEC."""
        for spec in (
            "70000",
            "tcp:70000",
            "nope:1",
            "tcp:abc",
            "udp:x",
            "udp:7:iface=a",
            "udp:7:interface=example.com",
            "ssl:443:privateKey=/nonexistent.pem",
            "systemd:domain=INET:index=0",
            "",
        ):
            with self.assertRaises(usage.UsageError) as caught:
                parse(f"--echo={spec}")
            self.assertIn(f"--echo={spec}", str(caught.exception))

    def test_metrics_spec(self) -> None:
        """--metrics: a bare port is loopback TCP; udp: is refused."""
        options = parse("--echo=7", "--metrics=9100")
        self.assertEqual(
            options["listeners"][-1],
            EndpointTCP("metrics", "--metrics=9100", "tcp:9100:interface=127.0.0.1"),
        )
        with self.assertRaises(usage.UsageError) as caught:
            parse("--echo=7", "--metrics=udp:9100")
        self.assertIn("--metrics", str(caught.exception))


class SystemdSpecTests(SynchronousTestCase):
    """``systemd:`` SPECs name inherited sockets by index or name."""

    fds = ListenFDs([3, 4], ("echo-tcp", "echo-udp"))

    def test_index_and_name(self) -> None:
        """index=N and name=NAME resolve to the inherited descriptor."""
        by_index = parse_service_spec("echo", "systemd:domain=INET:index=1", self.fds)
        by_name = parse_service_spec("echo", "systemd:domain=INET6:name=echo-tcp", self.fds)
        self.assertEqual([by_index[0].fileno, by_name[0].fileno], [4, 3])
        self.assertIsInstance(by_index[0], Inherited)

    def test_errors(self) -> None:
        """Missing sockets, both or neither of index/name, bad domains are ValueErrors."""
        for spec in (
            "systemd:domain=INET:index=2",
            "systemd:name=nope",
            "systemd:domain=INET",
            "systemd:index=0:name=echo-tcp",
            "systemd:domain=IPX:index=0",
            "systemd:index=x",
            "systemd:port=3",
        ):
            self.assertRaises(ValueError, parse_service_spec, "echo", spec, self.fds)


_addresses = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: str(a)),
)


class UDPSpecTests(SynchronousTestCase):
    """``udp:PORT[:interface=ADDR]``."""

    @given(st.integers(0, 65535), st.one_of(st.just(""), _addresses))
    def test_round_trip(self, port: int, interface: str) -> None:
        """str(UDPSpec) parses back to the same spec, escaped colons or not."""
        spec = UDPSpec(port, interface)
        self.assertEqual(parse_udp_spec(str(spec)), spec)
        if interface:
            self.assertEqual(parse_udp_spec(f"udp:{port}:interface={interface}"), spec)

    @given(st.text(max_size=40))
    def test_garbage(self, text: str) -> None:
        """Any text either parses to a valid spec or raises ValueError, never anything else."""
        try:
            spec = parse_udp_spec(text)
        except ValueError:
            return
        self.assertTrue(0 <= spec.port <= 65535)
        if spec.interface:
            ipaddress.ip_address(spec.interface)

    def test_examples(self) -> None:
        """The documented forms parse; bad ones are refused."""
        self.assertEqual(parse_udp_spec("udp:7"), UDPSpec(7))
        self.assertEqual(parse_udp_spec("udp:13:interface=\\:\\:1"), UDPSpec(13, "::1"))
        self.assertEqual(parse_udp_spec("udp:13:interface=127.0.0.1"), UDPSpec(13, "127.0.0.1"))
        for bad in (
            "udp",
            "udp:",
            "tcp:7",
            "udp:65536",
            "udp:-1",
            "udp:7:interface=",
            "udp:7:interface=fe80::1%eth0",
            "udp:٣",
        ):
            self.assertRaises(ValueError, parse_udp_spec, bad)


def _pktinfo4(spec_dst: str, addr: str) -> tuple[int, int, bytes]:
    data = struct.pack("=i", 1) + socket.inet_aton(spec_dst) + socket.inet_aton(addr)
    return (socket.IPPROTO_IP, 8, data)


def _pktinfo6(addr: str) -> tuple[int, int, bytes]:
    return (
        socket.IPPROTO_IPV6,
        socket.IPV6_PKTINFO,
        socket.inet_pton(socket.AF_INET6, addr) + struct.pack("=i", 1),
    )


class DestinationRuleTests(SynchronousTestCase):
    """Which destinations :func:`refused_destination` refuses."""

    def test_unicast_answered(self) -> None:
        """A datagram to one of our unicast addresses (v4, v6, mapped) is answered."""
        self.assertFalse(refused_destination([_pktinfo4("127.0.0.2", "127.0.0.2")]))
        self.assertFalse(refused_destination([_pktinfo6("::1")]))
        self.assertFalse(
            refused_destination(
                [_pktinfo6("::ffff:127.0.0.1"), _pktinfo4("127.0.0.1", "127.0.0.1")]
            )
        )
        self.assertFalse(refused_destination([]))

    def test_queued_before_pktinfo(self) -> None:
        """Queued before IP_PKTINFO was set (spec_dst 0.0.0.0): judged by address alone."""
        self.assertFalse(refused_destination([_pktinfo4("0.0.0.0", "127.0.0.1")]))
        self.assertTrue(refused_destination([_pktinfo4("0.0.0.0", "255.255.255.255")]))
        self.assertTrue(refused_destination([_pktinfo4("0.0.0.0", "239.1.2.3")]))

    def test_broadcast_and_multicast_refused(self) -> None:
        """Limited and directed broadcast, IPv4 and IPv6 multicast are refused."""
        self.assertTrue(refused_destination([_pktinfo4("10.0.0.1", "255.255.255.255")]))
        self.assertTrue(refused_destination([_pktinfo4("10.0.0.1", "10.0.0.255")]))
        self.assertTrue(refused_destination([_pktinfo4("10.0.0.1", "224.0.0.1")]))
        self.assertTrue(refused_destination([_pktinfo6("ff02::1")]))
        self.assertTrue(
            refused_destination(
                [_pktinfo6("::ffff:10.0.0.255"), _pktinfo4("10.0.0.1", "10.0.0.255")]
            )
        )


class _Recorder(DatagramProtocol):
    """Records datagrams; counts like the services."""

    def __init__(self) -> None:
        self.counters = Counters()
        self.received: list[tuple[bytes, Any]] = []
        self.waiting: defer.Deferred[None] | None = None

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.append((datagram, addr))
        if self.waiting is not None:
            waiting, self.waiting = self.waiting, None
            waiting.callback(None)

    def next(self) -> defer.Deferred[None]:
        self.waiting = defer.Deferred()
        return self.waiting


class DestinationCheckingPortTests(TestCase):
    """The UDP port on real loopback sockets."""

    def listen(self, interface: str) -> tuple[_Recorder, DestinationCheckingPort]:
        """Listen on *interface* port 0 with a recorder; clean up after."""
        protocol = _Recorder()
        port = DestinationCheckingPort(0, protocol, interface, MAX_DATAGRAM, reactor)
        port.startListening()
        self.addCleanup(port.stopListening)
        return protocol, port

    @defer.inlineCallbacks
    def test_broadcast_refused_unicast_delivered(self) -> Any:
        """A datagram to 127.255.255.255 (lo's broadcast) is counted, never delivered."""
        for interface, family in (("0.0.0.0", socket.AF_INET), ("::", socket.AF_INET6)):
            protocol, port = self.listen(interface)
            number = port.getHost().port
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.addCleanup(sender.close)
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sender.sendto(b"fraggle", ("127.255.255.255", number))
            sender.sendto(b"hello", ("127.0.0.1", number))
            yield protocol.next()
            self.assertEqual([d for d, _ in protocol.received], [b"hello"], family)
            self.assertEqual(protocol.counters.get("udp_refused_destination"), 1)
            host = protocol.received[0][1][0]
            self.assertIn(host, ("127.0.0.1", "::ffff:127.0.0.1"))
            self.assertEqual(len(protocol.received[0][1]), 2)

    @defer.inlineCallbacks
    def test_largest_datagrams(self) -> Any:
        """65,507 bytes over IPv4 and 65,527 over IPv6 arrive whole; 0 bytes arrive too."""
        for interface, target, size in (
            ("127.0.0.1", "127.0.0.1", 65507),
            ("::1", "::1", 65527),
            ("::", "127.0.0.1", 0),
        ):
            protocol, port = self.listen(interface)
            family = socket.AF_INET6 if ":" in target else socket.AF_INET
            sender = socket.socket(family, socket.SOCK_DGRAM)
            self.addCleanup(sender.close)
            sender.sendto(b"x" * size, (target, port.getHost().port))
            yield protocol.next()
            self.assertEqual(len(protocol.received[0][0]), size)

    @defer.inlineCallbacks
    def test_families_apart(self) -> Any:
        """A bare port's two UDP sockets: IPv4 peers arrive as IPv4, IPv6 as IPv6 (v6only)."""
        four = _Recorder()
        port4 = DestinationCheckingPort(0, four, "0.0.0.0", MAX_DATAGRAM, reactor)
        port4.startListening()
        self.addCleanup(port4.stopListening)
        number = port4.getHost().port
        six = _Recorder()
        port6 = DestinationCheckingPort(number, six, "::", MAX_DATAGRAM, reactor)
        port6.v6only = True
        port6.startListening()
        self.addCleanup(port6.stopListening)
        self.assertFalse(port6._check_destination)
        for host, family, recorder in (
            ("127.0.0.1", socket.AF_INET, four),
            ("::1", socket.AF_INET6, six),
        ):
            sender = socket.socket(family, socket.SOCK_DGRAM)
            self.addCleanup(sender.close)
            sender.sendto(b"hi", (host, number))
            yield recorder.next()
            self.assertEqual(recorder.received[0][1][0], host)

    def test_dual_stack_socket(self) -> None:
        """A port on '::' takes IPv4 too (IPV6_V6ONLY is off)."""
        _protocol, port = self.listen("::")
        skt = port.getHandle()
        self.assertEqual(skt.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), 0)


class MakeServiceTests(SynchronousTestCase):
    """makeService builds everything and binds nothing."""

    def make(self, *argv: str) -> tuple[IService, MemoryReactorClock]:
        """makeService on a memory reactor."""
        clock = MemoryReactorClock()
        return tap.makeService(parse(*argv), clock), clock

    def test_constructs_without_binding(self) -> None:
        """Every listener is a child service; no socket is bound before privilegedStartService."""
        service, clock = self.make(
            "--daytime=13", "--echo=7", "--echo=unix:/tmp/x.sock", "--metrics=9100"
        )
        children = list(service)  # type: ignore[call-overload]
        self.assertEqual(len(children), 10)
        self.assertEqual((clock.tcpServers, clock.unixServers), ([], []))
        udp = [c for c in children if isinstance(c, UDPService)]
        self.assertEqual([u.port for u in udp], [None] * 4)
        self.assertEqual(
            [type(u.protocol) for u in udp],
            [DaytimeDatagramProtocol] * 2 + [EchoDatagramProtocol] * 2,
        )
        self.assertIsNot(udp[0].protocol, udp[1].protocol)

    def test_factories_get_options(self) -> None:
        """Limits, format and UTC reach the factories; one TCP factory per service is shared."""
        service, _clock = self.make(
            "--daytime=tcp:13",
            "--daytime=tcp6:13",
            "--daytime-format=iso",
            "--utc",
            "--max-connections=5",
            "--echo=udp:7",
        )
        children = list(service)  # type: ignore[call-overload]
        first, second, echo, _echo6 = children
        self.assertIsInstance(first.factory, DaytimeFactory)
        self.assertIs(first.factory, second.factory)
        self.assertEqual(first.factory.limits.max_connections, 5)
        self.assertEqual(echo.protocol.limits.max_connections, 5)
        self.assertIs(echo.protocol.served_ports, echo.served_ports)

    def test_endpoint_listens_in_privileged_start(self) -> None:
        """An endpoint SPEC listens on the reactor in privilegedStartService, not before."""
        service, clock = self.make("--echo=tcp:1207:interface=127.0.0.1")
        self.assertEqual(clock.tcpServers, [])
        service.privilegedStartService()
        self.assertEqual([(p, i) for p, _f, _b, i in clock.tcpServers], [(1207, "127.0.0.1")])
        self.assertIsInstance(clock.tcpServers[0][1], EchoFactory)

    def test_daemon_flag(self) -> None:
        """Under twistd without -n the service reports bind failures as a daemon would."""
        from twisted.scripts.twistd import ServerOptions

        for argv, daemon in (
            (["netproto", "--echo=7"], True),
            (["-n", "netproto", "--echo=7"], False),
        ):
            config = ServerOptions()
            config.parseOptions(argv)
            built = tap.makeService(config.subOptions, MemoryReactorClock())
            self.assertIsInstance(built, NetprotoService)
            self.assertEqual(built.daemon, daemon)  # type: ignore[attr-defined]

    def test_log_to_stdout_flag(self) -> None:
        """twistd -n logs to stdout unless --logfile or --syslog: failures go to stderr only."""
        from twisted.scripts.twistd import ServerOptions

        for argv, expected in (
            (["-n", "netproto", "--echo=7"], True),
            (["-n", "--logfile=x.log", "netproto", "--echo=7"], False),
            (["-n", "--syslog", "netproto", "--echo=7"], False),
            (["netproto", "--echo=7"], False),
        ):
            config = ServerOptions()
            config.parseOptions(argv)
            built = tap.makeService(config.subOptions, MemoryReactorClock())
            self.assertEqual(built.log_to_stdout, expected, argv)  # type: ignore[attr-defined]


class BindFailureTests(TestCase):
    """A port that cannot be bound stops start-up with one line naming the option."""

    def test_port_in_use(self) -> None:
        """The second listener on a busy port: SystemExit(1) and the first listener closed."""
        busy = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.addCleanup(busy.close)
        busy.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        busy.bind(("::", 0))
        busy.listen(1)
        number = busy.getsockname()[1]
        root = NetprotoService()
        free = EndpointTCP("echo", "--echo=tcp:0", "tcp:0")
        first = StreamService(free, AnyAddressTCPEndpoint(reactor, 0), EchoFactory(reactor))
        first.setServiceParent(root)
        taken = AnyAddressTCP("echo", f"--echo={number}", number, 6)
        StreamService(
            taken, AnyAddressTCPEndpoint(reactor, number, 6), EchoFactory(reactor)
        ).setServiceParent(root)
        logged: list[str] = []
        self.patch(
            NetprotoService,
            "_fail",
            lambda self, option, where, reason: (
                logged.append(f"{option}: cannot listen on {where}: {reason}")
                or (_ for _ in ()).throw(SystemExit(1))
            ),
        )
        with self.assertRaises(SystemExit):
            root.privilegedStartService()
        self.assertEqual(
            logged,
            [f"--echo={number}: cannot listen on TCP port {number} (IPv6): address already in use"],
        )
        self.assertIsNone(first.port)


class NoIPv6Tests(TestCase):
    """On a host without IPv6 a bare port serves IPv4 only, and says so once."""

    def test_ipv6_half_skipped(self) -> None:
        """The IPv6 TCP and UDP listeners are skipped; the IPv4 ones bind and serve."""
        import netproto._listen._stream as stream_module
        import netproto._listen._udp as udp_module

        self.patch(stream_module, "has_ipv6", lambda: False)
        self.patch(udp_module, "has_ipv6", lambda: False)
        root = NetprotoService()
        build_listeners(root, reactor, parse_service_spec("echo", "0"), limits=Limits())
        root.privilegedStartService()
        root.startService()
        self.addCleanup(root.stopService)
        children = list(root)
        self.assertEqual(
            [getattr(c, "skipped", False) for c in children], [False, True, False, True]
        )
        self.assertEqual([c.port is None for c in children], [False, True, False, True])
        self.assertEqual(children[0].port.getHost().host, "0.0.0.0")


class StartupLogTests(TestCase):
    """What the operator's guide shows of start-up: one event per socket, under netproto.tap."""

    def test_namespace_and_ports(self) -> None:
        """Each bound socket is announced once, in the public netproto.tap namespace."""
        from twisted.logger import globalLogPublisher

        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        root = NetprotoService()
        build_listeners(root, reactor, parse_service_spec("echo", "tcp:0"), limits=Limits())
        root.privilegedStartService()
        root.startService()
        self.addCleanup(root.stopService)
        announced = [e for e in events if e.get("log_format") == "netproto: {service} on {where}"]
        self.assertEqual([e["log_namespace"] for e in announced], ["netproto.tap"])
        port = next(iter(root)).port.getHost().port
        self.assertEqual(announced[0]["where"], f"tcp:0 (port {port})")


class _WrappingEndpoint:
    """A TCP endpoint on 127.0.0.1 that serves a wrapper of the factory (as ssl: does)."""

    def listen(self, factory: Any) -> defer.Deferred[Any]:
        return defer.succeed(
            reactor.listenTCP(0, WrappingFactory(factory), interface="127.0.0.1")  # type: ignore[attr-defined]
        )


class AnswerAtAcceptTests(TestCase):
    """Which TCP listeners answer on the accepted socket (see answer_accepted)."""

    def port(self, factory: Any, endpoint: Any = None) -> Any:
        listener = EndpointTCP("daytime", "--daytime=tcp:0", "tcp:0")
        if endpoint is None:
            endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        service = StreamService(listener, endpoint, factory)
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        return service.port

    def test_daytime(self) -> None:
        """A daytime listener's port accepts through answer_accepted."""
        self.assertIn("doRead", vars(self.port(DaytimeFactory(reactor))))

    def test_others_untouched(self) -> None:
        """An echo listener, and a daytime one whose port serves a wrapping factory
        (TLS), keep Twisted's accept loop."""
        self.assertNotIn("doRead", vars(self.port(EchoFactory(reactor))))
        wrapped = self.port(DaytimeFactory(reactor), _WrappingEndpoint())
        self.assertNotIn("doRead", vars(wrapped))
