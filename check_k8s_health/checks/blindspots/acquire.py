"""Acquisition of what ``/readyz`` cannot see (``--webhooks``, ``--aggregated-apis``): the webhook
configurations and the APIServices, then the backends of every service a webhook calls.

Asked once per run, through one server (the first named, or with ``--members`` the one the member list came
from), concurrently with the health endpoints and inside the same deadline. The lists come first, all at once;
then the EndpointSlices of each distinct service (at most ``MAX_SERVICES``, ``WIDTH`` at a time), and the Service
itself only where no EndpointSlice was found, to tell "not found" from "no endpoints". Nothing here judges: a
look-up that fails is kept as a ``Failure`` for ``judge`` to weigh.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar, Union
from urllib.parse import quote

from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import PluginError
from check_k8s_health.checks.blindspots.read import (
    APISERVICES,
    MAX_SERVICES,
    MUTATING,
    SERVICES,
    SLICES,
    VALIDATING,
    ApiService,
    Backend,
    Service,
    Survey,
    Webhook,
    parse_apiservices,
    parse_service,
    parse_slices,
    parse_webhooks,
)
from check_k8s_health.checks.shared.read import Failure, parsed
from check_k8s_health.model.settings import Settings, Target
from check_k8s_health.transport.client import HealthClient
from check_k8s_health.transport.parallel import in_parallel

ADMISSION = "/apis/admissionregistration.k8s.io/v1"
PATHS = {VALIDATING: f"{ADMISSION}/validatingwebhookconfigurations",
         MUTATING: f"{ADMISSION}/mutatingwebhookconfigurations",
         APISERVICES: "/apis/apiregistration.k8s.io/v1/apiservices"}
#: Look-ups in flight at once: one connection each, and the server keeps serving its other clients.
WIDTH = 8
#: A cluster with thousands of webhooks or APIServices still fits; anything larger is not a list of them.
MAX_LIST = 16 * 1024 * 1024

T = TypeVar("T")
Parsed = Union[T, Failure]


def survey(settings: Settings, via: Target, deadline: Deadline) -> Survey:
    wait = deadline.inner()
    ask = wait.inner()  # (see checks.endpoints.acquire: each request ends a step before the wait for it)
    found = Survey(via)
    with HealthClient(via, ask) as client:
        jobs: list[Callable[[], object]] = []
        if settings.webhooks:
            jobs += [partial(_webhooks, client, via, what, ask) for what in (VALIDATING, MUTATING)]
        if settings.aggregated_apis:
            jobs.append(lambda: _apiservices(client, via, ask))
        results = iter(in_parallel(jobs, wait))
        if settings.webhooks:
            lists: list[Parsed[list[Webhook]]] = [_settled(next(results), what, via) for what in (VALIDATING, MUTATING)]
        if settings.aggregated_apis:
            apiservices: Parsed[list[ApiService]] = _settled(next(results), APISERVICES, via)
            if isinstance(apiservices, list):
                found = found._replace(apiservices=tuple(apiservices))
            else:
                found = found._replace(apiservice_miss=apiservices)
        if not settings.webhooks:
            return found
        webhooks: list[Webhook] = []
        for result in lists:
            if not isinstance(result, list):
                return found._replace(webhook_miss=result)
            webhooks += result
        services = list(dict.fromkeys(hook.service for hook in webhooks if hook.service is not None and hook.rules))
        wanted = services[:MAX_SERVICES]
        backends = in_batches([partial(_backend, client, via, service, ask) for service in wanted], wait)
        settled: tuple[tuple[Service, Parsed[Backend]], ...] = tuple(
            (service, _settled(backend, SLICES, via)) for service, backend in zip(wanted, backends))
        return found._replace(webhooks=tuple(webhooks), backends=settled)


def unanswered(via: Target, error: PluginError) -> Survey:
    """A survey that did not finish in time: every list it was to read went without an answer."""
    return Survey(via, webhook_miss=Failure(VALIDATING, via, error=error), apiservice_miss=Failure(APISERVICES, via,
                                                                                            error=error))


def in_batches(jobs: Sequence[Callable[[], T]], budget: Deadline) -> list[Union[T, PluginError]]:
    """``in_parallel``, ``WIDTH`` jobs at a time: a cluster with dozens of webhook services gets a few
    connections from the plugin, not dozens at once."""
    results: list[Union[T, PluginError]] = []
    for start in range(0, len(jobs), WIDTH):
        results += in_parallel(jobs[start:start + WIDTH], budget)
    return results


def _settled(result: object, what: str, via: Target) -> Any:
    """A job's result, or the ``Failure`` of a job that raised or did not finish in time."""
    return Failure(what, via, error=result) if isinstance(result, PluginError) else result


def _webhooks(client: HealthClient, via: Target, what: str, budget: Deadline) -> Parsed[list[Webhook]]:
    answer = client.get(PATHS[what], budget=budget, describe=f"the {what} from {via.name}", max_body=MAX_LIST)
    kind = "validating" if what == VALIDATING else "mutating"
    return parsed(answer, what, via, lambda text: parse_webhooks(text, kind), MAX_LIST)


def _apiservices(client: HealthClient, via: Target, budget: Deadline) -> Parsed[list[ApiService]]:
    answer = client.get(PATHS[APISERVICES], budget=budget, describe=f"the {APISERVICES} from {via.name}",
                        max_body=MAX_LIST)
    return parsed(answer, APISERVICES, via, parse_apiservices, MAX_LIST)


def _backend(client: HealthClient, via: Target, service: Service, budget: Deadline) -> Parsed[Backend]:
    """The EndpointSlices labelled with the service's name; the Service itself when there are none."""
    namespace, name = (quote(part, safe="") for part in service)
    shown = f"{service[0]}/{service[1]}"
    answer = client.get(f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
                        (("labelSelector", f"kubernetes.io/service-name={service[1]}"),), budget=budget,
                        describe=f"the {SLICES} of service {shown} from {via.name}")
    slices = parsed(answer, SLICES, via, parse_slices)
    if isinstance(slices, Failure) or slices.exists:
        return slices
    answer = client.get(f"/api/v1/namespaces/{namespace}/services/{name}", budget=budget,
                        describe=f"the service {shown} from {via.name}")
    if answer.status == 404:
        return Backend(0, 0, exists=False)
    return parsed(answer, SERVICES, via, parse_service)
