"""Kubeconfig, in-cluster and exec credentials end to end: files written by the real ``kubectl config``, the
installed plugin as a subprocess, a real HTTPS server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import run_plugin
from fakeapi import ConnectProxy, FakeApiServer, healthy_routes
from kubeconfigs import kubectl, token_kubeconfig

OK = "K8S_HEALTH OK - readyz: all 33 sub-checks passed"
TOKEN = "kc-secret-token"


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer(healthy_routes(), token=TOKEN, anonymous=False) as server:
        yield server


def _auth(server: FakeApiServer) -> list[str | None]:
    return [seen.header("Authorization") for seen in server.requests]


def test_kubectl_written_kubeconfig_with_relative_ca_from_another_directory(api: FakeApiServer,
                                                                           tmp_path: Path) -> None:
    folder = tmp_path / "kube"
    folder.mkdir()
    shutil.copy(api.ca_file, folder / "ca.crt")
    config = token_kubeconfig(folder / "config", api.url, str(folder / "ca.crt"), TOKEN)
    assert "certificate-authority: ca.crt" in config.read_text()  # kubectl stored it relative
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    run = run_plugin("--kubeconfig", str(config), "-vv")
    assert (run.code, run.first_line) == (0, OK)
    assert _auth(api) == [f"Bearer {TOKEN}"]
    assert f"server: {api.url} (from kubeconfig {config}, context ctx)" in run.long_output
    assert f"credentials: bearer token from kubeconfig {config}, user user" in run.long_output
    assert TOKEN not in run.stdout


def test_embedded_ca_and_client_certificate(tmp_path: Path) -> None:
    with FakeApiServer(healthy_routes(), require_client_cert=True) as server:
        cert, key = server.issue_client_cert(tmp_path)
        config = tmp_path / "config"
        kubectl(config, "set-cluster", "k3s", f"--server={server.url}", f"--certificate-authority={server.ca_file}",
                "--embed-certs")
        kubectl(config, "set-credentials", "admin", f"--client-certificate={cert}", f"--client-key={key}",
                "--embed-certs")
        kubectl(config, "set-context", "default", "--cluster=k3s", "--user=admin")
        kubectl(config, "use-context", "default")
        text = config.read_text()
        assert "certificate-authority-data:" in text and "client-key-data:" in text
        os.remove(cert)
        os.remove(key)
        private_tmp = tmp_path / "tmp"
        private_tmp.mkdir()
        run = run_plugin("--kubeconfig", str(config), env={"TMPDIR": str(private_tmp)})
        assert (run.code, run.first_line) == (0, OK)
        assert list(private_tmp.iterdir()) == []  # the key written for the TLS library is gone


def test_kubeconfig_environment_merge_first_file_wins(api: FakeApiServer, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    # The first file defines the context and the user; the second defines a cluster of the same name too.
    kubectl(first, "set-cluster", "shared", f"--server={api.url}", f"--certificate-authority={api.ca_file}")
    kubectl(first, "set-credentials", "user", f"--token={TOKEN}")
    kubectl(first, "set-context", "ctx", "--cluster=shared", "--user=user")
    kubectl(second, "set-cluster", "shared", "--server=https://127.0.0.1:1")
    kubectl(second, "set-credentials", "user", "--token=second-file-token")
    kubectl(second, "set-context", "other", "--cluster=shared", "--user=user")
    kubectl(second, "set", "current-context", "ctx")  # current-context lives in the second file only
    missing = tmp_path / "missing"
    listed = os.pathsep.join([str(missing), str(first), str(second)])
    run = run_plugin(env={"KUBECONFIG": listed})
    assert (run.code, run.first_line) == (0, OK)
    assert _auth(api) == [f"Bearer {TOKEN}"]


def test_context_picks_another_server(api: FakeApiServer, tmp_path: Path) -> None:
    config = token_kubeconfig(tmp_path / "config", "https://127.0.0.1:1", api.ca_file, TOKEN, context="broken")
    kubectl(config, "set-cluster", "good", f"--server={api.url}", f"--certificate-authority={api.ca_file}")
    kubectl(config, "set-context", "good", "--cluster=good", "--user=user")
    assert run_plugin("--kubeconfig", str(config)).code == 2
    run = run_plugin("--kubeconfig", str(config), "--context", "good")
    assert (run.code, run.first_line) == (0, OK)
    unknown = run_plugin("--kubeconfig", str(config), "--context", "nope")
    assert (unknown.code, unknown.first_line) == (3, f'K8S_HEALTH UNKNOWN - context "nope" does not exist in {config}')


def test_token_file_of_the_user_wins_and_falls_back_to_token(api: FakeApiServer, tmp_path: Path) -> None:
    config = token_kubeconfig(tmp_path / "config", api.url, api.ca_file, "stale-token")
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    kubectl(config, "set", "users.user.tokenFile", "token")  # relative to the kubeconfig's folder
    assert run_plugin("--kubeconfig", str(config)).code == 0
    token_file.unlink()
    fallback = run_plugin("--kubeconfig", str(config))  # unreadable tokenFile: the token field is used
    assert fallback.code == 3 and "stale-token" not in fallback.stdout
    assert _auth(api) == [f"Bearer {TOKEN}", "Bearer stale-token"]


def test_flags_and_environment_beat_the_kubeconfig(api: FakeApiServer, tmp_path: Path) -> None:
    config = token_kubeconfig(tmp_path / "config", "https://127.0.0.1:1", api.ca_file, "kubeconfig-token")
    run = run_plugin("--kubeconfig", str(config), "-s", api.url, env={"K8S_HEALTH_TOKEN": TOKEN})
    assert (run.code, run.first_line) == (0, OK)
    assert _auth(api) == [f"Bearer {TOKEN}"]


def test_server_override_drops_the_kubeconfig_tls_server_name(tmp_path: Path) -> None:
    with FakeApiServer(healthy_routes(), server_names=["kubernetes"]) as server:
        config = tmp_path / "config"
        kubectl(config, "set-cluster", "c", f"--server={server.url}", f"--certificate-authority={server.ca_file}",
                "--tls-server-name=kubernetes")
        kubectl(config, "set-context", "c", "--cluster=c")
        kubectl(config, "use-context", "c")
        assert run_plugin("--kubeconfig", str(config)).code == 0
        overridden = run_plugin("--kubeconfig", str(config), "-s", server.url)
        named = run_plugin("--kubeconfig", str(config), "-s", server.url, "--tls-server-name", "kubernetes")
    assert overridden.code == 2 and "--tls-server-name" in overridden.first_line
    assert (named.code, named.first_line) == (0, OK)


def _jwt(exp: int) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'RS256'})}.{part({'exp': exp, 'sub': 'system:serviceaccount:default:default'})}.c2ln"


def test_expired_jwt_is_named_as_the_cause_of_a_401(api: FakeApiServer, tmp_path: Path) -> None:
    expired = _jwt(int(time.time()) - 3600)
    token_file = tmp_path / "token"
    token_file.write_text(expired)
    run = run_plugin("-s", api.url, "--certificate-authority", api.ca_file, "--token-file", str(token_file), "-v")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(time.time()) - 3600))
    assert run.code == 3
    assert run.first_line == (f"K8S_HEALTH UNKNOWN - readyz: HTTP 401 Unauthorized: the token from --token-file "
                              f"{token_file} expired at {when}; create a new one")
    assert expired not in run.stdout


def test_verbose_says_when_the_token_expires(tmp_path: Path) -> None:
    valid = _jwt(int(time.time()) + 7200)
    with FakeApiServer(healthy_routes(), token=valid, anonymous=False) as server:
        run = run_plugin("-s", server.url, "--certificate-authority", server.ca_file, "-v",
                         env={"K8S_HEALTH_TOKEN": valid})
    assert run.code == 0
    assert any(line.startswith("token from K8S_HEALTH_TOKEN expires at ") and line.endswith("(in 119 min)")
               for line in run.long_output), run.long_output
    assert valid not in run.stdout


# -- exec credential plugins ---------------------------------------------------------------------------------

EXEC_PLUGIN = """#!{python}
import json, os, sys, time
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
mode = os.environ.get("MODE", "ok")
sys.stderr.write("exec plugin chatter on stderr\\n")
if mode == "fail":
    sys.exit(4)
