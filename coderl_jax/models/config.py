"""Model configuration: one decoder config for Qwen2/Qwen2.5(-Coder) and Llama 3.x checkpoints.

`ModelConfig.from_hf` reads a Hugging Face ``config.json`` dict. Both spellings of the RoPE
settings are accepted: the older top-level ``rope_theta`` / ``rope_scaling`` keys found in the
published Qwen2.5 and Llama 3.x repositories, and the ``rope_parameters`` dict that
transformers 5 writes. `ModelConfig.to_hf` writes the older spelling, which every
transformers version (and vLLM) reads.

Presets (`PRESETS`) give the shapes of public models, for benchmarks with random weights
(``jax.eval_shape``); nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
from typing import Any

SUPPORTED_MODEL_TYPES = ("qwen2", "llama")
SUPPORTED_ROPE_TYPES = ("default", "llama3")
DTYPES = ("float32", "bfloat16", "float16")
# No-cache attention: "xla" einsum with an explicit mask (any padding, any backend);
# "cudnn" fused flash attention (GPU; rows must be left-aligned, see transformer.py);
# "xla_fused" the fused path's contract computed by jax's XLA reference (CPU tests);
# "xla_blocked" the fused contract by the flash recurrence in XLA (cuDNN's memory, any device).
ATTENTION_IMPLS = ("xla", "cudnn", "xla_fused", "xla_blocked")
# cuDNN flash attention: bf16/fp16 operands, head dim a multiple of 8 and <= 256 on Hopper
# and later (<= 128 before); checked again by jax when the kernel is built.
CUDNN_DTYPES = ("bfloat16", "float16")
CUDNN_MAX_HEAD_DIM = 256


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shape and numerics of a Qwen2/Llama-family decoder."""

    model_type: str = "qwen2"  # "qwen2" or "llama"
    vocab_size: int = 2048
    hidden_size: int = 128  # D
    intermediate_size: int = 384  # F (SwiGLU width)
    num_layers: int = 4  # L
    num_heads: int = 4  # H (query heads)
    num_kv_heads: int = 2  # K (key/value heads; H % K == 0)
    head_dim: int = 32
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    # None or {"rope_type": "llama3", "factor", "low_freq_factor", "high_freq_factor",
    # "original_max_position_embeddings"}.
    rope_scaling: dict | None = None
    max_position_embeddings: int = 32768
    attention_bias: bool = True  # q/k/v projection biases (Qwen2: True, Llama: False)
    tie_word_embeddings: bool = True
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    param_dtype: str = "float32"  # storage dtype of the weights
    compute_dtype: str = "float32"  # activations / matmul dtype (norms and softmax in fp32)
    # Gradient checkpointing of each decoder layer: "none", "full" (save nothing),
    # "dots" (save matmul outputs without batch dims).
    remat_policy: str = "none"
    # Layers per iteration of the layer scan. 0 (or num_layers) unrolls fully: faster steps
    # for longer compiles (the 0.5B-shape GRPO update on an H100: 97.8k tokens/s vs 72.4k
    # with 1, compiled in 19 s vs 9 s). 1 compiles a single layer.
    scan_unroll: int = 0
    # No-cache attention (training, scoring): one of ATTENTION_IMPLS. Decoding and the
    # sampler's prefill (left-padded prompts) always use the einsum.
    attention_impl: str = "xla"

    def __post_init__(self):
        if self.model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"model_type {self.model_type!r} is not supported; expected one of "
                f"{SUPPORTED_MODEL_TYPES}"
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads "
                f"({self.num_kv_heads})"
            )
        for name in ("param_dtype", "compute_dtype"):
            if getattr(self, name) not in DTYPES:
                raise ValueError(f"{name} must be one of {DTYPES}, got {getattr(self, name)!r}")
        if not 0 <= self.scan_unroll <= max(1, self.num_layers):
            raise ValueError(
                f"scan_unroll must be in [0, num_layers] (0: all), got {self.scan_unroll}"
            )
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ValueError(
                f"attention_impl must be one of {ATTENTION_IMPLS}, got {self.attention_impl!r}"
            )
        if self.attention_impl == "cudnn":
            if self.compute_dtype not in CUDNN_DTYPES:
                raise ValueError(
                    f"attention_impl='cudnn' needs compute_dtype in {CUDNN_DTYPES}, got "
                    f"{self.compute_dtype!r}; use attention_impl='xla' for float32"
                )
            if self.head_dim % 8 or self.head_dim > CUDNN_MAX_HEAD_DIM:
                raise ValueError(
                    f"attention_impl='cudnn' needs head_dim a multiple of 8 and <= "
                    f"{CUDNN_MAX_HEAD_DIM}, got {self.head_dim}"
                )
        if self.remat_policy not in ("none", "full", "dots"):
            raise ValueError(f"remat_policy must be none/full/dots, got {self.remat_policy!r}")
        if self.rope_scaling is not None:
            rope_type = self.rope_scaling.get("rope_type", "default")
            if rope_type not in SUPPORTED_ROPE_TYPES:
                raise ValueError(
                    f"rope_scaling type {rope_type!r} is not supported; implemented: "
                    f"{SUPPORTED_ROPE_TYPES}"
                )
            if rope_type == "llama3":
                missing = {
                    "factor",
                    "low_freq_factor",
                    "high_freq_factor",
                    "original_max_position_embeddings",
                } - set(self.rope_scaling)
                if missing:
                    raise ValueError(f"llama3 rope_scaling is missing {sorted(missing)}")

    @property
    def num_params(self) -> int:
        """Parameter count (embeddings counted once when tied)."""
        d, f, h, k, dh = (
            self.hidden_size,
            self.intermediate_size,
            self.num_heads,
            self.num_kv_heads,
            self.head_dim,
        )
        attn = d * h * dh * 2 + d * k * dh * 2
        if self.attention_bias:
            attn += (h + 2 * k) * dh
        layer = attn + 3 * d * f + 2 * d
        embed = self.vocab_size * d * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * layer + embed + d

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_hf(cls, hf: dict, **overrides: Any) -> ModelConfig:
        """Builds a config from a HF ``config.json`` dict; raises on unsupported features."""
        model_type = hf.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"config.json model_type {model_type!r} is not supported; expected one of "
                f"{SUPPORTED_MODEL_TYPES}"
            )
        if hf.get("hidden_act", "silu") != "silu":
            raise ValueError(f"config.json hidden_act {hf['hidden_act']!r}: only silu is supported")
        if hf.get("use_sliding_window", False):
            raise ValueError(
                "config.json enables sliding-window attention (use_sliding_window=true), which "
                "this decoder does not implement; set use_sliding_window to false to load it "
                "with full attention"
            )
        if hf.get("mlp_bias", False):
            raise ValueError("config.json sets mlp_bias=true, which is not supported")
        rope = dict(hf.get("rope_parameters") or {})
        scaling = hf.get("rope_scaling")
        if scaling:
            old_type = scaling.get("rope_type", scaling.get("type", "default"))
            if rope and rope.get("rope_type", "default") != old_type:
                raise ValueError(
                    f"config.json has rope_scaling (type {old_type!r}) and rope_parameters "
                    f"(type {rope.get('rope_type', 'default')!r}) that disagree; keep one"
                )
            rope = {**scaling, **rope}
        theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        rope_scaling = None
        if rope_type != "default":
            rope_scaling = {k: v for k, v in rope.items() if k not in ("rope_theta", "type")}
            rope_scaling["rope_type"] = rope_type
        num_heads = hf["num_attention_heads"]
        kwargs = dict(
            model_type=model_type,
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            num_layers=hf["num_hidden_layers"],
            num_heads=num_heads,
            num_kv_heads=hf.get("num_key_value_heads") or num_heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // num_heads,
            rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
            rope_theta=float(theta),
            rope_scaling=rope_scaling,
            max_position_embeddings=hf.get("max_position_embeddings", 32768),
            attention_bias=hf.get("attention_bias", model_type == "qwen2"),
            tie_word_embeddings=hf.get("tie_word_embeddings", False),
            bos_token_id=hf.get("bos_token_id"),
            eos_token_id=hf.get("eos_token_id"),
        )
        # Weights stay in the checkpoint's dtype unless overridden; bf16 weights compute in bf16.
        stored = hf.get("dtype") or hf.get("torch_dtype")
        if stored in DTYPES:
            kwargs["param_dtype"] = stored
            kwargs["compute_dtype"] = "float32" if stored == "float32" else stored
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_hf(self) -> dict:
        """The HF ``config.json`` dict (older key spelling, readable by all versions)."""
        arch = {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM"}[self.model_type]
        hf = {
            "architectures": [arch],
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": self.rope_scaling,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "torch_dtype": self.param_dtype,
            "initializer_range": 0.02,
            "attention_dropout": 0.0,
        }
        if self.model_type == "qwen2":
            hf["use_sliding_window"] = False
            if not self.attention_bias:
                raise ValueError("qwen2 checkpoints always have q/k/v biases")
        else:
            hf["attention_bias"] = self.attention_bias
            hf["mlp_bias"] = False
        return hf


def _qwen25_coder(hidden, inter, layers, heads, kv, tied) -> ModelConfig:
    return ModelConfig(
        model_type="qwen2",
        vocab_size=151936 if hidden < 3584 else 152064,
        hidden_size=hidden,
        intermediate_size=inter,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv,
        head_dim=hidden // heads,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        max_position_embeddings=32768,
        attention_bias=True,
        tie_word_embeddings=tied,
        bos_token_id=151643,
        eos_token_id=151645,
        param_dtype="bfloat16",
        compute_dtype="bfloat16",
    )


# Shapes of public checkpoints (random weights only; for benchmarks and eval_shape checks).
PRESETS: dict[str, ModelConfig] = {
    "qwen2.5-coder-0.5b": _qwen25_coder(896, 4864, 24, 14, 2, True),
    "qwen2.5-coder-1.5b": _qwen25_coder(1536, 8960, 28, 12, 2, True),
    "qwen2.5-coder-7b": _qwen25_coder(3584, 18944, 28, 28, 4, False),
    "llama-3.2-1b": ModelConfig(
        model_type="llama",
        vocab_size=128256,
        hidden_size=2048,
        intermediate_size=8192,
        num_layers=16,
        num_heads=32,
        num_kv_heads=8,
        head_dim=64,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 32.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
        max_position_embeddings=131072,
        attention_bias=False,
        tie_word_embeddings=True,
        bos_token_id=128000,
        eos_token_id=[128001, 128008, 128009],
        param_dtype="bfloat16",
        compute_dtype="bfloat16",
    ),
}
