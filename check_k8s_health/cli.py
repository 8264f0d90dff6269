"""The command line: the parser, the run's steps in order (settings, acquisition, presentation), and the one
boundary that turns every failure into a plugin line and an exit code of 0-3. ``command.configure`` turns the
parsed arguments into settings.

argparse exits 2 (CRITICAL to every consumer) and prints to stderr (merged into Icinga's output, Zabbix's value);
nagiosplugin prints tracebacks from ``-v`` and its own ``UNKNOWN: Type: msg`` format. Both are overridden here so
that a user error is ``K8S_HEALTH UNKNOWN - <what to fix>`` and a traceback needs ``-vvv``.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn, Optional, TypeVar

from check_k8s_health import __version__
from check_k8s_health.base.errors import DeadlineExceeded, PluginError, UsageError
from check_k8s_health.model.components import COMPONENTS
from check_k8s_health.model.settings import ENDPOINTS, Settings

if TYPE_CHECKING:
    from check_k8s_health.access.keyfiles import KeyFiles
    from check_k8s_health.base.deadline import Deadline

PREFIX = "K8S_HEALTH"
DEFAULT_TIMEOUT = 8.0

DESCRIPTION = """\
Checks the health endpoints of a Kubernetes API server (/readyz by default, /livez, /healthz) and names every
failed sub-check. The HTTP status decides: 200 is OK, 500 lists the failed sub-checks (CRITICAL), an unreachable
server or a TLS failure is CRITICAL, 401/403/404 and redirects are UNKNOWN with what to do."""

EPILOG = """\
server and credentials, as kubectl finds them:
  server: -s/-H, else the kubeconfig context (--kubeconfig, KUBECONFIG, ~/.kube/config), else in-cluster
  (KUBERNETES_SERVICE_HOST/_PORT). Token: --token-file, else the environment variable K8S_HEALTH_TOKEN, else
  the kubeconfig user (token, tokenFile, exec plugin), else the in-cluster service-account token, else none.
  No option takes a token (argv is visible in ps); a token is never sent over plain http://.

exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for --help, --version and usage errors).

examples:
  check_k8s_health -H 10.0.0.1 --certificate-authority /etc/kubernetes/pki/ca.crt
  check_k8s_health -s https://10.0.0.1:6443 -e livez -e readyz --token-file /etc/nagios/k8s-token -v"""


def _same_on_every_python(message: str) -> str:
    """Python 3.12.8 stopped quoting the names in "(choose from ...)": the quoted form, as Python 3.9 to 3.11 print
    it, stays the plugin's on every Python, so a check's output does not change with the host's upgrade."""
    head, found, choices = message.partition(" (choose from ")
    if not found or not choices.endswith(")") or choices.startswith("'"):
        return message
    return f"{head} (choose from {', '.join(repr(name) for name in choices[:-1].split(', '))})"


