"""Acquisition in nagiosplugin's terms: runs the engine once and hands over the whole report (with
``--members``, the member list too), plus one metric per measured number for perfdata.

A failure to get an answer is a measurement too (the server is down), so it travels in the report instead of
raising: the context decides the state, and every other endpoint and server is still reported.
"""

from __future__ import annotations

import time
from collections.abc import Generator

import nagiosplugin

from check_k8s_health.base.deadline import Deadline
from check_k8s_health.model.settings import Settings
from check_k8s_health.run.assessment import label_prefix
from check_k8s_health.run.engine import acquire


class HealthProbe(nagiosplugin.Resource):
    def __init__(self, settings: Settings, deadline: Deadline) -> None:
        self._settings = settings
        self._deadline = deadline

    def probe(self) -> Generator[nagiosplugin.Metric, None, None]:
        acquired = acquire(self._settings, self._deadline)
        reports, roster = acquired.reports, acquired.roster
        # Every wait is over: judging and printing must not be cut by the alarm halfway through a line.
        self._deadline.disarm()
        yield nagiosplugin.Metric("health", acquired, context="health")
        if roster is not None and roster.listing is not None:
            yield nagiosplugin.Metric("members_listed", roster.listing.listed, context="perf")
            if roster.leases:
                yield nagiosplugin.Metric("members_alive", sum(lease.alive for lease in roster.leases),
                                          context="perf")
        targets = [report.target for report in reports]
        for report in reports:
            prefix = label_prefix(report.target, targets, always=roster is not None)
            for outcome in report.outcomes:
                label = f"{prefix}{outcome.endpoint}"
                if outcome.answer is not None:
                    yield nagiosplugin.Metric(f"{label}_time", outcome.answer.elapsed, "s", context="perf")
                if outcome.body.checks:
                    yield nagiosplugin.Metric(f"{label}_checks", len(outcome.body.checks), context="perf")
                    yield nagiosplugin.Metric(f"{label}_failed", len(outcome.body.failed), context="perf")
            days = report.cert_days_left(time.time())
            if days is not None:
                yield nagiosplugin.Metric(f"{prefix}cert_days_left", days, context="perf")
        if acquired.survey is not None:
            from check_k8s_health.checks.blindspots.judge import counts

            for name, value in counts(acquired.survey):
                yield nagiosplugin.Metric(name, value, context="perf")
        if acquired.leaders is not None:
            from check_k8s_health.checks.leaders.judge import ages

            for name, age in ages(acquired.leaders):
                yield nagiosplugin.Metric(name, age, "s", context="perf")
        if acquired.write is not None and acquired.write.elapsed is not None:
            yield nagiosplugin.Metric("write_time", acquired.write.elapsed, "s", context="perf")
        if acquired.etcd is not None:
            from check_k8s_health.checks.etcdsize.read import Storage

            found = acquired.etcd.found
            if isinstance(found, Storage) and found.size is not None:
                yield nagiosplugin.Metric("etcd_db_size", found.size, "B", context="perf")
