"""Presentation for machines: ``--output json`` (one document with every server, endpoint and sub-check) and
``--discover`` (Zabbix low-level discovery).

Zabbix ignores exit codes and takes stdout and stderr as the item value, so these modes print exactly one JSON
document and nothing else, errors included: the document then carries the state and the message. A discovery
document for a failed run has no ``data`` array on purpose: Zabbix then marks the rule unsupported and keeps the
items it discovered before, instead of losing them all because one run could not reach the server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nagiosplugin.state import Ok, ServiceState

from check_k8s_health import __version__
from check_k8s_health.checks.endpoints.judge import Verdict
from check_k8s_health.checks.endpoints.read import Outcome
from check_k8s_health.model.settings import Settings
from check_k8s_health.run.assessment import Assessment, ServerAssessment

if TYPE_CHECKING:
    from check_k8s_health.checks.blindspots.judge import BlindVerdict, Part
    from check_k8s_health.checks.blindspots.read import ApiService, Webhook
    from check_k8s_health.checks.leaders.judge import LeadersVerdict
    from check_k8s_health.checks.members.judge import MemberVerdict
    from check_k8s_health.checks.members.read import Roster


def report_document(assessment: Assessment, settings: Settings) -> str:
    document = {
        "plugin": "check_k8s_health", "version": __version__,
        **_state(assessment.state), "summary": assessment.summary,
        "servers": [_server(server, settings) for server in assessment.servers],
    }
    if assessment.roster is not None and assessment.members is not None:
        document["members"] = _members(assessment.roster, assessment.members, settings)
    if assessment.blind is not None:
        document.update(_blind(assessment.blind))
    if assessment.leaders is not None:
        document["leaders"] = _leaders(assessment.leaders)
    if assessment.write is not None:
        write = assessment.write
        document["write_probe"] = {**_state(write.state), "name": write.name, "words": write.words_,
                                   "time": None if write.elapsed is None else round(write.elapsed, 4),
                                   "out_of_space": write.full}
    if assessment.etcd is not None:
        etcd = assessment.etcd
        document["etcd_size"] = {**_state(etcd.state), "words": etcd.words_, "metric": etcd.metric or None,
                                 "bytes": None if etcd.size is None else int(etcd.size), "quota": settings.etcd_quota,
                                 "percent": None if etcd.percent is None else round(etcd.percent, 2)}
    return _dump(document)


def _leaders(verdict: LeadersVerdict) -> dict[str, Any]:
    """Every leader Lease as judged: holder, age and duration as read, by the server's clock."""
    return {
        **_state(verdict.state), "problems": list(verdict.problems),
        # Judged without a leader (and not ignored by policy): what Zabbix's trigger counts.
        "leaderless": sum(item.leaderless and item.state != Ok for item in verdict.items),
        "leases": [{"namespace": item.namespace, "name": item.name, "component": item.component,
                    **_state(item.state), "leader": not item.leaderless and item.state == Ok, "words": item.sentence,
                    "holder": None if item.lease is None else item.lease.holder or None,
                    "age": None if item.lease is None or item.lease.age is None else round(item.lease.age, 1),
                    "duration": None if item.lease is None else item.lease.duration}
                   for item in verdict.items],
    }


def _members(roster: Roster, verdict: MemberVerdict, settings: Settings) -> dict[str, Any]:
    """The list and the Leases as found, so a script can tell a missing member from a sick one."""
    listing = roster.listing
    return {
        **_state(verdict.state), "source": roster.source, "listed": verdict.listed, "alive": verdict.alive,
        "expected": settings.expect_members, "known": verdict.known,
        "members": [target.url for target in roster.targets],
        "problems": [verdict.lead] * bool(verdict.lead) + list(verdict.problems),
        "notes": list(listing.notes) if listing is not None else [],
        "leases": None if roster.leases is None else [
            {"host": lease.host, "name": lease.name, "alive": lease.alive,
             "age": None if lease.age is None else round(lease.age, 1)} for lease in roster.leases],
    }


