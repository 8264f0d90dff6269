"""``--members`` end to end (SPEC section 6a): the installed command asks a load balancer for the member list and
checks every member, against HTTPS servers on 127.0.0.1, .2 and .3 that replay what three real API servers
answered while one of them was healthy, cut off from etcd, killed or shutting down."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import pytest
from conftest import run_plugin
from fakeapi import Reply, healthy_routes, shutdown_routes
from fakecluster import (
    ENDPOINTS_PATH,
    HOSTNAMES,
    LEASES_PATH,
    MEMBER_HOSTS,
    SLICE_PATH,
    control_plane,
    default_lookups,
    endpoints_reply,
    fresh_leases,
    leases_reply,
    slice_reply,
)
from kubeconfigs import kubectl, token_kubeconfig

# Every case runs against both installs: pip's, and the Debian package on Debian 12's libraries.
pytestmark = pytest.mark.usefixtures("each_install")

CUT = {"/readyz": Reply.from_capture("members/readyz_verbose_member3_cut_from_etcd.txt"),
       "/readyz/etcd": Reply.from_capture("etcd-down/readyz_etcd_subpath_reason.txt")}
HEALTHY = {**healthy_routes(), "/readyz": Reply.from_capture("members/readyz_verbose_member1_while_member3_cut.txt")}
ETCD = "readyz: etcd, etcd-readiness failed (2 of 33 sub-checks)"
SLICE_FORBIDDEN = Reply.from_capture("members/endpointslice_kubernetes_forbidden_serviceaccount.txt")
LEASES_FORBIDDEN = Reply.from_capture("members/identity_leases_forbidden_monitor.txt")


def lookups(listed: int = 3, leases: Optional[Reply] = None, replies: Optional[dict[str, Reply]] = None
            ) -> Callable[[int], dict[str, Reply]]:
    """The default answers of the load balancer, with the paths in ``replies`` replaced."""
    base = default_lookups(listed, leases)
    return lambda port: {**base(port), **(replies or {})}


# -- the states of a control plane ---------------------------------------------------------------------------

def test_all_members_healthy() -> None:
    with control_plane([HEALTHY, HEALTHY, HEALTHY]) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-v")
        lb_url = plane.lb.url
        lb_paths = sorted(seen.path for seen in plane.lb.requests)
        member_paths = [[seen.path for seen in member.requests] for member in plane.members if member]
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - 3 of 3 API servers healthy (readyz)")
    assert lb_paths == sorted([SLICE_PATH, LEASES_PATH])  # the load balancer is asked for the list, not checked
    assert member_paths == [["/readyz"]] * 3
    perf = dict(item.split("=", 1) for item in run.perfdata.split())
    assert perf["members_listed"] == "3;;;0" and perf["members_alive"] == "3;;;0"
    for index in range(3):
        assert perf[f"{plane.prefix(index)}readyz_failed"] == "0;;;0"
    listed = ", ".join(f"https://{host}:{plane.port}" for host in MEMBER_HOSTS)
    assert f"members: 3 listed in the EndpointSlice default/kubernetes via {lb_url}: {listed}" in \
        run.long_output
    assert any(re.fullmatch(r"Lease ckhha-m2: renewed \d s ago \(alive\)", line) for line in run.long_output)


def test_a_member_cut_off_from_etcd_is_named() -> None:
    with control_plane([HEALTHY, HEALTHY, CUT]) as plane:
        worst = run_plugin(*plane.lb_args, "--members", "-v")
        tolerant = run_plugin(*plane.lb_args, "--members", "--min-healthy", "2")
    assert (worst.code, worst.first_line) == (2, f"K8S_HEALTH CRITICAL - 2 of 3 API servers healthy; "
                                                 f"{plane.name(2)} {ETCD}")
    assert f"[-] {plane.name(2)} readyz etcd: failed: error getting data from etcd: context deadline exceeded" in \
        worst.long_output
    assert (tolerant.code, tolerant.first_line) == (1, f"K8S_HEALTH WARNING - 2 of 3 API servers healthy "
                                                       f"(--min-healthy 2); {plane.name(2)} {ETCD}")


def test_a_killed_member_still_listed_is_refused() -> None:
    with control_plane([HEALTHY, HEALTHY, None]) as plane:
        run = run_plugin(*plane.lb_args, "--members")
    assert (run.code, run.first_line) == (
        2, f"K8S_HEALTH CRITICAL - 2 of 3 API servers healthy; {plane.name(2)} readyz: cannot connect to "
           f"{plane.name(2)}: connection refused (API server down or wrong port?)")


def test_a_member_gone_from_the_list_but_alive_by_lease_is_not_serving() -> None:
    """Killed less than a minute ago, or in its graceful shutdown delay: not listed, Lease still fresh."""
    with control_plane([HEALTHY, HEALTHY, shutdown_routes()], lookups(listed=2, leases=fresh_leases(3))) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-v")
        asked = plane.members[2].requests if plane.members[2] else []
    assert (run.code, run.first_line) == (1, "K8S_HEALTH WARNING - 2 of 3 API servers healthy; 3 alive by Lease, "
                                             "2 listed: 1 not serving")
    assert asked == []  # only listed members are asked: the Leases carry no address
    assert "members_alive=3;;;0" in run.perfdata.split() and "members_listed=2;;;0" in run.perfdata.split()


def test_a_silent_member_is_named_by_host() -> None:
    leases = leases_reply({"ckhha-m1": 2.0, "ckhha-m2": 5.0, "ckhha-m3": 78.4})
    with control_plane([HEALTHY, HEALTHY], lookups(listed=2, leases=leases)) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-v")
        tolerant = run_plugin(*plane.lb_args, "--members", "--min-healthy", "2")
        strict = run_plugin(*plane.lb_args, "--members", "--min-healthy", "3")
    assert (run.code, run.first_line) == (1, "K8S_HEALTH WARNING - 2 of 3 API servers healthy; ckhha-m3 silent "
                                             "for 78 s")
    assert "Lease ckhha-m3: renewed 78 s ago (silent)" in run.long_output
    assert "members_alive=2;;;0" in run.perfdata.split()
    assert tolerant.code == 1
    assert (strict.code, strict.first_line) == (2, "K8S_HEALTH CRITICAL - 2 of 3 API servers healthy "
                                                   "(--min-healthy 3); ckhha-m3 silent for 78 s")


def test_every_lease_stale_while_every_member_is_ready_means_writes_are_failing() -> None:
    """etcd out of space (SPEC 6c, measured): every write refused, the identity Leases' renewals too, while each
    member answers ready. Not three silent servers: one sentence about the writes."""
    leases = leases_reply({"ckhha-m1": 75.0, "ckhha-m2": 78.0, "ckhha-m3": 80.0})
    with control_plane([HEALTHY, HEALTHY, HEALTHY], lookups(listed=3, leases=leases)) as plane:
        run = run_plugin(*plane.lb_args, "--members")
    assert (run.code, run.first_line) == (1, "K8S_HEALTH WARNING - 3 of 3 API servers healthy; no API server has "
                                             "renewed its identity Lease for 75 s while all answer ready: writes are "
                                             "failing, is etcd out of space? --write-probe tells")


def test_every_lease_stale_while_a_member_is_down_names_the_hosts() -> None:
    leases = leases_reply({"ckhha-m1": 75.0, "ckhha-m2": 78.0})
    cut = {"/readyz": Reply.from_capture("members/readyz_verbose_member3_cut_from_etcd.txt")}
    with control_plane([HEALTHY, cut], lookups(listed=2, leases=leases)) as plane:
        run = run_plugin(*plane.lb_args, "--members")
    assert run.code == 2
    assert run.first_line.endswith("ckhha-m1 silent for 75 s; ckhha-m2 silent for 78 s"), run.first_line


def test_lease_age_is_judged_by_the_servers_clock() -> None:
    """The monitoring host's clock may be minutes off: a Lease renewed 4 s ago by the server's own clock is
    alive whether that clock runs ten minutes ahead of this machine's or behind it."""
    for offset in (600.0, -600.0):
        leases = leases_reply(dict.fromkeys(HOSTNAMES, 4.0), server_clock_offset=offset)
        with control_plane([HEALTHY, HEALTHY, HEALTHY], lookups(leases=leases)) as plane:
            run = run_plugin(*plane.lb_args, "--members")
        assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - 3 of 3 API servers healthy (readyz)"), offset


