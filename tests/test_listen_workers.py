"""The worker count, the limits' shares, the worker plan, and the supervisor's restart delays."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from netproto._listen._supervisor import (
    MAX_RESTART_DELAY,
    POLL_TIMEOUT,
    RESTART_DELAY,
    STOP_TIMEOUT,
    SupervisedService,
    WorkerProcess,
)
from netproto._listen._workers import (
    SPLIT_LIMITS,
    WorkerPlan,
    WorkerSocket,
    check_shares,
    parse_workers,
    share_of,
    usable_cpus,
)
from netproto.access import AccessRules
from netproto.limits import Limits
from netproto.tap import Options


class WorkerCountTests(SynchronousTestCase):
    """``--workers``: a number from 1 to 256, or auto."""

    def test_numbers_and_auto(self) -> None:
        """Numbers are taken as given; auto is the CPUs this process may use."""
        self.assertEqual(parse_workers("3"), 3)
        self.assertEqual(parse_workers(1), 1)
        self.assertEqual(parse_workers(" AUTO "), usable_cpus())
        self.assertGreaterEqual(usable_cpus(), 1)

    def test_bad(self) -> None:
        """0, negative, fractions, words and huge numbers are refused with a reason."""
        for bad in ("0", "-1", "1.5", "two", "", "257", True):
            self.assertRaises(ValueError, parse_workers, bad)

    def test_option(self) -> None:
        """The plugin's --workers is checked in postOptions; 1 is the default."""
        options = Options()
        options.parseOptions(["--echo=7"])
        self.assertEqual(options["workers"], 1)
        options = Options()
        options.parseOptions(["--echo=7", "--workers=auto"])
        self.assertEqual(options["workers"], usable_cpus())
        with self.assertRaises(usage.UsageError) as caught:
            Options().parseOptions(["--echo=7", "--workers=3", "--udp-burst=2"])
        self.assertIn("--udp-burst=2 cannot be split between 3 workers", str(caught.exception))


class ShareTests(SynchronousTestCase):
    """Each worker's share of the limits; the shares add up to the configured limits."""

    def test_defaults_in_two(self) -> None:
        """Two workers: half of every cap and budget, the same timeouts."""
        half = share_of(Limits(), 2, 0)
        self.assertEqual((half.udp_burst, half.udp_rate), (20, 10.0))
        self.assertEqual((half.max_connections, half.max_connections_per_peer), (2048, 128))
        self.assertEqual(half.idle_timeout, Limits().idle_timeout)

    def test_zero_stays_unlimited(self) -> None:
        """0 (unlimited) is 0 in every share."""
        share = share_of(Limits(max_connections=0, udp_rate=0), 4, 3)
        self.assertEqual((share.max_connections, share.udp_rate), (0, 0))

    def test_too_small(self) -> None:
        """A non-zero cap below the worker count cannot be split."""
        self.assertRaises(ValueError, check_shares, Limits(max_connections_per_peer=3), 4)
        check_shares(Limits(max_connections_per_peer=4), 4)

    @given(
        st.integers(1, 16),
        st.integers(0, 100_000),
        st.floats(0, 1e6, allow_nan=False),
    )
    def test_shares_add_up(self, workers: int, cap: int, rate: float) -> None:
        """Integer shares sum to the cap, rates to the rate, for any worker count."""
        if 0 < cap < workers:
            cap = workers
        limits = Limits(udp_burst=cap, max_connections=cap, udp_rate=rate)
        shares = [share_of(limits, workers, i) for i in range(workers)]
        self.assertEqual(sum(s.udp_burst for s in shares), cap)
        self.assertEqual(sum(s.max_connections for s in shares), cap)
        self.assertAlmostEqual(sum(s.udp_rate for s in shares), rate, delta=rate * 1e-9 + 1e-9)
        for share in shares:
            for name in SPLIT_LIMITS:
                if getattr(limits, name):
                    self.assertGreater(getattr(share, name), 0, name)


