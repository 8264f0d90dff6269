"""contrib/zabbix: the agent's UserParameter lines and the Zabbix 6.0 template.

The template is checked against the JSON the plugin really prints (its JSONPaths are evaluated on documents from
a fake API server), and the UserParameter lines are run by a private ``zabbix_agentd`` on 127.0.0.1, as the user
``zabbix``, queried with the agent's passive protocol (Debian 12 ships no ``zabbix_get``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml
from conftest import run_plugin
from consumers import need, readable_copy, world_readable_dir
from fakeapi import HOST, FakeApiServer, Reply, etcd_down_routes, healthy_routes

from check_k8s_health.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib" / "zabbix"
USER_PARAMETERS = CONTRIB / "userparameter_k8s_health.conf"
TEMPLATE = CONTRIB / "template_k8s_health.yaml"
EXTERNAL_TEMPLATE = CONTRIB / "template_k8s_health_external.yaml"
#: The external template in Zabbix 7.0's export format, with item timeouts (docs/zabbix-server.md).
EXTERNAL_TEMPLATE_7 = CONTRIB / "7.0" / "template_k8s_health_external.yaml"
#: Both templates: the agent's (UserParameter items) and the Zabbix server's or proxy's (External checks).
TEMPLATES = [pytest.param(TEMPLATE, id="agent"), pytest.param(EXTERNAL_TEMPLATE, id="external")]

#: What the agent rejects in key parameters with UnsafeUserParameters=0, its default (consumers.md §6.2, verified).
UNSAFE = frozenset("\\'\"`*?[]{}~$!&;()<>|#@\n")

#: What the shipped lines point at; the daemon test replaces each with a local counterpart.
SHIPPED_PLUGIN = "/opt/check_k8s_health/bin/check_k8s_health"
SHIPPED_TOKEN = "/etc/zabbix/k8s-token"
SHIPPED_CA = "/etc/zabbix/k8s-ca.crt"
SHIPPED_URL = "https://127.0.0.1:6443"

#: The agent's Timeout the README asks for, and the 6.0 default the shipped -t must also fit under.
AGENT_TIMEOUT = 10
DEFAULT_AGENT_TIMEOUT = 3

#: The shipped lines verify the certificate as `kubernetes` (kubeadm's names no 127.0.0.1): so does every fake here.
SERVER_NAMES = ("kubernetes",)

TOKEN = "zabbix-agent-token-4f1c9e0b7a"
WRONG_TOKEN = "zabbix-agent-token-rejected-93d1"

# Field names and enumerations of the 6.0 import format (ui/include/classes/import/validators/C60XmlValidator.php)
# for the elements the template uses: a typo in a field name or value would make the import fail.
ITEM_FIELDS = frozenset({"uuid", "name", "type", "key", "delay", "history", "trends", "status", "value_type", "units",
                         "description", "valuemap", "preprocessing", "master_item", "tags", "triggers"})
PROTOTYPE_FIELDS = (ITEM_FIELDS - {"triggers"}) | {"discover", "trigger_prototypes"}
RULE_FIELDS = frozenset({"uuid", "name", "type", "key", "delay", "status", "filter", "lifetime", "description",
                         "item_prototypes", "trigger_prototypes", "master_item", "preprocessing", "lld_macro_paths"})
TRIGGER_FIELDS = frozenset({"uuid", "expression", "recovery_mode", "recovery_expression", "name", "event_name",
                            "opdata", "url", "status", "priority", "description", "type", "manual_close",
                            "dependencies", "tags", "discover"})
TEMPLATE_FIELDS = frozenset({"uuid", "template", "name", "description", "groups", "items", "discovery_rules",
                             "tags", "macros", "valuemaps", "templates"})
ITEM_TYPES = frozenset({"ZABBIX_PASSIVE", "TRAP", "SIMPLE", "INTERNAL", "ZABBIX_ACTIVE", "EXTERNAL", "ODBC", "IPMI",
                        "SSH", "TELNET", "CALCULATED", "JMX", "SNMP_TRAP", "DEPENDENT", "HTTP_AGENT", "SNMP_AGENT",
                        "SCRIPT"})
VALUE_TYPES = frozenset({"FLOAT", "CHAR", "LOG", "UNSIGNED", "TEXT"})
PRIORITIES = frozenset({"NOT_CLASSIFIED", "INFO", "WARNING", "AVERAGE", "HIGH", "DISASTER"})
STEP_TYPES = frozenset({"JSONPATH", "DISCARD_UNCHANGED", "DISCARD_UNCHANGED_HEARTBEAT", "CHECK_JSON_ERROR", "REGEX",
                        "JAVASCRIPT", "TRIM", "MULTIPLIER", "STR_REPLACE"})
ERROR_HANDLERS = frozenset({"ORIGINAL_ERROR", "DISCARD_VALUE", "CUSTOM_VALUE", "CUSTOM_ERROR"})


# -- the shipped files ------------------------------------------------------------------------------------------


def user_parameters() -> dict[str, str]:
    """``key -> command`` of the UserParameter lines, in file order."""
    lines: dict[str, str] = {}
    for line in USER_PARAMETERS.read_text().splitlines():
        if line.startswith("UserParameter="):
            key, comma, command = line[len("UserParameter="):].partition(",")
            assert comma and command, line
            assert key not in lines, f"{key} defined twice: the agent refuses to start"
            lines[key] = command
    return lines


def template(path: Path = TEMPLATE) -> dict[str, Any]:
    export = yaml.safe_load(path.read_text())["zabbix_export"]
    assert isinstance(export, dict)
    return export


def the_template(export: dict[str, Any]) -> dict[str, Any]:
    templates = export["templates"]
    assert len(templates) == 1
    result = templates[0]
    assert isinstance(result, dict)
    return result


def dependent_items(export: dict[str, Any], master: Optional[str] = None) -> list[dict[str, Any]]:
    """The dependent items, of one master item's document when ``master`` names it."""
    return [item for item in the_template(export)["items"] if item.get("type") == "DEPENDENT"
            and master in (None, item["master_item"]["key"])]


def item_prototypes(export: dict[str, Any]) -> list[dict[str, Any]]:
    return [prototype for rule in the_template(export)["discovery_rules"] for prototype in rule["item_prototypes"]]


def jsonpath_of(item: dict[str, Any]) -> dict[str, Any]:
    steps = [step for step in item["preprocessing"] if step["type"] == "JSONPATH"]
    assert len(steps) == 1, item["key"]
    step = steps[0]
    assert isinstance(step, dict)
    return step


def master_keys(export: dict[str, Any]) -> tuple[str, str]:
    """The keys of the two items that run the plugin for the health endpoints: the JSON document and the discovery
    rule."""
    (document,) = [item["key"] for item in the_template(export)["items"]
                   if item.get("type") != "DEPENDENT" and not _is_blind(item["key"]) and not _is_control(item["key"])]
    (discovery,) = [rule["key"] for rule in the_template(export)["discovery_rules"]]
    return document, discovery


def blind_key(export: dict[str, Any]) -> str:
    """The key of the item that runs the plugin with --webhooks --aggregated-apis."""
    (key,) = [item["key"] for item in the_template(export)["items"]
              if item.get("type") != "DEPENDENT" and _is_blind(item["key"])]
    return str(key)


def _is_blind(key: str) -> bool:
    return key.startswith("k8s.health.blind.") or '"--webhooks"' in key


def control_key(export: dict[str, Any]) -> str:
    """The key of the item that runs the plugin with --leaders --write-probe --etcd-quota."""
    (key,) = [item["key"] for item in the_template(export)["items"]
              if item.get("type") != "DEPENDENT" and _is_control(item["key"])]
    return str(key)