if mode == "garbage":
    print("not json")
    sys.exit(0)
if mode == "hang":
    import subprocess
    subprocess.Popen(["sleep", "60"])
    time.sleep(60)
status = {{"token": "{token}"}} if mode == "ok" and info["spec"]["interactive"] is False else {{}}
print(json.dumps({{"kind": "ExecCredential", "apiVersion": info["apiVersion"], "status": status}}))
"""


def _exec_kubeconfig(tmp_path: Path, server: FakeApiServer, api_version: str, mode: str,
                     interactive: str = "Never") -> Path:
    plugin = tmp_path / "bin" / "k8s-token"
    plugin.parent.mkdir(exist_ok=True)
    plugin.write_text(EXEC_PLUGIN.format(python=sys.executable, token=TOKEN))
    plugin.chmod(0o755)
    config = tmp_path / "config"
    kubectl(config, "set-cluster", "eks", f"--server={server.url}", f"--certificate-authority={server.ca_file}")
    kubectl(config, "set-credentials", "eks-user", f"--exec-api-version={api_version}",
            "--exec-command=./bin/k8s-token", f"--exec-env=MODE={mode}")
    # --exec-interactive-mode exists only from kubectl 1.24 and `config set` cannot reach exec fields.
    document = yaml.safe_load(config.read_text())
    document["users"][0]["user"]["exec"]["interactiveMode"] = interactive
    config.write_text(yaml.safe_dump(document))
    kubectl(config, "set-context", "eks", "--cluster=eks", "--user=eks-user")
    kubectl(config, "use-context", "eks")
    return config


@pytest.mark.parametrize("api_version", ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"])
def test_exec_plugin_gives_the_token(api: FakeApiServer, tmp_path: Path, api_version: str) -> None:
    config = _exec_kubeconfig(tmp_path, api, api_version, "ok")
    os.chdir("/")
    run = run_plugin("--kubeconfig", str(config), "-vv")
    assert (run.code, run.first_line) == (0, OK)
    assert _auth(api) == [f"Bearer {TOKEN}"]
    assert "chatter" not in run.stdout and TOKEN not in run.stdout


@pytest.mark.parametrize(("mode", "interactive", "words"), [
    ("fail", "Never", "k8s-token exited with status 4"),
    ("garbage", "Never", "its output is not an ExecCredential (not JSON)"),
    ("empty", "Never", "its ExecCredential holds neither a token nor a client certificate"),
    ("ok", "Always", "needs a terminal (interactiveMode: Always)"),
])
def test_exec_plugin_failures_are_unknown(api: FakeApiServer, tmp_path: Path, mode: str, interactive: str,
                                          words: str) -> None:
    config = _exec_kubeconfig(tmp_path, api, "client.authentication.k8s.io/v1", mode, interactive)
    run = run_plugin("--kubeconfig", str(config))
    assert run.code == 3
    assert run.first_line.startswith(f"K8S_HEALTH UNKNOWN - exec plugin of user 'eks-user' in {config}")
    assert words in run.first_line
    assert "chatter" not in run.stdout
    assert api.requests == []


def test_hanging_exec_plugin_is_killed_within_the_deadline(api: FakeApiServer, tmp_path: Path) -> None:
    config = _exec_kubeconfig(tmp_path, api, "client.authentication.k8s.io/v1", "hang")
    run = run_plugin("--kubeconfig", str(config), "-t", "2")
    assert run.code == 3
    assert "gave no credential within the 2 s deadline (-t)" in run.first_line
    assert run.seconds < 2 + 1.5


# -- in-cluster ---------------------------------------------------------------------------------------------

def _can_unshare() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return False
    probe = subprocess.run([unshare, "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs none /run"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs root and mount namespaces (unshare -m) to lay out "
                                               "/var/run/secrets without touching the machine's own")
def test_in_cluster_uses_the_service_account_files(api: FakeApiServer, tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    shutil.copy(api.ca_file, tmp_path / "ca.crt")
    # A private mount namespace: /run (and so /var/run) is a fresh tmpfs seen by this process tree only.
    script = ("mount -t tmpfs none /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount && "
              f"cp {tmp_path}/token {tmp_path}/ca.crt /run/secrets/kubernetes.io/serviceaccount/ && "
              'exec "$0" "$@"')
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", script]
    from conftest import COMMAND

    run = run_plugin("-vv", command=[*command, str(COMMAND)],
                     env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(api.port)})
    assert (run.code, run.first_line) == (0, OK)
    assert _auth(api) == [f"Bearer {TOKEN}"]
    assert f"server: https://127.0.0.1:{api.port} (from in-cluster (KUBERNETES_SERVICE_HOST))" in run.long_output
    assert ("TLS: verified against the CA /var/run/secrets/kubernetes.io/serviceaccount/ca.crt (from in-cluster)"
            in run.long_output)


# -- broken kubeconfigs: UNKNOWN with one sentence naming the file and the problem ---------------------------

@pytest.mark.parametrize(("content", "words"), [
    ("clusters: [unclosed\n", "is not valid YAML at line 2"),
    ("- just\n- a list\n", "is not a kubeconfig"),
    ("clusters: 5\n", "clusters must be a list"),
    ("clusters:\n- cluster: {server: https://x}\n", "every entry of clusters needs a name"),
    ("current-context: ctx\ncontexts: []\n", "current-context 'ctx' names no context"),
    ("current-context: c\ncontexts:\n- name: c\n  context: {cluster: gone}\n", 'uses cluster "gone", which does not'),
    ("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {}\n",
     "cluster 'k' has no server"),
    ("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster:"
     " {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {auth-provider: {name: oidc}}\n",
     "auth-provider plugins (removed from kubectl) are not supported"),
    ("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster:"
     " {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {username: a, password: b}\n",
     "basic authentication is not supported"),
    ("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster:"
     " {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true, certificate-authority: ca.crt}\n",
     "insecure-skip-tls-verify together with a certificate authority is not allowed"),
    ("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster:"
     " {server: 'https://127.0.0.1:1', certificate-authority-data: '!!notbase64'}\n", "is not valid base64"),
])
def test_broken_kubeconfig_is_unknown(tmp_path: Path, content: str, words: str) -> None:
    config = tmp_path / "config"
    config.write_text(content)
    run = run_plugin("--kubeconfig", str(config))
    assert run.code == 3, run.stdout
    assert str(config) in run.first_line and words in run.first_line, run.first_line


def test_missing_explicit_kubeconfig_is_unknown(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    run = run_plugin("--kubeconfig", str(missing))
    assert (run.code, run.first_line) == (3, f"K8S_HEALTH UNKNOWN - cannot read kubeconfig {missing}: No such file "
                                             "or directory; check the path and that the monitoring user may read it")


def _as_nobody() -> list[str]:
    """Root reads every file, so an unreadable file needs another user; the venv must be reachable by it."""
    from conftest import COMMAND

    if os.geteuid() != 0:
        return [str(COMMAND)]
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(COMMAND)]
    probe = subprocess.run([*command, "--version"], capture_output=True, check=False)
    if probe.returncode != 3:
        pytest.skip("the virtualenv is not readable by nobody (a checkout under a private folder)")
    return command


def test_unreadable_kubeconfig_is_unknown(tmp_path: Path) -> None:
    command = _as_nobody()
    tmp_path.chmod(0o755)
    config = tmp_path / "config"
    config.write_text("{}")
    config.chmod(0)
    run = run_plugin("--kubeconfig", str(config), command=command)
    assert (run.code, run.first_line) == (3, f"K8S_HEALTH UNKNOWN - cannot read kubeconfig {config}: Permission "
                                             "denied; check the path and that the monitoring user may read it")


def test_proxy_url_of_the_cluster_is_used(api: FakeApiServer, tmp_path: Path) -> None:
    with ConnectProxy() as proxy:
        proxy_url = proxy.url
        config = token_kubeconfig(tmp_path / "config", api.url, api.ca_file, TOKEN)
        kubectl(config, "set", "clusters.cluster.proxy-url", proxy_url)
        run = run_plugin("--kubeconfig", str(config), "-vv")
        tunnels = list(proxy.tunnels)
    assert (run.code, run.first_line) == (0, OK)
    assert tunnels == [f"127.0.0.1:{api.port}"]
    assert f"proxy: {proxy_url} (kubeconfig proxy-url)" in run.long_output


def test_socks_proxy_without_pysocks_is_a_clear_unknown(api: FakeApiServer, tmp_path: Path) -> None:
    config = token_kubeconfig(tmp_path / "config", api.url, api.ca_file, TOKEN)
    kubectl(config, "set", "clusters.cluster.proxy-url", "socks5://127.0.0.1:1080")
    run = run_plugin("--kubeconfig", str(config))
    assert (run.code, run.first_line) == (3, f"K8S_HEALTH UNKNOWN - kubeconfig {config}: proxy-url of cluster "
                                             "'cluster': a socks5 proxy needs the PySocks package "
                                             "(pip install PySocks)")


def test_exec_plugin_arguments_and_client_certificate(tmp_path: Path) -> None:
    with FakeApiServer(healthy_routes(), require_client_cert=True) as server:
        cert, key = server.issue_client_cert(tmp_path)
        plugin = tmp_path / "bin" / "cert-plugin"  # kubectl stores it as bin/cert-plugin, relative to the file
        plugin.parent.mkdir()
        plugin.write_text(f"#!{sys.executable}\n" + """import json, sys
