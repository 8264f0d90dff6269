"""``--leaders`` and ``--leader-lease`` end to end (SPEC section 6c): the installed command against an HTTPS
server on 127.0.0.1 replaying the leader Leases a real v1.28 control plane held while its scheduler was stopped
and its controller manager could not start, and every /readyz sub-check still passed."""

from __future__ import annotations

import json

import pytest
from conftest import ca_args, perf, run_plugin
from conftest import check_routes as check
from fakeapi import FakeApiServer, Reply, etcd_down_routes, healthy_routes
from fakecluster import control_plane, default_lookups
from fakeleaders import (
    CONTROLLER_MANAGER,
    CONTROLLER_MANAGER_CRASHING,
    HEALTHY,
    LEASE_PATH,
    SCHEDULER,
    SCHEDULER_STOPPED,
    leader_routes,
    lease_reply,
    raw_reply,
)

pytestmark = pytest.mark.usefixtures("each_install")

OK_READYZ = "readyz: all 33 sub-checks passed"
SCHEDULER_LINE = "kube-scheduler has had no leader for 31 s (released by its last holder): new pods stay Pending"
CLOUD = LEASE_PATH.format(namespace="kube-system", name="cloud-controller-manager")


def test_both_leaders_renewing() -> None:
    with FakeApiServer(leader_routes()) as server:
        run = run_plugin(*ca_args(server), "--leaders", "-vv")
        asked = sorted(seen.path for seen in server.requests)
    assert (run.code, run.first_line) == (0, f"K8S_HEALTH OK - {OK_READYZ}; leaders: 2 renewed")
    assert asked == sorted(["/readyz", SCHEDULER, CONTROLLER_MANAGER])
    ages = perf(run)
    assert set(ages) >= {"leader_kube_scheduler_age", "leader_kube_controller_manager_age"}
    assert float(ages["leader_kube_scheduler_age"].split("s", 1)[0]) < 3
    assert any(line.startswith("[+] lease/kube-system/kube-scheduler: kube-scheduler: led by vm_306942ac")
               for line in run.long_output)


def test_a_plain_run_asks_for_no_lease() -> None:
    with FakeApiServer(leader_routes(lease_reply(SCHEDULER_STOPPED))) as server:
        run = run_plugin(*ca_args(server))
        asked = [seen.path for seen in server.requests]
    assert (run.code, run.first_line) == (0, f"K8S_HEALTH OK - {OK_READYZ}")
    assert asked == ["/readyz"]


def test_a_stopped_scheduler_is_critical_while_readyz_passes() -> None:
    run = check(leader_routes(lease_reply(SCHEDULER_STOPPED)), "--leaders")
    assert (run.code, run.first_line) == (2, f"K8S_HEALTH CRITICAL - {OK_READYZ}; {SCHEDULER_LINE}")
    assert float(perf(run)["leader_kube_scheduler_age"].split("s", 1)[0]) == pytest.approx(31, abs=1.5)


def test_both_loops_without_a_leader_are_named_together() -> None:
    run = check(leader_routes(lease_reply(SCHEDULER_STOPPED), lease_reply(CONTROLLER_MANAGER_CRASHING)),
                "--leaders", "-v")
    assert (run.code, run.first_line) == (2, f"K8S_HEALTH CRITICAL - {OK_READYZ}; no leader for kube-scheduler "
                                             "(31 s), kube-controller-manager (32 s)")
    assert any("holder vm_a4035a0e-ae58-431f-b88e-288a45210bf6" in line and "nothing is reconciled" in line
               for line in run.long_output)


def test_the_servers_clock_decides_not_this_hosts() -> None:
    """A server whose clock runs an hour ahead: its Leases, renewed a second before its own time, are fresh."""
    ahead = {name: lease_reply(relpath, server_clock_offset=3600) for name, relpath in HEALTHY.items()}
    run = check(leader_routes(ahead["kube-scheduler"], ahead["kube-controller-manager"]), "--leaders")
    assert (run.code, run.first_line) == (0, f"K8S_HEALTH OK - {OK_READYZ}; leaders: 2 renewed")


