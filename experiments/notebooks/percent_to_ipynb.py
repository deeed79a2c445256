r"""Converts a ``# %%`` ("percent" format) script into a Jupyter notebook, without outputs.

    python experiments/notebooks/percent_to_ipynb.py experiments/notebooks/inspect_learner_state.py

writes ``inspect_learner_state.ipynb`` beside the script. The script is the source of truth;
tests/test_notebooks.py checks that the committed notebook matches it. Format: a line
``# %%`` starts a code cell, ``# %% [markdown]`` a Markdown cell whose lines drop their
leading ``# ``; text before the first marker is ignored; blank lines around cells are trimmed.
"""

from __future__ import annotations

import os
import sys

import nbformat

_CODE, _MARKDOWN = "# %%", "# %% [markdown]"


def cells_from_percent(text: str) -> list[tuple[str, str]]:
    """``[(cell_type, source), ...]`` of a percent-format script."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        stripped = line.rstrip()
        if stripped == _MARKDOWN:
            cells.append(("markdown", []))
        elif stripped == _CODE:
            cells.append(("code", []))
        elif cells:
            kind, lines = cells[-1]
            if kind == "markdown":
                if line.strip() and not line.startswith("#"):
                    raise ValueError(f"markdown cell line without '#': {line!r}")
                line = line[2:] if line.startswith("# ") else line.lstrip("#")
            lines.append(line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells]


def notebook_from_percent(text: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    for kind, source in cells_from_percent(text):
        new = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        notebook.cells.append(new(source))
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{number}"  # stable ids: regenerating gives the same file
    return notebook


def main(argv: list[str]) -> None:
    if len(argv) != 2 or not argv[1].endswith(".py"):
        raise SystemExit("usage: percent_to_ipynb.py SCRIPT.py  (writes SCRIPT.ipynb)")
    with open(argv[1], encoding="utf-8") as f:
        notebook = notebook_from_percent(f.read())
    out = os.path.splitext(argv[1])[0] + ".ipynb"
    nbformat.validate(notebook)
    with open(out, "w", encoding="utf-8") as f:
        nbformat.write(notebook, f)
    print(f"wrote {out} ({len(notebook.cells)} cells)")


if __name__ == "__main__":
    main(sys.argv)
