"""deploy/rbac.yaml grants exactly what the plugin needs and nothing more, and its parts refer to each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DOCS: list[dict[str, Any]] = list(yaml.safe_load_all((Path(__file__).resolve().parent.parent / "deploy" /
                                                      "rbac.yaml").read_text()))


def _one(kind: str) -> dict[str, Any]:
    found = [doc for doc in DOCS if doc["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def test_cluster_role_is_least_privilege() -> None:
    role = _named("ClusterRole", "check-k8s-health")
    assert role["rules"] == [{"nonResourceURLs": ["/livez", "/livez/*", "/readyz", "/readyz/*", "/healthz",
                                                  "/healthz/*"], "verbs": ["get"]}]


def test_binding_secret_and_account_fit_together() -> None:
    account, binding, secret = _one("ServiceAccount"), _named("ClusterRoleBinding", "check-k8s-health"), _one("Secret")
    name, namespace = account["metadata"]["name"], account["metadata"]["namespace"]
    assert _one("Namespace")["metadata"]["name"] == namespace
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "check-k8s-health"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["namespace"] == namespace
    assert secret["metadata"]["annotations"] == {"kubernetes.io/service-account.name": name}


def _named(kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in DOCS if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def test_member_roles_are_least_privilege() -> None:
    """``--members`` reads one named object in ``default`` and lists Leases in ``kube-system``: nothing wider."""
    members = _named("Role", "check-k8s-health-members")
    assert members["metadata"]["namespace"] == "default"
    assert members["rules"] == [
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "resourceNames": ["kubernetes"],
         "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["endpoints"], "resourceNames": ["kubernetes"], "verbs": ["get"]},
    ]
    leases = _named("Role", "check-k8s-health-leases")
    assert leases["metadata"]["namespace"] == "kube-system"
    assert leases["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list"]}]


def test_member_role_bindings_bind_the_monitoring_account() -> None:
    account = _one("ServiceAccount")
    subject = {"kind": "ServiceAccount", "name": account["metadata"]["name"],
               "namespace": account["metadata"]["namespace"]}
    for role in ("check-k8s-health-members", "check-k8s-health-leases"):
        binding = _named("RoleBinding", role)
        assert binding["metadata"]["namespace"] == _named("Role", role)["metadata"]["namespace"]
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role}
        assert binding["subjects"] == [subject]


def test_blind_spot_role_is_read_only_and_exactly_what_the_plugin_asks() -> None:
    """``--webhooks`` lists both webhook configuration kinds and the EndpointSlices of their services and gets a
    Service by name; ``--aggregated-apis`` lists APIServices. Nothing is written, nothing holds a secret."""
    role = _named("ClusterRole", "check-k8s-health-blind-spots")
    assert role["rules"] == [
        {"apiGroups": ["admissionregistration.k8s.io"],
         "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"], "verbs": ["list"]},
        {"apiGroups": ["apiregistration.k8s.io"], "resources": ["apiservices"], "verbs": ["list"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]},
    ]
    binding = _named("ClusterRoleBinding", "check-k8s-health-blind-spots")
    account = _one("ServiceAccount")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "check-k8s-health-blind-spots"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]


def test_the_rbac_hints_name_what_the_role_grants() -> None:
    """Every rule the plugin names in a 403 hint is one the shipped role grants, word for word."""
    from check_k8s_health.checks.blindspots.judge import RULES

    role = _named("ClusterRole", "check-k8s-health-blind-spots")
    granted = {f"grant {verb} on {resource}" + (f" ({group})" if group else "")
               for rule in role["rules"] for group in rule["apiGroups"] for resource in rule["resources"]
               for verb in rule["verbs"]}
    assert set(RULES.values()) == granted


def test_leader_role_reads_exactly_the_default_leader_leases() -> None:
    """``--leaders`` gets two Leases by name; nothing may renew a Lease, or the account could hold a leadership."""
    from check_k8s_health.checks.leaders.judge import ROLE
    from check_k8s_health.checks.leaders.read import DEFAULT_LEASES

    role = _named("Role", ROLE)
    assert {role["metadata"]["namespace"]} == {namespace for namespace, _ in DEFAULT_LEASES}
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "resourceNames": [name for _, name in DEFAULT_LEASES], "verbs": ["get"]}]
    binding = _named("RoleBinding", ROLE)
    account = _one("ServiceAccount")
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]


def test_no_role_may_write_a_lease_but_the_probes_own() -> None:
    """A monitoring account that could renew kube-scheduler's Lease could hold its leadership: the one Lease it
    may write is its own, by name, and only with patch (never update, create or delete)."""
    from check_k8s_health.checks.writes.judge import ROLE
    from check_k8s_health.checks.writes.read import PROBE_LEASE

    writes = [(doc["metadata"].get("namespace"), doc["metadata"]["name"], rule) for doc in DOCS
              if doc["kind"] in ("Role", "ClusterRole") for rule in doc["rules"]
              if {"leases", "*"} & set(rule.get("resources", ())) and set(rule["verbs"]) - {"get", "list", "watch"}]
    namespace, name = PROBE_LEASE
    assert writes == [(namespace, ROLE, {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                         "resourceNames": [name], "verbs": ["get", "patch"]})]
    assert not any("*" in rule.get(field, ()) for doc in DOCS if doc["kind"] in ("Role", "ClusterRole")
                   for rule in doc["rules"] for field in ("apiGroups", "resources", "verbs"))


def test_the_probe_lease_is_shipped_and_its_role_bound_to_the_account() -> None:
    from check_k8s_health.checks.writes.judge import ROLE
    from check_k8s_health.checks.writes.read import HOLDER, PROBE_LEASE

    namespace, name = PROBE_LEASE
    lease = _named("Lease", name)
    assert (lease["apiVersion"], lease["metadata"]["namespace"]) == ("coordination.k8s.io/v1", namespace)
    assert lease["spec"]["holderIdentity"] == HOLDER
    assert DOCS.index(_one("Namespace")) < DOCS.index(lease)  # kubectl apply creates the namespace first
    binding = _named("RoleBinding", ROLE)
    account = _one("ServiceAccount")
    assert binding["metadata"]["namespace"] == namespace
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]


def test_metrics_has_its_own_cluster_role() -> None:
    """Only --etcd-quota needs /metrics, which reveals the cluster's shape: apart, so it can be left out."""
    from check_k8s_health.checks.etcdsize.judge import CLUSTER_ROLE

    assert _named("ClusterRole", CLUSTER_ROLE)["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    assert _named("ClusterRoleBinding", CLUSTER_ROLE)["roleRef"]["name"] == CLUSTER_ROLE
    assert not any("/metrics" in rule.get("nonResourceURLs", ()) for doc in DOCS if doc["kind"] == "ClusterRole"
                   and doc["metadata"]["name"] != CLUSTER_ROLE for rule in doc["rules"])
