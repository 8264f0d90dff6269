"""A private folder for key material that the TLS library can only read from files.

Kubeconfigs embed the CA, client certificate and key as base64 (``*-data``), and exec plugins return them in
JSON, but Python's ``ssl`` loads certificates and keys from paths only. The folder is created 0700 only when
needed, each file 0600, and the folder is removed on every way out of the run (``cli.main`` owns it).
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import tempfile
from typing import Optional

from check_k8s_health.base.errors import ConfigError


class KeyFiles:
    def __init__(self) -> None:
        self._folder: Optional[str] = None

    def write(self, name: str, data: bytes) -> str:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="check_k8s_health-")  # 0700 by definition
        path = os.path.join(self._folder, name)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        return path

    def write_base64(self, name: str, text: str, what: str) -> str:
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{what} is not valid base64") from None
        return self.write(name, data)

    def remove(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
