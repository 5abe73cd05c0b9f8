"""`EvalConfig`: what an evaluation measures, with the one set of defaults that `llmprune eval`, recipes
and `llmprune.eval.evaluate` share. Importing it does not load torch."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCORERS: tuple[str, ...] = ("shared-prefix", "lm-eval")
SEQ_LEN = 128  # perplexity window length (the LLM-Pruner / Wanda protocol)
BATCH_SIZE = 8  # windows, or zero-shot sequences, per forward pass


class EvalConfig(BaseModel):
    """Perplexity datasets and zero-shot tasks, and how to score them."""

    model_config = ConfigDict(extra="forbid")
    ppl: list[str] = Field(default_factory=lambda: ["wikitext2"], description="perplexity datasets (wikitext2, ptb)")
    split: str = Field("test", description="dataset split that perplexity scores")
    seq_len: int = Field(SEQ_LEN, ge=2, description="perplexity window length in tokens (non-overlapping windows)")
    max_windows: int | None = Field(None, ge=1, description="score only the first N windows (null: all)")
    batch_size: int = Field(
        BATCH_SIZE, ge=1, description="windows / zero-shot sequences (packed examples or requests) per forward pass"
    )
    tasks: list[str] = Field(
        default_factory=list,
        description="zero-shot tasks: names in $LLMPRUNE_DATA_DIR/tasks (boolq, piqa, hellaswag, arc_easy) or .jsonl paths",
    )
    limit: int | None = Field(None, ge=1, description="zero-shot: score only the first N examples of each task")
    scorer: Literal["shared-prefix", "lm-eval"] = Field(
        "shared-prefix",
        description="zero-shot scorer: shared-prefix (each context once, choices packed behind it; lm-eval's "
        "tokens and numbers) or lm-eval (HFLM's own per-request loop)",
    )
    cache: str | None = Field(
        None,
        description="zero-shot: keep every scored example in this JSON Lines file; rerun to resume an "
        "interrupted run (only the missing examples are scored)",
    )
    before: bool = Field(True, description="recipes: also evaluate the dense model, for a before/after table")

    @model_validator(mode="after")
    def _something(self) -> EvalConfig:
        if not self.ppl and not self.tasks:
            raise ValueError("nothing to evaluate: give perplexity datasets (ppl) and/or zero-shot tasks")
        return self
