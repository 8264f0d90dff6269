"""Parsed arguments to frozen settings: the servers and credentials they name, read from the files, kubeconfig
or cluster they point at, and the checks between options that argparse cannot express.

Runs after the deadline is armed: a kubeconfig on a hung NFS mount or an exec plugin that never ends must meet the
``-t`` deadline like any request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

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
    if (args.webhooks or args.aggregated_apis or leaders) and component.name != "apiserver":
        option = "--webhooks" if args.webhooks else "--aggregated-apis" if args.aggregated_apis else "--leaders"
        raise UsageError(f"{option} asks the API server, not {component.name}: leave it out with --component")
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
                    webhooks=args.webhooks, aggregated_apis=args.aggregated_apis, leaders=leaders)


def _leaders(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The Leases ``--leaders`` judges: the defaults, then each ``--leader-lease`` (which implies it), once each."""
    if not (args.leaders or args.leader_lease):
        return ()
    from check_k8s_health.checks.leaders.read import DEFAULT_LEASES

    return tuple(dict.fromkeys([*DEFAULT_LEASES, *(args.leader_lease or ())]))
