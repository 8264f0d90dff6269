"""Routes for ``--webhooks`` and ``--aggregated-apis``: what a real v1.28 API server answered while an admission
webhook's service was gone and three aggregated APIs were down (``fixtures/captures/blind``), replayed by the fake
server beside the health endpoints that stayed ``ok`` all along.

The objects name addresses of the recorded cluster (ClusterIPs, an endpoint, a webhook URL): the plugin must
never dial any of them, and the tests that care rewrite the one loopback URL to a server that counts requests.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fakeapi import Reply, healthy_routes, load_capture

ADMISSION = "/apis/admissionregistration.k8s.io/v1"
VALIDATING_PATH = f"{ADMISSION}/validatingwebhookconfigurations"
MUTATING_PATH = f"{ADMISSION}/mutatingwebhookconfigurations"
APISERVICES_PATH = "/apis/apiregistration.k8s.io/v1/apiservices"
LIST_PATHS = (VALIDATING_PATH, MUTATING_PATH, APISERVICES_PATH)
GUARD_LINE = ("webhook guard.example.com blocks CREATE, UPDATE configmaps: service kube-system/guard not found")
#: Both recorded webhooks without a ready backend, named in one phrase (SPEC 6c: several of one kind).
BLOCKED_LINE = ("2 webhooks block writes: guard.example.com (CREATE, UPDATE configmaps), inject.example.com (CREATE "
                "pods, services)")
#: The three recorded unavailable APIServices, as many as fit beside the health words.
UNAVAILABLE_LINE = ("3 aggregated APIs unavailable: v1alpha1.wardle.example.com (FailedDiscoveryCheck), "
                    "v1beta1.custom.metrics.k8s.io (EndpointsNotFound) and 1 more")
METRICS_LINE = ('v1beta1.metrics.k8s.io unavailable: ServiceNotFound: service/metrics-server in "kube-system" is not '
                'present')


def slices_key(namespace: str, name: str) -> str:
    """The route the plugin's EndpointSlice look-up for one service hits: path and decoded query."""
    return f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices?labelSelector=kubernetes.io/" \
           f"service-name={name}"


def service_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/services/{name}"


def captured(relpath: str) -> dict[str, Any]:
    document = json.loads(load_capture(f"blind/{relpath}").body)
    assert isinstance(document, dict)
    return document


def json_reply(document: Mapping[str, Any], like: str = "blind/validatingwebhookconfigurations_none.txt",
               status: int = 200) -> Reply:
    """A JSON body with the headers of a recorded answer, compact as the server sends it to non-curl clients."""
    body = (json.dumps(document, separators=(",", ":")) + "\n").encode()
    return dataclasses.replace(Reply.from_capture(like), status=status, body=body)


def mutating_none() -> Reply:
    """No mutating configuration was recorded empty: the recorded empty validating list, renamed."""
    document = captured("validatingwebhookconfigurations_none.txt")
    document["kind"] = "MutatingWebhookConfigurationList"
    return json_reply(document)


def healthy_blind_routes() -> dict[str, Reply]:
    """A healthy cluster: no webhooks, only the built-in (local) APIServices."""
    return {**healthy_routes(),
            VALIDATING_PATH: Reply.from_capture("blind/validatingwebhookconfigurations_none.txt"),
            MUTATING_PATH: mutating_none(),
            APISERVICES_PATH: Reply.from_capture("blind/apiservices_all_available.txt")}


def broken_webhook_routes() -> dict[str, Reply]:
    """The recorded webhooks: ``guard.example.com`` (Fail) on a missing Service, ``url.example.com`` (Ignore,
    by URL), and the mutating ``inject.example.com`` (no failurePolicy written: Fail) whose Service has only an
    endpoint that is not ready."""
    return {**healthy_blind_routes(),
            "/readyz": Reply.from_capture("blind/readyz_verbose_while_webhooks_unserved.txt"),
            VALIDATING_PATH: Reply.from_capture("blind/validatingwebhookconfigurations_2.txt"),
            MUTATING_PATH: Reply.from_capture("blind/mutatingwebhookconfigurations_1_default_failurepolicy.txt"),
            slices_key("kube-system", "guard"): Reply.from_capture("blind/endpointslices_guard_none.txt"),
            service_path("kube-system", "guard"): Reply.from_capture("blind/service_guard_not_found.txt"),
            slices_key("kube-system", "injector"): Reply.from_capture("blind/endpointslices_injector_not_ready.txt"),
            service_path("kube-system", "injector"): Reply.from_capture("blind/service_injector.txt")}


def unavailable_apiservice_routes() -> dict[str, Reply]:
    return {**healthy_blind_routes(),
            "/readyz": Reply.from_capture("blind/readyz_verbose_while_apiservices_unavailable.txt"),
            APISERVICES_PATH: Reply.from_capture("blind/apiservices_3_unavailable.txt")}


def webhook_list(hooks: Sequence[Mapping[str, Any]], configuration: str = "policy-guard",
                 kind: str = "ValidatingWebhookConfigurationList") -> dict[str, Any]:
    """The recorded validating list with one configuration holding ``hooks``."""
    document = captured("validatingwebhookconfigurations_2.txt")
    document["kind"] = kind
    item = document["items"][0]
    item["metadata"] = {"name": configuration}
    item["webhooks"] = list(hooks)
    return document


def webhook(name: str, service: str = "kube-system/guard", failure_policy: str = "Fail",
            rules: Iterable[Mapping[str, Any]] = ({"operations": ["CREATE"], "apiGroups": [""],
                                                   "apiVersions": ["v1"], "resources": ["configmaps"]},),
            **extra: Any) -> dict[str, Any]:
    """A webhook shaped as the recorded ``guard.example.com``, calling ``service`` (namespace/name)."""
    namespace, _, service_name = service.partition("/")
    hook = {**captured("validatingwebhookconfigurations_2.txt")["items"][0]["webhooks"][0], "name": name,
            "failurePolicy": failure_policy, "rules": list(rules),
            "clientConfig": {"service": {"namespace": namespace, "name": service_name, "port": 443}}}
    hook.update(extra)
    return hook


def apiservice_list(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    document = captured("apiservices_3_unavailable.txt")
    document["items"] = list(items)
    return document


def apiservice(name: str, status: Any = None, service: Any = None) -> dict[str, Any]:
    """The recorded ``v1beta1.metrics.k8s.io`` renamed, with ``status`` (``None``: as recorded, unavailable)."""
    item: dict[str, Any] = json.loads(json.dumps(captured("apiservice_metrics_service_not_found.txt")))
    item.pop("kind")
    item.pop("apiVersion")
    item["metadata"] = {"name": name}
    if status is not None:
        item["status"] = status
    if service is not None:
        item["spec"]["service"] = service
    return item


def slice_list(endpoints: Sequence[Mapping[str, Any]], address_type: str = "IPv4") -> dict[str, Any]:
    """The recorded injector EndpointSlice list with ``endpoints`` in its one slice."""
    document = captured("endpointslices_injector_not_ready.txt")
    document["items"][0]["endpoints"] = list(endpoints)
    document["items"][0]["addressType"] = address_type
    return document
