"""Decides which server to ask and how: ``-s``/``-H``, a kubeconfig context or in-cluster discovery, with
kubectl's precedence, into one ``Target``."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

from check_k8s_health.access import incluster
from check_k8s_health.access.incluster import in_cluster_url
from check_k8s_health.access.keyfiles import KeyFiles
from check_k8s_health.access.kubeconfig import Choice, candidate_files, load, select
from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import ConfigError, UsageError
from check_k8s_health.model.components import Component
from check_k8s_health.model.settings import MAX_SERVERS, ConnectionOptions, Credential, Target, TlsSettings

DEFAULT_PORT = 6443


def server_url(value: str, option: str = "-s/--server") -> str:
    """Normalise ``-s`` as kubectl does: scheme defaults to https, the port to the scheme's (a Rancher proxy
    URL on 443 must keep working), a path prefix is kept."""
    text = value.strip()
    if not text:
        raise UsageError(f"{option} is empty: give the API server URL, e.g. -s https://10.0.0.1:6443")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{option} {value!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("https", "http"):
        raise UsageError(f"{option} {value!r}: the scheme must be https (or http), not {parts.scheme}")
    if not parts.hostname:
        raise UsageError(f"{option} {value!r} names no host, e.g. -s https://10.0.0.1:6443")
    _check_host(parts.hostname, option)
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{option} must not hold credentials: use --token-file or K8S_HEALTH_TOKEN")
    if parts.query or parts.fragment:
        raise UsageError(f"{option} {value!r} must not have a query or fragment: "
                         "give the server's base URL and choose the endpoint with -e")
    if port == 0:
        raise UsageError(f"{option} {value!r}: port 0 cannot be reached")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def host_url(host: str, port: Optional[int], scheme: str = "https", default_port: int = DEFAULT_PORT) -> str:
    """Build the URL for ``-H``/``-p`` the Nagios way; an IPv6 address gets its brackets."""
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name or any(ch in name for ch in "/?#@ \t") or (name.count(":") and not _is_ipv6(name)):
        raise UsageError(f"-H/--hostname {host!r} is not a host name or address; "
                         "use -s for a full URL, e.g. -s https://10.0.0.1:6443")
    _check_host(name, "-H/--hostname")
    return f"{scheme}://{_bracketed(name)}:{port or default_port}"


def _check_host(name: str, option: str) -> None:
    """DNS limits (63 per label, 253 in all) checked here: urllib3 would fail later with a parse error."""
    if _is_ipv6(name):
        return
    if len(name) > 253 or any(len(label) > 63 for label in name.split(".")):
        raise UsageError(f"{option}: {name[:40]}... is not a valid host name (labels up to 63 characters, "
                         "253 in all)")


def _is_ipv6(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).version == 6
    except ValueError:
        return False


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def resolve_targets(options: ConnectionOptions, environ: Mapping[str, str], keyfiles: KeyFiles,
                    deadline: Deadline, component: Component) -> tuple[Target, ...]:
    """Servers, TLS and credentials by kubectl's rules (SPEC sections 2, 5 and 6).

    Server: ``-s``/``-H`` (each one a target), else the kubeconfig context, else in-cluster; for components
    other than the API server, ``127.0.0.1`` on the component's port. Credentials: ``--token-file`` >
    ``K8S_HEALTH_TOKEN`` > kubeconfig user (token, tokenFile, exec) > in-cluster token > anonymous; none for a
    component that takes none (the kubelet's health port). Explicit TLS options replace the kubeconfig's.
    """
    from check_k8s_health.access.credentials import (
        in_cluster_credential,
        kubeconfig_user_credential,
        resolve_credential,
    )

    explicit = _explicit_servers(options, component)
    discover = component.discoverable or options.kubeconfig is not None
    choice = _kubeconfig_choice(options, environ) if discover else None
    cluster_url = in_cluster_url(environ) if choice is None and component.discoverable else None
    if explicit:
        servers = explicit
    elif choice is not None:
        servers = [(_cluster_server(choice), f"kubeconfig {choice.cluster.origin}, context {choice.context}")]
    elif cluster_url is not None:
        servers = [(cluster_url, "in-cluster (KUBERNETES_SERVICE_HOST)")]
    elif not component.discoverable:
        servers = [(host_url("127.0.0.1", None, component.scheme, component.port), f"--component {component.name}")]
    else:
        raise UsageError("no server named and no kubeconfig found: give -s https://HOST:6443, -H HOST or "
                         "--kubeconfig PATH")
    tls, tls_source = _tls(options, choice, cluster_url, keyfiles, server_overridden=bool(explicit))
    # A component that takes no credentials does not even read them: an unused token file must not fail the run.
    credential = (resolve_credential(options.token_file, environ) if component.credentials
                  else Credential(source=f"none ({component.name} takes no credentials)"))
    if component.credentials and credential.token is None:
        if choice is not None and choice.user is not None:
            credential, tls = kubeconfig_user_credential(choice.user, tls, environ=environ, keyfiles=keyfiles,
                                                         deadline=deadline)
        elif cluster_url is not None and incluster.token_present():
            credential = in_cluster_credential()
    proxy = _proxy(choice) if choice is not None else None
    return tuple(Target(url, source, tls, credential, proxy, tls_source) for url, source in servers)


def _proxy(choice: Choice) -> Optional[str]:
    proxy = choice.cluster.text("proxy-url")
    if proxy is None:
        return None
    where = f"kubeconfig {choice.cluster.origin}: proxy-url of cluster {choice.cluster.name!r}"
    scheme = urlsplit(proxy).scheme
    if scheme not in ("http", "https", "socks5", "socks5h"):
        raise ConfigError(f"{where} must be an http, https or socks5 URL")
    if scheme.startswith("socks"):
        import importlib.util

        if importlib.util.find_spec("socks") is None:
            raise ConfigError(f"{where}: a socks5 proxy needs the PySocks package (pip install PySocks)")
    return proxy


def _explicit_servers(options: ConnectionOptions, component: Component) -> list[tuple[str, str]]:
    if options.servers and options.hosts:
        raise UsageError("give the servers either as -s URL or as -H HOST, not both")
    if options.port is not None and not options.hosts:
        raise UsageError("-p/--port goes with -H/--hostname; with -s put the port in the URL")
    urls = [(server_url(server), "--server") for server in options.servers]
    urls += [(host_url(host, options.port, component.scheme, component.port), "--hostname")
             for host in options.hosts]
    unique = list(dict.fromkeys(urls))
    if len(unique) > MAX_SERVERS:
        raise UsageError(f"{len(unique)} servers in one run is too many (at most {MAX_SERVERS})")
    return unique


def _kubeconfig_choice(options: ConnectionOptions, environ: Mapping[str, str]) -> Optional[Choice]:
    paths, explicit = candidate_files(options.kubeconfig, environ)
    merged = load(paths, explicit)
    if not merged.files or not (options.context or merged.current_context or explicit):
        if options.context:
            raise ConfigError(f'context "{options.context}" does not exist: no kubeconfig file was found '
                              f"({', '.join(paths)})")
        return None
    return select(merged, options.context)


def _cluster_server(choice: Choice) -> str:
    server = choice.cluster.text("server")
    if server is None:
        raise ConfigError(f"kubeconfig {choice.cluster.origin}: cluster {choice.cluster.name!r} has no server")
    try:
        return server_url(server, f"the server of cluster {choice.cluster.name!r} in {choice.cluster.origin}")
    except UsageError as exc:
        raise ConfigError(str(exc)) from None


def _tls(options: ConnectionOptions, choice: Optional[Choice], cluster_url: Optional[str], keyfiles: KeyFiles,
         server_overridden: bool) -> tuple[TlsSettings, str]:
    if options.insecure and options.ca_file:
        raise UsageError("--insecure-skip-tls-verify and --certificate-authority exclude each other: "
                         "verify with the CA, or do not verify")
    if options.client_key and not options.client_cert:
        raise UsageError("--client-key needs --client-certificate")
    given = options.ca_file or options.insecure or options.tls_server_name
    ca_file, insecure, server_name = options.ca_file, options.insecure, options.tls_server_name
    source = "command line" if given else "defaults"
    ca_origin = "--certificate-authority"
    if choice is not None:
        cluster = choice.cluster
        where = f"kubeconfig {cluster.origin}: cluster {cluster.name!r}"
        if not (options.ca_file or options.insecure):
            # client-go replaces CA file, CA data and the insecure flag together when any is given as a flag.
            data = cluster.text("certificate-authority-data")
            ca_file = (keyfiles.write_base64("ca.crt", data, f"{where}: certificate-authority-data") if data
                       else cluster.path("certificate-authority"))
            ca_origin = f"{'certificate-authority-data' if data else f'certificate-authority {ca_file}'} of " \
                        f"cluster {cluster.name!r} in {cluster.origin}"
            insecure = cluster.flag("insecure-skip-tls-verify")
            if insecure and ca_file:
                raise ConfigError(f"{where}: insecure-skip-tls-verify together with a certificate authority is "
                                  "not allowed (as in kubectl): remove one")
            source = f"kubeconfig {cluster.origin}"
        if server_name is None and not server_overridden:
            server_name = cluster.text("tls-server-name")
    elif cluster_url is not None and not (options.ca_file or options.insecure) and incluster.ca_present():
        ca_file, source, ca_origin = incluster.CA_PATH, "in-cluster", f"in-cluster CA {incluster.CA_PATH}"
    return TlsSettings(not insecure, ca_file, server_name, options.client_cert, options.client_key,
                       ca_origin=ca_origin), source
