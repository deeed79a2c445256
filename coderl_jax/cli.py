"""Console scripts (setup.py ``entry_points``): the ``experiments/`` scripts, installed.

``coderl-run``, ``coderl-eval`` and ``coderl-prepare-data`` run ``experiments/run.py``,
``evaluate.py`` and ``prepare_data.py`` exactly as ``python experiments/<script>.py``
does: the script directory first on ``sys.path`` (the scripts import their sibling
``config_flags``), then the file as ``__main__``. So each script stays the one place that
defines its flags (STYLE.md, rule 2) and the two spellings cannot drift apart::

    coderl-run --flagfile=experiments/configs/tiny_cpu.flags --steps=5
    coderl-eval --checkpoint=runs/tiny_cpu --benchmarks=synthetic
    coderl-prepare-data --flagfile=experiments/configs/tiny_cpu.flags

``coderl-parity`` is ``coderl_jax.tools.check_parity`` (no script of its own).

setup.py installs ``experiments/*.py`` as the package ``coderl_jax._experiments``; an
editable install (``pip install -e .``) finds them in place, so both run the same files.
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys

SCRIPTS_PACKAGE = "coderl_jax._experiments"


def scripts_dir() -> str:
    """The directory of the installed ``experiments/`` scripts."""
    spec = importlib.util.find_spec(SCRIPTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"{SCRIPTS_PACKAGE} is not installed: install coderl_jax with pip "
            "(pip install -e . in a checkout) to get the console scripts"
        )
    return list(spec.submodule_search_locations)[0]


def _run_script(name: str) -> None:
    directory = scripts_dir()
    sys.path.insert(0, directory)
    runpy.run_path(os.path.join(directory, name), run_name="__main__")


def run() -> None:
    """``coderl-run``: ``experiments/run.py``."""
    _run_script("run.py")


def evaluate() -> None:
    """``coderl-eval``: ``experiments/evaluate.py``."""
    _run_script("evaluate.py")


def prepare_data() -> None:
    """``coderl-prepare-data``: ``experiments/prepare_data.py``."""
    _run_script("prepare_data.py")
