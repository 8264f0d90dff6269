"""Running network jobs at once inside a budget.

Work runs in daemon threads: a thread stuck where no timeout reaches (a name lookup) must not keep the plugin
from printing its answer and exiting when the deadline comes. A single job runs inline, so a run that asks one
server one thing pays for no thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Optional, TypeVar, Union

from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import PluginError, ReadTimedOut

T = TypeVar("T")
Result = Union[T, PluginError]


def in_parallel(jobs: Sequence[Callable[[], T]], budget: Deadline,
                enough: Optional[Callable[[T], bool]] = None) -> list[Result[T]]:
    """Run ``jobs`` concurrently; a job still running when ``budget`` is spent counts as a read timeout.

    With ``enough``, stop waiting as soon as one job's result satisfies it (the first server that answers gives
    the member list): the jobs still running are reported as not finished, and left to the daemon threads.
    """
    if len(jobs) == 1:
        return [_guarded(jobs[0])]
    results: list[Optional[Result[T]]] = [None] * len(jobs)
    done = threading.Condition()

    def work(index: int, job: Callable[[], T]) -> None:
        result = _guarded(job)
        with done:
            results[index] = result
            done.notify_all()

    def finished() -> bool:
        if all(result is not None for result in results):
            return True
        return enough is not None and any(result is not None and not isinstance(result, PluginError) and
                                          enough(result) for result in results)

    for index, job in enumerate(jobs):
        threading.Thread(target=work, args=(index, job), daemon=True).start()
    with done:
        done.wait_for(finished, timeout=budget.remaining())
        late = ReadTimedOut(f"no answer within {budget.label}")
        return [late if result is None else result for result in results]


def _guarded(job: Callable[[], T]) -> Result[T]:
    try:
        return job()
    except PluginError as exc:
        return exc
