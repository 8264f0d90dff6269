"""A starved monitoring host is not a sick cluster: answers that came too late while the plugin itself waited for a
CPU are UNKNOWN naming the host; a slow server on an idle host stays CRITICAL.

The judgement is tested as calls; the whole thing as the installed command pinned to one core beside CPU-bound
processes (bounded in time) while the server, on the other core, answers at once."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from conftest import ca_args, plugin, run_plugin
from fakeapi import FakeApiServer, Reply, healthy_routes
from nagiosplugin.state import Critical, Unknown
from test_assessment import HEALTHY, SICK, report, settings, target

from check_k8s_health.base.errors import ConnectFailed, ReadTimedOut
from check_k8s_health.checks.endpoints.read import Outcome, ServerReport
from check_k8s_health.run.assessment import assess
from check_k8s_health.transport.starvation import cpu_wait, overloaded

LATE = ReadTimedOut("127.0.0.1:6443 did not answer .../readyz?verbose within the 8 s deadline (-t)")


def late_report(host: str) -> ServerReport:
    return ServerReport(target(host), (Outcome("readyz", error=LATE),))


def test_the_wait_is_read_from_the_kernel() -> None:
    busy = time.process_time() + 0.05
    while time.process_time() < busy:
        pass
    waited = cpu_wait()
    assert waited is not None and waited >= 0


@pytest.mark.parametrize(("waited", "seconds", "words"), [
    (None, 8, ""), (0.0, 8, ""), (1.99, 8, ""),
    (2.0, 8, "the monitoring host is overloaded: waited 2.0 s for CPU of the 8 s deadline"),
    (5.24, 8, "the monitoring host is overloaded: waited 5.2 s for CPU of the 8 s deadline"),
    # A short deadline: a quarter of it is not enough, half a second is the least wait that counts.
    (0.01, 0.001, ""), (0.49, 1, ""),
    (0.5, 1, "the monitoring host is overloaded: waited 0.5 s for CPU of the 1 s deadline"),
])
def test_a_quarter_of_the_deadline_is_too_much(waited: float, seconds: float, words: str) -> None:
    assert overloaded(waited, seconds) == words


def test_late_answers_on_a_starved_host_are_unknown() -> None:
    starved = assess([late_report("10.0.0.1")], settings(1, timeout=8.0), cpu_wait=5.2)
    assert (starved.state, starved.summary) == (Unknown, "the monitoring host is overloaded: waited 5.2 s for CPU "
                                                         "of the 8 s deadline; readyz: " + str(LATE))
    idle = assess([late_report("10.0.0.1")], settings(1, timeout=8.0), cpu_wait=0.3)
    assert (idle.state, idle.summary) == (Critical, "readyz: " + str(LATE))
    several = assess([late_report("10.0.0.1"), report("10.0.0.2", HEALTHY)], settings(2, timeout=8.0), cpu_wait=3)
    assert several.state == Unknown and several.summary.startswith("the monitoring host is overloaded")


@pytest.mark.parametrize("other", [
    lambda: report("10.0.0.2", SICK),  # an answer that says etcd failed is true however late the other came
    lambda: ServerReport(target("10.0.0.2"), (Outcome("readyz", error=ConnectFailed("connection refused")),)),
])
def test_a_real_failure_beside_a_late_answer_stays_critical(other: object) -> None:
    assessment = assess([late_report("10.0.0.1"), other()], settings(2, timeout=8.0), cpu_wait=6)  # type: ignore[operator]
    assert assessment.state == Critical
    assert "overloaded" not in assessment.summary


#: A CPU-bound loop that ends by itself, so that nothing outlives the test even if it is killed halfway.
HOG = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


@contextlib.contextmanager
def busy_core(core: int, hogs: int, seconds: float) -> Iterator[None]:
    """``hogs`` CPU-bound processes pinned to ``core`` (taskset replaces itself with the interpreter, so killing
    the process ends the loop), each ending by itself after ``seconds`` at the latest."""
    procs = [subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-S", "-c", HOG.format(seconds=seconds)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(hogs)]
    try:
        time.sleep(1.0)  # their start-up is over: from here on they only spin
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


@pytest.fixture
def plugin_core() -> Iterator[int]:
    """The core the plugin and the CPU-bound processes get; this process (and so the fake server's threads,
    started after) moves to another one, so that the server answers at once."""
    before = os.sched_getaffinity(0)
    if len(before) < 2 or not os.path.exists("/usr/bin/taskset") or cpu_wait() is None:
        pytest.skip("needs two cores, taskset and the kernel's scheduler statistics")
    core, other = sorted(before)[:2]
    os.sched_setaffinity(0, {other})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, before)


def test_a_starved_plugin_blames_the_monitoring_host(plugin_core: int) -> None:
    core = plugin_core
    with FakeApiServer(healthy_routes()) as server, busy_core(core, hogs=30, seconds=30):
        run = run_plugin(*ca_args(server), "-t", "2", command=["taskset", "-c", str(core), str(plugin())],
                         timeout=60)
    assert run.code == 3, run.stdout
    assert run.first_line.startswith("K8S_HEALTH UNKNOWN - the monitoring host is overloaded: waited "), run.stdout
    assert "s for CPU of the 2 s deadline; " in run.first_line


def test_a_slow_server_on_an_idle_host_stays_critical() -> None:
    routes = {**healthy_routes(), "/readyz": Reply(200, b"ok", delay=3)}
    with FakeApiServer(routes) as server:
        run = run_plugin(*ca_args(server), "-t", "1")
    assert run.code == 2, run.stdout
    assert "did not answer" in run.first_line and "overloaded" not in run.first_line, run.first_line
