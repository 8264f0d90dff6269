"""``typing.NamedTuple`` for mypy, a cheaper class at run time: typing compiles every field's annotation (a
string here) and collections compiles a ``__new__``, about 0.2 ms a class on every start. These classes are the
same tuples (fields, defaults, ``_replace``, repr, equality), built from code compiled once into bytecode."""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar


class _Record(tuple[Any, ...]):
    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _field_defaults: ClassVar[dict[str, Any]] = {}

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(cls._fields):
            raise TypeError(f"{cls.__name__}() takes {len(cls._fields)} arguments, {len(args)} given")
        if kwargs or len(args) < len(cls._fields):
            values = list(args)
            for name in cls._fields[len(args):]:
                if name not in kwargs and name not in cls._field_defaults:
                    raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
                values.append(kwargs.pop(name) if name in kwargs else cls._field_defaults[name])
            if kwargs:
                raise TypeError(f"{cls.__name__}() got unexpected or repeated arguments: {', '.join(kwargs)}")
            args = tuple(values)
        return tuple.__new__(cls, args)

    def _replace(self, **changes: Any) -> Any:
        values = tuple(changes.pop(name, value) for name, value in zip(self._fields, self))
        if changes:
            raise ValueError(f"Got unexpected field names: {list(changes)!r}")
        return tuple.__new__(type(self), values)

    def _asdict(self) -> dict[str, Any]:
        return dict(zip(self._fields, self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in zip(self._fields, self))})"

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)


class _RecordMeta(type):
    def __new__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> Any:
        if not bases:  # NamedTuple itself
            return super().__new__(cls, name, bases, namespace)
        fields = tuple(namespace.get("__annotations__", ()))
        body = {key: value for key, value in namespace.items() if key not in fields}
        body.update(__slots__=(), _fields=fields, __match_args__=fields,
                    _field_defaults={field: namespace[field] for field in fields if field in namespace})
        body.update({field: property(itemgetter(index)) for index, field in enumerate(fields)})
        return type.__new__(type, name, (_Record,), body)


if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple  # noqa: PLC0414 (a re-export)
else:
    class NamedTuple(metaclass=_RecordMeta):
        """Subclass it as ``typing.NamedTuple``: annotated fields, defaults, methods, properties."""
