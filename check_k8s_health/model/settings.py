"""What one run was asked to do, fixed once the command line and files are read.

Every object here is frozen and passed into constructors: nothing downstream reads ``argv`` or the environment,
so each stage can be tested alone and no module holds state between runs.
"""

from __future__ import annotations

from typing import Optional

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.model.components import COMPONENTS, Component
from check_k8s_health.model.policy import Policy

#: ``health`` is etcd's JSON endpoint; the others are the Kubernetes health endpoints.
ENDPOINTS = ("livez", "readyz", "healthz", "health")
#: One run checks a control plane, not a fleet: more servers belong in more services (-s, or --members).
MAX_SERVERS = 16


class Secret:
    """A bearer token that cannot leak through ``str``, ``repr``, f-strings or tracebacks' locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('<redacted>')"

    __str__ = __repr__


class TlsSettings(NamedTuple):
    verify: bool = True
    #: CA bundle to verify the server against; ``None`` means the system's trust store.
    ca_file: Optional[str] = None
    #: Name to verify the server certificate against (and send as SNI) when the URL holds an address.
    server_name: Optional[str] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None
    #: Where the CA and the client certificate were named, for messages: "--certificate-authority" or
    #: "certificate-authority-data of cluster 'k3s' in /etc/rancher/k3s/k3s.yaml" (its file is temporary).
    ca_origin: str = "--certificate-authority"
    cert_origin: str = "--client-certificate"


class Credential(NamedTuple):
    token: Optional[Secret] = None
    #: Where the token came from, for ``-vv`` and 401 hints ("--token-file /etc/k8s-token"); never the value.
    source: str = "anonymous"
    #: The ``exp`` claim of a JWT token (seconds since the epoch), to name expiry as the cause of a 401.
    expires: Optional[int] = None
    #: The file that held the token, when one did: a token file every local user can read is worth a warning.
    path: Optional[str] = None


class Target(NamedTuple):
    """One server to ask: base URL (scheme, host, port and any path prefix, no trailing slash)."""

    url: str
    source: str
    tls: TlsSettings
    credential: Credential
    #: ``proxy-url`` of a kubeconfig cluster; otherwise the usual proxy variables of the environment apply.
    proxy: Optional[str] = None
    #: Where TLS settings and the client certificate came from, for ``-vv``.
    tls_source: str = "command line"

    @property
    def name(self) -> str:
        """host:port as the operator knows the server, for status lines about several servers."""
        return self.url.split("://", 1)[-1].split("/", 1)[0]

    @property
    def plain_http(self) -> bool:
        return self.url.startswith("http://")

    @property
    def token_withheld(self) -> bool:
        """A token exists but the scheme would expose it, so it is not sent."""
        return self.plain_http and self.credential.token is not None

    @property
    def sends_token(self) -> bool:
        return self.credential.token is not None and not self.plain_http


class ConnectionOptions(NamedTuple):
    """The connection options exactly as given on the command line, before kubeconfig and in-cluster fill gaps."""

    servers: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    port: Optional[int] = None
    kubeconfig: Optional[str] = None
    context: Optional[str] = None
    token_file: Optional[str] = None
    ca_file: Optional[str] = None
    insecure: bool = False
    tls_server_name: Optional[str] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None


class Settings(NamedTuple):
    targets: tuple[Target, ...]
    endpoints: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    #: Response-time ranges in seconds, Nagios range syntax, validated by the parser.
    warning: Optional[str] = None
    critical: Optional[str] = None
    timeout: float = 8.0
    verbose: int = 0
    policy: Policy = Policy()
    reasons: bool = True
    min_healthy: Optional[int] = None
    cert_warning: Optional[float] = None
    cert_critical: Optional[float] = None
    component: Component = COMPONENTS["apiserver"]
    #: ``--members``: check every API server the cluster lists for itself, found through the targets.
    members: bool = False
    #: ``--expect-members``: how many API servers the control plane should have.
    expect_members: Optional[int] = None
    #: The name members are verified against: only ``--tls-server-name`` itself, never a kubeconfig's (that
    #: one names the server asked, usually a load balancer); otherwise each member is verified by its address.
    member_server_name: Optional[str] = None
    #: ``--webhooks``, ``--aggregated-apis``: judge what the health endpoints cannot see (SPEC section 6b).
    webhooks: bool = False
    aggregated_apis: bool = False
    #: ``--leaders``, ``--leader-lease``: the leader Leases to judge, (namespace, name) each; empty when not asked
    #: (SPEC section 6c).
    leaders: tuple[tuple[str, str], ...] = ()
    #: ``--write-probe``, ``--write-lease``: the plugin's own Lease to renew, (namespace, name); None when not asked.
    write_lease: Optional[tuple[str, str]] = None
    #: ``--write-warning``, ``--write-critical``: seconds the write may take.
    write_warning: Optional[float] = None
    write_critical: Optional[float] = None
    #: ``--etcd-quota``: etcd's ``--quota-backend-bytes`` in bytes; None when not asked.
    etcd_quota: Optional[int] = None
    #: ``--etcd-warning``, ``--etcd-critical``: percentages of the quota.
    etcd_warning: float = 80.0
    etcd_critical: float = 95.0

    @property
    def lookups(self) -> bool:
        """Asked once per run beside the endpoints: anything but the endpoints and the member list."""
        return self.blind_spots or bool(self.leaders) or self.write_lease is not None or self.etcd_quota is not None

    @property
    def blind_spots(self) -> bool:
        return self.webhooks or self.aggregated_apis

    @property
    def target(self) -> Target:
        """The first (for one server: the only) target."""
        return self.targets[0]
