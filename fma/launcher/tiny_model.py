"""A tiny random-weight Llama with its own tokenizer, built locally for tests and benchmarks.

No model hub is needed: the tokenizer is a byte-level BPE trained on a few sentences, and
the weights are random, so the text it generates is nonsense, but the whole engine runs:
load, tokenise, prefill, decode, detokenise. The shape suits vLLM's CPU backend (attention
needs ``head_dim`` 64 or more; 16 is rejected).

Needs ``torch``, ``transformers`` and ``tokenizers`` (the vLLM venv has them):
``python -m fma.launcher.tiny_model OUT_DIR``.
"""

import importlib
import json
import sys
from pathlib import Path
from typing import Any, Final

HIDDEN_SIZE: Final = 128
HEAD_COUNT: Final = 2
LAYER_COUNT: Final = 2
INTERMEDIATE_SIZE: Final = 256
VOCAB_SIZE_MAX: Final = 512
CONTEXT_TOKENS_MAX: Final = 512
SEED: Final = 1234

_CORPUS: Final = (
    "Fast model actuation starts inference servers quickly.",
    "A launcher keeps vLLM imported and forks a new instance in seconds.",
    "Sleeping instances move their weights to host memory and wake up fast.",
    "The requester holds the GPUs and the provider runs the model.",
    "Hello world, this is a tiny language model for tests.",
    "The quick brown fox jumps over the lazy dog.",
    "Kubernetes schedules pods on nodes with accelerators.",
    "Numbers 0 1 2 3 4 5 6 7 8 9 and punctuation . , ; : ! ?",
)
_SPECIAL_TOKENS: Final = ("<unk>", "<s>", "</s>")


def _build_tokenizer(out_dir: Path) -> int:
    tokenizers: Any = importlib.import_module("tokenizers")
    tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token=_SPECIAL_TOKENS[0]))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE_MAX,
        special_tokens=list(_SPECIAL_TOKENS),
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(_CORPUS), trainer=trainer)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": "<unk>",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "model_max_length": CONTEXT_TOKENS_MAX,
        "clean_up_tokenization_spaces": False,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps({"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}, indent=2)
    )
    return int(tokenizer.get_vocab_size())


def engine_options(model_dir: Path, port: int) -> list[str]:
    """vLLM's options to serve the tiny model on the CPU: float32, eager, a short context."""
    return [
        "--model",
        str(model_dir),
        "--served-model-name",
        "tiny",
        "--dtype",
        "float32",
        "--enforce-eager",
        "--max-model-len",
        "256",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def build(out_dir: Path) -> Path:
    """Write the model (config, safetensors weights, tokenizer) into ``out_dir``; return it."""
    torch: Any = importlib.import_module("torch")
    transformers: Any = importlib.import_module("transformers")
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_size = _build_tokenizer(out_dir)
    torch.manual_seed(SEED)
    config = transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=LAYER_COUNT,
        num_attention_heads=HEAD_COUNT,
        num_key_value_heads=HEAD_COUNT,
        max_position_embeddings=CONTEXT_TOKENS_MAX,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    transformers.GenerationConfig(bos_token_id=1, eos_token_id=2).save_pretrained(str(out_dir))
    return out_dir


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m fma.launcher.tiny_model OUT_DIR", file=sys.stderr)
        raise SystemExit(2)
    print(build(Path(sys.argv[1])))
