"""Policy and whole-run assessment as plain function calls: several servers, --min-healthy, certificates."""

from __future__ import annotations

import pytest
from fakeapi import load_capture
from nagiosplugin.state import Critical, Ok, ServiceState, Warn

from check_k8s_health.base.errors import ConnectFailed
from check_k8s_health.checks.endpoints.read import Outcome, Reason, ServerReport
from check_k8s_health.model.policy import Policy
from check_k8s_health.model.settings import Credential, Settings, Target, TlsSettings
from check_k8s_health.run.assessment import assess, label_prefix
from check_k8s_health.transport.answer import Answer

NOW = 1_800_000_000.0


def target(host: str) -> Target:
    return Target(f"https://{host}:6443", "--server", TlsSettings(), Credential())


def report(host: str, capture: str, reasons: tuple[Reason, ...] = (), cert_days: float = 300) -> ServerReport:
    data = load_capture(capture)
    answer = Answer(f"https://{host}:6443/readyz?verbose", data.status, data.reason, data.body.decode(), 0.01)
    outcome = Outcome.answered("readyz", answer)
    outcome = Outcome(outcome.endpoint, outcome.answer, None, outcome.body, reasons)
    return ServerReport(target(host), (outcome,), NOW + cert_days * 86400)


HEALTHY, SICK = "healthy/readyz_verbose_none.txt", "etcd-down/readyz_verbose.txt"


@pytest.mark.parametrize(("name", "state"), [
    ("etcd", Critical), ("etcd-readiness", Warn), ("poststarthook/rbac/bootstrap-roles", Ok),
    ("poststarthook/x", Warn), ("informer-sync", Critical),
])
def test_policy(name: str, state: ServiceState) -> None:
    policy = Policy(critical=("etcd",), warning=("etcd*", "poststarthook/x"), ignore=("poststarthook/*", "etcd*"))
    assert policy.state_of(name) == state


def test_policy_unmatched() -> None:
    policy = Policy(warning=("etcd", "nope*"), ignore=("x",))
    assert policy.unmatched(["etcd", "ping"]) == ["--warning-check 'nope*'", "--ignore-check 'x'"]


def settings(count: int, **extra: object) -> Settings:
    hosts = [f"10.0.0.{n}" for n in range(1, count + 1)]
    return Settings(targets=tuple(target(host) for host in hosts), endpoints=("readyz",), **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(("sick", "min_healthy", "state", "head"), [
    (0, None, Ok, "3 of 3 API servers healthy (readyz)"),
    (1, None, Critical, "2 of 3 API servers healthy; 10.0.0.3:6443 readyz: etcd, etcd-readiness failed"),
    (1, 2, Warn, "2 of 3 API servers healthy (--min-healthy 2); 10.0.0.3:6443 readyz: etcd"),
    (2, 2, Critical, "1 of 3 API servers healthy (--min-healthy 2); 10.0.0.2:6443 readyz: etcd"),
    (0, 3, Ok, "3 of 3 API servers healthy (--min-healthy 3) (readyz)"),
])
def test_several_servers(sick: int, min_healthy: int, state: ServiceState, head: str) -> None:
    reports = [report(f"10.0.0.{n}", SICK if n > 3 - sick else HEALTHY) for n in (1, 2, 3)]
    assessment = assess(reports, settings(3, min_healthy=min_healthy), now=NOW)
    assert assessment.state == state
    assert assessment.summary.startswith(head), assessment.summary


def test_min_healthy_counts_an_unknown_server_as_not_healthy() -> None:
    # SPEC section 6: CRITICAL when fewer than N servers are fully healthy, whatever kept one from being healthy.
    forbidden = report("10.0.0.2", "auth/readyz_user_forbidden_http11.txt")
    assessment = assess([report("10.0.0.1", HEALTHY), forbidden], settings(2, min_healthy=2), now=NOW)
    assert assessment.state == Critical


def test_a_warn_line_is_at_least_warning_even_when_every_failure_is_ignored() -> None:
    body = ("[+]ping ok\n[-]etcd failed: reason withheld\nwarn: some health checks cannot be excluded\n"
            "readyz check failed\n")
    answer = Answer("https://10.0.0.1:6443/readyz?verbose", 500, "Internal Server Error", body, 0.01)
    server = ServerReport(target("10.0.0.1"), (Outcome.answered("readyz", answer),))
    assessment = assess([server], settings(1, policy=Policy(ignore=("etcd",))), now=NOW)
    assert assessment.state == Warn
    assert assessment.summary.endswith("ignored by --ignore-check; server warns: some health checks cannot be excluded")


def test_caveats_survive_a_long_summary() -> None:
    insecure = Target("https://10.0.0.1:6443", "--server", TlsSettings(verify=False), Credential())
    reports = [ServerReport(insecure._replace(url=f"https://10.0.0.{n}:6443"),
                            (Outcome("readyz", error=ConnectFailed("cannot connect " + "x" * 150)),))
               for n in (1, 2, 3)]
    assessment = assess(reports, Settings(targets=tuple(r.target for r in reports), endpoints=("readyz",)), now=NOW)
    assert len(assessment.summary) <= 178 and assessment.summary.endswith("...; TLS not verified")


def test_unreachable_and_sick_servers_sorted_worst_first() -> None:
    down = ServerReport(target("10.0.0.3"), (Outcome("readyz", error=ConnectFailed("cannot connect")),))
    assessment = assess([report("10.0.0.1", HEALTHY), report("10.0.0.2", SICK), down], settings(3), now=NOW)
    assert assessment.state == Critical
    assert assessment.summary.startswith("1 of 3 API servers healthy; 10.0.0.2:6443 readyz: etcd")


@pytest.mark.parametrize(("days", "state"), [(60, Ok), (20, Warn), (3, Critical), (-1, Critical)])
def test_certificate_days(days: float, state: ServiceState) -> None:
    assessment = assess([report("10.0.0.1", HEALTHY, cert_days=days)],
                        settings(1, cert_warning=30.0, cert_critical=7.0), now=NOW)
    assert assessment.state == state
    assert assessment.servers[0].cert_days == pytest.approx(days)
    if days < 0:
        assert assessment.summary.startswith("server certificate expired on ")


def test_reasons_replace_withheld_and_forbidden_gives_one_hint() -> None:
    reasons = (Reason("etcd", "found", "error getting data from etcd"), Reason("etcd-readiness", "forbidden", ""))
    assessment = assess([report("10.0.0.1", SICK, reasons)], settings(1), now=NOW)
    shown = [line for level, line in assessment.lines if level <= 1]
    assert "[-] readyz etcd: failed: error getting data from etcd" in shown
    assert "[-] readyz etcd-readiness: failed: reason withheld" in shown
    assert sum(line.startswith("reasons withheld") for line in shown) == 1


def test_label_prefix() -> None:
    one, two, three = target("cp-1.example"), target("cp-2.example"), Target("https://cp-1.example:7443", "",
                                                                            TlsSettings(), Credential())
    assert label_prefix(one, [one]) == ""
    assert label_prefix(one, [one, two]) == "cp_1_example_"
    assert label_prefix(one, [one, three]) == "cp_1_example_6443_"
