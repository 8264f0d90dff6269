"""Loads the TLS files once before any connection.

A wrong path, a file that is no certificate, or a key that does not match its certificate is a configuration
error (UNKNOWN, with the option to fix), not an outage: inside a handshake it would surface as a CRITICAL TLS
failure and page someone for a typo.
"""

from __future__ import annotations

import os
import ssl

from check_k8s_health.base.errors import ConfigError
from check_k8s_health.model.settings import TlsSettings


def check_tls_files(tls: TlsSettings, parse_ca: bool = True) -> None:
    """``parse_ca=False`` (before the first request) leaves a CA that is a regular file, with no client
    certificate to load, to the TLS library, which parses it on connecting anyway: a TLS context of its own here
    would be paid on every run. ``run.engine.collect`` runs the whole check when a request fails."""
    if tls.ca_file is None and tls.client_cert is None:
        return
    if tls.ca_file is not None:
        _readable(tls.ca_file, _named(tls.ca_origin, tls.ca_file))
        if not parse_ca and tls.client_cert is None and os.path.isfile(tls.ca_file):
            return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls.ca_file is not None:
        ca = _named(tls.ca_origin, tls.ca_file)
        try:
            context.load_verify_locations(cafile=tls.ca_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(f"{ca} holds no usable PEM certificate ({_why(exc)}): give the cluster CA, e.g. "
                              "/etc/kubernetes/pki/ca.crt") from None
    if tls.client_cert is not None:
        cert = _named(tls.cert_origin, tls.client_cert)
        _readable(tls.client_cert, cert)
        if tls.client_key is not None:
            _readable(tls.client_key, _named(tls.cert_origin.replace("certificate", "key"), tls.client_key))
        try:
            # A callback instead of OpenSSL's prompt: an encrypted key must fail, not wait for a terminal.
            context.load_cert_chain(tls.client_cert, tls.client_key, password=_no_password)
        except (ssl.SSLError, OSError, ValueError) as exc:
            if tls.client_key is None and "PEM lib" in str(exc):
                why = "it holds no private key: give --client-key"
            elif "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
                why = "the key does not belong to the certificate"
            else:
                why = f"{_why(exc)}: give a PEM certificate and its unencrypted key"
            raise ConfigError(f"cannot use {cert}: {why}") from None


def _named(origin: str, path: str) -> str:
    """``--client-certificate /x`` for options; a kubeconfig origin as it is (its files are temporary)."""
    return f"{origin} {path}" if origin.startswith("--") else origin


def _readable(path: str, label: str) -> None:
    """``label`` names the file as the user knows it ("--certificate-authority /etc/k8s/ca.crt")."""
    if os.path.isdir(path):
        raise ConfigError(f"{label} is a directory: give the PEM file")
    try:
        os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{label} does not exist: check the path") from None
    except OSError as exc:
        raise ConfigError(f"{label} cannot be reached ({exc.strerror}): check the permissions of its folders for "
                          "the monitoring user") from None
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{label} is not readable by this user: check its permissions")


def _no_password() -> str:
    return ""


def _why(exc: Exception) -> str:
    if "PEM lib" in str(exc):
        return "not PEM, or the key is missing or encrypted"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        reason = str(exc.reason).lower().replace("_", " ")
        return "not PEM, or the key is missing or encrypted" if reason == "pem lib" else reason
    return str(getattr(exc, "strerror", None) or exc)
