"""Coupled structures of a causal LM: which parameter slices must be pruned together.

- `build_groups(model, layers=, kinds=)`: LLM-aware groups (attn_head, kv_group, mlp_channel, layer, hidden).
- `parse_layer_range("4-29", num_layers)`: inclusive layer ranges, checked against the model.
- `describe(model)` (from `llmprune.arch`): the family's view of one model (shapes per layer, tying, biases).
- `trace_model(model)` / `verify_groups(model, groups)`: torch-pruning's traced coupling, and the
  cross-check of the groups against it (torch-pruning is used nowhere else).
"""

from llmprune.arch import describe
from llmprune.graph.build import build_groups, check_layers, parse_layer_range
from llmprune.graph.nodes import GROUP_KINDS, WHOLE, Group, Member, group_id

__all__ = [
    "GROUP_KINDS",
    "WHOLE",
    "Group",
    "Member",
    "build_groups",
    "check_layers",
    "describe",
    "group_id",
    "parse_layer_range",
    "trace_model",
    "verify_groups",
]


def __getattr__(name: str):
    # torch-pruning is imported only when a trace is asked for
    if name == "trace_model":
        from llmprune.graph.trace import trace_model

        return trace_model
    if name == "verify_groups":
        from llmprune.graph.verify import verify_groups

        return verify_groups
    raise AttributeError(name)
