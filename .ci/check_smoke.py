"""Checks the main-job smoke run of `.ci/run`: `python .ci/check_smoke.py WORKDIR`.

The run must have trained one RL step on both prompt kinds, evaluated before and after it,
checkpointed and written its report; each missing piece is named on one line.
"""

import json
import os
import sys


def main(workdir: str) -> int:
    metrics: dict[int, dict] = {}
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            metrics.setdefault(record.pop("step"), {}).update(record)
    required = {  # step 0: the warm start, the first evaluation and RL step 0; step 1: the last
        0: [
            "warm_start/nll",
            "eval/synthetic/pass@1",
            "eval/synthetic/sampled/pass@1",
            "rollout/code/reward_mean",
            "train/loss",
            "time/step",
        ],
        1: ["eval/synthetic/pass@1", "eval/synthetic/sampled/pass@1"],
    }
    problems = [
        f"step {step}: no {key!r} in metrics.jsonl"
        for step, keys in required.items()
        for key in keys
        if key not in metrics.get(step, {})
    ]
    for name in ("summary.md", "config.json", "checkpoints"):
        if not os.path.exists(os.path.join(workdir, name)):
            problems.append(f"{name} missing from the workdir")
    for problem in problems:
        print(f"smoke run {workdir}: {problem}", file=sys.stderr)
    if not problems:
        print(f"smoke run OK: {len(metrics)} steps with metrics in {workdir}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