cert, key = sys.argv[1], sys.argv[2]
status = {"clientCertificateData": open(cert).read(), "clientKeyData": open(key).read()}
print(json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1", "status": status}))
""")
        plugin.chmod(0o755)
        config = tmp_path / "config"
        kubectl(config, "set-cluster", "c", f"--server={server.url}", f"--certificate-authority={server.ca_file}")
        kubectl(config, "set-credentials", "u", "--exec-api-version=client.authentication.k8s.io/v1beta1",
                f"--exec-command={plugin}", f"--exec-arg={cert}", f"--exec-arg={key}")
        kubectl(config, "set-context", "c", "--cluster=c", "--user=u")
        kubectl(config, "use-context", "c")
        private_tmp = tmp_path / "tmp"
        private_tmp.mkdir()
        run = run_plugin("--kubeconfig", str(config), env={"TMPDIR": str(private_tmp)})
    assert (run.code, run.first_line) == (0, OK)
    assert list(private_tmp.iterdir()) == []


def test_key_material_is_removed_when_the_deadline_fires(tmp_path: Path) -> None:
    with FakeApiServer(healthy_routes()) as server:
        config = tmp_path / "config"
        kubectl(config, "set-cluster", "c", f"--server={server.url}", f"--certificate-authority={server.ca_file}",
                "--embed-certs")
        kubectl(config, "set-credentials", "u", "--token=fallback-token")
        kubectl(config, "set-context", "c", "--cluster=c", "--user=u")
        kubectl(config, "use-context", "c")
        os.mkfifo(tmp_path / "token-fifo")
        kubectl(config, "set", "users.u.tokenFile", str(tmp_path / "token-fifo"))
        private_tmp = tmp_path / "tmp"
        private_tmp.mkdir()
        run = run_plugin("--kubeconfig", str(config), "-t", "1", env={"TMPDIR": str(private_tmp)})
    assert (run.code, run.first_line) == (3, "K8S_HEALTH UNKNOWN - the 1 s deadline (-t) ran out while reading the "
                                             "kubeconfig and credentials")
    assert list(private_tmp.iterdir()) == []
