"""Leader Leases for the ``--leaders`` tests, rebuilt from the ones recorded on a real control plane
(``fixtures/captures/leaders``).

A Lease is judged by the server's clock (its ``Date`` header) against its ``renewTime``; the recordings carry both,
minutes apart from today. Each reply here keeps the recorded age (the recorded ``Date`` minus the recorded
``renewTime``: 1 s for a healthy leader, 31 s for a stopped scheduler, 33 s for a controller manager that cannot
start) and moves both to now, or sets another age, or another server clock, where a test needs it.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import json
from collections.abc import Mapping
from typing import Any, Optional

from fakeapi import Reply, healthy_routes, load_capture

LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
SCHEDULER = LEASE_PATH.format(namespace="kube-system", name="kube-scheduler")
CONTROLLER_MANAGER = LEASE_PATH.format(namespace="kube-system", name="kube-controller-manager")
HEALTHY = {"kube-scheduler": "leaders/lease_kube-scheduler_healthy.txt",
           "kube-controller-manager": "leaders/lease_kube-controller-manager_healthy.txt"}
SCHEDULER_STOPPED = "leaders/lease_kube-scheduler_holder_stopped_30s.txt"
CONTROLLER_MANAGER_CRASHING = "leaders/lease_kube-controller-manager_expired_client_cert_30s.txt"
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def recorded(relpath: str) -> tuple[dict[str, Any], float]:
    """The recorded Lease and its recorded age in seconds (``Date`` minus ``renewTime``)."""
    capture = load_capture(relpath)
    document = json.loads(capture.body)
    date = email.utils.parsedate_to_datetime(capture.header("date") or "")
    renewed = datetime.datetime.strptime(document["spec"]["renewTime"], _FORMAT).replace(tzinfo=datetime.timezone.utc)
    return document, (date - renewed).total_seconds()


def lease_reply(relpath: str, age: Optional[float] = None, spec: Optional[Mapping[str, Any]] = None,
                server_clock_offset: float = 0.0, date: Optional[str] = "now") -> Reply:
    """The recorded Lease renewed ``age`` seconds (default: as recorded) before the server's clock, which runs
    ``server_clock_offset`` seconds ahead of this machine's; ``spec`` replaces fields of its spec (``None``
    values remove them); ``date`` is the ``Date`` header to send instead of the server's clock (``None``: none)."""
    document, recorded_age = recorded(relpath)
    now = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=server_clock_offset)
           ).replace(microsecond=0)
    renewed = now - datetime.timedelta(seconds=recorded_age if age is None else age)
    document["spec"]["renewTime"] = renewed.strftime(_FORMAT)
    for key, value in (spec or {}).items():
        if value is None:
            document["spec"].pop(key, None)
        else:
            document["spec"][key] = value
    return raw_reply(relpath, json.dumps(document, separators=(",", ":")) + "\n",
                     email.utils.format_datetime(now, usegmt=True) if date == "now" else date)


def raw_reply(relpath: str, body: str, date: Optional[str]) -> Reply:
    """A body in place of the recorded one, with that ``Date``; ``None``: no ``Date`` at all, which the fake adds
    to every reply it builds, so that answer is written verbatim."""
    captured = Reply.from_capture(relpath)
    headers = tuple(header for header in captured.headers if header[0].lower() != "date")
    if date is not None:
        return dataclasses.replace(captured, body=body.encode(), headers=(*headers, ("Date", date)))
    data = body.encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in headers if name.lower() != "content-length")
    return Reply(captured.status, raw=(f"HTTP/1.1 {captured.status} OK\r\n{head}Content-Length: {len(data)}\r\n"
                                       "Connection: close\r\n\r\n").encode() + data)


def leader_routes(scheduler: Optional[Reply] = None, controller_manager: Optional[Reply] = None,
                  **more: Reply) -> dict[str, Reply]:
    """A healthy API server whose two leaders renew as recorded, unless a reply says otherwise; ``more`` adds
    routes (paths) of other Leases."""
    routes = dict(healthy_routes())
    routes[SCHEDULER] = scheduler or lease_reply(HEALTHY["kube-scheduler"])
    routes[CONTROLLER_MANAGER] = controller_manager or lease_reply(HEALTHY["kube-controller-manager"])
    routes.update(more)
    return routes


