"""A look-up of API objects that gave nothing usable: plain data, handed from acquisition to evaluation.

The member list and the blind spots ask the API for objects, not for health, and fail the same ways; both keep
what went wrong in this one record, and ``verdict.failure_words`` says what it means.
"""

from __future__ import annotations

from typing import Optional

from check_k8s_health.base.errors import PluginError
from check_k8s_health.base.record import NamedTuple
from check_k8s_health.model.settings import Target
from check_k8s_health.transport.answer import Answer


class Failure(NamedTuple):
    """Why a look-up gave nothing usable: no answer (``error``), or an answer that could not be used (its
    status, or ``why`` its body could not be read)."""

    #: What was asked, as messages name it: "EndpointSlice default/kubernetes", "APIServices".
    what: str
    target: Target
    answer: Optional[Answer] = None
    error: Optional[PluginError] = None
    why: str = ""
