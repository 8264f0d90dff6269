"""Presentation: the status line and the long output, both decided by ``assessment``.

nagiosplugin's defaults show only the first result (OK) or the first worst one (problem); an operator woken at
night needs every endpoint and server asked, worst first, the failed sub-checks by name, and the caveats of the
run (TLS not verified, token withheld) on the one line that reaches the pager.
"""

from __future__ import annotations

from typing import cast

import nagiosplugin

from check_k8s_health.base.text import one_line
from check_k8s_health.run.assessment import Assessment


class HealthSummary(nagiosplugin.Summary):
    def __init__(self, verbose: int) -> None:
        self._verbose = verbose

    def ok(self, results: nagiosplugin.Results) -> str:
        return self._assessment(results).summary

    def problem(self, results: nagiosplugin.Results) -> str:
        return self._assessment(results).summary

    def verbose(self, results: nagiosplugin.Results) -> list[str]:
        # Every line passes one_line here: names, paths and server text may hold "|" or newlines, which would
        # forge perfdata or extra lines (nagiosplugin would silently delete the "|" and add a warning).
        return [one_line(text, 1000) for level, text in self._assessment(results).lines if level <= self._verbose]

    @staticmethod
    def _assessment(results: nagiosplugin.Results) -> Assessment:
        # The health context always leaves its assessment in the hint (see context.py).
        return cast(Assessment, results["health"].hint)