def test_expect_members() -> None:
    with control_plane([HEALTHY, HEALTHY], lookups(listed=2, leases=LEASES_FORBIDDEN)) as plane:
        blind = run_plugin(*plane.lb_args, "--members", "-v")
        fewer = run_plugin(*plane.lb_args, "--expect-members", "3")
        strict = run_plugin(*plane.lb_args, "--expect-members", "3", "--min-healthy", "3")
        more = run_plugin(*plane.lb_args, "--expect-members", "1")
    assert (blind.code, blind.first_line) == (0, "K8S_HEALTH OK - 2 of 2 API servers healthy (readyz)")
    assert (fewer.code, fewer.first_line) == (1, "K8S_HEALTH WARNING - 2 of 3 API servers healthy; 2 of 3 API "
                                                 "servers listed")
    assert (strict.code, strict.first_line) == (2, "K8S_HEALTH CRITICAL - 2 of 3 API servers healthy "
                                                   "(--min-healthy 3); 2 of 3 API servers listed")
    assert (more.code, more.first_line) == (1, "K8S_HEALTH WARNING - 2 of 2 API servers healthy; 2 API servers "
                                               "listed, 1 expected (--expect-members)")
    assert "members_alive" not in blind.perfdata
    lost = [line for line in blind.long_output if line.startswith("identity Leases not read")]
    assert len(lost) == 1
    assert "goes unnoticed; grant list on leases (coordination.k8s.io) in namespace kube-system" in lost[0]
    assert 'identity Leases not read (HTTP 403: leases.coordination.k8s.io is forbidden: User "monitor" cannot list '\
        'resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system"): an API server' in lost[0]


