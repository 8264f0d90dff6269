"""Where a bearer token comes from: a token file (read fresh each run) or ``K8S_HEALTH_TOKEN``.

No option takes a token itself: ``argv`` is visible to every local user in ``ps``. A token that could not be a
header value is refused here, because requests' own error for it would quote the header, token included.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Optional

from check_k8s_health.errors import ConfigError
from check_k8s_health.settings import Credential, Secret

TOKEN_ENV = "K8S_HEALTH_TOKEN"  # noqa: S105 (the variable's name, not a secret)
#: Real service-account JWTs are about 1 KiB; anything far beyond this is the wrong file, not a token.
MAX_TOKEN_BYTES = 64 * 1024
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


def resolve_credential(token_file: Optional[str], environ: Mapping[str, str]) -> Credential:
    """``--token-file`` beats ``K8S_HEALTH_TOKEN`` beats anonymous, as SPEC section 2 orders them."""
    if token_file is not None:
        return Credential(_checked(read_token_file(token_file), f"--token-file {token_file}"),
                          f"--token-file {token_file}")
    value = environ.get(TOKEN_ENV)
    if value is not None and value.strip():
        return Credential(_checked(value.strip(), TOKEN_ENV), TOKEN_ENV)
    return Credential()


def read_token_file(path: str) -> str:
    try:
        if os.path.isdir(path):
            raise ConfigError(f"token file {path} is a directory: give the file that holds the token")
        with open(path, "rb") as handle:
            data = handle.read(MAX_TOKEN_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror or exc}; "
                          "check the path and that the monitoring user may read it") from None
    if len(data) > MAX_TOKEN_BYTES:
        raise ConfigError(f"token file {path} is larger than {MAX_TOKEN_BYTES // 1024} KiB: "
                          "that is not a bearer token, check the path")
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"token file {path} holds binary data, not a bearer token") from None
    if not text:
        raise ConfigError(f"token file {path} is empty: write the token into it "
                          "(kubectl create token SA or a service-account-token Secret)")
    return text


def _checked(token: str, source: str) -> Secret:
    if not _TOKEN_CHARS.fullmatch(token):
        raise ConfigError(f"the token from {source} contains spaces or control characters: "
                          "a bearer token is one word of printable characters")
    return Secret(token)
