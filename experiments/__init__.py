"""Scripts: ``python experiments/<script>.py --help``. setup.py also installs this directory
as ``coderl_jax._experiments``, which the console scripts (``coderl-run``, ``coderl-eval``,
``coderl-prepare-data``) run from (coderl_jax/cli.py)."""
