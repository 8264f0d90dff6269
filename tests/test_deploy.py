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
    role = _one("ClusterRole")
    assert role["rules"] == [{"nonResourceURLs": ["/livez", "/livez/*", "/readyz", "/readyz/*", "/healthz",
                                                  "/healthz/*"], "verbs": ["get"]}]


def test_binding_secret_and_account_fit_together() -> None:
    account, binding, secret = _one("ServiceAccount"), _one("ClusterRoleBinding"), _one("Secret")
    name, namespace = account["metadata"]["name"], account["metadata"]["namespace"]
    assert _one("Namespace")["metadata"]["name"] == namespace
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": _one("ClusterRole")["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["namespace"] == namespace
    assert secret["metadata"]["annotations"] == {"kubernetes.io/service-account.name": name}
