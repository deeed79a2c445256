"""The package's small public API: every name resolves, and `import coderl_jax` is light."""

import subprocess
import sys

import coderl_jax


def test_every_public_name_resolves_to_a_callable():
    for name in coderl_jax.__all__:
        assert callable(getattr(coderl_jax, name)), name
    assert coderl_jax.run.__module__ == "coderl_jax.loop"
    assert coderl_jax.Config.__module__ == "coderl_jax.config"


def test_import_does_not_load_jax():
    code = (
        "import sys, coderl_jax; print('jax' in sys.modules, 'tensorflow_datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_run_program_through_the_public_name():
    result = coderl_jax.run_program("print(input()[::-1])", stdin=b"abc")
    assert result.status == "ok" and result.stdout == "cba\n"
