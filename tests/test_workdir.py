"""The workdir: what it records (config.json, flags.txt), whether a restart may resume it
(a changed setting stops it with the changes listed, unless allowed), the default workdir
of a flagfile, and the experiments/ scripts' logging levels and provenance."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys

import pytest
import tensorflow_datasets as tfds
from absl import flags

from coderl_jax import config as config_lib
from coderl_jax import workdir as workdir_lib
from coderl_jax.data.builders import synthetic_config
from coderl_jax.data.sources import prepare
from coderl_jax.settings import ConfigError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments"))
import config_flags  # noqa: E402
import script_setup  # noqa: E402


def make_config(workdir, **run) -> config_lib.Config:
    return config_lib.Config(run=config_lib.RunConfig(workdir=str(workdir), **run))


def saved_run(workdir, config: config_lib.Config, step: int = 2):
    (workdir / "checkpoints" / str(step)).mkdir(parents=True)
    workdir_lib.record(config, ["--steps=100"], "python experiments/run.py --steps=100")


def test_record_writes_the_config_and_the_command_line(tmp_path):
    config = make_config(tmp_path, steps=7)
    workdir_lib.record(config, ["--a=1", "--steps=7"], "python experiments/run.py --steps=7")
    assert config_lib.Config.load(str(tmp_path / "config.json")) == config
    lines = (tmp_path / "flags.txt").read_text().splitlines()
    assert lines[1] == "# Started as: python experiments/run.py --steps=7"
    assert lines[-2:] == ["--a=1", "--steps=7"]
    assert sorted(os.listdir(tmp_path)) == ["config.json", "flags.txt"]  # no temporary files


def test_a_restart_with_other_settings_stops_with_them_listed(tmp_path):
    saved = make_config(tmp_path)
    saved_run(tmp_path, saved)
    changed = dataclasses.replace(saved, train=saved.train.replace(learning_rate=3e-4, kl_coef=0.0))
    with pytest.raises(workdir_lib.ConfigChangedError) as e:
        workdir_lib.check_resume(changed)
    assert e.value.changes == [
        ("train.learning_rate", 1e-6, 3e-4),
        ("train.kl_coef", 0.001, 0.0),
    ]
    line = str(config_flags.flag_error(e.value))
    assert line == (
        f"--workdir={tmp_path} holds a run saved with other flags: --learning_rate 1e-06 -> "
        "0.0003, --kl_coef 0.001 -> 0.0. Pass --allow_config_change to resume it with the "
        "new values, or give another --workdir."
    )
    # A longer run, other cadences, another data location: the same run.
    longer = make_config(tmp_path, steps=300, checkpoint_every=5, log_every=10)
    workdir_lib.check_resume(dataclasses.replace(longer, data=saved.data))
    # Allowed: resumes, and the earlier config is kept beside the new one.
    allowed = dataclasses.replace(
        changed, run=dataclasses.replace(changed.run, allow_config_change=True)
    )
    workdir_lib.check_resume(allowed)
    workdir_lib.record(allowed, ["--learning_rate=3e-4"])
    assert config_lib.Config.load(str(tmp_path / "config.before_step_2.json")) == saved
    assert (tmp_path / "flags.before_step_2.txt").read_text().endswith("--steps=100\n")
    assert config_lib.Config.load(str(tmp_path / "config.json")) == allowed


def test_no_checkpoint_means_nothing_to_resume_and_an_unreadable_config_stops(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    workdir_lib.check_resume(make_config(tmp_path, steps=1))  # no checkpoint: a fresh run
    (tmp_path / "checkpoints" / "3").mkdir(parents=True)
    (tmp_path / "checkpoints" / "4.orbax-checkpoint-tmp").mkdir()
    assert workdir_lib.checkpoint_steps(str(tmp_path)) == [3]
    with pytest.raises(ConfigError, match="config.json cannot be read"):
        workdir_lib.check_resume(make_config(tmp_path))
    workdir_lib.check_resume(make_config(tmp_path, allow_config_change=True))


def test_a_flagfile_run_gets_its_own_default_workdir(tmp_path):
    flagfile = tmp_path / "my_sweep.flags"
    flagfile.write_text("--steps=3\n")
    assert config_flags.default_workdir(["run.py", f"--flagfile={flagfile}"]) == "runs/my_sweep"
    assert config_flags.default_workdir(["run.py", "--steps=3"]) is None
    flag_values = flags.FlagValues()
    config_flags.define_config_flags(flag_values)
    flag_values(["run.py", f"--flagfile={flagfile}"])
    config = config_flags.config_from_flags(flag_values, workdir="runs/my_sweep")
    assert (config.run.workdir, config.run.steps) == ("runs/my_sweep", 3)
    assert config_flags.expanded_flags(
        ["run.py", f"--flagfile={flagfile}", "--seed=1"], flag_values
    ) == [
        "--steps=3",
        "--seed=1",
    ]
    flag_values(["run.py", f"--flagfile={flagfile}", "--workdir=elsewhere"])
    assert config_flags.config_from_flags(flag_values, workdir="runs/x").run.workdir == "elsewhere"
    assert config_lib.Config().run.workdir == "runs/default"  # a bare run.py


@pytest.fixture()
def clean_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("coderl_jax").level
    yield
    root.handlers[:], level, ours = saved
    root.setLevel(level)
    logging.getLogger("coderl_jax").setLevel(ours)
    tfds.display_progress_bar(True)  # TFDS's own default


def test_library_info_is_off_by_default_and_verbosity_turns_it_on(clean_logging):
    script_setup.setup_logging(-1)  # the default (--verbosity not given)
    assert len(logging.getLogger().handlers) == 1
    for library in ("orbax", "absl", "jax", "tensorboardX.summary"):
        assert not logging.getLogger(library).isEnabledFor(logging.INFO), library
        assert logging.getLogger(library).isEnabledFor(logging.WARNING), library
    assert logging.getLogger("coderl_jax.loop").isEnabledFor(logging.INFO)
    script_setup.setup_logging(0)
    assert logging.getLogger("orbax").isEnabledFor(logging.INFO)
    assert not logging.getLogger("orbax").isEnabledFor(logging.DEBUG)
    script_setup.setup_logging(1)
    assert logging.getLogger("coderl_jax.loop").isEnabledFor(logging.DEBUG)


def test_dataset_build_shows_progress_bars_only_when_verbose(clean_logging, tmp_path, capfd):
    def build(verbosity: int, name: str) -> str:
        script_setup.setup_logging(verbosity)
        capfd.readouterr()
        prepare("coderl_synthetic", tmp_path / name, config=synthetic_config(8, 2, 3, 1, seed=4))
        return capfd.readouterr().err

    verbose = build(0, "verbose")
    assert "Generating train examples" in verbose  # TFDS's bars, where they show
    quiet = build(-1, "quiet")
    assert "Generating" not in quiet and "examples/s" not in quiet


def test_provenance_names_the_commit_and_the_versions():
    record = script_setup.provenance()
    assert record["git"] is None or len(record["git"]["commit"]) == 40
    assert record["packages"]["jax"] and record["packages"]["orbax-checkpoint"]
    assert json.loads(json.dumps(record)) == record