class PlanTests(SynchronousTestCase):
    """The worker plan survives its JSON form."""

    def test_round_trip(self) -> None:
        """Limits (allowed ports too), plain options and sockets come back equal;
        what JSON cannot carry (parsed listeners) is left out."""
        limits = Limits(udp_allowed_ports=frozenset({53, 123}), udp_rate=2.5)
        plan = WorkerPlan(
            worker=2,
            workers=3,
            limits=limits,
            options={"daytime-format": "iso", "utc": True, "listeners": [object()]},
            sockets=(WorkerSocket("echo", "--echo=7", "TCP port 7 (IPv4)", 3),),
        )
        back = WorkerPlan.from_json(plan.to_json())
        self.assertEqual(back.limits, limits)
        self.assertEqual(dict(back.options), {"daytime-format": "iso", "utc": True})
        self.assertEqual(back.sockets, plan.sockets)
        self.assertEqual((back.worker, back.workers), (2, 3))
        self.assertRaises(ValueError, WorkerPlan.from_json, "{}")
        self.assertRaises(ValueError, WorkerPlan.from_json, "not json")

    def test_access_rules_carried(self) -> None:
        """--allow/--deny reach every worker whole, the connection rate and burst split."""
        rules = AccessRules(
            allow=("10.0.0.0/8", "::1"),
            deny=("10.1.0.0/16",),
            connection_rate=9.0,
            connection_burst=5,
        )
        supervisor = SupervisedService(
            _Reactor(),
            [],
            workers=2,
            limits=Limits(),
            options={"access": rules},
            stats_interval=0,
        )
        plans = [WorkerPlan.from_json(supervisor.plan(w).to_json()) for w in (1, 2)]
        for plan in plans:
            assert plan.access is not None
            self.assertEqual((plan.access.allow, plan.access.deny), (rules.allow, rules.deny))
            self.assertEqual(plan.access.connection_rate, 4.5)
            self.assertFalse(plan.access.allows("10.1.2.3"))
            self.assertTrue(plan.access.allows("10.2.3.4"))
        self.assertEqual([p.access.connection_burst for p in plans if p.access], [3, 2])
        quiet = SupervisedService(
            _Reactor(), [], workers=2, limits=Limits(), options={}, stats_interval=0
        )
        self.assertIsNone(WorkerPlan.from_json(quiet.plan(1).to_json()).access)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a metrics page, parsed with prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class _Reactor(Clock):
    """A clock that records the processes it is asked to spawn."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[Any, list[str]]] = []

    def spawnProcess(self, protocol: Any, executable: str, args: list[str], **kw: Any) -> None:
        self.spawned.append((protocol, args))


class _EndedError(Exception):
    exitCode = 1
    signal = None


class RestartTests(SynchronousTestCase):
    """The supervisor restarts a dead worker, later each time it dies young."""

    def test_backoff(self) -> None:
        """Delays double from RESTART_DELAY up to MAX_RESTART_DELAY while workers die
        young, and start again from RESTART_DELAY after one lived long."""
        reactor = _Reactor()
        supervisor = SupervisedService(
            reactor, [], workers=2, limits=Limits(), options={}, stats_interval=0
        )
        supervisor._spawn(1)
        delays = []
        for _ in range(12):
            process = supervisor.processes[1]
            count = len(reactor.spawned)
            supervisor.worker_ended(process, Failure(_EndedError()))
            pending = reactor.getDelayedCalls()
            self.assertEqual(len(pending), 1)
            delays.append(pending[0].getTime() - reactor.seconds())
            reactor.advance(delays[-1])
            self.assertEqual(len(reactor.spawned), count + 1)
        self.assertAlmostEqual(delays[0], RESTART_DELAY)
        self.assertAlmostEqual(delays[1], RESTART_DELAY * 2)
        self.assertAlmostEqual(max(delays), MAX_RESTART_DELAY)
        reactor.advance(60)
        supervisor.worker_ended(supervisor.processes[1], Failure(_EndedError()))
        self.assertAlmostEqual(
            reactor.getDelayedCalls()[0].getTime() - reactor.seconds(), RESTART_DELAY
        )
        self.assertEqual(supervisor.restarts[1], 13)

    def test_no_restart_when_stopping(self) -> None:
        """Stopping cancels a pending restart; a worker ending then is not started again."""
        reactor = _Reactor()
        supervisor = SupervisedService(
            reactor, [], workers=1, limits=Limits(), options={}, stats_interval=0
        )
        supervisor._spawn(1)
        supervisor.worker_ended(supervisor.processes[1], Failure(_EndedError()))
        supervisor.running = True
        supervisor.stopService()
        reactor.advance(60)
        self.assertEqual(len(reactor.spawned), 1)

    def test_plan_shares(self) -> None:
        """Worker 1 of 3 gets the larger share of an uneven cap."""
        supervisor = SupervisedService(
            _Reactor(), [], workers=3, limits=Limits(udp_burst=40), options={}, stats_interval=0
        )
        self.assertEqual([supervisor.plan(w).limits.udp_burst for w in (1, 2, 3)], [14, 13, 13])
        self.assertIsInstance(WorkerProcess(supervisor, 1), WorkerProcess)
        self.assertEqual(dataclasses.asdict(supervisor.plan(1).limits)["udp_burst"], 14)


class MetricsSumTests(SynchronousTestCase):
    """The supervisor's metrics: sums over live workers and the ones that died."""

    def test_sum_and_retire(self) -> None:
        """Two workers' counters add up; a dead worker's counters stay in the sums
        and in its worker's line, so no counter goes down."""
        reactor = _Reactor()
        supervisor = SupervisedService(
            reactor, [], workers=2, limits=Limits(), options={}, stats_interval=0
        )
        supervisor._spawn(1)
        supervisor._spawn(2)
        for worker, count in ((1, 3), (2, 4)):
            process = supervisor.processes[worker]
            process.ready = True
            process.outReceived(
                b'{"stats": [["echo", "tcp", {"tcp_connections": %d}]], '
                b'"gauges": [["echo", "tcp_connections_open", 1]]}\n' % count
            )
        values = _samples(supervisor.render_metrics())
        echo_tcp = (("service", "echo"), ("transport", "tcp"))
        self.assertEqual(values["netproto_connections_total", echo_tcp], 7)
        self.assertEqual(values["netproto_connections_open", echo_tcp], 2)
        worker2 = (("service", "echo"), ("transport", "tcp"), ("worker", "2"))
        self.assertEqual(values["netproto_worker_requests_total", worker2], 4)
        supervisor.worker_ended(supervisor.processes[1], Failure(_EndedError()))
        values = _samples(supervisor.render_metrics())
        self.assertEqual(values["netproto_connections_total", echo_tcp], 7)
        self.assertEqual(values["netproto_connections_open", echo_tcp], 1)
        self.assertEqual(values["netproto_worker_up", (("worker", "1"),)], 0)
        self.assertEqual(values["netproto_worker_restarts_total", (("worker", "1"),)], 1)
        worker1 = (("service", "echo"), ("transport", "tcp"), ("worker", "1"))
        self.assertEqual(values["netproto_worker_requests_total", worker1], 3)
        self.assertEqual(values["netproto_workers", ()], 2)

    def test_poll_times_out(self) -> None:
        """A scrape waits for the workers at most POLL_TIMEOUT seconds."""
        reactor = _Reactor()
        supervisor = SupervisedService(
            reactor, [], workers=1, limits=Limits(), options={}, stats_interval=0
        )
        supervisor._spawn(1)
        pipe = StringTransport()
        supervisor.processes[1].makeConnection(pipe)
        done: list[object] = []
        supervisor.poll().addCallback(done.append)
        self.assertEqual((done, pipe.value()), ([], b"s\n"))
        reactor.advance(POLL_TIMEOUT)
        self.assertEqual(done, [None])


