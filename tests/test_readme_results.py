"""The README's study numbers are the committed study tables' numbers.

Every "mean ± standard error" and every "difference [95% interval]" the README quotes must
appear, digit for digit, in a table under experiments/results/ (written by
experiments/study.py, whose regenerate command each table names), so the prose cannot drift
from the results it reports.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
NUMBER = r"[+-]?\d\.\d{3}"
MEAN_SE = re.compile(rf"{NUMBER} ± {NUMBER}")
INTERVAL = re.compile(rf"{NUMBER} \[{NUMBER}, {NUMBER}\]")


def quoted(pattern: re.Pattern) -> list[str]:
    readme = (ROOT / "README.md").read_text().replace("−", "-")  # the README's minus sign
    return pattern.findall(readme)


def results_text() -> str:
    tables = sorted((ROOT / "experiments" / "results").glob("*.md"))
    assert tables, "no study tables under experiments/results"
    return "\n".join(path.read_text() for path in tables)


def test_readme_quotes_only_numbers_of_the_study_tables():
    tables = results_text()
    means, intervals = quoted(MEAN_SE), quoted(INTERVAL)
    # Both studies are quoted (5 metrics x 5 arms and the second study's warm start; the
    # paired differences of both): a pattern that stopped matching would pass vacuously.
    assert len(means) >= 25 and len(intervals) >= 15
    missing = [q for q in means + intervals if q not in tables]
    assert not missing, f"README numbers not in experiments/results/*.md: {missing}"
