"""The size of etcd's database, found in the API server's ``/metrics`` (pure: bytes in, values out).

``/metrics`` is megabytes of Prometheus text; the two lines wanted sit near its start. ``StorageScan`` takes the
body piece by piece as it arrives, searches each piece for the metric names (a byte search, not a parse of every
line) and says when it is done: once the lines of ``apiserver_storage_size_bytes`` (label ``cluster`` in v1.28,
``storage_cluster_id`` from v1.29 on, one line per etcd cluster) have been followed by another line, since a
metric's lines come together. Only where that metric is absent (before v1.28) is the whole body read, for the
deprecated ``apiserver_storage_db_total_size_in_bytes`` (one line per etcd endpoint). The largest value counts.
"""

from __future__ import annotations

import math
from typing import Union

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.shared.read import Failure
from check_k8s_health.model.settings import Target

SIZE = b"apiserver_storage_size_bytes"
DEPRECATED = b"apiserver_storage_db_total_size_in_bytes"
#: A line longer than this is not one of the two wanted: its text is dropped as it arrives, never kept.
MAX_LINE = 4096
#: A hostile ``/metrics`` costs at most this much reading before the look-up gives up.
MAX_SCAN = 64 * 1024 * 1024


class Storage(NamedTuple):
    """What ``/metrics`` said of the database: the largest usable value of the metric found, in bytes."""

    #: The metric the size came from (``apiserver_storage_size_bytes``, else the deprecated one); "" for neither.
    metric: str = ""
    size: Union[float, None] = None
    #: Every line of that metric as (labels, value text), for ``-vv`` and the JSON document.
    samples: tuple[tuple[str, str], ...] = ()
    #: Values that are not a size (NaN, infinite, negative, not a number), said, never judged.
    unusable: tuple[str, ...] = ()


class EtcdSize(NamedTuple):
    via: Target
    found: Union[Storage, Failure]


class StorageScan:
    """Fed with the pieces of a ``/metrics`` body; ``feed`` returns True once nothing after can change the result.

    A line split across pieces is carried to the next; a "line" that grows past ``MAX_LINE`` is skipped to its
    end, so neither a body without newlines nor binary garbage makes this keep more than a few KiB."""

    def __init__(self) -> None:
        self._carry = b""
        self._skipping = False
        self._found: dict[bytes, list[tuple[str, str]]] = {SIZE: [], DEPRECATED: []}
        self._done = False
        self.scanned = 0

    def feed(self, chunk: bytes) -> bool:
        self.scanned += len(chunk)
        if self._done:
            return True
        if self._skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return False
            chunk, self._skipping = chunk[newline + 1:], False
        data = self._carry + chunk
        end = data.rfind(b"\n")
        complete, self._carry = (b"", data) if end < 0 else (data[:end + 1], data[end + 1:])
        if len(self._carry) > MAX_LINE:
            self._carry, self._skipping = b"", True
        if complete:
            self._done = self._lines(b"\n" + complete)
        return self._done

    def finish(self) -> Storage:
        """The result once the body ended (or the scan stopped): a last line without a newline counts too."""
        if self._carry and not self._done and not self._skipping:
            self._lines(b"\n" + self._carry + b"\n")
            self._carry = b""
        for name in (SIZE, DEPRECATED):
            samples = self._found[name]
            if samples:
                values = [(labels, value, _size(value)) for labels, value in samples]
                usable = [size for _, _, size in values if size is not None]
                unusable = tuple(f"{name.decode()}{labels} {one_line(value, 40)}" for labels, value, size in values
                                 if size is None)
                return Storage(name.decode(), max(usable) if usable else None, tuple(samples), unusable)
        return Storage()

    def _lines(self, text: bytes) -> bool:
        """Take the wanted lines out of complete lines (``text`` starts with a newline); True when the size
        metric's lines are over."""
        for name in (DEPRECATED, SIZE):
            start = text.find(b"\n" + name)
            while start >= 0:
                end = text.find(b"\n", start + 1)
                line = text[start + 1:end]
                sample = _sample(line, name)
                if sample is not None:
                    self._found[name].append(sample)
                start = text.find(b"\n" + name, start + 1)
        if not self._found[SIZE]:
            return False
        # Done when another line follows the last line of the size metric: a later piece cannot hold more of it.
        # A partial line counts once it can no longer become one of the metric's.
        tail = text.rfind(b"\n" + SIZE)
        following = text.find(b"\n", tail + 1)
        if following < len(text) - 1:
            return True
        head = self._carry[:len(SIZE)]
        return bool(head) and not SIZE.startswith(head)


def _sample(line: bytes, name: bytes) -> Union[tuple[str, str], None]:
    """(labels, value) of ``name{labels} value [timestamp]``, or None for another metric whose name starts so."""
    rest = line[len(name):]
    if rest.startswith(b"{"):
        close = rest.rfind(b"}")
        if close < 0:
            return None
        labels, rest = rest[:close + 1], rest[close + 1:]
    elif rest[:1] in (b" ", b"\t"):
        labels = b""
    else:
        return None
    fields = rest.split()
    if not fields:
        return None
    return (one_line(labels.decode("utf-8", errors="replace"), 200),
            one_line(fields[0].decode("utf-8", errors="replace"), 60))


def _size(value: str) -> Union[float, None]:
    """A size in bytes: a finite, non-negative number (Prometheus writes ``2.8672e+05`` as readily as ``286720``)."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
