"""Evaluation in nagiosplugin's terms: one context judges the whole run (through ``assessment``, which is pure
and tested alone); the other only formats perfdata.

Perfdata values are formatted here as plain decimals, because nagiosplugin prints them with ``%s``
(``0.30000000000000004``, ``1e-05``), which graphers and Icinga's parser handle badly.
"""

from __future__ import annotations

from typing import Any

import nagiosplugin

from check_k8s_health.model.settings import Settings
from check_k8s_health.run.assessment import assess_run


class HealthContext(nagiosplugin.Context):
    def __init__(self, settings: Settings) -> None:
        super().__init__("health")
        self._settings = settings

    def evaluate(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Result:
        assessment = assess_run(metric.value, self._settings)
        # The Assessment rides in ``hint``: the summary needs its long output, and the status line is its words.
        return nagiosplugin.Result(assessment.state, assessment, metric)  # type: ignore[arg-type]


class PerfContext(nagiosplugin.Context):
    """Perfdata only: ``*_time`` carries the ``-w``/``-c`` ranges (judged in ``checks.endpoints.judge``), counts
    are integers."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("perf")
        self._warning = str(nagiosplugin.Range(settings.warning)) if settings.warning else ""
        self._critical = str(nagiosplugin.Range(settings.critical)) if settings.critical else ""
        self._write = tuple(decimal(limit, 4) if limit is not None else ""
                            for limit in (settings.write_warning, settings.write_critical))
        self._quota = settings.etcd_quota
        # The size's thresholds in bytes, the quota as its maximum: a grapher draws the line etcd stops at.
        self._etcd = tuple("" if self._quota is None else str(int(self._quota * share / 100))
                           for share in (settings.etcd_warning, settings.etcd_critical))
        # "N:" is the Nagios range for "alert below N", which is what the days left on a certificate need.
        self._cert = tuple(f"{decimal(limit, 1)}:" if limit is not None else ""
                           for limit in (settings.cert_warning, settings.cert_critical))

    def evaluate(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Result:
        return nagiosplugin.Result(nagiosplugin.Ok, None, metric)

    def performance(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Performance:
        if isinstance(metric.value, int):
            return nagiosplugin.Performance(metric.name, metric.value, "", "", "", 0)
        if metric.name == "write_time":
            return nagiosplugin.Performance(metric.name, decimal(metric.value, 4), "s", self._write[0],
                                            self._write[1], 0)
        if metric.name == "etcd_db_size":
            return nagiosplugin.Performance(metric.name, f"{metric.value:.0f}", "B", self._etcd[0], self._etcd[1], 0,
                                            self._quota)
        if metric.name.endswith("_time"):
            return nagiosplugin.Performance(metric.name, decimal(metric.value, 4), "s", self._warning,
                                            self._critical, 0)
        if metric.name.endswith("_age"):  # a leader Lease's, by the server's clock: judged by its own duration
            return nagiosplugin.Performance(metric.name, decimal(metric.value, 1), "s", "", "", 0)
        return nagiosplugin.Performance(metric.name, decimal(metric.value, 1), "", self._cert[0], self._cert[1])


def decimal(value: float, places: int) -> str:
    """``value`` as a plain decimal with at most ``places`` digits after the point: never ``1e-05``."""
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
