"""Acquisition of the leader Leases (``--leaders``, ``--leader-lease``): one ``GET`` each, all at once.

Asked once per run, through one server (the first named, or with ``--members`` the one the member list came
from), concurrently with the health endpoints and inside the same deadline. Nothing here judges: a look-up that
fails is kept as a ``Failure`` for ``judge`` to weigh.
"""

from __future__ import annotations

from functools import partial
from typing import Union
from urllib.parse import quote

from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import PluginError
from check_k8s_health.checks.leaders.read import LeaderLease, Leaders, parse_lease, what
from check_k8s_health.checks.shared.read import Failure, parsed
from check_k8s_health.model.settings import Settings, Target
from check_k8s_health.transport.client import HealthClient
from check_k8s_health.transport.parallel import in_parallel

LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"


def look_up(settings: Settings, via: Target, deadline: Deadline) -> Leaders:
    wait = deadline.inner()
    ask = wait.inner()  # (see checks.endpoints.acquire: each request ends a step before the wait for it)
    with HealthClient(via, ask) as client:
        jobs = [partial(_lease, client, via, namespace, name, ask) for namespace, name in settings.leaders]
        results = in_parallel(jobs, wait)
    return Leaders(via, tuple((lease, result if not isinstance(result, PluginError)
                               else Failure(what(*lease), via, error=result))
                              for lease, result in zip(settings.leaders, results)))


def unanswered(settings: Settings, via: Target, error: PluginError) -> Leaders:
    """Look-ups that did not finish in time: every Lease went without an answer."""
    return Leaders(via, tuple((lease, Failure(what(*lease), via, error=error)) for lease in settings.leaders))


def _lease(client: HealthClient, via: Target, namespace: str, name: str,
           budget: Deadline) -> Union[LeaderLease, Failure]:
    path = LEASE_PATH.format(namespace=quote(namespace, safe=""), name=quote(name, safe=""))
    answer = client.get(path, budget=budget, describe=f"the {what(namespace, name)} from {via.name}")
    return parsed(answer, what(namespace, name), via, lambda text: parse_lease(text, answer.date, namespace, name))
