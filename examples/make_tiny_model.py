#!/usr/bin/env python3
"""Build a tiny random-weight causal LM and its tokenizer, offline, into OUT_DIR.

    python examples/make_tiny_model.py examples/tiny-model [--layers 2 --hidden 64]

The model is a 2-layer Llama (hidden size 64, vocabulary ~512, about 0.1 M parameters) with
fixed-seed random weights; the tokenizer is a byte-level BPE trained with ``tokenizers`` on a
few dozen sentences and wrapped as ``PreTrainedTokenizerFast`` with bos/eos/pad/unk tokens.
Both load offline with ``AutoModelForCausalLM.from_pretrained(OUT_DIR)`` and
``AutoTokenizer.from_pretrained(OUT_DIR)``. The text it generates is noise: it exists to
exercise ``backend=hf`` (tests, ``cases/hf_sweep.csv``, ``benchmarks/hf_overhead.py``)
without a network or a GPU. Same arguments, same weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A benchmark runner measures latency, throughput and energy.",
    "Every case of the table runs in file order.",
    "The GPU draws more power while it generates tokens.",
    "Time to first token matters for interactive chat.",
    "Throughput is the number of requests served per second.",
    "Warm-up runs stop once the latency settles down.",
    "A timeout kills the whole process tree of a case.",
    "Energy per token is the energy divided by the tokens generated.",
    "Small models are fast; large models are slow but clever.",
    "The tokenizer splits text into pieces the model understands.",
    "Batching several prompts together raises the throughput.",
    "Padding on the left keeps the last token of each prompt aligned.",
    "Memory grows with the batch size and the sequence length.",
    "Once upon a time there was a little benchmark.",
    "It measured everything twice and trusted nothing once.",
    "The weather today is cloudy with a chance of rain.",
    "Numbers without units are only half of an answer.",
    "Seconds, joules and watts are the units of this report.",
    "Reproducible results need fixed seeds and pinned versions.",
    "Write the results after every case so a crash loses nothing.",
    "The quick summary: faster is better, but correct is best.",
    "Models are loaded once and kept for the cases that follow.",
    "An idle GPU still draws power, so measure the baseline.",
    "Thermal throttling slows the clocks when the chip runs hot.",
    "Hello world, this is a tiny language model speaking.",
    "One, two, three, four, five, six, seven, eight, nine, ten.",
    "Cats and dogs and birds and fish live in the small town.",
    "Please summarise the following paragraph in one sentence.",
    "Translate this sentence into French and then into German.",
    "What is the capital of France? The capital is Paris.",
    "def add(a, b): return a + b  # a tiny Python function",
]
SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


def build_tokenizer(vocab_size: int):  # -> PreTrainedTokenizerFast
    """A byte-level BPE tokenizer trained on ``SENTENCES`` (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(SENTENCES * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)


def build(out_dir: Path, *, layers: int = 2, hidden: int = 64, vocab_size: int = 512,
          seed: int = 0) -> Path:
    """Write the tiny model and tokenizer into ``out_dir`` (created); return it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(vocab_size)
    torch.manual_seed(seed)
    heads = max(1, hidden // 16)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64, help="hidden size (a multiple of 16)")
    ap.add_argument("--vocab-size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    out = build(a.out_dir, layers=a.layers, hidden=a.hidden, vocab_size=a.vocab_size,
                seed=a.seed)
    print(f"tiny model written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
