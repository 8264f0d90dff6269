"""What ``/readyz`` cannot see, read into plain data (pure: text in, values out): the admission webhooks and
their backends, and the aggregated APIs (SPEC section 6b).

A 200 from every health endpoint says the API server itself is fine. Measured on a real v1.28 server, a
``failurePolicy: Fail`` webhook whose service is gone refused every write it matched, and an APIService whose
service is missing answered 503 for its whole group, while ``/readyz`` listed 33 of 33 sub-checks passed. These
objects are the server's text: anything not shaped as expected is reported (``ValueError`` with a sentence),
never trusted, and every name is made safe for a plugin line before it is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, Union

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.shared.read import Failure, json_object
from check_k8s_health.model.settings import Target

VALIDATING = "ValidatingWebhookConfigurations"
MUTATING = "MutatingWebhookConfigurations"
APISERVICES = "APIServices"
SLICES = "EndpointSlices"
SERVICES = "Services"
#: Names and texts from the server are kept this long: enough to act on, never a page.
NAME = 120
MESSAGE = 300

#: Distinct services whose backends are looked up in one run; webhooks on further services are not judged.
MAX_SERVICES = 32

Service = tuple[str, str]


class Webhook(NamedTuple):
    configuration: str
    #: ``validating`` or ``mutating``.
    kind: str
    name: str
    #: ``Fail`` or ``Ignore`` as stored; the v1 API stores ``Fail`` where the field was left out.
    failure_policy: str
    #: ``(namespace, name)`` of ``clientConfig.service``; ``None`` for a ``clientConfig.url`` webhook.
    service: Optional[Service]
    url: Optional[str]
    operations: tuple[str, ...]
    #: ``configmaps``, ``deployments.apps``, ``*`` for every resource.
    resources: tuple[str, ...]
    #: How many rules it has: a webhook without rules is never called, so it blocks nothing.
    rules: int
    #: The namespaces it is limited to, as ``key=value``/``key In (a, b)`` text; empty: every namespace.
    namespaces: str = ""

    @property
    def check_name(self) -> str:
        """The name the ``--*-check`` globs match: ``webhook/<configuration>/<webhook>``."""
        return f"webhook/{self.configuration}/{self.name}"


class ApiService(NamedTuple):
    name: str
    #: ``(namespace, name)`` of ``spec.service``; ``None`` for a local APIService, served by the API server.
    service: Optional[Service]
    #: The ``Available`` condition's status (``True``, ``False``, ``Unknown``); ``None`` without one.
    available: Optional[str]
    reason: str = ""
    message: str = ""

    @property
    def check_name(self) -> str:
        return f"apiservice/{self.name}"


class Backend(NamedTuple):
    """What stands behind one service: endpoints from its EndpointSlices, or the Service itself."""

    ready: int
    total: int
    #: ``False``: the Service does not exist; ``True``: it does (or an EndpointSlice of it does); ``None``: not
    #: known yet (no EndpointSlice: the Service is asked next).
    exists: Optional[bool] = None
    #: An ``ExternalName`` Service: its target is resolved by name, no endpoints are expected.
    external: str = ""


def parse_webhooks(text: str, kind: str) -> list[Webhook]:
    """A ``ValidatingWebhookConfigurationList`` (``kind`` ``validating``) or a mutating one."""
    expected = f"{kind.capitalize()}WebhookConfigurationList"
    found: list[Webhook] = []
    for item in _items(text, expected):
        configuration = _name(item)
        hooks = item.get("webhooks")
        if hooks is None:
            continue
        if not isinstance(hooks, list):
            raise ValueError(f"the webhooks of {configuration} are not a list")
        found += [_webhook(configuration, kind, hook) for hook in hooks]
    return found


def parse_apiservices(text: str) -> list[ApiService]:
    found = []
    for item in _items(text, "APIServiceList"):
        spec = item.get("spec")
        status = item.get("status")
        conditions = status.get("conditions") if isinstance(status, dict) else None
        available = next((condition for condition in conditions if isinstance(condition, dict) and
                          condition.get("type") == "Available"), None) if isinstance(conditions, list) else None
        state = available.get("status") if available is not None else None
        found.append(ApiService(
            _name(item), _service(spec.get("service") if isinstance(spec, dict) else None),
            one_line(state, 20) if isinstance(state, str) else None,
            _text(available, "reason", NAME), _text(available, "message", MESSAGE)))
    return found


def parse_slices(text: str) -> Backend:
    """The EndpointSlices of one service: its endpoints, and how many are ready. The API says an unset (or
    null) ``ready`` is to be taken as ready; ``serving`` alone does not make an endpoint ready."""
    ready = total = 0
    items = _items(text, "EndpointSliceList")
    for item in items:
        endpoints = item.get("endpoints")
        if endpoints is None:
            continue
        if not isinstance(endpoints, list):
            raise ValueError("the endpoints of an EndpointSlice are not a list")
        for endpoint in endpoints:
            if not isinstance(endpoint, dict):
                raise ValueError("an endpoint of an EndpointSlice is not an object")
            conditions = endpoint.get("conditions")
            flag = conditions.get("ready") if isinstance(conditions, dict) else None
            total += 1
            ready += flag is None or flag is True
    # A slice is written for a Service that exists; none at all leaves the question to the Service itself.
    return Backend(ready, total, exists=True if items else None)


def parse_service(text: str) -> Backend:
    """The Service itself, asked when it has no EndpointSlices: it exists, with no endpoint behind it."""
    document = json_object(text, "Service")
    spec = document.get("spec")
    kind = spec.get("type") if isinstance(spec, dict) else None
    name = spec.get("externalName") if isinstance(spec, dict) else None
    external = one_line(name, NAME) if kind == "ExternalName" and isinstance(name, str) and name else ""
    return Backend(0, 0, exists=True, external=external)


def _webhook(configuration: str, kind: str, hook: Any) -> Webhook:
    if not isinstance(hook, dict):
        raise ValueError(f"a webhook of {configuration} is not an object")
    client = hook.get("clientConfig")
    client = client if isinstance(client, dict) else {}
    url = client.get("url")
    rules = hook.get("rules")
    rules = rules if isinstance(rules, list) else []
    operations: dict[str, None] = {}
    resources: dict[str, None] = {}
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        operations.update(dict.fromkeys(_strings(rule.get("operations"))))
        groups = _strings(rule.get("apiGroups")) or [""]
        for resource in _strings(rule.get("resources")):
            if resource == "*" or resource.startswith("*/"):
                resources["*"] = None
                continue
            resources.update(dict.fromkeys(resource if group in ("", "*") else f"{resource}.{group}"
                                           for group in groups))
    policy = hook.get("failurePolicy")
    return Webhook(configuration, kind, _text(hook, "name", NAME) or "(unnamed)",
                   one_line(policy, 20) if isinstance(policy, str) and policy else "Fail",
                   _service(client.get("service")), one_line(url, MESSAGE) if isinstance(url, str) else None,
                   tuple(operations), tuple(resources), len(rules), _selector(hook.get("namespaceSelector")))


def _service(value: Any) -> Optional[Service]:
    if not isinstance(value, dict):
        return None
    namespace, name = value.get("namespace"), value.get("name")
    if not (isinstance(namespace, str) and namespace and isinstance(name, str) and name):
        return None
    return one_line(namespace, 63), one_line(name, 63)


def _selector(value: Any) -> str:
    """A label selector as kubectl writes one: ``team=a,env In (prod, staging)``; empty selects everything."""
    if not isinstance(value, dict):
        return ""
    parts = []
    labels = value.get("matchLabels")
    if isinstance(labels, dict):
        parts += [f"{key}={label}" for key, label in labels.items()]
    expressions = value.get("matchExpressions")
    for expression in expressions if isinstance(expressions, list) else ():
        if isinstance(expression, dict):
            values = ", ".join(_strings(expression.get("values")))
            parts.append(f"{expression.get('key')} {expression.get('operator')}{f' ({values})' if values else ''}")
    return one_line(",".join(parts), MESSAGE)


def _strings(value: Any) -> list[str]:
    return [one_line(item, 60) for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _name(item: Mapping[str, Any]) -> str:
    metadata = item.get("metadata")
    return _text(metadata, "name", NAME) or "(unnamed)"


def _text(value: Any, key: str, limit: int) -> str:
    text = value.get(key) if isinstance(value, dict) else None
    return one_line(text, limit) if isinstance(text, str) else ""


def _items(text: str, kind: str) -> list[Mapping[str, Any]]:
    document = json_object(text, kind)
    items = document.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError("its items are not a list")
    if not all(isinstance(item, dict) for item in items):
        raise ValueError("an item is not an object")
    return items


class Survey(NamedTuple):
    """What one run found out beyond the health endpoints; ``None`` for what was not asked."""

    #: The server that was asked.
    via: Target
    webhooks: Optional[tuple[Webhook, ...]] = None
    #: Why the webhook configurations could not be read (the first list that failed).
    webhook_miss: Optional[Failure] = None
    #: The backends of each service asked, in the order the webhooks name them.
    backends: tuple[tuple[Service, Union[Backend, Failure]], ...] = ()
    apiservices: Optional[tuple[ApiService, ...]] = None
    apiservice_miss: Optional[Failure] = None
