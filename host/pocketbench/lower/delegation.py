"""Why ops stay outside XNNPACK: each op family left on the portable kernels, with its cause
when known (recurrent layers unrolled, normalisations and shape ops the delegate does not take).

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
NORM_OPS = {"native_layer_norm", "native_group_norm", "native_batch_norm", "_native_batch_norm_legit_no_training"}
SHAPE_OPS = RECURRENT_STEP_OPS | {"view_copy", "permute_copy", "expand_copy", "clone", "transpose_copy", "t_copy"}


def short_op(op: str) -> str:
    """`aten_split_with_sizes_copy_default` → `split_with_sizes_copy`."""
    name = op.removeprefix("aten_").removeprefix("aten.")
    return re.sub(r"[._](default|dims|dim|int|Tensor|Scalar|input|self|out)$", "", name)


def explain_outside(ops: Mapping[str, int], layers: Mapping[str, str]) -> str:
    """`split_with_sizes_copy×196, squeeze_copy×99: recurrent layer gru (GRU) is unrolled …; …`:
    the ops outside the delegate grouped by cause, most frequent family first."""
    recurrent = [f"{n} ({k})" for n, k in layers.items() if k in RECURRENT_NAMES]
    norms = [f"{n} ({k})" for n, k in layers.items() if f"{n} ({k})" not in recurrent]
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
            which = f" {', '.join(norms)}" if norms else ""
            cause = f"normalisation{which}: XNNPACK does not take layer/group/instance norm (portable kernels run it)"
        elif name in SHAPE_OPS:
            cause = "shape ops XNNPACK does not take on their own (they sit between delegated parts)"
        else:
            cause = "no known reason (the profile, --profile, shows their cost)"
        families.setdefault(cause, []).append(f"{name}×{count}")
    return "; ".join(f"{', '.join(names)}: {cause}" for cause, names in families.items())
