"""stdin families over one line of integers: filtering, aggregation and transformation.

Thresholds come with a direction (``family.direction``: greater or less than), and the test
lists are drawn around the threshold, so both the constant and the comparison matter."""

from __future__ import annotations

import functools
import operator

from coderl_jax.data.synthetic.family import (
    Family,
    compare,
    direction,
    int_list,
    signed_spread,
    spread_int,
)

READ_LIST = "a = list(map(int, input().split()))\n"


def _threshold(r, hi: int = 999) -> dict:
    """A direction and a signed threshold ``k``."""
    return {**direction(r), "k": signed_spread(r, hi)}


def _around(spread: int, min_len: int = 3, max_len: int = 8):
    """Lists of integers within ``spread`` of the threshold ``k``."""
    return lambda r, p: int_list(r, p["k"] - spread, p["k"] + spread, min_len, max_len)


def _with_one(spread: int):
    """Lists around ``k`` holding at least one x with ``x op k``, so a filter keeps one."""

    def sample(r, p):
        while True:
            a = int_list(r, p["k"] - spread, p["k"] + spread)
            if any(compare(p["op"], x, p["k"]) for x in a):
                return a

    return sample


def _extreme(r) -> dict:
    """``largest_below``'s parameters: the largest value below k or the smallest above it."""
    params = _threshold(r)
    below = params["op"] == "<"
    return {
        **params,
        "fn": "max" if below else "min",
        "extreme": "largest" if below else "smallest",
    }


def _bound(r) -> dict:
    """Parameters of ``x -> max(x, k)`` (values below k raised) or ``min(x, k)`` (above k
    lowered): ``fn``, the direction of the replaced values and the bound's word."""
    params = _threshold(r)
    below = params["op"] == "<"
    return {**params, "fn": "max" if below else "min", "bound": "least" if below else "most"}


def _plus_minus(r) -> dict:
    op = r.choice("+-")
    words = ("increased", "plus") if op == "+" else ("decreased", "minus")
    return {"op": op, "change": words[0], "word": words[1], "k": spread_int(r, 1, 9999)}


def _sum_bounded(p: dict, a: list) -> int:
    keep = (lambda x: x > p["k"]) if p["fn"] == "min" else (lambda x: x < p["k"])
    return sum(a) - sum(x - p["k"] for x in a if keep(x))