def _blind(verdict: BlindVerdict) -> dict[str, Any]:
    """The objects ``webhooks`` and ``aggregated_apis``: every item as judged, so a script can tell a webhook that
    blocks writes from one that is merely not enforced. Local APIServices are served by the API server itself:
    counted (``local``), not listed."""
    found: dict[str, Any] = {}
    if verdict.webhooks is not None:
        found["webhooks"] = _part(verdict.webhooks, "unserved", _webhook_item)
    if verdict.apiservices is not None:
        apis = _part(verdict.apiservices, "unavailable", _apiservice_item)
        apis["items"] = [item for item in apis["items"] if item["judged"]]
        apis["local"] = sum(not judged.judged for judged in verdict.apiservices.items)
        found["aggregated_apis"] = apis
    return found


def _part(part: Part, bad: str, item: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return {**_state(part.state), "count": part.listed, bad: part.broken, "error": part.error or None,
            "problems": [words for _, words in part.problems],
            "items": [{**item(judged.item), "name": judged.item.name, "check": judged.item.check_name,
                       **_state(judged.state), "judged": judged.judged, bad: judged.broken, "detail": judged.backend}
                      for judged in part.items]}


def _webhook_item(hook: Webhook) -> dict[str, Any]:
    return {"configuration": hook.configuration, "kind": hook.kind, "failure_policy": hook.failure_policy,
            "service": None if hook.service is None else "/".join(hook.service), "url": hook.url,
            "operations": list(hook.operations), "resources": list(hook.resources),
            "namespace_selector": hook.namespaces or None}


def _apiservice_item(item: ApiService) -> dict[str, Any]:
    return {"service": None if item.service is None else "/".join(item.service), "available": item.available,
            "reason": item.reason or None, "message": item.message or None}


def discovery_document(assessment: Assessment) -> str:
    """Discovery only from complete answers: a server or endpoint that listed no sub-checks this time gives the
    failure document, so Zabbix keeps what it discovered before instead of losing those items."""
    missing = [f"{server.report.target.name} {outcome.endpoint}" for server in assessment.servers
               for outcome in server.report.outcomes if not outcome.body.checks]
    if missing:
        return failure_document(assessment.state.code if assessment.state != Ok else 3,
                                f"nothing to discover from {', '.join(missing)}: {assessment.summary}", True)
    rows = [{"{#SERVER}": server.report.target.name, "{#ENDPOINT}": outcome.endpoint, "{#CHECK}": check.name}
            for server in assessment.servers for outcome in server.report.outcomes for check in outcome.body.checks]
    return _dump({"data": rows})


def failure_document(code: int, message: str, discover: bool) -> str:
    names = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
    document: dict[str, Any] = {"plugin": "check_k8s_health", "version": __version__, "state": names[code],
                                "code": code, "summary": message}
    if not discover:
        document["servers"] = []
    return _dump(document)


def _server(server: ServerAssessment, settings: Settings) -> dict[str, Any]:
    return {
        "server": server.report.target.url, "name": server.report.target.name, **_state(server.state),
        "cert_days_left": None if server.cert_days is None else round(server.cert_days, 1),
        "endpoints": [_endpoint(outcome, verdict, settings)
                      for outcome, verdict in zip(server.report.outcomes, server.verdicts)],
    }


def _endpoint(outcome: Outcome, verdict: Verdict, settings: Settings) -> dict[str, Any]:
    answer = outcome.answer
    reasons = {reason.check: reason for reason in outcome.reasons}
    checks = []
    for check in outcome.body.checks:
        reason = reasons.get(check.name)
        state = Ok if check.ok else settings.policy.state_of(check.name)
        checks.append({"name": check.name, **_state(state), "ok": check.ok, "detail": check.detail,
                       "reason": reason.text if reason is not None and reason.kind == "found" else None})
    return {
        "endpoint": outcome.endpoint, **_state(verdict.state), "summary": verdict.summary,
        "http_status": answer.status if answer is not None else None,
        "time": round(answer.elapsed, 4) if answer is not None else None,
        "error": str(outcome.error) if outcome.error is not None else None,
        "checks": checks, "warnings": list(outcome.body.warnings),
    }


def _state(state: ServiceState) -> dict[str, Any]:
    return {"state": state.text.upper(), "code": state.code}


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=True, separators=(",", ":"))