def test_a_member_listed_before_it_is_ready() -> None:
    starting = {"/readyz": Reply(500, b"[+]ping ok\n[-]poststarthook/rbac/bootstrap-roles failed: reason withheld\n"
                                      b"readyz check failed\n")}
    with control_plane([HEALTHY, HEALTHY, starting],
                       lambda port: {SLICE_PATH: slice_reply(MEMBER_HOSTS, port, ready=[True, True, False]),
                                     LEASES_PATH: fresh_leases()}) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-v")
    assert run.code == 2
    assert run.first_line == (f"K8S_HEALTH CRITICAL - 2 of 3 API servers healthy; {plane.name(2)} readyz: "
                              "poststarthook/rbac/bootstrap-roles failed (1 of 2 sub-checks)")
    assert "members: 127.0.0.3 is listed as not ready" in run.long_output


# -- the look-up ---------------------------------------------------------------------------------------------

def test_endpoints_object_where_there_is_no_endpointslice() -> None:
    routes = lambda port: {ENDPOINTS_PATH: endpoints_reply(MEMBER_HOSTS, port), LEASES_PATH: fresh_leases()}  # noqa: E731
    with control_plane([HEALTHY, HEALTHY, HEALTHY], routes) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-v")
        paths = [seen.path for seen in plane.lb.requests]
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - 3 of 3 API servers healthy (readyz)")
    assert paths.index(SLICE_PATH) < paths.index(ENDPOINTS_PATH)
    assert any(line.startswith("members: 3 listed in the Endpoints default/kubernetes via ") for line in
               run.long_output)