def _is_control(key: str) -> bool:
    return key.startswith("k8s.health.control.") or '"--write-probe"' in key


def key_parameters(key: str) -> list[str]:
    """The parameters of an item key ``name["a","b",c]`` as Zabbix splits them (quoted, with ``\\"`` for a quote,
    or bare up to the next comma): for an External check, the plugin's argv."""
    _, bracket, rest = key.partition("[")
    assert bracket and rest.endswith("]"), key
    body, params, position = rest[:-1], [], 0
    while True:
        while body[position:position + 1] == " ":
            position += 1
        if body[position:position + 1] == '"':
            end = position + 1
            while body[end] != '"':
                end += 2 if body[end:end + 2] == '\\"' else 1
            params.append(body[position + 1:end].replace('\\"', '"'))
            position = end + 1
        else:
            end = body.find(",", position)
            end = len(body) if end < 0 else end
            params.append(body[position:end].strip())
            position = end
        if position >= len(body):
            return params
        assert body[position] == ",", key
        position += 1


def external_args(key: str, macros: dict[str, str]) -> list[str]:
    """The argv the server gives ``check_k8s_health`` for an External check key, with the user macros resolved."""
    assert key.startswith("check_k8s_health["), key
    return [re.sub(r"\{\$[A-Z0-9._]+\}", lambda found: macros[found.group(0)], param)
            for param in key_parameters(key)]


def template_macros(export: dict[str, Any]) -> dict[str, str]:
    return {macro["macro"]: macro["value"] for macro in the_template(export)["macros"]}


def shipped_args(key: str, url: str, token_file: str, ca_file: str) -> list[str]:
    """The plugin's arguments from one shipped line, pointed at a local server: what the agent would run."""
    command = user_parameters()[key]
    if key.endswith("[*]"):
        command = command.replace("$1", url)
    else:
        assert SHIPPED_URL in command, key
        command = command.replace(SHIPPED_URL, url)
    argv = shlex.split(command.replace(SHIPPED_TOKEN, token_file).replace(SHIPPED_CA, ca_file))
    assert argv[0] == SHIPPED_PLUGIN, argv
    return argv[1:]


# -- a JSONPath evaluator for the subset the template uses --------------------------------------------------------

_STEP = re.compile(r"""
      \.(?P<name>[A-Za-z_]\w*)(?P<call>\(\))?
    | \[\?\(@\.(?P<field>[A-Za-z_]\w*)==(?P<quote>['"])(?P<value>.*?)(?P=quote)\)\]
    | \['(?P<key>[^']*)'\]
    | \[(?P<index>\d+)\]
""", re.VERBOSE)


class NoMatch(LookupError):
    """Zabbix's "no data matches the specified path": the step's error handler decides what happens."""


def jsonpath(document: Any, path: str) -> Any:
    """Evaluate ``$.a.b``, ``$['a']``, ``[0]``, ``[?(@.field=='value')]`` and a trailing ``.first()`` as Zabbix does:
    a definite path gives one value, a path with a filter gives the list of matches; anything else is refused so
    that the template cannot use a construct this test does not understand."""
    if not path.startswith("$"):
        raise ValueError(f"a JSONPath starts with $: {path!r}")
    nodes: list[Any] = [document]
    definite = True
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise ValueError(f"unsupported JSONPath syntax at {path[position:]!r}")
        position = match.end()
        if match["call"]:
            if match["name"] != "first" or position != len(path):
                raise ValueError(f"only a trailing .first() is supported: {path!r}")
            if not nodes:
                raise NoMatch(path)
            return nodes[0]
        if match["field"] is not None:
            definite = False
            nodes = [element for node in nodes if isinstance(node, list) for element in node
                     if isinstance(element, dict) and element.get(match["field"]) == match["value"]]
        elif match["index"] is not None:
            index = int(match["index"])
            nodes = [node[index] for node in nodes if isinstance(node, list) and index < len(node)]
        else:
            name = match["name"] if match["name"] is not None else match["key"]
            nodes = [node[name] for node in nodes if isinstance(node, dict) and name in node]
    if not nodes:
        raise NoMatch(path)
    return nodes[0] if definite else nodes


def with_macros(text: str, row: dict[str, Any]) -> str:
    for macro, value in row.items():
        text = text.replace(macro, str(value))
    return text


def test_the_jsonpath_evaluator_can_fail() -> None:
    checks = [{"name": "etcd", "code": 2}]
    document = {"servers": [{"name": "a", "endpoints": [{"endpoint": "readyz", "checks": checks}]}]}
    path = "$.servers[?(@.name=='a')].endpoints[?(@.endpoint=='readyz')].checks[?(@.name=='etcd')].code.first()"
    assert jsonpath(document, path) == 2
    assert jsonpath(document, "$['servers'][0].name") == "a"
    with pytest.raises(NoMatch):
        jsonpath(document, path.replace("'etcd'", "'etcd-readiness'"))
    with pytest.raises(NoMatch):
        jsonpath(document, "$.code")
    with pytest.raises(ValueError, match="unsupported"):
        jsonpath(document, "$..code")


# -- the UserParameter lines ------------------------------------------------------------------------------------


def test_user_parameter_keys_need_no_unsafe_characters() -> None:
    lines = user_parameters()
    assert set(lines) == {"k8s.health.json", "k8s.health.discovery", "k8s.health.server.json[*]",
                          "k8s.health.server.discovery[*]", "k8s.health.members.json[*]",
                          "k8s.health.members.discovery[*]", "k8s.health.blind.json", "k8s.health.control.json"}
    for key in lines:
        name = key[:-3] if key.endswith("[*]") else key
        assert re.fullmatch(r"[a-z0-9.]+", name), key
        assert not UNSAFE & set(name), key
    # The one parameter the flexible keys take is a URL, which needs none of them; policy globs would.
    assert not UNSAFE & set("https://10.0.0.1:6443/k8s/clusters/c-m-abc12")
    assert UNSAFE & set("poststarthook/*") and UNSAFE & set("~:5") and UNSAFE & set("@1:10")


def test_user_parameter_commands_are_valid_plugin_command_lines() -> None:
    parser = build_parser()
    for key, command in user_parameters().items():
        flexible = key.endswith("[*]")
        assert ("$1" in command) == flexible, key
        assert command.count("$") == (1 if flexible else 0), f"a $ the agent or the shell would expand: {key}"
        if flexible:
            assert "'$1'" in command, "quote the parameter for /bin/sh"
        args = parser.parse_args(shipped_args(key, "https://10.0.0.1:6443", SHIPPED_TOKEN, SHIPPED_CA))
        assert args.discover == ("discovery" in key), key
        assert args.members == ("members" in key), key
        assert args.output == ("nagios" if args.discover else "json"), key
        assert args.server == ["https://10.0.0.1:6443"], key
        assert args.token_file == SHIPPED_TOKEN and args.certificate_authority == SHIPPED_CA, key
        blind = key.startswith("k8s.health.blind.")
        control = key.startswith("k8s.health.control.")
        assert (args.webhooks, args.aggregated_apis) == (blind, blind), key
        assert (args.leaders, args.write_probe, args.etcd_quota is not None) == (control, control, control), key
        assert args.endpoint == (["readyz"] if blind or control else ["livez", "readyz"]), key
        assert args.tls_server_name == "kubernetes", key
        assert args.verbose == 0, key
        # The plugin must answer before the agent kills it, even with the agent's default Timeout (3 s, with
        # about a second for the interpreter to start); the README asks for Timeout=10 anyway.
        assert args.timeout + 1 <= DEFAULT_AGENT_TIMEOUT < AGENT_TIMEOUT, key
        assert ">" not in command and "|" not in command, "the plugin's own stdout is the value, unfiltered"


