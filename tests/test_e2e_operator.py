"""Judging like an operator (SPEC section 6), end to end: sub-check policy, reasons, several servers,
components and certificate expiry, with the installed command against HTTPS servers on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from conftest import ca_args, run_plugin
from fakeapi import FakeApiServer, Reply, etcd_down_routes, healthy_routes, shutdown_routes

# Every case runs against both installs: pip's, and the Debian package on Debian 12's libraries.
pytestmark = pytest.mark.usefixtures("each_install")

ETCD_DOWN = "readyz: etcd, etcd-readiness failed (2 of 33 sub-checks)"


@pytest.fixture
def etcd_down() -> Iterator[FakeApiServer]:
    with FakeApiServer(etcd_down_routes()) as server:
        yield server


# -- policy -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("policy", "code", "line"), [
    ([], 2, f"K8S_HEALTH CRITICAL - {ETCD_DOWN}"),
    (["--warning-check", "etcd-readiness", "--warning-check", "etcd"], 1,
     f"K8S_HEALTH WARNING - {ETCD_DOWN}, WARNING by --warning-check"),
    (["--warning-check", "etcd*"], 1, f"K8S_HEALTH WARNING - {ETCD_DOWN}, WARNING by --warning-check"),
    (["--warning-check", "etcd*", "--critical-check", "etcd"], 2, f"K8S_HEALTH CRITICAL - {ETCD_DOWN}"),
    (["--warning-check", "etcd"], 2, f"K8S_HEALTH CRITICAL - {ETCD_DOWN}"),
    (["--ignore-check", "etcd*"], 0, f"K8S_HEALTH OK - {ETCD_DOWN}, ignored by --ignore-check"),
    (["--ignore-check", "*", "--warning-check", "etcd-readiness"], 1,
     f"K8S_HEALTH WARNING - {ETCD_DOWN}, WARNING by --warning-check"),
])
def test_policy_precedence(etcd_down: FakeApiServer, policy: list[str], code: int, line: str) -> None:
    run = run_plugin(*ca_args(etcd_down), *policy)
    assert (run.code, run.first_line) == (code, line)


def test_ignored_failures_are_still_listed(etcd_down: FakeApiServer) -> None:
    run = run_plugin(*ca_args(etcd_down), "--ignore-check", "etcd*", "-v")
    assert "[-] readyz etcd-readiness: failed: reason withheld (ignored by policy)" in run.long_output


def test_a_glob_that_matches_nothing_is_named(etcd_down: FakeApiServer) -> None:
    run = run_plugin(*ca_args(etcd_down), "--warning-check", "etdc", "-v")
    assert "--warning-check 'etdc' matches no sub-check the server reported" in run.long_output


# -- reasons ------------------------------------------------------------------------------------------------

def test_reasons_are_fetched_for_failed_checks(etcd_down: FakeApiServer) -> None:
    run = run_plugin(*ca_args(etcd_down), "-v")
    assert run.first_line == f"K8S_HEALTH CRITICAL - {ETCD_DOWN}"
    assert "[-] readyz etcd: failed: error getting data from etcd: context deadline exceeded" in run.long_output
    paths = sorted(seen.path for seen in etcd_down.requests)
    assert paths == ["/readyz", "/readyz/etcd", "/readyz/etcd-readiness"]


def test_shutdown_reason() -> None:
    with FakeApiServer(shutdown_routes()) as server:
        run = run_plugin(*ca_args(server), "-v")
    assert "[-] readyz shutdown: failed: process is shutting down" in run.long_output


def test_forbidden_reasons_give_the_rbac_hint_once() -> None:
    routes = etcd_down_routes()
    forbidden = Reply.from_capture("auth/readyz_etcd_subpath_forbidden.txt")
    routes["/readyz/etcd"] = forbidden
    routes["/readyz/etcd-readiness"] = forbidden
    with FakeApiServer(routes) as server:
        run = run_plugin(*ca_args(server), "-v")
    assert run.code == 2
    assert "[-] readyz etcd: failed: reason withheld" in run.long_output
    hints = [line for line in run.long_output if line.startswith("reasons withheld")]
    assert hints == ["reasons withheld: the server forbids reading /<endpoint>/<check>; grant get on /readyz/*, "
                     "/livez/* and /healthz/* (ClusterRole system:monitoring, or nonResourceURLs in a ClusterRole)"]


def test_slow_reasons_do_not_break_the_deadline() -> None:
    routes = etcd_down_routes()
    routes["/readyz/etcd"] = Reply(500, b"internal server error: slow\n", delay=10)
    with FakeApiServer(routes) as server:
        run = run_plugin(*ca_args(server), "-t", "2", "-v")
    assert (run.code, run.first_line) == (2, f"K8S_HEALTH CRITICAL - {ETCD_DOWN}")
    assert run.seconds < 2 + 1.5
    assert any(line.startswith("[-] readyz etcd: failed: ") for line in run.long_output)


def test_no_reasons(etcd_down: FakeApiServer) -> None:
    run = run_plugin(*ca_args(etcd_down), "--no-reasons", "-v")
    assert [seen.path for seen in etcd_down.requests] == ["/readyz"]
    assert "[-] readyz etcd: failed: reason withheld" in run.long_output


# -- several servers ----------------------------------------------------------------------------------------

def _servers(stack: ExitStack, *route_sets: dict[str, Reply]) -> list[FakeApiServer]:
    import trustme
    from fakeapi import FakeApiServer as Fake

    ca = trustme.CA()
    return [stack.enter_context(Fake(routes, ca=ca)) for routes in route_sets]


def _args(servers: list[FakeApiServer]) -> list[str]:
    args = ["--certificate-authority", servers[0].ca_file]
    for server in servers:
        args += ["-s", server.url]
    return args


def test_three_servers_one_sick() -> None:
    with ExitStack() as stack:
        servers = _servers(stack, healthy_routes(), healthy_routes(), etcd_down_routes())
        sick = servers[2].url.split("//")[1]
        worst = run_plugin(*_args(servers))
        tolerant = run_plugin(*_args(servers), "--min-healthy", "2", "-v")
        strict = run_plugin(*_args(servers), "--min-healthy", "3")
    assert (worst.code, worst.first_line) == (2, f"K8S_HEALTH CRITICAL - 2 of 3 API servers healthy; {sick} "
                                                 f"{ETCD_DOWN}")
    assert (tolerant.code, tolerant.first_line) == (1, f"K8S_HEALTH WARNING - 2 of 3 API servers healthy "
                                                       f"(--min-healthy 2); {sick} {ETCD_DOWN}")
    assert f"[-] {sick} readyz etcd: failed: error getting data from etcd: context deadline exceeded" in \
        tolerant.long_output
    assert strict.code == 2
    port = sick.split(":")[1]
    assert f"127_0_0_1_{port}_readyz_failed=2;;;0" in worst.perfdata.split()


def test_three_servers_two_sick_with_min_healthy() -> None:
    with ExitStack() as stack:
        servers = _servers(stack, healthy_routes(), etcd_down_routes(), shutdown_routes())
        run = run_plugin(*_args(servers), "--min-healthy", "2")
    assert run.code == 2
    assert run.first_line.startswith("K8S_HEALTH CRITICAL - 1 of 3 API servers healthy (--min-healthy 2); ")


def test_all_healthy_servers() -> None:
    with ExitStack() as stack:
        servers = _servers(stack, healthy_routes(), healthy_routes())
        ports = [server.port for server in servers]
        run = run_plugin(*_args(servers), "-e", "livez", "-e", "readyz")
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - 2 of 2 API servers healthy (livez, readyz)")
    labels = {item.split("=")[0] for item in run.perfdata.split()}
    for port in ports:
        prefix = f"127_0_0_1_{port}_"
        assert {f"{prefix}livez_time", f"{prefix}readyz_checks", f"{prefix}cert_days_left"} <= labels


def test_servers_are_checked_concurrently() -> None:
    reply = Reply.from_capture("healthy/readyz_verbose_none.txt")
    slow = {"/readyz": Reply(reply.status, reply.body, reply.headers, delay=1.0)}
    with ExitStack() as stack:
        servers = _servers(stack, slow, slow, slow)
        run = run_plugin(*_args(servers))
    assert run.code == 0
    assert run.seconds < 2.2  # one at a time would take more than 3 s


def test_endpoints_of_a_server_are_asked_at_once() -> None:
    """Each endpoint answers only while the other is asked too: asked in turn, both would get a 504."""
    routes = healthy_routes()
    routes["/livez"] = dataclasses.replace(routes["/livez"], after="/readyz")
    routes["/readyz"] = dataclasses.replace(routes["/readyz"], after="/livez")
    with FakeApiServer(routes) as server:
        run = run_plugin(*ca_args(server), "-e", "livez", "-e", "readyz")
        handshakes = server.handshakes
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - livez: all 30 sub-checks passed; readyz: all 33 "
                                             "sub-checks passed")
    assert handshakes == 2  # a connection each, as both were in flight together


def test_etcd_hung_names_etcd_on_every_endpoint() -> None:
    """Measured with etcd hung: /livez answers after 2 s, /readyz after 4 s, a reason in seconds too. In turn
    that is 7.8 s and the second endpoint lost its names to the 8 s deadline; at once it fits."""
    routes = etcd_down_routes()
    for path, seconds in (("/livez", 2.0), ("/readyz", 4.0), ("/readyz/etcd", 1.5), ("/livez/etcd", 1.5)):
        reply = routes.get(path, routes["/readyz/etcd"])
        routes[path] = dataclasses.replace(reply, delay=seconds)
    with FakeApiServer(routes) as server:
        run = run_plugin(*ca_args(server), "-e", "livez", "-e", "readyz", "-v")
    assert run.code == 2
    assert run.first_line == ("K8S_HEALTH CRITICAL - livez: etcd failed (1 of 30 sub-checks); readyz: etcd, "
                              "etcd-readiness failed (2 of 33 sub-checks)")
    assert "[-] readyz etcd: failed: error getting data from etcd: context deadline exceeded" in run.long_output
    assert "[-] livez etcd: failed: error getting data from etcd: context deadline exceeded" in run.long_output


def test_unreachable_server_among_several() -> None:
    with ExitStack() as stack:
        servers = _servers(stack, healthy_routes())
        run = run_plugin(*_args(servers), "-s", "https://127.0.0.1:1", "--min-healthy", "1")
    assert run.code == 1
    assert run.first_line == ("K8S_HEALTH WARNING - 1 of 2 API servers healthy (--min-healthy 1); 127.0.0.1:1 "
                              "readyz: cannot connect to 127.0.0.1:1: connection refused (API server down or wrong "
                              "port?)")


# -- components ---------------------------------------------------------------------------------------------

def test_kube_scheduler_preset_asks_healthz() -> None:
    routes = {"/healthz": Reply(200, b"[+]ping ok\n[+]leaderElection ok\nhealthz check passed\n")}
    with FakeApiServer(routes) as server:
        run = run_plugin("--component", "kube-scheduler", "-H", "127.0.0.1", "-p", str(server.port),
                         "--certificate-authority", server.ca_file)
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - healthz: all 2 sub-checks passed")


def test_kube_controller_manager_has_no_readyz() -> None:
    with FakeApiServer({"/healthz": Reply(200, b"ok")}) as server:
        run = run_plugin("--component", "kube-controller-manager", "-H", "127.0.0.1", "-p", str(server.port),
                         "--certificate-authority", server.ca_file, "-e", "readyz")
    assert run.code == 3
    assert run.first_line.endswith("/readyz?verbose: kube-controller-manager does not serve that endpoint")


def test_kubelet_preset_is_plain_http_without_credentials() -> None:
    with FakeApiServer({"/healthz": Reply(200, b"ok")}, tls=False) as server:
        run = run_plugin("--component", "kubelet", "-H", "127.0.0.1", "-p", str(server.port),
                         env={"K8S_HEALTH_TOKEN": "never-sent"})
        headers = [seen.header("Authorization") for seen in server.requests]
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - healthz: ok")
    assert headers == [None]


@pytest.mark.parametrize(("reply", "code", "line"), [
    (Reply(200, b'{"health":"true","reason":""}'), 0, "K8S_HEALTH OK - health: all 1 sub-checks passed"),
    (Reply(503, b'{"health":"false","reason":"RAFT NO LEADER"}\n'), 2,
     "K8S_HEALTH CRITICAL - health: health (RAFT NO LEADER) failed (1 of 1 sub-checks)"),
])
def test_etcd_health_json(reply: Reply, code: int, line: str) -> None:
    with FakeApiServer({"/health": reply}) as server:
        run = run_plugin("--component", "etcd", "-H", "127.0.0.1", "-p", str(server.port),
                         "--certificate-authority", server.ca_file)
    assert (run.code, run.first_line) == (code, line)


def test_etcd_readyz_dialect_with_inline_errors() -> None:
    body = b"[-]linearizable_read failed: etcdserver: leader changed\n[+]data_corruption ok\n[+]serializable_read ok\n"
    with FakeApiServer({"/readyz": Reply(503, body)}) as server:
        run = run_plugin("--component", "etcd", "-H", "127.0.0.1", "-p", str(server.port),
                         "--certificate-authority", server.ca_file, "-e", "readyz", "-v")
    assert run.code == 2
    assert run.first_line == ("K8S_HEALTH CRITICAL - readyz: linearizable_read (etcdserver: leader changed) failed "
                              "(1 of 3 sub-checks)")
    assert [seen.path for seen in server.requests] == ["/readyz"]  # the reason came inline: nothing to look up


# -- certificate expiry -------------------------------------------------------------------------------------

def _expiring(days: float) -> FakeApiServer:
    return FakeApiServer(healthy_routes(), cert_not_after=datetime.datetime.now(datetime.timezone.utc)
                         + datetime.timedelta(days=days))


@pytest.mark.parametrize(("days", "code", "state"), [(40, 0, "OK"), (20, 1, "WARNING"), (5, 2, "CRITICAL")])
def test_certificate_expiry(days: float, code: int, state: str) -> None:
    with _expiring(days) as server:
        run = run_plugin(*ca_args(server), "--cert-warning", "30", "--cert-critical", "7")
    assert run.code == code
    cert_days = float(run.perfdata.split()[0].split("=")[1].split(";")[0])
    assert run.perfdata.split()[0].endswith(";30:;7:")  # "alert below" ranges, as Nagios writes them
    assert run.perfdata.startswith("cert_days_left=") and days - 1 < cert_days <= days
    if code:
        option = "--cert-warning 30" if code == 1 else "--cert-critical 7"
        match = re.fullmatch(rf"K8S_HEALTH {state} - server certificate expires in (\d+\.\d) days "
                             rf"\(\d{{4}}-\d\d-\d\d, {option}\); readyz: all 33 sub-checks passed", run.first_line)
        assert match is not None, run.first_line
        assert days - 1 < float(match.group(1)) <= days
    else:
        assert run.first_line == "K8S_HEALTH OK - readyz: all 33 sub-checks passed"


def test_certificate_expiry_is_not_judged_without_verification() -> None:
    with _expiring(3) as server:
        run = run_plugin("-s", server.url, "--insecure-skip-tls-verify", "--cert-critical", "7", "-v")
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed; TLS not verified; "
                                             "certificate expiry not judged")
    assert "cert_days_left" not in run.perfdata
    assert "the certificate expiry cannot be judged: the certificate is not verified" in run.long_output


def test_reason_look_ups_escape_what_could_steer_the_url() -> None:
    body = b"[+]ping ok\n[-]a?b#c failed: reason withheld\n[-]x/../y failed: reason withheld\nreadyz check failed\n"
    with FakeApiServer({"/readyz": Reply(500, body)}) as server:
        run = run_plugin(*ca_args(server))
        paths = sorted(seen.path for seen in server.requests)
    assert run.code == 2
    assert paths == ["/readyz", "/readyz/a%3Fb%23c"]  # the ".." name is not looked up at all


def test_kubelet_preset_does_not_read_a_token_file() -> None:
    with FakeApiServer({"/healthz": Reply(200, b"ok")}, tls=False) as server:
        run = run_plugin("--component", "kubelet", "-H", "127.0.0.1", "-p", str(server.port),
                         "--token-file", "/nonexistent/token")
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - healthz: ok")
