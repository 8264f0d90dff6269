"""The command line: the run's steps in order (arguments, settings, acquisition, presentation), and the one
boundary that turns every failure into a plugin line and an exit code of 0-3. ``command.parser`` holds the
options, ``command.configure`` turns the parsed arguments into settings.

nagiosplugin prints tracebacks from ``-v`` and its own ``UNKNOWN: Type: msg`` format; it is overridden here so
that a user error is ``K8S_HEALTH UNKNOWN - <what to fix>`` and a traceback needs ``-vvv``.
"""

from __future__ import annotations

import gc
import io
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn, Optional

from check_k8s_health.base.errors import DeadlineExceeded, PluginError
from check_k8s_health.command.parser import build_parser
from check_k8s_health.model.settings import Settings

if TYPE_CHECKING:
    from check_k8s_health.access.keyfiles import KeyFiles
    from check_k8s_health.base.deadline import Deadline

__all__ = ["build_parser", "main"]

PREFIX = "K8S_HEALTH"


def run(settings: Settings, deadline: Deadline) -> NoReturn:
    """Hand over to nagiosplugin; ``Check.main`` prints and exits."""
    import nagiosplugin

    from check_k8s_health.output.context import HealthContext, PerfContext
    from check_k8s_health.output.resource import HealthProbe
    from check_k8s_health.output.summary import HealthSummary

    check = nagiosplugin.Check(HealthProbe(settings, deadline), HealthContext(settings),
                               PerfContext(settings), HealthSummary(settings.verbose))
    check.name = "k8s_health"  # after construction: nagiosplugin 1.3 (Debian 12) has no name= argument
    check.main(verbose=settings.verbose, timeout=0)  # the deadline is ours: see base/deadline.py
    raise AssertionError("nagiosplugin's Check.main returned")


def run_machine(settings: Settings, deadline: Deadline, discover: bool) -> NoReturn:
    """``--output json`` and ``--discover``: the same engine and assessment, one JSON document, same exit code."""
    from check_k8s_health.output.machine import discovery_document, report_document
    from check_k8s_health.run.assessment import assess_run
    from check_k8s_health.run.engine import acquire

    assessment = assess_run(acquire(settings, deadline), settings)
    deadline.disarm()
    document = discovery_document(assessment) if discover else report_document(assessment, settings)
    sys.stdout.write(document + "\n")
    sys.stdout.flush()
    sys.exit(assessment.state.code)


def main(argv: Optional[Sequence[str]] = None, environ: Optional[Mapping[str, str]] = None) -> NoReturn:
    # A run lasts well under a second and leaves few reference cycles: the cyclic collector would only rescan
    # what requests and the plugin import, and collect once more over everything at exit (about 4 % of a run's
    # instructions in all). The process ends right after this call and frees everything anyway.
    gc.disable()
    _quiet_stderr()
    machine = wants_json(sys.argv[1:] if argv is None else argv)
    verbose = 0
    deadline: Optional[Deadline] = None
    keyfiles: Optional[KeyFiles] = None
    try:
        args = build_parser().parse_args(argv)
        verbose = min(args.verbose, 3)
        from check_k8s_health.access.keyfiles import KeyFiles
        from check_k8s_health.base.deadline import Deadline

        deadline = Deadline(args.timeout)
        deadline.arm()
        deadline.enter("reading the kubeconfig and credentials")
        keyfiles = KeyFiles()
        from check_k8s_health.command.configure import build_settings

        settings = build_settings(args, os.environ if environ is None else environ, keyfiles, deadline)
        if machine:
            run_machine(settings, deadline, discover=args.discover)
        run(settings, deadline)
    except SystemExit:
        raise
    except DeadlineExceeded as exc:
        _disarm(deadline)
        _finish(3, _late(str(exc), exc.seconds), machine=machine)
    except PluginError as exc:
        _disarm(deadline)
        _finish(exc.exit_code, str(exc), machine=machine)
    except Exception as exc:  # the last net: never a traceback unless -vvv asked for it
        _disarm(deadline)
        late = _deadline_inside(exc)
        if late is not None:  # the alarm hit inside a class body or import and came back wrapped
            _finish(3, _late(str(late), late.seconds), machine=machine)
        details = traceback.format_exc() if verbose >= 3 else ""
        _finish(3, f"internal error: {type(exc).__name__}: {exc}; run with -vvv and report it", details,
                machine=machine)
    finally:
        _disarm(deadline)
        if keyfiles is not None:
            keyfiles.remove()  # embedded keys never outlive the run, whatever ended it


def _late(message: str, seconds: float) -> str:
    """The deadline's own words, after the monitoring host's when it gave the plugin no CPU in time."""
    from check_k8s_health.transport.starvation import cpu_wait, overloaded

    starved = overloaded(cpu_wait(), seconds)
    return f"{starved}; {message}" if starved else message


def _deadline_inside(exc: BaseException) -> Optional[DeadlineExceeded]:
    """Python wraps an exception raised while a class is built (``__set_name__``) in RuntimeError: SIGALRM can
    strike there during a lazy import, and the deadline must still read as the deadline."""
    seen: set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, DeadlineExceeded):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _disarm(deadline: Optional[Deadline]) -> None:
    if deadline is not None:
        deadline.disarm()


def _finish(code: int, message: str, details: str = "", machine: Optional[str] = None) -> NoReturn:
    from check_k8s_health.base.text import one_line

    state = ("OK", "WARNING", "CRITICAL", "UNKNOWN")[code]
    head = f"{PREFIX} {state} - "
    if machine:
        from check_k8s_health.output.machine import failure_document

        sys.stdout.write(failure_document(code, one_line(message, 400), machine == "discover") + "\n")
    else:
        sys.stdout.write(head + one_line(message, 200 - len(head)) + "\n")
    if details:
        sys.stdout.write(details.replace("|", "/"))
    sys.stdout.flush()
    sys.exit(code)


def _quiet_stderr() -> None:
    """Nothing may reach stderr: Icinga 2 merges it into the output, Zabbix into the item value. A stray
    library warning is dropped instead; arguments that are not valid UTF-8 print escaped instead of crashing."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    sys.stderr = io.StringIO()


def wants_json(argv: Sequence[str]) -> Optional[str]:
    """``json`` or ``discover`` when the command line asks for a machine format, looked up before parsing so
    that even a parse error is answered in the format the caller reads."""
    mode = None
    for index, arg in enumerate(argv):
        if arg == "--discover":
            return "discover"
        if arg == "--output=json" or (arg == "--output" and argv[index + 1:index + 2] == ["json"]):
            mode = "json"
    return mode
