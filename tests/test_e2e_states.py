"""One test per row of SPEC section 3, run as an operator would: the installed command against a real HTTPS
server on 127.0.0.1 answering with the byte-exact bodies of a real kube-apiserver. Each test pins the exit
code and the exact status line; ``run_plugin`` also fails any test whose run wrote to stderr."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ca_args, run_plugin
from fakeapi import FakeApiServer, Reply, etcd_down_routes, healthy_routes, shutdown_routes

#: Every case runs against the pip install and the Debian package.
pytestmark = pytest.mark.usefixtures("each_install")


@pytest.fixture
def healthy() -> Iterator[FakeApiServer]:
    with FakeApiServer(healthy_routes()) as server:
        yield server


# -- 200 from every endpoint asked: OK -------------------------------------------------------------------

def test_ok_readyz_names_endpoint_and_count(healthy: FakeApiServer) -> None:
    run = run_plugin(*ca_args(healthy))
    assert run.code == 0
    assert run.first_line == "K8S_HEALTH OK - readyz: all 33 sub-checks passed"
    assert run.perfdata.startswith("cert_days_left=")
    assert " readyz_checks=33;;;0 readyz_failed=0;;;0 readyz_time=" in run.perfdata
    assert [seen.path for seen in healthy.requests] == ["/readyz"]
    assert healthy.requests[0].query == [("verbose", "")]


def test_ok_every_endpoint_asked_is_reported(healthy: FakeApiServer) -> None:
    run = run_plugin(*ca_args(healthy), "-e", "livez", "-e", "readyz", "-e", "healthz")
    assert run.code == 0
    assert run.first_line == ("K8S_HEALTH OK - livez: all 30 sub-checks passed; readyz: all 33 sub-checks passed; "
                              "healthz: all 30 sub-checks passed")
    assert sorted(seen.path for seen in healthy.requests) == ["/healthz", "/livez", "/readyz"]  # asked at once
    labels = [item.split("=")[0] for item in run.perfdata.split()]
    assert labels == ["cert_days_left", "healthz_checks", "healthz_failed", "healthz_time", "livez_checks",
                      "livez_failed", "livez_time", "readyz_checks", "readyz_failed", "readyz_time"]


def test_ok_with_hostname_and_port(healthy: FakeApiServer) -> None:
    run = run_plugin("-H", "127.0.0.1", "-p", str(healthy.port), "--certificate-authority", healthy.ca_file)
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed")


def test_ok_plain_ok_body_has_no_counts() -> None:
    with FakeApiServer({"/readyz": Reply(200, b"ok", (("Content-Type", "text/plain"),))}) as server:
        run = run_plugin(*ca_args(server))
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - readyz: ok")
    assert run.perfdata.split()[1].startswith("readyz_time=") and "readyz_checks" not in run.perfdata


def test_ok_excluded_checks_are_counted_and_sent_as_repeated_parameters() -> None:
    routes = {"/readyz": Reply.from_capture("etcd-down/readyz_verbose_exclude_etcd_and_etcd-readiness.txt")}
    with FakeApiServer(routes) as server:
        run = run_plugin(*ca_args(server), "--exclude", "etcd", "--exclude", "etcd-readiness")
        query = server.requests[0].query
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed (2 excluded)")
    assert query == [("verbose", ""), ("exclude", "etcd"), ("exclude", "etcd-readiness")]


# -- 500 with [-] lines: the failed sub-checks, CRITICAL ------------------------------------------------

def test_critical_etcd_down_names_failed_checks() -> None:
    with FakeApiServer(etcd_down_routes()) as server:
        run = run_plugin(*ca_args(server), "-v")
    assert run.code == 2
    assert run.first_line == "K8S_HEALTH CRITICAL - readyz: etcd, etcd-readiness failed (2 of 33 sub-checks)"
    # The reason comes from /readyz/etcd (captured from the real server); /readyz/etcd-readiness has none here.
    assert run.long_output == ["[-] readyz etcd: failed: error getting data from etcd: context deadline exceeded",
                               "[-] readyz etcd-readiness: failed: reason withheld"]
    assert " readyz_checks=33;;;0 readyz_failed=2;;;0 readyz_time=" in run.perfdata


def test_critical_graceful_shutdown_fails_readyz_only() -> None:
    with FakeApiServer(shutdown_routes()) as server:
        run = run_plugin(*ca_args(server), "-e", "livez", "-e", "readyz")
    assert run.code == 2
    assert run.first_line == ("K8S_HEALTH CRITICAL - readyz: shutdown failed (1 of 33 sub-checks); "
                              "livez: all 30 sub-checks passed")


def test_critical_many_failures_are_cut_to_the_first_few() -> None:
    body = "".join(f"[-]check-{n} failed: reason withheld\n" for n in range(7)) + "readyz check failed\n"
    with FakeApiServer({"/readyz": Reply(500, body.encode())}) as server:
        run = run_plugin(*ca_args(server))
    assert run.first_line == ("K8S_HEALTH CRITICAL - readyz: check-0, check-1, check-2 and 4 more failed "
                              "(7 of 7 sub-checks)")


def test_critical_v1_32_body_with_other_check_names() -> None:
    with FakeApiServer({"/readyz": Reply.from_capture("v1.32/readyz_verbose_etcd_down.txt")}) as server:
        run = run_plugin(*ca_args(server))
    assert run.first_line == "K8S_HEALTH CRITICAL - readyz: etcd, etcd-readiness failed (2 of 33 sub-checks)"


# -- 5xx without sub-check lines: CRITICAL with status and reason ----------------------------------------

@pytest.mark.parametrize(("status", "line"), [
    (502, "K8S_HEALTH CRITICAL - readyz: HTTP 502 Bad Gateway: <html><body>upstream down</body></html>"),
    (503, "K8S_HEALTH CRITICAL - readyz: HTTP 503 Service Unavailable: <html><body>upstream down</body></html>"),
    (500, "K8S_HEALTH CRITICAL - readyz: HTTP 500 Internal Server Error: <html><body>upstream down</body></html>"),
])
def test_critical_5xx_without_checks(status: int, line: str) -> None:
    with FakeApiServer({"/readyz": Reply(status, b"<html><body>upstream down</body></html>\n")}) as server:
        run = run_plugin(*ca_args(server))
    assert (run.code, run.first_line) == (2, line)


# -- no answer: CRITICAL with the server and the cause ----------------------------------------------------

def test_critical_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = run_plugin("-s", f"https://127.0.0.1:{port}", "-e", "livez", "-e", "readyz")
    assert run.code == 2
    assert run.first_line == (f"K8S_HEALTH CRITICAL - livez, readyz: cannot connect to 127.0.0.1:{port}: "
                              "connection refused (API server down or wrong port?)")
    assert run.perfdata == ""


def test_critical_closed_without_answer() -> None:
    with FakeApiServer({"/readyz": Reply(200, raw=b"")}) as server:
        port = server.port
        run = run_plugin(*ca_args(server))
    host = f"127.0.0.1:{port}"
    assert run.code == 2
    assert run.first_line in (f"K8S_HEALTH CRITICAL - readyz: {host} reset the connection",
                              f"K8S_HEALTH CRITICAL - readyz: {host} closed the connection without answering "
                              f"https://{host}/readyz?verbose")


def test_critical_read_timeout_within_the_deadline() -> None:
    with FakeApiServer({"/readyz": Reply(200, hang=True)}) as server:
        url = server.url
        run = run_plugin(*ca_args(server), "-t", "2")
    assert run.code == 2
    assert run.first_line == (f"K8S_HEALTH CRITICAL - readyz: {url}/readyz?verbose did not answer within the 2 s "
                              "deadline (-t)")
    assert run.seconds < 2 + 1.5  # interpreter start-up included


def test_critical_connect_timeout() -> None:
    # A listening socket whose accept queue is full drops new SYNs: the connect itself times out.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            run = run_plugin("-s", f"https://127.0.0.1:{port}", "-t", "2")
        finally:
            for filler in fillers:
                filler.close()
    assert run.code == 2
    assert run.first_line == (f"K8S_HEALTH CRITICAL - readyz: cannot connect to 127.0.0.1:{port}: no connection "
                              "within the 2 s deadline (-t)")


# -- the plugin's own deadline: UNKNOWN naming what it waited for ----------------------------------------

def test_unknown_when_the_deadline_fires_while_reading_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    run = run_plugin("-s", "https://127.0.0.1:1", "--token-file", str(fifo), "-t", "1")
    assert run.code == 3
    assert run.first_line == ("K8S_HEALTH UNKNOWN - the 1 s deadline (-t) ran out while reading the kubeconfig "
                              "and credentials")
    assert run.seconds < 1 + 1.5


# -- TLS: CRITICAL with the cause and what to do ----------------------------------------------------------

def test_critical_tls_unknown_ca(healthy: FakeApiServer) -> None:
    run = run_plugin("-s", healthy.url)
    assert run.code == 2
    assert run.first_line == ("K8S_HEALTH CRITICAL - readyz: TLS error: the server certificate is not trusted: pass "
                              "the cluster CA with --certificate-authority (kubeadm: /etc/kubernetes/pki/ca.crt)")


def test_critical_tls_wrong_name() -> None:
    with FakeApiServer(healthy_routes(), server_names=["kubernetes", "kubernetes.default"]) as server:
        run = run_plugin(*ca_args(server))
        fixed = run_plugin(*ca_args(server), "--tls-server-name", "kubernetes")
    assert run.code == 2
    assert run.first_line.startswith("K8S_HEALTH CRITICAL - readyz: TLS error: ")
    assert "--tls-server-name" in run.first_line and "kubernetes" in run.first_line
    assert (fixed.code, fixed.first_line) == (0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed")


def test_critical_tls_spoken_to_a_plain_port() -> None:
    with FakeApiServer(healthy_routes(), tls=False) as server:
        port = server.port
        run = run_plugin("-s", f"https://127.0.0.1:{port}")
    assert run.code == 2
    assert run.first_line == (f"K8S_HEALTH CRITICAL - readyz: TLS error: 127.0.0.1:{port} does not speak TLS "
                              "on this port: check the port, or use http://")


def test_client_certificate_required_and_given(tmp_path: Path) -> None:
    with FakeApiServer(healthy_routes(), require_client_cert=True) as server:
        cert, key = server.issue_client_cert(tmp_path)
        without = run_plugin(*ca_args(server))
        with_cert = run_plugin(*ca_args(server), "--client-certificate", cert, "--client-key", key)
    assert without.code == 2
    assert without.first_line.startswith("K8S_HEALTH CRITICAL - readyz: TLS error: ")
    assert "client certificate" in without.first_line
    assert (with_cert.code, with_cert.first_line) == (0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed")


def test_insecure_skip_tls_verify_is_never_silent(healthy: FakeApiServer) -> None:
    run = run_plugin("-s", healthy.url, "--insecure-skip-tls-verify")
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed; TLS not verified")


# -- 401 and 403: UNKNOWN with what to do ----------------------------------------------------------------

def test_unknown_401_anonymous_off() -> None:
    with FakeApiServer(healthy_routes(), token="right-token", anonymous=False) as server:
        run = run_plugin(*ca_args(server))
    assert run.code == 3
    assert run.first_line == ("K8S_HEALTH UNKNOWN - readyz: HTTP 401 Unauthorized: anonymous access is off (k3s, "
                              "RKE2, hardened); give a token with --token-file or K8S_HEALTH_TOKEN")


def test_unknown_401_wrong_token_even_where_anonymous_is_allowed(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("wrong-token\n")
    with FakeApiServer(healthy_routes(), token="right-token", anonymous=True) as server:
        run = run_plugin(*ca_args(server), "--token-file", str(token_file))
    assert run.code == 3
    assert run.first_line == (f"K8S_HEALTH UNKNOWN - readyz: HTTP 401 Unauthorized: the token from --token-file "
                              f"{token_file} was rejected (expired or revoked?)")


def test_token_from_file_or_environment_is_sent(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("  right-token\r\n")
    with FakeApiServer(healthy_routes(), token="right-token", anonymous=False) as server:
        from_file = run_plugin(*ca_args(server), "--token-file", str(token_file), "-vv")
        from_env = run_plugin(*ca_args(server), "-vvv", env={"K8S_HEALTH_TOKEN": "right-token"})
        headers = [seen.header("Authorization") for seen in server.requests]
    assert (from_file.code, from_env.code) == (0, 0)
    assert headers == ["Bearer right-token", "Bearer right-token"]
    assert f"credentials: bearer token from --token-file {token_file}" in from_file.long_output
    assert "credentials: bearer token from K8S_HEALTH_TOKEN" in from_env.long_output
    for run in (from_file, from_env):
        assert "right-token" not in run.stdout


def test_token_file_beats_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("right-token")
    with FakeApiServer(healthy_routes(), token="right-token", anonymous=False) as server:
        run = run_plugin(*ca_args(server), "--token-file", str(token_file), env={"K8S_HEALTH_TOKEN": "env-token"})
    assert run.code == 0


def test_token_is_never_sent_over_plain_http() -> None:
    with FakeApiServer(healthy_routes(), tls=False) as server:
        run = run_plugin("-s", server.url, env={"K8S_HEALTH_TOKEN": "secret-token"})
        headers = [seen.header("Authorization") for seen in server.requests]
    assert headers == [None]
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed; token withheld "
                                             "(plain http)")
    assert "secret-token" not in run.stdout


@pytest.mark.parametrize(("capture", "user"), [
    ("auth/readyz_anonymous_forbidden_http11.txt", "system:anonymous"),
    ("auth/readyz_user_forbidden_http11.txt", "monitor"),
])
def test_unknown_403_shows_the_server_message(capture: str, user: str) -> None:
    with FakeApiServer({"/readyz": Reply.from_capture(capture)}) as server:
        run = run_plugin(*ca_args(server), "-v")
    assert run.code == 3
    assert run.first_line == (f'K8S_HEALTH UNKNOWN - readyz: HTTP 403 Forbidden: User "{user}" cannot get path '
                              '"/readyz"; grant get on that path (RBAC)')
    assert any("ClusterRole" in line for line in run.long_output)


# -- 404, redirects, 429, anything else: UNKNOWN ---------------------------------------------------------

def test_unknown_404(healthy: FakeApiServer) -> None:
    run = run_plugin(*ca_args(healthy), "-e", "readyz", "-e", "livez")
    healthy.set_route("/livez", None)
    run = run_plugin(*ca_args(healthy), "-e", "livez")
    assert run.code == 3
    assert run.first_line == (f"K8S_HEALTH UNKNOWN - livez: HTTP 404 Not Found for {healthy.url}/livez?verbose: "
                              "this server does not serve that endpoint")


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_unknown_redirect_is_not_followed(status: int) -> None:
    seen_elsewhere: list[str] = []
    with FakeApiServer(healthy_routes()) as other:
        target = f"{other.url}/readyz"
        reply = Reply(status, b"", (("Location", target),))
        with FakeApiServer({"/readyz": reply}) as server:
            run = run_plugin(*ca_args(server), env={"K8S_HEALTH_TOKEN": "secret-token"})
        seen_elsewhere = [seen.path for seen in other.requests]
    assert run.code == 3
    assert run.first_line.startswith(f"K8S_HEALTH UNKNOWN - readyz: HTTP {status} ")
    assert run.first_line.endswith(f": redirect to {target} not followed; point -s at the API server itself")
    assert seen_elsewhere == []


def test_unknown_429_with_retry_after() -> None:
    with FakeApiServer({"/readyz": Reply(429, b"Too many requests\n", (("Retry-After", "5"),))}) as server:
        run = run_plugin(*ca_args(server))
    assert (run.code, run.first_line) == (3, "K8S_HEALTH UNKNOWN - readyz: HTTP 429 Too Many Requests (Retry-After "
                                             "5 s): the server is throttling requests")


def test_unknown_other_status() -> None:
    with FakeApiServer({"/readyz": Reply(418, b"I'm a teapot\n")}) as server:
        run = run_plugin(*ca_args(server))
    assert (run.code, run.first_line) == (3, "K8S_HEALTH UNKNOWN - readyz: unexpected answer HTTP 418 I'm a Teapot: "
                                             "I'm a teapot")


# -- a server warn: line: at least WARNING ---------------------------------------------------------------

def test_warning_for_unknown_exclude_name() -> None:
    routes = {"/readyz": Reply.from_capture("healthy/readyz_exclude_nonexistent_verbose_monitor.txt")}
    with FakeApiServer(routes) as server:
        run = run_plugin(*ca_args(server), "--exclude", "nonexistent")
    assert run.code == 1
    assert run.first_line == ('K8S_HEALTH WARNING - readyz: all 33 sub-checks passed; server warns: some health '
                              'checks cannot be excluded: no matches for "nonexistent"')


# -- response time beyond -w / -c -----------------------------------------------------------------------

@pytest.mark.parametrize(("option", "code", "state"), [("-w", 1, "WARNING"), ("-c", 2, "CRITICAL")])
def test_response_time_thresholds(option: str, code: int, state: str) -> None:
    reply = Reply.from_capture("healthy/readyz_verbose_none.txt")
    slow = Reply(reply.status, reply.body, reply.headers, delay=0.3)
    with FakeApiServer({"/readyz": slow}) as server:
        run = run_plugin(*ca_args(server), option, "0.1")
    assert run.code == code
    prefix = f"K8S_HEALTH {state} - readyz: all 33 sub-checks passed in 0."
    assert run.first_line.startswith(prefix) and run.first_line.endswith(f" s (beyond {option} 0.1)")
    threshold = ";0.1;;0" if option == "-w" else ";;0.1;0"
    assert run.perfdata.split()[-1].endswith("s" + threshold)


def test_response_time_within_thresholds_is_ok(healthy: FakeApiServer) -> None:
    run = run_plugin(*ca_args(healthy), "-w", "5", "-c", "10")
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed")
    assert run.perfdata.split()[-1].endswith("s;5;10;0")


# -- bad arguments and files: UNKNOWN with what to fix ---------------------------------------------------

@pytest.mark.parametrize(("args", "line"), [
    ((), "K8S_HEALTH UNKNOWN - no server named and no kubeconfig found: give -s https://HOST:6443, -H HOST or "
         "--kubeconfig PATH"),
    (("--bogus",), "K8S_HEALTH UNKNOWN - unrecognized arguments: --bogus (see --help)"),
    (("-s",), "K8S_HEALTH UNKNOWN - argument -s/--server: expected one argument (see --help)"),
    (("-s", "https://x", "-e", "nope"), "K8S_HEALTH UNKNOWN - argument -e/--endpoint: invalid choice: 'nope' "
                                        "(choose from 'livez', 'readyz', 'healthz', 'health') (see --help)"),
    (("-s", "https://x", "-w", "5:1"), "K8S_HEALTH UNKNOWN - argument -w/--warning: '5:1' is not a Nagios range "
                                       "such as 1, 0.5:2 or ~:3 (see --help)"),
    (("-s", "https://x", "-t", "0"), "K8S_HEALTH UNKNOWN - argument -t/--timeout: 0 is not a number of seconds "
                                     "(more than 0, at most 3600) (see --help)"),
    (("-s", "https://x", "-t", "nan"), "K8S_HEALTH UNKNOWN - argument -t/--timeout: nan is not a number of seconds "
                                       "(more than 0, at most 3600) (see --help)"),
    (("-H", "h", "-p", "70000"), "K8S_HEALTH UNKNOWN - argument -p/--port: 70000 is not a port number (1 to 65535) "
                                 "(see --help)"),
    (("-H", "h", "-p", "x"), "K8S_HEALTH UNKNOWN - argument -p/--port: 'x' is not a port number (see --help)"),
    (("-s", "https://a", "-H", "b"), "K8S_HEALTH UNKNOWN - give the servers either as -s URL or as -H HOST, not "
                                     "both"),
    (("-s", "https://a:6443", "-p", "1"), "K8S_HEALTH UNKNOWN - -p/--port goes with -H/--hostname; with -s put the "
                                          "port in the URL"),
    (("-s", "ftp://a"), "K8S_HEALTH UNKNOWN - -s/--server 'ftp://a': the scheme must be https (or http), not ftp"),
    (("-s", "https://u:p@a"), "K8S_HEALTH UNKNOWN - -s/--server must not hold credentials: use --token-file or "
                              "K8S_HEALTH_TOKEN"),
    (("-s", "https://a", "--insecure-skip-tls-verify", "--certificate-authority", "/x"),
     "K8S_HEALTH UNKNOWN - --insecure-skip-tls-verify and --certificate-authority exclude each other: verify with "
     "the CA, or do not verify"),
    (("-s", "https://a", "--token-file", "/nonexistent/token"),
     "K8S_HEALTH UNKNOWN - cannot read token file /nonexistent/token: No such file or directory; check the path "
     "and that the monitoring user may read it"),
    (("-s", "https://a", "--certificate-authority", "/nonexistent/ca.crt"),
     "K8S_HEALTH UNKNOWN - --certificate-authority /nonexistent/ca.crt does not exist: check the path"),
])
def test_unknown_for_bad_arguments(args: tuple[str, ...], line: str) -> None:
    run = run_plugin(*args)
    assert (run.code, run.stdout) == (3, line + "\n")


def test_unknown_for_an_empty_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(" \n")
    run = run_plugin("-s", "https://127.0.0.1:1", "--token-file", str(token_file))
    assert run.code == 3
    assert run.first_line.startswith(f"K8S_HEALTH UNKNOWN - token file {token_file} is empty")


def test_unknown_for_a_ca_file_that_is_no_certificate(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not a certificate\n")
    run = run_plugin("-s", "https://127.0.0.1:1", "--certificate-authority", str(ca))
    assert run.code == 3
    assert run.first_line.startswith(f"K8S_HEALTH UNKNOWN - --certificate-authority {ca} holds no usable PEM")


def test_help_and_version_exit_unknown_on_stdout() -> None:
    from check_k8s_health import __version__

    help_run = run_plugin("--help")
    assert help_run.code == 3 and help_run.stdout.startswith("usage: check_k8s_health")
    for flag in ("-V", "--version"):
        version = run_plugin(flag)
        assert (version.code, version.stdout) == (3, f"check_k8s_health {__version__}\n")


def test_python_dash_m_runs_the_same_plugin(healthy: FakeApiServer) -> None:
    import sys

    run = run_plugin(*ca_args(healthy), command=[sys.executable, "-m", "check_k8s_health"])
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed")


# -- internal errors: one UNKNOWN line, a traceback only with -vvv ---------------------------------------

_BROKEN = """
import sys
import check_k8s_health.checks.endpoints.judge as verdict
def broken(*args, **kwargs):
    raise RuntimeError("simulated defect")
