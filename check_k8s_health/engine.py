"""Acquisition for a whole run: every server concurrently, its endpoints in turn over one connection, and the
reasons for failed sub-checks, all inside the one deadline.

Work runs in daemon threads: a thread stuck where no timeout reaches (a name lookup) must not keep the plugin
from printing its answer and exiting when the deadline comes. Only runs that need them start threads: one
server with one endpoint pays for none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Optional, TypeVar
from urllib.parse import quote

from check_k8s_health.client import HealthClient
from check_k8s_health.deadline import Deadline
from check_k8s_health.errors import PluginError, ReadTimedOut, TransportError
from check_k8s_health.settings import Settings, Target
from check_k8s_health.text import one_line
from check_k8s_health.verdict import Outcome, Reason, ServerReport

#: Failed sub-checks whose reasons are looked up; the rest keep the server's "reason withheld".
MAX_REASONS = 5

T = TypeVar("T")


def collect(settings: Settings, deadline: Deadline) -> tuple[ServerReport, ...]:
    jobs = [lambda target=target: _collect_server(settings, target, deadline) for target in settings.targets]
    results = in_parallel(jobs, deadline)
    reports = []
    for target, result in zip(settings.targets, results):
        if isinstance(result, ServerReport):
            reports.append(result)
        else:
            reports.append(ServerReport(target, tuple(Outcome(endpoint, error=result)
                                                      for endpoint in settings.endpoints)))
    return tuple(reports)


def in_parallel(jobs: Sequence[Callable[[], T]], deadline: Deadline) -> list[T | PluginError]:
    """Run ``jobs`` concurrently (inline when there is one); a job still running when the deadline's network
    budget is spent counts as a read timeout."""
    if len(jobs) == 1:
        return [_guarded(jobs[0])]
    results: list[T | PluginError | None] = [None] * len(jobs)

    def work(index: int, job: Callable[[], T]) -> None:
        results[index] = _guarded(job)

    threads = [threading.Thread(target=work, args=(index, job), daemon=True) for index, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=deadline.remaining())
    late = ReadTimedOut(f"no answer within the {deadline.seconds:g} s deadline (-t)")
    return [late if result is None else result for result in results]


def _guarded(job: Callable[[], T]) -> T | PluginError:
    try:
        return job()
    except PluginError as exc:
        return exc


def _collect_server(settings: Settings, target: Target, deadline: Deadline) -> ServerReport:
    params = [("verbose", "")] + [("exclude", name) for name in settings.excludes]
    outcomes = []
    unreachable: Optional[TransportError] = None
    with HealthClient(target, deadline) as client:
        for endpoint in settings.endpoints:
            if unreachable is not None:
                # The connection itself failed: asking again would only spend the deadline.
                outcomes.append(Outcome(endpoint, error=unreachable))
                continue
            try:
                outcome = Outcome.answered(endpoint, client.get(f"/{endpoint}", params))
            except TransportError as exc:
                outcomes.append(Outcome(endpoint, error=exc))
                unreachable = exc if exc.before_request else None
                continue
            except PluginError as exc:
                outcomes.append(Outcome(endpoint, error=exc))
                continue
            answer = outcome.answer
            if settings.reasons and outcome.body.failed and answer is not None and answer.status >= 500:
                outcome = outcome._replace(reasons=_reasons(client, endpoint, outcome, deadline))
            outcomes.append(outcome)
        return ServerReport(target, tuple(outcomes), client.cert_not_after)


def _reasons(client: HealthClient, endpoint: str, outcome: Outcome, deadline: Deadline) -> tuple[Reason, ...]:
    """Ask ``/<endpoint>/<check>`` for the real reason the aggregate answer withholds."""
    names = [check.name for check in outcome.body.failed if "withheld" in check.detail][:MAX_REASONS]
    jobs = [lambda name=name: _reason(client, endpoint, name) for name in names]
    found = in_parallel(jobs, deadline)
    return tuple(result if isinstance(result, Reason) else Reason(name, "error", one_line(str(result), 120))
                 for name, result in zip(names, found))


def _reason(client: HealthClient, endpoint: str, name: str) -> Reason:
    # Check names may hold slashes (poststarthook/rbac/bootstrap-roles): the sub-path keeps them as they are. A
    # name is the server's text, though: anything else that could steer the URL (?, #, %, ..) is escaped.
    if ".." in name.split("/"):
        return Reason(name, "error", "not looked up: the name is not a plain path")
    answer = client.get(f"/{endpoint}/{quote(name, safe='/')}")
    text = answer.body.strip()
    if answer.status == 403:
        return Reason(name, "forbidden", "")
    if answer.status == 404:
        return Reason(name, "missing", "")
    if answer.status == 200:
        return Reason(name, "passing", "passes now")
    prefix = "internal server error: "
    return Reason(name, "found", one_line(text[len(prefix):] if text.startswith(prefix) else text, 200))
