"""Write research-format (TF1 name-based) checkpoints for tests, eagerly, with tf.raw_ops.SaveV2.

The product never writes checkpoints; tests use this to make small or deliberately broken ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np


def read_research_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def write_research_checkpoint(prefix: str | Path, variables: Mapping[str, np.ndarray]) -> str:
    """Save `variables` under their names at `prefix` (plus a `checkpoint` state file beside it)."""
    import tensorflow as tf

    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(variables)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(variables[n]) for n in names],
    )
    (prefix.parent / "checkpoint").write_text(
        f'model_checkpoint_path: "{prefix.name}"\nall_model_checkpoint_paths: "{prefix.name}"\n'
    )
    return str(prefix)
