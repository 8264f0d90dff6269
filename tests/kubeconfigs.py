"""Builds kubeconfig files for tests with the real ``kubectl config`` commands, as operators make them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _find_kubectl() -> str | None:
    """The kubectl binary itself. Google Cloud SDK installs a dispatcher as ``kubectl`` that asks the server in
    the current context for its version; its versioned siblings (``kubectl.1.32``) are plain kubectl."""
    found = shutil.which("kubectl")
    if found is None:
        return None
    folder = Path(os.path.realpath(found)).parent
    versioned = sorted(folder.glob("kubectl.1.*"), key=lambda path: int(path.name.rsplit(".", 1)[-1]))
    return str(versioned[-1]) if versioned else found


KUBECTL = _find_kubectl()


def kubectl(config: Path, *args: str) -> None:
    """Run ``kubectl config ...`` against one file; offline, it never contacts a server."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed (tests/run installs Debian's kubernetes-client)")
    subprocess.run([KUBECTL, "--kubeconfig", str(config), "config", *args], check=True, capture_output=True,
                   timeout=30, stdin=subprocess.DEVNULL)


def token_kubeconfig(config: Path, server: str, ca_file: str, token: str, *, context: str = "ctx",
                     cluster: str = "cluster", user: str = "user", embed: bool = False) -> Path:
    embed_flag = ["--embed-certs"] if embed else []
    kubectl(config, "set-cluster", cluster, f"--server={server}", f"--certificate-authority={ca_file}", *embed_flag)
    kubectl(config, "set-credentials", user, f"--token={token}")
    kubectl(config, "set-context", context, f"--cluster={cluster}", f"--user={user}")
    kubectl(config, "use-context", context)
    return config
