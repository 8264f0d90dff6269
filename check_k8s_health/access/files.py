"""Reads the small files a run depends on (token files, kubeconfigs) with a size bound and one wording.

A path given by mistake may be a directory, a huge log or a FIFO; the bound keeps memory small, the deadline
covers the FIFO, and every failure is a sentence that names the file and what to check.
"""

from __future__ import annotations

import os

from check_k8s_health.base.errors import ConfigError


def read_small_file(path: str, what: str, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``; ``what`` names the file in messages ("token file", "kubeconfig")."""
    try:
        if os.path.isdir(path):
            raise ConfigError(f"{what} {path} is a directory: give the file")
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}; check the path and that the "
                          "monitoring user may read it") from None
    if len(data) > limit:
        size = f"{limit // 1024 // 1024} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
        raise ConfigError(f"{what} {path} is larger than {size}: check the path")
    return data
