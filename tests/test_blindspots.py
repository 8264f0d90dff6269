"""The pure parts of ``--webhooks`` and ``--aggregated-apis``: the captured objects read into values, and the
judging rules, each a call (the end-to-end tests in test_blind.py run them through the installed command)."""

from __future__ import annotations

import json
import re
from typing import Any, Optional

import pytest
from fakeapi import load_capture
from nagiosplugin.state import Critical, Ok, Unknown, Warn

from check_k8s_health.base.errors import ReadTimedOut
from check_k8s_health.checks.blindspots.judge import counts, judge_survey, miss_words
from check_k8s_health.checks.blindspots.read import (
    SLICES,
    VALIDATING,
    ApiService,
    Backend,
    Survey,
    Webhook,
    parse_apiservices,
    parse_service,
    parse_slices,
    parse_webhooks,
)
from check_k8s_health.checks.shared.judge import combine
from check_k8s_health.checks.shared.read import Failure
from check_k8s_health.model.policy import Policy
from check_k8s_health.model.settings import Credential, Target, TlsSettings
from check_k8s_health.transport.answer import Answer

TARGET = Target("https://10.0.0.10:6443", "--server", TlsSettings(), Credential())


def body(name: str) -> str:
    return load_capture(f"blind/{name}").body.decode()


def test_the_recorded_webhooks() -> None:
    validating = parse_webhooks(body("validatingwebhookconfigurations_2.txt"), "validating")
    mutating = parse_webhooks(body("mutatingwebhookconfigurations_1_default_failurepolicy.txt"), "mutating")
    assert validating == [
        Webhook("policy-guard", "validating", "guard.example.com", "Fail", ("kube-system", "guard"), None,
                ("CREATE", "UPDATE"), ("configmaps",), 1),
        Webhook("policy-guard", "validating", "url.example.com", "Ignore", None, "https://127.0.0.9:9443/validate",
                ("CREATE",), ("deployments.apps",), 1),
    ]
    assert [(hook.name, hook.failure_policy, hook.service, hook.resources) for hook in mutating] == [
        ("inject.example.com", "Fail", ("kube-system", "injector"), ("pods", "services"))]
    assert validating[0].check_name == "webhook/policy-guard/guard.example.com"
    assert parse_webhooks(body("validatingwebhookconfigurations_none.txt"), "validating") == []


def test_a_missing_failure_policy_is_fail() -> None:
    text = json.dumps({"items": [{"metadata": {"name": "c"}, "webhooks": [
        {"name": "h", "clientConfig": {"service": {"namespace": "n", "name": "s"}}, "rules": [{}]}]}]})
    assert parse_webhooks(text, "validating")[0].failure_policy == "Fail"


def test_the_recorded_apiservices() -> None:
    found = parse_apiservices(body("apiservices_3_unavailable.txt"))
    aggregated = [item for item in found if item.service is not None]
    assert len(found) == 24
    assert aggregated[2] == ApiService("v1beta1.metrics.k8s.io", ("kube-system", "metrics-server"), "False",
                                       "ServiceNotFound", 'service/metrics-server in "kube-system" is not present')
    assert all(item.available == "True" and item.reason == "Local" for item in found if item.service is None)
    assert all(item.service is None for item in parse_apiservices(body("apiservices_all_available.txt")))


def test_the_recorded_slices_and_services() -> None:
    assert parse_slices(body("endpointslices_guard_none.txt")) == Backend(0, 0, exists=None)
    assert parse_slices(body("endpointslices_injector_not_ready.txt")) == Backend(0, 1, exists=True)
    assert parse_service(body("service_injector.txt")) == Backend(0, 0, exists=True)


@pytest.mark.parametrize(("endpoint", "ready"), [
    ({"conditions": {"ready": True}}, 1),
    ({"conditions": {"ready": None}}, 1),  # unknown: to be taken as ready, says the API
    ({"conditions": {"serving": True}}, 1),
    ({}, 1),
    ({"conditions": {"ready": False, "serving": True, "terminating": True}}, 0),
    ({"conditions": {"ready": "yes"}}, 0),
])
def test_ready_endpoints(endpoint: dict[str, Any], ready: int) -> None:
    text = json.dumps({"kind": "EndpointSliceList", "items": [{"endpoints": [endpoint]}]})
    assert parse_slices(text) == Backend(ready, 1, exists=True)