def test_a_forbidden_list_names_the_missing_rule() -> None:
    with control_plane([HEALTHY, HEALTHY, HEALTHY], lookups(replies={SLICE_PATH: SLICE_FORBIDDEN})) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-v")
        member_requests = sum(len(member.requests) for member in plane.members if member)
    assert run.code == 3
    assert run.first_line == ('K8S_HEALTH UNKNOWN - no member list: HTTP 403 Forbidden: grant get on '
                              'endpointslices (discovery.k8s.io) named "kubernetes" in namespace default '
                              '(deploy/rbac.yaml); 1 of 1 API servers healthy (readyz)')
    assert ('EndpointSlice default/kubernetes: endpointslices.discovery.k8s.io "kubernetes" is forbidden: User '
            '"system:serviceaccount:monitoring:check-k8s-health" cannot get resource "endpointslices" in API group '
            '"discovery.k8s.io" in the namespace "default"; deploy/rbac.yaml grants exactly what is missing') in \
        run.long_output
    assert member_requests == 0  # without a list, only the server named is checked


def test_without_endpointslices_a_forbidden_endpoints_object_names_its_rule() -> None:
    routes = {SLICE_PATH: Reply.from_capture("members/endpointslice_nonexistent_not_found.txt"),
              ENDPOINTS_PATH: Reply.from_capture("members/endpoints_kubernetes_forbidden_monitor.txt")}
    with control_plane([HEALTHY], lookups(listed=1, replies=routes)) as plane:
        run = run_plugin(*plane.lb_args, "--members")
    assert run.code == 3
    assert run.first_line == ('K8S_HEALTH UNKNOWN - no member list: HTTP 403 Forbidden: grant get on endpoints named '
                              '"kubernetes" in namespace default (deploy/rbac.yaml); 1 of 1 API servers healthy '
                              '(readyz)')


def test_a_server_with_neither_list_is_not_an_api_server() -> None:
    missing = Reply.from_capture("members/endpointslice_nonexistent_not_found.txt")
    with control_plane([HEALTHY], lookups(listed=1, replies={SLICE_PATH: missing, ENDPOINTS_PATH: missing})) as plane:
        run = run_plugin(*plane.lb_args, "--members")
        lb = plane.lb.url.split("//")[1]
    assert run.code == 3
    assert run.first_line.startswith("K8S_HEALTH UNKNOWN - no member list: HTTP 404 Not Found for the Endpoints "
                                     f"default/kubernetes from {lb}: not a Kubernetes API server, or a very old one")


def test_a_list_that_answers_500_is_critical() -> None:
    failing = Reply.from_capture("members/endpointslice_via_member_cut_from_etcd.txt")
    with control_plane([HEALTHY], lookups(listed=1, replies={SLICE_PATH: failing})) as plane:
        run = run_plugin(*plane.lb_args, "--members")
        lb = plane.lb.url.split("//")[1]
    assert run.code == 2
    assert run.first_line.startswith("K8S_HEALTH CRITICAL - no member list: HTTP 500 Internal Server "
                                     f"Error for the EndpointSlice default/kubernetes from {lb}: rpc error: code = "
                                     "Unavailable desc = keepalive")


def test_a_hanging_lookup_ends_within_its_share_of_the_deadline() -> None:
    with control_plane([HEALTHY], lookups(listed=1, replies={SLICE_PATH: Reply(200, hang=True)})) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-t", "4")
    assert run.code == 2
    assert re.fullmatch(r"K8S_HEALTH CRITICAL - no member list: the EndpointSlice default/kubernetes "
                        r"from 127\.0\.0\.1:\d+ did not answer within 1\.\d s \(the member lookup's share of -t 4\); 1 "
                        r"of 1 API servers healthy \(readyz\)", run.first_line), run.first_line


def test_the_first_server_that_answers_gives_the_list() -> None:
    with control_plane([HEALTHY, HEALTHY], lookups(listed=2)) as plane, \
            control_plane([HEALTHY], lookups(listed=1, replies={SLICE_PATH: Reply(200, hang=True)})) as stuck:
        run = run_plugin("-s", stuck.lb.url, *plane.lb_args, "--members", "-t", "6")
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - 2 of 2 API servers healthy (readyz)")


