"""One complete HTTP answer as the rest of the plugin sees it: plain data, no requests types.

Kept out of ``client`` so that evaluation and its tests never import requests.
"""

from __future__ import annotations

from typing import Optional

from check_k8s_health.base.record import NamedTuple

#: Where a body is cut (``truncated``), unless a look-up asks for more: a real verbose /readyz body is under 2 KiB,
#: a MiB leaves room for thousands of sub-checks.
MAX_BODY = 1024 * 1024


class Answer(NamedTuple):
    """One complete HTTP answer, status first: the status decides, the body explains."""

    url: str
    status: int
    reason: str
    body: str
    elapsed: float
    truncated: bool = False
    location: Optional[str] = None
    retry_after: Optional[str] = None
    #: The server's clock (``Date`` header): the identity Leases' age is judged by it, not by this host's.
    date: Optional[str] = None
