"""Acquisition for a whole run: every check it asks for, every server concurrently, inside the one deadline.

Each server's endpoints are asked by ``checks.endpoints.acquire``. With ``--members`` the member list is looked
up first (``checks.members.acquire``), and the members are then checked like servers named with ``-s``.
``--webhooks`` and ``--aggregated-apis`` (``checks.blindspots``), ``--leaders``, ``--write-probe`` and
``--etcd-quota`` are asked once each, beside the servers' endpoints, not after them. A check that only some runs
ask for is imported only by those runs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Optional, cast

from check_k8s_health.access.tlsfiles import check_tls_files
from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import LATE, PluginError, TransportError
from check_k8s_health.base.record import NamedTuple
from check_k8s_health.checks.endpoints.acquire import collect_server
from check_k8s_health.checks.endpoints.read import Outcome, ServerReport
from check_k8s_health.model.settings import Settings, Target
from check_k8s_health.transport.parallel import in_parallel

if TYPE_CHECKING:
    from check_k8s_health.checks.blindspots.read import Survey
    from check_k8s_health.checks.etcdsize.read import EtcdSize
    from check_k8s_health.checks.leaders.read import Leaders
    from check_k8s_health.checks.members.read import Roster
    from check_k8s_health.checks.writes.read import WriteProbe


class Acquired(NamedTuple):
    """Everything one run found out: the servers' reports, with ``--members`` the member list they were found
    in, with ``--webhooks`` or ``--aggregated-apis`` what the health endpoints cannot see, with ``--leaders`` the
    leader Leases, with ``--write-probe`` the write, with ``--etcd-quota`` etcd's size."""

    reports: tuple[ServerReport, ...]
    roster: Optional[Roster] = None
    survey: Optional[Survey] = None
    leaders: Optional[Leaders] = None
    write: Optional[WriteProbe] = None
    etcd: Optional[EtcdSize] = None
    #: Seconds this process waited for a CPU, measured when an answer was late (see ``starvation``).
    cpu_wait: Optional[float] = None


#: A look-up asked once per run: its field of ``Acquired``, how to ask it, and what stands for it without an answer.
Lookup = tuple[str, Callable[[Deadline], object], Callable[[PluginError], object]]


def acquire(settings: Settings, deadline: Deadline) -> Acquired:
    roster = None
    targets = settings.targets
    if settings.members:
        from check_k8s_health.checks.members.acquire import look_up

        roster = look_up(settings, deadline)
        targets = roster.targets or targets
    if not settings.lookups:
        collected = collect(settings, targets, deadline)
        return Acquired(collected, roster, cpu_wait=_cpu_wait(collected))
    # Asked once, through the server the member list came from, else the first one named, beside the endpoints.
    via = roster.via if roster is not None and roster.via is not None else settings.target
    lookups = _lookups(settings, via)
    jobs: list[Callable[[], object]] = [lambda: collect(settings, targets, deadline.inner())]
    jobs += [partial(_ask, ask, deadline) for _, ask, _ in lookups]
    results = in_parallel(jobs, deadline)
    reports = results[0]
    if isinstance(reports, TransportError):  # not finished in time: every endpoint of every server is late
        reports = tuple(_unanswered(settings, target, reports) for target in targets)
    elif isinstance(reports, PluginError):
        raise reports  # a configuration error found after the requests failed (see collect)
    done = cast("tuple[ServerReport, ...]", reports)
    found: dict[str, Any] = {field: unanswered(result) if isinstance(result, PluginError) else result
                             for (field, _, unanswered), result in zip(lookups, results[1:])}
    return Acquired(done, roster, cpu_wait=_cpu_wait(done))._replace(**found)


def _ask(ask: Callable[[Deadline], object], deadline: Deadline) -> object:
    return ask(deadline.inner())


def _lookups(settings: Settings, via: Target) -> list[Lookup]:
    """The look-ups this run asks for; each check's code is imported only by the runs that ask for it."""
    lookups: list[Lookup] = []
    if settings.blind_spots:
        from check_k8s_health.checks.blindspots import acquire as blindspots

        lookups.append(("survey", lambda ask: blindspots.survey(settings, via, ask),
                        lambda error: blindspots.unanswered(via, error)))
    if settings.leaders:
        from check_k8s_health.checks.leaders import acquire as leaders

        lookups.append(("leaders", lambda ask: leaders.look_up(settings, via, ask),
                        lambda error: leaders.unanswered(settings, via, error)))
    if settings.write_lease is not None:
        from check_k8s_health.checks.writes import acquire as writes

        lease = settings.write_lease
        lookups.append(("write", lambda ask: writes.write(lease, via, ask),
                        lambda error: writes.unanswered(lease, via, error)))
    if settings.etcd_quota is not None:
        from check_k8s_health.checks.etcdsize import acquire as etcdsize

        lookups.append(("etcd", lambda ask: etcdsize.measure(via, ask), lambda error: etcdsize.unanswered(via, error)))
    return lookups


def _cpu_wait(reports: tuple[ServerReport, ...]) -> Optional[float]:
    """Read only when an answer was late: whether this host gave the plugin a CPU decides what that means."""
    if not any(isinstance(outcome.error, LATE) for report in reports for outcome in report.outcomes):
        return None
    from check_k8s_health.transport.starvation import cpu_wait

    return cpu_wait()


def collect(settings: Settings, targets: tuple[Target, ...], deadline: Deadline) -> tuple[ServerReport, ...]:
    jobs = [lambda target=target: collect_server(settings, target, deadline) for target in targets]
    results = in_parallel(jobs, deadline)
    reports = []
    for target, result in zip(targets, results):
        reports.append(result if isinstance(result, ServerReport) else _unanswered(settings, target, result))
    if any(outcome.error is not None for report in reports for outcome in report.outcomes) and \
            any(not target.plain_http for target in settings.targets):
        # A CA file the TLS library could not read fails every request: that is the configuration error it
        # was before the first request, when command.configure checked the files (see access.tlsfiles).
        deadline.enter("reading the TLS files")
        check_tls_files(settings.target.tls)
    return tuple(reports)


def _unanswered(settings: Settings, target: Target, error: PluginError) -> ServerReport:
    return ServerReport(target, tuple(Outcome(endpoint, error=error) for endpoint in settings.endpoints))
