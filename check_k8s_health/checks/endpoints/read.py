"""Reads the body of a ``/livez``, ``/readyz`` or ``/healthz`` answer (pure: text in, values out), and holds the
records of what asking produced: one ``Outcome`` per endpoint, one ``ServerReport`` per server.

The body only explains; the HTTP status decides. So the parser never fails: a line it does not understand is
skipped, and an answer without sub-check lines (plain ``ok``, a proxy's error page) simply lists none. The list
of checks is never hard-coded; it changes between Kubernetes versions.
"""

from __future__ import annotations

import json
import re
from typing import Optional

from check_k8s_health.base.errors import PluginError
from check_k8s_health.base.record import NamedTuple
from check_k8s_health.model.settings import Target
from check_k8s_health.transport.answer import Answer

# "[+]etcd ok", "[+]etcd excluded: ok", "[+]etcd excluded with etcd: ok" (1.34+), "[-]etcd failed: reason withheld"
_PASSED = re.compile(r"\[\+\](?P<name>.+?) (?P<detail>ok|excluded(?: with \S+)?: ok)")
_FAILED = re.compile(r"\[-\](?P<name>.+?) (?P<detail>failed(?::.*)?)")
_TRAILER = re.compile(r"\S+ check (?:passed|failed)")
_WARN = "warn: "


class SubCheck(NamedTuple):
    name: str
    ok: bool
    #: The server's own words after the name: "ok", "excluded: ok", "failed: reason withheld".
    detail: str

    @property
    def excluded(self) -> bool:
        return self.detail.startswith("excluded")


class HealthBody(NamedTuple):
    checks: tuple[SubCheck, ...] = ()
    #: ``warn:`` lines without the prefix, e.g. an ``--exclude`` name the server does not know.
    warnings: tuple[str, ...] = ()
    #: The first line when the body is not a sub-check list: ``ok``, or a proxy's text.
    plain: Optional[str] = None

    @property
    def failed(self) -> tuple[SubCheck, ...]:
        return tuple(check for check in self.checks if not check.ok)

    @property
    def excluded(self) -> tuple[SubCheck, ...]:
        return tuple(check for check in self.checks if check.excluded)


def parse_body(text: str) -> HealthBody:
    if text.lstrip().startswith("{"):
        etcd = _etcd_health(text)
        if etcd is not None:
            return etcd
    checks: list[SubCheck] = []
    warnings: list[str] = []
    other: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _PASSED.fullmatch(line) or _FAILED.fullmatch(line)
        if match:
            checks.append(SubCheck(match["name"], line.startswith("[+]"), match["detail"]))
        elif line.startswith(_WARN):
            warnings.append(line[len(_WARN):].strip())
        elif line.startswith(("[+]", "[-]")):
            # A check line in a shape this parser has not seen: keep the check, take the name up to a space.
            name, _, rest = line[3:].strip().partition(" ")
            checks.append(SubCheck(name or "(unnamed)", line.startswith("[+]"),
                                   rest or ("ok" if line[1] == "+" else "failed")))
        elif not _TRAILER.fullmatch(line):
            other.append(line)
    plain = other[0] if other and not checks else None
    return HealthBody(tuple(checks), tuple(warnings), plain)


def _etcd_health(text: str) -> Optional[HealthBody]:
    """etcd's ``/health``: ``{"health":"true","reason":""}`` or ``{"health":"false","reason":"RAFT NO LEADER"}``."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or "health" not in document:
        return None
    healthy = str(document.get("health")).lower() == "true"
    reason = document.get("reason")
    detail = "ok" if healthy else f"failed: {reason}" if isinstance(reason, str) and reason else "failed"
    return HealthBody((SubCheck("health", healthy, detail),))


class Reason(NamedTuple):
    """What ``/<endpoint>/<check>`` said: ``found`` (text), ``passing``, ``forbidden``, ``missing``, ``error``."""

    check: str
    kind: str
    text: str


class Outcome(NamedTuple):
    """What asking one endpoint produced: an answer, or the failure that kept it from arriving."""

    endpoint: str
    answer: Optional[Answer] = None
    error: Optional[PluginError] = None
    body: HealthBody = HealthBody()
    reasons: tuple[Reason, ...] = ()

    @classmethod
    def answered(cls, endpoint: str, answer: Answer) -> Outcome:
        return cls(endpoint, answer, None, parse_body(answer.body))


class ServerReport(NamedTuple):
    """Everything one server answered in this run."""

    target: Target
    outcomes: tuple[Outcome, ...]
    #: notAfter of its certificate (seconds since the epoch), known only when the certificate was verified.
    cert_not_after: Optional[float] = None

    def cert_days_left(self, now: float) -> Optional[float]:
        return None if self.cert_not_after is None else (self.cert_not_after - now) / 86400