def test_the_conf_explains_the_timeout_and_the_policy() -> None:
    text = USER_PARAMETERS.read_text()
    assert "Timeout=10" in text and "default 3" in text
    assert "poststarthook/*" in text and "UnsafeUserParameters=0" in text


def test_the_docs_show_the_shipped_lines() -> None:
    section = (ROOT / "docs" / "zabbix-agent.md").read_text()
    shown = re.findall(r"^UserParameter=.*$", section, re.MULTILINE)
    assert shown, "the docs show the lines to paste"
    assert set(shown) <= {f"UserParameter={key},{command}" for key, command in user_parameters().items()}
    assert "Timeout=10" in section and "poststarthook/*" in section and TEMPLATE.name in section


def test_the_external_check_docs_show_the_template_and_what_the_server_needs() -> None:
    text = (ROOT / "docs" / "zabbix-server.md").read_text()
    document_key, discovery_key = master_keys(template(EXTERNAL_TEMPLATE))
    assert f"`{document_key}`" in text and f"`{discovery_key[:discovery_key.index(',') + 1]}`" in text
    assert EXTERNAL_TEMPLATE.name in text and the_template(template(EXTERNAL_TEMPLATE))["name"] in text
    for needed in ("/usr/lib/zabbix/externalscripts", "ExternalScripts", "`zabbix`", "**default 3**", "proxy",
                   "{$K8S.HEALTH.URL}", "{$K8S.HEALTH.CA_FILE}", "{$K8S.HEALTH.TOKEN_FILE}", "{$K8S.HEALTH.TIMEOUT}",
                   "Why the token stays in a file", "chmod 640"):
        assert needed in text, needed


# -- the template ------------------------------------------------------------------------------------------------


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


def _references(expression: str, host: str) -> list[str]:
    """Item keys a 6.0 trigger expression refers to: ``func(/host/key[...],...)``; quoted key parameters may
    contain commas and brackets."""
    keys = []
    for match in re.finditer(r"\(/([^/]*)/", expression):
        assert match.group(1) == host, f"{expression}: host {match.group(1)!r} is not the template"
        position = match.end()
        name = re.match(r"[\w.-]+", expression[position:])
        assert name is not None, expression
        end = position + name.end()
        if end < len(expression) and expression[end] == "[":
            quoted = False
            while True:
                end += 1
                char = expression[end]
                if char == '"' and expression[end - 1] != "\\":
                    quoted = not quoted
                elif char == "]" and not quoted:
                    end += 1
                    break
        keys.append(expression[position:end])
    assert keys, expression
    return keys


@pytest.mark.parametrize("path", TEMPLATES)
def test_template_is_a_6_0_export_with_unique_uuids(path: Path) -> None:
    export = template(path)
    assert export["version"] == "6.0"
    tmpl = the_template(export)
    assert set(tmpl) <= TEMPLATE_FIELDS, set(tmpl) - TEMPLATE_FIELDS
    assert {group["name"] for group in tmpl["groups"]} <= {group["name"] for group in export["groups"]}
    uuids = [node["uuid"] for _, node in _walk(export) if "uuid" in node]
    for uuid in uuids:
        assert isinstance(uuid, str) and re.fullmatch(r"[0-9a-f]{32}", uuid), uuid
    assert len(uuids) == len(set(uuids)), "duplicate UUID"
    # Everything the 6.0 importer requires a UUID for has one.
    needing = [tmpl, *tmpl["items"], *tmpl["discovery_rules"], *tmpl["valuemaps"], *export["triggers"],
               *item_prototypes(export)]
    needing += [trigger for item in tmpl["items"] for trigger in item.get("triggers", [])]
    needing += [trigger for prototype in item_prototypes(export) for trigger in prototype.get("trigger_prototypes", [])]
    assert all("uuid" in node for node in needing)
    assert len(needing) == len(uuids) - len(export["groups"])


@pytest.mark.parametrize("path", TEMPLATES)
def test_template_items_follow_the_import_schema(path: Path) -> None:
    export = template(path)
    tmpl = the_template(export)
    agent_keys = {key for key in user_parameters() if not key.endswith("[*]")}
    valuemaps = {valuemap["name"] for valuemap in tmpl["valuemaps"]}
    items = tmpl["items"]
    document_key, discovery_key = master_keys(export)
    masters = {item["key"] for item in items if item.get("type", "ZABBIX_PASSIVE") != "DEPENDENT"}
    assert masters == {document_key, blind_key(export), control_key(export)}
    rules = tmpl["discovery_rules"]
    for element, allowed in [*((item, ITEM_FIELDS) for item in items), *((rule, RULE_FIELDS) for rule in rules),
                             *((prototype, PROTOTYPE_FIELDS) for prototype in item_prototypes(export))]:
        assert set(element) <= allowed, (element["key"], set(element) - allowed)
        kind = element.get("type", "ZABBIX_PASSIVE")
        assert kind in ITEM_TYPES and element.get("value_type", "UNSIGNED") in VALUE_TYPES, element["key"]
        if kind == "ZABBIX_PASSIVE":
            assert path == TEMPLATE, "the external-check template needs no agent"
            assert element["key"] in agent_keys, f"{element['key']} is no UserParameter of the shipped conf"
            assert "master_item" not in element
        elif kind == "EXTERNAL":
            assert path == EXTERNAL_TEMPLATE and element["key"] in masters | {discovery_key}, element["key"]
            assert "master_item" not in element
        elif kind == "DEPENDENT":
            assert element["master_item"]["key"] in masters, element["key"]
            assert element["delay"] == "0", element["key"]
        if "valuemap" in element:
            assert element["valuemap"]["name"] in valuemaps, element["key"]
        for step in element.get("preprocessing", []):
            assert step["type"] in STEP_TYPES and isinstance(step["parameters"], list), element["key"]
            assert step.get("error_handler", "ORIGINAL_ERROR") in ERROR_HANDLERS, element["key"]
    for master in (item for item in items if item["key"] in masters):
        assert master["value_type"] == "TEXT" and master["trends"] == "0"
        assert master["history"] in ("0", "1h", "1d"), "the raw document is only kept briefly"
    # One value per state code, in the plugin's numbering.
    mapping = {m["value"]: m["newvalue"] for m in tmpl["valuemaps"][0]["mappings"]}
    assert mapping == {"0": "OK", "1": "WARNING", "2": "CRITICAL", "3": "UNKNOWN"}


