"""What a synthetic task family is, and how one instance of it is drawn.

A family is a parametrised task ("print n plus {k}"): a sampler of its parameters, four
wording templates, a reference solution template, a sampler of test inputs, and an
independent answer function that computes the expected output (written separately from the
reference solution, so checking the reference against the tests is a real check).

Families come in the two ``TestSpec`` kinds:

* ``stdio``: a test input is an int, a str, a list (one line, space-separated) or a tuple of
  those (one line each); the expected output is rendered the same way, ending with a newline.
* ``call``: a test input is the list of positional arguments of ``fn_name``; inputs and
  expected return values are JSON text.

Templates are ``str.format`` strings over the parameters (``{{``/``}}`` for literal braces).

Parameter spaces are wide on purpose: the splits are decided per program (``generate``), so a
family must hold far more distinct programs than training draws from it, and a model can only
solve an unseen program by copying its constants and structure from the statement. Integer
constants come from ``spread_int`` (digit count first, so small and large constants are both
common); structural variants (a comparison's direction, an operator) are parameters whose words
appear in the statement, so every statement names exactly one program. Two different programs
of a family must not compute the same function (e.g. ``x > 4`` and ``x >= 5`` on integers, or a
remainder offset ``b`` and ``b + k`` modulo ``k``), so counts of programs are counts of tasks.
"""

from __future__ import annotations

import dataclasses
import json
import random
import string
from collections.abc import Callable
from typing import Any, Literal

from coderl_jax.execution.spec import TestSpec

# Short common words keep statements and inputs a few tokens long.
WORDS: tuple[str, ...] = (
    "apple", "bird", "cake", "dog", "egg", "fish", "goat", "hat", "ink", "jam", "kite",
    "lamp", "moon", "nest", "owl", "pen", "queen", "rain", "sun", "tree", "umbrella", "van",
    "wolf", "yak", "zoo", "cat", "sea", "map", "box", "cup", "ant", "bee", "bell", "boat",
    "book", "bus", "car", "coat", "corn", "cow", "deer", "desk", "door", "drum", "duck", "fan",
    "farm", "fig", "flag", "frog", "gate", "gift", "hill", "horn", "jar", "key", "king", "lake",
    "leaf", "lion", "milk", "mouse", "nut", "oak", "pear", "pig", "pot", "ring", "road", "rock",
    "rose", "salt", "ship", "shoe", "snow", "sock", "star", "tent", "toy", "wind", "wing", "bag",
    "bed", "bone", "bread", "cloud", "dish", "fork", "hand", "kiwi", "lemon", "nose", "park",
    "rope", "seed", "soup", "tiger", "vase", "web", "yarn", "zebra", "ice", "ear", "oil", "axe",
    "eye", "arm",
)  # fmt: skip
LETTERS = string.ascii_lowercase
VOWELS = "aeiou"
# Padding, masking and separator characters: one token each, never letters or digits.
SYMBOLS = "*#!?-_+=.~@%^&:;|/"
# A comparison's direction: operator -> (phrase, adverb) for the statement. Only the strict
# operators: ``x >= k`` is ``x > k - 1`` on integers, the same task under another constant.
DIRECTIONS: dict[str, tuple[str, str]] = {
    ">": ("greater than", "above"),
    "<": ("less than", "below"),
}

Params = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Family:
    """A parametrised task family; see the module docstring.

    Attributes:
      name: unique identifier, e.g. ``"add_constant"``.
      topic: coarse skill label (``arithmetic``, ``loops``, ``conditionals``, ``lists``,
        ``strings``, ``counting``, ``simulation``, ``functions``).
      kind: ``"stdio"`` or ``"call"``.
      templates: exactly four statement wordings over the parameters.
      solution: reference solution template over the parameters.
      sample_params: draws the parameters from a ``random.Random``.
      sample_input: draws one test input given the parameters.
      answer: expected output for ``(params, input)`` (stdio) or ``(params, *args)`` (call).
      fn_name: the function to call (call kind only).
    """

    name: str
    topic: str
    kind: Literal["stdio", "call"]
    templates: tuple[str, ...]
    solution: str
    sample_params: Callable[[random.Random], Params]
    sample_input: Callable[[random.Random, Params], Any]
    answer: Callable[..., Any]
    fn_name: str | None = None

    def __post_init__(self):
        if len(self.templates) != 4:
            raise ValueError(f"family {self.name}: needs 4 templates, got {len(self.templates)}")
        if self.kind not in ("stdio", "call"):
            raise ValueError(f"family {self.name}: kind must be stdio or call, got {self.kind!r}")
        if (self.kind == "call") != bool(self.fn_name):
            raise ValueError(f"family {self.name}: fn_name is required exactly for call kind")


@dataclasses.dataclass(frozen=True)
class Instance:
    """One drawn problem of a family (before it gets an id and split)."""

    statement: str
    solution: str
    tests: TestSpec
    params: Params
    template_index: int


def to_text(value: Any) -> str:
    """stdin/stdout text: tuples are lines, lists are space-separated, ends with a newline."""
    if isinstance(value, tuple):
        return "".join(to_text(v) for v in value)
    if isinstance(value, list):
        return " ".join(str(v) for v in value) + "\n"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"stdio values must be int, str, list or tuple, got {type(value)}")
    return f"{value}\n"


