"""Acquisition of the write probe (``--write-probe``): one JSON merge patch of the plugin's own Lease.

Asked once per run, through the same server as the other look-ups, concurrently with the health endpoints and
inside the same deadline. The patch sets ``renewTime`` to this moment with microseconds: a patch that changed
nothing would be answered without a write to etcd, and would prove nothing. Never retried: one write per run.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote

from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import PluginError
from check_k8s_health.checks.shared.read import Failure, parsed
from check_k8s_health.checks.writes.read import HOLDER, WriteProbe, parse_written, what
from check_k8s_health.model.settings import Target
from check_k8s_health.transport.client import HealthClient

LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
MERGE_PATCH = "application/merge-patch+json"


def write(lease: tuple[str, str], via: Target, deadline: Deadline) -> WriteProbe:
    namespace, name = lease
    path = LEASE_PATH.format(namespace=quote(namespace, safe=""), name=quote(name, safe=""))
    ask = deadline.inner()  # (see checks.endpoints.acquire: the request ends a step before the wait for it)
    with HealthClient(via, ask) as client:
        answer = client.patch(path, patch_document(time.time_ns()), MERGE_PATCH, budget=ask,
                              describe=f"the {what(namespace, name)} on {via.name}")
    result = parsed(answer, what(namespace, name), via, parse_written)
    return WriteProbe(via, lease, result, answer.elapsed)


def unanswered(lease: tuple[str, str], via: Target, error: PluginError) -> WriteProbe:
    """A write that got no answer in time, or none at all (the engine hands over the error)."""
    return WriteProbe(via, lease, Failure(what(*lease), via, error=error))


def patch_document(now_ns: int) -> bytes:
    """``spec.renewTime`` in Kubernetes' MicroTime, and the holder; nothing else of the Lease is touched. From
    nanoseconds: a float of today's epoch holds a microsecond only to within a quarter of one, so two moments a
    microsecond apart could give the same renewTime."""
    seconds, nanoseconds = divmod(now_ns, 1_000_000_000)
    moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanoseconds // 1000:06d}Z"
    return json.dumps({"spec": {"holderIdentity": HOLDER, "renewTime": moment}}, separators=(",", ":")).encode()