@pytest.mark.parametrize("path", TEMPLATES)
def test_template_triggers_use_existing_items_and_the_plugins_state_code(path: Path) -> None:
    export = template(path)
    tmpl = the_template(export)
    host = tmpl["template"]
    item_keys = {item["key"] for item in tmpl["items"]}
    prototype_keys = {prototype["key"] for prototype in item_prototypes(export)}
    macros = {macro["macro"] for macro in tmpl["macros"]}
    triggers = [*export["triggers"], *(t for item in tmpl["items"] for t in item.get("triggers", []))]
    prototypes = [t for prototype in item_prototypes(export) for t in prototype.get("trigger_prototypes", [])]
    assert triggers and prototypes
    for trigger in triggers + prototypes:
        assert set(trigger) <= TRIGGER_FIELDS, set(trigger) - TRIGGER_FIELDS
        assert trigger["priority"] in PRIORITIES
        for text in (trigger["expression"], trigger["name"], trigger.get("description", "")):
            assert set(re.findall(r"\{\$[A-Z0-9._]+\}", text)) <= macros, text
    for trigger in triggers:
        assert set(_references(trigger["expression"], host)) <= item_keys, trigger["expression"]
    for trigger in prototypes:
        keys = set(_references(trigger["expression"], host))
        assert keys <= item_keys | prototype_keys and keys & prototype_keys, trigger["expression"]
    # The overall triggers: one per non-OK state code of the plugin, never one on OK; UNKNOWN is not HIGH (an
    # expired token must not page like an outage).
    by_code = {}
    for trigger in triggers:
        found = re.search(r"last\(/[^/]*/k8s\.health\.code\)(=|>=)(\d)", trigger["expression"])
        if found:
            assert found.group(1) == "=", "one trigger per code: >= would also fire on UNKNOWN"
            by_code[int(found.group(2))] = trigger
    assert set(by_code) == {1, 2, 3}
    assert by_code[2]["priority"] == "HIGH" and by_code[1]["priority"] == "WARNING"
    assert by_code[3]["priority"] not in ("HIGH", "DISASTER") and "cannot judge" in by_code[3]["name"]
    # Their operational data is the plugin's summary, which the expression must name to make it available.
    for trigger in by_code.values():
        opdata = re.fullmatch(r"\{ITEM\.LASTVALUE(\d)\}", trigger["opdata"])
        assert opdata is not None, trigger["opdata"]
        assert _references(trigger["expression"], host)[int(opdata.group(1)) - 1] == "k8s.health.summary"
    assert any("nodata(" in trigger["expression"] for trigger in triggers), "a timeout leaves no value at all"


@pytest.mark.parametrize("template_path", TEMPLATES)
def test_item_prototypes_address_sub_checks_with_filters(template_path: Path) -> None:
    export = template(template_path)
    rule = the_template(export)["discovery_rules"][0]
    assert rule["lifetime"] and rule["delay"]
    for prototype in item_prototypes(export):
        for macro in ("{#SERVER}", "{#ENDPOINT}", "{#CHECK}"):
            assert macro in prototype["key"], "one item per server, endpoint and sub-check"
        step = jsonpath_of(prototype)
        (path,) = step["parameters"]
        # Check names contain / and -: a filter, never dot notation, and the value quoted.
        assert "[?(@.name=='{#CHECK}')]" in path and ".{#CHECK}" not in path
        assert "[?(@.endpoint=='{#ENDPOINT}')]" in path and "[?(@.name=='{#SERVER}')]" in path
        assert path.endswith(".first()")
        # A document without this sub-check (server unreachable: no list) must not make the item unsupported.
        assert step["error_handler"] == "CUSTOM_VALUE" and step["error_handler_params"] == "3"


def _without_master_keys(path: Path) -> Any:
    """A template with what may differ between the two removed: UUIDs, descriptions, the template name, the
    master item's type and key."""
    export = template(path)
    document_key, discovery_key = master_keys(export)
    name = the_template(export)["template"]
    text = yaml.safe_dump(export, width=1_000_000).replace(name, "TEMPLATE")
    export = yaml.safe_load(text.replace(document_key.replace("'", "''"), "MASTER")
                            .replace(discovery_key.replace("'", "''"), "DISCOVERY")
                            .replace(blind_key(template(path)).replace("'", "''"), "BLIND")
                            .replace(control_key(template(path)).replace("'", "''"), "CONTROL"))
    for _, node in list(_walk(export)):
        node.pop("uuid", None)
        node.pop("description", None)
        if node.get("type") == "EXTERNAL":
            del node["type"]
    the_template(export)["macros"] = [macro for macro in the_template(export)["macros"]
                                      if macro["macro"] in template_macros(template(TEMPLATE))]
    return export


def test_the_two_templates_differ_only_in_the_master_items() -> None:
    """Same dependent items, discovery filter, prototypes, triggers and value map: one template must not be
    fixed without the other."""
    assert _without_master_keys(EXTERNAL_TEMPLATE) == _without_master_keys(TEMPLATE)
    agent, external = template(TEMPLATE), template(EXTERNAL_TEMPLATE)
    assert the_template(agent)["template"] != the_template(external)["template"], "both can be imported"
    uuids = [{node["uuid"] for _, node in _walk(export) if "uuid" in node} for export in (agent, external)]
    assert uuids[0] & uuids[1] == {group["uuid"] for group in agent["groups"]}


def _without_descriptions(export: dict[str, Any]) -> dict[str, Any]:
    for _, node in list(_walk(export)):
        node.pop("description", None)
    return export


def test_the_7_0_external_template_is_the_6_0_one_with_item_timeouts() -> None:
    """Zabbix 7.0 gives an item its own timeout, 6.0 cannot: the 7.0 export is the 6.0 one (same UUIDs, so it
    updates a template imported before an upgrade) with a timeout on every item that runs the plugin and a plugin
    deadline below it. Nothing else may drift apart."""
    old, new = template(EXTERNAL_TEMPLATE), template(EXTERNAL_TEMPLATE_7)
    assert (old.pop("version"), new.pop("version")) == ("6.0", "7.0")
    assert new.pop("template_groups") == old.pop("groups"), "7.0 names template groups apart from host groups"
    runs_the_plugin = [node for _, node in _walk(new) if node.get("type") == "EXTERNAL"]
    assert len(runs_the_plugin) == 4, "the three master items and the discovery rule"
    for node in runs_the_plugin:
        assert node.pop("timeout") == "{$K8S.HEALTH.ITEM.TIMEOUT}", node["key"]
    assert not [path for path, node in _walk(new) if "timeout" in node], "only what runs the plugin has a timeout"
    macros = template_macros(new)
    item_timeout, deadline = macros["{$K8S.HEALTH.ITEM.TIMEOUT}"], macros["{$K8S.HEALTH.TIMEOUT}"]
    assert item_timeout.endswith("s") and 0 < int(deadline) <= int(item_timeout[:-1]) - 2, (item_timeout, deadline)
    assert int(deadline) >= 8, "room for an etcd outage (2 to 4 s per answer) with the sub-checks named"
    assert template_macros(old)["{$K8S.HEALTH.TIMEOUT}"] == "2", "6.0: below the server's default Timeout of 3"
    for export in (old, new):
        tmpl = the_template(export)
        tmpl["macros"] = [macro for macro in tmpl["macros"] if macro["macro"] not in
                          ("{$K8S.HEALTH.ITEM.TIMEOUT}", "{$K8S.HEALTH.TIMEOUT}")]
    assert _without_descriptions(new) == _without_descriptions(old)
    text = EXTERNAL_TEMPLATE_7.read_text()
    assert "zabbix_server.conf" not in text, "7.0: the server's Timeout no longer bounds an external check"