LIST_FAMILIES: tuple[Family, ...] = (
    Family(
        name="sum_greater_than",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print the sum of the numbers {rel} {k}.",
            "Given integers separated by spaces, output the total of those {rel} {k}.",
            "The input is one line of integers. Add up every number {rel} {k} and print the "
            "sum (0 if there is none).",
            "Sum only the values {side} {k} from the space-separated integers on stdin.",
        ),
        solution=READ_LIST + "print(sum(x for x in a if x {op} {k}))",
        sample_params=_threshold,
        sample_input=_around(30),
        answer=lambda p, a: sum(x for x in a if compare(p["op"], x, p["k"])),
    ),
    Family(
        name="count_remainder",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print how many of them leave remainder {r} when divided "
            "by {k}.",
            "Given space-separated integers, count the numbers x with x % {k} == {r}.",
            "The input is a list of integers on one line. Output the count of values whose "
            "remainder modulo {k} is {r}.",
            "Count the integers on stdin that give remainder {r} after division by {k}, and "
            "print the count.",
        ),
        solution=READ_LIST + "print(sum(1 for x in a if x % {k} == {r}))",
        sample_params=lambda r: (lambda k: {"k": k, "r": r.randrange(k)})(r.randint(2, 99)),
        sample_input=lambda r, p: [
            p["k"] * r.randint(0, 9) + r.choice([p["r"], r.randrange(p["k"])])
            for _ in range(r.randint(3, 8))
        ],
        answer=lambda p, a: len([x for x in a if divmod(x, p["k"])[1] == p["r"]]),
    ),
    Family(
        name="largest_below",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print the {extreme} number that is {rel} {k}.",
            "Given integers on one line, output the {extreme} among those {rel} {k}.",
            "The input holds several integers, at least one {side} {k}. Print the {extreme} "
            "value {side} {k}.",
            "Among the space-separated integers on stdin, find the {extreme} one {side} {k} "
            "and print it.",
        ),
        solution=READ_LIST + "print({fn}(x for x in a if x {op} {k}))",
        sample_params=_extreme,
        sample_input=_with_one(30),
        answer=lambda p, a: sorted(x for x in a if compare(p["op"], x, p["k"]))[
            -1 if p["op"] == "<" else 0
        ],
    ),
    Family(
        name="filter_less_than",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print, in their original order and separated by spaces, "
            "the numbers {rel} {k}.",
            "Given space-separated integers, output only those {side} {k}, keeping their order.",
            "The input is one line of integers. Keep the values {rel} {k} and print them on "
            "one line.",
            "Filter the integers on stdin: print every number that is {rel} {k}, in order.",
        ),
        solution=READ_LIST + "print(*[x for x in a if x {op} {k}])",
        sample_params=_threshold,
        sample_input=_with_one(30),
        answer=lambda p, a: [x for x in a if compare(p["op"], x, p["k"])],
    ),
    Family(
        name="scale_list",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print each number multiplied by {k}, separated by spaces.",
            "Given integers on one line, output them all times {k}, in the same order.",
            "The input is a list of integers. Multiply every element by {k} and print the new "
            "list on one line.",
            "Scale the space-separated integers on stdin by a factor of {k} and print them.",
        ),
        solution=READ_LIST + "print(*[x * {k} for x in a])",
        sample_params=lambda r: {"k": spread_int(r, 2, 9999) * r.choice([-1, 1])},
        sample_input=lambda r, p: int_list(r, -9, 9, 3, 5),
        answer=lambda p, a: [p["k"] * x for x in a],
    ),
    Family(
        name="raise_to_floor",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Replace every number {rel} {k} by {k} and print the list "
            "on one line.",
            "Given space-separated integers, output them with each value {side} {k} changed "
            "to {k}.",
            "The input is a list of integers. Print {fn}(x, {k}) for each x, separated by spaces.",
            "Make every integer on stdin at {bound} {k}: print the numbers, replacing those "
            "{side} {k} by {k}.",
        ),
        solution=READ_LIST + "print(*[{fn}(x, {k}) for x in a])",
        sample_params=_bound,
        sample_input=_around(30),
        answer=lambda p, a: [p["k"] if compare(p["op"], x, p["k"]) else x for x in a],
    ),
    Family(
        name="count_equal",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print how many times the number {k} appears.",
            "Given integers separated by spaces, count the occurrences of {k} and output the "
            "count.",
            "The input is one line of integers. Output the number of elements equal to {k}.",
            "How often does {k} occur among the integers on stdin? Print the count.",
        ),
        solution=READ_LIST + "print(a.count({k}))",
        sample_params=lambda r: {"k": signed_spread(r, 9999)},
        sample_input=lambda r, p: [
            r.choice([p["k"], p["k"] + r.randint(-5, 5)]) for _ in range(r.randint(3, 6))
        ],
        answer=lambda p, a: sum(x == p["k"] for x in a),
    ),
    Family(
        name="first_greater_index",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print the 0-based index of the first number {rel} {k}, "
            "or -1 if there is none.",
            "Given space-separated integers, output the position (starting at 0) of the first "
            "value {side} {k}; print -1 if no value is {side} {k}.",
            "The input is a list of integers. Find the first element {rel} {k} and print its "
            "index from 0, else -1.",
            "Scan the integers on stdin from left to right and print the index of the first one "
            "{rel} {k} (-1 when none is).",
        ),
        solution=READ_LIST + "print(next((i for i, x in enumerate(a) if x {op} {k}), -1))",
        sample_params=_threshold,
        sample_input=_around(30),
        answer=lambda p, a: ([i for i in range(len(a)) if compare(p["op"], a[i], p["k"])] + [-1])[
            0
        ],
    ),
    Family(
        name="average_above",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print yes if their average is {rel} {k}, otherwise print no.",
            "Given integers on one line, output yes when the mean is {rel} {k} and no when it "
            "is not.",
            "The input is a list of integers. Is their average {rel} {k}? Print yes or no.",
            "Is the average of the space-separated integers on stdin {rel} {k}? Print yes or no.",
        ),
        solution=READ_LIST + 'print("yes" if sum(a) {op} {k} * len(a) else "no")',
        sample_params=_threshold,
        sample_input=_around(15),
        answer=lambda p, a: "yes" if compare(p["op"], sum(a) / len(a), p["k"]) else "no",
    ),
    Family(
        name="count_in_range",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print how many of them are between {lo} and {hi} inclusive.",
            "Given space-separated integers, count the values x with {lo} <= x <= {hi}.",
            "The input is one line of integers. Output the number of elements that are at "
            "least {lo} and at most {hi}.",
            "Count the integers on stdin that fall inside the range {lo} to {hi}, ends included.",
        ),
        solution=READ_LIST + "print(sum(1 for x in a if {lo} <= x <= {hi}))",
        sample_params=lambda r: (lambda lo: {"lo": lo, "hi": lo + r.randint(0, 40)})(
            signed_spread(r, 999)
        ),
        sample_input=lambda r, p: int_list(r, p["lo"] - 10, p["hi"] + 10),
        answer=lambda p, a: len([x for x in a if x in range(p["lo"], p["hi"] + 1)]),
    ),
    Family(
        name="product_mod",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print the product of all of them modulo {m}.",
            "Given space-separated integers, multiply them together and output the result mod {m}.",
            "The input is a list of positive integers. Output their product % {m}.",
            "Compute the remainder of the product of the integers on stdin divided by {m}.",
        ),
        solution=READ_LIST + "p = 1\nfor x in a:\n    p = p * x % {m}\nprint(p)",
        sample_params=lambda r: {"m": spread_int(r, 3, 9999)},
        sample_input=lambda r, p: int_list(r, 1, 30),
        answer=lambda p, a: functools.reduce(operator.mul, a, 1) % p["m"],
    ),
    Family(
        name="reverse_plus",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print them in reverse order, each {change} by {k}.",
            "Given space-separated integers, output the list backwards with every number "
            "{change} by {k}.",
            "The input is one line of integers. Reverse it, compute x {op} {k} for each element "
            "x, and print the result on one line.",
            "Print the integers from stdin from last to first, each {word} {k}.",
        ),
        solution=READ_LIST + "print(*[x {op} {k} for x in reversed(a)])",
        sample_params=_plus_minus,
        sample_input=lambda r, p: int_list(r, -20, 30),
        answer=lambda p, a: [
            a[i] + (p["k"] if p["op"] == "+" else -p["k"]) for i in range(len(a) - 1, -1, -1)
        ],
    ),
    Family(
        name="cap_sum",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print the sum of {fn}(x, {k}) over all numbers x.",
            "Given space-separated integers, add them up but count any value {side} {k} as "
            "{k}. Print the total.",
            "The input is a list of integers. Replace each value {side} {k} by {k}, then output "
            "the sum.",
            "Sum the integers on stdin after replacing every number {rel} {k} by {k}.",
        ),
        solution=READ_LIST + "print(sum({fn}(x, {k}) for x in a))",
        sample_params=lambda r: (lambda p: {**p, "fn": "min" if p["op"] == ">" else "max"})(
            _threshold(r)
        ),
        sample_input=_around(30),
        answer=_sum_bounded,
    ),
)
