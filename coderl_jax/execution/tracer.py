"""Final values of a program's variables, for the execution-semantics alignment task.

Semantics (what ``run_program(..., trace=True).variables`` holds):

* Every function frame of the program (code compiled with the filename ``<program>``,
  including ``class Solution`` methods and ``main()``; comprehensions and lambdas excluded)
  has its locals recorded when the frame *finishes* (returns or raises). Generator and
  coroutine frames are recorded when they finish, not at each ``yield``.
* Module-level names are recorded when the program body ends (after the tests of a call
  job ran, the module is recorded once more by the harness).
* Keys are qualified by scope: ``x`` for module level, ``func.x`` for a local of ``func``,
  ``Solution.solve.x`` for a method, ``outer.inner.x`` for a nested function.
* When a frame of the same function finishes again (loops, recursion), its record replaces
  the earlier one; ``variables`` is ordered by the time each entry was last recorded, so
  the frame that finished last comes last. ``plain_variable_names`` maps to plain names
  with that rule: when a name occurs in several scopes, the last-recorded one wins (the
  module scope finishes last).
* Values are encoded (``encoding.encode_value``) at the moment they are recorded, so later
  mutation of an aliased object does not leak into an earlier record. Modules, functions,
  classes, methods and dunder names are not variables and are skipped; other objects are
  kept as ``__unrepresentable__`` markers.

Mechanism: ``sys.settrace`` with line events switched off per frame
(``frame.f_trace_lines = False``), so the tracer only sees call/return events of the
program's own frames; frames of the standard library return ``None`` at their call event
and are not traced further. Only the main thread is traced. A program that installs its own
trace function (``sys.settrace``) switches the tracer off for the rest of its run.
"""

from __future__ import annotations

import dis
import sys
import types

from .encoding import DEFAULT_CAPS, EncodeCaps, encode_value

PROGRAM_FILENAME = "<program>"

_SUSPENDING_OPCODES = frozenset(
    dis.opmap[name] for name in ("YIELD_VALUE", "RETURN_GENERATOR") if name in dis.opmap
)
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR
_SCALARS = frozenset({int, float, str, bool, type(None)})
_NOT_VARIABLES = (
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    type,
)


def scope_name(code: types.CodeType) -> str:
    """``outer.<locals>.inner`` -> ``outer.inner`` (``co_qualname`` where available)."""
    qualname = getattr(code, "co_qualname", code.co_name)
    return qualname.replace(".<locals>", "")


def _is_suspension(frame: types.FrameType) -> bool:
    code = frame.f_code
    if not code.co_flags & _GENERATOR_FLAGS:
        return False
    lasti = frame.f_lasti
    return 0 <= lasti < len(code.co_code) and code.co_code[lasti] in _SUSPENDING_OPCODES


class VariableTracer:
    """Records final variable values of ``<program>`` frames; see the module docstring."""

    def __init__(self, caps: EncodeCaps = DEFAULT_CAPS, filename: str = PROGRAM_FILENAME):
        self.caps = caps
        self.filename = filename
        # Ordered by record time. Immutable scalars are kept as they are (they cannot change
        # later) and encoded once in ``finish``; anything else is encoded when recorded.
        self._values: dict[str, object] = {}
        self._raw_keys: set[str] = set()
        self._scopes: dict[types.CodeType, str] = {}

    def record(self, scope: str, names: dict) -> None:
        """Records ``names`` under ``scope`` (``""``: module), snapshotting values now."""
        prefix = f"{scope}." if scope else ""
        values, raw_keys = self._values, self._raw_keys
        for name, value in names.items():
            if not isinstance(name, str) or name.startswith("__"):
                continue
            value_type = type(value)
            if value_type not in _SCALARS and issubclass(value_type, _NOT_VARIABLES):
                continue
            key = prefix + name
            values.pop(key, None)
            if value_type in _SCALARS:
                values[key] = value
                raw_keys.add(key)
            else:
                values[key] = encode_value(value, self.caps)
                raw_keys.discard(key)

    @property
    def variables(self) -> dict[str, object]:
        """Qualified name -> encoded value, ordered by the time each was last recorded."""
        return {
            key: encode_value(value, self.caps) if key in self._raw_keys else value
            for key, value in self._values.items()
        }

    def _on_call(self, frame: types.FrameType, event: str, arg: object):
        code = frame.f_code
        if code.co_filename != self.filename or code.co_name.startswith("<"):
            return None
        frame.f_trace_lines = False
        return self._on_frame_event

    def _on_frame_event(self, frame: types.FrameType, event: str, arg: object):
        if event == "return" and not _is_suspension(frame):
            code = frame.f_code
            scope = self._scopes.get(code)
            if scope is None:
                scope = self._scopes[code] = scope_name(code)
            self.record(scope, frame.f_locals)
        return self._on_frame_event

    def start(self) -> None:
        sys.settrace(self._on_call)

    def stop(self) -> None:
        sys.settrace(None)


def plain_variable_names(variables: dict[str, object]) -> dict[str, object]:
    """Qualified names -> plain names: ``{"f.x": 1, "x": 2}`` -> ``{"x": 2}``.

    ``variables`` must be ordered by record time (as the tracer returns it); for a plain name
    present in several scopes the last-recorded entry wins.
    """
    plain: dict[str, object] = {}
    for key, value in variables.items():
        name = key.rsplit(".", 1)[-1]
        plain.pop(name, None)
        plain[name] = value
    return plain
