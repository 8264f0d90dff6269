"""How long this process waited for a CPU: a monitoring host too busy to run the plugin is not a sick API server.

Measured with one icinga2 on two cores: 48 plugin runs started together against a healthy server that answered at
once, and 35 said CRITICAL ("no connection within the 5 s deadline", "did not answer within", "did not finish its
answer"): the plugins got no CPU in time, the server was fine. The kernel counts, per thread, the time a runnable
thread spent waiting in the run queue (``run_delay``, the second field of ``/proc/self/task/*/schedstat``, in
nanoseconds, the interpreter's start-up included). When that wait took a large share of ``-t``, a deadline that
ran out says more about this host than about the server, and the state is UNKNOWN naming the monitoring host. A
slow server on an idle host keeps its CRITICAL: the plugin then waited for the network, not for a CPU.
"""

from __future__ import annotations

import os
from typing import Optional

#: The share of ``-t`` spent waiting for a CPU from which a deadline that ran out is the monitoring host's doing,
#: and the least wait that counts at all (with ``-t 0.001`` any wait is a quarter of it, and proves nothing).
SHARE = 0.25
LEAST = 0.5


def cpu_wait() -> Optional[float]:
    """Seconds this process's live threads spent runnable but not running; ``None`` where the kernel does not say
    (no /proc, or a kernel without scheduler statistics)."""
    total = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    found = False
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/schedstat", "rb") as stats:
                fields = stats.read().split()
        except OSError:
            continue  # a thread that ended meanwhile
        if len(fields) >= 2 and fields[1].isdigit():
            total += int(fields[1])
            found = True
    return total / 1e9 if found else None


def overloaded(waited: Optional[float], seconds: float) -> str:
    """The words for a deadline that ran out because the monitoring host gave the plugin no CPU, or ""."""
    if waited is None or waited < max(SHARE * seconds, LEAST):
        return ""
    return f"the monitoring host is overloaded: waited {waited:.1f} s for CPU of the {seconds:g} s deadline"