def test_members_are_verified_by_address_unless_a_name_is_given() -> None:
    with control_plane([HEALTHY, HEALTHY], lookups(listed=2), server_names=lambda host: ("kubernetes",)) as plane:
        by_address = run_plugin(*plane.lb_args, "--members")
        by_name = run_plugin(*plane.lb_args, "--members", "--tls-server-name", "kubernetes")
    assert by_address.code == 2
    assert f"{plane.name(0)} readyz: TLS error: " in by_address.first_line
    assert "--tls-server-name" in by_address.first_line and "kubernetes" in by_address.first_line
    assert (by_name.code, by_name.first_line) == (0, "K8S_HEALTH OK - 2 of 2 API servers healthy (readyz)")


def test_members_get_the_token_and_every_endpoint() -> None:
    token = "members-token-0123456789abcdef"
    with control_plane([HEALTHY, HEALTHY], lookups(listed=2), token=token, anonymous=False) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-e", "livez", "-e", "readyz",
                         env={"K8S_HEALTH_TOKEN": token})
        headers = {seen.header("Authorization") for member in plane.members if member for seen in member.requests}
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - 2 of 2 API servers healthy (livez, readyz)")
    assert headers == {f"Bearer {token}"}


def test_json_and_discovery_list_every_member() -> None:
    leases = leases_reply({"ckhha-m1": 1.0, "ckhha-m2": 2.0, "ckhha-m3": 90.0})
    with control_plane([HEALTHY, HEALTHY], lookups(listed=2, leases=leases)) as plane:
        report = run_plugin(*plane.lb_args, "--members", "--output", "json")
        discovery = run_plugin(*plane.lb_args, "--members", "--discover")
    document = json.loads(report.stdout)
    assert (report.code, document["state"]) == (1, "WARNING")
    assert [server["name"] for server in document["servers"]] == [plane.name(0), plane.name(1)]
    members = document["members"]
    assert (members["listed"], members["alive"], members["known"]) == (2, 2, 3)
    assert members["problems"] == ["ckhha-m3 silent for 90 s"]
    assert [lease["host"] for lease in members["leases"] if not lease["alive"]] == ["ckhha-m3"]
    rows = json.loads(discovery.stdout)["data"]
    assert {row["{#SERVER}"] for row in rows} == {plane.name(0), plane.name(1)}


def test_an_ipv6_member_is_bracketed() -> None:
    from fakeapi import FakeApiServer

    with control_plane([HEALTHY], lookups(listed=1, leases=fresh_leases(1))) as plane, \
            FakeApiServer(HEALTHY, ca=plane.ca, host="::1") as member:
        plane.lb.set_route(SLICE_PATH, slice_reply(["::1"], member.port))
        run = run_plugin(*plane.lb_args, "--members", "-v")
        port = member.port
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - 1 of 1 API servers healthy (readyz)")
    assert any(line.endswith(f"https://[::1]:{port}") for line in run.long_output)


def test_members_need_the_api_server() -> None:
    run = run_plugin("--component", "kubelet", "--members")
    assert (run.code, run.first_line) == (3, "K8S_HEALTH UNKNOWN - --members lists API servers only, not kubelet "
                                             "instances: give each with -s")


# -- hostile answers -----------------------------------------------------------------------------------------

def _slice_body(port: int, endpoints: list[object], address_type: str = "IPv4") -> Reply:
    base = slice_reply(MEMBER_HOSTS[:1], port)
    document = json.loads(base.body)
    document["endpoints"], document["addressType"] = endpoints, address_type
    return dataclasses.replace(base, body=json.dumps(document).encode())


