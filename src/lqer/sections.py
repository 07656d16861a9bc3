"""Typed settings: the value types, the `Section` base and its one-line error messages, and
`section.key=value` overrides, shared by an experiment's configuration (`lqer.config`) and a
detector's (`lqer.detection_config`).

Values are checked when they are loaded or assigned, so that a typo or an impossible setting
stops the run at once with one line naming the key, not an hour later with a traceback.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from lqer.errors import LqerError
from lqer.guarded_yaml import first_line, safe_yaml, shown
from lqer.io import write_text

MAX_SEED = 2**32 - 1  # np.random.seed takes no more

# ----------------------------------------------------------------------------- value types
# Pydantic's lax mode already reads "3" as 3 and rejects 2.5 for an int; these add what it
# lets through but the command line should not: booleans as numbers, 2 as true.


def _no_bool(kind: str):
    def check(value: Any) -> Any:
        if isinstance(value, bool):  # YAML reads `true` as a bool, and bool is an int
            raise PydanticCustomError(f"{kind}_type", f"expected {kind}")
        return value

    return check


def _bool(value: Any) -> Any:
    """Words from the command line as before; not 1 or 2 from YAML, which is likely a slip."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise PydanticCustomError("bool_parsing", "expected true or false")


def _text(value: Any) -> Any:
    """YAML turns `data.root=2024` into a number and `2024-01-01` into a date: mean the text."""
    if isinstance(value, (int, float, datetime.date)) and not isinstance(value, bool):
        return str(value)
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _none_word(value: Any) -> Any:
    """`none` means None for optional settings; YAML itself only knows `null` and `~`."""
    if isinstance(value, str) and value.strip().lower() in ("none", "null"):
        return None
    return value


Int = Annotated[int, BeforeValidator(_no_bool("int"))]
Float = Annotated[float, BeforeValidator(_no_bool("float"))]
Bool = Annotated[bool, BeforeValidator(_bool)]
Text = Annotated[str, BeforeValidator(_text)]
NoneWord = BeforeValidator(_none_word)
Probability = Annotated[Float, Field(ge=0, le=1)]
Seed = Annotated[Int, Field(ge=0, le=MAX_SEED)]


def Count(most: int, why: str, least: int = 1):  # a type with bounds, hence the capital
    """An int in [least, most]; `why` explains the bounds in error messages. Every count has an
    upper bound too, so that a typo or a forged checkpoint fails at load, not out of memory."""
    return Annotated[Int, Field(ge=least, le=most, description=why)]


def OptionalCount(most: int, why: str, least: int = 1):
    # Pydantic applies a bound to `int | None` only when the bound sits on the int; messages
    # read the description from the field itself.
    bounded = Annotated[Int, Field(ge=least, le=most)]
    return Annotated[bounded | None, NoneWord, Field(description=why)]


# ----------------------------------------------------------------------------- the base

S = TypeVar("S", bound="Section")


def _check_keys(cls: type[Section], values: Any) -> None:
    """YAML allows keys like `1:`, which the sections' keyword arguments cannot take."""
    if not isinstance(values, dict):
        return  # pydantic says what is wrong
    for key, value in values.items():
        if not isinstance(key, str):
            dotted = f"{cls.prefix}.{shown(key)}" if cls.prefix else shown(key)
            raise LqerError(f"unknown configuration key {dotted!r}")
        section = getattr(cls.model_fields.get(key), "annotation", None)
        if isinstance(section, type) and issubclass(section, Section):
            _check_keys(section, value)


