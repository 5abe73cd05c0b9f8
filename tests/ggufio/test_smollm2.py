"""The real SmolLM2-135M: its f32 export is what llama.cpp's own converter made of the same weights (the
published GGUF, de-quantized: Q4_1 values are exact in f32), tensor for tensor and key for key, and a
folder pruned from it inherits its tokenizer metadata."""

from __future__ import annotations

import gguf
import numpy as np
from gguf.quants import dequantize

from llmprune.ggufio.source import source_gguf
from llmprune.ggufio.writer import write_gguf
from llmprune.models.aliases import alias_gguf


def test_export_equals_llama_cpp_converter(smollm2, smollm2_dir, tmp_path):
    model, tok = smollm2
    out = tmp_path / "smol.gguf"
    source = source_gguf(str(smollm2_dir))
    assert source == alias_gguf("smollm2-135m")
    done = write_gguf(model, tok, out, outtype="f32", source=source)
    assert (done.arch, done.tokenizer) == ("llama", f"copied from {source.name}")
    ref, ours = gguf.GGUFReader(source), gguf.GGUFReader(out)
    for key, field in ref.fields.items():
        if key.startswith(("llama.", "tokenizer.")):
            assert ours.fields[key].contents() == field.contents(), key
    mine = {t.name: t for t in ours.tensors}
    assert set(mine) == {t.name for t in ref.tensors}
    for t in ref.tensors:
        if t.name.startswith(("blk.0.", "blk.29.", "output_norm")):  # q/k permuted as the converter does
            np.testing.assert_array_equal(
                dequantize(mine[t.name].data, mine[t.name].tensor_type), dequantize(t.data, t.tensor_type)
            )
