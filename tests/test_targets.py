"""Server URLs from -s and -H/-p, and the token sources, as kubectl users expect them."""

from __future__ import annotations

from pathlib import Path

import pytest

from check_k8s_health.access.credentials import resolve_credential
from check_k8s_health.base.errors import ConfigError, UsageError
from check_k8s_health.command.targets import host_url, server_url


@pytest.mark.parametrize(("given", "url"), [
    ("https://10.0.0.1:6443", "https://10.0.0.1:6443"),
    ("https://10.0.0.1:6443/", "https://10.0.0.1:6443"),
    ("10.0.0.1:6443", "https://10.0.0.1:6443"),
    ("https://rancher.example/k8s/clusters/c-1", "https://rancher.example/k8s/clusters/c-1"),
    ("https://[fd00::1]:6443", "https://[fd00::1]:6443"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
])
def test_server_url(given: str, url: str) -> None:
    assert server_url(given) == url


@pytest.mark.parametrize("given", ["", "ftp://h", "https://", "https://u:p@h", "https://h/?a=b", "https://h:99999",
                                   "https://h:0"])
def test_server_url_rejects(given: str) -> None:
    with pytest.raises(UsageError):
        server_url(given)


@pytest.mark.parametrize(("host", "port", "url"), [
    ("10.0.0.1", None, "https://10.0.0.1:6443"),
    ("cp-1.example", 443, "https://cp-1.example:443"),
    ("fd00::1", None, "https://[fd00::1]:6443"),
    ("[fd00::1]", 6443, "https://[fd00::1]:6443"),
])
def test_host_url(host: str, port: int, url: str) -> None:
    assert host_url(host, port) == url


@pytest.mark.parametrize("host", ["", "a/b", "h:6443", "a b", "user@h"])
def test_host_url_rejects(host: str) -> None:
    with pytest.raises(UsageError):
        host_url(host, None)


def test_credential_precedence(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    from_file = resolve_credential(str(token_file), {"K8S_HEALTH_TOKEN": "from-env"})
    from_env = resolve_credential(None, {"K8S_HEALTH_TOKEN": " from-env "})
    nothing = resolve_credential(None, {"K8S_HEALTH_TOKEN": "  "})
    assert from_file.token is not None and from_file.token.reveal() == "from-file"
    assert from_env.token is not None and from_env.token.reveal() == "from-env"
    assert (nothing.token, nothing.source) == (None, "anonymous")
    assert "from-file" not in repr(from_file) and "from-env" not in str(from_env)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"), (b"\x00\xff\xfe", "binary data"), (b"two words", "spaces or control characters"),
    (b"x" * (65 * 1024), "larger than 64 KiB"),
])
def test_bad_token_files(tmp_path: Path, content: bytes, message: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as caught:
        resolve_credential(str(token_file), {})
    assert "two words" not in str(caught.value)


def test_token_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        resolve_credential(str(tmp_path), {})
