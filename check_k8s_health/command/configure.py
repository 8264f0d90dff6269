"""Parsed arguments to frozen settings: the servers and credentials they name, read from the files, kubeconfig
or cluster they point at, and the checks between options that argparse cannot express.

Runs after the deadline is armed: a kubeconfig on a hung NFS mount or an exec plugin that never ends must meet the
``-t`` deadline like any request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Optional, cast

from check_k8s_health.base.errors import UsageError
from check_k8s_health.model.components import COMPONENTS
from check_k8s_health.model.settings import ConnectionOptions, Settings

if TYPE_CHECKING:
    import argparse

    from check_k8s_health.access.keyfiles import KeyFiles
    from check_k8s_health.base.deadline import Deadline

#: Servers commonly refuse request lines beyond 8 KiB; the real sub-check names are short.
MAX_EXCLUDES = 4096


def build_settings(args: argparse.Namespace, environ: Mapping[str, str], keyfiles: KeyFiles,
                   deadline: Deadline) -> Settings:
    """Turn parsed arguments into settings, reading the files they name (the deadline is already running)."""
    from check_k8s_health.access.tlsfiles import check_tls_files
    from check_k8s_health.command.targets import resolve_targets
    from check_k8s_health.model.policy import Policy

    component = COMPONENTS[args.component]

    options = ConnectionOptions(
        servers=tuple(args.server or ()), hosts=tuple(args.hostname or ()), port=args.port,
        kubeconfig=args.kubeconfig, context=args.context, token_file=args.token_file,
        ca_file=args.certificate_authority, insecure=args.insecure_skip_tls_verify,
        tls_server_name=args.tls_server_name, client_cert=args.client_certificate, client_key=args.client_key)
    members = args.members or args.expect_members is not None
    if members and component.name != "apiserver":
        raise UsageError(f"--members lists API servers only, not {component.name} instances: give each with -s")
    leaders = _leaders(args)
    write_lease = _write_lease(args)
    asked = [option for option, given in (("--webhooks", args.webhooks), ("--aggregated-apis", args.aggregated_apis),
                                          ("--leaders", leaders), ("--write-probe", write_lease),
                                          ("--etcd-quota", args.etcd_quota)) if given]
    if asked and component.name != "apiserver":
        raise UsageError(f"{asked[0]} asks the API server, not {component.name}: leave it out with --component")
    _thresholds(args, write_lease is not None)
    targets = resolve_targets(options, environ, keyfiles, deadline, component)
    if args.min_healthy is not None and args.min_healthy > len(targets) and not members:
        raise UsageError(f"--min-healthy {args.min_healthy} asks for more healthy servers than the {len(targets)} "
                         "given")
    if any(not target.plain_http for target in targets):
        deadline.enter("reading the TLS files")
        check_tls_files(targets[0].tls, parse_ca=False)  # every target shares the TLS settings
    excludes = tuple(dict.fromkeys(args.exclude or []))
    if sum(len(name) + len("&exclude=") for name in excludes) > MAX_EXCLUDES:
        raise UsageError(f"the --exclude names add up to more than {MAX_EXCLUDES // 1024} KiB, more than a URL "
                         "should carry: name the sub-checks to skip, not other text")
    policy = Policy(tuple(args.critical_check or ()), tuple(args.warning_check or ()), tuple(args.ignore_check or ()))
    return Settings(targets=targets, endpoints=tuple(dict.fromkeys(args.endpoint or component.endpoints)),
                    excludes=excludes, warning=args.warning,
                    critical=args.critical, timeout=args.timeout, verbose=min(args.verbose, 3), policy=policy,
                    reasons=not args.no_reasons, min_healthy=args.min_healthy, cert_warning=args.cert_warning,
                    cert_critical=args.cert_critical, component=component, members=members,
                    expect_members=args.expect_members, member_server_name=args.tls_server_name,
                    webhooks=args.webhooks, aggregated_apis=args.aggregated_apis, leaders=leaders,
                    write_lease=write_lease, write_warning=args.write_warning, write_critical=args.write_critical,
                    etcd_quota=args.etcd_quota, etcd_warning=80.0 if args.etcd_warning is None else args.etcd_warning,
                    etcd_critical=95.0 if args.etcd_critical is None else args.etcd_critical)


def _leaders(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The Leases ``--leaders`` judges: the defaults, then each ``--leader-lease`` (which implies it), once each."""
    if not (args.leaders or args.leader_lease):
        return ()
    from check_k8s_health.checks.leaders.read import DEFAULT_LEASES

    return tuple(dict.fromkeys([*DEFAULT_LEASES, *(args.leader_lease or ())]))


def _write_lease(args: argparse.Namespace) -> Optional[tuple[str, str]]:
    """The Lease ``--write-probe`` renews: ``--write-lease`` (which implies it), else the one rbac.yaml ships."""
    if args.write_lease is not None:
        return cast("tuple[str, str]", args.write_lease)
    if not args.write_probe:
        return None
    from check_k8s_health.checks.writes.read import PROBE_LEASE

    return PROBE_LEASE


def _thresholds(args: argparse.Namespace, write_probe: bool) -> None:
    """Thresholds of a check that was not asked for judge nothing: said, not silently dropped."""
    for option, value, needs, given in (("--write-warning", args.write_warning, "--write-probe", write_probe),
                                        ("--write-critical", args.write_critical, "--write-probe", write_probe),
                                        ("--etcd-warning", args.etcd_warning, "--etcd-quota SIZE",
                                         args.etcd_quota is not None),
                                        ("--etcd-critical", args.etcd_critical, "--etcd-quota SIZE",
                                         args.etcd_quota is not None)):
        if value is not None and not given:
            raise UsageError(f"{option} judges nothing without {needs}: add it or leave {option} out")
    for kind, warning, critical, default in (("write", args.write_warning, args.write_critical, None),
                                             ("etcd", args.etcd_warning, args.etcd_critical, (80.0, 95.0))):
        low = warning if warning is not None else default[0] if default else None
        high = critical if critical is not None else default[1] if default else None
        if low is not None and high is not None and low > high:
            raise UsageError(f"--{kind}-warning {low:g} is above --{kind}-critical {high:g}: the warning must come "
                             "first")
