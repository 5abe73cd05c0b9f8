"""Wanda (Sun et al., 2023): prune by |W_ij| * ||X_j||_2, compared within each output row.

Follows the reference implementation (locuslab/wanda `prune_wanda`):
1. run the model on the calibration windows up to decoder layer 0 and keep that layer's inputs and
   call keyword arguments (attention mask, position ids, rotary position embeddings;
   `llmprune.activations.capture_layer_inputs`);
2. for each decoder layer in turn: run it on its inputs while forward pre-hooks on its Linear layers
   accumulate the squared L2 norm of every input channel over all tokens (`llmprune.activations.RowNorms`,
   the reference's `scaler_row`); prune every Linear of the layer with score |W| * sqrt(scaler_row); run the *pruned*
   layer again to produce the inputs of the next layer.
So layer i's statistics come from the outputs of the already-pruned layers 0..i-1.

With `sequential=False` (the paper's "single forward pass"), the statistics of every layer come from the
*dense* model: each layer runs once, its hooks gather the norms while it produces the next layer's
inputs, and it is pruned afterwards. Half the layer forwards of the sequential mode; on SmolLM2 at 50%
it also gave the lower perplexity (see README, "Unstructured baselines").
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from llmprune.activations import LayerInputs, RowNorms, capture_layer_inputs, layer_output, record_inputs
from llmprune.arch import decoder_layers, describe
from llmprune.sparsify.masks import apply_mask_, select_mask
from llmprune.sparsify.targets import check_pattern_fits, layer_linears, target_linears


def wanda_scores(weight: torch.Tensor, scaler_row: torch.Tensor) -> torch.Tensor:
    """|W_ij| * ||X_j||_2: (out, in) weight and (in,) squared input norms -> (out, in) fp32 scores."""
    return weight.detach().abs().float() * torch.sqrt(scaler_row.float()).reshape(1, -1)


@torch.no_grad()
def layer_input_norms(
    layer: nn.Module, linears: dict[str, nn.Linear], inputs: LayerInputs, *, keep_outputs: bool = False
) -> tuple[dict[str, RowNorms], LayerInputs]:
    """Run `layer` on `inputs`; return the input statistics of each of its selected Linear layers
    (`linears`: {path in the layer: Linear}) and, with `keep_outputs`, the layer's outputs as the next
    layer's inputs (else an empty list)."""
    stats = {name: RowNorms(lin.in_features, lin.weight.device) for name, lin in linears.items()}
    outputs = []
    with record_inputs(layer, stats):
        for hidden, kwargs in inputs:
            out = layer(hidden, **kwargs)
            if keep_outputs:
                outputs.append((layer_output(out), kwargs))
    return stats, outputs


@torch.no_grad()
def wanda_(
    model: nn.Module,
    batches: torch.Tensor,
    sparsity: float,
    nm: tuple[int, int] | None = None,
    *,
    micro_batch: int = 8,
    sequential: bool = True,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Prune the selected Linear layers of `model` in place with Wanda, layer by layer.

    `batches` is a (samples, seq_len) LongTensor of calibration windows. Without `nm`, each output row
    loses its `int(in_features * sparsity)` lowest scores; with `nm=(N, M)` each group of M consecutive
    inputs of a row keeps its N highest scores. `sequential` (the reference repository's way): layer i's
    statistics come from the already-pruned layers before it; otherwise from the dense model (one forward
    per layer). Returns {module name: scaler_row} (the statistics used).
    """
    if nm is not None:
        check_pattern_fits(target_linears(model), nm[1])
    was_training = model.training
    model.eval()
    inputs = capture_layer_inputs(model, batches, micro_batch=micro_batch)
    used: dict[str, torch.Tensor] = {}
    layout = describe(model)
    layers = decoder_layers(model)
    for i, layer in enumerate(tqdm(layers, desc="wanda", unit="layer", disable=not progress)):
        last = i + 1 == len(layers)
        linears = layer_linears(layer, layout.family)
        stats, outputs = layer_input_norms(layer, linears, inputs, keep_outputs=not sequential and not last)
        for name, lin in linears.items():
            scaler_row = stats[name].scaler_row
            apply_mask_(lin.weight, select_mask(wanda_scores(lin.weight, scaler_row), sparsity, nm, per_row=True))
            used[f"{layout.layer(i)}.{name}"] = scaler_row.cpu()
        if sequential and not last:  # the pruned layer produces the next layer's inputs
            outputs = [(layer_output(layer(hidden, **kwargs)), kwargs) for hidden, kwargs in inputs]
        inputs = outputs
    model.train(was_training)
    return used
