"""stdin families over words and letters: counting, replacing and reshaping strings."""

from __future__ import annotations

import itertools
import re

from coderl_jax.data.synthetic.family import (
    LETTERS,
    SYMBOLS,
    VOWELS,
    WORDS,
    Family,
    letter_string,
    letters_word,
    line_with,
    word_line,
)

CONSONANTS = "".join(c for c in LETTERS if c not in VOWELS)
# Vowel sets of two or more vowels, in alphabetical order.
VOWEL_SETS = tuple(
    "".join(s) for n in range(2, len(VOWELS) + 1) for s in itertools.combinations(VOWELS, n)
)


def _chars(r, pool: str, max_len: int) -> str:
    """1..``max_len`` characters of ``pool``, length drawn first."""
    return "".join(r.choice(pool) for _ in range(r.randint(1, max_len)))


def _letter_set(r) -> str:
    return "".join(sorted(r.sample(LETTERS, r.randint(2, 4))))


def _palindrome_or_not(r, p) -> str:
    half = letters_word(r, 1, 4, pool="abc")
    return half + r.choice(["", "a", "b"]) + half[::-1] if r.random() < 0.5 else half + "ab"


def _affix_params(r) -> dict:
    start = r.random() < 0.5
    words = ("startswith", "start", "starting") if start else ("endswith", "end", "ending")
    return dict(zip(("method", "verb", "verbing"), words), c=letters_word(r, 1, 3))


def _affixed_words(r, p) -> str:
    words = []
    for _ in range(r.randint(2, 6)):
        word = r.choice(WORDS)
        if r.random() < 0.5:
            word = p["c"] + word if p["method"] == "startswith" else word + p["c"]
        words.append(word)
    return " ".join(words)


def _occurrences(text: str, piece: str) -> int:
    return sum(text[i : i + len(piece)] == piece for i in range(len(text)))


