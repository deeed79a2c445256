"""A study's runs: arms x seeds from one shared warm start per seed, and their run.py flags.

`experiments/study.py` is the command line; this module holds the plan (and
`study_results.py` the table) so tests and notebooks can use them without flags.

Arms (``--arms``), each a run that starts from its seed's warm start (``init_from``):

| arm | phase after the warm start |
| --- | --- |
| ``sft_continue`` | supervised training continued for the RL phase's budget (no RL) |
| ``grpo`` | RL, α = 1: code generation only |
| ``coderl_plus`` | RL, α = ``coderl_plus_alpha`` (paper: 0.6) |
| ``alignment_only`` | RL, α = 0: alignment tasks only |
| ``alpha_<A>`` | RL at any other α (an α ablation) |

Per seed S the warm start ``warm_start_seed_S`` runs once (``--steps=0``: warm start, then
the evaluation) and every arm ``<arm>_seed_S`` continues its final policy. A seed varies
the tiny model's initial weights and tokenizer corpus (``--tiny_seed=S``, each seed's model
in its own ``<study_dir>/tiny_model_seed_S``; with ``--hf_dir`` every seed starts from the
same checkpoint), the data order (``--data_seed=S``) and sampling (``--seed=S``); the arms
of one seed share all three, so arms are compared seed by seed (paired).

The SFT-continue protocol (`sft_continue_settings`): the supervised phase
(`coderl_jax.train.warmstart`, run from the warm start's params with ``--steps=0``) makes
as many optimizer updates as the RL phase (RL steps x updates per batch) of as many rows
each (B x G / mini-batches, B prompts x G samples), with the RL phase's optimizer: a fresh
AdamW with its peak learning rate, warmup, schedule (constant or cosine with its decay and
floor), gradient accumulation, weight decay and clipping. Its rows are references of the
RL phase's training problems in the CodeRL+ arm's mix, in every batch: a fraction α of
code references and 1 - α traced reference alignment answers, in a batch order of their own
(``--warm_start_data_seed`` = 10000 + S, not the warm start's). Same updates, same
sequences; tokens differ with the lengths of references vs sampled completions: both
phases log their totals and the study's table reports them side by side.

A run is finished once ``loop.run`` has written its ``summary.md``; launching again skips
finished runs and reruns the others, which resume from their latest checkpoint. The study's
definition (base flagfile, overrides, arms, seeds) is saved as ``<study_dir>/study.json``,
so that ``--collect`` needs only the directory; launching again with other seeds or arms
adds them, with another base or overrides is refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Sequence

SFT_CONTINUE = "sft_continue"
WARM_START = "warm_start"
DEFAULT_ARMS = (SFT_CONTINUE, "grpo", "coderl_plus", "alignment_only")
FIXED_ALPHAS = {"grpo": 1.0, "alignment_only": 0.0}  # coderl_plus: its own setting
ALPHA_PREFIX = "alpha_"
SFT_DATA_SEED_OFFSET = 10_000  # sft_continue's batch order: a seed no warm start uses
FINISHED_MARKER = "summary.md"  # written by loop.run after the final evaluation
STUDY_FILE = "study.json"
# Set by the study for every run (later flags win, so an override could not change them).
RESERVED_FLAGS = (
    "--flagfile", "--workdir", "--seed", "--data_seed", "--tiny_seed", "--tiny_dir",
    "--init_from", "--alpha",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Arm:
    """A study arm: its name and the α of its RL phase (None: the SFT continuation)."""

    name: str
    alpha: float | None

    @property
    def is_rl(self) -> bool:
        return self.alpha is not None


def parse_arms(tokens: Sequence[str], coderl_plus_alpha: float = 0.6) -> list[Arm]:
    """Arms from their names: ``sft_continue``, ``grpo``, ``coderl_plus``,
    ``alignment_only`` or ``alpha_<A>``.

    Raises:
      ValueError: an unknown name, an α outside [0, 1], or two arms with the same α.
    """
    if not 0.0 < coderl_plus_alpha < 1.0:
        raise ValueError(f"--coderl_plus_alpha must lie in (0, 1), got {coderl_plus_alpha}")
    arms, by_alpha = [], {}
    for token in (t.strip() for t in tokens):
        if token == SFT_CONTINUE:
            alpha = None
        elif token == "coderl_plus":
            alpha = coderl_plus_alpha
        elif token in FIXED_ALPHAS:
            alpha = FIXED_ALPHAS[token]
        elif token.startswith(ALPHA_PREFIX):
            try:
                alpha = float(token.removeprefix(ALPHA_PREFIX))
            except ValueError:
                raise ValueError(f"--arms: {token!r}: alpha_<A> needs a number A") from None
            if not 0.0 <= alpha <= 1.0:
                raise ValueError(f"--arms: {token}: α outside [0, 1]")
        else:
            raise ValueError(
                f"--arms: unknown arm {token!r} (choose from {', '.join(DEFAULT_ARMS)}, "
                f"or alpha_<A>)"
            )
        if token in (a.name for a in arms):
            raise ValueError(f"--arms: {token} is listed twice")
        if alpha is not None and alpha in by_alpha:
            raise ValueError(f"--arms: {by_alpha[alpha]} and {token} are the same α ({alpha})")
        by_alpha[alpha] = token
        arms.append(Arm(token, alpha))
    if not arms:
        raise ValueError("--arms: no arm given")
    return arms


@dataclasses.dataclass(frozen=True)
class StudyRun:
    """One run: an arm at a seed, or (``arm`` None) the seed's shared warm start."""

    arm: Arm | None
    seed: int
    study_dir: str

    @property
    def name(self) -> str:
        return f"{self.arm.name if self.arm else WARM_START}_seed_{self.seed}"

    @property
    def workdir(self) -> str:
        return os.path.join(self.study_dir, self.name)

    @property
    def warm_start(self) -> StudyRun:
        return StudyRun(None, self.seed, self.study_dir)

    def is_finished(self) -> bool:
        return os.path.isfile(os.path.join(self.workdir, FINISHED_MARKER))


