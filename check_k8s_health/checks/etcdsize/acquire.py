"""Acquisition of etcd's size (``--etcd-quota``): one ``GET /metrics``, scanned as it arrives and left unread once
the size is found.

Asked once per run, through the same server as the other look-ups, concurrently with the health endpoints and
inside the same deadline.
"""

from __future__ import annotations

from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import PluginError
from check_k8s_health.checks.etcdsize.read import MAX_SCAN, EtcdSize, StorageScan
from check_k8s_health.checks.shared.read import Failure
from check_k8s_health.model.settings import Target
from check_k8s_health.transport.client import HealthClient

METRICS = "/metrics"


def measure(via: Target, deadline: Deadline) -> EtcdSize:
    scan = StorageScan()
    ask = deadline.inner()  # (see checks.endpoints.acquire: the request ends a step before the wait for it)
    with HealthClient(via, ask) as client:
        answer = client.get(METRICS, budget=ask, describe=f"{METRICS} of {via.name}", max_body=MAX_SCAN,
                            scan=scan.feed)
    if answer.status != 200:
        return EtcdSize(via, Failure(METRICS, via, answer))
    if answer.truncated:
        return EtcdSize(via, Failure(METRICS, via, answer, why=f"its first {MAX_SCAN // (1024 * 1024)} MiB hold no "
                                                            "storage size"))
    return EtcdSize(via, scan.finish())


def unanswered(via: Target, error: PluginError) -> EtcdSize:
    return EtcdSize(via, Failure(METRICS, via, error=error))
