"""Integer families read from stdin whose answer is chosen by conditions (if/elif/else)."""

from __future__ import annotations

from coderl_jax.data.synthetic.family import WORDS, Family, signed_spread, spread_int

# Range checks, inclusive or not: operator -> how the statement says it.
ENDS = {"<=": "ends included", "<": "ends excluded"}


def _n(lo: int, hi: int):
    return lambda r, p: r.randint(lo, hi)


def _clamp_input(r, p) -> int:
    edge = r.choice([p["lo"], p["hi"], r.randint(p["lo"], p["hi"])])
    return edge + r.randint(-30, 30)


CONDITIONAL_FAMILIES: tuple[Family, ...] = (
    Family(
        name="near_or_far",
        topic="conditionals",
        kind="stdio",
        templates=(
            "Read two integers a and b. Print {far} if they differ by more than {k}, else {near}.",
            "Given two integers on one line, output {near} when the absolute difference is at "
            "most {k}, and {far} otherwise.",
            "Two integers are given. If |a - b| > {k} print {far}; otherwise print {near}.",
            "Compare two integers from one input line: print {far} when their distance exceeds "
            "{k}, {near} when it does not.",
        ),
        solution=(
            'a, b = map(int, input().split())\nprint("{far}" if abs(a - b) > {k} else "{near}")'
        ),
        sample_params=lambda r: {
            "k": spread_int(r, 1, 999),
            **dict(zip(("near", "far"), r.sample(WORDS, 2))),
        },
        sample_input=lambda r, p: (lambda a: [a, a + r.randint(-2 * p["k"], 2 * p["k"])])(
            r.randint(-60, 60)
        ),
        answer=lambda p, x: p["near"] if -p["k"] <= x[0] - x[1] <= p["k"] else p["far"],
    ),
    Family(
        name="compare_threshold",
        topic="conditionals",
        kind="stdio",
        templates=(
            "Read an integer n. Print high if n > {k}, low if n < {k}, and equal otherwise.",
            "Given one integer, output high when it is greater than {k}, low when it is less "
            "than {k}, and equal when it is exactly {k}.",
            "Compare the input integer with {k}: print high, low or equal.",
            "The input is an integer. Print low if it is below {k}, high if it is above {k}, "
            "else equal.",
        ),
        solution=('n = int(input())\nprint("high" if n > {k} else "low" if n < {k} else "equal")'),
        sample_params=lambda r: {"k": signed_spread(r, 9999)},
        sample_input=lambda r, p: p["k"] + r.choice([0, r.randint(-20, 20)]),
        answer=lambda p, n: ["equal", "high", "low"][(n > p["k"]) + 2 * (n < p["k"])],
    ),
    Family(
        name="parity_words",
        topic="conditionals",
        kind="stdio",
        templates=(
            "Read an integer n. Print {even} if n is even and {odd} if n is odd.",
            "Given an integer, output the word {even} when it is divisible by 2, otherwise the "
            "word {odd}.",
            "The input is one integer. If it is even print {even}; if it is odd print {odd}.",
            "Print {odd} for an odd input integer and {even} for an even one.",
        ),
        solution='n = int(input())\nprint("{even}" if n % 2 == 0 else "{odd}")',
        sample_params=lambda r: dict(zip(("even", "odd"), r.sample(WORDS, 2))),
        sample_input=_n(-100, 100),
        answer=lambda p, n: p["odd"] if n & 1 else p["even"],
    ),
    Family(
        name="clamp",
        topic="conditionals",
        kind="stdio",
        templates=(
            "Read an integer n. Print n limited to the range {lo} to {hi}: values below {lo} "
            "become {lo}, values above {hi} become {hi}.",
            "Given an integer, clamp it into [{lo}, {hi}] and print the result.",
            "The input is one integer. Output it, but replace it by {lo} if it is smaller than "
            "{lo} and by {hi} if it is larger than {hi}.",
            "Print the integer from stdin, clipped so that it is at least {lo} and at most {hi}.",
        ),
        solution="n = int(input())\nprint(min(max(n, {lo}), {hi}))",
        sample_params=lambda r: (lambda lo: {"lo": lo, "hi": lo + spread_int(r, 1, 999)})(
            signed_spread(r, 999)
        ),
        sample_input=_clamp_input,
        answer=lambda p, n: sorted([p["lo"], n, p["hi"]])[1],
    ),
    Family(
        name="fizzbuzz_single",
        topic="conditionals",
        kind="stdio",
        templates=(
            "Read an integer n. Print Fizz if n is divisible by {a}, Buzz if divisible by {b}, "
            "FizzBuzz if divisible by both, and n itself otherwise.",
            "Given a positive integer, output FizzBuzz when both {a} and {b} divide it, Fizz "
            "when only {a} does, Buzz when only {b} does, else the number.",
            "FizzBuzz with {a} and {b}: for the integer on stdin print Fizz, Buzz, FizzBuzz or "
            "the number itself.",
            "The input is n. Build a word from Fizz (if {a} divides n) followed by Buzz (if {b} "
            "divides n); print the word, or n when it is empty.",
        ),
        solution=(
            'n = int(input())\ns = ("Fizz" if n % {a} == 0 else "") + ("Buzz" if n % {b} == 0 '
            'else "")\nprint(s or n)'
        ),
        sample_params=lambda r: dict(zip(("a", "b"), r.sample(range(2, 100), 2))),
        sample_input=lambda r, p: r.choice(
            [p["a"] * r.randint(1, 9), p["b"] * r.randint(1, 9), p["a"] * p["b"], r.randint(1, 999)]
        ),
        answer=lambda p, n: {0: n, 1: "Fizz", 2: "Buzz", 3: "FizzBuzz"}[
            (n % p["a"] == 0) + 2 * (n % p["b"] == 0)
        ],
    ),
    Family(
        name="range_contains",
        topic="conditionals",
        kind="stdio",
        templates=(
            "Read two integers a and b with a <= b. Print yes if a {op} {k} {op} b, otherwise no.",
            "Given the ends a <= b of a range on one line, output yes when {k} lies inside it "
            "({ends}) and no when it does not.",
            "The input holds two integers a <= b. Is a {op} {k} {op} b? Print yes or no.",
            "Check whether the number {k} is inside the interval whose ends are read from stdin, "
            "{ends}; print yes or no.",
        ),
        solution='a, b = map(int, input().split())\nprint("yes" if a {op} {k} {op} b else "no")',
        sample_params=lambda r: (
            lambda op: {"op": op, "ends": ENDS[op], "k": signed_spread(r, 999)}
        )(r.choice(tuple(ENDS))),
        sample_input=lambda r, p: sorted(r.randint(p["k"] - 15, p["k"] + 15) for _ in "ab"),
        answer=lambda p, x: "yes" if _inside(p, *x) else "no",
    ),
    Family(
        name="grade_bucket",
        topic="conditionals",
        kind="stdio",
        templates=(
            "Read a score from 0 to 100. Print A if it is at least {hi}, B if it is at least "
            "{lo}, and C otherwise.",
            "Given an integer score, output the grade: A for {hi} or more, B for {lo} or more, "
            "C below {lo}.",
            "The input is a score. Scores >= {hi} get A, scores >= {lo} get B, the rest get C. "
            "Print the grade.",
            "Classify the score on stdin: print C when it is under {lo}, B when it is under "
            "{hi}, and A otherwise.",
        ),
        solution='n = int(input())\nprint("A" if n >= {hi} else "B" if n >= {lo} else "C")',
        sample_params=lambda r: dict(zip(("lo", "hi"), sorted(r.sample(range(1, 100), 2)))),
        # Near a boundary half of the time, so every grade shows up even for narrow bands.
        sample_input=lambda r, p: r.choice(
            [r.randint(0, 100), max(0, r.choice([p["lo"], p["hi"]]) + r.randint(-2, 1))]
        ),
        answer=lambda p, n: "C" if n < p["lo"] else ("B" if n < p["hi"] else "A"),
    ),
)


def _inside(p: dict, a: int, b: int) -> bool:
    if p["op"] == "<=":
        return p["k"] in range(a, b + 1)
    return p["k"] in range(a + 1, b)
