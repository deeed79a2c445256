"""Integer families read from stdin: arithmetic, loops with accumulators, conditionals."""

from __future__ import annotations

import math

from coderl_jax.data.synthetic.family import Family


def _n(lo: int, hi: int):
    return lambda r, p: r.randint(lo, hi)


def _two(lo: int, hi: int):
    return lambda r, p: [r.randint(lo, hi), r.randint(lo, hi)]


NUMBER_FAMILIES: tuple[Family, ...] = (
    Family(
        name="add_constant",
        topic="arithmetic",
        kind="stdio",
        templates=(
            "Read an integer n from standard input and print n + {k}.",
            "Given one integer on a line, output that integer increased by {k}.",
            "The input is a single integer. Print the result of adding {k} to it.",
            "A number n is given on stdin. Print the value of n plus {k}.",
        ),
        solution="n = int(input())\nprint(n + {k})",
        sample_params=lambda r: {"k": r.randint(2, 99)},
        sample_input=_n(-500, 500),
        answer=lambda p, n: n + p["k"],
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
        sample_params=lambda r: {"k": r.randint(2, 40)},
        sample_input=_n(-200, 200),
        answer=lambda p, n: p["k"] * n,
    ),
    Family(
        name="linear_expression",
        topic="arithmetic",
        kind="stdio",
        templates=(
            "Read an integer n and print {a} * n - {b}.",
            "Given an integer n on stdin, output the value of {a} times n minus {b}.",
            "The input is one integer n. Multiply it by {a}, subtract {b}, and print the result.",
            "Compute {a}n - {b} for the integer n given on a single line and print it.",
        ),
        solution="n = int(input())\nprint({a} * n - {b})",
        sample_params=lambda r: {"a": r.randint(2, 9), "b": r.randint(1, 30)},
        sample_input=_n(-100, 100),
        answer=lambda p, n: n * p["a"] - p["b"],
    ),
    Family(
        name="sum_then_multiply",
        topic="arithmetic",
        kind="stdio",
        templates=(
            "Read two integers a and b on one line and print (a + b) * {k}.",
            "Two integers are given on a line, separated by a space. Print their sum times {k}.",
            "Given integers a and b, output {k} multiplied by the sum of a and b.",
            "The input holds two integers. Add them, multiply the sum by {k}, and print it.",
        ),
        solution="a, b = map(int, input().split())\nprint((a + b) * {k})",
        sample_params=lambda r: {"k": r.randint(2, 30)},
        sample_input=_two(-100, 100),
        answer=lambda p, x: p["k"] * x[0] + p["k"] * x[1],
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
        sample_params=lambda r: {"k": r.randint(2, 30)},
        sample_input=_n(0, 1000),
        answer=lambda p, n: [divmod(n, p["k"])[0], divmod(n, p["k"])[1]],
    ),
    Family(
        name="square_minus",
        topic="arithmetic",
        kind="stdio",
        templates=(
            "Read an integer n and print n squared minus {k}.",
            "Given an integer n, output n * n - {k}.",
            "The input is one integer. Print its square decreased by {k}.",
            "Square the integer given on stdin, subtract {k}, and print the result.",
        ),
        solution="n = int(input())\nprint(n * n - {k})",
        sample_params=lambda r: {"k": r.randint(1, 99)},
        sample_input=_n(-30, 30),
        answer=lambda p, n: n**2 - p["k"],
    ),
    Family(
        name="digit_sum_mod",
        topic="loops",
        kind="stdio",
        templates=(
            "Read a non-negative integer n. Print the sum of its digits modulo {k}.",
            "Given a non-negative integer, add up its decimal digits and output that sum mod {k}.",
            "The input is an integer n >= 0. Print (sum of the digits of n) % {k}.",
            "Compute the digit sum of the non-negative integer on stdin and print its remainder "
            "when divided by {k}.",
        ),
        solution="s = input()\nprint(sum(int(c) for c in s) % {k})",
        sample_params=lambda r: {"k": r.randint(2, 30)},
        sample_input=_n(0, 10**9),
        answer=lambda p, n: sum(map(int, str(n))) % p["k"],
    ),
    Family(
        name="sum_multiples",
        topic="loops",
        kind="stdio",
        templates=(
            "Read an integer n. Print the sum of all integers from 1 to n that are divisible "
            "by {k}.",
            "Given n, add up every multiple of {k} between 1 and n inclusive and print the total.",
            "The input is a positive integer n. Output the sum of the numbers 1..n divisible "
            "by {k}.",
            "Loop over 1, 2, ..., n (n read from stdin) and print the total of the multiples "
            "of {k}.",
        ),
        solution=(
            "n = int(input())\ntotal = 0\nfor i in range(1, n + 1):\n"
            "    if i % {k} == 0:\n        total += i\nprint(total)"
        ),
        sample_params=lambda r: {"k": r.randint(2, 30)},
        sample_input=_n(1, 200),
        answer=lambda p, n: p["k"] * (n // p["k"]) * (n // p["k"] + 1) // 2,
    ),
    Family(
        name="sum_squares_from",
        topic="loops",
        kind="stdio",
        templates=(
            "Read an integer n >= {a}. Print the sum of i * i for every i from {a} to n.",
            "Given n, output {a}^2 + ({a}+1)^2 + ... + n^2.",
            "The input is an integer n, at least {a}. Print the sum of the squares of the "
            "integers from {a} up to n.",
            "Add up the squares of all integers between {a} and n inclusive, where n is read "
            "from stdin, and print the sum.",
        ),
        solution="n = int(input())\nprint(sum(i * i for i in range({a}, n + 1)))",
        sample_params=lambda r: {"a": r.randint(1, 30)},
        sample_input=lambda r, p: r.randint(p["a"], p["a"] + 20),
        answer=lambda p, n: (
            (n * (n + 1) * (2 * n + 1) - (p["a"] - 1) * p["a"] * (2 * p["a"] - 1)) // 6
        ),
    ),
    Family(
        name="factorial_mod",
        topic="loops",
        kind="stdio",
        templates=(
            "Read an integer n. Print the product 1 * 2 * ... * n modulo {m}.",
            "Given a positive integer n, output n factorial modulo {m}.",
            "The input is n. Multiply all integers from 1 to n and print the remainder of that "
            "product divided by {m}.",
            "Compute n! % {m} for the positive integer n given on stdin.",
        ),
        solution=(
            "n = int(input())\np = 1\nfor i in range(1, n + 1):\n    p = p * i % {m}\nprint(p)"
        ),
        sample_params=lambda r: {"m": r.randint(7, 97)},
        sample_input=_n(1, 20),
        answer=lambda p, n: math.factorial(n) % p["m"],
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
        sample_params=lambda r: {"k": r.randint(1, 30)},
        sample_input=_n(1, 300),
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
        sample_params=lambda r: {"d": r.randint(2, 5), "t": r.randint(1, 20)},
        sample_input=_n(0, 5000),
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
        sample_params=lambda r: _fib_params(r.randint(0, 9), r.randint(1, 9)),
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
        sample_params=lambda r: {"s": r.randint(1, 5), "k": r.randint(2, 9)},
        sample_input=_n(0, 10**6),
        answer=lambda p, n: next(i for i in range(64) if p["s"] * p["k"] ** i > n),
    ),
)


def _steps(n: int, p: dict) -> int:
    return 0 if n < p["t"] else 1 + _steps(n // p["d"], p)


def _fib_params(a: int, b: int) -> dict:
    return {"a": a, "b": b, "a_plus_b": a + b}


def _fib(a: int, b: int, n: int) -> int:
    terms = [a, b]
    while len(terms) < n:
        terms.append(terms[-1] + terms[-2])
    return terms[n - 1]