class Parser(argparse.ArgumentParser):
    """argparse with plugin manners: everything on stdout, exit 3, errors as one UNKNOWN line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{_same_on_every_python(message)} (see --help)")

    def exit(self, status: int = 0, message: Optional[str] = None) -> NoReturn:
        if message:
            sys.stdout.write(message)
        sys.stdout.flush()
        sys.exit(3)

    def _print_message(self, message: str, file: object = None) -> None:
        if message:
            sys.stdout.write(message)


def build_parser() -> Parser:
    # No abbreviations: "--tim" must not silently mean --timeout, nor break when an option is added later.
    parser = Parser(prog="check_k8s_health", description=DESCRIPTION, epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    where = parser.add_argument_group("server")
    where.add_argument("-s", "--server", action="append", metavar="URL",
                       help="API server URL, e.g. https://10.0.0.1:6443 (a path prefix is kept); repeat it to "
                            "check several servers concurrently")
    where.add_argument("-H", "--hostname", "--host", action="append", metavar="HOST",
                       help="API server host name or address: https://HOST:PORT; repeatable")
    where.add_argument("-p", "--port", type=_port, metavar="PORT",
                       help="port for -H (default 6443, or the --component's)")
    where.add_argument("-e", "--endpoint", action="append", choices=ENDPOINTS, metavar="NAME",
                       help="endpoint to check: readyz (default), livez, healthz, or health (etcd); repeatable")
    where.add_argument("--component", choices=tuple(COMPONENTS), default="apiserver", metavar="NAME",
                       help="what answers: apiserver (default), kube-scheduler, kube-controller-manager, kubelet "
                            "or etcd; presets port, scheme and endpoints")
    where.add_argument("--members", action="store_true",
                       help="check every API server the cluster lists for itself (EndpointSlice default/kubernetes "
                            "and identity Leases), found through the server named; needs the Roles of "
                            "deploy/rbac.yaml")
    where.add_argument("--expect-members", type=_count, metavar="N",
                       help="with --members (implied): how many API servers the control plane should have; "
                            "fewer or more listed is a WARNING")
    where.add_argument("--webhooks", action="store_true",
                       help="also judge the admission webhooks: one whose service has no ready endpoint blocks the "
                            "writes it matches (failurePolicy Fail: CRITICAL) or lets them through unchecked "
                            "(Ignore: WARNING); needs the ClusterRole check-k8s-health-blind-spots of "
                            "deploy/rbac.yaml")
    where.add_argument("--aggregated-apis", action="store_true",
                       help="also judge the aggregated APIs (APIServices backed by a service, e.g. metrics-server): "
                            "one that is not Available is a WARNING; needs the same ClusterRole")
    where.add_argument("--leaders", action="store_true",
                       help="also judge the leader Leases of kube-scheduler and kube-controller-manager (kube-system): "
                            "no holder, or not renewed within its duration by the server's clock, is CRITICAL "
                            "(nothing is scheduled or reconciled); needs the Role check-k8s-health-leaders of "
                            "deploy/rbac.yaml")
    where.add_argument("--leader-lease", action="append", type=_lease_ref, metavar="NAMESPACE/NAME",
                       help="with --leaders (implied): one more leader Lease to judge, e.g. "
                            "kube-system/cloud-controller-manager; repeatable")
    where.add_argument("--min-healthy", type=_count, metavar="N",
                       help="with several servers or --members: CRITICAL when fewer than N are healthy, WARNING "
                            "when any is not (default: the worst server's state)")
    where.add_argument("--exclude", action="append", metavar="CHECK", type=_nonempty("--exclude"),
                       help="ask the server to skip this sub-check (?exclude=CHECK); repeatable")
    auth = parser.add_argument_group("credentials and TLS")
    auth.add_argument("--kubeconfig", metavar="PATH", type=_nonempty("--kubeconfig"),
                      help="kubeconfig to take server, CA and credentials from (default: KUBECONFIG, then "
                           "~/.kube/config, then in-cluster)")
    auth.add_argument("--context", metavar="NAME", type=_nonempty("--context"),
                      help="kubeconfig context to use (default: its current-context)")
    auth.add_argument("--token-file", metavar="PATH", type=_nonempty("--token-file"),
                      help="file holding a bearer token, read on every run")
    auth.add_argument("--certificate-authority", metavar="PATH", type=_nonempty("--certificate-authority"),
                      help="CA bundle that signs the server certificate (verification is on by default)")
    auth.add_argument("--insecure-skip-tls-verify", action="store_true",
                      help="do not verify the server certificate (the status line says so)")
    auth.add_argument("--tls-server-name", metavar="NAME", type=_nonempty("--tls-server-name"),
                      help="name to verify the server certificate against")
    auth.add_argument("--client-certificate", metavar="PATH", type=_nonempty("--client-certificate"),
                      help="client certificate (PEM) for mutual TLS")
    auth.add_argument("--client-key", metavar="PATH", type=_nonempty("--client-key"),
                      help="private key of the client certificate (omit if the certificate file holds it)")
    policy = parser.add_argument_group("sub-check policy (shell-style globs, e.g. 'poststarthook/*')")
    policy.add_argument("--warning-check", action="append", metavar="GLOB", type=_nonempty("--warning-check"),
                        help="a failed sub-check matching GLOB is WARNING instead of CRITICAL; repeatable")
    policy.add_argument("--critical-check", action="append", metavar="GLOB", type=_nonempty("--critical-check"),
                        help="a failed sub-check matching GLOB is CRITICAL even if --warning-check or "
                             "--ignore-check match it; repeatable")
    policy.add_argument("--ignore-check", action="append", metavar="GLOB", type=_nonempty("--ignore-check"),
                        help="a failed sub-check matching GLOB does not change the state (still listed); "
                             "repeatable")
    policy.add_argument("--no-reasons", action="store_true",
                        help="do not ask /<endpoint>/<check> for the reason a sub-check failed")
    judge = parser.add_argument_group("thresholds and output")
    judge.add_argument("-w", "--warning", type=_range, metavar="RANGE",
                       help="response time in seconds that makes a WARNING (Nagios range)")
    judge.add_argument("-c", "--critical", type=_range, metavar="RANGE",
                       help="response time in seconds that makes a CRITICAL (Nagios range)")
    judge.add_argument("--cert-warning", type=_days, metavar="DAYS",
                       help="WARNING when the verified server certificate expires within DAYS")
    judge.add_argument("--cert-critical", type=_days, metavar="DAYS",
                       help="CRITICAL when the verified server certificate expires within DAYS")
    judge.add_argument("-t", "--timeout", type=_timeout, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help=f"overall deadline (default {DEFAULT_TIMEOUT:g})")
    judge.add_argument("--output", choices=("nagios", "json"), default="nagios", metavar="FORMAT",
                       help="nagios (default): the plugin line; json: one JSON document with every server, "
                            "endpoint and sub-check (for Zabbix and scripts); the exit code is the same")
    judge.add_argument("--discover", action="store_true",
                       help="print Zabbix low-level discovery JSON of the sub-checks the server reports")
    judge.add_argument("-v", "--verbose", action="count", default=0,
                       help="-v failed sub-checks, -vv every sub-check and request details, -vvv debug")
    judge.add_argument("-V", "--version", action="version", version=f"check_k8s_health {__version__}")
    return parser


N = TypeVar("N", int, float)


def _number(convert: Callable[[str], N], what: str, low: N, high: N, low_included: bool = True
            ) -> Callable[[str], N]:
    """An argparse type for a number within bounds; NaN and infinity fail the bounds check."""

    def parse(text: str) -> N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not ((low <= value) if low_included else (low < value)) or not value <= high:
            bounds = f"{low:g} to {high:g}" if low_included else f"more than {low:g}, at most {high:g}"
            raise argparse.ArgumentTypeError(f"{text} is not {what} ({bounds})")
        return value

    return parse


_port = _number(int, "a port number", 1, 65535)
_count = _number(int, "a whole number of servers", 1, 1000)
_days = _number(float, "a number of days", 0.0, 36500.0)
_timeout = _number(float, "a number of seconds", 0.0, 3600.0, low_included=False)


def _range(text: str) -> str:
    from nagiosplugin import Range

    if not text.strip():
        raise argparse.ArgumentTypeError("an empty range is not a threshold: give one such as 1, 0.5:2 or ~:3, "
                                         "or leave the option out")
    try:
        Range(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a Nagios range such as 1, 0.5:2 or ~:3") from None
    return text


def _lease_ref(text: str) -> tuple[str, str]:
    """``NAMESPACE/NAME`` as Kubernetes names them: a namespace is a DNS label, a Lease's name a DNS subdomain."""
    import re

    namespace, slash, name = text.partition("/")
    label = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
    if not slash or not re.fullmatch(label, namespace) or len(name) > 253 or \
            not re.fullmatch(rf"{label}(\.{label})*", name):
        shown = text if len(text) <= 40 else f"{text[:37]}..."
        raise argparse.ArgumentTypeError(f"{shown!r} is not NAMESPACE/NAME such as kube-system/cloud-controller-manager"
                                         " (lower-case DNS names)")
    return namespace, name


def _nonempty(option: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{option} must not be empty")
        return text

    return check


def run(settings: Settings, deadline: Deadline) -> NoReturn:
    """Hand over to nagiosplugin; ``Check.main`` prints and exits."""
    import nagiosplugin

    from check_k8s_health.output.context import HealthContext, PerfContext
    from check_k8s_health.output.resource import HealthProbe
    from check_k8s_health.output.summary import HealthSummary

    check = nagiosplugin.Check(HealthProbe(settings, deadline), HealthContext(settings),
                               PerfContext(settings.warning, settings.critical, settings.cert_warning,
                                           settings.cert_critical), HealthSummary(settings.verbose))
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
