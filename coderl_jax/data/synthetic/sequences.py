"""stdin families over one line of integers: list filtering and aggregation, and simple
simulations driven by a sequence of numbers or moves."""

from __future__ import annotations

import functools
import operator

from coderl_jax.data.synthetic.family import Family, int_list

READ_LIST = "a = list(map(int, input().split()))\n"


def _ints(lo: int, hi: int, min_len: int = 3, max_len: int = 8):
    return lambda r, p: int_list(r, lo, hi, min_len, max_len)


def _n_range(lo: int, hi: int):
    return lambda r, p: r.randint(lo, hi)


def _with_one(lo: int, hi: int, keep):
    """Lists in [lo, hi] holding at least one x with keep(p, x), so filtered output is never
    empty."""

    def sample(r, p):
        while True:
            a = int_list(r, lo, hi)
            if any(keep(p, x) for x in a):
                return a

    return sample


LIST_FAMILIES: tuple[Family, ...] = (
    Family(
        name="sum_greater_than",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print the sum of the numbers greater than {k}.",
            "Given integers separated by spaces, output the total of those that exceed {k}.",
            "The input is one line of integers. Add up every number larger than {k} and print "
            "the sum (0 if there is none).",
            "Sum only the values above {k} from the space-separated integers on stdin.",
        ),
        solution=READ_LIST + "print(sum(x for x in a if x > {k}))",
        sample_params=lambda r: {"k": r.randint(-10, 30)},
        sample_input=_ints(-20, 50),
        answer=lambda p, a: sum(filter(lambda x: x > p["k"], a)),
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
        sample_params=lambda r: (lambda k: {"k": k, "r": r.randrange(k)})(r.randint(2, 9)),
        sample_input=_ints(0, 60),
        answer=lambda p, a: len([x for x in a if divmod(x, p["k"])[1] == p["r"]]),
    ),
    Family(
        name="largest_below",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print the largest number that is smaller than {k}.",
            "Given integers on one line, output the maximum among those less than {k}.",
            "The input holds several integers, at least one below {k}. Print the biggest value "
            "below {k}.",
            "Among the space-separated integers on stdin, find the largest one under {k} and "
            "print it.",
        ),
        solution=READ_LIST + "print(max(x for x in a if x < {k}))",
        sample_params=lambda r: {"k": r.randint(-5, 40)},
        sample_input=_with_one(-20, 50, lambda p, x: x < p["k"]),
        answer=lambda p, a: sorted(x for x in a if x < p["k"])[-1],
    ),
    Family(
        name="filter_less_than",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print, in their original order and separated by spaces, "
            "the numbers less than {k}.",
            "Given space-separated integers, output only those below {k}, keeping their order.",
            "The input is one line of integers. Keep the values smaller than {k} and print them "
            "on one line.",
            "Filter the integers on stdin: print every number that is under {k}, in order.",
        ),
        solution=READ_LIST + "print(*[x for x in a if x < {k}])",
        sample_params=lambda r: {"k": r.randint(-5, 40)},
        sample_input=_with_one(-20, 50, lambda p, x: x < p["k"]),
        answer=lambda p, a: list(filter(lambda x: x < p["k"], a)),
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
        sample_params=lambda r: {"k": r.randint(2, 30)},
        sample_input=_ints(-20, 20),
        answer=lambda p, a: [p["k"] * x for x in a],
    ),
    Family(
        name="raise_to_floor",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Replace every number smaller than {k} by {k} and print "
            "the list on one line.",
            "Given space-separated integers, output them with each value below {k} raised to {k}.",
            "The input is a list of integers. Print max(x, {k}) for each x, separated by spaces.",
            "Make every integer on stdin at least {k}: print the numbers, lifting the small "
            "ones to {k}.",
        ),
        solution=READ_LIST + "print(*[max(x, {k}) for x in a])",
        sample_params=lambda r: {"k": r.randint(-10, 20)},
        sample_input=_ints(-20, 30),
        answer=lambda p, a: [p["k"] if x < p["k"] else x for x in a],
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
        sample_params=lambda r: {"k": r.randint(0, 30)},
        sample_input=lambda r, p: [r.choice([p["k"], r.randint(0, 30)]) for _ in range(8)],
        answer=lambda p, a: sum(x == p["k"] for x in a),
    ),
    Family(
        name="first_greater_index",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print the 0-based index of the first number greater than "
            "{k}, or -1 if there is none.",
            "Given space-separated integers, output the position (starting at 0) of the first "
            "value above {k}; print -1 if no value is above {k}.",
            "The input is a list of integers. Find the first element larger than {k} and print "
            "its index from 0, else -1.",
            "Scan the integers on stdin from left to right and print the index of the first one "
            "exceeding {k} (-1 when none does).",
        ),
        solution=READ_LIST + "print(next((i for i, x in enumerate(a) if x > {k}), -1))",
        sample_params=lambda r: {"k": r.randint(0, 40)},
        sample_input=_ints(-10, 50),
        answer=lambda p, a: ([i for i in range(len(a)) if a[i] > p["k"]] + [-1])[0],
    ),
    Family(
        name="average_above",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print above if their average is greater than {k}, "
            "otherwise print not above.",
            "Given integers on one line, output above when the mean exceeds {k} and not above "
            "when it does not.",
            "The input is a list of integers. Compare their average with {k}: print above or "
            "not above.",
            "Is the average of the space-separated integers on stdin strictly larger than {k}? "
            "Print above or not above.",
        ),
        solution=READ_LIST + 'print("above" if sum(a) > {k} * len(a) else "not above")',
        sample_params=lambda r: {"k": r.randint(0, 30)},
        sample_input=lambda r, p: int_list(r, p["k"] - 15, p["k"] + 15),
        answer=lambda p, a: "above" if sum(a) / len(a) > p["k"] else "not above",
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
        sample_params=lambda r: (lambda lo: {"lo": lo, "hi": lo + r.randint(0, 20)})(
            r.randint(-5, 15)
        ),
        sample_input=_ints(-10, 40),
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
        sample_params=lambda r: {"m": r.randint(7, 97)},
        sample_input=_ints(1, 30),
        answer=lambda p, a: functools.reduce(operator.mul, a, 1) % p["m"],
    ),
    Family(
        name="reverse_plus",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print them in reverse order, each increased by {k}.",
            "Given space-separated integers, output the list backwards with {k} added to every "
            "number.",
            "The input is one line of integers. Reverse it, add {k} to each element, and print "
            "the result on one line.",
            "Print the integers from stdin from last to first, each plus {k}.",
        ),
        solution=READ_LIST + "print(*[x + {k} for x in reversed(a)])",
        sample_params=lambda r: {"k": r.randint(1, 20)},
        sample_input=_ints(-20, 30),
        answer=lambda p, a: [a[i] + p["k"] for i in range(len(a) - 1, -1, -1)],
    ),
    Family(
        name="cap_sum",
        topic="lists",
        kind="stdio",
        templates=(
            "Read a line of integers. Print the sum of min(x, {k}) over all numbers x.",
            "Given space-separated integers, add them up but count any value above {k} as {k}. "
            "Print the total.",
            "The input is a list of integers. Cap each at {k}, then output the sum.",
            "Sum the integers on stdin after replacing every number larger than {k} by {k}.",
        ),
        solution=READ_LIST + "print(sum(min(x, {k}) for x in a))",
        sample_params=lambda r: {"k": r.randint(0, 30)},
        sample_input=_ints(-10, 50),
        answer=lambda p, a: sum(a) - sum(x - p["k"] for x in a if x > p["k"]),
    ),
)