@pytest.mark.parametrize(("make", "code", "words"), [
    (lambda port: Reply(200, b'{"kind":"EndpointSlice","endpoints":[', headers=(("Content-Type", "application/json"),)),
     3, "cannot be used: it is not JSON"),
    (lambda port: Reply(200, b"[" * 100_000 + b"]" * 100_000), 3, "cannot be used: it is not JSON"),
    (lambda port: Reply(200, b'{"kind":"EndpointSlice","endpoints":[],"ports":[{"name":"https","port":' +
                        b'1' * 2_000_000 + b"}]}"), 3, "cannot be used: it is larger than 1 MiB"),
    (lambda port: Reply(200, b'{"kind":"Status"}'), 3, "cannot be used: it is a Status, not an EndpointSlice"),
    (lambda port: Reply(200, b'{"kind":"EndpointSlice","endpoints":[{"addresses":["127.0.0.1"]}],"ports":[]}'), 3,
     "cannot be used: it names no port"),
    (lambda port: Reply(302, b"", headers=(("Location", "https://127.0.0.9/elsewhere"),)), 3,
     "redirect to https://127.0.0.9/elsewhere not followed"),
    (lambda port: _slice_body(port, []), 2, "the EndpointSlice default/kubernetes lists no API server"),
])
def test_hostile_lists(make, code: int, words: str) -> None:  # type: ignore[no-untyped-def]
    with control_plane([HEALTHY], lambda port: {SLICE_PATH: make(port), LEASES_PATH: fresh_leases(1)}) as plane:
        run = run_plugin(*plane.lb_args, "--members")
        member_requests = len(plane.members[0].requests) if plane.members[0] else 0
    assert run.code == code, run.stdout
    assert words in run.first_line, run.first_line
    assert member_requests == 0  # the named server is checked instead, never an address from a broken list


def test_addresses_that_are_not_ips_and_duplicates() -> None:
    def make(port: int) -> Reply:
        return _slice_body(port, [{"addresses": ["127.0.0.1"]}, {"addresses": ["evil.example"]},
                                  {"addresses": ["127.0.0.1"]}, {"addresses": [7]}, {"addresses": ["224.0.0.1"]}])

    with control_plane([HEALTHY], lambda port: {SLICE_PATH: make(port), LEASES_PATH: fresh_leases(1)}) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-v")
    assert (run.code, run.first_line) == (1, "K8S_HEALTH WARNING - 1 of 1 API servers healthy; 3 listed addresses "
                                             "are not an IP address and not asked (evil.example, 7, 224.0.0.1)")
    assert "members: 127.0.0.1 is listed 2 times" in run.long_output


def test_hundreds_of_members_are_capped() -> None:
    def make(port: int) -> Reply:
        return _slice_body(port, [{"addresses": [f"127.0.{i // 250}.{i % 250 + 1}"]} for i in range(300)])

    with control_plane([HEALTHY], lambda port: {SLICE_PATH: make(port), LEASES_PATH: fresh_leases(1)}) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-t", "6", "--output", "json")
    document = json.loads(run.stdout)
    assert len(document["servers"]) == 16
    assert document["members"]["listed"] == 300
    assert "300 API servers listed: only the first 16 are checked" in document["members"]["problems"]
    assert run.code == 2  # the members that do not exist refuse the connection


def test_the_load_balancer_listed_as_a_member() -> None:
    """Members that all advertise the load balancer's address: one address listed three times, three Leases."""
    with control_plane([HEALTHY], lookups(listed=1, leases=fresh_leases(3))) as plane:
        lb_port = plane.lb.url.rsplit(":", 1)[1]
        plane.lb.set_route(SLICE_PATH, _slice_body(int(lb_port), [{"addresses": ["127.0.0.1"]}] * 3))
        plane.lb.set_route("/readyz", HEALTHY["/readyz"])
        run = run_plugin(*plane.lb_args, "--members", "-v")
    assert (run.code, run.first_line) == (1, "K8S_HEALTH WARNING - 1 of 3 API servers healthy; 3 alive by Lease, "
                                             "1 listed: 2 not serving")
    assert "members: 127.0.0.1 is listed 3 times" in run.long_output


