"""Shared sandbox pools for the execution tests, and the isolation layers each test needs.

Layers off: ``CODERL_TEST_DISABLE_ISOLATION=landlock`` (comma-separated names from
``execution.LAYERS``) starts every pool of these tests without those layers, to show what
holds without them, e.g. on a kernel without Landlock::

    CODERL_TEST_DISABLE_ISOLATION=landlock pytest tests/execution -rs

``@pytest.mark.needs_isolation("seccomp", "uid|pidns")``: the test's expectation relies on
each argument's layer (``a|b``: on either of them); it is skipped, naming what is missing,
where the session pool runs without it. A test without the marker relies on no layer that
can be missing (the supervisor's time and output limits are not layers).
"""

import os

import pytest

from coderl_jax.execution import LAYERS, Limits, SandboxPool

DISABLED_ISOLATION = tuple(
    layer for layer in os.environ.get("CODERL_TEST_DISABLE_ISOLATION", "").split(",") if layer
)
for _layer in DISABLED_ISOLATION:
    if _layer not in LAYERS:
        raise ValueError(
            f"CODERL_TEST_DISABLE_ISOLATION: unknown layer {_layer!r}; one of {LAYERS}"
        )


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "needs_isolation(*layers): skip unless each layer ('a|b': either) is on in the pool",
    )


def missing_layers(isolation: dict[str, str | None], needs: tuple[str, ...]) -> list[str]:
    """The entries of ``needs`` (``"a|b"``: either) that ``isolation`` has none of."""
    return [need for need in needs if not any(isolation[layer] for layer in need.split("|"))]


@pytest.fixture(autouse=True)
def _skip_without_needed_isolation(request):
    marker = request.node.get_closest_marker("needs_isolation")
    if marker is None:
        return
    isolation = request.getfixturevalue("pool").isolation
    missing = missing_layers(isolation, marker.args)
    if missing:
        summary = " ".join(f"{k}={v or 'off'}" for k, v in isolation.items())
        needed = " and ".join(need.replace("|", " or ") for need in missing)
        pytest.skip(f"needs isolation {needed} (pool: {summary})")


@pytest.fixture(scope="session")
def disabled_isolation() -> tuple[str, ...]:
    """The layers ``CODERL_TEST_DISABLE_ISOLATION`` turns off (pools started by tests add them)."""
    return DISABLED_ISOLATION


@pytest.fixture(scope="session")
def missing_isolation(pool):
    """``needs -> missing entries`` against the session pool (see ``missing_layers``)."""
    return lambda *needs: missing_layers(pool.isolation, needs)


def sandbox_uid_processes(uid_low: int, uid_high: int) -> list[int]:
    """Pids of live processes whose real uid is in [uid_low, uid_high)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if uid_low <= int(line.split()[1]) < uid_high:
                            pids.append(int(entry))
                        break
        except OSError:
            continue
    return pids


@pytest.fixture
def uid_processes():
    return sandbox_uid_processes


@pytest.fixture(scope="session")
def pool():
    limits = Limits(memory_bytes=512 << 20)
    with SandboxPool(num_workers=2, limits=limits, disabled_isolation=DISABLED_ISOLATION) as p:
        yield p
