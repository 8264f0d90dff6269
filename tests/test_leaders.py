"""Reading and judging leader Leases (``--leaders``): the bodies recorded on a real control plane, and every odd
Lease a server could send, judged by the server's clock alone (SPEC section 6c)."""

from __future__ import annotations

import email.utils
import json
from typing import Any, Optional, Union

import pytest
from fakeapi import load_capture
from nagiosplugin.state import Critical, Ok, Unknown, Warn

from check_k8s_health.base.errors import ConnectFailed
from check_k8s_health.checks.leaders.judge import ages, judge_leaders
from check_k8s_health.checks.leaders.read import DEFAULT_LEASES, LeaderLease, Leaders, parse_lease, what
from check_k8s_health.checks.shared.read import Failure
from check_k8s_health.model.policy import Policy
from check_k8s_health.model.settings import Credential, Target, TlsSettings
from check_k8s_health.transport.answer import Answer

VIA = Target("https://127.0.0.1:6443", "-s", TlsSettings(), Credential())
SERVER_TIME = 1_800_000_000.0
DATE = email.utils.formatdate(SERVER_TIME, usegmt=True)


def _captured(relpath: str, name: str = "kube-scheduler") -> LeaderLease:
    capture = load_capture(relpath)
    return parse_lease(capture.body.decode(), capture.header("date"), "kube-system", name)


def _lease(spec: Any, date: Optional[str] = DATE, name: str = "kube-scheduler", **document: Any) -> LeaderLease:
    body = {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": {"name": name}, **document}
    if spec is not ...:
        body["spec"] = spec
    return parse_lease(json.dumps(body), date, "kube-system", name)


def _renewed(seconds_before: float) -> str:
    import datetime

    moment = datetime.datetime.fromtimestamp(SERVER_TIME - seconds_before, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _spec(age: float = 2.0, holder: str = "cp-1_5c1e", duration: Any = 15) -> dict[str, Any]:
    return {"holderIdentity": holder, "leaseDurationSeconds": duration, "renewTime": _renewed(age)}


def _verdict(*found: Union[LeaderLease, Failure], policy: Optional[Policy] = None) -> Any:
    names = [(item.namespace, item.name) if isinstance(item, LeaderLease) else
             tuple(item.what.removeprefix("Lease ").split("/", 1)) for item in found]
    return judge_leaders(Leaders(VIA, tuple(zip(names, found))), policy or Policy())  # type: ignore[arg-type]


# -- the recorded Leases --------------------------------------------------------------------------------------


def test_a_renewing_leader_is_led() -> None:
    lease = _captured("leaders/lease_kube-scheduler_healthy.txt")
    assert lease.holder == "vm_306942ac-44b1-4c57-8860-c2c27b45125b"
    assert lease.duration == 15 and lease.led
    assert lease.age is not None and 0 <= lease.age < 1
    verdict = _verdict(lease)
    assert verdict.state == Ok and verdict.problems == () and verdict.fine == "leaders: 1 renewed"


def test_a_renewal_within_the_dates_own_second_is_no_clock_skew() -> None:
    """Recorded: renewTime 20:41:35.9 against a Date of 20:41:35 (whole seconds): not a clock difference."""
    lease = _lease(_spec(age=-0.6))
    assert lease.age == 0.0 and lease.note == "" and lease.led


def test_a_scheduler_stopped_gracefully_released_its_lease() -> None:
    lease = _captured("leaders/lease_kube-scheduler_holder_stopped_30s.txt")
    assert lease.holder == "" and not lease.led
    verdict = _verdict(lease)
    assert verdict.state == Critical
    # Recorded: Date 20:42:18, renewTime 20:41:46.92.
    assert verdict.problems == ("kube-scheduler has had no leader for 31 s (released by its last holder): new pods "
                                "stay Pending",)


def test_a_controller_manager_that_cannot_start_left_its_name_behind() -> None:
    lease = _captured("leaders/lease_kube-controller-manager_expired_client_cert_30s.txt", "kube-controller-manager")
    assert lease.holder == "vm_a4035a0e-ae58-431f-b88e-288a45210bf6"
    # Recorded: Date 20:42:53, renewTime 20:42:20.75.
    assert lease.age is not None and 32 < lease.age < 33 and not lease.led
    (problem,) = _verdict(lease).problems
    assert problem.startswith("kube-controller-manager has had no leader for 32 s (last vm_a4035a0e-ae58-431f-b8...): "
                              "nothing is reconciled")


def test_both_leaderless_are_named_in_one_phrase_and_told_in_full_below() -> None:
    verdict = _verdict(_captured("leaders/lease_kube-scheduler_holder_stopped_30s.txt"),
                       _captured("leaders/lease_kube-controller-manager_expired_client_cert_30s.txt",
                                 "kube-controller-manager"))
    assert verdict.state == Critical
    assert verdict.problems == ("no leader for kube-scheduler (31 s), kube-controller-manager (32 s)",)
    long = [line for level, line in verdict.lines if level == 1]
    assert any("new pods stay Pending" in line for line in long)
    assert any("holder vm_a4035a0e-ae58-431f-b88e-288a45210bf6" in line for line in long)


def test_the_age_is_the_servers_not_this_hosts() -> None:
    """The same Lease, read with two Dates a minute apart: only the server's clock moves the verdict."""
    spec = _spec(age=10)
    assert _lease(spec).led
    later = email.utils.formatdate(SERVER_TIME + 60, usegmt=True)
    late = _lease(spec, date=later)
    assert late.age == pytest.approx(70, abs=0.01) and not late.led


# -- odd Leases ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, led, unreadable", [
    (..., False, ""),  # no spec: no holder
    ({}, False, ""),
    (None, False, ""),
    ({"holderIdentity": "cp-1", "leaseDurationSeconds": 15}, False, "it names a holder but no renewTime"),
    ({**_spec(), "renewTime": "yesterday"}, False, "its renewTime 'yesterday' is not a time"),
    ({**_spec(), "renewTime": 1700000000}, False, "its renewTime '1700000000' is not a time"),
    ({**_spec(), "renewTime": "2026-13-45T99:00:00.000000Z"}, False, "is not a time"),
    (_spec(duration=0), False, "its leaseDurationSeconds 0 is not a positive number of seconds"),
    (_spec(duration=-15), False, "its leaseDurationSeconds -15 is not a positive number of seconds"),
    (_spec(duration="15"), False, "its leaseDurationSeconds 15 is not a positive number of seconds"),
    (_spec(duration=True), False, "is not a positive number of seconds"),
    (_spec(duration=None), False, "its leaseDurationSeconds None is not a positive number of seconds"),
    (_spec(duration=10**30), True, ""),  # huge: the protocol's own answer, it has a leader
    (_spec(age=14.9), True, ""),
    (_spec(age=15.1), False, ""),
    (_spec(holder=""), False, ""),
])
def test_odd_leases_are_read_never_guessed(spec: Any, led: bool, unreadable: str) -> None:
    lease = _lease(spec)
    assert lease.led is led
    assert (unreadable in lease.unreadable) if unreadable else lease.unreadable == ""