def test_a_killed_member_is_never_reported_ok() -> None:
    """The measured timeline of a SIGKILL: listed and refusing for 8-19 s, then gone from the list while its Lease
    is still fresh, then its Lease silent after a minute."""
    with control_plane([HEALTHY, HEALTHY, None]) as plane:
        listed = run_plugin(*plane.lb_args, "--members")
        plane.lb.set_route(SLICE_PATH, slice_reply(MEMBER_HOSTS[:2], plane.port))
        dropped = run_plugin(*plane.lb_args, "--members")
        plane.lb.set_route(LEASES_PATH, leases_reply({"ckhha-m1": 4.0, "ckhha-m2": 9.0, "ckhha-m3": 75.0}))
        silent = run_plugin(*plane.lb_args, "--members")
        name = plane.name(2)
    assert (listed.code, listed.first_line) == (2, f"K8S_HEALTH CRITICAL - 2 of 3 API servers healthy; {name} "
                                                   f"readyz: cannot connect to {name}: connection refused (API "
                                                   "server down or wrong port?)")
    assert (dropped.code, dropped.first_line) == (1, "K8S_HEALTH WARNING - 2 of 3 API servers healthy; 3 alive by "
                                                     "Lease, 2 listed: 1 not serving")
    assert (silent.code, silent.first_line) == (1, "K8S_HEALTH WARNING - 2 of 3 API servers healthy; ckhha-m3 "
                                                   "silent for 75 s")


@pytest.mark.parametrize(("leases", "said"), [
    (Reply(200, b"", hang=True), "did not answer within"),
    (Reply(200, b'{"kind":"LeaseList","items":{}}'), "cannot be used: its items are not a list"),
    (Reply(200, b"<html>proxy error</html>"), "cannot be used: it is not JSON"),
])
def test_leases_that_cannot_be_read_do_not_change_the_state(leases: Reply, said: str) -> None:
    with control_plane([HEALTHY, HEALTHY], lookups(listed=2, leases=leases)) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-v", "-t", "4")
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - 2 of 2 API servers healthy (readyz)")
    lost = [line for line in run.long_output if line.startswith("identity Leases not read (")]
    assert len(lost) == 1 and said in lost[0], run.long_output
    assert "members_alive" not in run.perfdata


def test_a_graceful_shutdown_still_listed_is_critical() -> None:
    """In the quarter second before it leaves the list, a member in its shutdown delay fails /readyz on shutdown."""
    with control_plane([HEALTHY, HEALTHY, shutdown_routes()]) as plane:
        run = run_plugin(*plane.lb_args, "--members", "-e", "livez", "-e", "readyz")
        name = plane.name(2)
    assert (run.code, run.first_line) == (2, f"K8S_HEALTH CRITICAL - 2 of 3 API servers healthy; {name} readyz: "
                                             "shutdown failed (1 of 33 sub-checks); livez: all 30 sub-checks passed")


def test_a_kubeconfigs_tls_server_name_names_the_load_balancer_not_the_members(tmp_path: Path) -> None:
    """A kubeconfig written by kubectl, whose tls-server-name is a name only the load balancer's certificate holds:
    the members are still verified by their addresses."""
    token = "members-kubeconfig-token-0123456789"
    with control_plane([HEALTHY, HEALTHY], lookups(listed=2), server_names=lambda host: (host,), token=token,
                       anonymous=False) as plane:
        config = token_kubeconfig(tmp_path / "config", plane.lb.url, plane.lb.ca_file, token)
        kubectl(config, "set-cluster", "cluster", "--tls-server-name=kubernetes")
        run = run_plugin("--kubeconfig", str(config), "--members")
        by_name = run_plugin("--kubeconfig", str(config), "--members", "--tls-server-name", "kubernetes")
        name = plane.name(0)
    assert (run.code, run.first_line) == (0, "K8S_HEALTH OK - 2 of 2 API servers healthy (readyz)")
    assert by_name.code == 2  # named on the command line, the name applies to the members too, and they lack it
    assert f"{name} readyz: TLS error: the server certificate is valid for '127.0.0.1', not kubernetes" in \
        by_name.first_line
