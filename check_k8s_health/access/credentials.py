"""Where a bearer token comes from, and what it says about itself.

No option takes a token itself: ``argv`` is visible to every local user in ``ps``. A token that could not be a
header value is refused here, because requests' own error for it would quote the header, token included. The
``exp`` claim of a JWT is read without checking the signature: only to name expiry as the cause of a 401.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Optional

from check_k8s_health.access.files import read_small_file
from check_k8s_health.access.incluster import TOKEN_PATH
from check_k8s_health.access.keyfiles import KeyFiles
from check_k8s_health.access.kubeconfig import Entry
from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import ConfigError
from check_k8s_health.model.settings import Credential, Secret, TlsSettings

TOKEN_ENV = "K8S_HEALTH_TOKEN"  # noqa: S105 (the variable's name, not a secret)
#: Real service-account JWTs are about 1 KiB; anything far beyond this is the wrong file, not a token.
MAX_TOKEN_BYTES = 64 * 1024


def resolve_credential(token_file: Optional[str], environ: Mapping[str, str]) -> Credential:
    """``--token-file`` beats ``K8S_HEALTH_TOKEN``; an empty credential means "look further" (kubeconfig, ...)."""
    if token_file is not None:
        return token_credential(read_token_file(token_file), f"--token-file {token_file}", token_file)
    value = environ.get(TOKEN_ENV)
    if value is not None and value.strip():
        return token_credential(value.strip(), TOKEN_ENV)
    return Credential()


def token_credential(token: str, source: str, path: Optional[str] = None) -> Credential:
    return Credential(_checked(token, source), source, jwt_expiry(token), path)


def jwt_expiry(token: str) -> Optional[int]:
    """The ``exp`` claim of a JWT, or None for tokens that are no JWT or never expire (legacy Secret tokens)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return int(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) and 0 < exp < 2**40 else None


def read_token_file(path: str, what: str = "token file") -> str:
    data = read_small_file(path, what, MAX_TOKEN_BYTES).removeprefix(b"\xef\xbb\xbf")  # editors' UTF-8 BOM
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} holds binary data, not a bearer token") from None
    if not text:
        raise ConfigError(f"{what} {path} is empty: write the token into it "
                          "(kubectl create token SA or a service-account-token Secret)")
    return text


def _checked(token: str, source: str) -> Secret:
    if not (token and token.isascii() and token.isprintable() and " " not in token):  # all of \x21-\x7e
        raise ConfigError(f"the token from {source} contains spaces or control characters: "
                          "a bearer token is one word of printable characters")
    return Secret(token)


def kubeconfig_user_credential(user: Entry, tls: TlsSettings, *, environ: Mapping[str, str], keyfiles: KeyFiles,
                               deadline: Deadline) -> tuple[Credential, TlsSettings]:
    """A kubeconfig user's token (``tokenFile`` wins, re-read; ``token`` is the fallback), client certificate
    (``*-data`` wins) and, only when it has neither, its exec plugin; flags given for the certificate win."""
    where = f"kubeconfig {user.origin}: user {user.name!r}"
    for unsupported, words in (("auth-provider", "auth-provider plugins (removed from kubectl) are not "
                                                 "supported: use an exec plugin or a token"),
                               ("username", "basic authentication is not supported: use a token"),
                               ("password", "basic authentication is not supported: use a token")):
        if user.fields.get(unsupported):
            raise ConfigError(f"{where}: {words}")
    token, source = user.text("token"), f"kubeconfig {user.origin}, user {user.name}"
    path: Optional[str] = user.origin
    token_file = user.path("tokenFile")
    if token_file is not None:
        try:
            token, source = read_token_file(token_file, "tokenFile"), f"tokenFile {token_file} ({where})"
            path = token_file
        except ConfigError:
            if token is None:  # client-go falls back to token when the file cannot be read
                raise
    cert, key, cert_origin = tls.client_cert, tls.client_key, tls.cert_origin
    if cert is None:
        cert_origin = f"the client certificate of user {user.name!r} in {user.origin}"
        cert_data, key_data = user.text("client-certificate-data"), user.text("client-key-data")
        cert = (keyfiles.write_base64("client.crt", cert_data, f"{where}: client-certificate-data") if cert_data
                else user.path("client-certificate"))
        key = (keyfiles.write_base64("client.key", key_data, f"{where}: client-key-data") if key_data
               else user.path("client-key"))
        if (cert is None) != (key is None):
            raise ConfigError(f"{where}: a client certificate needs its key (client-certificate and client-key "
                              "come together)")
    if token is None and cert is None and user.fields.get("exec"):
        from check_k8s_health.access.execplugin import run_exec_plugin

        result = run_exec_plugin(user, environ, deadline)
        token, source, path = result.token, f"exec plugin ({where})", None
        if result.client_cert_pem and result.client_key_pem:
            cert = keyfiles.write("exec-client.crt", result.client_cert_pem.encode())
            key = keyfiles.write("exec-client.key", result.client_key_pem.encode())
            cert_origin = f"the client certificate from the exec plugin of user {user.name!r}"
    credential = token_credential(token, source, path) if token is not None else Credential()
    return credential, tls._replace(client_cert=cert, client_key=key, cert_origin=cert_origin)


def in_cluster_credential() -> Credential:
    token = read_token_file(TOKEN_PATH, "service-account token")
    return token_credential(token, f"in-cluster service-account token {TOKEN_PATH}")
