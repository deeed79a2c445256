"""Without root (a cluster user): rlimits, Landlock and seccomp still confine programs.

Runs a pool as uid 65534 from a world-readable copy of the package; skipped unless the
test runs as root (needed to switch uid) and a system interpreter exists.
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
with SandboxPool(num_workers=1) as pool:
    jobs = [Job({escape!r}), Job("while True:\\n    pass", timeout_s=0.3), Job("import os\\nos.fork()")]
    results = pool.run_batch(jobs)
    print(json.dumps({{"isolation": pool.isolation, "statuses": [r.status for r in results],
                      "errors": [r.error for r in results]}}))
"""
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="needs a system interpreter")
@pytest.mark.skipif(landlock.abi_version() < 1, reason="the kernel has no Landlock")
def test_pool_confines_programs_without_root():
    root = tempfile.mkdtemp(prefix="unprivileged_", dir="/tmp")
    try:
        package = os.path.dirname(coderl_jax.__file__)
        shutil.copytree(
            package, os.path.join(root, "coderl_jax"), ignore=shutil.ignore_patterns("__pycache__")
        )
        target = os.path.join(root, "outside.txt")
        with open(os.path.join(root, "run.py"), "w") as f:
            f.write(SCRIPT.format(escape=f"open({target!r}, 'w').write('x')"))
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
    assert isolation["uid"] is None and isolation["rlimits"] == "on"
    assert isolation["landlock"] is not None and isolation["seccomp"] == "on"
    # Inside a user namespace the worker cannot return to its PID namespace: slower path.
    assert isolation["pidns"] in (None, "on(supervisor fork per job)")
    assert report["statuses"] == ["runtime_error", "timeout", "runtime_error"]
    assert report["errors"][0].startswith("PermissionError")
    assert report["errors"][2].startswith("PermissionError")
