"""icinga2-commands.conf and the argument parser must not drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from check_k8s_health.cli import build_parser

CONF = (Path(__file__).resolve().parent.parent / "icinga2-commands.conf").read_text()

#: Options without a CheckCommand argument. --output and --discover print JSON for Zabbix and scripts (SPEC
#: section 7): Icinga needs the plugin line, so they are deliberately left out of the CheckCommand.
NOT_FOR_ICINGA = ("--help", "--version", "--verbose", "--output", "--discover")


def _long_options() -> set[str]:
    options = set()
    for action in build_parser()._actions:
        longs = [opt for opt in action.option_strings if opt.startswith("--")]
        if longs and longs[0] not in NOT_FOR_ICINGA:
            options.add(longs[0])
    return options


def test_every_option_has_an_argument() -> None:
    keys = set(re.findall(r'^\t\t"(--[a-z-]+)" = \{', CONF, re.MULTILINE))
    assert keys == _long_options()


def test_every_argument_has_a_description_and_a_variable_named_after_it() -> None:
    for key, body in re.findall(r'^\t\t"(-[a-z-]+)" = \{(.*?)^\t\t\}', CONF, re.MULTILINE | re.DOTALL):
        assert "description = " in body, key
        if key.startswith("--"):
            assert f"$k8s_health_{key[2:].replace('-', '_')}$" in body, key


def test_descriptions_are_the_help_texts() -> None:
    """Director shows the descriptions: they must say what --help says."""
    descriptions = {}
    for key, body in re.findall(r'^\t\t"(--[a-z-]+)" = \{(.*?)^\t\t\}', CONF, re.MULTILINE | re.DOTALL):
        found = re.search(r'^\t\t\tdescription = "((?:[^"\\]|\\.)*)"$', body, re.MULTILINE)
        assert found is not None, key
        descriptions[key] = found.group(1)
    helps = {}
    for action in build_parser()._actions:
        longs = [opt for opt in action.option_strings if opt.startswith("--")]
        if longs and longs[0] not in NOT_FOR_ICINGA:
            helps[longs[0]] = str(action.help).replace("\\", "\\\\").replace('"', '\\"')  # Icinga string escapes
    assert descriptions == helps


def test_verbosity_keys_name_the_variable() -> None:
    for key in ("-v", "-vv", "-vvv"):
        block = re.search(rf'^\t\t"{key}" = \{{(.*?)^\t\t\}}', CONF, re.DOTALL | re.MULTILINE)
        assert block is not None and "k8s_health_verbose" in block.group(1).split("description = ", 1)[1], key


def test_flags_use_set_if_and_repeatables_repeat_the_key() -> None:
    parser = build_parser()
    for action in parser._actions:
        longs = [opt for opt in action.option_strings if opt.startswith("--")]
        if not longs or longs[0] in NOT_FOR_ICINGA:
            continue
        block = re.search(rf'"{longs[0]}" = \{{(.*?)^\t\t\}}', CONF, re.DOTALL | re.MULTILINE)
        assert block is not None, longs[0]
        if action.nargs == 0:  # a flag
            assert "set_if" in block.group(1) and "value" not in block.group(1), longs[0]
        if type(action).__name__ == "_AppendAction":
            assert "repeat_key = true" in block.group(1), longs[0]
    for option in ("--server", "--endpoint", "--exclude"):
        block = re.search(rf'"{option}" = \{{(.*?)\}}', CONF, re.DOTALL)
        assert block is not None and "repeat_key = true" in block.group(1), option


def test_the_token_goes_through_the_environment_only() -> None:
    assert '"K8S_HEALTH_TOKEN" = "$k8s_health_token$"' in CONF
    assert CONF.count("$k8s_health_token$") == 1
