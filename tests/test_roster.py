"""The member list parsers over the answers recorded from three real API servers, and over shapes a broken or
hostile server could send; and how the list is judged (pure: no HTTP here, the end-to-end tests are in
test_members.py)."""

from __future__ import annotations

import json
from typing import Optional

import pytest
from fakeapi import load_capture
from nagiosplugin.state import Critical, Ok, Unknown, Warn

from check_k8s_health.base.errors import ConnectFailed
from check_k8s_health.checks.members.judge import failure_words, judge_roster
from check_k8s_health.checks.members.read import (
    LEASES,
    SLICE,
    Lease,
    Listing,
    Member,
    Roster,
    parse_endpoints,
    parse_leases,
    parse_slice,
)
from check_k8s_health.checks.shared.judge import duration
from check_k8s_health.checks.shared.read import Failure
from check_k8s_health.model.settings import Credential, Settings, Target, TlsSettings
from check_k8s_health.transport.answer import Answer

THREE = [Member(f"192.0.2.1{i}", 6443) for i in (1, 2, 3)]


def _body(relpath: str) -> str:
    return load_capture(relpath).body.decode()


@pytest.mark.parametrize(("relpath", "members"), [
    ("members/endpointslice_kubernetes_3_members.txt", THREE),
    ("members/endpointslice_kubernetes_3_members_compact_http11.txt", THREE),
    ("members/endpointslice_kubernetes_2_members_after_kill.txt", THREE[:2]),
])
def test_captured_slices(relpath: str, members: list[Member]) -> None:
    listing = parse_slice(_body(relpath))
    assert listing == Listing(tuple(members), len(members))
    assert [member.url for member in listing.members][:1] == ["https://192.0.2.11:6443"]


@pytest.mark.parametrize(("relpath", "members"), [
    ("members/endpoints_kubernetes_3_members.txt", THREE),
    ("members/endpoints_kubernetes_2_members_after_kill.txt", THREE[:2]),
])
def test_captured_endpoints(relpath: str, members: list[Member]) -> None:
    assert parse_endpoints(_body(relpath)) == Listing(tuple(members), len(members))


def test_captured_leases_are_aged_by_the_servers_date() -> None:
    capture = load_capture("members/identity_leases_member3_killed_75s.txt")
    leases, note = parse_leases(capture.body.decode(), capture.header("date"))
    assert note == ""
    ages = {lease.host: -1 if lease.age is None else round(lease.age) for lease in leases}
    assert ages == {"ckhha-m1": 7, "ckhha-m2": 7, "ckhha-m3": 78}
    assert [lease.alive for lease in leases] == [True, True, False]


def test_captured_leases_during_and_after_a_graceful_shutdown() -> None:
    during = load_capture("members/identity_leases_member2_shutdown_delay.txt")
    after = load_capture("members/identity_leases_member2_after_shutdown.txt")
    assert all(lease.alive for lease in parse_leases(during.body.decode(), during.header("date"))[0])
    leases = parse_leases(after.body.decode(), after.header("date"))[0]
    assert len(leases) == 3  # the Lease stays behind; only its age tells
    assert all(lease.alive for lease in leases)  # ... and it was renewed less than 60 s before that answer


def test_leases_without_a_date_are_aged_against_the_newest_renewal() -> None:
    capture = load_capture("members/identity_leases_member3_killed_75s.txt")
    leases, note = parse_leases(capture.body.decode(), None)
    assert "no usable Date header" in note
    ages = {lease.host: -1 if lease.age is None else round(lease.age) for lease in leases}
    assert ages == {"ckhha-m1": 0, "ckhha-m2": 0, "ckhha-m3": 71}


def _slice(endpoints: object, ports: object = None) -> str:
    return json.dumps({"kind": "EndpointSlice", "endpoints": endpoints,
                       "ports": [{"name": "https", "port": 6443}] if ports is None else ports})


