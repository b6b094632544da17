"""LIFELINE_<SECTION>__<KEY> environment variables → settings overrides.

Text settings take an env value verbatim, the others read it as a TOML value. A LIFELINE_
variable that matches no setting is reported with the closest valid name. The settings schema
(``root``) is a parameter, so this module knows nothing of its sections."""

from __future__ import annotations

import difflib
import functools
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr

ENV_PREFIX = "LIFELINE_"
CONFIG_ENV = "LIFELINE_CONFIG"


@functools.cache
def _env_settings(root: type[BaseModel]) -> dict[str, tuple[str, str, Any]]:
    """Every valid LIFELINE_<SECTION>__<KEY> → (section, key, the field's type)."""
    out: dict[str, tuple[str, str, Any]] = {}
    for section, field in root.model_fields.items():
        table = field.annotation
        if isinstance(table, type) and issubclass(table, BaseModel):
            for key, sub in table.model_fields.items():
                var = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
                out[var] = (section, key, sub.annotation)
    return out


def _is_text(annotation: Any) -> bool:
    """str, SecretStr, Path, string Literals and Optional/unions of those: values taken as is."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_text(get_args(annotation)[0])
    if origin is Literal:
        return all(isinstance(a, str) for a in get_args(annotation))
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(_is_text(a) for a in args)
    return isinstance(annotation, type) and issubclass(annotation, (str, SecretStr, PurePath))


def _coerce_env(value: str, annotation: Any) -> Any:
    """Env values are strings. A text setting takes the value verbatim (a password "12345678",
    "true" or with quotes stays exactly that); other settings read it as a TOML value, so lists,
    tables, booleans and numbers work ("[...]", "true", "4096")."""
    if _is_text(annotation):
        return value
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value  # validation then names the variable and the expected type


@dataclass(frozen=True, slots=True)
class EnvOverrides:
    overrides: dict[str, dict[str, Any]]  # section → key → value
    sources: dict[tuple[str, str], str]  # (section, key) → the variable that set it
    unknown: list[str]  # messages for LIFELINE_ variables that match no setting


def read_env(environ: Mapping[str, str], root: type[BaseModel]) -> EnvOverrides:
    known = _env_settings(root)
    env = EnvOverrides({}, {}, [])
    for var, value in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        match = known.get(var.upper())
        if match is None:
            env.unknown.append(_unknown_env(var, [*known, CONFIG_ENV], root))
            continue
        section, key, annotation = match
        env.overrides.setdefault(section, {})[key] = _coerce_env(value, annotation)
        env.sources[(section, key)] = var
    return env


def _unknown_env(var: str, valid: list[str], root: type[BaseModel]) -> str:
    section, sep, key = var[len(ENV_PREFIX) :].lower().partition("__")
    what = f" ({section}.{key})" if sep and section and key else ""
    if (
        sep
        and section in root.model_fields
        and not any(v.startswith(f"{ENV_PREFIX}{section.upper()}__") for v in valid)
    ):
        return (
            f"environment variable {var}: [{section}] is a list of tables and can only be "
            "set in the config file"
        )
    same_section = [v for v in valid if sep and v.startswith(f"{ENV_PREFIX}{section.upper()}__")]
    # Two letters swapped (HOTS for HOST) first: difflib would rather add one (HOSTS).
    close = [v for v in same_section if sorted(v) == sorted(var.upper())]
    close = close or difflib.get_close_matches(var.upper(), same_section, n=1, cutoff=0.5)
    close = close or difflib.get_close_matches(var.upper(), valid, n=1, cutoff=0.6)
    hint = (
        f"; did you mean {close[0]}?"
        if close
        else f"; settings are {ENV_PREFIX}<SECTION>__<KEY> (two underscores), "
        "see config/lifeline.example.toml"
    )
    return f"environment variable {var} matches no setting{what}{hint}"
