"""``--output json`` and ``--discover`` end to end: exactly one JSON document on stdout, whatever happens, with the
same exit code as the plugin line (Zabbix ignores exit codes and reads stdout as the value)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from conftest import ca_args, run_plugin
from fakeapi import FakeApiServer, etcd_down_routes, healthy_routes


def document(stdout: str) -> dict[str, Any]:
    assert stdout.endswith("}\n") and stdout.count("\n") == 1, stdout  # one line, one document, nothing else
    parsed = json.loads(stdout)
    assert isinstance(parsed, dict)
    return parsed


def test_json_healthy() -> None:
    with FakeApiServer(healthy_routes()) as server:
        run = run_plugin(*ca_args(server), "--output", "json", "-e", "livez", "-e", "readyz")
        url = server.url
    doc = document(run.stdout)
    assert run.code == 0
    assert (doc["state"], doc["code"], doc["summary"]) == ("OK", 0, "livez: all 30 sub-checks passed; readyz: all 33 "
                                                                    "sub-checks passed")
    (only,) = doc["servers"]
    assert (only["server"], only["state"]) == (url, "OK") and only["cert_days_left"] > 0
    livez, readyz = only["endpoints"]
    assert (livez["endpoint"], livez["http_status"], len(livez["checks"])) == ("livez", 200, 30)
    assert readyz["time"] > 0 and readyz["error"] is None
    assert all(check["state"] == "OK" and check["ok"] for check in readyz["checks"])


def test_json_etcd_down_with_policy_and_reasons() -> None:
    with FakeApiServer(etcd_down_routes()) as server:
        run = run_plugin(*ca_args(server), "--output=json", "--warning-check", "etcd-readiness")
    doc = document(run.stdout)
    assert (run.code, doc["code"], doc["state"]) == (2, 2, "CRITICAL")
    checks = {check["name"]: check for check in doc["servers"][0]["endpoints"][0]["checks"]}
    assert checks["etcd"]["state"] == "CRITICAL" and not checks["etcd"]["ok"]
    assert checks["etcd"]["reason"] == "error getting data from etcd: context deadline exceeded"
    assert checks["etcd-readiness"]["state"] == "WARNING"
    assert checks["ping"] == {"name": "ping", "state": "OK", "code": 0, "ok": True, "detail": "ok", "reason": None}


def test_json_unreachable_server_is_still_one_document() -> None:
    run = run_plugin("-s", "https://127.0.0.1:1", "--output", "json")
    doc = document(run.stdout)
    assert (run.code, doc["code"]) == (2, 2)
    endpoint = doc["servers"][0]["endpoints"][0]
    assert endpoint["http_status"] is None and endpoint["error"].startswith("cannot connect to 127.0.0.1:1")


def test_json_usage_error_and_deadline_are_documents(tmp_path: Path) -> None:
    bad = run_plugin("--output", "json", "--bogus")
    assert bad.code == 3
    assert document(bad.stdout) == {"plugin": "check_k8s_health", "version": document(bad.stdout)["version"],
                                    "state": "UNKNOWN", "code": 3,
                                    "summary": "unrecognized arguments: --bogus (see --help)", "servers": []}
    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    late = run_plugin("-s", "https://127.0.0.1:1", "--token-file", str(fifo), "-t", "1", "--output", "json")
    assert late.code == 3 and document(late.stdout)["summary"].startswith("the 1 s deadline (-t) ran out")


def test_json_several_servers() -> None:
    with FakeApiServer(healthy_routes()) as first, FakeApiServer(etcd_down_routes(), ca=first.ca) as second:
        run = run_plugin("-s", first.url, "-s", second.url, "--certificate-authority", first.ca_file,
                         "--output", "json", "--min-healthy", "1")
        names = [first.url.split("//")[1], second.url.split("//")[1]]
    doc = document(run.stdout)
    assert (run.code, doc["state"]) == (1, "WARNING")
    assert [(server["name"], server["state"]) for server in doc["servers"]] == [(names[0], "OK"),
                                                                                (names[1], "CRITICAL")]


def test_discovery_lists_every_sub_check() -> None:
    with FakeApiServer(healthy_routes()) as server:
        run = run_plugin(*ca_args(server), "--discover", "-e", "livez", "-e", "readyz")
        name = server.url.split("//")[1]
    doc = document(run.stdout)
    assert run.code == 0 and list(doc) == ["data"]
    rows = doc["data"]
    assert len(rows) == 30 + 33
    assert {"{#SERVER}": name, "{#ENDPOINT}": "readyz", "{#CHECK}": "poststarthook/rbac/bootstrap-roles"} in rows


def test_discovery_failure_has_no_data_so_zabbix_keeps_its_items() -> None:
    run = run_plugin("-s", "https://127.0.0.1:1", "--discover")
    doc = document(run.stdout)
    assert run.code == 2 and "data" not in doc
    assert (doc["state"], doc["code"]) == ("CRITICAL", 2)
