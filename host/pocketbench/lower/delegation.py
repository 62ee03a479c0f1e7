"""Why ops stay outside XNNPACK: each op family left on the portable kernels, with its cause
when known (recurrent layers unrolled, normalisations, embeddings, reductions and shape ops the
delegate does not take). A layer is named only under the op its kind exports to (a BatchNorm1d
under batch norm, never under layer norm), read from XNNPACK's partitioner: it has no gather, and
of the reductions it takes only a mean over the last two dims of a 4-D tensor (global pooling).

Pure functions over the lowering's op counts and the source model's layer kinds, so the reason
is written into the artifact manifest once and read by every report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pocketbench.compress.layer_kinds import RECURRENT_NAMES

# Edge op names (`aten_split_with_sizes_copy_default`) by family, without `aten_` and overload.
RECURRENT_STEP_OPS = {
    "split_with_sizes_copy", "squeeze_copy", "unsqueeze_copy", "select_copy", "unbind_copy", "stack", "cat",
    "slice_copy", "full", "zeros",
}  # fmt: skip
# Each normalisation op and the layer kinds that export to it (instance norm runs as batch norm).
NORM_OPS = {
    "native_layer_norm": ("LayerNorm",),
    "native_group_norm": ("GroupNorm",),
    "native_batch_norm": ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d"),
    "_native_batch_norm_legit_no_training": ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
    "_native_batch_norm_legit": ("InstanceNorm1d", "InstanceNorm2d"),
}
EMBEDDING_OPS = {"embedding", "embedding_bag", "_embedding_bag", "index_select", "gather", "index"}
EMBEDDING_KINDS = ("Embedding", "EmbeddingBag")
REDUCTION_OPS = {
    "sum", "sum_dim_int_list", "mean", "mean_dim", "amax", "amin", "max", "min", "max_dim", "min_dim", "argmax",
    "argmin", "prod", "prod_dim_int", "any", "any_dim", "all", "all_dim", "var", "var_correction", "std",
    "std_correction", "cumsum", "logsumexp", "norm", "linalg_vector_norm",
}  # fmt: skip
SHAPE_OPS = RECURRENT_STEP_OPS | {"view_copy", "permute_copy", "expand_copy", "clone", "transpose_copy", "t_copy"}


def short_op(op: str) -> str:
    """`aten_split_with_sizes_copy_default` → `split_with_sizes_copy`."""
    name = op.removeprefix("aten_").removeprefix("aten.")
    return re.sub(r"[._](default|dims|dim|int|Tensor|Scalar|input|self|out)$", "", name)


def explain_outside(ops: Mapping[str, int], layers: Mapping[str, str]) -> str:
    """`split_with_sizes_copy×196, squeeze_copy×99: recurrent layer gru (GRU) is unrolled …; …`:
    the ops outside the delegate grouped by cause, most frequent family first."""
    recurrent = [f"{n} ({k})" for n, k in layers.items() if k in RECURRENT_NAMES]
    families: dict[str, list[str]] = {}
    for op, count in sorted(ops.items(), key=lambda item: -item[1]):
        name = short_op(op)
        if recurrent and name in RECURRENT_STEP_OPS:
            cause = (
                f"recurrent layer{'s' if len(recurrent) > 1 else ''} {', '.join(recurrent)} "
                f"{'are' if len(recurrent) > 1 else 'is'} unrolled one step per frame in the exported graph, "
                "and the per-step split/squeeze/select ops are shape ops XNNPACK does not take"
            )
        elif name in NORM_OPS:
            which = _named(layers, NORM_OPS[name])
            kind = name.removeprefix("_").removeprefix("native_").split("_legit")[0].replace("_", " ")
            cause = f"normalisation{which}: XNNPACK does not take {kind} here (portable kernels run it)"
        elif name in EMBEDDING_OPS:
            which = _named(layers, EMBEDDING_KINDS)
            cause = f"embedding lookup{which}: XNNPACK has no gather kernel (portable kernels index the table)"
        elif name in REDUCTION_OPS:
            cause = (
                "reductions XNNPACK does not take (of them it takes only a mean over the last two dims of a "
                "4-D tensor): a sum or max over a sequence or feature dim runs on portable kernels"
            )
        elif name in SHAPE_OPS:
            cause = "shape ops XNNPACK does not take on their own (they sit between delegated parts)"
        else:
            cause = "no known reason (the profile, --profile, shows their cost)"
        families.setdefault(cause, []).append(f"{name}×{count}")
    return "; ".join(f"{', '.join(names)}: {cause}" for cause, names in families.items())


def _named(layers: Mapping[str, str], kinds: tuple[str, ...]) -> str:
    """` bn (BatchNorm1d), …`: the model's layers of these kinds; "" when it has none."""
    names = [f"{n} ({k})" for n, k in layers.items() if k in kinds]
    return f" {', '.join(names)}" if names else ""
