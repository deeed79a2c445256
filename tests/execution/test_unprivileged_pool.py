"""Without root (a cluster user): rlimits, Landlock and seccomp still confine programs.

Runs a pool as uid 65534 from a world-readable copy of the package, with the layers the
tests turn off (``conftest.py``) off there too; skipped unless the test runs as root
(needed to switch uid), a system interpreter exists and seccomp is on. Without Landlock
(none in the kernel, or turned off) the rest is still checked; only the escape into a
world-writable directory, which Landlock alone stops, is not attempted.
"""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

import coderl_jax
from coderl_jax.execution import landlock

SCRIPT = """
import json
from coderl_jax.execution import Job, SandboxPool
with SandboxPool(num_workers=1, disabled_isolation={disabled!r}) as pool:
    escape = [Job({escape!r})] if pool.isolation["landlock"] else []
    jobs = escape + [Job("while True:\\n    pass", timeout_s=0.3), Job("import os\\nos.fork()")]
    results = pool.run_batch(jobs)
    print(json.dumps({{"isolation": pool.isolation, "statuses": [r.status for r in results],
                      "errors": [r.error for r in results]}}))
"""
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="needs a system interpreter")
@pytest.mark.needs_isolation("seccomp")
def test_pool_confines_programs_without_root(disabled_isolation):
    root = tempfile.mkdtemp(prefix="unprivileged_", dir="/tmp")
    try:
        package = os.path.dirname(coderl_jax.__file__)
        shutil.copytree(
            package, os.path.join(root, "coderl_jax"), ignore=shutil.ignore_patterns("__pycache__")
        )
        target = os.path.join(root, "outside.txt")
        with open(os.path.join(root, "run.py"), "w") as f:
            escape = f"open({target!r}, 'w').write('x')"
            f.write(SCRIPT.format(escape=escape, disabled=disabled_isolation))
        for directory, dirs, files in os.walk(root):
            for name in dirs:
                os.chmod(os.path.join(directory, name), 0o755)
            for name in files:
                os.chmod(os.path.join(directory, name), 0o644)
        os.chmod(root, 0o777)  # world-writable: only Landlock keeps the program out
        out = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PYTHON, "run.py"],
            cwd=root, env={"PYTHONPATH": root, "HOME": root},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert not os.path.exists(target)
    finally:
        shutil.rmtree(root)
    isolation = report["isolation"]
    landlock_expected = landlock.abi_version() >= 1 and "landlock" not in disabled_isolation
    assert isolation["uid"] is None and isolation["rlimits"] == "on"
    assert (isolation["landlock"] is not None) == landlock_expected
    assert isolation["seccomp"] == "on"
    # Inside a user namespace the worker cannot return to its PID namespace: slower path.
    assert isolation["pidns"] in (None, "on(supervisor fork per job)")
    statuses, errors = report["statuses"], report["errors"]
    if landlock_expected:
        assert statuses[0] == "runtime_error" and errors[0].startswith("PermissionError")
        statuses, errors = statuses[1:], errors[1:]
    assert statuses == ["timeout", "runtime_error"]
    assert errors[1].startswith("PermissionError")
