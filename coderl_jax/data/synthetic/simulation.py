"""stdin families that simulate a small process driven by a sequence of numbers or moves."""

from __future__ import annotations

from coderl_jax.data.synthetic.family import Family, int_list, spread_int


def _walk(p: dict, moves: str) -> list:
    dx = {"L": -1, "R": 1}
    dy = {"D": -1, "U": 1}
    return [p["x0"] + sum(dx.get(c, 0) for c in moves), p["y0"] + sum(dy.get(c, 0) for c in moves)]


def _bank(p: dict, a: list) -> int:
    balance = p["b"]
    for x in a:
        balance = balance + x if balance + x >= p["f"] else balance
    return balance


def _tank(p: dict, a: list) -> int:
    level = p["s"]
    for x in a:
        level = sorted([0, level + x, p["cap"]])[1]
    return level


def _bank_params(r) -> dict:
    floor = -spread_int(r, 0, 999)
    return {"f": floor, "b": floor + spread_int(r, 0, 999)}


def _tank_params(r) -> dict:
    cap = spread_int(r, 10, 999)
    return {"cap": cap, "s": r.randint(0, cap)}


SIMULATION_FAMILIES: tuple[Family, ...] = (
    Family(
        name="bank_balance",
        topic="simulation",
        kind="stdio",
        templates=(
            "An account starts with {b} coins. Read a line of integers: add each one to the "
            "balance, but skip any that would make it less than {f}. Print the final balance.",
            "Starting balance is {b}. For each integer on stdin, apply it as a deposit (positive) "
            "or withdrawal (negative) unless the balance would drop below {f}. Output the "
            "balance.",
            "Simulate a wallet holding {b}: process the space-separated amounts in order, "
            "ignoring any that would take the balance under {f}, then print the balance.",
            "Given transactions on one line and an initial balance of {b}, print the balance "
            "after applying every transaction that keeps it at least {f}.",
        ),
        solution=(
            "balance = {b}\nfor x in map(int, input().split()):\n    if balance + x >= {f}:\n"
            "        balance += x\nprint(balance)"
        ),
        sample_params=_bank_params,
        sample_input=lambda r, p: (lambda w: int_list(r, -w, w))(max(60, p["b"] - p["f"])),
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
        sample_params=lambda r: {"x0": r.randint(-99, 99), "y0": r.randint(-99, 99)},
        sample_input=lambda r, p: "".join(r.choice("LRUD") for _ in range(r.randint(1, 12))),
        answer=_walk,
    ),
    Family(
        name="countdown",
        topic="simulation",
        kind="stdio",
        templates=(
            "Read an integer n > {t}. Print n, n - {k}, n - {k2}, ... on one line, stopping "
            "before the values reach {t} or below.",
            "Given n, count down from n in steps of {k} and print every value greater than {t} "
            "on one line, separated by spaces.",
            "The input is an integer above {t}. Output the numbers greater than {t} that you get "
            "by starting there and subtracting {k} repeatedly.",
            "Starting at the integer on stdin, print all terms greater than {t} of the sequence "
            "that decreases by {k} each step.",
        ),
        solution="n = int(input())\nprint(*range(n, {t}, -{k}))",
        sample_params=lambda r: (lambda k: {"k": k, "k2": 2 * k, "t": r.randint(-99, 99)})(
            r.randint(1, 99)
        ),
        sample_input=lambda r, p: r.randint(p["t"] + 1, p["t"] + 12 * p["k"]),
        answer=lambda p, n: [n - i * p["k"] for i in range((n - p["t"] - 1) // p["k"] + 1)],
    ),
    Family(
        name="water_tank",
        topic="simulation",
        kind="stdio",
        templates=(
            "A tank holds at most {cap} liters and starts with {s}. Read a line of integers; add "
            "each to the level, keeping it between 0 and {cap}. Print the final level.",
            "Simulate a tank of capacity {cap} holding {s} liters: for each integer on stdin, "
            "change the water level by that amount, clipping at 0 and at {cap}. Output the "
            "level at the end.",
            "The level starts at {s}. Each input number is poured in (positive) or drained "
            "(negative); the level never goes below 0 or above {cap}. Print the final level.",
            "Given level changes on one line, print the water level of a tank with capacity "
            "{cap} that starts at {s}, clamping after every change.",
        ),
        solution=(
            "level = {s}\nfor x in map(int, input().split()):\n    level = min(max(level + x, 0), "
            "{cap})\nprint(level)"
        ),
        sample_params=_tank_params,
        sample_input=lambda r, p: (lambda w: int_list(r, -w, w + 10))(p["cap"] * 2 // 3 + 5),
        answer=_tank,
    ),
    Family(
        name="frog_jumps",
        topic="simulation",
        kind="stdio",
        templates=(
            "A frog starts at position {s} and jumps {k} units forward each time. Read n and "
            "print how many jumps it needs to reach position n or beyond.",
            "Given a position n, output the number of jumps of length {k} needed to get from "
            "{s} to n or further.",
            "The input is an integer n. A frog at {s} moves {k} steps per jump. Print the "
            "smallest number of jumps that gets it to n or further.",
            "Count the jumps of size {k} a frog at {s} must make until its position is at least "
            "the integer n from stdin, and print the count.",
        ),
        solution=(
            "n = int(input())\npos, jumps = {s}, 0\nwhile pos < n:\n    pos += {k}\n"
            "    jumps += 1\nprint(jumps)"
        ),
        sample_params=lambda r: {"k": spread_int(r, 2, 999), "s": r.randint(0, 99)},
        sample_input=lambda r, p: r.randint(0, p["s"] + 15 * p["k"]),
        answer=lambda p, n: max(0, -(-(n - p["s"]) // p["k"])),
    ),
)