@pytest.mark.parametrize(("text", "why"), [
    ("", "it is not JSON"),
    ("[" * 10000 + "]" * 10000, "it is not JSON"),
    ("[1, 2]", "it is not a JSON object"),
    ('{"kind": "Status", "code": 403}', "it is a Status, not an EndpointSlice"),
    (_slice({"a": 1}), "its endpoints are not a list"),
    (_slice([], []), "it names no port"),
    (_slice([], [{"name": "a", "port": 1}, {"name": "b", "port": 2}]), "several ports and none is called https"),
    (_slice([], [{"name": "https", "port": 0}]), "its port is not a port number"),
    (_slice([], [{"name": "https", "port": "6443"}]), "its port is not a port number"),
    (_slice([], [{"name": "https", "port": True}]), "its port is not a port number"),
])
def test_slices_that_are_not_usable(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_slice(text)


def test_a_slice_entry_by_entry() -> None:
    listing = parse_slice(_slice([
        {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
        {"addresses": ["10.0.0.1"]},                               # twice
        {"addresses": ["fd00::0001"], "conditions": {"ready": False}},  # IPv6, normalised; not ready
        {"addresses": ["10.0.0.3", "10.0.0.4"]},                   # several: the first is asked
        {"addresses": ["api.example.com"]}, {"addresses": []}, {"addresses": [None]}, "junk",
        {"addresses": ["0.0.0.0"]}, {"addresses": ["ff02::1"]},  # noqa: S104  (unspecified, multicast)
    ]))
    assert listing.members == (Member("10.0.0.1", 6443), Member("fd00::1", 6443), Member("10.0.0.3", 6443))
    assert listing.members[1].url == "https://[fd00::1]:6443"
    assert listing.listed == 3
    assert listing.problems == ("6 listed addresses are not an IP address and not asked (api.example.com, "
                                "(no address), (no address), ...)",)
    assert set(listing.notes) == {"an endpoint lists 2 addresses: only the first, 10.0.0.3, is asked",
                                  "10.0.0.1 is listed 2 times", "fd00::1 is listed as not ready"}


def test_more_members_than_one_run_checks() -> None:
    listing = parse_slice(_slice([{"addresses": [f"10.0.{i // 200}.{i % 200 + 1}"]} for i in range(300)]))
    assert (len(listing.members), listing.listed) == (16, 300)
    assert listing.problems == ("300 API servers listed: only the first 16 are checked",)


def test_endpoints_with_not_ready_addresses_and_several_subsets() -> None:
    listing = parse_endpoints(json.dumps({"kind": "Endpoints", "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}], "notReadyAddresses": [{"ip": "10.0.0.2"}],
         "ports": [{"name": "https", "port": 6443}]},
        {"addresses": [{"ip": "10.0.0.3"}], "ports": [{"port": 443}]},
    ]}))
    assert listing.members == (Member("10.0.0.1", 6443), Member("10.0.0.2", 6443), Member("10.0.0.3", 443))
    assert listing.notes == ("10.0.0.2 is listed as not ready",)


def test_leases_of_other_holders_and_without_renewal() -> None:
    text = json.dumps({"kind": "LeaseList", "items": [
        {"metadata": {"name": "kube-scheduler", "labels": {}}, "spec": {"renewTime": "2026-11-29T19:40:00.000000Z"}},
        {"metadata": {"name": "apiserver-a", "labels": {"apiserver.kubernetes.io/identity": "kube-apiserver"}},
         "spec": {}},
        {"metadata": {"name": "apiserver-b", "labels": {"apiserver.kubernetes.io/identity": "kube-apiserver",
                                                        "kubernetes.io/hostname": "cp-b"}},
         "spec": {"renewTime": "2026-11-29T20:40:00+01:00"}},
    ]})
    leases, _ = parse_leases(text, "Sun, 29 Nov 2026 19:41:30 GMT")
    assert leases == (Lease("apiserver-a", None, "apiserver-a"), Lease("cp-b", 90.0, "apiserver-b"))
    assert not leases[0].alive and not leases[1].alive


# -- judging the list ---------------------------------------------------------------------------------------

TARGET = Target("https://10.0.0.10:6443", "--server", TlsSettings(), Credential())


def _roster(listed: int = 3, ages: Optional[list[Optional[float]]] = None) -> Roster:
    members = tuple(Member(f"10.0.0.{i + 1}", 6443) for i in range(listed))
    leases = None if ages is None else tuple(Lease(f"cp-{i + 1}", age) for i, age in enumerate(ages))
    return Roster(f"{SLICE} via {TARGET.url}", Listing(members, listed), leases=leases)


@pytest.mark.parametrize(("roster", "expect", "state", "problems", "known"), [
    (_roster(3, [1, 2, 3]), None, Ok, (), 3),
    (_roster(2, [1, 2, 3]), None, Warn, ("3 alive by Lease, 2 listed: 1 not serving",), 3),
    (_roster(2, [1, 2, 61]), None, Warn, ("cp-3 silent for 61 s",), 3),
    (_roster(3, [1, 2, 7300]), None, Warn, ("cp-3 silent for 2 h",), 3),
    (_roster(2, [1, 2, None]), None, Warn, ("cp-3 never renewed its Lease",), 3),
    (_roster(2), 3, Warn, ("2 of 3 API servers listed",), 3),
    (_roster(3), 2, Warn, ("3 API servers listed, 2 expected (--expect-members)",), 3),
    (_roster(2, []), None, Ok, (), 2),
    (_roster(0, [1, 2]), None, Critical, ("2 alive by Lease, 0 listed: 2 not serving",), 2),
])
def test_judging_the_list(roster: Roster, expect: Optional[int], state: object, problems: tuple[str, ...],
                          known: int) -> None:
    settings = Settings(targets=(TARGET,), endpoints=("readyz",), members=True, expect_members=expect)
    verdict = judge_roster(roster, settings, len(roster.listing.members) if roster.listing else 0)
    assert (verdict.state, verdict.problems, verdict.known) == (state, problems, known)