def test_one_more_lease_that_this_control_plane_does_not_elect() -> None:
    routes = leader_routes(**{"cloud": Reply.from_capture("leaders/lease_not_found.txt")})
    routes[CLOUD] = routes.pop("cloud")
    run = check(routes, "--leader-lease", "kube-system/cloud-controller-manager")
    assert run.code == 3
    assert run.first_line == (f"K8S_HEALTH UNKNOWN - {OK_READYZ}; Lease kube-system/cloud-controller-manager not "
                              "found: this control plane does not elect cloud-controller-manager through it")


def test_a_forbidden_lease_names_the_role() -> None:
    forbidden = Reply.from_capture("leaders/lease_kube-scheduler_forbidden_monitor.txt")
    run = check(leader_routes(forbidden), "--leaders")
    assert run.code == 3
    assert "HTTP 403, grant get on the Lease kube-system/kube-scheduler (coordination.k8s.io)" in run.first_line


def test_a_leaderless_loop_outranks_a_lease_not_read_and_an_outage_outranks_both() -> None:
    forbidden = Reply.from_capture("leaders/lease_kube-scheduler_forbidden_monitor.txt")
    run = check(leader_routes(forbidden, lease_reply(CONTROLLER_MANAGER_CRASHING)), "--leaders")
    assert run.code == 2 and "kube-controller-manager has had no leader" in run.first_line
    down = {**etcd_down_routes(), SCHEDULER: lease_reply(HEALTHY["kube-scheduler"]),
            CONTROLLER_MANAGER: lease_reply(HEALTHY["kube-controller-manager"])}
    run = check(down, "--leaders")
    assert run.code == 2 and run.first_line.startswith("K8S_HEALTH CRITICAL - readyz: etcd, etcd-readiness failed")
    assert run.first_line.endswith("; leaders: 2 renewed")


@pytest.mark.parametrize("policy, code, words", [
    (["--warning-check", "lease/*/kube-scheduler"], 1, f"{SCHEDULER_LINE} (WARNING by policy)"),
    (["--ignore-check", "lease/kube-system/*"], 0, "leaders: 1 renewed, 1 ignored by policy"),
])
def test_policy_globs_soften_or_silence_a_lease(policy: list[str], code: int, words: str) -> None:
    run = check(leader_routes(lease_reply(SCHEDULER_STOPPED)), "--leaders", *policy)
    assert (run.code, run.first_line) == (code, f"K8S_HEALTH {('OK', 'WARNING')[code]} - {OK_READYZ}; {words}")


def test_json_carries_every_lease_as_judged() -> None:
    run = check(leader_routes(lease_reply(SCHEDULER_STOPPED)), "--leaders", "--output", "json")
    document = json.loads(run.stdout)
    leaders = document["leaders"]
    assert (document["state"], leaders["state"]) == ("CRITICAL", "CRITICAL")
    assert leaders["problems"] == [SCHEDULER_LINE]
    scheduler, controller_manager = leaders["leases"]
    assert (scheduler["name"], scheduler["leader"], scheduler["holder"]) == ("kube-scheduler", False, None)
    assert scheduler["age"] == pytest.approx(31, abs=1.5) and scheduler["duration"] == 1
    assert (controller_manager["leader"], controller_manager["duration"]) == (True, 15)
    assert controller_manager["holder"].startswith("vm_")


# -- hostile answers ---------------------------------------------------------------------------------------------

def test_no_date_header_is_unknown_never_this_hosts_clock() -> None:
    body = lease_reply(HEALTHY["kube-scheduler"]).body.decode()
    run = check(leader_routes(raw_reply(HEALTHY["kube-scheduler"], body, None)), "--leaders")
    assert run.code == 3
    assert "kube-scheduler: cannot tell whether it has a leader: the server sent no usable Date header" \
        in run.first_line