def _walk(p: dict, moves: str) -> list:
    dx = {"L": -1, "R": 1}
    dy = {"D": -1, "U": 1}
    return [p["x0"] + sum(dx.get(c, 0) for c in moves), p["y0"] + sum(dy.get(c, 0) for c in moves)]


def _bank(p: dict, a: list) -> int:
    balance = p["b"]
    for x in a:
        balance = balance + x if balance + x >= 0 else balance
    return balance


def _tank(p: dict, a: list) -> int:
    level = 0
    for x in a:
        level = sorted([0, level + x, p["cap"]])[1]
    return level


SIMULATION_FAMILIES: tuple[Family, ...] = (
    Family(
        name="bank_balance",
        topic="simulation",
        kind="stdio",
        templates=(
            "An account starts with {b} coins. Read a line of integers: add each one to the "
            "balance, but skip any that would make it negative. Print the final balance.",
            "Starting balance is {b}. For each integer on stdin, apply it as a deposit (positive) "
            "or withdrawal (negative) unless the balance would drop below 0. Output the balance.",
            "Simulate a wallet holding {b}: process the space-separated amounts in order, "
            "ignoring withdrawals larger than the current balance, then print the balance.",
            "Given transactions on one line and an initial balance of {b}, print the balance "
            "after applying every transaction that keeps it non-negative.",
        ),
        solution=(
            "balance = {b}\nfor x in map(int, input().split()):\n    if balance + x >= 0:\n"
            "        balance += x\nprint(balance)"
        ),
        sample_params=lambda r: {"b": r.randint(0, 100)},
        sample_input=_ints(-60, 60),
        answer=_bank,
    ),
    Family(
        name="grid_walk",
        topic="simulation",
        kind="stdio",
        templates=(
            "A robot starts at x={x0}, y={y0}. Read a string of moves L, R, U, D (left, right, "
            "up, down by 1) and print its final x and y separated by a space.",
            "Starting from the point ({x0}, {y0}), follow the moves in the input string: R adds "
            "1 to x, L subtracts 1, U adds 1 to y, D subtracts 1. Output x and y.",
            "Given a line of letters from LRUD, simulate a walk that begins at ({x0}, {y0}) and "
            "print the final coordinates.",
            "The input is a move string. Each L/R changes x by -1/+1 and each D/U changes y by "
            "-1/+1, starting at x={x0}, y={y0}. Print x y.",
        ),
        solution=(
            'x, y = {x0}, {y0}\nfor c in input():\n    x += (c == "R") - (c == "L")\n'
            '    y += (c == "U") - (c == "D")\nprint(x, y)'
        ),
        sample_params=lambda r: {"x0": r.randint(-5, 5), "y0": r.randint(-5, 5)},
        sample_input=lambda r, p: "".join(r.choice("LRUD") for _ in range(r.randint(1, 12))),
        answer=_walk,
    ),
    Family(
        name="countdown",
        topic="simulation",
        kind="stdio",
        templates=(
            "Read a positive integer n. Print n, n - {k}, n - {k2}, ... on one line, stopping "
            "before the values reach 0 or below.",
            "Given n, count down from n in steps of {k} and print every positive value on one "
            "line, separated by spaces.",
            "The input is a positive integer. Output the positive numbers you get by starting "
            "there and subtracting {k} repeatedly.",
            "Starting at the integer on stdin, print all positive terms of the sequence that "
            "decreases by {k} each step.",
        ),
        solution="n = int(input())\nprint(*range(n, 0, -{k}))",
        sample_params=lambda r: (lambda k: {"k": k, "k2": 2 * k})(r.randint(1, 30)),
        sample_input=lambda r, p: r.randint(1, 12 * p["k"]),
        answer=lambda p, n: [n - i * p["k"] for i in range((n - 1) // p["k"] + 1)],
    ),
    Family(
        name="water_tank",
        topic="simulation",
        kind="stdio",
        templates=(
            "A tank holds at most {cap} liters and starts empty. Read a line of integers; add "
            "each to the level, keeping it between 0 and {cap}. Print the final level.",
            "Simulate a tank of capacity {cap}: for each integer on stdin, change the water "
            "level by that amount, clipping at 0 and at {cap}. Output the level at the end.",
            "The level starts at 0. Each input number is poured in (positive) or drained "
            "(negative); the level never goes below 0 or above {cap}. Print the final level.",
            "Given level changes on one line, print the water level of a tank with capacity "
            "{cap} that starts empty, clamping after every change.",
        ),
        solution=(
            "level = 0\nfor x in map(int, input().split()):\n    level = min(max(level + x, 0), "
            "{cap})\nprint(level)"
        ),
        sample_params=lambda r: {"cap": r.randint(10, 100)},
        sample_input=_ints(-50, 60),
        answer=_tank,
    ),
    Family(
        name="frog_jumps",
        topic="simulation",
        kind="stdio",
        templates=(
            "A frog starts at position 0 and jumps {k} units forward each time. Read n and "
            "print how many jumps it needs to reach position n or beyond.",
            "Given a distance n, output the number of jumps of length {k} needed to cover at "
            "least n, starting from 0.",
            "The input is a non-negative integer n. A frog moves {k} steps per jump. Print the "
            "smallest number of jumps that gets it to n or further.",
            "Count the jumps of size {k} a frog at 0 must make until its position is at least "
            "the integer n from stdin, and print the count.",
        ),
        solution="n = int(input())\npos = jumps = 0\nwhile pos < n:\n    pos += {k}\n    jumps += 1\nprint(jumps)",
        sample_params=lambda r: {"k": r.randint(2, 30)},
        sample_input=_n_range(0, 500),
        answer=lambda p, n: -(-n // p["k"]),
    ),
)
