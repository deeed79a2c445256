"""stdin families over words and letters: string counting and transformation, and counting
with dictionaries and sets."""

from __future__ import annotations

from coderl_jax.data.synthetic.family import (
    LETTERS,
    VOWELS,
    WORDS,
    Family,
    letters_word,
    word_line,
    word_line_favouring,
)

INITIALS = sorted({w[0] for w in WORDS})
FILLERS = "*#!?-_+=."
CONSONANTS = "".join(c for c in LETTERS if c not in VOWELS)


def _words(min_len: int = 2, max_len: int = 6):
    return lambda r, p: word_line(r, min_len, max_len)


def _words_containing(key: str):
    """Word lines where half the words contain one of the letters of ``params[key]``."""
    return lambda r, p: word_line_favouring(r, [w for w in WORDS if set(w) & set(p[key])])


def _palindrome_or_not(r, p) -> str:
    half = letters_word(r, 1, 4, pool="abc")
    return half + r.choice(["", "a", "b"]) + half[::-1] if r.random() < 0.5 else half + "ab"


def _most_frequent(a: list) -> int:
    best = sorted(set(a))[0]
    for x in sorted(set(a)):
        if a.count(x) > a.count(best):
            best = x
    return best


def _seen(p: dict, line: str) -> tuple:
    words = line.split()
    return tuple(p["again"] if w in words[:i] else p["new"] for i, w in enumerate(words))


STRING_FAMILIES: tuple[Family, ...] = (
    Family(
        name="count_char",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a line of text. Print how many times the letter {c} appears in it.",
            "Given a line of lowercase words, count the occurrences of the character '{c}' and "
            "output the count.",
            "The input is one line of text. Output the number of '{c}' characters it contains.",
            "How many letters {c} are there in the line on stdin? Print the number.",
        ),
        solution='s = input()\nprint(s.count("{c}"))',
        sample_params=lambda r: {"c": r.choice(LETTERS)},
        sample_input=_words_containing("c"),
        answer=lambda p, s: sum(ch == p["c"] for ch in s),
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
        sample_params=lambda r: {"letters": "".join(sorted(r.sample(LETTERS, 3)))},
        sample_input=_words_containing("letters"),
        answer=lambda p, s: sum(s.count(c) for c in p["letters"]),
    ),
    Family(
        name="shift_letters",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a word of lowercase letters. Shift each letter {k} places forward in the "
            "alphabet, wrapping from z to a, and print the result.",
            "Given a lowercase word, output its Caesar cipher with shift {k}.",
            "The input is a word. Replace every letter by the letter {k} positions later in the "
            "alphabet (after z comes a) and print the new word.",
            "Encrypt the lowercase word on stdin by moving each letter {k} steps forward, "
            "wrapping around, and print it.",
        ),
        solution='s = input()\nprint("".join(chr((ord(c) - 97 + {k}) % 26 + 97) for c in s))',
        sample_params=lambda r: {"k": r.randint(1, 25)},
        sample_input=lambda r, p: letters_word(r),
        answer=lambda p, s: "".join(LETTERS[(LETTERS.index(c) + p["k"]) % 26] for c in s),
    ),
    Family(
        name="replace_char",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a line of text. Replace every letter {a} with {b} and print the line.",
            "Given a line of lowercase words, output it with each '{a}' changed to '{b}'.",
            "The input is one line. Print it after substituting {b} for every {a}.",
            "Change all occurrences of the character {a} in the input line into {b} and print "
            "the result.",
        ),
        solution='s = input()\nprint(s.replace("{a}", "{b}"))',
        sample_params=lambda r: dict(zip("ab", r.sample(LETTERS, 2))),
        sample_input=_words_containing("a"),
        answer=lambda p, s: "".join(p["b"] if c == p["a"] else c for c in s),
    ),
    Family(
        name="words_starting_with",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a line of words. Print how many words start with the letter {c}.",
            "Given space-separated words, count those whose first letter is '{c}' and output "
            "the count.",
            "The input is one line of words. Output the number of words beginning with {c}.",
            "Count the words on stdin that begin with '{c}' and print the count.",
        ),
        solution='words = input().split()\nprint(sum(1 for w in words if w.startswith("{c}")))',
        sample_params=lambda r: {"c": r.choice(INITIALS)},
        sample_input=lambda r, p: word_line_favouring(
            r, [w for w in WORDS if w[0] == p["c"]], 3, 8
        ),
        answer=lambda p, s: [w[0] for w in s.split()].count(p["c"]),
    ),
    Family(
        name="repeat_word",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a word. Print it {k} times, joined by the character '{sep}'.",
            "Given a word on stdin, output {k} copies of it separated by {sep}.",
            "The input is one word. Repeat it {k} times with '{sep}' between the copies and "
            "print the result.",
            "Print the input word {k} times in a row, putting {sep} between consecutive copies.",
        ),
        solution='s = input()\nprint("{sep}".join([s] * {k}))',
        sample_params=lambda r: {"k": r.randint(2, 6), "sep": r.choice("-+,*.:/|_")},
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
            "Read a line of text. Replace every vowel (a, e, i, o, u) with '{c}' and print it.",
            "Given a line of lowercase words, output it with each vowel changed to {c}.",
            "The input is one line. Print it with all of the letters aeiou replaced by '{c}'.",
            "Mask the vowels of the input line: print the line where each a, e, i, o or u "
            "becomes {c}.",
        ),
        solution='s = input()\nprint("".join("{c}" if ch in "aeiou" else ch for ch in s))',
        sample_params=lambda r: {"c": r.choice(FILLERS + CONSONANTS)},
        sample_input=_words(),
        answer=lambda p, s: s.translate(str.maketrans(VOWELS, p["c"] * 5)),
    ),
    Family(
        name="remove_char",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a line of text. Remove every letter {c} from it and print what is left.",
            "Given a line of lowercase words, output it without any '{c}' characters.",
            "The input is one line. Delete all occurrences of {c} and print the result.",
            "Print the input line with each character {c} taken out.",
        ),
        solution='s = input()\nprint(s.replace("{c}", ""))',
        sample_params=lambda r: {"c": r.choice(LETTERS)},
        sample_input=_words_containing("c"),
        answer=lambda p, s: "".join(ch for ch in s if ch != p["c"]),
    ),
    Family(
        name="pad_word",
        topic="strings",
        kind="stdio",
        templates=(
            "Read a word. Print it right-aligned to width {w}, padding on the left with '{c}'.",
            "Given a word, add {c} characters in front of it until it is {w} characters long, "
            "then print it.",
            "The input is one word of at most {w} letters. Left-pad it with {c} to length {w} "
            "and output it.",
            "Print the word on stdin preceded by as many '{c}' as needed to make {w} "
            "characters in total.",
        ),
        solution='s = input()\nprint(s.rjust({w}, "{c}"))',
        sample_params=lambda r: {"w": r.randint(8, 15), "c": r.choice(FILLERS)},
        sample_input=lambda r, p: r.choice(WORDS),
        answer=lambda p, s: p["c"] * (p["w"] - len(s)) + s,
    ),
)

