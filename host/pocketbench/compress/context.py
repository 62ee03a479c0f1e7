"""What the compression steps share while a recipe runs: the bundle, progress, masks and stats.

Its own module so the steps (quantize, prune, training) and the pipeline that dispatches to them
import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from pocketbench.models.registry import ModelBundle
from pocketbench.progress import Reporter


@dataclass
class Context:
    bundle: ModelBundle
    reporter: Reporter
    # Unstructured-pruning masks (weight name → 0/1 tensor): training steps re-apply them.
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