def render_solution(family: Family, params: Params) -> str:
    """The reference solution of ``family`` for ``params``: the program an instance holds."""
    return family.solution.format(**params).strip("\n") + "\n"


def draw_instance(
    family: Family, rng: random.Random, num_tests: int, params: Params | None = None
) -> Instance:
    """Draws parameters (unless given), a wording and ``num_tests`` distinct test inputs.

    The expected outputs are never all equal (for ``num_tests >= 2``): the last test is redrawn
    until its output differs, so a program printing a constant cannot pass. Raises naming the
    family when its input sampler cannot supply that.
    """
    if params is None:
        params = family.sample_params(rng)
    template_index = rng.randrange(len(family.templates))
    statement = family.templates[template_index].format(**params)
    solution = render_solution(family, params)
    inputs: list[str] = []
    outputs: list[str] = []
    for _ in range(50 * num_tests):
        if len(inputs) == num_tests:
            break
        value = family.sample_input(rng, params)
        if family.kind == "stdio":
            text, expected = to_text(value), to_text(family.answer(params, value))
        else:
            text, expected = json.dumps(value), json.dumps(family.answer(params, *value))
        last = len(inputs) == num_tests - 1
        if text in inputs or (last and num_tests > 1 and set(outputs) == {expected}):
            continue
        inputs.append(text)
        outputs.append(expected)
    if len(inputs) < num_tests:
        raise ValueError(
            f"family {family.name}: could not draw {num_tests} distinct test inputs with "
            f"varied outputs for params {params}"
        )
    tests = TestSpec(
        kind=family.kind, inputs=tuple(inputs), outputs=tuple(outputs), fn_name=family.fn_name
    )
    return Instance(statement, solution, tests, params, template_index)


def int_list(rng: random.Random, lo: int, hi: int, min_len: int = 3, max_len: int = 8) -> list:
    """A list of ``min_len..max_len`` integers in ``[lo, hi]``."""
    return [rng.randint(lo, hi) for _ in range(rng.randint(min_len, max_len))]


def word_line(rng: random.Random, min_len: int = 2, max_len: int = 6, pool=WORDS) -> str:
    """``min_len..max_len`` words from ``pool`` separated by single spaces."""
    return " ".join(rng.choice(pool) for _ in range(rng.randint(min_len, max_len)))


def letters_word(rng: random.Random, min_len: int = 3, max_len: int = 9, pool=LETTERS) -> str:
    """A random lowercase 'word' of ``min_len..max_len`` letters from ``pool``."""
    return "".join(rng.choice(pool) for _ in range(rng.randint(min_len, max_len)))


def spread_int(rng: random.Random, lo: int, hi: int) -> int:
    """An integer in ``[lo, hi]`` (``0 <= lo <= hi``): its number of digits is drawn uniformly
    first, then the value within that many digits, so 2-digit constants are as common as
    4-digit ones although there are 100 times fewer."""
    num_digits = rng.randint(len(str(lo)), len(str(hi)))
    smallest = 10 ** (num_digits - 1) if num_digits > 1 else 0
    return rng.randint(max(lo, smallest), min(hi, 10**num_digits - 1))


def signed_spread(rng: random.Random, hi: int) -> int:
    """``spread_int(rng, 0, hi)`` with a random sign."""
    value = spread_int(rng, 0, hi)
    return -value if rng.random() < 0.5 else value


def direction(rng: random.Random) -> Params:
    """A comparison's direction as parameters: ``op`` (``>``/``<``), ``rel`` (``greater
    than``/``less than``) and ``side`` (``above``/``below``)."""
    op = rng.choice(tuple(DIRECTIONS))
    return {"op": op, "rel": DIRECTIONS[op][0], "side": DIRECTIONS[op][1]}


def compare(op: str, x: int, k: int) -> bool:
    """``x op k`` for an operator of ``DIRECTIONS`` (answer functions use it; solutions spell
    the operator out)."""
    return {">": x - k > 0, "<": k - x > 0}[op]


def letter_string(rng: random.Random, max_len: int = 3) -> str:
    """1..``max_len`` lowercase letters that cannot overlap themselves (no proper prefix equals
    a suffix, so counting and replacing occurrences is unambiguous); length drawn first."""
    while True:
        length = rng.randint(1, max_len)
        piece = letters_word(rng, length, length)
        if not any(piece[:i] == piece[-i:] for i in range(1, len(piece))):
            return piece


def line_with(rng: random.Random, piece: str, min_len: int = 2, max_len: int = 6) -> str:
    """A line of ``min_len..max_len`` words, each (with probability 1/2) a word of ``WORDS``
    with ``piece`` inserted at a random position, so tests about ``piece`` are rarely trivial."""
    words = []
    for _ in range(rng.randint(min_len, max_len)):
        word = rng.choice(WORDS)
        if rng.random() < 0.5:
            at = rng.randint(0, len(word))
            word = word[:at] + piece + word[at:]
        words.append(word)
    return " ".join(words)
