"""HF checkpoints: export that transformers loads, lossless round trips, clear errors."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from coderl_jax.models import hf_io, transformer
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.safetensors_io import SafetensorsError, SafetensorsFile
from coderl_jax.parallel import mesh
from tests.models import hf_fixtures


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen")
    hf_fixtures.save_hf_model("qwen2_untied", path)
    return str(path)


def _assert_trees_equal(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


@pytest.mark.parametrize("kind", ["qwen2_tied", "llama"])
def test_export_loads_in_transformers_with_identical_logits(kind, tmp_path):
    config = ModelConfig(
        model_type="llama" if kind == "llama" else "qwen2",
        attention_bias=kind != "llama",
        tie_word_embeddings=kind != "llama",
        vocab_size=hf_fixtures.VOCAB,
        num_layers=2,
        eos_token_id=1,
    )
    params = transformer.init_params(config, jax.random.key(0))
    params = jax.tree.map(lambda x: x * 3.0, params)  # larger weights: stronger test
    hf_io.save_pretrained(str(tmp_path), config, params)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path), dtype=torch.float32)
    tokens, mask = hf_fixtures.left_padded_batch()
    theirs = hf_fixtures.torch_logits(model, tokens, mask)
    ours = np.asarray(transformer.forward(params, config, jnp.asarray(tokens), jnp.asarray(mask)))
    real = mask.astype(bool)
    assert np.abs(theirs[real]).max() > 1.0
    assert np.abs(ours - theirs)[real].max() <= 1e-4


def test_import_export_import_is_lossless_and_sharded_export_works(qwen_dir, tmp_path):
    config, params = hf_io.load_pretrained(qwen_dir)
    hf_io.save_pretrained(str(tmp_path), config, params, max_shard_bytes=100_000)
    with open(tmp_path / hf_io.INDEX_FILE) as f:
        index = json.load(f)
    shard_files = set(index["weight_map"].values())
    assert len(shard_files) > 1 and not (tmp_path / hf_io.SINGLE_FILE).exists()
    again_config, again = hf_io.load_pretrained(str(tmp_path))
    assert again_config == config
    _assert_trees_equal(params, again)
    # The original HF tensors survive bit for bit.
    original = SafetensorsFile(os.path.join(qwen_dir, hf_io.SINGLE_FILE))
    name = "model.layers.1.self_attn.q_proj.weight"
    exported = SafetensorsFile(str(tmp_path / index["weight_map"][name]))
    np.testing.assert_array_equal(original.read(name), exported.read(name))
    # transformers loads the sharded directory too.
    transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path))


def test_bf16_load_and_export(qwen_dir, tmp_path):
    config, params = hf_io.load_pretrained(qwen_dir, param_dtype="bfloat16")
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(params))
    hf_io.save_pretrained(str(tmp_path), config, params)
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["torch_dtype"] == "bfloat16"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path))
    assert model.model.embed_tokens.weight.dtype == torch.bfloat16
    _, again = hf_io.load_pretrained(str(tmp_path), param_dtype="bfloat16")
    _assert_trees_equal(params, again)


def test_load_places_params_on_given_shardings(qwen_dir):
    devices = jax.devices()
    assert len(devices) == 8, "tests/conftest.py sets 8 fake CPU devices"
    config = ModelConfig.from_hf(hf_io.read_hf_config(qwen_dir))
    device_mesh = mesh.make_mesh(data=2, fsdp=2, tensor=2)
    shardings = mesh.param_shardings(config, device_mesh)
    _, params = hf_io.load_pretrained(qwen_dir, shardings=shardings)
    q = params["layers"]["attn"]["q_proj"]["kernel"]  # [L, D, H, Dh] = layers, embed, heads
    assert q.sharding.spec == jax.sharding.PartitionSpec(None, "fsdp", "tensor", None)
    assert q.addressable_shards[0].data.shape == (2, 32, 2, 16)
    _, single = hf_io.load_pretrained(qwen_dir)
    _assert_trees_equal(params, single)


def _copy_checkpoint(src, dst):
    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(src):
        with open(os.path.join(src, name), "rb") as f, open(os.path.join(dst, name), "wb") as g:
            g.write(f.read())
    return dst


def _edit_config(path, **changes):
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    cfg.update(changes)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f)


def test_missing_files_are_named(tmp_path, qwen_dir):
    with pytest.raises(FileNotFoundError, match="config.json"):
        hf_io.load_pretrained(str(tmp_path))
    bare = _copy_checkpoint(qwen_dir, str(tmp_path / "bare"))
    os.remove(os.path.join(bare, hf_io.SINGLE_FILE))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        hf_io.load_pretrained(bare)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_type": "gpt2"}, "model_type 'gpt2' is not supported"),
        ({"use_sliding_window": True}, "sliding-window"),
        ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0}}, "'yarn' is not supported"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "disagree"),
        ({"hidden_act": "gelu"}, "only silu"),
    ],
)
def test_unsupported_configs_raise(tmp_path, qwen_dir, changes, message):
    path = _copy_checkpoint(qwen_dir, str(tmp_path / "ckpt"))
    _edit_config(path, **changes)
    with pytest.raises(ValueError, match=message):
        hf_io.load_pretrained(path)


def test_shape_mismatch_names_tensor_and_shapes(tmp_path, qwen_dir):
    path = _copy_checkpoint(qwen_dir, str(tmp_path / "ckpt"))
    _edit_config(path, intermediate_size=96)
    with pytest.raises(
        ValueError, match=r"mlp.gate_proj.weight' has shape \(128, 64\), expected \(96, 64\)"
    ):
        hf_io.load_pretrained(path)


def test_truncated_safetensors_names_file_and_tensor(tmp_path, qwen_dir):
    path = _copy_checkpoint(qwen_dir, str(tmp_path / "ckpt"))
    weights = os.path.join(path, hf_io.SINGLE_FILE)
    size = os.path.getsize(weights)
    with open(weights, "r+b") as f:
        f.truncate(size - 1000)
    with pytest.raises(SafetensorsError, match="is truncated: tensor"):
        hf_io.load_pretrained(path)
    with open(weights, "r+b") as f:
        f.truncate(4)
    with pytest.raises(SafetensorsError, match="no header"):
        hf_io.load_pretrained(path)


def test_missing_tensor_is_reported(tmp_path):
    config = ModelConfig(vocab_size=50, num_layers=2)
    params = transformer.init_params(config, jax.random.key(0))
    hf_io.save_pretrained(str(tmp_path), config, params)
    _edit_config(str(tmp_path), num_hidden_layers=3)
    with pytest.raises(ValueError, match=r"lacks .* tensors, e.g. \['model.layers.2"):
        hf_io.load_pretrained(str(tmp_path))


def test_rope_settings_read_in_both_spellings():
    base = {
        "model_type": "llama",
        "vocab_size": 10,
        "hidden_size": 8,
        "intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
    }
    scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    old = ModelConfig.from_hf({**base, "rope_theta": 500000.0, "rope_scaling": scaling})
    new = ModelConfig.from_hf({**base, "rope_parameters": {"rope_theta": 500000.0, **scaling}})
    assert old == new
    assert old.rope_theta == 500000.0 and old.rope_scaling["factor"] == 8.0
    assert ModelConfig.from_hf(base).rope_scaling is None


def test_an_export_samples_as_its_source_did(qwen_dir, tmp_path):
    """The source's generation_config.json (eos list, sampling defaults) goes into the
    export unchanged; transformers reads the same eos ids and temperature back."""
    source = {"eos_token_id": [1, 3], "pad_token_id": 0, "do_sample": True,
              "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05}  # fmt: skip
    source_dir = tmp_path / "source"
    source_dir.mkdir()
    (source_dir / "generation_config.json").write_text(json.dumps(source))
    config, params = hf_io.load_pretrained(qwen_dir)
    generation = hf_io.generation_config_for(str(source_dir), config, stop_ids=[1])
    assert generation == source
    hf_io.save_pretrained(str(tmp_path / "out"), config, params, generation_config=generation)
    assert json.loads((tmp_path / "out" / "generation_config.json").read_text()) == source
    loaded = transformers.GenerationConfig.from_pretrained(str(tmp_path / "out"))
    assert (loaded.eos_token_id, loaded.temperature, loaded.top_k) == ([1, 3], 0.7, 20)


def test_without_a_source_generation_config_the_export_writes_a_full_one(qwen_dir, tmp_path):
    from coderl_jax.models.sampler import SamplingConfig

    config, _ = hf_io.load_pretrained(qwen_dir)
    sampling = SamplingConfig(temperature=0.7, top_p=0.9)
    built = hf_io.generation_config_for(str(tmp_path), config, [1, 4], 0, sampling)
    expected = {"eos_token_id": [1, 4], "pad_token_id": 0, "do_sample": True,
                "temperature": 0.7, "top_p": 0.9, "top_k": 0}  # fmt: skip
    if config.bos_token_id is not None:
        expected["bos_token_id"] = config.bos_token_id
    assert built == expected
    greedy = hf_io.generation_config_for(None, config, [1], None, SamplingConfig(greedy=True))
    assert greedy["do_sample"] is False and "temperature" not in greedy