def test_external_check_keys_are_valid_plugin_command_lines() -> None:
    export = template(EXTERNAL_TEMPLATE)
    macros = template_macros(export)
    assert {"{$K8S.HEALTH.URL}", "{$K8S.HEALTH.CA_FILE}", "{$K8S.HEALTH.TOKEN_FILE}"} <= set(macros)
    parser = build_parser()
    document_key, discovery_key = master_keys(export)
    for key in (document_key, discovery_key):
        args = parser.parse_args(external_args(key, macros))
        assert args.discover == (key == discovery_key), key
        assert args.output == ("nagios" if args.discover else "json"), key
        assert args.server == [macros["{$K8S.HEALTH.URL}"]], key
        assert args.token_file == macros["{$K8S.HEALTH.TOKEN_FILE}"], key
        assert args.certificate_authority == macros["{$K8S.HEALTH.CA_FILE}"], key
        assert args.endpoint == ["livez", "readyz"] and args.verbose == 0, key
        # The server kills the script at its Timeout (default 3 s); the default deadline answers before.
        assert args.timeout + 1 <= DEFAULT_AGENT_TIMEOUT, key
    # Each macro the keys use is defined with a value the plugin accepts (an empty one it would refuse).
    used = set(re.findall(r"\{\$[A-Z0-9._]+\}", document_key + discovery_key))
    assert used <= set(macros) and all(macros[macro] for macro in used)
    assert key_parameters(document_key)[2:] == key_parameters(discovery_key)[1:], "same server, same options"
    blind = parser.parse_args(external_args(blind_key(export), macros))
    assert (blind.output, blind.webhooks, blind.aggregated_apis, blind.endpoint) == ("json", True, True, ["readyz"])
    assert (blind.server, blind.token_file, blind.certificate_authority) == (args.server, args.token_file,
                                                                             args.certificate_authority)
    assert blind.timeout + 1 <= DEFAULT_AGENT_TIMEOUT
    control = parser.parse_args(external_args(control_key(export), macros))
    assert (control.output, control.leaders, control.write_probe, control.etcd_quota, control.endpoint) == \
        ("json", True, True, 2 * 1024**3, ["readyz"])
    assert (control.etcd_warning, control.etcd_critical) == (float(macros["{$K8S.HEALTH.ETCD.WARN}"]),
                                                             float(macros["{$K8S.HEALTH.ETCD.CRIT}"]))
    assert (control.server, control.token_file, control.certificate_authority) == (
        args.server, args.token_file, args.certificate_authority)
    assert control.timeout + 1 <= DEFAULT_AGENT_TIMEOUT


# -- the template against the plugin's real documents -------------------------------------------------------------


@pytest.fixture
def token_and_ca(tmp_path: Path) -> tuple[str, str]:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    return str(token), str(tmp_path / "ca.crt")


def _documents(server: FakeApiServer, token: str, ca_dir_file: str) -> tuple[dict[str, Any], dict[str, Any], int]:
    shutil.copy(server.ca_file, ca_dir_file)
    report = run_plugin(*shipped_args("k8s.health.json", server.url, token, ca_dir_file))
    discovery = run_plugin(*shipped_args("k8s.health.discovery", server.url, token, ca_dir_file))
    assert report.code == discovery.code
    return json.loads(report.stdout), json.loads(discovery.stdout), report.code


@pytest.mark.parametrize(("routes", "code"), [(healthy_routes, 0), (etcd_down_routes, 2)], ids=["healthy", "etcd-down"])
def test_template_jsonpaths_read_the_plugins_documents(routes: Any, code: int, token_and_ca: tuple[str, str]) -> None:
    export = template()
    with FakeApiServer(routes(), server_names=SERVER_NAMES) as server:
        document, discovery, exit_code = _documents(server, *token_and_ca)
    assert exit_code == code
    values = {item["key"]: jsonpath(document, jsonpath_of(item)["parameters"][0])
              for item in dependent_items(export, master_keys(export)[0])}
    assert values["k8s.health.code"] == code
    assert isinstance(values["k8s.health.summary"], str) and values["k8s.health.summary"]
    rows = discovery["data"]
    assert {row["{#ENDPOINT}"] for row in rows} == {"livez", "readyz"}
    used = {macro for prototype in item_prototypes(export) for macro in re.findall(r"\{#\w+\}", str(prototype))}
    assert used <= set(rows[0]), "a prototype uses an LLD macro --discover does not deliver"
    failed = set()
    for row in rows:
        for prototype in item_prototypes(export):
            path = with_macros(jsonpath_of(prototype)["parameters"][0], row)
            value = jsonpath(document, path)
            assert len(jsonpath(document, path.removesuffix(".first()"))) == 1, f"{path} is ambiguous"
            assert value in (0, 1, 2), (path, value)
            if value:
                failed.add((row["{#ENDPOINT}"], row["{#CHECK}"]))
    if code == 0:
        assert not failed
    else:
        assert failed == {("livez", "etcd"), ("readyz", "etcd"), ("readyz", "etcd-readiness")}


def test_template_jsonpaths_when_the_server_is_unreachable(token_and_ca: tuple[str, str]) -> None:
    export = template()
    with FakeApiServer(healthy_routes(), server_names=SERVER_NAMES) as server:
        _, discovery, _ = _documents(server, *token_and_ca)
        url = server.url
    # The server is gone: the port is closed now.
    report = run_plugin(*shipped_args("k8s.health.json", url, *token_and_ca))
    document = json.loads(report.stdout)
    assert report.code == 2 == jsonpath(document, "$.code")
    assert "connection refused" in jsonpath(document, "$.summary")
    for row in discovery["data"][:5]:
        for prototype in item_prototypes(export):
            with pytest.raises(NoMatch):  # -> the step's error handler: custom value 3 (UNKNOWN)
                jsonpath(document, with_macros(jsonpath_of(prototype)["parameters"][0], row))
    gone = run_plugin(*shipped_args("k8s.health.discovery", url, *token_and_ca))
    assert "data" not in json.loads(gone.stdout), "Zabbix would delete every discovered item"


def count_value(document: Any, item: dict[str, Any]) -> float:
    """What a count item stores, step by step as Zabbix preprocesses it: the JSONPath (no match: its error
    handler's custom value), then the regular expression that lets only a number through (a JSON null fails it:
    the same custom value)."""
    value: Any
    for step in item["preprocessing"]:
        try:
            if step["type"] == "JSONPATH":
                value = jsonpath(document, step["parameters"][0])
            elif step["type"] == "REGEX":
                pattern, output = step["parameters"]
                found = re.fullmatch(pattern, "null" if value is None else str(value))
                if found is None:
                    raise NoMatch(pattern)
                value = found.expand(output)
            else:
                raise AssertionError(f"unexpected step {step['type']} in {item['key']}")
        except NoMatch:
            assert step["error_handler"] == "CUSTOM_VALUE", item["key"]
            return float(step["error_handler_params"])
    return float(value)


def _master_document(path: Path, key: str, routes: dict[str, Reply], token_and_ca: tuple[str, str]) -> Any:
    """The document a master item of this template stores, its command run against a server answering ``routes``:
    the agent's shipped line, or the external check's key with the template's macros; exit code and state agree."""
    token, ca_file = token_and_ca
    with FakeApiServer(routes, server_names=SERVER_NAMES) as server:
        shutil.copy(server.ca_file, ca_file)
        if path == TEMPLATE:
            args = shipped_args(key, server.url, token, ca_file)
        else:
            args = external_args(key, {**template_macros(template(path)), "{$K8S.HEALTH.URL}": server.url,
                                       "{$K8S.HEALTH.CA_FILE}": ca_file, "{$K8S.HEALTH.TOKEN_FILE}": token,
                                       "{$K8S.HEALTH.TIMEOUT}": "2"})
            args += ["--tls-server-name", "kubernetes"]
        run = run_plugin(*args)
    document = json.loads(run.stdout)
    assert run.code == document["code"], document["summary"]
    return document


