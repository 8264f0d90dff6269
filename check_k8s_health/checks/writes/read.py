"""The answer to the write probe read into plain data (pure): written, with the time it took, or the ``Failure``
that says why not.

A write is the one thing ``/readyz`` never tries: its etcd check is a read, and reads pass while etcd refuses every
write (``alarm:NOSPACE``, SPEC section 6c, measured). The plugin renews a Lease of its own; ``deploy/rbac.yaml``
ships it, and the plugin never creates it, so a monitoring account writes exactly one object.
"""

from __future__ import annotations

from typing import Union

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.checks.shared.read import Failure, json_object
from check_k8s_health.model.settings import Target

#: The Lease ``deploy/rbac.yaml`` ships and ``--write-probe`` renews unless ``--write-lease`` names another.
PROBE_LEASE = ("monitoring", "check-k8s-health")
#: What the Lease names as its holder: the plugin, as the recorded probe Lease does.
HOLDER = "check_k8s_health"
#: etcd's words for a database over its quota, in the ``Status`` the API server passes on.
OUT_OF_SPACE = "database space exceeded"


class Written(NamedTuple):
    #: The ``renewTime`` the server holds after the write: the one sent, unless something changed it.
    renewed: str = ""


class WriteProbe(NamedTuple):
    via: Target
    lease: tuple[str, str]
    result: Union[Written, Failure]
    #: Seconds from sending the write to the end of its answer; None when no answer came.
    elapsed: Union[float, None] = None


def probe_name(namespace: str, name: str) -> str:
    """The name the policy globs match: ``write/monitoring/check-k8s-health``."""
    return f"write/{namespace}/{name}"


def what(namespace: str, name: str) -> str:
    return f"write to the Lease {namespace}/{name}"


def parse_written(text: str) -> Written:
    """``ValueError`` for an answer that is not a Lease: a 200 from something that is not the API server."""
    spec = json_object(text, "Lease").get("spec")
    renewed = spec.get("renewTime") if isinstance(spec, dict) else None
    return Written(renewed if isinstance(renewed, str) else "")


def out_of_space(failure: Failure) -> bool:
    """etcd refused the write for its quota: the API server answers 500 with etcd's own words."""
    answer = failure.answer
    return answer is not None and answer.status >= 500 and OUT_OF_SPACE in answer.body
