"""Validation errors as an operator reads them: one line per problem, naming the key, where its
value came from (file or environment variable) and, for a typo, the key it most likely meant."""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError


def model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The table (pydantic model) under ``root`` that holds the last part of ``loc``
    (DispatchSettings for dispatch.approvl, ModemSettings for sms.modems.0.devic), or None."""
    model: type[BaseModel] = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # an item of a list of tables: same model as the list's
        field = model.model_fields.get(part)
        if field is None:
            return None
        inner = field.annotation
        while get_origin(inner) in (list, Annotated, Union, types.UnionType):
            inner = next(a for a in get_args(inner) if a is not type(None))
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return None
        model = inner
    return model


def close_key(root: type[BaseModel], loc: Sequence[int | str]) -> str | None:
    """A typo → the key it most likely meant, written as in the TOML file."""
    if not loc or not isinstance(loc[-1], str):
        return None
    model = model_at(root, loc)
    if model is None:
        return None
    close = difflib.get_close_matches(loc[-1].lower(), list(model.model_fields), n=1, cutoff=0.6)
    if not close:
        return None
    if len(loc) > 1:
        return close[0]
    is_list = get_origin(root.model_fields[close[0]].annotation) is list
    return f"[[{close[0]}]]" if is_list else f"[{close[0]}]"


def format_validation_error(
    root: type[BaseModel],
    exc: ValidationError,
    source: str,
    env_sources: Mapping[tuple[str, str], str] | None = None,
    unknown_env: Sequence[str] = (),
) -> str:
    """One line per problem, naming the key and where its value came from (file or variable)."""
    env_sources = env_sources or {}
    lines: list[str] = []
    from_file = from_env = False
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        loc = tuple(str(p) for p in err["loc"][:2])
        var = env_sources.get((loc[0], loc[1]), "") if len(loc) == 2 else ""
        if var:
            key += f" (from environment variable {var})"
            from_env = True
        else:
            from_file = True
        msg = err["msg"]
        if err["type"] == "value_error" and "error" in err.get("ctx", {}):
            msg = str(err["ctx"]["error"])  # our own message, without "Value error, "
        if err["type"] == "extra_forbidden":
            close = close_key(root, err["loc"])
            msg = (
                f"unknown key; did you mean {close}?"
                if close
                else "unknown key (check spelling; see config/lifeline.example.toml)"
            )
        lines.append(f"  - {key}: {msg}")
    lines += [f"  - {u}" for u in unknown_env]
    from_env = from_env or bool(unknown_env)
    where = (
        f"{source} and the environment"
        if from_file and from_env
        else "the environment"
        if from_env
        else source
    )
    return "\n".join([f"invalid configuration in {where}:", *lines])