@pytest.mark.parametrize("path", TEMPLATES)
def test_template_blind_spot_counts_read_the_plugins_documents(path: Path, token_and_ca: tuple[str, str]) -> None:
    """The count items and their triggers against the documents of a healthy cluster, of the recorded outage, and
    of a token whose account lacks the ClusterRole (the counts then say -1, which the cannot-judge trigger reads)."""
    from fakeblind import (
        APISERVICES_PATH,
        VALIDATING_PATH,
        broken_webhook_routes,
        healthy_blind_routes,
        unavailable_apiservice_routes,
    )

    export = template(path)
    key = blind_key(export)
    items = {item["key"]: item for item in dependent_items(export, key)}
    assert set(items) == {"k8s.health.blind.summary", "k8s.health.webhooks.unserved",
                          "k8s.health.apiservices.unavailable"}
    forbidden = Reply.from_capture("blind/validatingwebhookconfigurations_forbidden_monitor.txt")
    states = {
        "healthy": (healthy_blind_routes(), 0, (0, 0)),
        "outage": ({**broken_webhook_routes(), APISERVICES_PATH: unavailable_apiservice_routes()[APISERVICES_PATH]},
                   2, (2, 3)),
        "forbidden": ({**healthy_blind_routes(), VALIDATING_PATH: forbidden}, 3, (-1, 0)),
    }
    for name, (routes, code, (unserved, unavailable)) in states.items():
        document = _master_document(path, key, routes, token_and_ca)
        assert document["code"] == code, (name, document["summary"])
        counts = (count_value(document, items["k8s.health.webhooks.unserved"]),
                  count_value(document, items["k8s.health.apiservices.unavailable"]))
        assert counts == (unserved, unavailable), name
        assert jsonpath(document, jsonpath_of(items["k8s.health.blind.summary"])["parameters"][0]) == \
            document["summary"]
    tmpl = the_template(export)
    triggers = {trigger["name"]: trigger["expression"] for trigger in export["triggers"]}
    host = tmpl["template"]
    assert triggers["K8s health: admission webhooks without a ready backend"].startswith(
        f"last(/{host}/k8s.health.webhooks.unserved)>0 ")
    assert triggers["K8s health: aggregated APIs unavailable"].startswith(
        f"last(/{host}/k8s.health.apiservices.unavailable)>0 ")
    assert triggers["K8s health: check cannot judge the webhooks or aggregated APIs"].startswith(
        f"(last(/{host}/k8s.health.webhooks.unserved)<0 or last(/{host}/k8s.health.apiservices.unavailable)<0) ")


@pytest.mark.parametrize("path", TEMPLATES)
def test_template_control_plane_items_read_the_plugins_documents(path: Path, token_and_ca: tuple[str, str]) -> None:
    """The control-plane items and their triggers against the documents of a healthy control plane, of the recorded
    outage (both leaders gone, etcd out of space and its database at 97 % of the quota), and of an account without
    the write probe's Role (its state 3, the cannot-judge trigger's)."""
    from fakeleaders import PROBE_FORBIDDEN, control_plane_routes, outage_routes

    export = template(path)
    key = control_key(export)
    items = {item["key"]: item for item in dependent_items(export, key)}
    assert set(items) == {"k8s.health.control.code", "k8s.health.control.summary", "k8s.health.leaders.leaderless",
                          "k8s.health.write.code", "k8s.health.write.time", "k8s.health.etcd.percent",
                          "k8s.health.etcd.size"}
    states = {
        "healthy": (control_plane_routes(), 0, (0, 0, 0.01, 286720)),
        "outage": (outage_routes(), 2, (2, 2, 96.86, 2.08e9)),
        "forbidden": (control_plane_routes(Reply.from_capture(PROBE_FORBIDDEN)), 3, (0, 3, 0.01, 286720)),
    }
    for name, (routes, code, (leaderless, write, percent, size)) in states.items():
        document = _master_document(path, key, routes, token_and_ca)
        assert document["code"] == code, (name, document["summary"])
        values = tuple(count_value(document, items[item]) for item in (
            "k8s.health.leaders.leaderless", "k8s.health.write.code", "k8s.health.etcd.percent",
            "k8s.health.etcd.size"))
        assert values == (leaderless, write, percent, size), name
        assert count_value(document, items["k8s.health.control.code"]) == code
        assert count_value(document, items["k8s.health.write.time"]) > 0
        assert jsonpath(document, jsonpath_of(items["k8s.health.control.summary"])["parameters"][0]) == \
            document["summary"]
    tmpl = the_template(export)
    triggers = {trigger["name"]: trigger["expression"] for trigger in export["triggers"]}
    host = tmpl["template"]
    assert triggers["K8s health: control-plane loop without a leader"].startswith(
        f"last(/{host}/k8s.health.leaders.leaderless)>0 ")
    assert triggers["K8s health: the API server cannot write"].startswith(f"last(/{host}/k8s.health.write.code)=2 ")
    assert triggers["K8s health: etcd database over {$K8S.HEALTH.ETCD.CRIT} % of its quota"] == \
        f"last(/{host}/k8s.health.etcd.percent)>={{$K8S.HEALTH.ETCD.CRIT}}"
    assert triggers["K8s health: check cannot judge the control plane"].startswith(
        f"last(/{host}/k8s.health.control.code)=3 ")


def _documented_policy() -> list[str]:
    """The policy options of the example command line in the conf's comments (quoted there for /bin/sh)."""
    example = re.search(r"^#\s+\.\.\. (--output json .*) \.\.\.$", USER_PARAMETERS.read_text(), re.MULTILINE)
    assert example is not None
    argv = shlex.split(example.group(1))
    policy = [arg for option, value in zip(argv, argv[1:]) if option.endswith("-check") for arg in (option, value)]
    assert policy[:2] == ["--warning-check", "poststarthook/*"], argv
    return policy


@pytest.mark.parametrize("path", TEMPLATES)
def test_the_documented_policy_reaches_both_warning_triggers(path: Path, token_and_ca: tuple[str, str]) -> None:
    """A failed post-start hook with the documented --warning-check 'poststarthook/*': the document says
    WARNING, and the values the template computes from it are the ones its two WARNING triggers fire on."""
    export = template(path)
    healthy = healthy_routes()["/readyz"]
    hook = "poststarthook/start-apiextensions-controllers"
    body = healthy.body.replace(f"[+]{hook} ok".encode(), f"[-]{hook} failed: reason withheld".encode())
    body = body.replace(b"readyz check passed", b"readyz check failed")
    assert body.count(b"[-]") == 1
    routes = {**healthy_routes(), "/readyz": dataclasses.replace(healthy, status=500, body=body)}
    token, ca_file = token_and_ca
    with FakeApiServer(routes, server_names=SERVER_NAMES) as server:
        shutil.copy(server.ca_file, ca_file)
        run = run_plugin(*shipped_args("k8s.health.json", server.url, token, ca_file), *_documented_policy())
        name = f"{HOST}:{server.port}"
    document = json.loads(run.stdout)
    (code,) = [item for item in dependent_items(export) if item["key"] == "k8s.health.code"]
    assert run.code == 1 == jsonpath(document, jsonpath_of(code)["parameters"][0])
    tmpl = the_template(export)
    triggers = [*export["triggers"], *(t for item in tmpl["items"] for t in item.get("triggers", []))]
    (overall,) = [t for t in triggers if t["priority"] == "WARNING" and "/k8s.health.code)" in t["expression"]]
    assert re.search(r"last\(/[^/]*/k8s\.health\.code\)=1 ", overall["expression"]), overall["expression"]
    row = {"{#SERVER}": name, "{#ENDPOINT}": "readyz", "{#CHECK}": hook}
    (prototype,) = item_prototypes(export)
    assert jsonpath(document, with_macros(jsonpath_of(prototype)["parameters"][0], row)) == 1
    (warning,) = [t for t in prototype["trigger_prototypes"] if t["priority"] == "WARNING"]
    assert warning["expression"].endswith(")=1"), warning["expression"]


