"""The offline base model "tiny": a small T5 from T5Config, with a tokenizer trained on the data.

The Hugging Face hub is not always reachable (laptops on a plane, CI, this project's build
machines), yet the whole pipeline must run end to end. `--base-model tiny` gives a real
T5ForConditionalGeneration (about 1.2 M parameters) whose tokenizer is a genuine transformers
T5Tokenizer (Unigram pieces, `<pad>`=0, `</s>`=1, `<unk>`=2, sentinel `<extra_id_N>` tokens), so
every later step - save_pretrained, packaging, the inference handler, the local backend - treats
it exactly like google/flan-t5-base. It learns its training questions by heart in a few hundred
steps on two CPU cores; it does not generalise like a pre-trained model, and the benchmarks say so.

Everything here is deterministic given the texts and the seed.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TINY = "tiny"

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")  # T5's ids 0, 1, 2, in this order
EXTRA_IDS = 8  # T5-style sentinels; unused by fine-tuning but expected by T5 tooling

# Characters that always get a piece, even if the training texts lack them, so a question with
# an accent or a symbol the dataset never used is not mangled into <unk>.
_ALPHABET = sorted(
    set(string.ascii_letters + string.digits + string.punctuation)
    | {chr(code) for code in range(0xC0, 0x180) if chr(code).isalpha()}
    | set("–—‘’“”…°€£")
)


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the tiny T5: about 1.3 M parameters with the biography data's vocabulary."""

    vocab_size: int = 2000
    d_model: int = 128
    d_ff: int = 512
    d_kv: int = 32
    num_heads: int = 4
    num_layers: int = 2
    num_decoder_layers: int = 2
    dropout_rate: float = 0.0  # memorising facts is the job; dropout only slows it down
    max_new_tokens: int = 32


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 2000, extra_ids: int = EXTRA_IDS
) -> Any:
    """A transformers T5Tokenizer whose Unigram vocabulary is learnt from `texts`.

    The pieces are trained with the same pre-tokenisation T5Tokenizer applies (whitespace split,
    then the "▁" metaspace), so the trained vocabulary drops straight into the T5Tokenizer class:
    save_pretrained/from_pretrained round-trip it like any hub T5 tokenizer.
    """
    # Single-threaded training is what makes the vocabulary, and so the model, reproducible.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tokenizers import Tokenizer, pre_tokenizers, trainers
    from tokenizers.models import Unigram
    from transformers import T5Tokenizer

    corpus = sorted({text.strip() for text in texts if text and text.strip()})
    if not corpus:
        raise ValueError("no text to train the tokenizer on")
    raw = Tokenizer(Unigram())
    raw.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        ]
    )
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        unk_token="<unk>",
        max_piece_length=16,
        show_progress=False,
    )
    raw.train_from_iterator(corpus, trainer=trainer)
    pieces = json.loads(raw.to_str())["model"]["vocab"]
    if [str(piece) for piece, _ in pieces[:3]] != list(SPECIAL_TOKENS):
        raise RuntimeError(f"unexpected special tokens in the trained vocabulary: {pieces[:3]}")
    # The trainer is not reproducible to the bit: scores wobble in the last digits (parallel
    # float sums) and single characters it must keep get made-up scores in hash order. Rounded
    # scores, one fixed score for every single character, and a total order make the saved
    # tokenizer byte-identical for the same texts. Characters always lose to longer pieces.
    learnt = [(str(piece), round(float(score), 4)) for piece, score in pieces[3:]]
    floor = round(min((score for _, score in learnt), default=0.0) - 1.0, 4)
    words = [(piece, score) for piece, score in learnt if len(piece) > 1]
    chars = {piece for piece, _ in learnt if len(piece) == 1} | set(_ALPHABET)
    vocab = [(token, 0.0) for token in SPECIAL_TOKENS]
    vocab += sorted(words, key=lambda item: (-item[1], item[0]))
    vocab += [(char, floor) for char in sorted(chars)]
    # Sentinels go last, in reverse order, as in T5's own vocabulary.
    vocab += [(f"<extra_id_{i}>", 0.0) for i in range(extra_ids - 1, -1, -1)]
    return T5Tokenizer(vocab=vocab, extra_ids=extra_ids, model_max_length=512)


def build_tiny_model(
    texts: Iterable[str], seed: int = 42, spec: TinyModelSpec | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer): a freshly initialised tiny T5 and a tokenizer trained on `texts`."""
    import torch
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    spec = spec or TinyModelSpec()
    tokenizer = train_tokenizer(texts, vocab_size=spec.vocab_size)
    config = T5Config(  # type: ignore[call-arg]  # T5Config takes PretrainedConfig's kwargs
        vocab_size=len(tokenizer),
        d_model=spec.d_model,
        d_ff=spec.d_ff,
        d_kv=spec.d_kv,
        num_heads=spec.num_heads,
        num_layers=spec.num_layers,
        num_decoder_layers=spec.num_decoder_layers,
        dropout_rate=spec.dropout_rate,
        feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    # A private generator keeps the caller's global RNG untouched and the weights reproducible.
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = T5ForConditionalGeneration(config)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=spec.max_new_tokens,
    )
    return model, tokenizer


def save_tiny_model(
    output_dir: str | Path, texts: Iterable[str], seed: int = 42, spec: TinyModelSpec | None = None
) -> Path:
    """Build the tiny model and write it with save_pretrained (safetensors) into `output_dir`."""
    model, tokenizer = build_tiny_model(texts, seed=seed, spec=spec)
    path = Path(output_dir)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())
