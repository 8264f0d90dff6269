"""The one overall time budget of a run (``-t``).

Network waits are sized from what is left of it, so a slow server ends as a CRITICAL read timeout with a clear
cause. Anything the sizes cannot bound (a name lookup, a token "file" that is a FIFO nobody writes) is cut by
SIGALRM, which raises ``DeadlineExceeded`` naming the phase the run was in: that is the plugin's own failure and
so UNKNOWN. nagiosplugin's own timeout is not used: it cannot say what was being waited for, and it prints its
own line format.
"""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Optional

from check_k8s_health.errors import DeadlineExceeded

#: Time kept back from every network wait so the answer can still be judged and printed inside the deadline.
RESERVE = 0.25


class Deadline:
    """Wall-clock budget with a label for what the run is currently waiting on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds
        self.phase = "starting"

    def remaining(self) -> float:
        """Seconds a network wait may still take, keeping ``RESERVE`` (a tenth of a short deadline) back for
        the output."""
        return max(0.0, self._end - time.monotonic() - min(RESERVE, self.seconds / 10))

    def enter(self, phase: str) -> None:
        self.phase = phase

    def arm(self) -> None:
        signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, max(0.001, self._end - time.monotonic()))

    def disarm(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)

    def _fire(self, signum: int, frame: Optional[FrameType]) -> None:
        raise DeadlineExceeded(self.seconds, self.phase)
