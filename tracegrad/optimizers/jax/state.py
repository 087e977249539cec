"""Pytrees of arrays (optax states) to JSON data and back, exactly.

Each leaf is saved with its dtype and shape and its values as (nested) lists;
float32 values survive the trip through JSON's doubles bit for bit. The tree's
structure is not saved as code: on load it is re-created (e.g. by
``transform.init(params)``) and the saved leaves are checked against it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracegrad.errors import TracegradError
from tracegrad.nodes.array import array_from_json, array_to_json


def leaf_to_json(leaf: Any) -> dict[str, Any]:
    if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
        raise TracegradError("optimizer states holding PRNG keys cannot be saved as JSON yet")
    arr = np.asarray(leaf)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise TracegradError("the optimizer state holds NaN or infinite values and cannot be saved as JSON")
    return array_to_json(arr)


def tree_to_json(tree: Any) -> dict[str, Any]:
    """JSON data for a pytree of arrays (structure as text, for error messages only)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return {"structure": str(treedef), "leaves": [leaf_to_json(x) for x in leaves]}


def tree_from_json(data: Any, like: Any) -> Any:
    """The pytree saved by ``tree_to_json``, shaped like ``like`` (checked leaf by leaf)."""
    template, treedef = jax.tree_util.tree_flatten(like)
    saved = data.get("leaves") if isinstance(data, dict) else None
    if not isinstance(saved, list):
        raise TracegradError("not a saved optimizer state: it needs 'leaves', a list of arrays")
    if len(saved) != len(template):
        raise TracegradError(
            f"the saved optimizer state has {len(saved)} arrays, this optimizer has {len(template)}: "
            f"saved {data.get('structure')}, expected {treedef}"
        )
    leaves = []
    for i, (entry, ref) in enumerate(zip(saved, template, strict=True)):
        try:
            leaf = array_from_json(entry)
        except (KeyError, TypeError, ValueError, OverflowError, IndexError, AttributeError) as exc:
            raise TracegradError(f"optimizer state array {i} cannot be read: {type(exc).__name__}: {exc}") from None
        ref_shape, ref_dtype = tuple(np.shape(ref)), jnp.result_type(ref)
        if tuple(leaf.shape) != ref_shape or leaf.dtype != ref_dtype:
            raise TracegradError(
                f"optimizer state array {i} is {leaf.dtype}{list(leaf.shape)}, expected {ref_dtype}{list(ref_shape)}"
            )
        leaves.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, leaves)


__all__ = ["tree_from_json", "tree_to_json"]
