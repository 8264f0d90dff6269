"""``checks.shared.read.parsed``: the one way a look-up's answer becomes its record, or the ``Failure`` that says why
it holds nothing usable (the member list, the blind spots and the leader Leases all read through it)."""

from __future__ import annotations

import pytest

from check_k8s_health.checks.shared.read import Failure, json_object, parsed
from check_k8s_health.model.settings import Credential, Target, TlsSettings
from check_k8s_health.transport.answer import Answer

VIA = Target("https://127.0.0.1:6443", "-s", TlsSettings(), Credential())
BODY = '{"kind": "Lease", "spec": {}}'


def _answer(status: int = 200, body: str = BODY, truncated: bool = False) -> Answer:
    return Answer(f"{VIA.url}/apis/x", status, "OK" if status == 200 else "Forbidden", body, 0.01, truncated)


def test_a_readable_answer_is_its_record() -> None:
    assert parsed(_answer(), "Lease a/b", VIA, lambda text: json_object(text, "Lease")) == json_object(BODY, "Lease")


def test_another_status_keeps_the_answer_for_the_judging() -> None:
    answer = _answer(403, "forbidden")
    assert parsed(answer, "Lease a/b", VIA, str) == Failure("Lease a/b", VIA, answer)


@pytest.mark.parametrize(("limit", "why"), [(1024 * 1024, "it is larger than 1 MiB"),
                                           (16 * 1024 * 1024, "it is larger than 16 MiB")])
def test_a_cut_body_names_the_limit_it_was_read_with(limit: int, why: str) -> None:
    found = parsed(_answer(truncated=True), "APIServices", VIA, str, limit)
    assert isinstance(found, Failure) and found.why == why


def test_text_the_parser_refuses_says_why() -> None:
    found = parsed(_answer(body="<html>"), "Lease a/b", VIA, lambda text: json_object(text, "Lease"))
    assert isinstance(found, Failure) and (found.why, found.answer) == ("it is not JSON", _answer(body="<html>"))
