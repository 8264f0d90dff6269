"""What one run was asked to do, fixed once the command line and files are read.

Every object here is frozen and passed into constructors: nothing downstream reads ``argv`` or the environment,
so each stage can be tested alone and no module holds state between runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

ENDPOINTS = ("livez", "readyz", "healthz")


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


@dataclass(frozen=True)
class TlsSettings:
    verify: bool = True
    #: CA bundle to verify the server against; ``None`` means the system's trust store.
    ca_file: Optional[str] = None
    #: Name to verify the server certificate against (and send as SNI) when the URL holds an address.
    server_name: Optional[str] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None


@dataclass(frozen=True)
class Credential:
    token: Optional[Secret] = None
    #: Where the token came from, for ``-vv`` and for 401 hints ("--token-file /etc/k8s-token"); never the value.
    source: str = "anonymous"


@dataclass(frozen=True)
class Target:
    """One server to ask: base URL (scheme, host, port and any path prefix, no trailing slash)."""

    url: str
    source: str
    tls: TlsSettings
    credential: Credential

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


@dataclass(frozen=True)
class Settings:
    target: Target
    endpoints: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    #: Response-time ranges in seconds, Nagios range syntax, validated by the parser.
    warning: Optional[str] = None
    critical: Optional[str] = None
    timeout: float = 8.0
    verbose: int = 0
