"""The command line's grammar: every option, its help text (which the Icinga CheckCommand's descriptions repeat),
and the types that refuse bad values as usage errors.

argparse exits 2 (CRITICAL to every consumer) and prints to stderr (merged into Icinga's output, Zabbix's value):
``Parser`` prints on stdout and raises ``UsageError`` instead, which ``cli.main`` turns into one UNKNOWN line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn, Optional, TypeVar

from check_k8s_health import __version__
from check_k8s_health.base.errors import UsageError
from check_k8s_health.model.components import COMPONENTS
from check_k8s_health.model.settings import ENDPOINTS

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
    where.add_argument("--write-probe", action="store_true",
                       help="also renew the plugin's own Lease monitoring/check-k8s-health (a JSON merge patch of "
                            "its renewTime): a refused write is CRITICAL (etcd out of space: database space "
                            "exceeded); perfdata write_time; needs the Lease and the Role "
                            "check-k8s-health-write-probe of deploy/rbac.yaml, the plugin never creates it")
    where.add_argument("--write-lease", type=_lease_ref, metavar="NAMESPACE/NAME",
                       help="with --write-probe (implied): the Lease to renew instead, e.g. one per monitoring host")
    where.add_argument("--etcd-quota", type=_size, metavar="SIZE",
                       help="also judge the size of etcd's database (from /metrics) against its quota, etcd's "
                            "--quota-backend-bytes: 2GiB (etcd's default), 8GiB, 16MiB or bytes; needs the "
                            "ClusterRole check-k8s-health-etcd-size of deploy/rbac.yaml")
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
    judge.add_argument("--write-warning", type=_seconds, metavar="SECONDS",
                       help="with --write-probe: WARNING when the write takes longer than SECONDS")
    judge.add_argument("--write-critical", type=_seconds, metavar="SECONDS",
                       help="with --write-probe: CRITICAL when the write takes longer than SECONDS")
    judge.add_argument("--etcd-warning", type=_percent, metavar="PERCENT",
                       help="with --etcd-quota: WARNING from this share of the quota (default 80)")
    judge.add_argument("--etcd-critical", type=_percent, metavar="PERCENT",
                       help="with --etcd-quota: CRITICAL from this share of the quota (default 95)")
    judge.add_argument("-t", "--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
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
_seconds = _number(float, "a number of seconds", 0.0, 3600.0, low_included=False)
_percent = _number(float, "a percentage", 0.0, 100.0, low_included=False)


def _size(text: str) -> int:
    """etcd's ``--quota-backend-bytes`` as an operator writes it: ``2GiB``, ``8Gi``, ``16MiB``, ``2147483648``.
    Its tables are built here, by the runs that give a size."""
    import re

    # Kubernetes' quantity suffixes: binary (etcd's 2GiB default is 2 Gi), and decimal.
    units = {"": 1, "B": 1, "Ki": 1024, "KiB": 1024, "Mi": 1024**2, "MiB": 1024**2, "Gi": 1024**3, "GiB": 1024**3,
             "Ti": 1024**4, "TiB": 1024**4, "k": 1000, "K": 1000, "KB": 1000, "M": 1000**2, "MB": 1000**2,
             "G": 1000**3, "GB": 1000**3, "T": 1000**4, "TB": 1000**4}
    most = 1024**5  # etcd suggests at most 8 GiB; a quota beyond 1 PiB is a typo

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = match and units.get(match[2])
    if not match or unit is None:
        shown = text if len(text) <= 40 else f"{text[:37]}..."
        raise argparse.ArgumentTypeError(f"{shown!r} is not a size such as 2GiB, 8GiB, 16MiB or 2147483648 (bytes)")
    size = round(float(match[1]) * unit)
    if not 0 < size <= most:
        raise argparse.ArgumentTypeError(f"{text.strip()} is not a quota etcd can have (more than 0, at most 1 PiB)")
    return size


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
