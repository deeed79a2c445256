"""Call-based families: the program defines one function; tests call it with JSON arguments
and compare the returned value."""

from __future__ import annotations

from coderl_jax.data.synthetic.family import WORDS, Family, int_list, word_line

SEPARATORS = ("-", ",", " ", "+", "_", ":", "/", "|", ".", ", ", " - ", "->", "::", "; ", "~", "=",
              "#", "*", "..", " + ")  # fmt: skip


def _nums(lo: int, hi: int, min_len: int = 3, max_len: int = 8):
    return lambda r, p: [int_list(r, lo, hi, min_len, max_len)]


def _spaced(r, p) -> list:
    out = [r.randint(-10, 10)]
    for _ in range(r.randint(1, 6)):
        out.append(out[-1] + p["k"] + r.choice([0, 1, 2, r.randint(-3, 3)]))
    return [out]


def _longest_run(p: dict, nums: list) -> int:
    flags = "".join("1" if x > p["k"] else "0" for x in nums)
    return max(len(run) for run in flags.split("0"))


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
        sample_params=lambda r: {"k": r.randint(-10, 30)},
        sample_input=_nums(-20, 50),
        answer=lambda p, nums: len([x for x in nums if x > p["k"]]),
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
        sample_params=lambda r: {"k": r.randint(2, 40)},
        sample_input=lambda r, p: [r.choice([p["k"] * r.randint(-9, 9), r.randint(-300, 300)])],
        answer=lambda p, n: n // p["k"] * p["k"] == n,
    ),
    Family(
        name="join_reversed_words",
        topic="functions",
        kind="call",
        fn_name="join_reversed_words",
        templates=(
            "Write a function join_reversed_words(s) that returns the words of the string s in "
            "reverse order, joined by '{sep}'.",
            "Define join_reversed_words(s): split s into words, reverse their order and join "
            "them with '{sep}'; return the result.",
            "Implement join_reversed_words(s), which returns '{sep}'.join of the words of s "
            "from last to first.",
            "Create join_reversed_words taking a sentence s and returning its words backwards, "
            "separated by '{sep}'.",
        ),
        solution='def join_reversed_words(s):\n    return "{sep}".join(s.split()[::-1])',
        sample_params=lambda r: {"sep": r.choice(SEPARATORS)},
        sample_input=lambda r, p: [word_line(r, 1, 6)],
        answer=lambda p, s: p["sep"].join(reversed(s.split(" "))),
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
        sample_params=lambda r: {"k": r.randint(-5, 20)},
        sample_input=_nums(-10, 25),
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
        sample_params=lambda r: {"letters": "".join(sorted(r.sample("abcdefghilmnoprstuw", 3)))},
        sample_input=lambda r, p: [word_line(r, 1, 4)],
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
        sample_params=lambda r: {"k": r.randint(0, 30)},
        sample_input=_nums(-10, 50),
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
        sample_params=lambda r: {"k": r.randint(0, 20)},
        sample_input=lambda r, p: [[r.choice([p["k"], r.randint(0, 20)]) for _ in range(6)]],
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
        sample_params=lambda r: {"k": r.randint(2, 30)},
        sample_input=lambda r, p: sorted(r.randint(-50, 150) for _ in "ab"),
        answer=lambda p, a, b: b // p["k"] - (a - 1) // p["k"],
    ),
    Family(
        name="censor_word",
        topic="functions",
        kind="call",
        fn_name="censor_word",
        templates=(
            "Write a function censor_word(s) that returns s with every word equal to {w} "
            "replaced by stars of the same length. Words are separated by single spaces.",
            "Define censor_word(s): in the space-separated sentence s, turn each occurrence of "
            "the word {w} into '*' characters, one per letter, and return the sentence.",
            "Implement censor_word(s), which hides the word {w} in s by replacing it with "
            "asterisks and returns the new string.",
            "Create censor_word taking a sentence and returning it with the word {w} masked by "
            "as many * as it has letters.",
        ),
        solution=(
            'def censor_word(s):\n    return " ".join("*" * len(w) if w == "{w}" else w for w '
            "in s.split())"
        ),
        sample_params=lambda r: {"w": r.choice(WORDS)},
        sample_input=lambda r, p: [
            " ".join(r.choice([p["w"], r.choice(WORDS)]) for _ in range(r.randint(1, 6)))
        ],
        answer=lambda p, s: " ".join(["*" * len(p["w"]) if w == p["w"] else w for w in s.split()]),
    ),
    Family(
        name="unique_sorted_above",
        topic="functions",
        kind="call",
        fn_name="unique_sorted_above",
        templates=(
            "Write a function unique_sorted_above(nums) that returns the distinct numbers of "
            "nums that are greater than {k}, sorted in increasing order.",
            "Define unique_sorted_above(nums): keep the values above {k}, drop duplicates, and "
            "return them as an ascending list.",
            "Implement unique_sorted_above(nums), returning a sorted list without repeats of "
            "the elements larger than {k}.",
            "Create unique_sorted_above taking a list of integers and returning its distinct "
            "values over {k}, smallest first.",
        ),
        solution="def unique_sorted_above(nums):\n    return sorted(set(x for x in nums if x > {k}))",
        sample_params=lambda r: {"k": r.randint(-5, 20)},
        sample_input=_nums(-10, 30, 3, 10),
        answer=lambda p, nums: [x for x in range(p["k"] + 1, 31) if x in nums],
    ),
    Family(
        name="pair_count",
        topic="functions",
        kind="call",
        fn_name="pair_count",
        templates=(
            "Write a function pair_count(nums) that returns the number of pairs of positions "
            "i < j with nums[i] + nums[j] == {k}.",
            "Define pair_count(nums): count the index pairs i < j whose two values add up to "
            "{k}, and return the count.",
            "Implement pair_count(nums), which returns how many pairs of different positions "
            "in nums hold numbers summing to {k}.",
            "Create a function pair_count that counts pairs (i, j), i < j, of list elements "
            "with sum {k}.",
        ),
        solution=(
            "def pair_count(nums):\n    n = len(nums)\n    return sum(1 for i in range(n) for j "
            "in range(i + 1, n) if nums[i] + nums[j] == {k})"
        ),
        sample_params=lambda r: {"k": r.randint(0, 30)},
        sample_input=lambda r, p: [int_list(r, 0, p["k"] if p["k"] else 5, 3, 8)],
        answer=lambda p, nums: sum(
            nums[j] == p["k"] - x for i, x in enumerate(nums) for j in range(i + 1, len(nums))
        ),
    ),
    Family(
        name="is_spaced_sorted",
        topic="functions",
        kind="call",
        fn_name="is_spaced_sorted",
        templates=(
            "Write a function is_spaced_sorted(nums) that returns True if every element is at "
            "least {k} larger than the one before it, and False otherwise.",
            "Define is_spaced_sorted(nums): return whether nums[i + 1] - nums[i] >= {k} holds "
            "for all neighbouring pairs.",
            "Implement is_spaced_sorted(nums), returning True when each consecutive difference "
            "in nums is {k} or more.",
            "Create is_spaced_sorted taking a list and checking, with True or False, that each "
            "step from one element to the next is at least {k}.",
        ),
        solution=(
            "def is_spaced_sorted(nums):\n    return all(b - a >= {k} for a, b in zip(nums, "
            "nums[1:]))"
        ),
        sample_params=lambda r: {"k": r.randint(-10, 10)},
        sample_input=_spaced,
        answer=lambda p, nums: (
            not any(nums[i + 1] < nums[i] + p["k"] for i in range(len(nums) - 1))
        ),
    ),
    Family(
        name="longest_run",
        topic="functions",
        kind="call",
        fn_name="longest_run",
        templates=(
            "Write a function longest_run(nums) that returns the length of the longest block "
            "of consecutive elements that are all greater than {k}.",
            "Define longest_run(nums): return the size of the longest stretch of neighbouring "
            "values above {k} (0 if there is none).",
            "Implement longest_run(nums), which finds the longest run of adjacent numbers "
            "exceeding {k} and returns its length.",
            "Create longest_run taking a list of integers and returning how long its longest "
            "streak of values over {k} is.",
        ),
        solution=(
            "def longest_run(nums):\n    best = run = 0\n    for x in nums:\n"
            "        run = run + 1 if x > {k} else 0\n        best = max(best, run)\n    return best"
        ),
        sample_params=lambda r: {"k": r.randint(0, 30)},
        sample_input=_nums(-5, 40, 3, 10),
        answer=_longest_run,
    ),
)