@pytest.mark.parametrize(("parse", "text", "why"), [
    (parse_slices, "{", "it is not JSON"),
    (parse_slices, "[]", "it is not a JSON object"),
    (parse_slices, '{"items": 3}', "its items are not a list"),
    (parse_slices, '{"items": [3]}', "an item is not an object"),
    (parse_slices, '{"items": [{"endpoints": {}}]}', "the endpoints of an EndpointSlice are not a list"),
    (parse_slices, '{"items": [{"endpoints": [7]}]}', "an endpoint of an EndpointSlice is not an object"),
    (parse_apiservices, '{"kind": "PodList"}', "it is a PodList, not an APIServiceList"),
    (lambda text: parse_webhooks(text, "mutating"), '{"kind": "ValidatingWebhookConfigurationList"}',
     "it is a ValidatingWebhookConfigurationList, not a MutatingWebhookConfigurationList"),
    (lambda text: parse_webhooks(text, "validating"), '{"items": [{"webhooks": [1]}]}',
     "a webhook of (unnamed) is not an object"),
])
def test_what_is_not_a_list_says_why(parse: Any, text: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(why)}$"):
        parse(text)


# -- judging ---------------------------------------------------------------------------------------------------

GUARD = Webhook("policy-guard", "validating", "guard.example.com", "Fail", ("kube-system", "guard"), None,
                ("CREATE",), ("configmaps",), 1)
METRICS = ApiService("v1beta1.metrics.k8s.io", ("kube-system", "metrics-server"), "False", "ServiceNotFound", "gone")


def judge(survey: Survey, policy: Optional[Policy] = None) -> Any:
    return judge_survey(survey, policy or Policy(), survey.webhooks is not None or survey.webhook_miss is not None,
                        survey.apiservices is not None or survey.apiservice_miss is not None)


@pytest.mark.parametrize(("backend", "state", "words"), [
    (Backend(0, 0, exists=False), Critical, "service kube-system/guard not found"),
    (Backend(0, 0, exists=True), Critical, "service kube-system/guard has no endpoints"),
    (Backend(0, 2, exists=True), Critical, "service kube-system/guard has no ready endpoint (0 of 2)"),
    (Backend(1, 2, exists=True), Ok, ""),
    (Backend(0, 0, exists=True, external="x.example.net"), Ok, ""),
])
def test_a_fail_webhook(backend: Backend, state: Any, words: str) -> None:
    verdict = judge(Survey(TARGET, webhooks=(GUARD,), backends=((GUARD.service, backend),)))  # type: ignore[arg-type]
    assert verdict.state == state
    assert verdict.problems == ((f"webhook guard.example.com blocks CREATE configmaps: {words}",) if words else ())
    assert counts(Survey(TARGET, webhooks=(GUARD,), backends=((GUARD.service, backend),))) == [  # type: ignore[arg-type]
        ("webhooks", 1), ("webhooks_unserved", int(bool(words)))]


def test_an_ignore_webhook_and_the_policy() -> None:
    hook = GUARD._replace(failure_policy="Ignore")
    survey = Survey(TARGET, webhooks=(hook,), backends=((GUARD.service, Backend(0, 0, exists=False)),))  # type: ignore[arg-type]
    assert judge(survey).state == Warn
    assert judge(survey).problems == ("webhook guard.example.com not enforced on CREATE configmaps: service "
                                      "kube-system/guard not found",)
    assert judge(survey, Policy(critical=("webhook/policy-guard/*",))).state == Critical
    ignored = judge(survey, Policy(ignore=("webhook/*",)))
    assert (ignored.state, ignored.problems, ignored.fine) == (Ok, (), "webhooks: none to judge")
    assert ignored.lines[0] == (1, "[-] webhook policy-guard/guard.example.com (validating, failurePolicy Ignore, "
                                   "CREATE configmaps): service kube-system/guard not found (ignored by policy)")