verdict.judge = broken
from check_k8s_health.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("verbosity", [[], ["-v"], ["-vvv"]])
def test_unknown_for_an_internal_error(healthy: FakeApiServer, verbosity: list[str]) -> None:
    import sys

    run = run_plugin(*ca_args(healthy), *verbosity, command=[sys.executable, "-c", _BROKEN])
    assert run.code == 3
    assert run.first_line == ("K8S_HEALTH UNKNOWN - internal error: RuntimeError: simulated defect; run with -vvv "
                              "and report it")
    assert ("Traceback (most recent call last)" in run.stdout) == (verbosity == ["-vvv"])


def test_deadline_holds_with_several_slow_endpoints() -> None:
    reply = Reply.from_capture("healthy/readyz_verbose_none.txt")
    slow = Reply(reply.status, reply.body, reply.headers, delay=5)
    with FakeApiServer({"/readyz": slow, "/livez": slow, "/healthz": slow}) as server:
        run = run_plugin(*ca_args(server), "-e", "livez", "-e", "readyz", "-e", "healthz", "-t", "3")
        url = server.url
    assert run.code == 2
    assert run.first_line.startswith(f"K8S_HEALTH CRITICAL - livez: {url}/livez?verbose did not answer "
                                     "within the 3 s deadline (-t); readyz: ")
    assert run.seconds < 3 + 1.5


