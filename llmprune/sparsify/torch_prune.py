"""`global-magnitude`: the `torch.nn.utils.prune` route, for users of the PyTorch pruning API.

`prune.global_unstructured` with `L1Unstructured` ranks |W| across all selected Linear layers at once
(one global threshold, so layers end up with different sparsities), and `prune.remove` then makes
the result permanent: every layer is a plain `nn.Linear` again, with zeros stored in `weight`,
no `weight_orig` / `weight_mask` and no forward pre-hooks left behind.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from llmprune.sparsify.targets import target_linears


@torch.no_grad()
def global_magnitude_(model: nn.Module, sparsity: float) -> nn.Module:
    """Zero the `sparsity` fraction of lowest-|W| weights over all selected Linear layers together, in place."""
    linears = list(target_linears(model).values())
    params = [(lin, "weight") for lin in linears]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=float(sparsity))
    for lin in linears:
        prune.remove(lin, "weight")
    return model