# -- a private zabbix_agentd ---------------------------------------------------------------------------------------


def passive_get(port: int, key: str, timeout: float = AGENT_TIMEOUT + 10) -> str:
    """What ``zabbix_get`` does: the agent's passive protocol (header ``ZBXD\\x01``, 8-byte little-endian length)."""
    payload = key.encode()
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as conn:
        conn.sendall(b"ZBXD\x01" + struct.pack("<Q", len(payload)) + payload)
        chunks = []
        while True:
            conn.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    reply = b"".join(chunks)
    assert reply[:5] == b"ZBXD\x01", reply[:40]
    size = struct.unpack("<Q", reply[5:13])[0]
    assert len(reply) == 13 + size, "a reply longer or shorter than its header says"
    return reply[13:].decode()


def _free_port(low: int = 0, high: int = 0) -> int:
    """A port nobody listens on now; between ``low`` and ``high`` when given (the agent's ListenPort must be
    1024-32767, below the kernel's ephemeral range)."""
    candidates = random.sample(range(low, high), 200) if high else [0]
    for candidate in candidates:
        with socket.socket() as sock:
            try:
                sock.bind((HOST, candidate))
            except OSError:
                continue
            port = sock.getsockname()[1]
            assert isinstance(port, int)
            return port
    raise AssertionError(f"no free port between {low} and {high}")


@dataclasses.dataclass
class Agent:
    port: int
    config: Path
    log: Path

    def get(self, key: str) -> str:
        value = passive_get(self.port, key)
        assert TOKEN not in value and WRONG_TOKEN not in value, "a token reached Zabbix"
        return value

    def document(self, key: str) -> dict[str, Any]:
        """The value must be exactly one JSON document: json.loads refuses trailing text."""
        value = self.get(key)
        assert not value.startswith("ZBX_NOTSUPPORTED"), f"{value!r}; agent log:\n{self.log_tail()}"
        document = json.loads(value)
        assert isinstance(document, dict)
        return document

    def log_tail(self) -> str:
        tails = []
        for path in (self.config.parent / "zabbix_agentd.out", self.log):
            try:
                tails += path.read_text(errors="replace").splitlines()[-20:]
            except OSError as exc:
                tails.append(f"(no {path.name}: {exc})")
        return "\n".join(tails)


@contextlib.contextmanager
def running_agent(folder: Path, lines: list[str], command: Callable[..., list[str]] = lambda *argv: list(argv),
                  zabbix_ids: Optional[tuple[int, int]] = None) -> Iterator[Agent]:
    """zabbix_agentd in the foreground, dropped to the user zabbix; stopped (SIGTERM, then SIGKILL) however the
    test ends. ``command`` and ``zabbix_ids`` run another system's agent (a Debian root's, with its own ids)."""
    run = folder / "run"
    run.mkdir()
    if zabbix_ids is None:
        shutil.chown(run, "zabbix", "zabbix")
    else:
        os.chown(run, *zabbix_ids)
    agent = Agent(_free_port(20000, 32000), folder / "zabbix_agentd.conf", run / "zabbix_agentd.log")
    agent.config.write_text("\n".join([
        f"PidFile={run / 'zabbix_agentd.pid'}", "LogType=file", f"LogFile={agent.log}", "LogFileSize=0",
        "DebugLevel=3", "Server=127.0.0.1", f"ListenIP={HOST}", f"ListenPort={agent.port}", "StartAgents=1",
        "Hostname=test", f"Timeout={AGENT_TIMEOUT}", "AllowRoot=0", "User=zabbix", "UnsafeUserParameters=0",
        *lines,
    ]) + "\n")
    agent.config.chmod(0o644)
    with (folder / "zabbix_agentd.out").open("wb") as output:  # what it says before its log file is open
        proc = subprocess.Popen(command("zabbix_agentd", "-c", str(agent.config), "-f"), stdin=subprocess.DEVNULL,
                                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail(f"zabbix_agentd exited with {proc.returncode}:\n{agent.log_tail()}")
            try:
                if passive_get(agent.port, "agent.ping", timeout=2) == "1":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"zabbix_agentd did not answer within 15 s:\n{agent.log_tail()}")
            time.sleep(0.1)
        yield agent
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the agent's children follow their parent
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the session started for this agent only
            proc.wait(timeout=5)
    # Children still alive in the agent's own session (its collector and listeners) must not outlive the test.
    with contextlib.suppress(ProcessLookupError):
        for _ in range(50):
            os.killpg(proc.pid, 0)
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)


def local_lines(plugin: Path, token_file: str, ca_file: str, url: str) -> list[str]:
    """The shipped UserParameter lines with the plugin, token, CA and URL replaced, nothing else changed."""
    lines = []
    for key, shipped in user_parameters().items():
        replacements = [(SHIPPED_PLUGIN, str(plugin)), (SHIPPED_TOKEN, token_file), (SHIPPED_CA, ca_file)]
        if not key.endswith("[*]"):
            replacements.append((SHIPPED_URL, url))
        command = shipped
        for old, new in replacements:
            assert old in command, (key, old)
            command = command.replace(old, new)
        lines.append(f"UserParameter={key},{command}")
    return lines


@dataclasses.dataclass
class World:
    agent: Agent
    server: FakeApiServer
    token_file: Path

    def set_state(self, routes: dict[str, Any], token: str = TOKEN) -> None:
        for path in ("/readyz", "/livez", "/healthz", "/readyz/etcd"):
            self.server.set_route(path, routes.get(path))
        self.token_file.write_text(token + "\n")


@pytest.fixture(scope="module")
def zabbix(request: pytest.FixtureRequest) -> Iterator[World]:
    need("zabbix_agentd")
    plugin = request.getfixturevalue("consumer_plugin")
    folder = world_readable_dir("check_k8s_health-zabbix-")
    try:
        with FakeApiServer(healthy_routes(), token=TOKEN, anonymous=False, server_names=SERVER_NAMES) as server:
            ca_file = readable_copy(server.ca_file, folder, "k8s-ca.crt")
            token_file = folder / "k8s-token"
            token_file.write_text(TOKEN + "\n")
            os.chown(token_file, 0, grp.getgrnam("zabbix").gr_gid)
            token_file.chmod(0o640)  # as the README says: root:zabbix 640
            with running_agent(folder, local_lines(plugin, str(token_file), ca_file, server.url)) as agent:
                yield World(agent, server, token_file)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _failed(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(endpoint["endpoint"], check["name"]): check["state"] for server in document["servers"]
            for endpoint in server["endpoints"] for check in endpoint["checks"] if not check["ok"]}


def test_agent_healthy_server(zabbix: World) -> None:
    zabbix.set_state(healthy_routes())
    value = zabbix.agent.get("k8s.health.json")
    document = json.loads(value)
    assert value == value.strip() and value.startswith("{")
    assert (document["code"], document["state"]) == (0, "OK"), document["summary"]
    (server,) = document["servers"]
    assert [endpoint["endpoint"] for endpoint in server["endpoints"]] == ["livez", "readyz"]
    assert all(endpoint["http_status"] == 200 and endpoint["checks"] for endpoint in server["endpoints"])
    for item in dependent_items(template(), "k8s.health.json"):
        jsonpath(document, jsonpath_of(item)["parameters"][0])


