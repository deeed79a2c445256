"""experiments/run.py's flags, generated from the config dataclasses: every setting is
reachable from the command line, documented, and every flagfile still parses."""

from __future__ import annotations

import dataclasses
import glob
import os
import sys
import typing

import pytest
from absl import flags

from coderl_jax import config as config_lib
from coderl_jax.settings import fields_of, is_optional, literal_choices, without_none

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments"))
import config_flags  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments", "configs")


def parse(*argv: str) -> config_lib.Config:
    flag_values = flags.FlagValues()
    config_flags.define_config_flags(flag_values)
    flags.DEFINE_bool("distributed", False, "run.py's flag that is not a setting", flag_values)
    flag_values(["run.py", *argv])
    return config_flags.config_from_flags(flag_values)


def settings(config) -> dict[str, object]:
    return {s.path: s.default for s in fields_of(config)}


def candidates(hint, default) -> list:
    """Values other than ``default`` that a setting of type ``hint`` could take."""
    hint = without_none(hint)
    choices = literal_choices(hint)
    if choices:
        values = list(choices)
    elif hint is bool:
        values = [not default]
    elif hint is int:
        values = [(default or 0) + 1, 2 * (default or 1), 1, 4, 8, 64]
    elif hint is float:
        values = [0.5 * (default or 1.0), 0.25, 2.0 * (default or 1.0)]
    elif hint is str:
        values = ["somewhere/else", "validation", "prime_code"]
    elif typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if args[-1] is Ellipsis:
            values = (
                [("count_char", "clamp"), ("synthetic", "humaneval")]
                if args[0] is str
                else [(64, 128)]
            )
        else:
            values = [tuple(range(2, 2 + len(args))), (1,) * len(args), (1, 2, 3, 4)[: len(args)]]
    else:
        raise AssertionError(f"no candidate values for {hint}")
    return [v for v in values if v != default]


def test_every_setting_is_a_documented_flag_or_derived():
    names = config_lib.flag_names()
    for setting in fields_of(config_lib.Config):
        assert setting.help, f"{setting.path} has no comment to serve as help text"
        assert (setting.path in names) != (setting.path in config_lib.DERIVED), setting.path
    assert set(config_lib.DEFAULTS_FROM) <= set(names)  # settings of their own, defaulted


def test_defaults_give_the_default_config():
    assert parse() == config_lib.Config()


def test_every_setting_is_reachable_from_its_flag():
    """Setting each flag to another valid value changes that setting and nothing else
    (besides settings derived from it)."""
    names = config_lib.flag_names()
    base = settings(parse())
    unreachable = []
    for setting in fields_of(config_lib.Config):
        if setting.path not in names:
            continue
        for value in candidates(setting.type, setting.default):
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            try:
                config = parse(f"--{names[setting.path]}={text}")
            except (ValueError, flags.Error):
                continue  # not valid here (e.g. must divide another setting): try another
            got = settings(config)
            assert got[setting.path] == value, setting.path
            changed = {p for p in got if got[p] != base[p]} - {setting.path}
            assert changed <= set(config_lib.DERIVED) | set(config_lib.DEFAULTS_FROM), (
                setting.path,
                changed,
            )
            break
        else:
            unreachable.append(setting.path)
    assert not unreachable, f"no valid value reached {unreachable}"


def test_optional_settings_take_none():
    config = parse("--max_grad_norm=none", "--remat_policy=none", "--float_tolerance=1e-6")
    assert config.train.max_grad_norm is None
    assert config.train.remat_policy == "none"  # a choice named "none" stays a choice
    assert config.rollout.float_tolerance == 1e-6
    assert is_optional(typing.get_type_hints(config_lib.TrainConfig)["remat_policy"])


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(CONFIGS, "*.flags"))))
def test_flagfiles_parse(path):
    config = parse(f"--flagfile={path}")
    assert dataclasses.is_dataclass(config)


@pytest.mark.parametrize(
    "argv, message",
    [
        ("--alpha=1.5", "--alpha=1.5: mixture alpha must lie in [0, 1]"),
        ("--steps=-3", "--steps=-3: must be >= 0"),
        ("--overlap_chunks=3", "--overlap_chunks=3: must divide prompts_per_step (16)"),
        ("--warm_start_batch_size=0", "--warm_start_batch_size=0: must be >= 1"),
    ],
)
def test_a_bad_value_names_its_flag(argv, message):
    with pytest.raises(config_flags.FlagValueError) as e:
        parse(argv)
    assert str(e.value).startswith(message)