COUNTING_FAMILIES: tuple[Family, ...] = (
    Family(
        name="count_of_word",
        topic="counting",
        kind="stdio",
        templates=(
            "Read a line of words. Count how often each word appears using a dictionary, then "
            "print the count for the word {w}.",
            "Given space-separated words, build a table of word counts and output how many "
            "times '{w}' occurs (0 if never).",
            "The input is one line of words. Print the number of occurrences of the word {w}.",
            "Tally the words on stdin and print the tally of {w}.",
        ),
        solution=(
            "counts = {{}}\nfor w in input().split():\n    counts[w] = counts.get(w, 0) + 1\n"
            'print(counts.get("{w}", 0))'
        ),
        sample_params=lambda r: {"w": r.choice(WORDS)},
        sample_input=lambda r, p: " ".join(
            r.choice([p["w"], r.choice(WORDS)]) for _ in range(r.randint(2, 7))
        ),
        answer=lambda p, s: s.split().count(p["w"]),
    ),
    Family(
        name="most_frequent_number",
        topic="counting",
        kind="stdio",
        templates=(
            "Read a line of integers between 0 and {m}. Print the value that occurs most often; "
            "if several tie, print the smallest of them.",
            "Given space-separated integers from 0 to {m}, output the most frequent one, "
            "choosing the smallest in case of a tie.",
            "The input holds integers in the range 0..{m}. Print the mode (smallest value among "
            "the most common ones).",
            "Count the occurrences of each integer on stdin (all between 0 and {m}) and print "
            "the most common integer, smallest first on ties.",
        ),
        solution="a = list(map(int, input().split()))\nprint(max(sorted(set(a)), key=a.count))",
        sample_params=lambda r: {"m": r.randint(3, 30)},
        sample_input=lambda r, p: [r.randint(0, p["m"]) for _ in range(r.randint(3, 10))],
        answer=lambda p, a: _most_frequent(a),
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
            "Read a line of integers. Print how many different values greater than {k} appear.",
            "Given space-separated integers, count the distinct numbers that exceed {k}.",
            "The input is one line of integers. Output the number of unique values above {k}.",
            "How many distinct integers larger than {k} are on stdin? Print the count.",
        ),
        solution="a = list(map(int, input().split()))\nprint(len(set(x for x in a if x > {k})))",
        sample_params=lambda r: {"k": r.randint(-5, 30)},
        sample_input=lambda r, p: [r.randint(-10, 40) for _ in range(r.randint(3, 10))],
        answer=lambda p, a: len({x: 0 for x in a if x > p["k"]}),
    ),
)
