"""``--webhooks`` and ``--aggregated-apis`` end to end (SPEC section 6b): the installed command against an HTTPS
server on 127.0.0.1 replaying what a real v1.28 API server answered while a webhook's service was gone and three
aggregated APIs were down, and every /readyz sub-check still passed."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from conftest import ca_args, perf, run_plugin
from conftest import check_routes as check
from fakeapi import FakeApiServer, Reply, etcd_down_routes, healthy_routes
from fakeblind import (
    APISERVICES_PATH,
    BLOCKED_LINE,
    LIST_PATHS,
    METRICS_LINE,
    MUTATING_PATH,
    UNAVAILABLE_LINE,
    VALIDATING_PATH,
    apiservice,
    apiservice_list,
    broken_webhook_routes,
    captured,
    healthy_blind_routes,
    json_reply,
    service_path,
    slice_list,
    slices_key,
    unavailable_apiservice_routes,
    webhook,
    webhook_list,
)
from fakecluster import control_plane

# Every case runs against both installs: pip's, and the Debian package on Debian 12's libraries.
pytestmark = pytest.mark.usefixtures("each_install")

BOTH = ("--webhooks", "--aggregated-apis")
OK_READYZ = "readyz: all 33 sub-checks passed"
INJECT_LINE = ("webhook inject.example.com blocks CREATE pods, services: service kube-system/injector has no ready "
               "endpoint (0 of 1)")


# -- what the endpoints cannot see -------------------------------------------------------------------------------

def test_a_healthy_cluster() -> None:
    with FakeApiServer(healthy_blind_routes()) as server:
        run = run_plugin(*ca_args(server), *BOTH)
        asked = sorted(seen.path for seen in server.requests)
    assert (run.code, run.first_line) == (0, f"K8S_HEALTH OK - {OK_READYZ}; webhooks: none; aggregated APIs: none")
    assert asked == sorted(["/readyz", *LIST_PATHS])
    counts = perf(run)
    assert (counts["webhooks"], counts["webhooks_unserved"]) == ("0;;;0", "0;;;0")
    assert (counts["apiservices"], counts["apiservices_unavailable"]) == ("21;;;0", "0;;;0")


def test_a_plain_run_asks_nothing_more() -> None:
    with FakeApiServer(broken_webhook_routes()) as server:
        run = run_plugin(*ca_args(server))
        asked = [seen.path for seen in server.requests]
    assert (run.code, run.first_line) == (0, f"K8S_HEALTH OK - {OK_READYZ}")
    assert asked == ["/readyz"]
    assert "webhooks" not in run.perfdata


def test_a_webhook_whose_service_is_gone_blocks_writes() -> None:
    with FakeApiServer(broken_webhook_routes()) as server:
        run = run_plugin(*ca_args(server), "--webhooks", "-vv")
        asked = [(seen.path, seen.query) for seen in server.requests]
    assert (run.code, run.first_line) == (2, f"K8S_HEALTH CRITICAL - {OK_READYZ}; {BLOCKED_LINE}")
    assert ("[-] webhook policy-guard/guard.example.com (validating, failurePolicy Fail, CREATE, UPDATE configmaps): "
            "service kube-system/guard not found") in run.long_output
    assert ("[-] webhook defaults-injector/inject.example.com (mutating, failurePolicy Fail, CREATE pods, services): "
            "service kube-system/injector has no ready endpoint (0 of 1)") in run.long_output
    # The Service is asked only where no EndpointSlice was found, to tell "not found" from "not ready".
    slices = "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices"
    assert (slices, [("labelSelector", "kubernetes.io/service-name=guard")]) in asked
    assert (slices, [("labelSelector", "kubernetes.io/service-name=injector")]) in asked
    assert (service_path("kube-system", "guard"), []) in asked
    assert (service_path("kube-system", "injector"), []) not in asked
    assert (perf(run)["webhooks"], perf(run)["webhooks_unserved"]) == ("3;;;0", "2;;;0")
    assert "apiservices" not in perf(run)


def test_a_url_webhook_is_listed_never_called() -> None:
    with FakeApiServer(healthy_routes(), host="127.0.0.9") as hook_server:
        url = f"{hook_server.url}/validate"
        document = captured("validatingwebhookconfigurations_2.txt")
        document["items"][0]["webhooks"][1]["clientConfig"]["url"] = url
        routes = {**broken_webhook_routes(), VALIDATING_PATH: json_reply(document)}
        run = check(routes, "--webhooks", "-vv")
        called = hook_server.requests
    assert called == []
    assert (f"[+] webhook policy-guard/url.example.com (validating, failurePolicy Ignore, CREATE deployments.apps): "
            f"calls {url}: not judged: the plugin never calls a webhook") in run.long_output
    assert run.code == 2


def test_an_ignore_webhook_is_a_policy_not_enforced() -> None:
    hooks = webhook_list([webhook("audit.example.com", "security/auditor", "Ignore")])
    routes = {**healthy_blind_routes(), VALIDATING_PATH: json_reply(hooks),
              slices_key("security", "auditor"): Reply.from_capture("blind/endpointslices_guard_none.txt"),
              service_path("security", "auditor"): Reply.from_capture("blind/service_injector.txt")}
    run = check(routes, "--webhooks")
    assert (run.code, run.first_line) == (1, f"K8S_HEALTH WARNING - {OK_READYZ}; webhook audit.example.com not "
                                             "enforced on CREATE configmaps: service security/auditor has no "
                                             "endpoints")


def test_unavailable_aggregated_apis() -> None:
    run = check(unavailable_apiservice_routes(), "--aggregated-apis", "-v")
    assert (run.code, run.first_line) == (1, f"K8S_HEALTH WARNING - {OK_READYZ}; {UNAVAILABLE_LINE}")
    assert len(run.first_line) <= 200
    assert ("[-] apiservice v1beta1.metrics.k8s.io: ServiceNotFound: service/metrics-server in \"kube-system\" is "
            "not present (service kube-system/metrics-server)") in run.long_output
    assert ("[-] apiservice v1beta1.custom.metrics.k8s.io: EndpointsNotFound: cannot find endpoints for "
            "service/custom-metrics in \"kube-system\" (service kube-system/custom-metrics)") in run.long_output
    assert (perf(run)["apiservices"], perf(run)["apiservices_unavailable"]) == ("24;;;0", "3;;;0")
    assert "webhooks" not in perf(run)


def test_one_unavailable_aggregated_api_is_named_whole() -> None:
    document = apiservice_list([apiservice("v1beta1.metrics.k8s.io")])
    run = check({**healthy_blind_routes(), APISERVICES_PATH: json_reply(document)}, "--aggregated-apis")
    assert (run.code, run.first_line) == (1, f"K8S_HEALTH WARNING - {OK_READYZ}; {METRICS_LINE}")


def test_the_health_result_comes_first_and_is_never_hidden() -> None:
    routes = {**broken_webhook_routes(), **etcd_down_routes(),
              VALIDATING_PATH: Reply.from_capture("blind/validatingwebhookconfigurations_forbidden_monitor.txt")}
    run = check(routes, *BOTH)
    assert (run.code, run.first_line) == (2, "K8S_HEALTH CRITICAL - readyz: etcd, etcd-readiness failed (2 of 33 "
                                             "sub-checks); webhooks: HTTP 403, grant list on "
                                             "validatingwebhookconfigurations (admissionregistration.k8s.io)")


# -- policy --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "code", "head"), [
    (["--critical-check", "apiservice/*metrics*", "--ignore-check", "webhook/*"], 2,
     "2 aggregated APIs unavailable: v1beta1.custom.metrics.k8s.io (EndpointsNotFound), v1beta1.metrics.k8s.io "
     "(ServiceNotFound); and 1 more"),
    (["--ignore-check", "apiservice/*"], 2, BLOCKED_LINE),
    (["--ignore-check", "webhook/policy-guard/*"], 2, "webhook inject.example.com blocks"),
    (["--warning-check", "webhook/*"], 1, BLOCKED_LINE),
    (["--ignore-check", "webhook/*", "--ignore-check", "apiservice/*"], 0, "webhooks: none to judge"),
    (["--ignore-check", "webhook/*", "--critical-check", "webhook/defaults-injector/*"], 2,
     "webhook inject.example.com blocks"),
])
def test_the_check_globs_apply(args: list[str], code: int, head: str) -> None:
    routes = {**broken_webhook_routes(), APISERVICES_PATH: Reply.from_capture("blind/apiservices_3_unavailable.txt")}
    run = check(routes, *BOTH, *args, "-v")
    assert run.code == code, run.stdout
    assert run.first_line.startswith(f"K8S_HEALTH {('OK', 'WARNING', 'CRITICAL')[code]} - {OK_READYZ}; {head}"), \
        run.first_line
    assert not [line for line in run.long_output if "matches no sub-check" in line]


def test_ignored_problems_stay_listed() -> None:
    routes = {**broken_webhook_routes(), APISERVICES_PATH: Reply.from_capture("blind/apiservices_3_unavailable.txt")}
    run = check(routes, *BOTH, "--ignore-check", "*", "--warning-check", "webhook/nothing/*", "-v")
    assert (run.code, run.first_line) == (0, f"K8S_HEALTH OK - {OK_READYZ}; webhooks: none to judge; aggregated APIs: "
                                             "none")
    assert any(line.endswith("not found (ignored by policy)") for line in run.long_output)
    assert sum(line.startswith("[-] apiservice ") and line.endswith("(ignored by policy)")
               for line in run.long_output) == 3
    assert "--warning-check 'webhook/nothing/*' matches no sub-check the server reported" in run.long_output
    assert perf(run)["webhooks_unserved"] == "2;;;0"  # a fact, whatever the policy makes of it


# -- look-ups that fail --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "capture", "first"), [
    (VALIDATING_PATH, "blind/validatingwebhookconfigurations_forbidden_monitor.txt",
     "webhooks: HTTP 403, grant list on validatingwebhookconfigurations (admissionregistration.k8s.io)"),
    (APISERVICES_PATH, "blind/apiservices_forbidden_monitor.txt",
     "aggregated APIs: HTTP 403, grant list on apiservices (apiregistration.k8s.io)"),
    (APISERVICES_PATH, "blind/apiservices_forbidden_anonymous.txt",
     "aggregated APIs: HTTP 403, grant list on apiservices (apiregistration.k8s.io)"),
    (slices_key("kube-system", "guard"), "blind/endpointslices_forbidden_monitor.txt",
     "webhook backends: HTTP 403, grant list on endpointslices (discovery.k8s.io)"),
])
def test_forbidden_look_ups_name_the_rule(path: str, capture: str, first: str) -> None:
    base = broken_webhook_routes() if path.startswith("/apis/discovery") else healthy_blind_routes()
    routes = {**base, slices_key("kube-system", "injector"):
              json_reply(slice_list([{"addresses": ["192.0.2.51"], "conditions": {"ready": True}}])),
              path: Reply.from_capture(capture)}
    run = check(routes, *BOTH, "-v")
    if path == slices_key("kube-system", "guard"):
        assert (run.code, run.first_line) == (3, f"K8S_HEALTH UNKNOWN - {OK_READYZ}; {first}")
        assert ("[-] webhook policy-guard/guard.example.com (validating, failurePolicy Fail, CREATE, UPDATE "
                "configmaps): service kube-system/guard: backends not read (HTTP 403, grant list on "
                "endpointslices (discovery.k8s.io))") in run.long_output
        return
    assert (run.code, run.first_line) == (3, f"K8S_HEALTH UNKNOWN - {OK_READYZ}; {first}")
    message = json.loads(Reply.from_capture(capture).body)["message"]
    assert any(message in line and line.endswith("the ClusterRole check-k8s-health-blind-spots of deploy/rbac.yaml "
                                                 "grants what is needed, read-only")
               for line in run.long_output), run.long_output
    assert ("webhooks" if path == VALIDATING_PATH else "apiservices") not in perf(run)


def test_a_forbidden_look_up_is_said_once_for_every_service() -> None:
    routes = {path: reply for path, reply in broken_webhook_routes().items() if "endpointslices" not in path}
    routes["/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices"] = Reply.from_capture(
        "blind/endpointslices_forbidden_monitor.txt")
    run = check(routes, "--webhooks", "-v")
    assert (run.code, run.first_line) == (3, f"K8S_HEALTH UNKNOWN - {OK_READYZ}; webhook backends: HTTP 403, grant "
                                             "list on endpointslices (discovery.k8s.io)")
    assert sum(line.startswith("webhooks: EndpointSlices: ") for line in run.long_output) == 1
    assert sum("backends not read" in line for line in run.long_output) == 2
    assert "webhooks=3;;;0" in run.perfdata.split() and "webhooks_unserved" not in run.perfdata


def test_a_forbidden_list_beside_a_real_problem_is_the_problem() -> None:
    forbidden = Reply.from_capture("blind/apiservices_forbidden_monitor.txt")
    run = check({**broken_webhook_routes(), APISERVICES_PATH: forbidden}, *BOTH)
    assert (run.code, run.first_line) == (2, f"K8S_HEALTH CRITICAL - {OK_READYZ}; {BLOCKED_LINE}; and 1 more")


@pytest.mark.parametrize(("reply", "code", "words"), [
    (Reply(503, b"service unavailable\n"), 2, "webhooks: HTTP 503 Service Unavailable for the "
                                              "ValidatingWebhookConfigurations from 127.0.0.1:"),
    (Reply(200, b"", hang=True), 2, "webhooks: the ValidatingWebhookConfigurations from 127.0.0.1:"),
    (Reply(404, Reply.from_capture("healthy/readyz_nonexistent_sysmon.txt").body), 3,
     "webhooks: HTTP 404: the server does not serve admissionregistration.k8s.io/v1 (Kubernetes 1.16+)"),
    (Reply(200, b"<html>proxy error</html>"), 3, "cannot be used: it is not JSON"),
    (Reply(200, b'{"kind":"ValidatingWebhookConfigurationList","items":{}}'), 3,
     "cannot be used: its items are not a list"),
    (Reply(200, b'{"kind":"ValidatingWebhookConfigurationList","items":[{"metadata":{"name":"x"},"webhooks":7}]}'),
     3, "cannot be used: the webhooks of x are not a list"),
    (Reply(200, b'{"kind":"Status","code":403}'), 3, "cannot be used: it is a Status, not a "
                                                    "ValidatingWebhookConfigurationList"),
    (dataclasses.replace(Reply.from_capture("blind/validatingwebhookconfigurations_2.txt"), close_mid_body=True), 2,
     "webhooks: "),
    (Reply(302, b"", headers=(("Location", "https://127.0.0.9/elsewhere"),)), 3,
     "redirect to https://127.0.0.9/elsewhere not followed"),
])
def test_a_broken_list(reply: Reply, code: int, words: str) -> None:
    routes = {**healthy_blind_routes(), VALIDATING_PATH: reply}
    run = check(routes, "--webhooks", "-t", "3")
    assert run.code == code, run.stdout
    assert run.first_line.startswith(f"K8S_HEALTH {('OK', 'WARNING', 'CRITICAL', 'UNKNOWN')[code]} - {OK_READYZ}; "), \
        run.first_line
    assert words in run.first_line, run.first_line
    assert run.seconds < 3 + 1.5


def test_a_server_older_than_the_apis_says_so() -> None:
    not_found = Reply.from_capture("healthy/readyz_nonexistent_sysmon.txt")
    routes = {**healthy_routes(), VALIDATING_PATH: not_found, MUTATING_PATH: not_found, APISERVICES_PATH: not_found}
    run = check(routes, *BOTH)
    assert run.code == 3
    assert "the server does not serve admissionregistration.k8s.io/v1 (Kubernetes 1.16+)" in run.first_line


# -- with --members: asked once, through the server the list came from ------------------------------------------

def test_members_ask_once_through_the_load_balancer() -> None:
    with control_plane([healthy_routes(), healthy_routes()],
                       lambda port: {**_member_lookups(port), **broken_webhook_routes()}) as plane:
        run = run_plugin(*plane.lb_args, "--members", *BOTH)
        lb_paths = [seen.path for seen in plane.lb.requests]
        member_paths = [[seen.path for seen in member.requests] for member in plane.members if member]
    assert (run.code, run.first_line) == (2, f"K8S_HEALTH CRITICAL - 2 of 2 API servers healthy (readyz); "
                                             f"{BLOCKED_LINE}")
    assert sorted(path for path in lb_paths if path in LIST_PATHS) == sorted(LIST_PATHS)
    assert member_paths == [["/readyz"]] * 2


def _member_lookups(port: int) -> dict[str, Reply]:
    from fakecluster import default_lookups

    return default_lookups(2)(port)


# -- machines --------------------------------------------------------------------------------------------------

def test_json_has_every_item_judged() -> None:
    routes = {**broken_webhook_routes(), APISERVICES_PATH: Reply.from_capture("blind/apiservices_3_unavailable.txt")}
    run = check(routes, *BOTH, "--output", "json")
    document = json.loads(run.stdout)
    assert (run.code, document["code"]) == (2, 2)
    hooks = document["webhooks"]
    assert (hooks["state"], hooks["count"], hooks["unserved"], hooks["error"]) == ("CRITICAL", 3, 2, None)
    guard = next(item for item in hooks["items"] if item["name"] == "guard.example.com")
    assert guard == {"configuration": "policy-guard", "kind": "validating", "failure_policy": "Fail",
                     "service": "kube-system/guard", "url": None, "operations": ["CREATE", "UPDATE"],
                     "resources": ["configmaps"], "namespace_selector": None, "name": "guard.example.com",
                     "check": "webhook/policy-guard/guard.example.com", "state": "CRITICAL", "code": 2,
                     "judged": True, "unserved": True, "detail": "service kube-system/guard not found"}
    apis = document["aggregated_apis"]
    assert (apis["state"], apis["count"], apis["unavailable"], apis["local"]) == ("WARNING", 24, 3, 21)
    assert {item["name"] for item in apis["items"]} == {"v1beta1.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io",
                                                        "v1alpha1.wardle.example.com"}
    metrics = next(item for item in apis["items"] if item["name"] == "v1beta1.metrics.k8s.io")
    assert (metrics["reason"], metrics["available"], metrics["code"]) == ("ServiceNotFound", "False", 1)


def test_json_of_a_forbidden_list() -> None:
    routes = {**healthy_blind_routes(), APISERVICES_PATH: Reply.from_capture("blind/apiservices_forbidden_monitor.txt")}
    document = json.loads(check(routes, "--aggregated-apis", "--output", "json").stdout)
    apis = document["aggregated_apis"]
    assert (apis["state"], apis["count"], apis["items"]) == ("UNKNOWN", None, [])
    assert apis["error"] == "HTTP 403, grant list on apiservices (apiregistration.k8s.io)"


def test_the_options_need_the_api_server() -> None:
    run = run_plugin("--component", "kubelet", "--webhooks")
    assert (run.code, run.first_line) == (3, "K8S_HEALTH UNKNOWN - --webhooks asks the API server, not kubelet: "
                                             "leave it out with --component")


# -- hostile and odd objects ---------------------------------------------------------------------------------------

RULE_ALL = {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}
NOT_FOUND_SLICES = Reply.from_capture("blind/endpointslices_guard_none.txt")
NOT_FOUND_SERVICE = Reply.from_capture("blind/service_guard_not_found.txt")


def _one_webhook(hook: dict[str, Any], slices: Reply = NOT_FOUND_SLICES) -> dict[str, Reply]:
    return {**healthy_blind_routes(), VALIDATING_PATH: json_reply(webhook_list([hook])),
            slices_key("kube-system", "guard"): slices, service_path("kube-system", "guard"): NOT_FOUND_SERVICE}


@pytest.mark.parametrize(("hook", "code", "words"), [
    (webhook("norules.example.com", rules=[]), 0, "webhooks: none to judge"),
    (webhook("all.example.com", rules=[RULE_ALL]), 2,
     "webhook all.example.com blocks every operation on every resource: service kube-system/guard not found"),
    (webhook("scoped.example.com", namespaceSelector={"matchLabels": {"team": "a"}, "matchExpressions": [
        {"key": "env", "operator": "In", "values": ["prod", "staging"]}]}), 2,
     "webhook scoped.example.com blocks CREATE configmaps: service kube-system/guard not found"),
    (webhook("many.example.com", rules=[{"operations": ["CREATE"], "apiGroups": ["", "apps"],
                                         "resources": ["pods", "services", "configmaps", "secrets"]}]), 2,
     "webhook many.example.com blocks CREATE pods, pods.apps, services and 5 more: service"),
    ({**webhook("nopolicy.example.com"), "failurePolicy": None}, 2, "webhook nopolicy.example.com blocks CREATE"),
    ({"name": "broken", "clientConfig": "nonsense", "rules": 5}, 0, "webhooks: none to judge"),
])
def test_odd_webhooks(hook: dict[str, Any], code: int, words: str) -> None:
    run = check(_one_webhook(hook), "--webhooks", "-v")
    assert run.code == code, run.stdout
    assert words in run.first_line, run.first_line
    if hook.get("namespaceSelector"):
        assert any(line.endswith("in namespaces team=a,env In (prod, staging)): service kube-system/guard not found")
                   for line in run.long_output), run.long_output


@pytest.mark.parametrize(("endpoints", "address_type", "code"), [
    ([{"addresses": ["192.0.2.51"], "conditions": {"ready": None}}], "IPv4", 0),
    ([{"addresses": ["192.0.2.51"], "conditions": {"serving": True}}], "IPv4", 0),
    ([{"addresses": ["192.0.2.51"]}], "IPv4", 0),
    ([{"addresses": ["2001:db8::51"], "conditions": {"ready": True}}], "IPv6", 0),
    ([{"addresses": ["2001:db8::51"], "conditions": {"ready": False, "serving": True}}], "IPv6", 2),
    ([], "IPv4", 2),
    ([{"addresses": ["192.0.2.51"], "conditions": {"ready": False}}] * 3, "IPv4", 2),
])
def test_odd_endpoint_slices(endpoints: list[dict[str, Any]], address_type: str, code: int) -> None:
    run = check(_one_webhook(webhook("guard.example.com"), json_reply(slice_list(endpoints, address_type))),
                "--webhooks", "-vv")
    assert run.code == code, run.stdout
    if code == 0:
        assert run.first_line == f"K8S_HEALTH OK - {OK_READYZ}; webhooks: 1 served"
        assert any(line.endswith("service kube-system/guard: 1 of 1 endpoints ready") for line in run.long_output)
    elif endpoints:
        assert f"service kube-system/guard has no ready endpoint (0 of {len(endpoints)})" in run.first_line
    else:  # a slice without endpoints: the Service exists, nothing stands behind it
        assert run.first_line.endswith("service kube-system/guard has no endpoints"), run.first_line


def test_an_external_name_service_is_not_judged() -> None:
    service = captured("service_injector.txt")
    service["spec"] = {"type": "ExternalName", "externalName": "guard.example.net"}
    routes = {**_one_webhook(webhook("guard.example.com")), service_path("kube-system", "guard"): json_reply(service)}
    run = check(routes, "--webhooks", "-vv")
    assert (run.code, run.first_line) == (0, f"K8S_HEALTH OK - {OK_READYZ}; webhooks: none to judge")
    assert any("is an ExternalName for guard.example.net: not judged" in line for line in run.long_output)


@pytest.mark.parametrize(("status", "words"), [
    ({}, "unavailable: no Available condition yet (just created, or no aggregator has judged it)"),
    ({"conditions": [{"type": "Available", "status": "Unknown"}]}, "unavailable: Available is Unknown"),
    ({"conditions": [{"type": "Available", "status": "False"}]}, "unavailable: Available is False"),
    ({"conditions": [{"type": "Flavour", "status": "True"}]}, "unavailable: no Available condition yet"),
    ({"conditions": "many"}, "unavailable: no Available condition yet"),
    ({"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]},
     "unavailable: MissingEndpoints"),
])
def test_odd_apiservices(status: dict[str, Any], words: str) -> None:
    document = apiservice_list([apiservice("v1beta1.metrics.k8s.io", status=status)])
    run = check({**healthy_blind_routes(), APISERVICES_PATH: json_reply(document)}, "--aggregated-apis")
    assert run.code == 1, run.stdout
    assert f"v1beta1.metrics.k8s.io {words}" in run.first_line, run.first_line


def test_thousands_of_webhooks_and_apiservices_stay_bounded() -> None:
    hooks = [webhook(f"hook-{index}.example.com", f"ns-{index % 100}/svc-{index % 100}") for index in range(3000)]
    apis = [apiservice(f"v1.group{index}.example.com") for index in range(2000)]
    routes = {**healthy_blind_routes(), VALIDATING_PATH: json_reply(webhook_list(hooks)),
              APISERVICES_PATH: json_reply(apiservice_list(apis)),
              # Every service without endpoints and (asked next) not found: the real 404 page.
              **{f"/apis/discovery.k8s.io/v1/namespaces/ns-{index}/endpointslices": NOT_FOUND_SLICES
                 for index in range(100)}}
    with FakeApiServer(routes) as server:
        run = run_plugin(*ca_args(server), *BOTH, "-vv", "-t", "6")
        slices_asked = sum(seen.path.endswith("/endpointslices") for seen in server.requests)
    assert run.code == 2
    assert run.first_line.endswith(" more") and len(run.first_line) <= 200
    assert slices_asked == 32  # distinct services, capped
    assert sum(line.startswith("[-] webhook ") for line in run.long_output) == 50
    assert sum(line.startswith("[-] apiservice ") for line in run.long_output) == 50
    assert "... and 910 more of the same" in run.long_output  # 960 webhooks on the 32 services asked
    assert "... and 1950 more of the same" in run.long_output
    assert "webhooks: 2040 on services beyond the first 32 are not judged (webhook/policy-guard/hook-32.example.com, " \
           "webhook/policy-guard/hook-33.example.com, webhook/policy-guard/hook-34.example.com and 2037 more)" in \
        run.long_output
    assert (perf(run)["webhooks"], perf(run)["apiservices_unavailable"]) == ("3000;;;0", "2000;;;0")
    assert len(run.stdout) < 64 * 1024