@pytest.mark.parametrize("body, words", [
    ("<html>proxy error</html>", "the Lease kube-system/kube-scheduler from 127.0.0.1:"),
    ('{"kind": "Lease", "spec": {"holderIdentity": "cp|1\\nx", "renewTime": "garbage"}}', "is not a time"),
    ('{"kind": "Lease", "spec": {"holderIdentity": "' + "h" * 10_000 + '", "leaseDurationSeconds": -1, '
     '"renewTime": "2020-01-01T00:00:00.000000Z"}}', "is not a positive number of seconds"),
])
def test_odd_bodies_are_unknown_with_words(body: str, words: str) -> None:
    run = check(leader_routes(raw_reply(HEALTHY["kube-scheduler"], body, "Sun, 06 Dec 2026 20:41:36 GMT")),
                "--leaders")
    assert run.code == 3 and words in run.first_line
    assert len(run.first_line) <= 200 and "|" not in run.first_line.split(" | ")[0]


def test_a_lease_that_never_answers_is_critical_within_the_deadline() -> None:
    run = check(leader_routes(Reply(200, hang=True)), "--leaders", "-t", "2")
    assert run.code == 2 and run.seconds < 4
    assert run.first_line.startswith(f"K8S_HEALTH CRITICAL - {OK_READYZ}; the Lease kube-system/kube-scheduler from "
                                     "127.0.0.1:")
    assert run.first_line.endswith("did not answer within the 2 s deadline (-t)")


def test_a_lease_answering_500_is_critical() -> None:
    run = check(leader_routes(Reply(500, b"etcdserver: request timed out")), "--leaders")
    assert run.code == 2 and "HTTP 500 Internal Server Error for the Lease kube-system/kube-scheduler" \
        in run.first_line


# -- the command line -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["kube-scheduler", "/kube-scheduler", "kube-system/", "Kube-System/x",
                                   "kube-system/a_b", "kube-system/x/y", "ns/" + "a" * 254, "kube-system/-a",
                                   "a" * 64 + "/b", "kube-system/a..b", ""])
def test_a_lease_that_is_not_namespace_slash_name_is_a_usage_error(value: str) -> None:
    run = run_plugin("-s", "https://127.0.0.1:1", f"--leader-lease={value}")
    assert run.code == 3
    assert run.first_line.endswith("is not NAMESPACE/NAME such as kube-system/cloud-controller-manager (lower-case "
                                   "DNS names) (see --help)")
    assert len(run.first_line) <= 200


def test_leaders_ask_the_api_server_only() -> None:
    run = run_plugin("--component", "kube-scheduler", "--leaders")
    assert (run.code, run.first_line) == (3, "K8S_HEALTH UNKNOWN - --leaders asks the API server, not "
                                             "kube-scheduler: leave it out with --component")


def test_a_named_lease_is_asked_once_beside_the_defaults() -> None:
    routes = leader_routes(**{"x": lease_reply(HEALTHY["kube-scheduler"])})
    other = LEASE_PATH.format(namespace="cert-manager", name="cert-manager-controller")
    routes[other] = routes.pop("x")
    with FakeApiServer(routes) as server:
        run = run_plugin(*ca_args(server), "--leader-lease", "cert-manager/cert-manager-controller",
                         "--leader-lease", "kube-system/kube-scheduler", "--leader-lease",
                         "cert-manager/cert-manager-controller")
        asked = sorted(seen.path for seen in server.requests)
    assert (run.code, run.first_line) == (0, f"K8S_HEALTH OK - {OK_READYZ}; leaders: 3 renewed")
    assert asked == sorted(["/readyz", SCHEDULER, CONTROLLER_MANAGER, other])


# -- with --members: asked once, through the server the list came from ------------------------------------------

def test_members_ask_the_leases_once_through_the_load_balancer() -> None:
    with control_plane([healthy_routes(), healthy_routes()],
                       lambda port: {**default_lookups(2)(port),
                                     **leader_routes(lease_reply(SCHEDULER_STOPPED))}) as plane:
        run = run_plugin(*plane.lb_args, "--members", "--leaders")
        lb_paths = [seen.path for seen in plane.lb.requests]
        member_paths = [[seen.path for seen in member.requests] for member in plane.members if member]
    assert (run.code, run.first_line) == (2, "K8S_HEALTH CRITICAL - 2 of 2 API servers healthy (readyz); "
                                             f"{SCHEDULER_LINE}")
    assert sorted(path for path in lb_paths if "/leases/" in path) == sorted([SCHEDULER, CONTROLLER_MANAGER])
    assert member_paths == [["/readyz"]] * 2
