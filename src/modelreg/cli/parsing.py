"""Turning command-line strings into SDK arguments: ``k=v`` pairs, metrics, params."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelreg.domain.entities import ParamValue
from modelreg.errors import InvalidArgument


def split_pair(text: str, what: str) -> tuple[str, str]:
    """``key=value`` -> (key, value); the value may itself contain ``=``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InvalidArgument(f"invalid {what} {text!r}: expected KEY=VALUE")
    return key, value


def parse_tags(pairs: Iterable[str]) -> dict[str, str]:
    """Tags are kept as the strings given."""
    return dict(split_pair(p, "tag") for p in pairs)


def parse_metrics(pairs: Iterable[str]) -> dict[str, float]:
    """Metric values must be numbers."""
    metrics: dict[str, float] = {}
    for pair in pairs:
        key, raw = split_pair(pair, "metric")
        try:
            metrics[key] = float(raw)
        except ValueError:
            raise InvalidArgument(f"metric {key!r} must be a number, not {raw!r}") from None
    return metrics


def parse_params(pairs: Iterable[str]) -> dict[str, ParamValue]:
    """A value that reads as a JSON scalar keeps its type (``6``, ``0.1``, ``true``,
    ``null``); anything else stays the string given."""
    return {key: _scalar(raw) for key, raw in (split_pair(p, "param") for p in pairs)}


def _scalar(raw: str) -> ParamValue:
    try:
        value: Any = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError:
        return raw
    if isinstance(value, str | int | float | bool):
        return value
    return None if value is None else raw


def _refuse_constant(name: str) -> Any:
    # json accepts NaN and Infinity, which no metric store can compare; keep them as text.
    raise ValueError(name)


def parse_dataset(text: str) -> tuple[str, str | None]:
    """``NAME@VERSION`` -> (name, version); a bare ``NAME`` has no version."""
    name, sep, version = text.rpartition("@")
    if not sep:
        return text, None
    if not name or not version:
        raise InvalidArgument(f"invalid dataset {text!r}: expected NAME or NAME@VERSION")
    return name, version


def read_json(file: Path) -> object:
    """The JSON document in ``file``; InvalidArgument saying what is wrong with it."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"{file} is not UTF-8 text") from None
    try:
        data: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"{file} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    return data