def plan(arms: Sequence[Arm], seeds: Sequence[int], study_dir: str) -> list[StudyRun]:
    """Seed by seed, its warm start and then its arms (launch order): a study stopped early
    (or still running) holds whole seeds, whose paired differences already count."""
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"--seeds: need distinct seeds, got {seeds}")
    if any(not 0 <= s < SFT_DATA_SEED_OFFSET for s in seeds):
        raise ValueError(f"--seeds: each must lie in [0, {SFT_DATA_SEED_OFFSET})")
    return [StudyRun(arm, s, study_dir) for s in seeds for arm in (None, *arms)]


def sft_continue_settings(rl_config, alpha: float) -> dict[str, object]:
    """run.py flag values (without ``--``) of the supervised phase that spends the RL phase's
    budget of ``rl_config`` (a resolved `coderl_jax.config.Config`) with the data mix of α
    (see the module docstring for the protocol)."""
    train, rollout = rl_config.train, rl_config.rollout
    if rl_config.run.steps < 1:
        raise ValueError("the RL phase has no steps (--steps=0): nothing for sft_continue to match")
    return {
        "warm_start_steps": rl_config.run.steps * train.updates_per_batch,
        "warm_start_batch_size": rollout.prompts_per_step
        * rollout.num_samples
        // train.num_mini_batches,
        "warm_start_num_micro_batches": train.num_micro_batches,
        "warm_start_learning_rate": train.learning_rate,
        "warm_start_lr_schedule": train.lr_schedule,
        "warm_start_warmup_steps": train.warmup_steps,
        "warm_start_decay_steps": train.decay_steps,
        "warm_start_final_lr_ratio": train.final_lr_ratio,
        "warm_start_alignment_fraction": round(1.0 - alpha, 10),
        "warm_start_mix_per_batch": "true",  # each batch mixed as an RL batch is
        "warm_start_num_problems": 0,  # the RL phase draws from every training problem
    }


