"""The embedded tiny model directory, the tokenizer helpers and the parity CLI."""

import filecmp
import json
import os

import jax
import pytest

from coderl_jax.data import synthetic
from coderl_jax.models import hf_io, tiny
from coderl_jax.models import tokenizer as tokenizer_lib
from coderl_jax.tools import check_parity

SMALL = tiny.TinyModelSpec(
    vocab_size=600,
    hidden_size=64,
    intermediate_size=96,
    num_layers=2,
    num_heads=2,
    num_kv_heads=1,
    num_corpus_problems=200,
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return tiny.build_tiny_model(str(tmp_path_factory.mktemp("tiny") / "model"), SMALL)


def test_build_is_deterministic(tiny_dir, tmp_path):
    again = tiny.build_tiny_model(str(tmp_path / "again"), SMALL)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert filecmp.cmp(
            os.path.join(tiny_dir, name), os.path.join(again, name), shallow=False
        ), name


def test_cached_directory_is_reused_and_rebuilt_on_spec_change(tiny_dir, tmp_path):
    before = os.path.getmtime(os.path.join(tiny_dir, "model.safetensors"))
    tiny.build_tiny_model(tiny_dir, SMALL)
    assert os.path.getmtime(os.path.join(tiny_dir, "model.safetensors")) == before
    other = tiny.build_tiny_model(str(tmp_path / "other"), SMALL)
    tiny.build_tiny_model(other, tiny.TinyModelSpec(**{**SMALL.__dict__, "seed": 1}))
    with open(os.path.join(other, tiny.SPEC_FILE)) as f:
        assert json.load(f)["seed"] == 1


def test_cache_is_rebuilt_for_another_synthetic_version(tiny_dir, tmp_path, monkeypatch):
    # The tokenizer's corpus is synthetic data: a new generator version must not reuse it.
    other = tiny.build_tiny_model(str(tmp_path / "other"), SMALL)
    with open(os.path.join(other, tiny.SPEC_FILE)) as f:
        assert json.load(f)["synthetic_version"] == synthetic.VERSION
    before = os.path.getmtime(os.path.join(other, "model.safetensors"))
    monkeypatch.setattr(synthetic, "VERSION", "0.0.1")
    tiny.build_tiny_model(other, SMALL)
    with open(os.path.join(other, tiny.SPEC_FILE)) as f:
        assert json.load(f)["synthetic_version"] == "0.0.1"
    assert os.path.getmtime(os.path.join(other, "model.safetensors")) != before


def test_tiny_model_loads_through_the_checkpoint_path(tiny_dir):
    config, params = hf_io.load_pretrained(tiny_dir)
    assert config.model_type == "qwen2" and config.tie_word_embeddings
    assert config.num_layers == 2 and config.vocab_size == 600
    assert config.num_params == sum(x.size for x in jax.tree.leaves(params))


def test_tokenizer_chat_template_and_special_ids(tiny_dir):
    tok = tokenizer_lib.load_tokenizer(tiny_dir)
    text = tokenizer_lib.apply_chat_template(tok, [{"role": "user", "content": "print 42"}])
    assert text == "<|im_start|>user\nprint 42<|im_end|>\n<|im_start|>assistant\n"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    # Digits are single tokens.
    assert [tok.decode([i]) for i in tok("12345", add_special_tokens=False)["input_ids"]] == list(
        "12345"
    )
    special = tokenizer_lib.special_tokens(tok, tiny_dir)
    assert special.stop_ids == (tok.convert_tokens_to_ids("<|im_end|>"),)
    assert special.pad_id == tok.convert_tokens_to_ids("<|endoftext|>")


def test_special_tokens_fall_back_and_fail_clearly(tiny_dir):
    tok = tokenizer_lib.load_tokenizer(tiny_dir)
    tok.pad_token = None
    assert tokenizer_lib.special_tokens(tok).pad_id == tok.convert_tokens_to_ids("<|im_end|>")

    class NoEos:
        eos_token_id = None
        pad_token_id = None

        def get_vocab(self):
            return {"a": 0}

    with pytest.raises(ValueError, match="no end-of-sequence token"):
        tokenizer_lib.special_tokens(NoEos())


def test_missing_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer files"):
        tokenizer_lib.load_tokenizer(str(tmp_path))


def test_check_parity_cli_passes_on_tiny_model(tiny_dir, capsys):
    assert check_parity.main(["--hf_dir", tiny_dir]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("max_abs_logit_diff=")
    assert float(last.split("=")[1]) <= 1e-4
    assert check_parity.main(["--hf_dir", tiny_dir, "--tolerance", "0"]) == 1