class _Pipe(StringTransport):
    """A worker's transport that records the signals sent to it."""

    def __init__(self) -> None:
        super().__init__()
        self.signals: list[str] = []

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)


class StopTests(SynchronousTestCase):
    """Stopping: SIGTERM to every worker, SIGKILL to those alive after STOP_TIMEOUT."""

    def test_term_then_kill(self) -> None:
        """A worker that ignores SIGTERM is killed after STOP_TIMEOUT; stopService's
        Deferred fires once every worker has ended."""
        reactor = _Reactor()
        supervisor = SupervisedService(
            reactor, [], workers=2, limits=Limits(), options={}, stats_interval=0
        )
        supervisor._spawn(1)
        supervisor._spawn(2)
        pipes = {}
        for worker, process in supervisor.processes.items():
            pipes[worker] = _Pipe()
            process.makeConnection(pipes[worker])
        supervisor.running = True
        stopped: list[object] = []
        supervisor.stopService().addCallback(stopped.append)
        self.assertEqual([p.signals for p in pipes.values()], [["TERM"], ["TERM"]])
        supervisor.processes[1].processEnded(Failure(_EndedError()))
        reactor.advance(STOP_TIMEOUT)
        self.assertEqual(pipes[2].signals, ["TERM", "KILL"])
        self.assertEqual(stopped, [])
        supervisor.processes[2].processEnded(Failure(_EndedError()))
        self.assertEqual(len(stopped), 1)
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_spawn_failure_retried(self) -> None:
        """A worker that cannot be started at all is tried again later, not given up."""
        reactor = _Reactor()
        supervisor = SupervisedService(
            reactor, [], workers=1, limits=Limits(), options={}, stats_interval=0
        )
        calls: list[int] = []

        def failing(*args: Any, **kwargs: Any) -> None:
            calls.append(1)
            raise OSError(13, "Permission denied")

        reactor.spawnProcess = failing  # type: ignore[method-assign]
        supervisor._spawn(1)
        self.assertEqual(supervisor.processes, {})
        reactor.advance(RESTART_DELAY)
        self.assertEqual(len(calls), 2)
        self.flushLoggedErrors()


