"""The one overall time budget of a run (``-t``), and the shares of it that single stages may spend.

Network waits are sized from what is left of it, so a slow server ends as a CRITICAL read timeout with a clear
cause. Anything the sizes cannot bound (a name lookup, a token "file" that is a FIFO nobody writes) is cut by
SIGALRM, which raises ``DeadlineExceeded`` naming the phase the run was in: that is the plugin's own failure and
so UNKNOWN. nagiosplugin's own timeout is not used: it cannot say what was being waited for, and it prints its
own line format.

A share (``Deadline.share``) ends before the whole: the member lookup must leave time to check the members, and
a reason look-up must end while its endpoint's verdict can still be reported.
"""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Optional

from check_k8s_health.base.errors import DeadlineExceeded

#: Time kept back from every network wait so the answer can still be judged and printed inside the deadline.
RESERVE = 0.25
#: How much earlier each nested wait ends (see ``Deadline.step``).
STEP = 0.15


class Deadline:
    """Wall-clock budget with a label for what the run is currently waiting on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds
        #: A tenth of a short deadline, at most ``RESERVE``.
        self._reserve = min(RESERVE, seconds / 10)
        self.phase = "starting"
        self._whole = self
        #: How messages name this budget: "did not answer within <label>".
        self.label = f"the {seconds:g} s deadline (-t)"

    def step(self) -> float:
        """How much earlier an inner wait ends than the one around it, so that what the inner one finished
        reaches the outer one in time: a fraction of a second, a twentieth of a short deadline."""
        return min(STEP, self._whole.seconds / 20)

    def inner(self) -> Deadline:
        """This budget less one ``step``: for the waits nested inside the one this budget bounds."""
        return self.share(self.remaining() - self.step())

    def remaining(self) -> float:
        """Seconds a network wait may still take, keeping the reserve back for the output."""
        return max(0.0, self._end - time.monotonic() - self._reserve)

    def share(self, seconds: float, purpose: Optional[str] = None) -> Deadline:
        """A budget that ends ``seconds`` from now, or with this one's network time if that comes first;
        ``purpose`` names it in messages ("the member lookup"), else it speaks as this one.

        It cannot be armed: the alarm belongs to the whole run, and ``enter`` still tells the whole run what
        it is waiting for.
        """
        part = Deadline.__new__(Deadline)
        part._end = min(time.monotonic() + max(0.0, seconds), self._end - self._reserve)
        part._reserve = 0.0
        part._whole = self._whole
        part.seconds = max(0.0, part._end - time.monotonic())
        part.phase = ""
        part.label = (f"{part.seconds:.1f} s ({purpose}'s share of -t {self._whole.seconds:g})"
                      if purpose else self.label)
        return part

    def enter(self, phase: str) -> None:
        self._whole.phase = phase

    def arm(self) -> None:
        if self._whole is not self:
            raise RuntimeError("only the whole run's deadline is armed")
        signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, max(0.001, self._end - time.monotonic()))

    def disarm(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)

    def _fire(self, signum: int, frame: Optional[FrameType]) -> None:
        raise DeadlineExceeded(self.seconds, self.phase)
