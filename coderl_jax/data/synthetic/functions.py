"""Call-based families: the program defines one function; tests call it with JSON arguments
and compare the returned value."""

from __future__ import annotations

from coderl_jax.data.synthetic.family import (
    LETTERS,
    SYMBOLS,
    WORDS,
    Family,
    compare,
    direction,
    int_list,
    line_with,
    signed_spread,
    spread_int,
    word_line,
)

# join_reversed_words: what is reversed -> (the returned words in the statement, expression).
REVERSALS = {
    "order": ("the words in reverse order", "s.split()[::-1]"),
    "letters": (
        "every word spelled backwards, in the original order",
        "w[::-1] for w in s.split()",
    ),
    "both": ("every word spelled backwards, in reverse order", "w[::-1] for w in s.split()[::-1]"),
}
# is_spaced_sorted: operator -> how the statement says it.
SPACINGS = {">=": "at least", "<=": "at most"}


def _around(spread: int, min_len: int = 3, max_len: int = 8):
    """One argument: a list of integers within ``spread`` of ``k``."""
    return lambda r, p: [int_list(r, p["k"] - spread, p["k"] + spread, min_len, max_len)]


def _spaced(r, p) -> list:
    out = [r.randint(-10, 10)]
    for _ in range(r.randint(1, 6)):
        out.append(out[-1] + p["k"] + r.choice([0, 1, -1, r.randint(-3, 3)]))
    return [out]


def _spaced_sorted(p: dict, nums: list) -> bool:
    steps = [nums[i + 1] - nums[i] for i in range(len(nums) - 1)]
    if p["op"] == ">=":
        return not any(step < p["k"] for step in steps)
    return not any(step > p["k"] for step in steps)


def _longest_run(p: dict, nums: list) -> int:
    flags = "".join("1" if compare(p["op"], x, p["k"]) else "0" for x in nums)
    return max(len(run) for run in flags.split("0"))


def _reversal_params(r) -> dict:
    what, expr = REVERSALS[r.choice(tuple(REVERSALS))]
    return {
        "what": what,
        "expr": expr,
        "sep": "".join(r.choice(" " + SYMBOLS) for _ in range(r.randint(1, 3))),
    }


def _join_reversed(p: dict, s: str) -> str:
    words = s.split(" ")
    if "reverse order" in p["what"]:
        words = words[::-1]
    if "backwards" in p["what"]:
        words = ["".join(reversed(w)) for w in words]
    return p["sep"].join(words)


def _pair_params(r) -> dict:
    add = r.random() < 0.5
    return {
        "k": signed_spread(r, 999),
        "expr": "nums[i] + nums[j]" if add else "nums[j] - nums[i]",
        "how": "add up to" if add else "differ by (later minus earlier)",
    }


def _pair_input(r, p) -> list:
    base = r.randint(-20, 20)
    if p["expr"].startswith("nums[i]"):
        pool = [base, p["k"] - base, base + r.randint(-3, 3)]
    else:
        pool = [base, base + p["k"], base + 2 * p["k"], base + r.randint(-3, 3)]
    return [[r.choice(pool) for _ in range(r.randint(3, 8))]]


def _pairs(p: dict, nums: list) -> int:
    total = 0
    for j, y in enumerate(nums):
        for x in nums[:j]:
            total += (x + y if p["expr"].startswith("nums[i]") else y - x) == p["k"]
    return total


def _multiples_input(r, p) -> list:
    k = p["k"]
    return sorted(r.randint(-5 * k, 10 * k) for _ in "ab")


