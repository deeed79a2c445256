"""Settings as frozen dataclasses: validation that names its field, and the field walk.

Every config section (`coderl_jax.config` composes them) is a frozen dataclass whose fields
carry a comment saying what they mean::

    steps: int = 100  # RL steps

Sections validate themselves in ``__post_init__`` with `require`, which raises a
`ConfigError` naming the field, and `check_choices`, which checks every ``Literal`` field.
`fields_of` walks a (nested) section and yields each leaf setting with its dotted path,
type, default and the comment as help text: `experiments/config_flags.py` generates the
command-line flags from it, so a setting is written once, where its section is defined.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import textwrap
import tokenize
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

# The rule set that decides rewards and alignment tasks (README, "Fidelity"): "official"
# reproduces the official CodeRL+ code, quirks included; "improved" is this project's.
Semantics = Literal["official", "improved"]


class ConfigError(ValueError):
    """A setting with a bad value: ``field`` is its name (a dotted path once composed)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def within(self, section: str) -> ConfigError:
        """The same error with ``field`` prefixed by the enclosing section's path."""
        return ConfigError(f"{section}.{self.field}" if section else self.field, self.message)


def require(condition: bool, field: str, message: str) -> None:
    """Raises `ConfigError(field, message)` unless ``condition``."""
    if not condition:
        raise ConfigError(field, message)


def check_choices(section: Any) -> None:
    """Raises `ConfigError` for the first ``Literal`` field whose value is not a choice."""
    hints = _type_hints(type(section))
    for field in dataclasses.fields(section):
        choices = literal_choices(hints[field.name])
        value = getattr(section, field.name)
        if choices and not (value is None and is_optional(hints[field.name])):
            require(value in choices, field.name, f"must be one of {choices}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One leaf field of a (nested) settings dataclass."""

    path: str  # dotted path from the root, e.g. "rollout.sampling.temperature"
    name: str  # the field's own name
    type: Any  # its annotation, resolved
    default: Any  # its value in the root's default instance
    help: str  # the field's comment


def fields_of(root: Any, prefix: str = "") -> Iterator[Setting]:
    """Every leaf setting of a (nested) settings dataclass, depth first in field order (a
    field whose type is a dataclass is a section and is walked into). ``root`` is an
    instance (its values are the defaults given) or a class (its fields' own defaults, as
    written, before any derivation a ``__post_init__`` makes)."""
    hints = _type_hints(root if isinstance(root, type) else type(root))
    docs = field_comments(root if isinstance(root, type) else type(root))
    for field in dataclasses.fields(root):
        path = f"{prefix}{field.name}"
        if isinstance(root, type):
            value = (
                field.default
                if field.default_factory is dataclasses.MISSING
                else (field.default_factory())
            )
        else:
            value = getattr(root, field.name)
        if dataclasses.is_dataclass(hints[field.name]):
            yield from fields_of(value, path + ".")
        else:
            yield Setting(path, field.name, hints[field.name], value, docs.get(field.name, ""))


def literal_choices(hint: Any) -> tuple | None:
    """The choices of a ``Literal[...]`` (or ``Literal[...] | None``) hint, else None."""
    for arg in (hint, *typing.get_args(hint)):
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return None


def is_optional(hint: Any) -> bool:
    """Whether ``hint`` admits None (``X | None``)."""
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in (
        typing.get_args(hint)
    )


def without_none(hint: Any) -> Any:
    """``X`` for ``X | None``; ``hint`` otherwise."""
    if not is_optional(hint):
        return hint
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(args) != 1:
        raise TypeError(f"settings may be X or X | None, not {hint}")
    return args[0]


@functools.cache
def field_comments(cls: type) -> dict[str, str]:
    """``{field name: help}`` from the class source: the comment at the end of the field's
    line, after the full-line comments right above it (joined with spaces)."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}
    full_line: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            line = token.start[0]
            comments[line] = token.string.lstrip("#").strip()
            if not token.line[: token.start[1]].strip():
                full_line.add(line)
    out = {}
    for node in ast.parse(source).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, line = [], node.lineno - 1
        while line in full_line:
            above.insert(0, comments[line])
            line -= 1
        trailing = comments.get(node.end_lineno) if node.end_lineno not in full_line else None
        out[node.target.id] = " ".join(above + ([trailing] if trailing else []))
    return out


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)
