"""Command-line flags generated from the config dataclasses, and the `Config` they build.

Every setting of `coderl_jax.config.Config` is one absl flag named by
`coderl_jax.config.flag_names`, with the field's type, its default and its comment as help:
``bool`` -> ``--x/--nox``; ``Literal[...]`` -> an enum; tuples -> comma-separated lists;
``X | None`` accepts ``none`` (unless "none" is one of its choices). `define_config_flags`
defines them; `config_from_flags` builds the validated config from the parsed values, and
a bad value raises `FlagValueError`, one line naming the flag and what it needs;
`flag_error` words any `ConfigError` of the library (`coderl_jax.preflight`'s) the same way.

The workdir: ``--workdir`` if given (a flagfile may give it), else ``runs/<name>`` for
``--flagfile=<dir>/<name>.flags`` (`default_workdir`), else the config's ``runs/default``:
a bare run and a flagfile's run never share a directory.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Sequence
from typing import Any

from absl import flags

from coderl_jax import config as config_lib
from coderl_jax.settings import (
    ConfigError,
    Setting,
    fields_of,
    is_optional,
    literal_choices,
    without_none,
)
from coderl_jax.workdir import ConfigChangedError


class FlagValueError(ValueError):
    """A flag value the config rejects; the message names the flag."""


class _SettingParser(flags.ArgumentParser):
    """Parses one setting's text by its type (``none`` for an optional setting)."""

    def __init__(self, hint: Any):
        self.hint = hint
        self.syntactic_help = _type_help(hint)

    def parse(self, argument):
        if not isinstance(argument, str):
            return argument
        choices = literal_choices(self.hint) or ()
        if is_optional(self.hint) and argument.strip().lower() == "none" and "none" not in choices:
            return None
        return _parse(without_none(self.hint), argument)

    def flag_type(self) -> str:
        return self.syntactic_help


def _parse(hint: Any, text: str):
    choices = literal_choices(hint)
    if choices is not None:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(map(str, choices))}")
        return text
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        items = [item.strip() for item in text.split(",") if item.strip()]
        if args[-1] is Ellipsis:
            return tuple(_parse(args[0], item) for item in items)
        if len(items) != len(args):
            raise ValueError(f"needs {len(args)} comma-separated values, got {len(items)}")
        return tuple(_parse(arg, item) for arg, item in zip(args, items))
    if hint is bool:
        if text.lower() in ("true", "1"):
            return True
        if text.lower() in ("false", "0"):
            return False
        raise ValueError("must be true or false")
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError:
            raise ValueError(f"must be {'an integer' if hint is int else 'a number'}") from None
    return text


def _type_help(hint: Any) -> str:
    suffix = " or none" if is_optional(hint) else ""
    hint = without_none(hint)
    choices = literal_choices(hint)
    if choices is not None:
        return f"one of {', '.join(map(str, choices))}{suffix}"
    if typing.get_origin(hint) is tuple:
        return f"comma-separated list{suffix}"
    return f"{getattr(hint, '__name__', str(hint))}{suffix}"


def _serialize(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def define_config_flags(flag_values: flags.FlagValues = flags.FLAGS) -> dict[str, Setting]:
    """Defines one flag per setting; returns ``{flag name: setting}``."""
    names = config_lib.flag_names()
    defined = {}
    for setting in fields_of(config_lib.Config):
        if setting.path not in names:
            continue  # derived from other settings (config_lib.DERIVED)
        name = names[setting.path]
        help_text = setting.help or setting.path
        if setting.type is bool:
            flags.DEFINE_bool(name, setting.default, help_text, flag_values=flag_values)
        else:
            parser = _SettingParser(setting.type)
            serializer = flags.ArgumentSerializer()
            serializer.serialize = _serialize
            flags.DEFINE(
                parser, name, setting.default, help_text, flag_values, serializer=serializer
            )
        defined[name] = setting
    return defined


def default_workdir(argv: Sequence[str]) -> str | None:
    """``runs/<name>`` for the first ``--flagfile=<dir>/<name>.flags`` of ``argv``."""
    for i, arg in enumerate(argv):
        for prefix in ("--flagfile=", "-flagfile="):
            if arg.startswith(prefix):
                return _runs_dir(arg[len(prefix) :])
        if arg in ("--flagfile", "-flagfile") and i + 1 < len(argv):
            return _runs_dir(argv[i + 1])
    return None


def _runs_dir(flagfile: str) -> str:
    return os.path.join("runs", os.path.splitext(os.path.basename(flagfile))[0])


def expanded_flags(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
    """The flags of ``argv`` (without the program name) with every flagfile expanded in
    place, in order (later ones override earlier ones)."""
    return flag_values.read_flags_from_files(list(argv[1:]), force_gnu=False)


def config_from_flags(
    flag_values: flags.FlagValues = flags.FLAGS, workdir: str | None = None
) -> config_lib.Config:
    """The validated `Config` of the parsed flags; raises `FlagValueError` naming the flag.
    ``workdir`` replaces the workdir setting's default when ``--workdir`` is not given."""
    names = config_lib.flag_names()
    tree: dict[str, Any] = {}
    for path, name in names.items():
        node = tree
        *sections, leaf = path.split(".")
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = flag_values[name].value
    if workdir is not None and not flag_values[names["run.workdir"]].present:
        tree["run"]["workdir"] = workdir
    try:
        return config_lib.from_dict(config_lib.Config, tree)
    except ConfigError as e:
        raise flag_error(e, flag_values) from None


def flag_error(error: ConfigError, flag_values: flags.FlagValues = flags.FLAGS) -> FlagValueError:
    """``error`` (naming a setting) as one line naming its flag and value."""
    names = config_lib.flag_names()
    if isinstance(error, ConfigChangedError):
        changes = [
            f"--{names.get(path, path)} {_serialize(old)} -> {_serialize(new)}"
            for path, old, new in error.changes
            if path in names or not any(p in names for p, _, _ in error.changes)
        ]
        return FlagValueError(
            f"--workdir={error.workdir} holds a run saved with other flags: "
            f"{', '.join(changes)}. Pass --allow_config_change to resume it with the new "
            "values, or give another --workdir."
        )
    flag = names.get(error.field)
    if flag is None:  # a derived setting: say which settings it follows from
        return FlagValueError(f"{error.field}: {error.message}")
    value = _serialize(flag_values[flag].value)
    return FlagValueError(f"--{flag}={value}: {error.message}")
