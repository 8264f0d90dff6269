"""Acquisition: asks each endpoint of the server once and turns the answers into metrics.

A failure to get an answer is a measurement too (the server is down), so it travels as a metric to the
endpoint context instead of raising: the context decides the state, and the other endpoints are still reported.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import nagiosplugin

from check_k8s_health.client import HealthClient
from check_k8s_health.deadline import Deadline
from check_k8s_health.errors import PluginError, TransportError
from check_k8s_health.settings import Settings
from check_k8s_health.verdict import Outcome


class HealthProbe(nagiosplugin.Resource):
    def __init__(self, settings: Settings, deadline: Deadline) -> None:
        self._settings = settings
        self._deadline = deadline

    def probe(self) -> Generator[nagiosplugin.Metric, None, None]:
        params = [("verbose", "")] + [("exclude", name) for name in self._settings.excludes]
        unreachable: TransportError | None = None
        with HealthClient(self._settings.target, self._deadline) as client:
            for endpoint in self._settings.endpoints:
                if unreachable is not None:
                    # The connection itself failed: asking again would only spend the deadline.
                    outcome = Outcome(endpoint, error=unreachable)
                else:
                    try:
                        outcome = Outcome.answered(endpoint, client.get(f"/{endpoint}", params))
                    except TransportError as exc:
                        outcome = Outcome(endpoint, error=exc)
                        unreachable = exc if exc.before_request else None
                    except PluginError as exc:
                        outcome = Outcome(endpoint, error=exc)
                yield from _metrics(outcome)


def _metrics(outcome: Outcome) -> Iterator[nagiosplugin.Metric]:
    endpoint = outcome.endpoint
    yield nagiosplugin.Metric(endpoint, outcome, context="endpoint")
    if outcome.answer is not None:
        yield nagiosplugin.Metric(f"{endpoint}_time", outcome.answer.elapsed, "s", min=0, context="time")
    if outcome.body.checks:
        yield nagiosplugin.Metric(f"{endpoint}_checks", len(outcome.body.checks), min=0, context="count")
        yield nagiosplugin.Metric(f"{endpoint}_failed", len(outcome.body.failed), min=0, context="count")
