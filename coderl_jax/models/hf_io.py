"""Hugging Face checkpoints in and out: ``config.json`` + (sharded) safetensors <-> params.

`load_pretrained` streams one HF tensor at a time: each of our (layer-stacked) parameters
is assembled in one host buffer, placed on its sharding with
``jax.make_array_from_callback`` (each device gets only its shard) and the buffer is freed,
so host memory stays near one copy of the weights plus one parameter.

`save_pretrained` writes the directory transformers and vLLM load: ``config.json``,
``generation_config.json``, ``model.safetensors`` (or ``model-0000i-of-0000n.safetensors``
shards with ``model.safetensors.index.json``) and, when given, the tokenizer's files.
An exported policy should sample as its source model did: `generation_config_for` gives
the source directory's ``generation_config.json`` as it is (eos list, sampling defaults),
or, for a source without one, a full one built from the run (every stop id as eos, the
pad id, and the run's sampling settings as the defaults).

Directories may be local or on an object store (``gs://...``: `coderl_jax.storage`), except
that transformers reads a tokenizer from a local directory only: `save_pretrained` writes
the tokenizer's files to a temporary local directory and copies them to an object store.

Name mapping (HF -> ours, ``i`` = layer, stacked on a leading ``layers`` axis):
``model.embed_tokens.weight [V,D]`` -> ``embedding``; ``self_attn.{q,k,v}_proj.weight
[H*Dh, D]`` -> ``attn.*.kernel [D, H, Dh]`` (+ biases ``[H*Dh]`` -> ``[H, Dh]``);
``self_attn.o_proj.weight [D, H*Dh]`` -> ``attn.o_proj.kernel [H, Dh, D]``;
``mlp.{gate,up,down}_proj.weight`` -> transposed; norms as they are; ``lm_head.weight [V, D]``
-> ``lm_head [D, V]`` (absent when embeddings are tied).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

from coderl_jax import storage
from coderl_jax.models import transformer
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.safetensors_io import SafetensorsFile, write_safetensors

log = logging.getLogger(__name__)

# Chooses the sharding of one parameter from its key path and shape.
ShardingFn = Callable[[tuple[str, ...], tuple[int, ...]], jax.sharding.Sharding]

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# Tensors some exporters add that carry no weights.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


@dataclasses.dataclass(frozen=True)
class _Mapping:
    """One of our parameters and the HF tensor(s) it comes from."""

    path: tuple[str, ...]  # key path in our params
    hf_name: str  # HF name; "{i}" stands for the layer index of stacked parameters
    kind: str  # "copy", "linear" (HF [out, in] <-> ours in_shape + out_shape), "bias"
    num_in: int = 1  # linear: leading dims of our shape that are the input

    @property
    def stacked(self) -> bool:
        return "{i}" in self.hf_name


def _mappings(config: ModelConfig) -> list[_Mapping]:
    layer = "model.layers.{i}."
    m = [
        _Mapping(("embedding",), "model.embed_tokens.weight", "copy"),
        _Mapping(("final_norm", "scale"), "model.norm.weight", "copy"),
        _Mapping(("layers", "input_norm", "scale"), layer + "input_layernorm.weight", "copy"),
        _Mapping(
            ("layers", "post_attn_norm", "scale"), layer + "post_attention_layernorm.weight", "copy"
        ),
        _Mapping(
            ("layers", "attn", "o_proj", "kernel"), layer + "self_attn.o_proj.weight", "linear", 2
        ),
    ]
    for proj in ("q_proj", "k_proj", "v_proj"):
        m.append(
            _Mapping(
                ("layers", "attn", proj, "kernel"), layer + f"self_attn.{proj}.weight", "linear"
            )
        )
        if config.attention_bias:
            m.append(
                _Mapping(("layers", "attn", proj, "bias"), layer + f"self_attn.{proj}.bias", "bias")
            )
    for proj in ("gate_proj", "up_proj", "down_proj"):
        m.append(
            _Mapping(("layers", "mlp", proj, "kernel"), layer + f"mlp.{proj}.weight", "linear")
        )
    if not config.tie_word_embeddings:
        m.append(_Mapping(("lm_head",), "lm_head.weight", "linear"))
    return m


def _hf_shape(mapping: _Mapping, our_shape: tuple[int, ...]) -> tuple[int, ...]:
    if mapping.kind == "copy":
        return our_shape
    if mapping.kind == "bias":
        return (math.prod(our_shape),)
    return (math.prod(our_shape[mapping.num_in :]), math.prod(our_shape[: mapping.num_in]))


def _to_ours(mapping: _Mapping, hf: np.ndarray, our_shape: tuple[int, ...]) -> np.ndarray:
    if mapping.kind == "linear":
        return hf.T.reshape(our_shape)
    return hf.reshape(our_shape)


def _to_hf(mapping: _Mapping, ours: np.ndarray) -> np.ndarray:
    if mapping.kind == "linear":
        return ours.reshape(math.prod(ours.shape[: mapping.num_in]), -1).T
    if mapping.kind == "bias":
        return ours.reshape(-1)
    return ours


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict, path, value):
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _read_json(path) -> dict:
    try:
        return json.loads(storage.read_text(path))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e


def read_hf_config(hf_dir: str | os.PathLike) -> dict:
    path = storage.as_path(hf_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {hf_dir} is not a Hugging Face model directory")
    return _read_json(path)


def _open_checkpoint(hf_dir: str | os.PathLike) -> dict[str, SafetensorsFile]:
    """Maps each tensor name to the file holding it."""
    index_path = storage.as_path(hf_dir) / INDEX_FILE
    single_path = storage.as_path(hf_dir) / SINGLE_FILE
    if index_path.is_file():
        try:
            weight_map = json.loads(storage.read_text(index_path))["weight_map"]
        except (json.JSONDecodeError, KeyError) as e:
            raise ValueError(f"{index_path}: expected JSON with a 'weight_map' ({e})") from e
        files = {
            name: SafetensorsFile(storage.as_path(hf_dir) / name)
            for name in sorted(set(weight_map.values()))
        }
        located = {}
        for tensor, file in weight_map.items():
            if tensor not in files[file].entries:
                raise ValueError(
                    f"{index_path} places {tensor!r} in {file}, which does not contain it"
                )
            located[tensor] = files[file]
        return located
    if single_path.is_file():
        f = SafetensorsFile(single_path)
        return {name: f for name in f.keys()}
    present = sorted(path.name for path in storage.as_path(hf_dir).iterdir())
    hint = (
        " (PyTorch .bin checkpoints must be converted to safetensors first)"
        if any(p.endswith(".bin") for p in present)
        else ""
    )
    raise FileNotFoundError(
        f"{hf_dir} has neither {SINGLE_FILE} nor {INDEX_FILE}{hint}; found: {present[:20]}"
    )


def load_pretrained(
    hf_dir: str | os.PathLike,
    shardings: ShardingFn | dict | None = None,
    **config_overrides,
) -> tuple[ModelConfig, dict]:
    """Loads a HF Qwen2/Llama checkpoint directory.

    Args:
      hf_dir: directory with ``config.json`` and safetensors weights.
      shardings: None (first device), a pytree of `jax.sharding.Sharding` shaped like the
        params, or a callable ``(path tuple, shape) -> Sharding``.
      **config_overrides: `ModelConfig` fields to override (e.g. param_dtype="bfloat16").

    Returns:
      (config, params) with params cast to ``config.param_dtype``.
    """
    config = ModelConfig.from_hf(read_hf_config(hf_dir), **config_overrides)
    located = _open_checkpoint(hf_dir)
    abstract = jax.eval_shape(lambda: transformer.init_params(config, jax.random.key(0)))
    dtype = np.dtype(transformer.dtype_of(config.param_dtype))
    mappings = _mappings(config)
    expected_names = set()
    for m in mappings:
        for i in range(config.num_layers if m.stacked else 1):
            expected_names.add(m.hf_name.format(i=i))
    missing = sorted(expected_names - set(located))
    if missing:
        raise ValueError(f"{hf_dir}: checkpoint lacks {len(missing)} tensors, e.g. {missing[:5]}")
    unexpected = sorted(
        n for n in set(located) - expected_names if not n.endswith(_IGNORED_SUFFIXES)
    )
    if unexpected == ["lm_head.weight"] and config.tie_word_embeddings:
        log.warning("%s: ignoring lm_head.weight (config ties word embeddings)", hf_dir)
    elif unexpected:
        raise ValueError(f"{hf_dir}: unexpected tensors for {config.model_type}: {unexpected[:5]}")

    def sharding_for(path, shape):
        if shardings is None:
            return jax.sharding.SingleDeviceSharding(jax.devices()[0])
        if callable(shardings):
            return shardings(path, shape)
        return _get(shardings, path)

    params: dict = {}
    for m in mappings:
        full_shape = tuple(_get(abstract, m.path).shape)
        layer_shape = full_shape[1:] if m.stacked else full_shape
        buffer = np.empty(full_shape, dtype)
        for i in range(config.num_layers if m.stacked else 1):
            name = m.hf_name.format(i=i)
            file = located[name]
            expected = _hf_shape(m, layer_shape)
            if file.shape(name) != expected:
                raise ValueError(
                    f"{file.path}: tensor {name!r} has shape {file.shape(name)}, expected "
                    f"{expected} for config {config.model_type} (hidden {config.hidden_size})"
                )
            value = _to_ours(m, file.read(name), layer_shape)
            if m.stacked:
                buffer[i] = value
            else:
                buffer[...] = value
            del value
        sharding = sharding_for(m.path, full_shape)
        _set(
            params,
            m.path,
            jax.make_array_from_callback(full_shape, sharding, lambda idx, b=buffer: b[idx]),
        )
        del buffer
    return config, params


def _host_array(x) -> np.ndarray:
    """A host copy of a parameter (numpy, or a jax array gathered from all processes)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        x = multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(jax.device_get(x))