class Section(BaseModel):
    """A part of the configuration whose errors are `LqerError`s naming the dotted key.

    A field's `description` says why its bounds are what they are; error messages quote it.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    prefix: ClassVar[str] = ""  # where the section sits in ExperimentConfig, for messages

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise LqerError(describe(e, type(self))) from None

    def __setattr__(self, name: str, value: Any) -> None:
        old = self.__dict__.get(name)
        try:
            super().__setattr__(name, value)
        except ValidationError as e:
            if name in self.__dict__:  # pydantic stores the value before a section's own checks
                self.__dict__[name] = old
            raise LqerError(describe(e, type(self))) from None

    @classmethod
    def validated(cls: type[S], values: Any) -> S:
        _check_keys(cls, values)
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            raise LqerError(describe(e, cls)) from None

    def replace(self: S, **changes: Any) -> S:
        """A checked copy with some fields changed, like `dataclasses.replace`."""
        return self.validated({**self.model_dump(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def save(self, path: str | Path) -> None:
        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


# ----------------------------------------------------------------------------- messages

_WHAT = {
    "int_parsing": "expected int",
    "int_type": "expected int",
    "int_from_float": "expected an integer",
    "float_parsing": "expected float",
    "float_type": "expected float",
    "finite_number": "expected a finite number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least"),
    "greater_than": ("gt", "must be more than"),
    "less_than_equal": ("le", "must be at most"),
    "less_than": ("lt", "must be less than"),
}


def _field(cls: type[BaseModel], loc: list[str]):
    """The FieldInfo at `loc` below `cls`, or None."""
    info = None
    for part in loc:
        info = cls.model_fields.get(part) if isinstance(cls, type) else None
        if info is None:
            return None
        cls = info.annotation
    return info


def describe(error: ValidationError, cls: type[Section]) -> str:
    """One line for the first of pydantic's errors, e.g. `train.epochs: expected int, got 'x'`."""
    first = error.errors(include_url=False)[0]
    kind, ctx, value = first["type"], first.get("ctx") or {}, first.get("input")
    loc = [str(part) for part in first["loc"]]
    if "field" in ctx:  # a check across fields, raised by the section itself
        loc, value = [*loc, ctx["field"]], ctx["input"]
    key = ".".join([cls.prefix, *loc] if cls.prefix else loc)
    if kind in ("extra_forbidden", "no_such_attribute"):  # the latter on assignment
        return f"unknown configuration key {shown(key)}"
    if kind == "circuit":  # the circuit's own words
        return f"{key}: {first['msg']}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        return f"{key}: {shown(value)} is not one of {', '.join(choices)}"
    why = ctx.get("why")
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        what, info = f"{words} {ctx[name]}", _field(cls, loc)
        why = why or (info.description if info is not None else None)
    else:
        what = _WHAT.get(kind, first["msg"])
    why = f" ({why})" if why else ""
    return f"{key}: {what}, got {shown(value)}{why}".replace("\n", " ")


# ----------------------------------------------------------------------------- overrides


def apply_overrides(cfg: S, overrides: list[str]) -> S:
    """Apply `section.key=value` strings, e.g. `train.epochs=3` or `model.quantum.n_layers=3`,
    to an experiment's configuration (`lqer.config`) or a detector's (`lqer.detection_config`)."""
    values = cfg.to_dict()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise LqerError(f"override {shown(item)} must look like section.key=value")
        *parents, leaf = key.strip().split(".")
        node = values
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise LqerError(f"unknown configuration key {shown(key)}")
            node = node[part]
        if leaf not in node:
            raise LqerError(f"unknown configuration key {shown(key)}")
        try:
            node[leaf] = safe_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise LqerError(f"{key}: not a YAML value ({first_line(e)})") from None
        except RecursionError:
            raise LqerError(f"{key}: not a YAML value (nested too deeply)") from None
    return type(cfg).validated(values)


def flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys: {"train": {"seed": 0}} -> {"train.seed": 0}."""
    found = {}
    for key, value in values.items():
        if isinstance(value, dict):
            found.update(flat(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def changed_keys(old: Section, new: Section) -> list[str]:
    """The dotted keys whose values differ, sorted, e.g. ['model.quantum.shots']."""
    before, after = flat(old.to_dict()), flat(new.to_dict())
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