@pytest.mark.parametrize("date", [None, "", "yesterday", "Sun, 99 Foo 2026 25:61:00 GMT"])
def test_without_the_servers_clock_a_held_lease_cannot_be_judged(date: Optional[str]) -> None:
    lease = _lease(_spec(), date=date)
    assert not lease.led and "Date header" in lease.unreadable
    verdict = _verdict(lease)
    assert verdict.state == Unknown
    assert verdict.problems[0].startswith("kube-scheduler: cannot tell whether it has a leader: the server sent no "
                                          "usable Date header")


def test_without_the_servers_clock_a_released_lease_still_has_no_leader() -> None:
    verdict = _verdict(_lease(_spec(holder=""), date=None))
    assert verdict.state == Critical
    assert verdict.problems == ("kube-scheduler has had no leader (the Lease names no holder): new pods stay "
                                "Pending",)


def test_a_renewal_from_the_future_is_said_not_trusted() -> None:
    lease = _lease(_spec(age=-30))
    assert lease.age == 0.0 and lease.led
    assert lease.note == "its renewTime lies 30 s after the server's time: the holder's clock differs"
    assert (1, "kube-scheduler: " + lease.note) in _verdict(lease).lines


@pytest.mark.parametrize("holder", ["evil|perf=1\nsecond line", "x" * 10_000, "\x1b[31mred\x1b[0m|\r\n"])
def test_a_holder_never_breaks_the_plugin_line(holder: str) -> None:
    verdict = _verdict(_lease(_spec(age=60, holder=holder)))
    for text in [*verdict.problems, *(line for _, line in verdict.lines)]:
        assert "|" not in text and "\n" not in text and "\r" not in text and "\x1b" not in text
        assert len(text) <= 400


