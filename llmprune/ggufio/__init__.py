"""GGUF files llmprune writes (`llmprune export --format gguf`) and reads back without llama.cpp.

- `target.py`: which llama.cpp architecture a model maps to (uniform -> its family's, non-uniform
  LLaMA -> `deci` with per-layer arrays), and what llama.cpp cannot express (refused).
- `tensors.py`: llmprune module paths <-> GGUF tensor names, the q/k row permutation, outtypes.
- `tokenizer.py`: tokenizer metadata (copied from a source GGUF, else built from tokenizer.json);
  `source.py`: which source GGUF a model came from.
- `keys.py`: the metadata keys that mark a GGUF as llmprune's (read from the header alone).
- `writer.py`: `export_gguf`, atomic, replacing only a GGUF llmprune wrote.
- `reader.py`: `load_llmprune_gguf`, the same kind of model `load_pruned` returns.
"""
