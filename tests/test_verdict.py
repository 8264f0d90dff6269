"""The state table of SPEC section 3 as pure function calls: answer or failure in, state and words out."""

from __future__ import annotations

from typing import Optional

import pytest
from fakeapi import load_capture
from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from check_k8s_health.base.errors import ConfigError, ConnectFailed, ReadTimedOut, TlsFailed
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.endpoints.judge import judge
from check_k8s_health.checks.endpoints.read import Outcome
from check_k8s_health.model.settings import Credential, Secret, Target, TlsSettings
from check_k8s_health.output.context import decimal
from check_k8s_health.transport.answer import Answer

ANONYMOUS = Target("https://10.0.0.1:6443", "--server", TlsSettings(), Credential())
WITH_TOKEN = Target("https://10.0.0.1:6443", "--server", TlsSettings(), Credential(Secret("t"), "K8S_HEALTH_TOKEN"))
PLAIN_WITH_TOKEN = Target("http://10.0.0.1:8080", "--server", TlsSettings(), Credential(Secret("t"), "env"))


def answer(status: int, body: str = "", reason: str = "", location: Optional[str] = None,
           retry_after: Optional[str] = None) -> Outcome:
    return Outcome.answered("readyz", Answer("https://10.0.0.1:6443/readyz?verbose", status, reason, body, 0.01,
                                             location=location, retry_after=retry_after))


def captured(name: str) -> Outcome:
    capture = load_capture(name)
    return answer(capture.status, capture.body.decode(), capture.reason)


@pytest.mark.parametrize(("outcome", "state", "words"), [
    (captured("healthy/readyz_verbose_none.txt"), Ok, "all 33 sub-checks passed"),
    (captured("healthy/readyz_none.txt"), Ok, "ok"),
    (captured("etcd-down/readyz_verbose.txt"), Critical, "etcd, etcd-readiness failed (2 of 33 sub-checks)"),
    (captured("shutdown/readyz_verbose_during_shutdown_delay.txt"), Critical, "shutdown failed (1 of 33 sub-checks)"),
    (captured("healthy/readyz_exclude_nonexistent_verbose_monitor.txt"), Warn,
     'all 33 sub-checks passed; server warns: some health checks cannot be excluded: no matches for "nonexistent"'),
    (answer(503, "", "Service Unavailable"), Critical, "HTTP 503 Service Unavailable"),
    (answer(500, "boom\n", "Internal Server Error"), Critical, "HTTP 500 Internal Server Error: boom"),
    (captured("auth/readyz_user_forbidden_http11.txt"), Unknown,
     'HTTP 403 Forbidden: User "monitor" cannot get path "/readyz"; grant get on that path (RBAC)'),
    (answer(403, "not json at all", "Forbidden"), Unknown,
     "HTTP 403 Forbidden: not json at all; grant get on that path (RBAC)"),
    (captured("healthy/readyz_nonexistent_sysmon.txt"), Unknown,
     "HTTP 404 Not Found for https://10.0.0.1:6443/readyz?verbose: this server does not serve that endpoint"),
    (answer(302, "", "Found", location="https://sso/login"), Unknown,
     "HTTP 302 Found: redirect to https://sso/login not followed; point -s at the API server itself"),
    (answer(302, "", "Found"), Unknown,
     "HTTP 302 Found: redirect to nowhere not followed; point -s at the API server itself"),
    (answer(429, "", "Too Many Requests", retry_after="5"), Unknown,
     "HTTP 429 Too Many Requests (Retry-After 5 s): the server is throttling requests"),
    (answer(400, "Client sent an HTTP request to an HTTPS server.\n", "Bad Request"), Unknown,
     "unexpected answer HTTP 400 Bad Request: Client sent an HTTP request to an HTTPS server."),
    (Outcome("readyz", error=ConnectFailed("cannot connect to h: connection refused")), Critical,
     "cannot connect to h: connection refused"),
    (Outcome("readyz", error=ReadTimedOut("no answer")), Critical, "no answer"),
    (Outcome("readyz", error=TlsFailed("TLS error: x")), Critical, "TLS error: x"),
    (Outcome("readyz", error=ConfigError("bad file")), Unknown, "bad file"),
])
def test_state_table(outcome: Outcome, state: ServiceState, words: str) -> None:
    verdict = judge(outcome, ANONYMOUS)
    assert (verdict.state, verdict.summary) == (state, words)


def test_a_200_is_never_a_problem_even_with_failed_lines() -> None:
    verdict = judge(answer(200, "[-]etcd failed: reason withheld\nreadyz check passed\n"), ANONYMOUS)
    assert verdict.state == Ok and verdict.summary == "1 sub-checks listed"


def test_a_500_is_never_ok_even_without_failed_lines() -> None:
    verdict = judge(answer(500, "[+]ping ok\nreadyz check failed\n", "Internal Server Error"), ANONYMOUS)
    assert verdict.state == Critical


def test_401_hints_depend_on_the_credentials() -> None:
    body = load_capture("auth/readyz_wrong_token.txt").body.decode()
    anonymous = judge(answer(401, body, "Unauthorized"), ANONYMOUS)
    rejected = judge(answer(401, body, "Unauthorized"), WITH_TOKEN)
    withheld = judge(answer(401, body, "Unauthorized"), PLAIN_WITH_TOKEN)
    assert all(v.state == Unknown for v in (anonymous, rejected, withheld))
    assert "anonymous access is off" in anonymous.summary
    assert "the token from K8S_HEALTH_TOKEN was rejected" in rejected.summary
    assert "withheld because http://10.0.0.1:8080 is plain http" in withheld.summary


def test_long_output_levels() -> None:
    verdict = judge(captured("etcd-down/readyz_verbose.txt"), ANONYMOUS)
    at_v = [line for level, line in verdict.lines if level <= 1]
    at_vv = [line for level, line in verdict.lines if level <= 2]
    assert at_v == ["[-] readyz etcd: failed: reason withheld", "[-] readyz etcd-readiness: failed: reason withheld"]
    assert len(at_vv) == 1 + 33 and at_vv[0].startswith("readyz: GET https://10.0.0.1:6443/readyz?verbose -> 500")


def test_hostile_names_cannot_break_the_line() -> None:
    body = "[-]a|b failed: x\n[-]" + "n" * 500 + " failed: y\nreadyz check failed\n"
    verdict = judge(answer(500, body), ANONYMOUS)
    assert "|" not in verdict.summary and "\n" not in verdict.summary
    assert len(verdict.summary) < 200


@pytest.mark.parametrize(("value", "text"), [(0.1 + 0.2, "0.3"), (1e-05, "0"), (0.012345, "0.0123"), (2.0, "2"),
                                             (12.5, "12.5")])
def test_perfdata_decimals(value: float, text: str) -> None:
    assert decimal(value, 4) == text


@pytest.mark.parametrize(("text", "limit", "clean"), [
    ("a|b", 10, "a/b"), ("line1\nline2\r\n", 20, "line1 line2"), ("x" * 30, 10, "xxxxxxx..."),
    ("\x00\x1b[31m", 10, "[31m"),
])
def test_one_line(text: str, limit: int, clean: str) -> None:
    assert one_line(text, limit) == clean