GENERATION_CONFIG = "generation_config.json"


def read_generation_config(hf_dir: str | os.PathLike) -> dict | None:
    """``hf_dir``'s ``generation_config.json``, or None if it has none."""
    path = storage.as_path(hf_dir) / GENERATION_CONFIG
    return _read_json(path) if path.is_file() else None


def generation_config_for(
    source_dir: str | None,
    config: ModelConfig,
    stop_ids: Sequence[int] = (),
    pad_id: int | None = None,
    sampling=None,
) -> dict:
    """The ``generation_config.json`` of an export of a model loaded from ``source_dir``:
    the source's own file, unchanged, when it has one; else one built from the run:
    ``bos_token_id``, ``eos_token_id`` (every id the sampler stops on, else the model
    config's), ``pad_token_id`` and, from ``sampling`` (a `SamplingConfig`), ``do_sample``,
    ``temperature``, ``top_p`` and ``top_k``."""
    source = read_generation_config(source_dir) if source_dir else None
    if source is not None:
        return source
    generation = {
        "bos_token_id": config.bos_token_id,
        "eos_token_id": list(stop_ids) or config.eos_token_id,
        "pad_token_id": pad_id,
    }
    if sampling is not None:
        generation["do_sample"] = not sampling.is_greedy
        if not sampling.is_greedy:
            generation["temperature"] = sampling.temperature
            generation["top_p"] = sampling.top_p
            generation["top_k"] = sampling.top_k
    return {k: v for k, v in generation.items() if v is not None}