FUNCTION_FAMILIES: tuple[Family, ...] = (
    Family(
        name="count_above",
        topic="functions",
        kind="call",
        fn_name="count_above",
        templates=(
            "Write a function count_above(nums) that returns how many numbers in the list nums "
            "are greater than {k}.",
            "Define count_above(nums): given a list of integers, return the count of elements "
            "larger than {k}.",
            "Implement count_above(nums), which counts the values in nums that exceed {k} and "
            "returns that count.",
            "Create a function count_above taking a list nums and returning the number of items "
            "above {k}.",
        ),
        solution="def count_above(nums):\n    return sum(1 for x in nums if x > {k})",
        sample_params=lambda r: {"k": signed_spread(r, 9999)},
        sample_input=_around(30, 3, 6),
        answer=lambda p, nums: len([x for x in nums if x - p["k"] > 0]),
    ),
    Family(
        name="is_multiple",
        topic="functions",
        kind="call",
        fn_name="is_multiple",
        templates=(
            "Write a function is_multiple(n) that returns True if the integer n is divisible "
            "by {k} and False otherwise.",
            "Define is_multiple(n): return whether n is a multiple of {k}, as a boolean.",
            "Implement is_multiple(n), returning True exactly when n % {k} == 0.",
            "Create a function is_multiple that takes an integer and tells, with True or False, "
            "if {k} divides it.",
        ),
        solution="def is_multiple(n):\n    return n % {k} == 0",
        sample_params=lambda r: {"k": spread_int(r, 2, 9999)},
        sample_input=lambda r, p: [
            r.choice([p["k"] * r.randint(-9, 9), p["k"] * r.randint(-9, 9) + r.randint(1, 9)])
        ],
        answer=lambda p, n: n // p["k"] * p["k"] == n,
    ),
    Family(
        name="join_reversed_words",
        topic="functions",
        kind="call",
        fn_name="join_reversed_words",
        templates=(
            "Write a function join_reversed_words(s) that splits the string s into words and "
            "returns {what}, joined by '{sep}'.",
            "Define join_reversed_words(s): split s into words and return {what}, joined with "
            "'{sep}'.",
            "Implement join_reversed_words(s), which takes a sentence s and returns {what}, "
            "separated by '{sep}'.",
            "Create join_reversed_words taking a sentence s and returning {what}, with '{sep}' "
            "between them.",
        ),
        solution='def join_reversed_words(s):\n    return "{sep}".join({expr})',
        sample_params=_reversal_params,
        sample_input=lambda r, p: [word_line(r, 1, 5)],
        answer=_join_reversed,
    ),
    Family(
        name="sum_squares_below",
        topic="functions",
        kind="call",
        fn_name="sum_squares_below",
        templates=(
            "Write a function sum_squares_below(nums) that returns the sum of x * x for every x "
            "in nums that is less than {k}.",
            "Define sum_squares_below(nums): square each number smaller than {k} and return "
            "the total.",
            "Implement sum_squares_below(nums), returning the sum of the squares of the "
            "elements below {k} (0 if none).",
            "Create a function sum_squares_below that adds up the squares of the list items "
            "under {k} and returns the sum.",
        ),
        solution="def sum_squares_below(nums):\n    return sum(x * x for x in nums if x < {k})",
        sample_params=lambda r: {"k": signed_spread(r, 9999)},
        sample_input=_around(15),
        answer=lambda p, nums: sum(x**2 for x in nums if not x >= p["k"]),
    ),
    Family(
        name="count_selected_letters",
        topic="functions",
        kind="call",
        fn_name="count_selected_letters",
        templates=(
            "Write a function count_selected_letters(s) that returns a dictionary mapping each "
            "of the letters {letters} that occurs in s to its number of occurrences.",
            "Define count_selected_letters(s): return a dict from letter to count, for the "
            "letters in '{letters}' that appear in s.",
            "Implement count_selected_letters(s), which counts how often each letter of "
            "'{letters}' appears in s and returns the counts as a dict, leaving out zero counts.",
            "Create count_selected_letters taking a string and returning {{letter: count}} for "
            "the letters {letters} present in it.",
        ),
        solution=(
            'def count_selected_letters(s):\n    return {{c: s.count(c) for c in "{letters}" '
            "if c in s}}"
        ),
        sample_params=lambda r: {"letters": "".join(sorted(r.sample(LETTERS, r.randint(2, 4))))},
        sample_input=lambda r, p: [line_with(r, r.choice(p["letters"]), 1, 4)],
        answer=lambda p, s: {c: len(s.split(c)) - 1 for c in p["letters"] if c in s},
    ),
    Family(
        name="clip_list",
        topic="functions",
        kind="call",
        fn_name="clip_list",
        templates=(
            "Write a function clip_list(nums) that returns a new list where every number "
            "greater than {k} is replaced by {k}.",
            "Define clip_list(nums): return the list with each element x turned into min(x, {k}).",
            "Implement clip_list(nums), which caps the numbers of nums at {k} and returns the "
            "resulting list.",
            "Create a function clip_list that returns a copy of the list in which values above "
            "{k} become {k}.",
        ),
        solution="def clip_list(nums):\n    return [min(x, {k}) for x in nums]",
        sample_params=lambda r: {"k": signed_spread(r, 999)},
        sample_input=_around(30),
        answer=lambda p, nums: [p["k"] if x > p["k"] else x for x in nums],
    ),
    Family(
        name="index_of",
        topic="functions",
        kind="call",
        fn_name="index_of",
        templates=(
            "Write a function index_of(nums) that returns the index of the first occurrence of "
            "{k} in the list nums, or -1 if {k} is not in it.",
            "Define index_of(nums): return the 0-based position of the first {k} in nums; "
            "return -1 when there is none.",
            "Implement index_of(nums), which finds the first element equal to {k} and returns "
            "its index, or -1.",
            "Create index_of taking a list of integers and returning where {k} first appears "
            "(-1 if absent).",
        ),
        solution="def index_of(nums):\n    return nums.index({k}) if {k} in nums else -1",
        sample_params=lambda r: {"k": signed_spread(r, 9999)},
        sample_input=lambda r, p: [
            [r.choice([p["k"], p["k"] + r.randint(-9, 9)]) for _ in range(6)]
        ],
        answer=lambda p, nums: next((i for i, x in enumerate(nums) if x == p["k"]), -1),
    ),
    Family(
        name="count_multiples",
        topic="functions",
        kind="call",
        fn_name="count_multiples",
        templates=(
            "Write a function count_multiples(a, b) that returns how many integers from a to b "
            "inclusive are divisible by {k}.",
            "Define count_multiples(a, b): count the multiples of {k} in the range a..b "
            "(both ends included) and return the count.",
            "Implement count_multiples(a, b), returning the number of x with a <= x <= b and "
            "x % {k} == 0.",
            "Create a function count_multiples that takes two integers a <= b and returns how "
            "many multiples of {k} lie between them, inclusive.",
        ),
        solution="def count_multiples(a, b):\n    return sum(1 for x in range(a, b + 1) if x % {k} == 0)",
        sample_params=lambda r: {"k": spread_int(r, 2, 9999)},
        sample_input=_multiples_input,
        answer=lambda p, a, b: b // p["k"] - (a - 1) // p["k"],
    ),
    Family(
        name="censor_word",
        topic="functions",
        kind="call",
        fn_name="censor_word",
        templates=(
            "Write a function censor_word(s) that returns s with every word equal to {w} "
            "replaced by '{m}' characters, one per letter. Words are separated by single spaces.",
            "Define censor_word(s): in the space-separated sentence s, turn each occurrence of "
            "the word {w} into '{m}' characters, one per letter, and return the sentence.",
            "Implement censor_word(s), which hides the word {w} in s by replacing each of its "
            "letters with '{m}' and returns the new string.",
            "Create censor_word taking a sentence and returning it with the word {w} masked by "
            "as many '{m}' as it has letters.",
        ),
        solution=(
            'def censor_word(s):\n    return " ".join("{m}" * len(w) if w == "{w}" else w for w '
            "in s.split())"
        ),
        sample_params=lambda r: {"w": r.choice(WORDS), "m": r.choice(SYMBOLS + LETTERS.upper())},
        sample_input=lambda r, p: [
            " ".join(r.choice([p["w"], r.choice(WORDS)]) for _ in range(r.randint(1, 6)))
        ],
        answer=lambda p, s: " ".join(
            [p["m"] * len(p["w"]) if w == p["w"] else w for w in s.split()]
        ),
    ),
    Family(
        name="unique_sorted_above",
        topic="functions",
        kind="call",
        fn_name="unique_sorted_above",
        templates=(
            "Write a function unique_sorted_above(nums) that returns the distinct numbers of "
            "nums that are greater than {k}, sorted in {order} order{keep}.",
            "Define unique_sorted_above(nums): keep the values above {k}, drop duplicates, and "
            "return them as a list in {order} order{keep}.",
            "Implement unique_sorted_above(nums), returning a list without repeats of the "
            "elements larger than {k}, sorted in {order} order{keep}.",
            "Create unique_sorted_above taking a list of integers and returning its distinct "
            "values over {k}, {first} first{keep}.",
        ),
        solution=(
            "def unique_sorted_above(nums):\n"
            "    return sorted(set(x for x in nums if x > {k}){rev}){cut}"
        ),
        sample_params=lambda r: _order_params(
            r.random() < 0.5, signed_spread(r, 999), r.choice([0, r.randint(2, 5)])
        ),
        sample_input=lambda r, p: [int_list(r, p["k"] - 10, p["k"] + 20, 3, 7)],
        answer=lambda p, nums: [
            x
            for x in (
                range(p["k"] + 21, p["k"], -1) if p["rev"] else range(p["k"] + 1, p["k"] + 21)
            )
            if x in nums
        ][: p["m"] or None],
    ),
    Family(
        name="pair_count",
        topic="functions",
        kind="call",
        fn_name="pair_count",
        templates=(
            "Write a function pair_count(nums) that returns the number of pairs of positions "
            "i < j with {expr} == {k}.",
            "Define pair_count(nums): count the index pairs i < j whose two values {how} {k}, "
            "and return the count.",
            "Implement pair_count(nums), which returns how many pairs of positions i < j in nums "
            "hold numbers that {how} {k}.",
            "Create a function pair_count that counts pairs (i, j), i < j, of list elements "
            "with {expr} == {k}.",
        ),
        solution=(
            "def pair_count(nums):\n    n = len(nums)\n    return sum(1 for i in range(n) for j "
            "in range(i + 1, n) if {expr} == {k})"
        ),
        sample_params=_pair_params,
        sample_input=_pair_input,
        answer=_pairs,
    ),
    Family(
        name="is_spaced_sorted",
        topic="functions",
        kind="call",
        fn_name="is_spaced_sorted",
        templates=(
            "Write a function is_spaced_sorted(nums) that returns True if every element is "
            "{most} {k} larger than the one before it, and False otherwise.",
            "Define is_spaced_sorted(nums): return whether nums[i + 1] - nums[i] {op} {k} holds "
            "for all neighbouring pairs.",
            "Implement is_spaced_sorted(nums), returning True when each consecutive difference "
            "in nums is {most} {k}.",
            "Create is_spaced_sorted taking a list and checking, with True or False, that each "
            "step from one element to the next is {most} {k}.",
        ),
        solution=(
            "def is_spaced_sorted(nums):\n    return all(b - a {op} {k} for a, b in zip(nums, "
            "nums[1:]))"
        ),
        sample_params=lambda r: (
            lambda op: {"op": op, "most": SPACINGS[op], "k": signed_spread(r, 999)}
        )(r.choice(tuple(SPACINGS))),
        sample_input=_spaced,
        answer=_spaced_sorted,
    ),
    Family(
        name="longest_run",
        topic="functions",
        kind="call",
        fn_name="longest_run",
        templates=(
            "Write a function longest_run(nums) that returns the length of the longest block "
            "of consecutive elements that are all {rel} {k}.",
            "Define longest_run(nums): return the size of the longest stretch of neighbouring "
            "values {side} {k} (0 if there is none).",
            "Implement longest_run(nums), which finds the longest run of adjacent numbers "
            "{rel} {k} and returns its length.",
            "Create longest_run taking a list of integers and returning how long its longest "
            "streak of values {side} {k} is.",
        ),
        solution=(
            "def longest_run(nums):\n    best = run = 0\n    for x in nums:\n"
            "        run = run + 1 if x {op} {k} else 0\n        best = max(best, run)\n    return best"
        ),
        sample_params=lambda r: {**direction(r), "k": signed_spread(r, 999)},
        sample_input=_around(20, 3, 10),
        answer=_longest_run,
    ),
)


def _order_params(descending: bool, k: int, m: int) -> dict:
    """``unique_sorted_above``: the order, and ``m`` > 0 to keep only the first m values."""
    keep = {
        "m": m,
        "keep": f", keeping only the first {m}" if m else "",
        "cut": f"[:{m}]" if m else "",
    }
    if descending:
        return {"k": k, "order": "decreasing", "first": "largest", "rev": ", reverse=True", **keep}
    return {"k": k, "order": "increasing", "first": "smallest", "rev": "", **keep}
