"""Presets for the control-plane components that speak the API server's health format (SPEC section 6).

Each preset gives the usual port, scheme and endpoints and says whether credentials are sent; explicit options
win. The kubelet's health port is plain http on 127.0.0.1, so it never gets a token.
"""

from __future__ import annotations

from check_k8s_health.base.record import NamedTuple


class Component(NamedTuple):
    name: str
    port: int
    scheme: str
    endpoints: tuple[str, ...]
    #: Label used in the status line for several servers ("2 of 3 API servers healthy").
    noun: str
    credentials: bool = True
    #: Whether the server can be found in a kubeconfig or in-cluster (only the API server can).
    discoverable: bool = False


COMPONENTS = {
    component.name: component for component in (
        Component("apiserver", 6443, "https", ("readyz",), "API servers", discoverable=True),
        Component("kube-scheduler", 10259, "https", ("healthz",), "schedulers"),
        Component("kube-controller-manager", 10257, "https", ("healthz",), "controller managers"),
        Component("kubelet", 10248, "http", ("healthz",), "kubelets", credentials=False),
        Component("etcd", 2379, "https", ("health",), "etcd members"),
    )
}
