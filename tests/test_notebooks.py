"""experiments/notebooks: the .ipynb matches its ``# %%`` source, and it runs headless
(nbclient) against the checkpoints of a scaled-down tiny run made here."""

import importlib.util
import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from tests import scaled_down

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(REPO, "experiments", "notebooks")
NOTEBOOK = os.path.join(NOTEBOOKS, "inspect_learner_state")


def converter():
    spec = importlib.util.spec_from_file_location(
        "percent_to_ipynb", os.path.join(NOTEBOOKS, "percent_to_ipynb.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_converter_splits_code_and_markdown_cells():
    text = (
        "# header, ignored\n# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n\n# %%\ny = x\n"
    )
    assert converter().cells_from_percent(text) == [
        ("markdown", "# Title\n\ntext"),
        ("code", "x = 1"),
        ("code", "y = x"),
    ]


def test_notebook_is_in_sync_with_its_script():
    with open(NOTEBOOK + ".py", encoding="utf-8") as f:
        expected = converter().notebook_from_percent(f.read())
    committed = nbformat.read(NOTEBOOK + ".ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in expected.cells
    ], "regenerate: python experiments/notebooks/percent_to_ipynb.py " + NOTEBOOK + ".py"


@pytest.mark.slow
def test_notebook_runs_on_a_tiny_run(scaled_down_cache, tmp_path, monkeypatch):
    workdir = tmp_path / "run"
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    monkeypatch.setenv("PYTHONPATH", REPO)
    monkeypatch.setenv("CODERL_WORKDIR", str(workdir))
    run = subprocess.run(
        [sys.executable, os.path.join(REPO, "experiments", "run.py")]
        + scaled_down.run_flags(scaled_down_cache, str(workdir), steps=2),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    notebook = nbformat.read(NOTEBOOK + ".ipynb", as_version=4)
    NotebookClient(notebook, timeout=240, resources={"metadata": {"path": str(tmp_path)}}).execute()
    text, kinds = "", set()
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text += output.get("text", "")
            kinds.update(output.get("data", {}))
    assert f"{workdir}: step 2 of 2" in text
    assert "update = params(step 2) - params(step 1)" in text  # keep_checkpoints=2
    assert "layers/mlp/down_proj/kernel" in text and "Adam updates so far: 2" in text
    assert "===== code prompt 0 =====" in text and "===== align prompt" in text
    assert "tasks (capacity" in text
    assert {"text/html", "image/png"} <= kinds  # treescope, matplotlib