WRITES_FAILING = ("no API server has renewed its identity Lease for 61 s while all answer ready: writes are failing, "
                  "is etcd out of space? --write-probe tells")


@pytest.mark.parametrize(("ages", "all_ready", "problems"), [
    ([61, 70, 75], True, (WRITES_FAILING,)),
    ([61, 70, 75], False, ("cp-1 silent for 61 s", "cp-2 silent for 70 s", "cp-3 silent for 75 s")),
    ([1, 70, 75], True, ("cp-2 silent for 70 s", "cp-3 silent for 75 s")),
    ([61, 70, None], True, ("cp-1 silent for 61 s", "cp-2 silent for 70 s", "cp-3 never renewed its Lease")),
])
def test_leases_that_all_stopped_while_every_member_is_ready_mean_failing_writes(
        ages: list[Optional[float]], all_ready: bool, problems: tuple[str, ...]) -> None:
    """Measured with etcd out of space: every write refused, Lease renewals included, while /readyz passes."""
    settings = Settings(targets=(TARGET,), endpoints=("readyz",), members=True)
    verdict = judge_roster(_roster(3, ages), settings, 3, all_ready=all_ready)
    assert (verdict.state, verdict.problems) == (Warn, problems)


def test_with_the_write_probe_in_the_run_its_own_words_tell_the_cause() -> None:
    settings = Settings(targets=(TARGET,), endpoints=("readyz",), members=True,
                        write_lease=("monitoring", "check-k8s-health"))
    verdict = judge_roster(_roster(3, [61, 70, 75]), settings, 3, all_ready=True)
    assert verdict.problems == ("no API server has renewed its identity Lease for 61 s while all answer ready: "
                                "writes are failing",)


def test_an_empty_list_is_critical_and_says_so() -> None:
    settings = Settings(targets=(TARGET,), endpoints=("readyz",), members=True)
    verdict = judge_roster(_roster(0), settings, 1)
    assert (verdict.firm, verdict.lead) == (Critical, "the EndpointSlice default/kubernetes lists no API server")


def test_unreadable_leases_are_said_once_with_what_grants_them() -> None:
    forbidden = load_capture("members/identity_leases_forbidden_anonymous.txt")
    answer = Answer("https://10.0.0.10:6443/apis/...", 403, "Forbidden", forbidden.body.decode(), 0.01)
    roster = _roster(3)._replace(lease_failure=Failure(LEASES, TARGET, answer))
    settings = Settings(targets=(TARGET,), endpoints=("readyz",), members=True)
    lines = [text for _, text in judge_roster(roster, settings, 3).lines if text.startswith("identity Leases")]
    assert lines == ['identity Leases not read (HTTP 403: leases.coordination.k8s.io is forbidden: User '
                     '"system:anonymous" cannot list resource "leases" in API group "coordination.k8s.io" in the '
                     'namespace "kube-system"): an API server that has left the list (stopped, shutting down, cut '
                     'off from etcd) goes unnoticed; grant list on leases (coordination.k8s.io) in namespace '
                     'kube-system (deploy/rbac.yaml)']


@pytest.mark.parametrize(("failure", "state", "start"), [
    (Failure(SLICE, TARGET, error=ConnectFailed("cannot connect to 10.0.0.10:6443: connection refused")), Critical,
     "cannot connect to 10.0.0.10:6443"),
    (Failure(SLICE, TARGET, Answer("u", 401, "Unauthorized", "{}", 0.1)), Unknown,
     "HTTP 401 Unauthorized: anonymous access is off"),
    (Failure(SLICE, TARGET, Answer("u", 503, "Service Unavailable", "", 0.1)), Critical,
     "HTTP 503 Service Unavailable for the EndpointSlice default/kubernetes from 10.0.0.10:6443"),
    (Failure(SLICE, TARGET, Answer("u", 307, "Temporary Redirect", "", 0.1, location="https://x/")), Unknown,
     "HTTP 307 Temporary Redirect: redirect to https://x/ not followed"),
    (Failure(SLICE, TARGET, Answer("u", 200, "OK", "{", 0.1), why="it is not JSON"), Unknown,
     "the EndpointSlice default/kubernetes from 10.0.0.10:6443 cannot be used: it is not JSON"),
])
def test_failed_lookups(failure: Failure, state: object, start: str) -> None:
    found, words, _ = failure_words(failure)
    assert found == state
    assert words.startswith(start), words


@pytest.mark.parametrize(("seconds", "words"), [(61.4, "61 s"), (119.6, "120 s"), (120, "2 min"), (7199, "119 min"),
                                                (7200, "2 h")])
def test_durations(seconds: float, words: str) -> None:
    assert duration(seconds) == words
