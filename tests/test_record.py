"""``record.NamedTuple`` stands in for ``typing.NamedTuple`` at run time (cheaper to build at start-up): it must
behave the same wherever the plugin relies on it."""

from __future__ import annotations

import copy
import typing
from typing import Optional

import pytest

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.model.settings import Target, TlsSettings


class Point(NamedTuple):
    """A point."""

    x: int
    y: int = 0
    label: Optional[str] = None

    @property
    def norm(self) -> int:
        return abs(self.x) + abs(self.y)

    @classmethod
    def origin(cls) -> Point:
        return cls(0)


class Reference(typing.NamedTuple):
    x: int
    y: int = 0
    label: Optional[str] = None


def test_fields_defaults_and_order_match_typing() -> None:
    assert Point._fields == Reference._fields == ("x", "y", "label")
    assert Point._field_defaults == Reference._field_defaults
    assert tuple(Point(1)) == tuple(Reference(1)) == (1, 0, None)
    assert tuple(Point(1, label="a")) == tuple(Reference(1, label="a")) == (1, 0, "a")
    assert Point(x=3, y=4).y == 4 and Point.__doc__ == "A point."


def test_it_is_a_tuple_with_equality_hash_and_unpacking() -> None:
    point = Point(1, 2)
    assert isinstance(point, tuple) and point == (1, 2, None) and hash(point) == hash((1, 2, None))
    x, y, _ = point
    assert (x, y) == (1, 2) and point[1] == 2 and len(point) == 3


def test_methods_properties_and_replace() -> None:
    point = Point(-1, 2)
    assert point.norm == 3 and Point.origin() == Point(0, 0)
    moved = point._replace(y=5)
    assert type(moved) is Point and moved == Point(-1, 5) and point.y == 2
    assert point._asdict() == {"x": -1, "y": 2, "label": None}
    assert repr(point) == "Point(x=-1, y=2, label=None)"
    with pytest.raises(ValueError, match="unexpected field names"):
        point._replace(z=1)  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        point.x = 5  # type: ignore[misc]


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {}, "missing required argument: 'x'"),
    ((1, 2, "a", 4), {}, "takes 3 arguments, 4 given"),
    ((1,), {"x": 2}, "unexpected or repeated arguments: x"),
    ((1,), {"z": 2}, "unexpected or repeated arguments: z"),
])
def test_wrong_arguments_are_refused(args: tuple[object, ...], kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)  # type: ignore[arg-type]


def test_copy_and_match() -> None:
    point = Point(1, 2, "a")
    assert copy.deepcopy(point) == point and type(copy.deepcopy(point)) is Point
    assert Point.__match_args__ == ("x", "y", "label")


def test_the_plugins_own_records() -> None:
    target = Target("https://10.0.0.1:6443", "--server", TlsSettings(), credential=None)  # type: ignore[arg-type]
    assert target.name == "10.0.0.1:6443" and target.proxy is None and target.tls.verify
    assert target._replace(url="https://10.0.0.2:6443").name == "10.0.0.2:6443"
