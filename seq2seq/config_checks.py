"""What a config field may hold: its type, read from YAML by :func:`coerce`, and the rule it may carry beside the
type, which one check applies to every field.

A field is declared with :func:`doc`: its default, its one-line description, and its rule, if any: a
:class:`Bounds` for a number (each number of a list), ``required`` for a path that must be given. Choices live in
the field's type (a ``Literal`` or an ``Enum``), or, for a component the model builds by name (the attention score,
the alignment, the bridge), with the component's registry, which checks them (:mod:`seq2seq.model.network`).
:func:`check_fields` reports the first broken rule as a :class:`~seq2seq.errors.ConfigError` naming the source,
the key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from seq2seq.errors import ConfigError


@dataclass(frozen=True)
class Bounds:
    """The numbers a field allows: from ``low`` up to ``high`` (None: no end), each end included unless ``*_open``."""

    low: float
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    why: str = ""  # said after the range, e.g. why the floor is where it is

    def admits(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def describe(self) -> str:
        """The range in words, as the error message says it: "greater than 0", "in [0, 1)", "at least 8"."""
        low = _number(self.low)
        if self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            text = f"in {left}{low}, {_number(self.high)}{right}"
        else:
            text = f"greater than {low}" if self.low_open else ("0 or greater" if self.low == 0 else f"at least {low}")
        return f"{text} {self.why}" if self.why else text


POSITIVE = Bounds(low=0, low_open=True)
NON_NEGATIVE = Bounds(low=0)
PROBABILITY = Bounds(low=0, high=1, high_open=True)  # a rate that must leave something: [0, 1)
SHARE = Bounds(low=0, high=1, low_open=True)  # a part of a whole that cannot be nothing: (0, 1]
VOCABULARY = Bounds(low=8, why="(4 ids are reserved for pad, unk, bos and eos)")  # pieces


def doc(text: str, default: Any, *, bounds: Bounds | None = None, required: bool = False) -> Any:
    """A field with a default, a one-line description and its rule, kept together so docs and checks cannot drift
    from the field."""
    metadata = {"doc": text, "bounds": bounds, "required": required}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def check_required(section: Any, name: str, source: str) -> None:
    """Every ``required`` field of the config section ``section`` (named ``name``) is given."""
    for spec in dataclasses.fields(section):
        if spec.metadata.get("required") and not getattr(section, spec.name):
            raise ConfigError(f"{source}: {name}.{spec.name} is required (a path); it is missing or empty.")


def check_bounds(section: Any, name: str, source: str) -> None:
    """Every number of the config section ``section`` (named ``name``) within its field's :class:`Bounds`."""
    for spec in dataclasses.fields(section):
        bounds: Bounds | None = spec.metadata.get("bounds")
        value = getattr(section, spec.name)
        if bounds is None:
            continue
        for number in value if isinstance(value, list) else [value]:
            if not bounds.admits(number):
                raise ConfigError(f"{source}: {name}.{spec.name} = {value!r} must be {bounds.describe()}.")


def coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check ``value`` against a type hint; ints are accepted where floats are expected."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return coerce(value, hint, key, source)
    enumerated = isinstance(hint, type) and issubclass(hint, enum.Enum)
    if enumerated or origin is Literal:
        choices = [member.value for member in hint] if enumerated else list(args)
        if value not in choices:
            raise ConfigError(f"{source}: {key} = {value!r} is not a valid choice; expected one of "
                              f"{', '.join(repr(choice) for choice in choices)}.")
        return hint(value) if enumerated else value
    if hint is float:
        return _coerce_float(value, key, source)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} = {value!r} has type {type(value).__name__}; expected a list of "
                              f"{args[0].__name__}, e.g. [0.6, 1.0].")
        return [coerce(item, args[0], f"{key}[{index}]", source) for index, item in enumerate(value)]
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        quote = " (YAML reads yes/no/on/off as booleans: quote the value)" if hint is str and isinstance(
            value, bool) else ""
        raise ConfigError(f"{source}: {key} = {value!r} has type {type(value).__name__}; expected "
                          f"{hint.__name__}{quote}.")
    return value


def _coerce_float(value: Any, key: str, source: str) -> float:
    """Floats, ints, and strings such as "1e-3" (YAML 1.1 reads exponents without a dot as strings); finite."""
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if number is None:
        raise ConfigError(f"{source}: {key} = {value!r} has type {type(value).__name__}; expected float.")
    if not math.isfinite(number):
        raise ConfigError(f"{source}: {key} = {value!r} is not a finite number; expected a float.")
    return number


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
