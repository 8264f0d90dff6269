"""Loads the TLS files once before any connection.

A wrong path, a file that is no certificate, or a key that does not match its certificate is a configuration
error (UNKNOWN, with the option to fix), not an outage: inside a handshake it would surface as a CRITICAL TLS
failure and page someone for a typo.
"""

from __future__ import annotations

import os
import ssl

from check_k8s_health.errors import ConfigError
from check_k8s_health.settings import TlsSettings


def check_tls_files(tls: TlsSettings) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls.ca_file is not None:
        _readable(tls.ca_file, "--certificate-authority")
        try:
            context.load_verify_locations(cafile=tls.ca_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(f"--certificate-authority {tls.ca_file} holds no usable PEM certificate "
                              f"({_why(exc)}): give the cluster CA, e.g. /etc/kubernetes/pki/ca.crt") from None
    if tls.client_cert is not None:
        _readable(tls.client_cert, "--client-certificate")
        if tls.client_key is not None:
            _readable(tls.client_key, "--client-key")
        try:
            # A callback instead of OpenSSL's prompt: an encrypted key must fail, not wait for a terminal.
            context.load_cert_chain(tls.client_cert, tls.client_key, password=_no_password)
        except (ssl.SSLError, OSError, ValueError) as exc:
            key = f" and --client-key {tls.client_key}" if tls.client_key else " (no --client-key given)"
            raise ConfigError(f"cannot use --client-certificate {tls.client_cert}{key}: {_why(exc)}; give a PEM "
                              "certificate and its unencrypted private key") from None


def _readable(path: str, option: str) -> None:
    if os.path.isdir(path):
        raise ConfigError(f"{option} {path} is a directory: give the PEM file")
    if not os.access(path, os.R_OK):
        why = "does not exist" if not os.path.exists(path) else "is not readable by this user"
        raise ConfigError(f"{option} {path} {why}: check the path and its permissions")


def _no_password() -> str:
    return ""


def _why(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return str(getattr(exc, "strerror", None) or exc)
