"""Turns ``-s URL`` or ``-H HOST -p PORT`` into the base URL of the server to ask.

Kept apart from the parser because kubeconfig and in-cluster discovery will produce the same ``Target``.
"""

from __future__ import annotations

import ipaddress
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

from check_k8s_health.errors import UsageError

DEFAULT_PORT = 6443


def server_url(value: str) -> str:
    """Normalise ``-s`` as kubectl does: scheme defaults to https, the port to the scheme's (a Rancher proxy
    URL on 443 must keep working), a path prefix is kept."""
    text = value.strip()
    if not text:
        raise UsageError("-s/--server is empty: give the API server URL, e.g. -s https://10.0.0.1:6443")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"-s/--server {value!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("https", "http"):
        raise UsageError(f"-s/--server {value!r}: the scheme must be https (or http), not {parts.scheme}")
    if not parts.hostname:
        raise UsageError(f"-s/--server {value!r} names no host, e.g. -s https://10.0.0.1:6443")
    if parts.username is not None or parts.password is not None:
        raise UsageError("-s/--server must not hold credentials: use --token-file or K8S_HEALTH_TOKEN")
    if parts.query or parts.fragment:
        raise UsageError(f"-s/--server {value!r} must not have a query or fragment: "
                         "give the server's base URL and choose the endpoint with -e")
    if port == 0:
        raise UsageError(f"-s/--server {value!r}: port 0 cannot be reached")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def host_url(host: str, port: Optional[int]) -> str:
    """Build the URL for ``-H``/``-p`` the Nagios way; an IPv6 address gets its brackets."""
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name or any(ch in name for ch in "/?#@ \t") or (name.count(":") and not _is_ipv6(name)):
        raise UsageError(f"-H/--hostname {host!r} is not a host name or address; "
                         "use -s for a full URL, e.g. -s https://10.0.0.1:6443")
    return f"https://{_bracketed(name)}:{port or DEFAULT_PORT}"


def _is_ipv6(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).version == 6
    except ValueError:
        return False


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
