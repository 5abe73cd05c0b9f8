"""Losses of a recovery step: token cross-entropy, plus KL distillation from a dense teacher.

Both are returned as *sums* over the predicted tokens, so the trainer can normalise by the number of
target tokens in the whole optimizer step (all micro-batches and processes): the result does not
depend on how the step is split.

    loss = (1 - w) * CE + w * T^2 * KL(softmax(teacher / T) || softmax(student / T))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmprune.errors import LlmpruneError

IGNORE = -100


@dataclass
class LossSums:
    ce: torch.Tensor
    kd: torch.Tensor | None
    tokens: int


def _targets(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (n, V) at the positions that predict a label, and those labels (n,)."""
    shifted = labels[:, 1:]
    keep = shifted != IGNORE
    return logits[:, :-1][keep], shifted[keep]


def kd_sum(
    student: torch.Tensor, teacher: torch.Tensor, *, temperature: float = 1.0, topk: int | None = None
) -> torch.Tensor:
    """T^2 * sum over rows of KL(teacher_T || student_T), in fp32. Zero when the logits are equal.

    With `topk`, only the teacher's k most likely tokens are compared one by one; the rest of the
    vocabulary is one more bin (its total probability), so the loss is still a KL divergence (zero at
    equality) and cheaper to store and send when teacher logits are cached.
    """
    s_logp = F.log_softmax(student.float() / temperature, dim=-1)
    t_logp = F.log_softmax(teacher.float() / temperature, dim=-1)
    if topk is not None and topk < t_logp.shape[-1]:
        t_logp, idx = t_logp.topk(topk, dim=-1)
        s_logp = s_logp.gather(-1, idx)
        t_logp, s_logp = _with_rest(t_logp), _with_rest(s_logp)
    kl = (t_logp.exp() * (t_logp - s_logp)).sum()
    return kl * temperature**2


def _with_rest(logp: torch.Tensor) -> torch.Tensor:
    """Append log(1 - sum p) as the last bin of the top-k log-probabilities."""
    rest = torch.log1p(-logp.exp().sum(-1, keepdim=True).clamp(max=1 - 1e-6))
    return torch.cat([logp, rest], dim=-1)


def loss_sums(
    logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    topk: int | None = None,
) -> LossSums:
    """Summed CE (and KD when teacher logits are given) over the tokens with labels."""
    s, y = _targets(logits, labels)
    ce = F.cross_entropy(s.float(), y, reduction="sum")
    kd = None
    if teacher_logits is not None:
        t, _ = _targets(teacher_logits, labels)
        kd = kd_sum(s, t, temperature=temperature, topk=topk)
    return LossSums(ce, kd, int(y.numel()))


def combine(sums: LossSums, weight: float) -> torch.Tensor:
    """(1 - w) * CE + w * KD (CE alone without a teacher)."""
    if sums.kd is None:
        return sums.ce
    return (1 - weight) * sums.ce + weight * sums.kd


class Teacher:
    """A frozen dense model in eval mode whose logits are targets; never receives gradients."""

    def __init__(self, model: nn.Module, student_vocab: int):
        vocab = model.get_output_embeddings().weight.shape[0]
        if vocab != student_vocab:
            raise LlmpruneError(
                f"the teacher's vocabulary has {vocab} tokens, the student's {student_vocab}; distil from the "
                "dense model the pruned one came from (same tokenizer)"
            )
        self.model = model.eval().requires_grad_(False)

    @classmethod
    def load(cls, spec: str, student_vocab: int, *, dtype: str | torch.dtype, device: torch.device) -> Teacher:
        from llmprune.models import load_model

        model, _ = load_model(spec, dtype=dtype, device=str(device))
        return cls(model, student_vocab)

    @torch.no_grad()
    def logits(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits
