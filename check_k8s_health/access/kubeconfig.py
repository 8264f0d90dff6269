"""Reads kubeconfig files the way client-go (and so kubectl) does, so an operator's existing file just works.

- ``--kubeconfig PATH`` is read alone and must exist; otherwise ``KUBECONFIG`` (a ``:``-separated list, missing
  files skipped) or ``~/.kube/config``.
- Merging: each named cluster, user and context comes whole from the first file that defines it;
  ``current-context`` is the first non-empty one.
- Every entry remembers the file that defined it, because relative paths in it resolve against that file's folder.

PyYAML is imported here only, and this module only when a kubeconfig is read: most runs never pay for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional

from check_k8s_health.access.files import read_small_file
from check_k8s_health.base.errors import ConfigError
from check_k8s_health.base.record import NamedTuple

MAX_FILE_BYTES = 4 * 1024 * 1024


class Entry(NamedTuple):
    """One named cluster, user or context and the file it came from."""

    name: str
    fields: Mapping[str, Any]
    origin: str

    def path(self, key: str) -> Optional[str]:
        """A file-path field, resolved against the folder of the file that defined this entry."""
        value = self.text(key)
        if value is None:
            return None
        return value if os.path.isabs(value) else os.path.join(os.path.dirname(os.path.abspath(self.origin)), value)

    def text(self, key: str) -> Optional[str]:
        value = self.fields.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigError(f"kubeconfig {self.origin}: {key} of {self.name!r} must be a string")
        return value

    def flag(self, key: str) -> bool:
        value = self.fields.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"kubeconfig {self.origin}: {key} of {self.name!r} must be true or false")
        return value


class Merged:
    """What the files say together; filled file by file, first definition wins."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.clusters: dict[str, Entry] = {}
        self.users: dict[str, Entry] = {}
        self.contexts: dict[str, Entry] = {}
        self.current_context = ""


class Choice(NamedTuple):
    """The context a run uses: its cluster, its user (if any) and where they came from."""

    files: tuple[str, ...]
    context: str
    cluster: Entry
    user: Optional[Entry]


def candidate_files(explicit: Optional[str], environ: Mapping[str, str]) -> tuple[list[str], bool]:
    """The files to read and whether they were named explicitly (then a missing one is an error)."""
    if explicit is not None:
        return [explicit], True
    listed = environ.get("KUBECONFIG", "")
    if listed:
        return list(dict.fromkeys(path for path in listed.split(os.pathsep) if path)), False
    home = environ.get("HOME") or os.path.expanduser("~")
    return [os.path.join(home, ".kube", "config")], False


def load(paths: list[str], explicit: bool) -> Merged:
    merged = Merged()
    for path in paths:
        if not explicit and not os.path.exists(path):
            continue
        document = _read(path)
        merged.files.append(path)
        for key, store in (("clusters", merged.clusters), ("users", merged.users), ("contexts", merged.contexts)):
            for entry in _entries(document, key, path):
                store.setdefault(entry.name, entry)
        current = document.get("current-context") or ""
        if not isinstance(current, str):
            raise ConfigError(f"kubeconfig {path}: current-context must be a string")
        if current and not merged.current_context:
            merged.current_context = current
    return merged


def select(merged: Merged, context: Optional[str]) -> Choice:
    where = ", ".join(merged.files) or "no kubeconfig file"
    name = context or merged.current_context
    if not name:
        raise ConfigError(f"{where}: no current-context set; give --context NAME or -s URL")
    entry = merged.contexts.get(name)
    if entry is None:
        if context:
            raise ConfigError(f'context "{name}" does not exist in {where}')
        raise ConfigError(f"{where}: current-context {name!r} names no context; give --context NAME")
    cluster_name = entry.text("cluster")
    if cluster_name is None:
        raise ConfigError(f"kubeconfig {entry.origin}: context {name!r} names no cluster")
    cluster = merged.clusters.get(cluster_name)
    if cluster is None:
        raise ConfigError(f'kubeconfig {entry.origin}: context {name!r} uses cluster "{cluster_name}", which '
                          f"does not exist in {where}")
    user_name = entry.text("user")
    user = merged.users.get(user_name) if user_name else None
    if user_name and user is None:
        raise ConfigError(f'kubeconfig {entry.origin}: context {name!r} uses user "{user_name}", which does not '
                          f"exist in {where}")
    return Choice(tuple(merged.files), name, cluster, user)


def _read(path: str) -> Mapping[str, Any]:
    import yaml

    data = read_small_file(path, "kubeconfig", MAX_FILE_BYTES)
    try:
        document = yaml.load(data, Loader=_loader())  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "parse error"
        raise ConfigError(f"kubeconfig {path} is not valid YAML{at}: {problem}") from None
    except (ValueError, RecursionError):
        raise ConfigError(f"kubeconfig {path} is not valid YAML") from None
    if document is None:
        return {}  # an empty file contributes nothing, as in client-go
    if not isinstance(document, dict):
        raise ConfigError(f"kubeconfig {path} is not a kubeconfig (a mapping with clusters, users, contexts)")
    return document


def _loader() -> Any:
    """libyaml's loader (parsing in C, same safe subset of YAML) where libyaml refuses deep nesting itself (0.2.6,
    as in PyYAML's wheels). libyaml 0.2.5 (Debian 12) recurses through a file of 100,000 "[" until the process
    dies of a segmentation fault; Python's own loader stops at the recursion limit with a RecursionError."""
    import yaml

    try:
        from yaml import _yaml

        refuses_deep_nesting = _yaml.get_version() >= (0, 2, 6)
    except (ImportError, AttributeError):
        refuses_deep_nesting = False
    return yaml.CSafeLoader if refuses_deep_nesting else yaml.SafeLoader


def _entries(document: Mapping[str, Any], key: str, path: str) -> list[Entry]:
    items = document.get(key) or []
    if not isinstance(items, list):
        raise ConfigError(f"kubeconfig {path}: {key} must be a list")
    inner = key[:-1]  # clusters -> cluster
    entries = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item.get("name"):
            raise ConfigError(f"kubeconfig {path}: every entry of {key} needs a name")
        fields = item.get(inner) or {}
        if not isinstance(fields, dict):
            raise ConfigError(f"kubeconfig {path}: {inner} of {item['name']!r} must be a mapping")
        entries.append(Entry(item["name"], fields, path))
    return entries