# --write-probe: the plugin's own Lease, renewed with a JSON merge patch (captures of a real v1.28 server, before,
# during and after etcd's NOSPACE alarm).
PROBE = LEASE_PATH.format(namespace="monitoring", name="check-k8s-health")
PROBE_WRITTEN = "leaders/lease_probe_patch_200.txt"
PROBE_NOSPACE = "leaders/lease_probe_patch_nospace.txt"
PROBE_NOSPACE_AFTER_DEFRAG = "leaders/lease_probe_patch_nospace_after_defrag.txt"
PROBE_FORBIDDEN = "leaders/lease_probe_patch_forbidden_monitor.txt"
#: --etcd-quota: the storage lines of a real v1.28 /metrics, healthy and after a defragmentation (alarm armed).
METRICS_HEALTHY = "leaders/metrics_storage_lines_healthy.txt"
METRICS_AFTER_DEFRAG = "leaders/metrics_storage_lines_after_defrag_alarm_armed.txt"
#: The size of a real kube-apiserver's /metrics, idle (v1.28, measured: 1.6 MB, 12,084 lines) and where its storage
#: lines sit (near line 6,600).
REAL_METRICS_SIZE = 1_600_000
STORAGE_AT = 0.55


def storage_lines(relpath: str = METRICS_HEALTHY) -> bytes:
    """The recorded storage lines of /metrics (the recording holds only them, no HTTP head)."""
    from fakeapi import CAPTURES_DIR

    return (CAPTURES_DIR / relpath).read_bytes()


def filler(size: int, prefix: str) -> bytes:
    """Prometheus text of about ``size`` bytes, shaped like a real /metrics: a histogram's bucket lines, one
    family (``prefix``) with many label sets, names sorted as the API server writes them."""
    lines = [f"# HELP {prefix}_seconds [STABLE] Response latency distribution in seconds.\n",
             f"# TYPE {prefix}_seconds histogram\n"]
    total, index = sum(map(len, lines)), 0
    while total < size:
        line = (f'{prefix}_seconds_bucket{{component="apiserver",dry_run="",group="",resource="pods",'
                f'scope="resource",subresource="",verb="GET",version="v1",le="{index % 40 * 0.05:.2f}"}} '
                f"{index * 7}\n")
        lines.append(line)
        total += len(line)
        index += 1
    return "".join(lines).encode()


def metrics_body(storage: bytes = b"", size: int = REAL_METRICS_SIZE, before: float = STORAGE_AT) -> bytes:
    """A /metrics of about ``size`` bytes with ``storage`` (default: the recorded healthy lines) at ``before`` of
    its length, where the API server's alphabetical order puts ``apiserver_storage_*`` (after the large
    ``apiserver_request_*`` families, before ``etcd_*``, ``go_*``, ``rest_client_*`` and ``workqueue_*``)."""
    storage = storage or storage_lines()
    head = filler(int(size * before), "apiserver_request_duration")
    tail = filler(max(size - len(head) - len(storage), 0), "workqueue_queue_duration")
    return head + storage + tail


def metrics_reply(body: bytes) -> Reply:
    """/metrics as the API server sends it: Prometheus text format 0.0.4."""
    return Reply(200, body, headers=(("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),))


def probe_reply(relpath: str = PROBE_WRITTEN, delay: float = 0.0) -> Reply:
    return dataclasses.replace(Reply.from_capture(relpath), delay=delay)


def control_plane_routes(probe: Optional[Reply] = None, metrics: Optional[Reply] = None,
                         scheduler: Optional[Reply] = None, controller_manager: Optional[Reply] = None
                         ) -> dict[str, Reply]:
    """A healthy API server with both leaders, the probe Lease that takes writes, and a /metrics of real size."""
    routes = leader_routes(scheduler, controller_manager)
    routes[PROBE] = probe or probe_reply()
    routes["/metrics"] = metrics or metrics_reply(metrics_body())
    return routes


def outage_routes() -> dict[str, Reply]:
    """The recorded outage of etcd out of space, as the consumers see it: every write refused, both leaders gone
    (the scheduler stopped, the controller manager unable to start), the database at 97 % of a 2 GiB quota."""
    full = metrics_reply(metrics_body(b'apiserver_storage_size_bytes{cluster="etcd-0"} 2.08e+09\n'))
    return control_plane_routes(probe_reply(PROBE_NOSPACE), full, lease_reply(SCHEDULER_STOPPED),
                                lease_reply(CONTROLLER_MANAGER_CRASHING))
