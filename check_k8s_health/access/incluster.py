"""In-cluster mode: a check running in a pod finds the API server and its credentials as client-go does.

The service-account paths are fixed by Kubernetes; the token is read on every run because the kubelet rotates it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Optional

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_PATH = SERVICE_ACCOUNT + "/token"
CA_PATH = SERVICE_ACCOUNT + "/ca.crt"


def in_cluster_url(environ: Mapping[str, str]) -> Optional[str]:
    """``https://host:port`` from ``KUBERNETES_SERVICE_HOST``/``_PORT`` (both needed), IPv6 bracketed."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "").strip()
    port = environ.get("KUBERNETES_SERVICE_PORT", "").strip()
    if not host or not port:
        return None
    return f"https://{f'[{host}]' if ':' in host else host}:{port}"


def token_present() -> bool:
    return os.path.exists(TOKEN_PATH)


def ca_present() -> bool:
    return os.path.exists(CA_PATH)
