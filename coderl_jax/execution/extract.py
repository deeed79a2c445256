"""The program inside a model completion.

The code-generation prompt asks for the code in a ```python fence at the end, so extraction
looks for fences, in this order of preference:

1. Clean-up: ``\\r\\n`` and ``\\r`` become ``\\n``. Reasoning sections are dropped: every
   closed ``<think>...</think>``; text before a ``</think>`` with no opening tag (templates
   that open the think section inside the prompt); and everything from an unclosed
   ``<think>`` to the end (the answer never came).
2. ``fenced_python``: the last complete fenced block tagged ``python``, ``py`` or ``python3``
   (any case).
3. ``fenced_other``: otherwise, the last complete fenced block with any other tag or none.
4. ``unterminated_fence``: otherwise, when the last opening fence is tagged python (or has no
   tag) and never closes (the completion was cut off), everything after it.
5. ``no_code``: otherwise ``None``. Unfenced code is not guessed at: the instruction asks for a
   fence, and the reward should teach that.

A fence opens with three backticks at the start of a line or after whitespace (small models
write ``Answer: ```python``), an optional tag, and nothing else up to the newline; so an echo
of the instruction ("in ```python ...``` at the end") opens nothing. It closes at the next
three backticks, wherever they are (small models often write ``print(x)```). Blocks whose
body is blank are ignored. The returned code is dedented, has leading and trailing blank lines
removed, and ends with one newline.

With ``semantics="official"`` both functions reproduce the official CodeRL+ code instead:

* ``extract_code`` (what the code reward judges; verl ``livecodebench/compute_score.py``):
  when the text contains ``</think>``, only the part between the first ``</think>`` and the
  next one is searched. Blocks are the non-overlapping matches of the regular expression
  ``_OFFICIAL_BLOCK`` (three backticks, the tag exactly ``python``, a newline, then the body up
  to the next three backticks anywhere, even mid-line); the last one is taken as is (not
  stripped) and must ``ast.parse``, else ``None``. So ``Python``, ``py``, ``python3`` and
  untagged fences, a CRLF after the tag and unterminated fences give no code.
* ``extract_task_code`` (what a failed rollout's alignment task is built from;
  ``recipe/code_extractor.py``): the same pattern over the whole text (``</think>`` is not
  looked at), every block stripped, blank ones dropped, the last one taken, no parse check.

``semantics="improved"`` uses the rules above for both.
"""

from __future__ import annotations

import ast
import re
import textwrap
import warnings

EXTRACT_REASONS: tuple[str, ...] = (
    "fenced_python",
    "fenced_other",
    "unterminated_fence",
    "no_code",
)
PYTHON_TAGS = frozenset({"python", "py", "python3"})

_FENCE = "```"
_OPENING_FENCE = re.compile(r"(?:^|(?<=\s))```[ \t]*([^\s`]*)[ \t]*\n", re.MULTILINE)
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_OFFICIAL_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _strip_reasoning(text: str) -> str:
    text = _THINK_BLOCK.sub("", text)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        text = text.split("<think>", 1)[0]
    return text


def _clean(body: str) -> str:
    return textwrap.dedent(body).strip("\n").rstrip() + "\n"


def extract_code_with_reason(completion: str) -> tuple[str | None, str]:
    """The program in ``completion`` and how it was found.

    Returns:
      ``(code, reason)`` with ``reason`` one of ``EXTRACT_REASONS``; ``code`` is None exactly
      when ``reason == "no_code"``. See the module docstring for the rules.
    """
    if not isinstance(completion, str):
        raise TypeError(f"extract_code: completion must be str, got {type(completion).__name__}")
    text = _strip_reasoning(completion.replace("\r\n", "\n").replace("\r", "\n"))

    complete_blocks: list[tuple[str, str]] = []  # (tag, body), in order of appearance
    unterminated: tuple[str, str] | None = None
    pos = 0
    while (opening := _OPENING_FENCE.search(text, pos)) is not None:
        tag = opening.group(1).lower()
        close = text.find(_FENCE, opening.end())
        if close < 0:
            unterminated = (tag, text[opening.end() :])
            break
        complete_blocks.append((tag, text[opening.end() : close]))
        pos = close + len(_FENCE)

    nonblank = [(tag, body) for tag, body in complete_blocks if body.strip()]
    python_blocks = [body for tag, body in nonblank if tag in PYTHON_TAGS]
    if python_blocks:
        return _clean(python_blocks[-1]), "fenced_python"
    if nonblank:
        return _clean(nonblank[-1][1]), "fenced_other"
    if unterminated is not None:
        tag, body = unterminated
        if (tag in PYTHON_TAGS or not tag) and body.strip():
            return _clean(body), "unterminated_fence"
    return None, "no_code"


def _parses(code: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning about the program: not ours to print
        try:
            ast.parse(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return False
    return True


def _official_reward_code(completion: str) -> str | None:
    text = completion.split("</think>")[1] if "</think>" in completion else completion
    blocks = _OFFICIAL_BLOCK.findall(text)
    return blocks[-1] if blocks and _parses(blocks[-1]) else None


def _official_task_code(completion: str) -> str | None:
    blocks = [block.strip() for block in _OFFICIAL_BLOCK.findall(completion)]
    blocks = [block for block in blocks if block]
    return blocks[-1] if blocks else None


def _improved_code(completion: str) -> str | None:
    return extract_code_with_reason(completion)[0]


_REWARD_EXTRACTORS = {"improved": _improved_code, "official": _official_reward_code}
_TASK_EXTRACTORS = {"improved": _improved_code, "official": _official_task_code}


def _check_text(text: str, semantics: str, table: dict) -> None:
    if not isinstance(text, str):
        raise TypeError(f"extract_code: completion must be str, got {type(text).__name__}")
    if semantics not in table:
        raise ValueError(f"semantics must be one of {tuple(table)}, got {semantics!r}")


def extract_code(text: str, semantics: str = "improved") -> str | None:
    """The program the code reward judges in the completion ``text``, or None when it holds
    none (rules of each ``semantics`` in the module docstring)."""
    _check_text(text, semantics, _REWARD_EXTRACTORS)
    return _REWARD_EXTRACTORS[semantics](text)


def extract_task_code(text: str, semantics: str = "improved") -> str | None:
    """The program an alignment task is built from when the completion ``text`` failed, or
    None (official: a different extractor than the reward's; see the module docstring)."""
    _check_text(text, semantics, _TASK_EXTRACTORS)
    return _TASK_EXTRACTORS[semantics](text)