STRING_FAMILIES: tuple[Family, ...] = (
    Family(
        name="count_char",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a line of text. Print how many times '{c}' appears in it.",
            "Given a line of lowercase words, count the occurrences of '{c}' and output the count.",
            "The input is one line of text. Output the number of times '{c}' occurs in it.",
            "How many times does '{c}' occur in the line on stdin? Print the number.",
        ),
        solution='s = input()\nprint(s.count("{c}"))',
        sample_params=lambda r: {"c": letter_string(r, 3)},
        sample_input=lambda r, p: line_with(r, p["c"]),
        answer=lambda p, s: _occurrences(s, p["c"]),
    ),
    Family(
        name="count_letters_in_set",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a line of text. Print how many of its characters are one of the letters "
            "{letters}.",
            "Given a line of lowercase words, count the characters that belong to the set "
            "'{letters}' and output the count.",
            "The input is one line. Output the number of characters in it that appear in the "
            "string {letters}.",
            "Count every character of the input line that is in '{letters}' and print the total.",
        ),
        solution='s = input()\nprint(sum(1 for c in s if c in "{letters}"))',
        sample_params=lambda r: {"letters": _letter_set(r)},
        sample_input=lambda r, p: line_with(r, r.choice(p["letters"])),
        answer=lambda p, s: sum(s.count(c) for c in p["letters"]),
    ),
    Family(
        name="shift_letters",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a word of lowercase letters. Shift each letter {k} places forward in the "
            "alphabet{more}, wrapping from z to a, and print the result.",
            "Given a lowercase word, move each letter {k} places forward in the alphabet{more}, "
            "after z coming a, and output the result.",
            "The input is a word. Replace every letter by the letter {k} positions later in the "
            "alphabet{more} (after z comes a) and print the new word.",
            "Encrypt the lowercase word on stdin by moving each letter {k} steps forward{more}, "
            "wrapping around, and print it.",
        ),
        solution=(
            "s = input()\n"
            'print("".join(chr((ord(c) - 97 + {k} + {d} * i) % 26 + 97) for i, c in enumerate(s)))'
        ),
        sample_params=lambda r: _shift_params(r.randint(0, 25), r.choice([0, r.randint(1, 25)])),
        sample_input=lambda r, p: letters_word(r),
        answer=lambda p, s: "".join(
            LETTERS[(LETTERS.index(c) + p["k"] + p["d"] * i) % 26] for i, c in enumerate(s)
        ),
    ),
    Family(
        name="replace_char",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a line of text. Replace every letter {a} with {b} and print the line.",
            "Given a line of lowercase words, output it with each '{a}' changed to '{b}'.",
            "The input is one line. Print it after substituting '{b}' for every '{a}'.",
            "Change all occurrences of the character {a} in the input line into {b} and print "
            "the result.",
        ),
        solution='s = input()\nprint(s.replace("{a}", "{b}"))',
        sample_params=lambda r: _replace_params(r.choice(LETTERS), r),
        sample_input=lambda r, p: line_with(r, p["a"]),
        answer=lambda p, s: "".join(p["b"] if c == p["a"] else c for c in s),
    ),
    Family(
        name="words_starting_with",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a line of words. Print how many words {verb} with '{c}'.",
            "Given space-separated words, count those {verbing} with '{c}' and output the count.",
            "The input is one line of words. Output the number of words {verbing} with '{c}'.",
            "Count the words on stdin that {verb} with '{c}' and print the count.",
        ),
        solution='words = input().split()\nprint(sum(1 for w in words if w.{method}("{c}")))',
        sample_params=_affix_params,
        sample_input=_affixed_words,
        answer=lambda p, s: sum(
            (w[: len(p["c"])] if p["method"] == "startswith" else w[-len(p["c"]) :]) == p["c"]
            for w in s.split()
        ),
    ),
    Family(
        name="repeat_word",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a word. Print it {k} times, joined by '{sep}'.",
            "Given a word on stdin, output {k} copies of it separated by '{sep}'.",
            "The input is one word. Repeat it {k} times with '{sep}' between the copies and "
            "print the result.",
            "Print the input word {k} times in a row, putting '{sep}' between consecutive copies.",
        ),
        solution='s = input()\nprint("{sep}".join([s] * {k}))',
        sample_params=lambda r: {"k": r.randint(2, 6), "sep": _chars(r, SYMBOLS, 3)},
        sample_input=lambda r, p: r.choice(WORDS),
        answer=lambda p, s: (s + p["sep"]) * (p["k"] - 1) + s,
    ),
    Family(
        name="palindrome_words",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a word. Print {yes} if it reads the same backwards, otherwise print {no}.",
            "Given a lowercase word, output {yes} when it is a palindrome and {no} when it is not.",
            "The input is one word. If reversing it gives the same word print {yes}; else "
            "print {no}.",
            "Check whether the word on stdin is a palindrome: print {yes} or {no}.",
        ),
        solution='s = input()\nprint("{yes}" if s == s[::-1] else "{no}")',
        sample_params=lambda r: dict(zip(("yes", "no"), r.sample(WORDS, 2))),
        sample_input=_palindrome_or_not,
        answer=lambda p, s: p["yes"] if all(s[i] == s[-1 - i] for i in range(len(s))) else p["no"],
    ),
    Family(
        name="replace_vowels",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a line of text. Replace every one of the vowels {vowels} with '{c}' and print "
            "it.",
            "Given a line of lowercase words, output it with each of the letters {vowels} "
            "changed to '{c}'.",
            "The input is one line. Print it with all of the letters {vowels} replaced by '{c}'.",
            "Mask some vowels of the input line: print the line where each letter from {vowels} "
            "becomes '{c}'.",
        ),
        solution='s = input()\nprint("".join("{c}" if ch in "{vowels}" else ch for ch in s))',
        sample_params=lambda r: {
            "vowels": r.choice(VOWEL_SETS),
            "c": _chars(r, SYMBOLS + CONSONANTS, 2),
        },
        sample_input=lambda r, p: word_line(r),
        answer=lambda p, s: "".join(p["c"] if ch in set(p["vowels"]) else ch for ch in s),
    ),
    Family(
        name="remove_char",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a line of text. Remove every '{c}' from it and print what is left.",
            "Given a line of lowercase words, output it without any '{c}'.",
            "The input is one line. Delete all occurrences of '{c}' and print the result.",
            "Print the input line with each '{c}' taken out.",
        ),
        solution='s = input()\nprint(s.replace("{c}", ""))',
        sample_params=lambda r: {"c": letter_string(r, 2)},
        sample_input=lambda r, p: line_with(r, p["c"]),
        answer=lambda p, s: re.sub(re.escape(p["c"]), "", s),
    ),
    Family(
        name="pad_word",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a word. Print it {align}-aligned to width {w}, padding on the {side} with '{c}'.",
            "Given a word, add '{c}' characters {where} it until it is {w} characters long, "
            "then print it.",
            "The input is one word. Pad it on the {side} with '{c}' to length {w} and output it.",
            "Print the word on stdin {joined} by as many '{c}' as needed to make {w} characters "
            "in total.",
        ),
        solution='s = input()\nprint(s.{method}({w}, "{c}"))',
        sample_params=lambda r: _pad_params(r.random() < 0.5, r.randint(5, 40), r),
        sample_input=lambda r, p: r.choice(WORDS),
        answer=lambda p, s: (
            p["c"] * (p["w"] - len(s)) + s
            if p["method"] == "rjust"
            else s + p["c"] * (p["w"] - len(s))
        ),
    ),
)


def _shift_params(k: int, d: int) -> dict:
    if k == d == 0:  # the identity is no cipher
        k = 1
    more = f", plus {d} more for each letter before it" if d else ""
    return {"k": k, "d": d, "more": more}


def _replace_params(a: str, r) -> dict:
    while True:
        b = _chars(r, LETTERS + SYMBOLS, 2)
        if b != a:
            return {"a": a, "b": b}


def _pad_params(right: bool, width: int, r) -> dict:
    words = ("rjust", "right", "left", "in front of", "preceded")
    if not right:
        words = ("ljust", "left", "right", "after", "followed")
    fill = r.choice(SYMBOLS + "0123456789" + LETTERS.upper() + LETTERS)
    return {
        **dict(zip(("method", "align", "side", "where", "joined"), words)),
        "w": width,
        "c": fill,
    }