def test_an_aggregated_api() -> None:
    verdict = judge(Survey(TARGET, apiservices=(METRICS, METRICS._replace(name="v1.ok", available="True"))))
    assert (verdict.state, verdict.problems) == (Warn, ("v1beta1.metrics.k8s.io unavailable: ServiceNotFound: gone",))
    assert verdict.fine == "aggregated APIs: 1 available"
    assert judge(Survey(TARGET, apiservices=(METRICS,)), Policy(critical=("apiservice/*metrics*",))).state == Critical


def test_a_miss_names_its_rule() -> None:
    answer = Answer("u", 403, "Forbidden", body("validatingwebhookconfigurations_forbidden_monitor.txt"), 0.1)
    state, words, hint = miss_words(Failure(VALIDATING, TARGET, answer))
    assert (state, words) == (Unknown, "HTTP 403, grant list on validatingwebhookconfigurations "
                                       "(admissionregistration.k8s.io)")
    assert hint.startswith('ValidatingWebhookConfigurations: validatingwebhookconfigurations.admissionregistration.'
                           'k8s.io is forbidden: User "monitor" cannot list')
    assert miss_words(Failure(SLICES, TARGET, Answer("u", 503, "Service Unavailable", "", 0.1)))[0] == Critical


def test_combine_puts_what_was_seen_before_what_could_not_be_looked_at() -> None:
    assert combine([Ok, Unknown]) == Unknown
    assert combine([Critical, Unknown]) == Critical
    assert combine([Unknown, Warn]) == Warn
    assert combine([Ok, Ok]) == Ok
    assert combine([]) == Ok


def test_several_of_one_kind_are_named_in_one_phrase_that_fits_the_room() -> None:
    """SPEC 6c: all of them named when they fit, whole names only, the rest counted; the long output lists each."""
    verdict = judge(Survey(TARGET, apiservices=tuple(METRICS._replace(name=f"v1.g{i}") for i in range(5))))
    full = ("5 aggregated APIs unavailable: v1.g0 (ServiceNotFound), v1.g1 (ServiceNotFound), v1.g2 "
            "(ServiceNotFound), v1.g3 (ServiceNotFound), v1.g4 (ServiceNotFound)")
    assert verdict.problems == (full,)
    assert verdict.words(len(full)) == full
    assert verdict.words(len(full) - 1) == full.rsplit(", ", 1)[0] + " and 1 more"
    assert verdict.words(100) == ("5 aggregated APIs unavailable: v1.g0 (ServiceNotFound), v1.g1 (ServiceNotFound) "
                                  "and 3 more")
    assert verdict.words(20) == "5 aggregated APIs unavailable: v1.g0 (ServiceNotFound) and 4 more"
    assert sum(line.startswith("[-] apiservice v1.g") for _, line in verdict.lines) == 5


def test_one_of_a_kind_keeps_its_whole_sentence_and_kinds_are_fitted_in_turn() -> None:
    one = judge(Survey(TARGET, apiservices=(METRICS,)))
    assert one.problems == ("v1beta1.metrics.k8s.io unavailable: ServiceNotFound: gone",)
    two_kinds = judge(Survey(TARGET, apiservices=(METRICS, METRICS._replace(name="v1.other", reason="Failed"))),
                      policy=Policy(critical=("apiservice/v1.other",)))
    assert two_kinds.problems == ("v1.other unavailable: Failed: gone",
                                  "v1beta1.metrics.k8s.io unavailable: ServiceNotFound: gone")
    assert two_kinds.words(40) == "v1.other unavailable: Failed: gone; and 1 more"


def test_a_survey_that_did_not_finish_is_critical_for_both_parts() -> None:
    from check_k8s_health.checks.blindspots.acquire import unanswered

    late = ReadTimedOut("no answer within the 8 s deadline (-t)")
    verdict = judge(unanswered(TARGET, late))
    assert verdict.state == Critical
    assert verdict.problems == ("webhooks: no answer within the 8 s deadline (-t)",
                                "aggregated APIs: no answer within the 8 s deadline (-t)")
    assert counts(unanswered(TARGET, late)) == []
