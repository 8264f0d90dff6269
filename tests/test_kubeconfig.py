"""client-go's kubeconfig rules as plain function calls: file choice, merging, context selection, paths."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from check_k8s_health.access.credentials import jwt_expiry
from check_k8s_health.access.incluster import in_cluster_url
from check_k8s_health.access.kubeconfig import candidate_files, load, select
from check_k8s_health.base.errors import ConfigError


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_candidate_files() -> None:
    assert candidate_files("/x", {"KUBECONFIG": "/a:/b"}) == (["/x"], True)
    assert candidate_files(None, {"KUBECONFIG": "/a::/b:/a"}) == (["/a", "/b"], False)
    assert candidate_files(None, {"HOME": "/home/n"}) == (["/home/n/.kube/config"], False)


def test_merge_first_definition_wins_whole_and_first_non_empty_current_context(tmp_path: Path) -> None:
    first = write(tmp_path / "a", "current-context: ''\nclusters:\n- name: c\n  cluster: {server: 'https://one'}\n")
    second = write(tmp_path / "b", "current-context: ctx\nclusters:\n- name: c\n  cluster: {server: 'https://two', "
                                   "certificate-authority: ca.crt}\ncontexts:\n- name: ctx\n  context: {cluster: c}\n")
    third = write(tmp_path / "c", "current-context: later\n")
    merged = load([first, str(tmp_path / "missing"), second, third], explicit=False)
    assert merged.files == [first, second, third]
    assert merged.current_context == "ctx"
    choice = select(merged, None)
    assert choice.cluster.fields == {"server": "https://one"}  # not merged field by field with the second file
    assert choice.cluster.origin == first and choice.user is None


def test_relative_paths_resolve_against_the_defining_file(tmp_path: Path) -> None:
    folder = tmp_path / "sub"
    folder.mkdir()
    config = write(folder / "config", "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k}\n"
                                      "clusters:\n- name: k\n  cluster: {server: 'https://h', "
                                      "certificate-authority: pki/ca.crt}\n")
    choice = select(load([config], explicit=True), None)
    assert choice.cluster.path("certificate-authority") == str(folder / "pki" / "ca.crt")


def test_empty_file_contributes_nothing(tmp_path: Path) -> None:
    merged = load([write(tmp_path / "empty", "")], explicit=True)
    assert (merged.files, merged.contexts) == ([str(tmp_path / "empty")], {})
    with pytest.raises(ConfigError, match="no current-context set"):
        select(merged, None)


@pytest.mark.parametrize(("text", "words"), [
    ("contexts:\n- name: c\n  context: [1]\n", "context of 'c' must be a mapping"),
    ("current-context: 5\n", "current-context must be a string"),
    ("current-context: c\ncontexts:\n- name: c\n  context: {cluster: 7}\n", "cluster of 'c' must be a string"),
    ("current-context: c\ncontexts:\n- name: c\n  context: {}\n", "names no cluster"),
])
def test_wrong_types(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        select(load([write(tmp_path / "k", text)], explicit=True), None)


def _jwt(payload: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.sig"


@pytest.mark.parametrize(("token", "exp"), [
    (_jwt({"exp": 1764151200}), 1764151200), (_jwt({"iss": "kubernetes/serviceaccount"}), None),
    (_jwt({"exp": "soon"}), None), (_jwt({"exp": True}), None), (_jwt([1]), None), ("not-a-jwt", None),
    ("a.!!!.c", None),
])
def test_jwt_expiry(token: str, exp: object) -> None:
    assert jwt_expiry(token) == exp


@pytest.mark.parametrize(("environ", "url"), [
    ({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "https://10.96.0.1:443"),
    ({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, "https://[fd00::1]:443"),
    ({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, None),
    ({}, None),
])
def test_in_cluster_url(environ: dict[str, str], url: object) -> None:
    assert in_cluster_url(environ) == url