def check_overrides(overrides: Sequence[str], what: str = "--overrides") -> None:
    for flag in overrides:
        if not flag.startswith("--"):
            raise ValueError(f"{what}: {flag!r} is not a --flag=value")
        if flag.split("=", 1)[0] in RESERVED_FLAGS:
            raise ValueError(f"{what} may not set {flag.split('=', 1)[0]}: the study sets it")


def run_flags(
    run: StudyRun,
    base_flagfile: str,
    overrides: Sequence[str] = (),
    sft_settings: dict[str, object] | None = None,
    sft_overrides: Sequence[str] = (),
    tiny_model: bool = True,
) -> list[str]:
    """`experiments/run.py` flags of one run: the flagfile, the overrides, then the study's
    own (later flags win): the seed's, the phase's, the workdir. ``sft_settings``
    (`sft_continue_settings`) is needed for sft_continue runs; ``tiny_model``: the base
    builds the tiny model (no ``--hf_dir``), so the seed sets its weights."""
    check_overrides(overrides)
    check_overrides(sft_overrides, "--sft_overrides")
    s = run.seed
    flags = [f"--flagfile={base_flagfile}", *overrides, f"--seed={s}", f"--data_seed={s}"]
    if tiny_model:
        tiny_dir = os.path.join(run.study_dir, f"tiny_model_seed_{s}")
        flags += [f"--tiny_seed={s}", f"--tiny_dir={tiny_dir}"]
    if run.arm is None:
        flags.append("--steps=0")
    elif run.arm.is_rl:
        flags += [
            f"--init_from={run.warm_start.workdir}",
            "--warm_start_steps=0",
            f"--alpha={run.arm.alpha}",
            "--noeval_at_start",  # the warm start evaluated these params with this seed
        ]
    else:
        if sft_settings is None:
            raise ValueError(f"{run.name}: sft_continue needs the SFT settings")
        flags += [f"--init_from={run.warm_start.workdir}", "--steps=0"]
        flags += [f"--{name}={value}" for name, value in sft_settings.items()]
        flags += [f"--warm_start_data_seed={SFT_DATA_SEED_OFFSET + s}", *sft_overrides]
    return [*flags, f"--workdir={run.workdir}"]


def run_locally(
    pending: Sequence[StudyRun],
    commands: dict[str, list[str]],
    parallel: int = 1,
    alone_first: bool = False,
) -> list[str]:
    """Runs each of ``pending`` as a subprocess (``commands[run.name]``, output appended to
    ``<workdir>/launch.log``), up to ``parallel`` at a time and an arm only once its seed's
    warm start is finished; with ``alone_first``, nothing else starts before the first run
    has ended (it builds the caches the others share). Returns the names of the runs that
    failed, or were skipped because their warm start failed."""
    from coderl_jax.metrics import format_duration

    waiting, running, failed, done = list(pending), {}, [], 0
    start = time.monotonic()
    try:
        while waiting or running:
            for run in list(waiting):
                if len(running) >= parallel or (alone_first and running and not done):
                    break
                if run.arm is not None and run.warm_start.name in failed:
                    waiting.remove(run)
                    failed.append(run.name)
                    print(f"{run.name}: skipped, its warm start failed", flush=True)
                elif run.arm is None or run.warm_start.is_finished():
                    waiting.remove(run)
                    resumed = os.path.exists(os.path.join(run.workdir, "checkpoints"))
                    os.makedirs(run.workdir, exist_ok=True)
                    log = open(os.path.join(run.workdir, "launch.log"), "a", encoding="utf-8")
                    process = subprocess.Popen(
                        commands[run.name], stdout=log, stderr=subprocess.STDOUT
                    )
                    running[run.name] = (run, process, log, time.monotonic())
                    how = "resuming" if resumed else "running"
                    print(f"{run.name}: {how} (log {log.name})", flush=True)
            time.sleep(0.2)
            for name, (run, process, log, began) in list(running.items()):
                if process.poll() is None:
                    continue
                log.close()
                del running[name]
                done += 1
                ok = process.returncode == 0 and run.is_finished()
                if not ok:
                    failed.append(name)
                elapsed = time.monotonic() - start
                eta = elapsed / done * (len(waiting) + len(running))  # at the rate so far
                status = "done" if ok else f"FAILED (exit {process.returncode}, see {log.name})"
                print(
                    f"[{done}/{len(pending)}] {name}: {status} in "
                    f"{format_duration(time.monotonic() - began)}; elapsed "
                    f"{format_duration(elapsed)}, ETA {format_duration(eta)}",
                    flush=True,
                )
    finally:
        for _, process, log, _ in running.values():  # interrupted: stop our own children
            process.terminate()
            process.wait()
            log.close()
    return failed


