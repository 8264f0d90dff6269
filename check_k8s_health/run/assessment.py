"""Evaluation of a whole run: servers, endpoints, certificates and caveats into one state and one status line.

One server reads like ``readyz: etcd failed (2 of 33 sub-checks)``; several read like ``2 of 3 API servers
healthy; 10.0.0.3:6443 readyz: etcd failed ...``, and ``--min-healthy`` decides how many sick servers a cluster
can carry. Pure, like ``checks.endpoints.judge``: the nagiosplugin adapter and the JSON output both present what
this decides.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional, Union

from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from check_k8s_health.base.errors import LATE
from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.endpoints.judge import Limits, Verdict, judge
from check_k8s_health.checks.endpoints.read import ServerReport
from check_k8s_health.checks.shared.judge import RANK, combine
from check_k8s_health.model.settings import Settings, Target

if TYPE_CHECKING:
    from check_k8s_health.checks.blindspots.judge import BlindVerdict
    from check_k8s_health.checks.blindspots.read import Survey
    from check_k8s_health.checks.etcdsize.judge import SizeVerdict
    from check_k8s_health.checks.etcdsize.read import EtcdSize
    from check_k8s_health.checks.leaders.judge import LeadersVerdict
    from check_k8s_health.checks.leaders.read import Leaders
    from check_k8s_health.checks.members.judge import MemberVerdict
    from check_k8s_health.checks.members.read import Roster
    from check_k8s_health.checks.writes.judge import WriteVerdict
    from check_k8s_health.checks.writes.read import WriteProbe
    from check_k8s_health.run.engine import Acquired

#: The status line is cut here: it aims at 100 characters and must never pass 200 (SPEC section 4).
MAX_SUMMARY = 200 - len("K8S_HEALTH CRITICAL - ")
SERVERS_SHOWN = 2
#: A look-up's problem is cut to fit the status line only where this much of it shows; less is left to -v.
MIN_WORDS = 30
RBAC_HINT = ("reasons withheld: the server forbids reading /<endpoint>/<check>; grant get on /readyz/*, /livez/* "
             "and /healthz/* (ClusterRole system:monitoring, or nonResourceURLs in a ClusterRole)")


class ServerAssessment(NamedTuple):
    report: ServerReport
    state: ServiceState
    verdicts: tuple[Verdict, ...]
    cert_state: ServiceState = Ok
    cert_words: str = ""
    cert_days: Optional[float] = None


class Assessment(NamedTuple):
    state: ServiceState
    summary: str
    lines: tuple[tuple[int, str], ...]
    servers: tuple[ServerAssessment, ...]
    #: With ``--members``: the member list and what it says.
    roster: Optional[Roster] = None
    members: Optional[MemberVerdict] = None
    #: With ``--webhooks`` or ``--aggregated-apis``: what the health endpoints cannot see.
    blind: Optional[BlindVerdict] = None
    #: With ``--leaders``: which control-plane loops have no leader.
    leaders: Optional[LeadersVerdict] = None
    #: With ``--write-probe``: whether the API server could write; with ``--etcd-quota``: etcd's size.
    write: Optional[WriteVerdict] = None
    etcd: Optional[SizeVerdict] = None


def assess(reports: Sequence[ServerReport], settings: Settings, now: Optional[float] = None, *,
           roster: Optional[Roster] = None, survey: Optional[Survey] = None,
           leaders: Optional[Leaders] = None, write: Optional[WriteProbe] = None, etcd: Optional[EtcdSize] = None,
           cpu_wait: Optional[float] = None) -> Assessment:
    """``cpu_wait``: seconds the plugin waited for a CPU, when an answer was late (``starvation``)."""
    now = time.time() if now is None else now
    # Members are always named: the list can shrink to one, and the output must not change its shape then.
    several = len(reports) > 1 or roster is not None
    limits = Limits(settings.policy, settings.warning, settings.critical, settings.component.name)
    servers = tuple(_server(report, settings, limits, now, several) for report in reports)
    members = None
    if roster is not None:
        from check_k8s_health.checks.members.judge import judge_roster

        ready = all(outcome.answer is not None and outcome.answer.status == 200 for server in servers
                    for outcome in server.report.outcomes)
        members = judge_roster(roster, settings, len(servers), all_ready=ready)
    if several:
        state, summary = _several(servers, settings, members)
    else:
        state, summary = servers[0].state, _endpoint_words(servers[0], settings)
    starved = _starved(servers, settings, cpu_wait)
    if starved:
        # Late answers on a host that gave the plugin no CPU say nothing about the server: not CRITICAL.
        state, summary = Unknown, f"{starved}; {summary}"
    blind = None
    if survey is not None:
        from check_k8s_health.checks.blindspots.judge import judge_survey

        blind = judge_survey(survey, settings.policy, settings.webhooks, settings.aggregated_apis)
    led = None
    if leaders is not None:
        from check_k8s_health.checks.leaders.judge import judge_leaders

        led = judge_leaders(leaders, settings.policy)
    wrote = None
    if write is not None:
        from check_k8s_health.checks.writes.judge import judge_write

        wrote = judge_write(write, settings.policy, settings.write_warning, settings.write_critical)
    size = None
    if etcd is not None and settings.etcd_quota is not None:
        from check_k8s_health.checks.etcdsize.judge import Quota, judge_size

        size = judge_size(etcd, Quota(settings.etcd_quota, settings.etcd_warning, settings.etcd_critical),
                          settings.policy)
    # Caveats ("TLS not verified") are never cut off: the summary gives way to them.
    caveats = "".join(f"; {caveat}" for caveat in _caveats(settings))
    # The health words come first and stay whole; each look-up's words give way to them, the worst look-up first.
    lookups = sorted((found for found in (wrote, size, led, blind) if found is not None),
                     key=lambda found: -RANK[found.state])
    left_out = 0
    for found in lookups:
        state = combine((state, found.state))
        room = MAX_SUMMARY - len(caveats) - len(summary) - 2
        words = found.words(room)
        if len(words) > room and (found.state == Ok or room < MIN_WORDS):
            # What is fine gives way whole, never cut; a problem too, where only a stub of it would fit. The long
            # output and perfdata still say it.
            left_out += found.state != Ok
            continue
        summary = f"{summary}; {words}"
    if left_out and len(summary) + len(f"; and {left_out} more") <= MAX_SUMMARY - len(caveats):
        summary += f"; and {left_out} more"
    line = one_line(summary, MAX_SUMMARY - len(caveats)) + caveats
    extras = [found for found in (led, wrote, size, blind) if found is not None]
    return Assessment(state, line, tuple(_lines(servers, settings, members, extras)), servers, roster, members,
                      blind, led, wrote, size)


def assess_run(acquired: Acquired, settings: Settings) -> Assessment:
    """``assess`` over everything one run acquired: the plugin line and the JSON document judge alike."""
    return assess(acquired.reports, settings, roster=acquired.roster, survey=acquired.survey,
                  leaders=acquired.leaders, write=acquired.write, etcd=acquired.etcd, cpu_wait=acquired.cpu_wait)


def _starved(servers: Sequence[ServerAssessment], settings: Settings, cpu_wait: Optional[float]) -> str:
    """The overload words when every problem of the run is an answer that came too late and the plugin waited
    for a CPU for a large share of ``-t``; "" otherwise (a real failure on another endpoint still counts)."""
    if cpu_wait is None:
        return ""
    from check_k8s_health.transport.starvation import overloaded

    late = [isinstance(outcome.error, LATE) for server in servers for outcome, verdict in
            zip(server.report.outcomes, server.verdicts) if verdict.state != Ok]
    if not late or not all(late) or any(server.cert_state != Ok for server in servers):
        return ""
    return overloaded(cpu_wait, settings.timeout)


def label_prefix(target: Target, targets: Sequence[Target], always: bool = False) -> str:
    """Perfdata label prefix for one of several servers (``always`` for members, however few are listed): the
    host, sanitised to ``[a-z0-9_]``; host and port when two servers share a host."""
    if len(targets) < 2 and not always:
        return ""
    hosts = [_host(t) for t in targets]
    name = target.name if hosts.count(_host(target)) > 1 else _host(target)
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") + "_"


def _host(target: Target) -> str:
    return target.name.rsplit(":", 1)[0] if not target.name.endswith("]") else target.name


def _server(report: ServerReport, settings: Settings, limits: Limits, now: float, several: bool) -> ServerAssessment:
    prefix = f"{report.target.name} " if several else ""
    verdicts = tuple(judge(outcome, report.target, limits, prefix) for outcome in report.outcomes)
    cert_state, cert_words, days = _certificate(report, settings, now)
    state = max([verdict.state for verdict in verdicts] + [cert_state])
    return ServerAssessment(report, state, verdicts, cert_state, cert_words, days)


def _certificate(report: ServerReport, settings: Settings, now: float) -> tuple[ServiceState, str, Optional[float]]:
    days = report.cert_days_left(now)
    if days is None or report.cert_not_after is None:  # (both or neither; the second narrows the type)
        return Ok, "", None
    when = time.strftime("%Y-%m-%d", time.gmtime(report.cert_not_after))
    for state, option, limit in ((Critical, "--cert-critical", settings.cert_critical),
                                 (Warn, "--cert-warning", settings.cert_warning)):
        if limit is not None and days < limit:
            words = (f"server certificate expired on {when}" if days < 0 else
                     f"server certificate expires in {days:.1f} days ({when}, {option} {limit:g})")
            return state, words, days
    return Ok, "", days


def _endpoint_words(server: ServerAssessment, settings: Settings) -> str:
    """``livez, readyz: cannot connect ...; healthz: all 30 sub-checks passed``: worst first, endpoints that
    fail with the same words merged."""
    order = sorted(range(len(server.verdicts)), key=lambda i: -server.verdicts[i].state.code)
    groups: dict[str, tuple[str, list[str]]] = {}
    for index in order:
        verdict, endpoint = server.verdicts[index], server.report.outcomes[index].endpoint
        key = verdict.summary if verdict.state != Ok else f"{endpoint}\0ok"
        groups.setdefault(key, (verdict.summary, []))[1].append(endpoint)
    parts = [f"{', '.join(names)}: {words}" for words, names in groups.values()]
    if server.cert_words:
        parts.insert(0 if server.cert_state > max(v.state for v in server.verdicts) else len(parts),
                     server.cert_words)
    return "; ".join(parts)


def _several(servers: Sequence[ServerAssessment], settings: Settings, members: Optional[MemberVerdict] = None
             ) -> tuple[ServiceState, str]:
    total, noun = len(servers), settings.component.noun
    sick = [server for server in servers if server.state != Ok]
    healthy = total - len(sick)
    problems = members.problems if members is not None else ()
    if members is not None and members.listed:
        total = max(total, members.known)  # missing and silent members count against the healthy
    state = max([server.state for server in servers] + ([members.state] if members is not None else []))
    if settings.min_healthy is not None:
        state = (Warn if sick or problems else Ok) if healthy >= settings.min_healthy else Critical
        state = max(state, members.firm) if members is not None else state
    words = f"{healthy} of {total} {noun} healthy"
    if settings.min_healthy is not None:
        words += f" (--min-healthy {settings.min_healthy})"
    lead = [members.lead] if members is not None and members.lead else []
    if not sick and not problems:
        return state, "; ".join([*lead, f"{words} ({', '.join(settings.endpoints)})"])
    sick.sort(key=lambda server: -server.state.code)
    details = [f"{server.report.target.name} {_endpoint_words(server, settings)}" for server in sick[:SERVERS_SHOWN]]
    if len(sick) > SERVERS_SHOWN:
        details.append(f"and {len(sick) - SERVERS_SHOWN} more")
    return state, "; ".join([*lead, words, *details, *problems])


def _caveats(settings: Settings) -> list[str]:
    target = settings.target
    caveats = []
    if not target.tls.verify and not target.plain_http:
        caveats.append("TLS not verified")
        if settings.cert_warning is not None or settings.cert_critical is not None:
            caveats.append("certificate expiry not judged")
    if target.token_withheld:
        caveats.append("token withheld (plain http)")
    return caveats


def _lines(servers: Sequence[ServerAssessment], settings: Settings, members: Optional[MemberVerdict],
           lookups: Sequence[Union[LeadersVerdict, WriteVerdict, SizeVerdict, BlindVerdict]] = ()
           ) -> list[tuple[int, str]]:
    lines = [(2, line) for line in request_lines(settings.target)]
    if len(settings.targets) > 1:
        lines[0] = (2, f"servers: {', '.join(t.url for t in settings.targets)} (from {settings.target.source})")
    lines += token_lines(settings.target)
    if members is not None:
        lines += members.lines
    several = len(servers) > 1 or members is not None
    for server in servers:
        if several:
            lines.append((1, f"{server.report.target.name}: {server.state.text.upper()}"))
        lines += [line for verdict in server.verdicts for line in verdict.lines]
        if server.cert_days is not None:
            name = f"{server.report.target.name} " if several else ""
            lines.append((2, f"{name}server certificate: {server.cert_days:.1f} days left"))
    if any(verdict.reasons_forbidden for server in servers for verdict in server.verdicts):
        lines.append((1, RBAC_HINT))
    for found in lookups:
        lines += found.lines
    reported = {check.name for server in servers for outcome in server.report.outcomes
                for check in outcome.body.checks}
    for found in lookups:
        reported.update(found.names)
    if reported:
        lines += [(1, f"{glob} matches no sub-check the server reported") for glob in
                  settings.policy.unmatched(reported)]
    if not settings.target.tls.verify and (settings.cert_warning is not None or settings.cert_critical is not None):
        lines.append((1, "the certificate expiry cannot be judged: the certificate is not verified"))
    return lines


def request_lines(target: Target) -> list[str]:
    tls = target.tls
    if target.plain_http:
        how = "none (plain http)"
    elif not tls.verify:
        how = "certificate NOT verified (--insecure-skip-tls-verify)"
    else:
        how = f"verified against {f'the CA {tls.ca_file}' if tls.ca_file else 'the default CA bundle'}"
        if tls.server_name:
            how += f" for the name {tls.server_name}"
        how += f" (from {target.tls_source})"
    credential = target.credential
    who = "anonymous" if credential.token is None else f"bearer token from {credential.source}"
    if target.token_withheld:
        who += " (withheld: plain http)"
    if tls.client_cert:
        who += f", client certificate {tls.client_cert}"
    lines = [f"server: {target.url} (from {target.source})", f"TLS: {how}", f"credentials: {who}"]
    if target.proxy:
        lines.append(f"proxy: {one_line(target.proxy, 100)} (kubeconfig proxy-url)")
    return lines


def token_lines(target: Target) -> list[tuple[int, str]]:
    """When the token expires (the next 401 is easier to read when yesterday's output said so), and whether
    its file is open to every local user."""
    credential = target.credential
    if credential.token is None:
        return []
    lines = []
    if credential.path is not None:
        try:
            mode = os.stat(credential.path).st_mode
        except OSError:
            mode = 0
        if mode & stat.S_IROTH:
            lines.append((1, f"warning: {credential.path} holds a token and every local user can read it "
                         f"(mode {stat.S_IMODE(mode):04o}): chmod o-r {credential.path}"))
    if credential.expires is None:  # nothing to watch: only -vv says so
        return [*lines, (2, f"token from {credential.source}: no expiry (not a JWT, or a long-lived Secret token)")]
    left = credential.expires - time.time()
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(credential.expires))
    if left <= 0:
        return [*lines, (1, f"token from {credential.source} expired at {when}")]
    return [*lines, (1, f"token from {credential.source} expires at {when} (in {_duration(left)})")]


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 72 else f"{hours // 24} days"
