"""The JAX tests need the optional ``jax`` extra (jax and optax); without it they are not collected."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("jax") and importlib.util.find_spec("optax") else ["test_jax_*.py"]
