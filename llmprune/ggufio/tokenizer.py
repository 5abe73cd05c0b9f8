"""Tokenizer metadata of an exported GGUF.

For llama.cpp: the `tokenizer.*` keys are copied from the source GGUF when the model came from one
(`llmprune.ggufio.source`) and its vocabulary has the model's size; else they are built from the Hugging Face tokenizer like
llama.cpp's converter does for BPE tokenizers (`tokenizer.ggml.model = gpt2`, merges and special ids
through `gguf.vocab.SpecialVocab`). Other tokenizers (word-level, unigram) get `tokenizer.ggml.model =
none`: llama.cpp loads the weights but cannot tokenize text.

For llmprune's own loader the tokenizer's files (`tokenizer.json`, `tokenizer_config.json`) travel as
strings under `llmprune.tokenizer.*`, so the round trip gives back the exact tokenizer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gguf

from llmprune import tempfiles

EMBEDDED = ("tokenizer.json", "tokenizer_config.json")
EMBED_PREFIX = "llmprune.tokenizer."


def copy_tokenizer(writer: gguf.GGUFWriter, source: Path, vocab_size: int) -> bool:
    """Copy `source`'s `tokenizer.*` keys; False (nothing written) when its vocabulary has another size."""
    reader = gguf.GGUFReader(source)
    tokens = reader.fields.get(gguf.Keys.Tokenizer.LIST)
    if tokens is None or len(tokens.data) != vocab_size:
        return False
    for name, field in reader.fields.items():
        if name.startswith("tokenizer."):
            sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(name, field.contents(), field.types[0], sub_type=sub)
    return True


def build_tokenizer(writer: gguf.GGUFWriter, tokenizer: Any, folder: Path, vocab_size: int) -> str:
    """Write llama.cpp tokenizer keys built from `tokenizer` (saved in `folder`); returns the GGUF
    tokenizer model written (`gpt2`, or `none` for tokenizers llama.cpp is not given)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or type(backend.model).__name__ != "BPE":
        writer.add_tokenizer_model("none")
        return "none"
    vocab = tokenizer.get_vocab()
    by_id = {i: t for t, i in vocab.items()}
    added = {t.content: t for t in tokenizer.added_tokens_decoder.values()}
    tokens, types = [], []
    for i in range(vocab_size):
        text = by_id.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif text in added:
            tokens.append(text)
            types.append(gguf.TokenType.CONTROL if added[text].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(text)
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size).add_to_gguf(writer, quiet=True)
    return "gpt2"


def write_tokenizer(writer: gguf.GGUFWriter, tokenizer: Any, target: Path, vocab_size: int, source: Path | None) -> str:
    """All tokenizer metadata (see the module doc); returns where llama.cpp's keys came from."""
    with tempfiles.temp_dir(target) as folder:
        tokenizer.save_pretrained(folder)
        for name in EMBEDDED:
            if (folder / name).is_file():
                writer.add_string(EMBED_PREFIX + name, (folder / name).read_text(encoding="utf-8"))
        if source is not None and copy_tokenizer(writer, source, vocab_size):
            return f"copied from {source.name}"
        return f"built from tokenizer.json ({build_tokenizer(writer, tokenizer, folder, vocab_size)})"


def read_tokenizer(fields: dict[str, Any]) -> Any | None:
    """The Hugging Face tokenizer embedded by `write_tokenizer` ({key: value} of a GGUF), or None."""
    from transformers import AutoTokenizer

    files = {name: fields.get(EMBED_PREFIX + name) for name in EMBEDDED}
    if files["tokenizer.json"] is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:  # a read: the system's temporary folder, not the model's
        folder = Path(tmp)
        for name, text in files.items():
            if text is not None:
                (folder / name).write_text(text, encoding="utf-8")
        return AutoTokenizer.from_pretrained(folder)
