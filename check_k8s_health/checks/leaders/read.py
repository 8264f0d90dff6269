"""A leader Lease read into plain data (pure: text in, values out): who holds it, and how long ago it was renewed
by the server's clock.

kube-scheduler and kube-controller-manager run with leader election: the leader renews its Lease about every 2 s
(``leaseDurationSeconds: 15``). Stopped gracefully it empties ``holderIdentity``; crashed, or failing at start (a
client certificate that expired a year after ``kubeadm init``), it leaves its name and an old ``renewTime``
(SPEC section 6c, measured). The age is the server's ``Date`` minus ``renewTime``: the monitoring host's clock is
never asked. What the Lease does not say plainly (no ``Date``, a ``renewTime`` that is not a time, a duration
that is not a positive number) is kept as a note for the judging to weigh, never guessed.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.shared.read import Failure, http_date, json_object, micro_time
from check_k8s_health.model.settings import Target

#: What ``--leaders`` judges without ``--leader-lease``: the two loops every control plane runs.
DEFAULT_LEASES = (("kube-system", "kube-scheduler"), ("kube-system", "kube-controller-manager"))
#: Holder names are hosts and UUIDs; anything longer is cut for the output.
HOLDER = 120
#: The server's ``Date`` header counts whole seconds.
DATE_RESOLUTION = 1.0


class LeaderLease(NamedTuple):
    namespace: str
    name: str
    #: ``holderIdentity``, "" when the Lease names none (released on a graceful stop, or never held).
    holder: str = ""
    #: Seconds between ``renewTime`` and the server's ``Date``; None when either is missing or not a time.
    age: Optional[float] = None
    #: ``leaseDurationSeconds`` when it is a positive whole number.
    duration: Optional[int] = None
    #: Why the Lease cannot be judged as a live holder's: a missing ``Date``, a ``renewTime`` that is not a time, a
    #: duration that is not one. Empty when everything needed was there.
    unreadable: str = ""
    #: Said in the long output, not judged: ``renewTime`` after the server's time (clocks differ).
    note: str = ""

    @property
    def policy_name(self) -> str:
        return lease_name(self.namespace, self.name)

    @property
    def led(self) -> bool:
        """A holder renewed within its duration, by the server's clock."""
        return bool(self.holder) and not self.unreadable and self.age is not None and self.duration is not None \
            and self.age <= self.duration


class Leaders(NamedTuple):
    """The leader Leases of one run, in the order asked, each read or kept as the ``Failure`` of its look-up."""

    via: Target
    leases: tuple[tuple[tuple[str, str], Union[LeaderLease, Failure]], ...] = ()


def lease_name(namespace: str, name: str) -> str:
    """The name the policy globs match: ``lease/kube-system/kube-scheduler``."""
    return f"lease/{namespace}/{name}"


def what(namespace: str, name: str) -> str:
    """How messages name the object asked for."""
    return f"Lease {namespace}/{name}"


def parse_lease(text: str, date: Optional[str], namespace: str, name: str) -> LeaderLease:
    """``ValueError`` only for what is not a Lease at all; a Lease with odd fields is read as far as it goes."""
    document = json_object(text, "Lease")
    spec = document.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ValueError("its spec is not an object")
    holder = spec.get("holderIdentity")
    holder = one_line(holder, HOLDER) if isinstance(holder, str) else ""
    duration = _duration(spec.get("leaseDurationSeconds"))
    renewed_text = spec.get("renewTime")
    renewed = micro_time(renewed_text) if isinstance(renewed_text, str) else None
    now = http_date(date)
    unreadable = ""
    if not holder:
        pass  # no holder: no leader, whatever the times say
    elif renewed_text is None:
        unreadable = "it names a holder but no renewTime"
    elif renewed is None:
        unreadable = f"its renewTime {one_line(str(renewed_text), 40)!r} is not a time"
    elif now is None:
        unreadable = ("the server sent no usable Date header: a Lease's age is judged by the server's clock, "
                      "never this host's")
    elif duration is None:
        unreadable = f"its leaseDurationSeconds {one_line(str(spec.get('leaseDurationSeconds')), 20)} is not a " \
                     "positive number of seconds"
    age = None if renewed is None or now is None else now - renewed
    note = ""
    if age is not None and age < 0:
        # Date has whole seconds, renewTime microseconds: a renewal in the Date's own second is no clock skew.
        if age < -DATE_RESOLUTION:
            note = f"its renewTime lies {-age:.0f} s after the server's time: the holder's clock differs"
        age = 0.0
    return LeaderLease(namespace, name, holder, age, duration, unreadable, note)


def _duration(value: Any) -> Optional[int]:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return int(value)