def test_agent_etcd_down(zabbix: World) -> None:
    zabbix.set_state(etcd_down_routes())
    document = zabbix.agent.document("k8s.health.json")
    assert (document["code"], document["state"]) == (2, "CRITICAL"), document["summary"]
    assert _failed(document) == {("livez", "etcd"): "CRITICAL", ("readyz", "etcd"): "CRITICAL",
                                 ("readyz", "etcd-readiness"): "CRITICAL"}
    row = {"{#SERVER}": document["servers"][0]["name"], "{#ENDPOINT}": "readyz", "{#CHECK}": "etcd-readiness"}
    for prototype in item_prototypes(template()):
        assert jsonpath(document, with_macros(jsonpath_of(prototype)["parameters"][0], row)) == 2


def test_agent_discovery(zabbix: World) -> None:
    zabbix.set_state(healthy_routes())
    discovery = zabbix.agent.document("k8s.health.discovery")
    assert set(discovery) == {"data"}
    rows = discovery["data"]
    name = f"{HOST}:{zabbix.server.port}"
    assert {"{#SERVER}": name, "{#ENDPOINT}": "readyz", "{#CHECK}": "etcd"} in rows
    assert {"{#SERVER}": name, "{#ENDPOINT}": "livez", "{#CHECK}": "poststarthook/rbac/bootstrap-roles"} in rows
    assert all(set(row) == {"{#SERVER}", "{#ENDPOINT}", "{#CHECK}"} and all(isinstance(v, str) for v in row.values())
               for row in rows)


def test_agent_unreachable_server_and_the_url_parameter(zabbix: World) -> None:
    zabbix.set_state(healthy_routes())
    closed = f"https://{HOST}:{_free_port()}"
    document = zabbix.agent.document(f"k8s.health.server.json[{closed}]")
    assert (document["code"], document["state"]) == (2, "CRITICAL")
    assert "connection refused" in document["summary"]
    assert document["servers"][0]["endpoints"][0]["checks"] == []
    failed_discovery = zabbix.agent.document(f"k8s.health.server.discovery[{closed}]")
    assert failed_discovery["code"] == 2 and "data" not in failed_discovery
    # The URL passes UnsafeUserParameters=0 as a key parameter ...
    assert zabbix.agent.document(f"k8s.health.server.json[{zabbix.server.url}]")["code"] == 0
    # ... a glob does not, which is why policy lives in the command line.
    refused = zabbix.agent.get("k8s.health.server.json[poststarthook/*]")
    assert refused.startswith("ZBX_NOTSUPPORTED") and "Special characters" in refused, refused


def test_agent_members_of_the_control_plane(zabbix: World) -> None:
    """The server lists itself as the one member of its control plane, with one fresh Lease."""
    from fakecluster import LEASES_PATH, SLICE_PATH, fresh_leases, slice_reply

    zabbix.set_state(healthy_routes())
    zabbix.server.set_route(SLICE_PATH, slice_reply([HOST], zabbix.server.port))
    zabbix.server.set_route(LEASES_PATH, fresh_leases(1))
    document = zabbix.agent.document(f"k8s.health.members.json[{zabbix.server.url}]")
    assert (document["code"], document["summary"]) == (0, "1 of 1 API servers healthy (livez, readyz)")
    assert (document["members"]["listed"], document["members"]["alive"]) == (1, 1)
    name = f"{HOST}:{zabbix.server.port}"
    for prototype in item_prototypes(template()):
        row = {"{#SERVER}": name, "{#ENDPOINT}": "readyz", "{#CHECK}": "etcd"}
        assert jsonpath(document, with_macros(jsonpath_of(prototype)["parameters"][0], row)) == 0
    rows = zabbix.agent.document(f"k8s.health.members.discovery[{zabbix.server.url}]")["data"]
    assert {row["{#SERVER}"] for row in rows} == {name}


def test_agent_blind_spots(zabbix: World) -> None:
    """The fixed key asks this node's API server for what /readyz cannot see."""
    from fakeblind import APISERVICES_PATH, BLOCKED_LINE, broken_webhook_routes, unavailable_apiservice_routes

    zabbix.set_state(healthy_routes())
    routes = {**broken_webhook_routes(), APISERVICES_PATH: unavailable_apiservice_routes()[APISERVICES_PATH]}
    for route, reply in routes.items():
        zabbix.server.set_route(route, reply)
    document = zabbix.agent.document("k8s.health.blind.json")
    assert (document["code"], document["summary"]) == (2, f"readyz: all 33 sub-checks passed; {BLOCKED_LINE}; and 1 "
                                                          "more")
    items = {item["key"]: item for item in dependent_items(template(), "k8s.health.blind.json")}
    assert count_value(document, items["k8s.health.webhooks.unserved"]) == 2
    assert count_value(document, items["k8s.health.apiservices.unavailable"]) == 3


def test_agent_control_plane(zabbix: World) -> None:
    """The fixed key renews the probe Lease, reads the leader Leases and /metrics through this node's API server:
    the recorded outage of etcd out of space, after its leaders gave up (named in the long output and counted)."""
    from fakeleaders import outage_routes

    zabbix.set_state(healthy_routes())
    for route, reply in outage_routes().items():
        zabbix.server.set_route(route, reply)
    document = zabbix.agent.document("k8s.health.control.json")
    assert document["code"] == 2, document["summary"]
    assert document["summary"] == ("readyz: all 33 sub-checks passed; etcd is out of space: every write is refused; "
                                   "etcd is 97 % full (1.94 GiB of 2 GiB): at 100 % every write "
                                   "is refused; and 1 more"), document["summary"]
    items = {item["key"]: item for item in dependent_items(template(), "k8s.health.control.json")}
    assert count_value(document, items["k8s.health.leaders.leaderless"]) == 2
    assert count_value(document, items["k8s.health.write.code"]) == 2


def test_agent_rejected_token_is_unknown(zabbix: World) -> None:
    zabbix.set_state(healthy_routes(), token=WRONG_TOKEN)
    try:
        document = zabbix.agent.document("k8s.health.json")
    finally:
        zabbix.set_state(healthy_routes())
    assert (document["code"], document["state"]) == (3, "UNKNOWN"), document["summary"]
    assert "rejected" in document["summary"], document["summary"]


def test_agent_slow_readyz_is_answered_by_the_plugin_not_killed_by_the_agent(zabbix: World) -> None:
    routes = etcd_down_routes()
    routes["/readyz"] = dataclasses.replace(routes["/readyz"], delay=4)  # a real /readyz while etcd is down
    zabbix.set_state(routes)
    started = time.monotonic()
    document = zabbix.agent.document("k8s.health.json")
    elapsed = time.monotonic() - started
    assert (document["code"], document["state"]) == (2, "CRITICAL"), document["summary"]
    assert "deadline" in document["summary"], document["summary"]
    assert elapsed < AGENT_TIMEOUT, elapsed


def test_agent_test_mode_as_the_zabbix_user(zabbix: World) -> None:
    zabbix.set_state(healthy_routes())
    proc = subprocess.run(["su", "zabbix", "-s", "/bin/sh", "-c",
                           f"zabbix_agentd -c {zabbix.agent.config} -t k8s.health.json"],
                          capture_output=True, text=True, timeout=AGENT_TIMEOUT + 10, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found: Optional[re.Match[str]] = re.fullmatch(r"k8s\.health\.json\s+\[t\|(.*)\]\s*", proc.stdout, re.DOTALL)
    assert found is not None, proc.stdout
    assert json.loads(found.group(1))["code"] == 0