def save_pretrained(
    hf_dir: str | os.PathLike,
    config: ModelConfig,
    params: dict,
    tokenizer=None,
    max_shard_bytes: int = 5 * 1024**3,
    dtype: str | None = None,
    generation_config: dict | None = None,
) -> None:
    """Writes a HF directory (see module docstring). Only process 0 writes files.

    Args:
      dtype: dtype of the saved weights (default: ``config.param_dtype``).
      generation_config: the ``generation_config.json`` to write (see
        `generation_config_for`); None: only ``bos_token_id`` and ``eos_token_id``.
    """
    save_dtype = np.dtype(transformer.dtype_of(dtype or config.param_dtype))
    entries = []
    for m in _mappings(config):
        param = _get(params, m.path)
        layers = range(config.num_layers) if m.stacked else [None]
        for i in layers:
            shape = _hf_shape(m, param.shape[1:] if m.stacked else param.shape)

            def produce(param=param, i=i, m=m) -> np.ndarray:
                value = _host_array(param if i is None else param[i])
                return _to_hf(m, value).astype(save_dtype)

            entries.append((m.hf_name.format(i=i), shape, save_dtype, produce))
    if jax.process_index() != 0:
        for *_, produce in entries:  # every process joins the all-gathers
            produce()
        return
    hf_dir = storage.as_path(hf_dir)
    hf_dir.mkdir(parents=True, exist_ok=True)
    shards: list[list] = [[]]
    shard_bytes = 0
    for entry in entries:
        nbytes = math.prod(entry[1]) * save_dtype.itemsize
        if shards[-1] and shard_bytes + nbytes > max_shard_bytes:
            shards.append([])
            shard_bytes = 0
        shards[-1].append(entry)
        shard_bytes += nbytes
    for stale in [hf_dir / SINGLE_FILE, hf_dir / INDEX_FILE, *hf_dir.glob("model-*.safetensors")]:
        stale.unlink(missing_ok=True)
    if len(shards) == 1:
        write_safetensors(hf_dir / SINGLE_FILE, shards[0])
    else:
        weight_map = {}
        for k, shard in enumerate(shards):
            name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
            write_safetensors(hf_dir / name, shard)
            weight_map.update({entry[0]: name for entry in shard})
        total = sum(math.prod(e[1]) * save_dtype.itemsize for e in entries)
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        storage.write_atomically(hf_dir / INDEX_FILE, json.dumps(index, indent=2))
    hf_config = config.to_hf()
    # transformers < 5 and vLLM read "torch_dtype", transformers 5 reads "dtype".
    hf_config["torch_dtype"] = hf_config["dtype"] = save_dtype.name
    storage.write_atomically(hf_dir / "config.json", json.dumps(hf_config, indent=2))
    if generation_config is None:
        generation_config = generation_config_for(None, config)
    storage.write_atomically(hf_dir / GENERATION_CONFIG, json.dumps(generation_config, indent=2))
    if tokenizer is not None and storage.is_local(hf_dir):
        tokenizer.save_pretrained(os.fspath(hf_dir))
    elif tokenizer is not None:  # transformers writes local files only
        with tempfile.TemporaryDirectory() as local:
            tokenizer.save_pretrained(local)
            for name in sorted(os.listdir(local)):
                storage.write_atomically(hf_dir / name, Path(local, name).read_bytes())
