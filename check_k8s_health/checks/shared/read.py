"""What every look-up of API objects reads alike: a JSON object of the kind asked for, Kubernetes' MicroTime and
the server's ``Date`` (Leases are judged by the server's clock, never this host's), and the record of a look-up
that gave nothing usable, handed from acquisition to evaluation.

The member list and the blind spots ask the API for objects, not for health, and fail the same ways; both keep
what went wrong in this one record, and ``judge.failure_words`` says what it means.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Optional, TypeVar, Union

from check_k8s_health.base.errors import PluginError
from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.model.settings import Target
from check_k8s_health.transport.answer import MAX_BODY, Answer


class Failure(NamedTuple):
    """Why a look-up gave nothing usable: no answer (``error``), or an answer that could not be used (its
    status, or ``why`` its body could not be read)."""

    #: What was asked, as messages name it: "EndpointSlice default/kubernetes", "APIServices".
    what: str
    target: Target
    answer: Optional[Answer] = None
    error: Optional[PluginError] = None
    why: str = ""


T = TypeVar("T")


def parsed(answer: Answer, what: str, target: Target, parse: Callable[[str], T],
           limit: int = MAX_BODY) -> Union[T, Failure]:
    """What an answer holds, or the ``Failure`` that says why it holds nothing usable: its status, a body cut at
    ``limit`` (the one the request was made with), or text that ``parse`` refused with a ``ValueError``."""
    if answer.status != 200:
        return Failure(what, target, answer)
    if answer.truncated:
        return Failure(what, target, answer, why=f"it is larger than {limit // (1024 * 1024)} MiB")
    try:
        return parse(answer.body)
    except ValueError as exc:
        return Failure(what, target, answer, why=str(exc))


def json_object(text: str, kind: str) -> Mapping[str, Any]:
    """A JSON object of that ``kind`` (or of none named), else ``ValueError`` saying what came instead."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("it is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError("it is not a JSON object")
    if document.get("kind") not in (kind, None):
        article = "an" if kind[:1] in "AEIOU" else "a"
        raise ValueError(f"it is a {one_line(str(document.get('kind')), 40)}, not {article} {kind}")
    return document


_MICRO_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d\d):(\d\d))")


def micro_time(text: str) -> Optional[float]:
    """Kubernetes' MicroTime ("2026-11-29T19:40:14.397013Z") as seconds since the epoch."""

    match = _MICRO_TIME.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, sign, offset_hours, offset_minutes = match.groups()[6:]
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    offset = 0 if sign is None else (int(offset_hours) * 3600 + int(offset_minutes) * 60) * (1 if sign == "+" else -1)
    return moment.timestamp() + float(f"0.{fraction or 0}") - offset


def http_date(text: Optional[str]) -> Optional[float]:
    from email.utils import mktime_tz, parsedate_tz

    parsed = parsedate_tz(text) if text else None
    if parsed is None:
        return None
    try:
        return float(mktime_tz(parsed))
    except (OverflowError, ValueError):
        return None