class StandbyTests(SynchronousTestCase):
    """A standby process, imported ahead of need, replaces the first worker to die."""

    def test_takeover(self) -> None:
        """The standby gets the dead worker's plan at once and a new standby follows after
        RESTART_DELAY; a second death within YOUNG seconds waits as a restart does."""
        reactor = _Reactor()
        supervisor = SupervisedService(
            reactor, [], workers=2, limits=Limits(udp_burst=40), options={}, stats_interval=0
        )
        supervisor.startService()
        self.assertEqual([args[-1] for _, args in reactor.spawned][2], "--standby")
        standby = supervisor.standby
        assert standby is not None
        pipe = _Pipe()
        standby.makeConnection(pipe)
        supervisor.worker_ended(supervisor.processes[1], Failure(_EndedError()))
        self.assertIs(supervisor.processes[1], standby)
        self.assertIsNone(supervisor.standby)
        plan = WorkerPlan.from_json(pipe.value().decode().strip())
        self.assertEqual((plan.worker, plan.limits.udp_burst), (1, 20))
        reactor.advance(RESTART_DELAY)
        self.assertEqual(len(reactor.spawned), 4)
        self.assertIsNotNone(supervisor.standby)
        supervisor.worker_ended(supervisor.processes[1], Failure(_EndedError()))
        self.assertNotIn(1, supervisor.processes)
        self.assertEqual(supervisor.restarts[1], 2)
        reactor.advance(RESTART_DELAY * 2)
        self.assertEqual(len(reactor.spawned), 5)
        self.assertIsNotNone(supervisor.standby)


class ReactorTests(SynchronousTestCase):
    """A worker runs the supervisor's kind of reactor (``twistd -r``)."""

    def test_environment_names_the_reactor_module(self) -> None:
        """The worker's environment names the module of the supervisor's reactor, whose
        install() a worker calls first; without LISTEN_* variables."""
        from twisted.internet import reactor as running

        from netproto._listen._supervisor import _worker_environment
        from netproto._listen._workers import REACTOR_VARIABLE

        env = _worker_environment(running)
        self.assertEqual(env[REACTOR_VARIABLE], type(running).__module__)
        self.assertNotIn("LISTEN_FDS", env)

    def test_worker_installs_it(self) -> None:
        """A fresh Python given the variable runs the asyncio reactor."""
        import subprocess
        import sys

        script = (
            "from netproto._listen._worker import _install_reactor\n"
            "_install_reactor('twisted.internet.asyncioreactor')\n"
            "from twisted.internet import reactor\n"
            "print(type(reactor).__name__)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        self.assertEqual(result.stdout.strip(), "AsyncioSelectorReactor", result.stderr)


class WorkerDispatchTests(SynchronousTestCase):
    """A worker's events take the same fast path as one process's."""

    def test_serve_installs_fast_dispatch(self) -> None:
        """Worker.serve on Twisted's epoll reactor installs fast_dispatch (without it,
        every event of a worker went through the per-event log context, the largest
        part of the CPU per request a worker spent more than one process)."""
        try:
            from twisted.internet.epollreactor import EPollReactor
        except ImportError:
            raise self.skipTest("no epoll reactor here") from None

        from netproto._listen._worker import Worker

        fresh = EPollReactor()
        self.addCleanup(fresh._poller.close)
        self.addCleanup(fresh.waker.connectionLost, None)
        plan = WorkerPlan(
            worker=1, workers=2, limits=Limits(), options={}, sockets=(), stats_interval=0
        )
        worker = Worker(fresh, plan)
        self.assertFalse(getattr(fresh, "_netproto_fast", False))
        worker.serve()
        self.addCleanup(worker.root.stopService)
        self.assertTrue(getattr(fresh, "_netproto_fast", False))
