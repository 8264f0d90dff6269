"""Runs a kubeconfig ``exec`` credential plugin (the ExecCredential protocol, v1 and v1beta1).

Managed clusters (EKS, GKE, AKS) hand out kubeconfigs whose user is such a plugin. A monitoring run has no
terminal and a deadline, so the plugin runs without stdin, in its own process group (killed whole when time runs
out, so a helper it started cannot keep the run waiting), and its stderr is dropped: it is not ours to show.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from typing import Any, Optional

from check_k8s_health.access.kubeconfig import Entry
from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import ConfigError
from check_k8s_health.base.record import NamedTuple

API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
MAX_OUTPUT = 1024 * 1024


class ExecResult(NamedTuple):
    token: Optional[str]
    client_cert_pem: Optional[str]
    client_key_pem: Optional[str]


def run_exec_plugin(user: Entry, environ: Mapping[str, str], deadline: Deadline) -> ExecResult:
    config = user.fields.get("exec")
    where = f"exec plugin of user {user.name!r} in {user.origin}"
    if not isinstance(config, dict):
        raise ConfigError(f"{where} must be a mapping")
    api_version = config.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise ConfigError(f"{where}: apiVersion {api_version!r} is not supported; use {API_VERSIONS[0]}")
    mode = config.get("interactiveMode", "IfAvailable" if api_version.endswith("v1beta1") else None)
    if mode not in ("Never", "IfAvailable", "Always"):
        raise ConfigError(f"{where}: interactiveMode must be Never, IfAvailable or Always")
    if mode == "Always":
        raise ConfigError(f"{where} needs a terminal (interactiveMode: Always); a monitoring check has none: "
                          "use a plugin that works non-interactively, or a token")
    command = _command(config, user, where)
    args = config.get("args") or []
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise ConfigError(f"{where}: args must be a list of strings")
    info = {"kind": "ExecCredential", "apiVersion": api_version, "spec": {"interactive": False}}
    env = dict(environ)
    pairs = config.get("env") or []
    if not isinstance(pairs, list):
        raise ConfigError(f"{where}: env must be a list of name/value pairs")
    for item in pairs:
        if not (isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("value"), str)):
            raise ConfigError(f"{where}: env must be a list of name/value pairs")
        env[item["name"]] = item["value"]
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    deadline.enter(f"running the exec credential plugin {command}")
    output = _run([command, *args], env, deadline, where)
    return _parse(output, api_version, where)


def _command(config: Mapping[str, Any], user: Entry, where: str) -> str:
    command = config.get("command")
    if not isinstance(command, str) or not command:
        raise ConfigError(f"{where} names no command")
    if os.sep in command and not os.path.isabs(command):
        # client-go: a relative path with a separator is relative to the kubeconfig file's folder.
        command = os.path.join(os.path.dirname(os.path.abspath(user.origin)), command)
    elif os.sep not in command:
        found = shutil.which(command)
        if found is None:
            hint = config.get("installHint")
            extra = f" ({' '.join(hint.split())[:120]})" if isinstance(hint, str) and hint else ""
            raise ConfigError(f"{where}: command {command!r} is not on PATH{extra}")
        command = found
    return command


def _run(argv: list[str], env: Mapping[str, str], deadline: Deadline, where: str) -> bytes:
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,  # noqa: S603
                                   stderr=subprocess.DEVNULL, env=dict(env), start_new_session=True)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    name = os.path.basename(argv[0])
    try:
        output, _ = process.communicate(timeout=max(0.001, deadline.remaining()))
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{where}: {name} gave no credential within the {deadline.seconds:g} s deadline "
                          "(-t)") from None
    finally:
        if process.poll() is None:
            _kill_group(process)
    if process.returncode != 0:
        raise ConfigError(f"{where}: {name} exited with status {process.returncode}")
    return output[:MAX_OUTPUT]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()
    process.wait()


def _parse(output: bytes, api_version: str, where: str) -> ExecResult:
    try:
        document = json.loads(output)
    except (ValueError, RecursionError):
        raise ConfigError(f"{where}: its output is not an ExecCredential (not JSON)") from None
    if not isinstance(document, dict) or document.get("kind") != "ExecCredential":
        raise ConfigError(f"{where}: its output is not an ExecCredential")
    if document.get("apiVersion") != api_version:
        raise ConfigError(f"{where}: it answered apiVersion {document.get('apiVersion')!r}, expected {api_version}")
    status = document.get("status")
    if not isinstance(status, dict):
        raise ConfigError(f"{where}: its ExecCredential has no status")
    token = status.get("token") or None
    cert, key = status.get("clientCertificateData") or None, status.get("clientKeyData") or None
    if not all(value is None or isinstance(value, str) for value in (token, cert, key)):
        raise ConfigError(f"{where}: token, clientCertificateData and clientKeyData must be strings")
    if (cert is None) != (key is None):
        raise ConfigError(f"{where}: clientCertificateData and clientKeyData come together or not at all")
    if token is None and cert is None:
        raise ConfigError(f"{where}: its ExecCredential holds neither a token nor a client certificate")
    return ExecResult(token, cert, key)
