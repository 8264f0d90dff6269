"""Makes text from servers and files safe for a plugin line.

A sub-check name or a proxy's error page may hold ``|`` (the perfdata separator: nagiosplugin deletes it and
appends a warning line), newlines (which would start long output) or control characters; any of them would
break the line Icinga, Nagios and NRPE parse.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x1f\x7f|]+")
_SPACES = re.compile(r"\s+")


def one_line(text: str, limit: int = 200) -> str:
    """One printable line, ``|`` turned into ``/``, at most ``limit`` characters (cut with ``...``)."""
    clean = _SPACES.sub(" ", _UNSAFE.sub(lambda m: "/" if "|" in m.group() else " ", text)).strip()
    if len(clean) > limit:
        clean = clean[: max(0, limit - 3)].rstrip() + "..."
    return clean
