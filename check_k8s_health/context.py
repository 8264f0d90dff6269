"""Evaluation: nagiosplugin contexts that give each metric its state and its perfdata.

The endpoint context delegates to ``verdict.judge`` (pure, tested alone); the time context applies ``-w``/``-c``;
the count context only reports. Perfdata values are formatted here as plain decimals, because nagiosplugin
prints them with ``%s`` (``0.30000000000000004``, ``1e-05``) which graphers and Icinga's parser handle badly.
"""

from __future__ import annotations

from typing import Any, Optional

import nagiosplugin
from nagiosplugin.state import Critical, Ok, Warn

from check_k8s_health.settings import Target
from check_k8s_health.verdict import judge


class EndpointContext(nagiosplugin.Context):
    def __init__(self, target: Target) -> None:
        super().__init__("endpoint")
        self._target = target

    def evaluate(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Result:
        verdict = judge(metric.value, self._target)
        # The Verdict rides in ``hint``: the summary needs its long-output lines, and str() gives its words.
        return nagiosplugin.Result(verdict.state, verdict, metric)  # type: ignore[arg-type]


class TimeContext(nagiosplugin.Context):
    """Response time against ``-w``/``-c``: the time to the complete answer."""

    def __init__(self, warning: Optional[str], critical: Optional[str]) -> None:
        super().__init__("time")
        self._warning = nagiosplugin.Range(warning) if warning else None
        self._critical = nagiosplugin.Range(critical) if critical else None

    def evaluate(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Result:
        endpoint = metric.name.removesuffix("_time")
        for state, option, limit in ((Critical, "-c", self._critical), (Warn, "-w", self._warning)):
            if limit is not None and not limit.match(metric.value):
                return nagiosplugin.Result(
                    state, f"{endpoint} took {decimal(metric.value, 3)} s (outside {option} {limit})", metric)
        return nagiosplugin.Result(Ok, None, metric)

    def performance(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Performance:
        return nagiosplugin.Performance(metric.name, decimal(metric.value, 4), "s",
                                        str(self._warning or ""), str(self._critical or ""), 0)


class CountContext(nagiosplugin.Context):
    def __init__(self) -> None:
        super().__init__("count")

    def performance(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Performance:
        return nagiosplugin.Performance(metric.name, int(metric.value), "", "", "", 0)


def decimal(value: float, places: int) -> str:
    """``value`` as a plain decimal with at most ``places`` digits after the point: never ``1e-05``."""
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