def test_a_token_file_every_user_can_read_is_named(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("right-token-0644")
    token_file.chmod(0o644)
    with FakeApiServer(healthy_routes(), token="right-token-0644", anonymous=False) as server:
        loose = run_plugin(*ca_args(server), "--token-file", str(token_file), "-v")
        token_file.chmod(0o640)
        tight = run_plugin(*ca_args(server), "--token-file", str(token_file), "-v")
    warning = (f"warning: {token_file} holds a token and every local user can read it (mode 0644): "
               f"chmod o-r {token_file}")
    assert loose.code == 0 and warning in loose.long_output
    assert tight.code == 0 and not any(line.startswith("warning:") for line in tight.long_output)


_WRAPPED_DEADLINE = """
import sys
from check_k8s_health import cli
from check_k8s_health.base.errors import DeadlineExceeded
from check_k8s_health.command import configure

def build_settings(*args, **kwargs):
    try:
        raise DeadlineExceeded(1, "importing a module")
    except DeadlineExceeded as exc:
        raise RuntimeError("Error calling __set_name__") from exc

configure.build_settings = build_settings
cli.main(sys.argv[1:])
"""


def test_a_deadline_wrapped_by_python_still_reads_as_the_deadline() -> None:
    import sys

    run = run_plugin("-s", "https://127.0.0.1:1", command=[sys.executable, "-c", _WRAPPED_DEADLINE])
    assert (run.code, run.first_line) == (3, "K8S_HEALTH UNKNOWN - the 1 s deadline (-t) ran out while importing a "
                                             "module")
