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
