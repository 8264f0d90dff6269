"""How bad a failed sub-check is: ``--critical-check`` > ``--warning-check`` > ``--ignore-check`` > CRITICAL.

The most alarming explicit rule wins, so a broad ``--ignore-check 'poststarthook/*'`` cannot hide a check that
another option names as a warning or critical. Globs are shell-style (``fnmatch``) on the whole check name.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from nagiosplugin.state import Critical, Ok, ServiceState, Warn

from check_k8s_health.base.record import NamedTuple


class Policy(NamedTuple):
    critical: tuple[str, ...] = ()
    warning: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def state_of(self, name: str, default: ServiceState = Critical) -> ServiceState:
        """The state a failure of sub-check ``name`` stands for; ``default`` where no glob matches (a webhook
        with ``failurePolicy: Ignore``, an aggregated API: WARNING)."""
        if _matches(name, self.critical):
            return Critical
        if _matches(name, self.warning):
            return Warn
        if _matches(name, self.ignore):
            return Ok
        return default

    def unmatched(self, names: Iterable[str]) -> list[str]:
        """Globs that match none of ``names``: usually a typo, so ``-v`` says so."""
        seen = list(names)
        return [f"{option} {glob!r}" for option, globs in (("--critical-check", self.critical),
                                                          ("--warning-check", self.warning),
                                                          ("--ignore-check", self.ignore))
                for glob in globs if not any(fnmatchcase(name, glob) for name in seen)]


def _matches(name: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatchcase(name, glob) for glob in globs)