# --- The study's definition, kept in its directory -----------------------------------------


@dataclasses.dataclass(frozen=True)
class Study:
    """What ``--collect`` needs to tabulate a study, as saved in ``study.json``."""

    study_dir: str
    base_flagfile: str
    overrides: tuple[str, ...]
    sft_overrides: tuple[str, ...]
    coderl_plus_alpha: float
    arms: tuple[str, ...]  # arm names, as given to parse_arms
    seeds: tuple[int, ...]
    sft_settings: dict  # sft_continue_settings of the base, for the table's header

    def parsed_arms(self) -> list[Arm]:
        return parse_arms(self.arms, self.coderl_plus_alpha)

    def runs(self) -> list[StudyRun]:
        return plan(self.parsed_arms(), self.seeds, self.study_dir)

    def merged(self, other: Study) -> Study:
        """This study with ``other``'s arms and seeds added; refuses another base."""
        for field in ("base_flagfile", "overrides", "sft_overrides", "coderl_plus_alpha"):
            if getattr(self, field) != getattr(other, field):
                raise ValueError(
                    f"{self.study_dir} holds a study with {field} {getattr(other, field)!r}, "
                    f"not {getattr(self, field)!r}: use another --study_dir"
                )
        arms = tuple(dict.fromkeys([*other.arms, *self.arms]))
        seeds = tuple(sorted(set(other.seeds) | set(self.seeds)))
        return dataclasses.replace(self, arms=arms, seeds=seeds)

    def save(self) -> None:
        os.makedirs(self.study_dir, exist_ok=True)
        record = dataclasses.asdict(self)
        record.pop("study_dir")
        with open(os.path.join(self.study_dir, STUDY_FILE), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
            f.write("\n")

    @classmethod
    def load(cls, study_dir: str) -> Study | None:
        path = os.path.join(study_dir, STUDY_FILE)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        for key in ("overrides", "sft_overrides", "arms", "seeds"):
            record[key] = tuple(record[key])
        return cls(study_dir=study_dir, **record)


def resolve_config(flags: Sequence[str]):
    """The `coderl_jax.config.Config` that `experiments/run.py` builds from ``flags``
    (flagfiles included); raises ValueError naming a bad flag."""
    import config_flags  # experiments/config_flags.py (this directory is on sys.path)
    from absl import flags as absl_flags

    flag_values = absl_flags.FlagValues()
    config_flags.define_config_flags(flag_values)
    absl_flags.DEFINE_bool("distributed", False, "run.py's own flag", flag_values=flag_values)
    try:
        flag_values(["run.py", *flags])
        return config_flags.config_from_flags(flag_values)
    except (absl_flags.Error, config_flags.FlagValueError) as e:
        raise ValueError(str(e)) from None