@pytest.mark.parametrize("body, why", [
    ("not json", "it is not JSON"),
    ("[1, 2]", "it is not a JSON object"),
    ('{"kind": "Status", "status": "Failure"}', "it is a Status, not a Lease"),
    ('{"kind": "Lease", "spec": "holder"}', "its spec is not an object"),
])
def test_what_is_not_a_lease_is_refused_with_words(body: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_lease(body, DATE, "kube-system", "kube-scheduler")


# -- failures and policy --------------------------------------------------------------------------------------


def _failure(status: int, relpath: Optional[str] = None, name: str = "kube-scheduler") -> Failure:
    body = load_capture(relpath).body.decode() if relpath else ""
    answer = Answer(f"{VIA.url}/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}", status,
                    {403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}[status], body, 0.01)
    return Failure(what("kube-system", name), VIA, answer)


def test_a_lease_nobody_elects_is_unknown_and_says_so() -> None:
    verdict = _verdict(_failure(404, "leaders/lease_not_found.txt", "cloud-controller-manager"))
    assert verdict.state == Unknown
    assert verdict.problems == ("Lease kube-system/cloud-controller-manager not found: this control plane does "
                                "not elect cloud-controller-manager through it",)
    assert (1, "cloud-controller-manager: managed control planes may not show their leader Leases; name others "
               "with --leader-lease NAMESPACE/NAME") in verdict.lines


def test_a_forbidden_lease_names_the_role_that_grants_it() -> None:
    verdict = _verdict(_failure(403, "leaders/lease_kube-scheduler_forbidden_monitor.txt"))
    assert verdict.state == Unknown
    assert verdict.problems == ("HTTP 403, grant get on the Lease kube-system/kube-scheduler (coordination.k8s.io)",)
    assert any("check-k8s-health-leaders of deploy/rbac.yaml" in line for _, line in verdict.lines)


def test_no_answer_is_critical_as_for_an_endpoint() -> None:
    failure = Failure(what("kube-system", "kube-scheduler"), VIA, error=ConnectFailed("connection refused"))
    assert _verdict(failure).state == Critical
    assert _verdict(_failure(500)).state == Critical


def test_a_problem_seen_outranks_a_lease_not_read() -> None:
    verdict = _verdict(_lease(_spec(age=60)), _failure(403, "leaders/lease_kube-scheduler_forbidden_monitor.txt",
                                                       "kube-controller-manager"))
    assert verdict.state == Critical
    assert verdict.problems[0].startswith("kube-scheduler has had no leader for 60 s")


@pytest.mark.parametrize("policy, state, label", [
    (Policy(warning=("lease/*/kube-scheduler",)), Warn, " (WARNING by policy)"),
    (Policy(ignore=("lease/kube-system/*",)), Ok, " (ignored by policy)"),
    (Policy(ignore=("lease/kube-system/*",), critical=("lease/*/kube-scheduler",)), Critical, ""),
])
def test_policy_globs_set_the_state_of_a_leaderless_lease(policy: Policy, state: Any, label: str) -> None:
    verdict = _verdict(_lease(_spec(age=60)), policy=policy)
    assert verdict.state == state
    (item,) = verdict.items
    assert item.leaderless and item.label == label
    if state == Ok:
        assert verdict.problems == () and verdict.fine == "leaders: 0 renewed, 1 ignored by policy"


def test_an_ignored_lease_that_cannot_be_read_is_ignored_too() -> None:
    verdict = _verdict(_failure(404, "leaders/lease_not_found.txt"), policy=Policy(ignore=("lease/*",)))
    assert verdict.state == Ok and verdict.problems == ()


def test_policy_names_are_offered_to_the_unmatched_glob_check() -> None:
    assert _verdict(_lease(_spec())).names == ["lease/kube-system/kube-scheduler"]
    assert Policy(warning=("lease/*/kube-schedulr",)).unmatched(["lease/kube-system/kube-scheduler"])


# -- perfdata -------------------------------------------------------------------------------------------------


def test_ages_are_perfdata_by_the_servers_clock_with_names_made_unique() -> None:
    leases = Leaders(VIA, (
        (("kube-system", "kube-scheduler"), _lease(_spec(age=3))),
        (("kube-system", "kube-controller-manager"), _failure(404)),
        (("kube-system", "ingress-nginx-leader"), _lease(_spec(age=4), name="ingress-nginx-leader")),
        (("ingress", "ingress-nginx-leader"), parse_lease(json.dumps({"kind": "Lease", "spec": _spec(age=5)}), DATE,
                                                          "ingress", "ingress-nginx-leader")),
    ))
    found = ages(leases)
    assert [name for name, _ in found] == ["leader_kube_scheduler_age", "leader_kube_system_ingress_nginx_leader_age",
                                           "leader_ingress_ingress_nginx_leader_age"]
    assert [round(age, 3) for _, age in found] == [3, 4, 5]


def test_the_defaults_are_the_two_loops_every_control_plane_runs() -> None:
    assert DEFAULT_LEASES == (("kube-system", "kube-scheduler"), ("kube-system", "kube-controller-manager"))
