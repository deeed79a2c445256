"""stdin families that count with dictionaries and sets: word tallies, modes, first
occurrences, distinct values."""

from __future__ import annotations

import collections

from coderl_jax.data.synthetic.family import (
    WORDS,
    Family,
    compare,
    direction,
    int_list,
    signed_spread,
    word_line,
)


def _most_frequent_params(r) -> dict:
    largest = r.random() < 0.5
    return {
        **direction(r),
        "k": signed_spread(r, 9999),
        "tie": "largest" if largest else "smallest",
        "rev": ", reverse=True" if largest else "",
    }


def _most_frequent_input(r, p) -> list:
    while True:
        a = int_list(r, p["k"] - 5, p["k"] + 5, 4, 10)
        if any(compare(p["op"], x, p["k"]) for x in a):
            return a


def _most_frequent(p: dict, a: list) -> int:
    counts = collections.Counter(x for x in a if compare(p["op"], x, p["k"]))
    top = max(counts.values())
    tied = [x for x, c in counts.items() if c == top]
    return max(tied) if p["tie"] == "largest" else min(tied)


def _count_of_word_params(r) -> dict:
    w, v = r.sample(WORDS, 2)
    if r.random() < 0.5:
        return {"w": w, "what": f"the word {w}", "get": f'counts.get("{w}", 0)'}
    return {
        "w": w,
        "v": v,
        "what": f"the words {w} and {v}, on one line",
        "get": f'counts.get("{w}", 0), counts.get("{v}", 0)',
    }


def _count_of_word(p: dict, s: str):
    words = s.split()
    return [words.count(p["w"]), words.count(p["v"])] if "v" in p else words.count(p["w"])


def _seen(p: dict, line: str) -> tuple:
    words = line.split()
    return tuple(p["again"] if w in words[:i] else p["new"] for i, w in enumerate(words))


COUNTING_FAMILIES: tuple[Family, ...] = (
    Family(
        name="count_of_word",
        topic="counting",
        kind="stdio",
        templates=(
            "Read a line of words. Count how often each word appears using a dictionary, then "
            "print the count of {what}.",
            "Given space-separated words, build a table of word counts and output the number of "
            "occurrences of {what}, 0 for a missing word.",
            "The input is one line of words. Print the number of occurrences of {what}.",
            "Tally the words on stdin and print the tally of {what}.",
        ),
        solution=(
            "counts = {{}}\nfor w in input().split():\n    counts[w] = counts.get(w, 0) + 1\n"
            "print({get})"
        ),
        sample_params=_count_of_word_params,
        sample_input=lambda r, p: " ".join(
            r.choice([p["w"], p.get("v", p["w"]), r.choice(WORDS)]) for _ in range(r.randint(2, 7))
        ),
        answer=_count_of_word,
    ),
    Family(
        name="most_frequent_number",
        topic="counting",
        kind="stdio",
        templates=(
            "Read a line of integers. Among those {rel} {k}, print the value that occurs most "
            "often; if several tie, print the {tie} of them.",
            "Given space-separated integers, keep the ones {rel} {k} and output the most "
            "frequent of them, choosing the {tie} in case of a tie.",
            "The input holds integers, at least one {side} {k}. Print the mode of the values "
            "{side} {k} (the {tie} value among the most common ones).",
            "Count the occurrences of each integer {side} {k} on stdin and print the most "
            "common one, the {tie} first on ties.",
        ),
        solution=(
            "a = [x for x in map(int, input().split()) if x {op} {k}]\n"
            "print(max(sorted(set(a){rev}), key=a.count))"
        ),
        sample_params=_most_frequent_params,
        sample_input=_most_frequent_input,
        answer=_most_frequent,
    ),
    Family(
        name="seen_words",
        topic="counting",
        kind="stdio",
        templates=(
            "Read a line of words. For each word in order, print {new} if it has not appeared "
            "before and {again} if it has, one per line.",
            "Given space-separated words, output one line per word: {again} when the word was "
            "already seen earlier in the line, otherwise {new}.",
            "The input is a line of words. Go through them and print {new} for a first "
            "occurrence and {again} for a repeat, each on its own line.",
            "For every word on stdin print {again} if an earlier word equals it, else {new}.",
        ),
        solution=(
            'seen = set()\nfor w in input().split():\n    print("{again}" if w in seen else '
            '"{new}")\n    seen.add(w)'
        ),
        sample_params=lambda r: dict(zip(("new", "again"), r.sample(WORDS, 2))),
        sample_input=lambda r, p: word_line(r, 2, 6, pool=r.sample(WORDS, 4)),
        answer=_seen,
    ),
    Family(
        name="count_distinct_above",
        topic="counting",
        kind="stdio",
        templates=(
            "Read a line of integers. Print how many different values {rel} {k} appear.",
            "Given space-separated integers, count the distinct numbers {rel} {k}.",
            "The input is one line of integers. Output the number of unique values {side} {k}.",
            "How many distinct integers {rel} {k} are on stdin? Print the count.",
        ),
        solution="a = list(map(int, input().split()))\nprint(len(set(x for x in a if x {op} {k})))",
        sample_params=lambda r: {**direction(r), "k": signed_spread(r, 999)},
        sample_input=lambda r, p: int_list(r, p["k"] - 15, p["k"] + 15, 3, 10),
        answer=lambda p, a: len({x: 0 for x in a if compare(p["op"], x, p["k"])}),
    ),
)
