"""Strict construction of frozen dataclasses from plain mappings (parsed YAML, overrides).

Unknown keys and wrong types are errors that name the key; values are coerced only where
lossless (an int for a float, YAML's ``1e-4`` string for a float). Used by :mod:`hanet.config`
for the run configuration and by :mod:`hanet.skeletons` for declared joint layouts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from hanet.errors import UserError

__all__ = [
    "ConfigError",
    "build_section",
    "check_type",
    "read_yaml",
    "require",
    "split_override",
    "yaml_problem",
]


class ConfigError(UserError, ValueError):
    """A configuration file or override is invalid; the message names the key."""


def require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def check_type(key: str, value: Any, annotation: Any) -> Any:
    """Return ``value`` coerced to ``annotation`` where lossless, else raise ConfigError."""
    origin = get_origin(annotation)
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {list(choices)}")
        return value
    if origin in (Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return check_type(key, value, option)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin is tuple:  # tuple[X, ...]: a YAML list
        item = get_args(annotation)[0]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    if dataclasses.is_dataclass(annotation):  # a nested section: a YAML mapping
        return value if isinstance(value, annotation) else build_section(annotation, value, key)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):
            # YAML 1.1 reads "1e-4" (no dot) as a string; it is plainly a number.
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {annotation!r}")  # pragma: no cover


def build_section(cls: type, raw: Any, prefix: str) -> Any:
    """``cls(**raw)`` with every key known to ``cls`` and every value of its field's type."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown key (known: {sorted(names)})")
    kwargs = {}
    for name, value in raw.items():
        kwargs[name] = check_type(f"{prefix}.{name}", value, hints[name])
    return cls(**kwargs)


def split_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"{text}: overrides take the form section.key=value")
    key, _, value = text.partition("=")
    if not value.strip():
        return key.strip(), ""
    # YAML gives numbers, booleans and null their types; `null`/`~` mean None.
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise ConfigError(
            f"--set {text}: the value {value.strip()!r} is not valid YAML "
            f"({yaml_problem(err, located=False)}); quote text that holds YAML syntax"
        ) from None


def yaml_problem(err: yaml.YAMLError, located: bool = True) -> str:
    """A YAML error as one line: what is wrong and, when ``located``, where (the library's
    own text spans several lines and quotes the input)."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    if not located or mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def read_yaml(path: Path, what: str, error: type[Exception] = ConfigError) -> Any:
    """``path`` parsed with YAML's safe loader; unreadable files and invalid YAML raise
    ``error`` with a message naming the file and ``what`` it was meant to be."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise error(f"{path}: cannot read {what} ({err.strerror})") from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise error(f"{path}: invalid YAML ({yaml_problem(err)})") from err
