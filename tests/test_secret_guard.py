"""The suite-wide secret guard in ``conftest.run_plugin`` must see every place a token can come from."""

from __future__ import annotations

from pathlib import Path

from conftest import _secrets_of
from fakeapi import FakeApiServer, healthy_routes


def test_guard_collects_tokens_from_every_source(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token-123\n")
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("users:\n- name: u\n  user:\n    token: kubeconfig-token-456\n")
    with FakeApiServer(healthy_routes(), token="server-token-789"):
        pass
    secrets = _secrets_of(["--token-file", str(token_file), "--kubeconfig", str(kubeconfig)],
                          {"K8S_HEALTH_TOKEN": " env-token-000 "})
    assert {"file-token-123", "kubeconfig-token-456", "server-token-789", "env-token-000"} <= secrets


def test_guard_reads_kubeconfig_lists(tmp_path: Path) -> None:
    first = tmp_path / "a"
    first.write_text("users:\n- name: u\n  user: {token: 'listed-token-42'}\n")
    secrets = _secrets_of([], {"KUBECONFIG": f"{tmp_path / 'missing'}:{first}"})
    assert "listed-token-42" in secrets  # flow style, as hand-written files have it
    block = tmp_path / "b"
    block.write_text("users:\n- name: u\n  user:\n    token: \"quoted-token-42\"\n")
    assert "quoted-token-42" in _secrets_of([], {"KUBECONFIG": str(block)})
