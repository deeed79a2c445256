"""Integer families read from stdin: arithmetic, and loops with accumulators."""

from __future__ import annotations

import math

from coderl_jax.data.synthetic.family import Family, spread_int

PLUS_MINUS = {"+": ("plus", "increased", "add"), "-": ("minus", "decreased", "subtract")}


def _n(lo: int, hi: int):
    return lambda r, p: r.randint(lo, hi)


def _two(lo: int, hi: int):
    return lambda r, p: [r.randint(lo, hi), r.randint(lo, hi)]


def _plus_minus(r, **params) -> dict:
    """``op`` (+/-) with its words (``word``: plus/minus, ``change``: increased/decreased,
    ``verb``: add/subtract), plus ``params``."""
    op = r.choice("+-")
    word, change, verb = PLUS_MINUS[op]
    return {"op": op, "word": word, "change": change, "verb": verb, **params}


def _multiplier(r) -> int:
    """A multiplier of 2 to 4 digits' spread with a random sign, never -1, 0 or 1."""
    k = spread_int(r, 2, 9999)
    return -k if r.random() < 0.5 else k


def _plus(p: dict, x: int, y: int) -> int:
    return x + y if p["op"] == "+" else x - y


NUMBER_FAMILIES: tuple[Family, ...] = (
    Family(
        name="add_constant",
        topic="arithmetic",
        kind="stdio",
        templates=(
            "Read an integer n from standard input and print n {op} {k}.",
            "Given one integer on a line, output that integer {change} by {k}.",
            "The input is a single integer n. Print the result of n {op} {k}.",
            "A number n is given on stdin. Print the value of n {word} {k}.",
        ),
        solution="n = int(input())\nprint(n {op} {k})",
        sample_params=lambda r: _plus_minus(r, k=spread_int(r, 2, 9999)),
        sample_input=_n(-500, 500),
        answer=lambda p, n: _plus(p, n, p["k"]),
    ),
    Family(
        name="multiply_constant",
        topic="arithmetic",
        kind="stdio",
        templates=(
            "Read an integer n and print n multiplied by {k}.",
            "Given an integer on standard input, output {k} times that integer.",
            "The input is one integer. Print the product of it and {k}.",
            "A number n is given on one line. Print n * {k}.",
        ),
        solution="n = int(input())\nprint(n * {k})",
        sample_params=lambda r: {"k": _multiplier(r)},
        sample_input=_n(-200, 200),
        answer=lambda p, n: p["k"] * n,
    ),
    Family(
        name="linear_expression",
        topic="arithmetic",
        kind="stdio",
        templates=(
            "Read an integer n and print {a} * n {op} {b}.",
            "Given an integer n on stdin, output the value of {a} times n {word} {b}.",
            "The input is one integer n. Multiply it by {a}, {verb} {b}, and print the result.",
            "Compute {a}n {op} {b} for the integer n given on a single line and print it.",
        ),
        solution="n = int(input())\nprint({a} * n {op} {b})",
        sample_params=lambda r: _plus_minus(r, a=spread_int(r, 2, 99), b=spread_int(r, 1, 999)),
        sample_input=_n(-100, 100),
        answer=lambda p, n: _plus(p, n * p["a"], p["b"]),
    ),
    Family(
        name="sum_then_multiply",
        topic="arithmetic",
        kind="stdio",
        templates=(
            "Read two integers a and b on one line and print (a {op} b) * {k}.",
            "Two integers a and b are given on a line, separated by a space. Print a {op} b "
            "times {k}.",
            "Given integers a and b, output {k} multiplied by (a {op} b).",
            "The input holds two integers a and b. Compute a {word} b, multiply it by {k}, and "
            "print it.",
        ),
        solution="a, b = map(int, input().split())\nprint((a {op} b) * {k})",
        sample_params=lambda r: _plus_minus(r, k=spread_int(r, 2, 9999)),
        sample_input=_two(-100, 100),
        answer=lambda p, x: p["k"] * x[0] + p["k"] * (x[1] if p["op"] == "+" else -x[1]),
    ),
    Family(
        name="div_mod",
        topic="arithmetic",
        kind="stdio",
        templates=(
            "Read a non-negative integer n. Print n // {k} and n % {k} separated by a space.",
            "Given an integer n >= 0, output the quotient and the remainder of n divided by {k} "
            "on one line.",
            "Divide the input integer by {k}. Print the integer quotient, a space, then the "
            "remainder.",
            "For a non-negative integer n on stdin, print how many times {k} fits into n and "
            "what is left over.",
        ),
        solution="n = int(input())\nprint(n // {k}, n % {k})",
        sample_params=lambda r: {"k": spread_int(r, 2, 9999)},
        sample_input=lambda r, p: r.randint(0, 50 * p["k"]),
        answer=lambda p, n: [divmod(n, p["k"])[0], divmod(n, p["k"])[1]],
    ),
    Family(
        name="square_minus",
        topic="arithmetic",
        kind="stdio",
        templates=(
            "Read an integer n and print n squared {word} {k}.",
            "Given an integer n, output n * n {op} {k}.",
            "The input is one integer. Print its square {change} by {k}.",
            "Square the integer given on stdin, {verb} {k}, and print the result.",
        ),
        solution="n = int(input())\nprint(n * n {op} {k})",
        sample_params=lambda r: _plus_minus(r, k=spread_int(r, 1, 9999)),
        sample_input=_n(-30, 30),
        answer=lambda p, n: _plus(p, n**2, p["k"]),
    ),
    Family(
        name="digit_sum_mod",
        topic="loops",
        kind="stdio",
        templates=(
            "Read a non-negative integer n. Print (the sum of its digits + {b}) modulo {k}.",
            "Given a non-negative integer, add up its decimal digits and {b}, and output that "
            "total mod {k}.",
            "The input is an integer n >= 0. Print (sum of the digits of n + {b}) % {k}.",
            "Compute the digit sum of the non-negative integer on stdin plus {b}, and print its "
            "remainder when divided by {k}.",
        ),
        solution="s = input()\nprint((sum(int(c) for c in s) + {b}) % {k})",
        # b < k: (s + b) % k and (s + b + k) % k are the same task.
        sample_params=lambda r: (lambda k: {"k": k, "b": r.randint(1, k - 1)})(r.randint(2, 199)),
        sample_input=_n(0, 10**9),
        answer=lambda p, n: (sum(map(int, str(n))) + p["b"]) % p["k"],
    ),
    Family(
        name="sum_multiples",
        topic="loops",
        kind="stdio",
        templates=(
            "Read an integer n. Print the sum of all integers from 1 to n that leave remainder "
            "{r} when divided by {k}.",
            "Given n, add up every i between 1 and n inclusive with i % {k} == {r} and print the "
            "total.",
            "The input is a positive integer n. Output the sum of the numbers 1..n whose "
            "remainder modulo {k} is {r}.",
            "Loop over 1, 2, ..., n (n read from stdin) and print the total of the numbers that "
            "give remainder {r} after division by {k}.",
        ),
        solution=(
            "n = int(input())\ntotal = 0\nfor i in range(1, n + 1):\n"
            "    if i % {k} == {r}:\n        total += i\nprint(total)"
        ),
        sample_params=lambda r: (lambda k: {"k": k, "r": r.randrange(k)})(r.randint(2, 199)),
        sample_input=lambda r, p: r.randint(1, 20 * p["k"]),
        answer=lambda p, n: _sum_with_remainder(n, p["k"], p["r"]),
    ),
    Family(
        name="sum_squares_from",
        topic="loops",
        kind="stdio",
        templates=(
            "Read an integer n >= {a}. Print the sum of i * i over i = {a}, {a} + {s}, "
            "{a} + 2 * {s}, ... up to n.",
            "Given n, output the sum of the squares of {a}, {a} + {s}, {a} + 2 * {s}, and so on, "
            "for every term not above n.",
            "The input is an integer n, at least {a}. Print the sum of i squared over every i "
            "from {a} up to n in steps of {s}.",
            "Add up the squares of the integers {a}, {a} + {s}, ... that are at most n, where n "
            "is read from stdin, and print the sum.",
        ),
        solution="n = int(input())\nprint(sum(i * i for i in range({a}, n + 1, {s})))",
        sample_params=lambda r: {"a": spread_int(r, 1, 999), "s": r.randint(1, 9)},
        sample_input=lambda r, p: r.randint(p["a"], p["a"] + 20 * p["s"]),
        answer=lambda p, n: sum(x**2 for x in list(range(p["a"], n + 1))[:: p["s"]]),
    ),
    Family(
        name="factorial_mod",
        topic="loops",
        kind="stdio",
        templates=(
            "Read an integer n. Print the product of the integers from {a} to n, modulo {m}.",
            "Given an integer n >= {a}, multiply all integers from {a} up to n and output the "
            "result modulo {m}.",
            "The input is n. Multiply the integers {a}, {a} + 1, ..., n and print the remainder "
            "of that product divided by {m}.",
            "Compute ({a} * ... * n) % {m} for the integer n given on stdin.",
        ),
        solution=(
            "n = int(input())\np = 1\nfor i in range({a}, n + 1):\n    p = p * i % {m}\nprint(p)"
        ),
        # From 2, not 1: a product from 1 equals the product from 2. A prime m > a: for a
        # composite m, (2, 12) and (2, 24) give 0 from n = 4 on, the same task.
        sample_params=lambda r: {"a": r.randint(2, 10), "m": _prime_from(spread_int(r, 11, 9973))},
        sample_input=lambda r, p: r.randint(p["a"], p["a"] + 19),
        answer=lambda p, n: math.prod(range(p["a"], n + 1)) % p["m"],
    ),
    Family(
        name="count_divisors_above",
        topic="loops",
        kind="stdio",
        templates=(
            "Read a positive integer n. Print how many divisors of n are greater than {k}.",
            "Given n, count the numbers d > {k} that divide n exactly and output the count.",
            "The input is a positive integer. Output the number of its divisors larger than {k}.",
            "Count the divisors of the positive integer on stdin that exceed {k} and print the "
            "count.",
        ),
        solution="n = int(input())\nprint(sum(1 for d in range({k} + 1, n + 1) if n % d == 0))",
        sample_params=lambda r: {"k": spread_int(r, 1, 9999)},
        sample_input=lambda r, p: r.randint(1, 3 * p["k"] + 300),
        answer=lambda p, n: len([d for d in range(1, n + 1) if n % d == 0 and d > p["k"]]),
    ),
    Family(
        name="steps_until_below",
        topic="loops",
        kind="stdio",
        templates=(
            "Read an integer n. While n >= {t}, replace n by n // {d}. Print how many "
            "replacements were made.",
            "Start from the integer n on stdin and keep integer-dividing it by {d} as long as it "
            "is at least {t}. Output the number of divisions.",
            "Given n, count the steps n = n // {d} needed until n is smaller than {t}, and "
            "print the count.",
            "Repeatedly divide n by {d} (rounding down) until n < {t}. Print the number of "
            "divisions performed.",
        ),
        solution=(
            "n = int(input())\nsteps = 0\nwhile n >= {t}:\n    n //= {d}\n    steps += 1\n"
            "print(steps)"
        ),
        sample_params=lambda r: {"d": r.randint(2, 9), "t": spread_int(r, 1, 999)},
        sample_input=lambda r, p: r.randint(0, p["t"] * p["d"] ** 4),
        answer=lambda p, n: 0 if n < p["t"] else 1 + _steps(n // p["d"], p),
    ),
    Family(
        name="fibonacci_like",
        topic="loops",
        kind="stdio",
        templates=(
            "A sequence starts {a}, {b} and each next term is the sum of the previous two. Read "
            "n and print the n-th term (the first term is term 1).",
            "Terms 1 and 2 of a sequence are {a} and {b}; every later term adds the two before "
            "it. Output term n, where n is given on stdin.",
            "Given n, print the n-th number of the sequence {a}, {b}, {a_plus_b}, ... where each "
            "number is the sum of the two before it.",
            "Read a positive integer n. Print element n (1-based) of the sequence that begins "
            "with {a} and {b} and continues by adding the last two elements.",
        ),
        solution="n = int(input())\na, b = {a}, {b}\nfor _ in range(n - 1):\n    a, b = b, a + b\nprint(a)",
        sample_params=lambda r: _fib_params(
            r.randint(-99, 99), r.randint(1, 99) * r.choice([-1, 1])
        ),
        sample_input=_n(1, 25),
        answer=lambda p, n: _fib(p["a"], p["b"], n),
    ),
    Family(
        name="count_multiplications",
        topic="loops",
        kind="stdio",
        templates=(
            "Start with {s} and keep multiplying by {k} until the value is greater than n. Read "
            "n and print how many multiplications were needed.",
            "Given n, count how many times you must multiply {s} by {k} before it exceeds n, "
            "and output the count.",
            "A value starts at {s} and is multiplied by {k} each step. Print the number of steps "
            "until it is larger than the integer n from stdin.",
            "Read n. Let x = {s}. While x <= n, set x = x * {k} and count one step. Print the "
            "count.",
        ),
        solution=(
            "n = int(input())\nx, steps = {s}, 0\nwhile x <= n:\n    x *= {k}\n    steps += 1\n"
            "print(steps)"
        ),
        sample_params=lambda r: {"s": spread_int(r, 1, 999), "k": r.randint(2, 12)},
        sample_input=_n(0, 10**6),
        answer=lambda p, n: next(i for i in range(64) if p["s"] * p["k"] ** i > n),
    ),
)


def _sum_with_remainder(n: int, k: int, r: int) -> int:
    first = r or k
    count = max(0, (n - first) // k + 1)
    return count * first + k * count * (count - 1) // 2


def _prime_from(n: int) -> int:
    """The smallest prime >= n."""
    while any(n % d == 0 for d in range(2, math.isqrt(n) + 1)):
        n += 1
    return n


def _steps(n: int, p: dict) -> int:
    return 0 if n < p["t"] else 1 + _steps(n // p["d"], p)


def _fib_params(a: int, b: int) -> dict:
    return {"a": a, "b": b, "a_plus_b": a + b}


def _fib(a: int, b: int, n: int) -> int:
    terms = [a, b]
    while len(terms) < n:
        terms.append(terms[-1] + terms[-2])
    return terms[n - 1]
