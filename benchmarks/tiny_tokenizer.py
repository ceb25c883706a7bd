"""Write a tiny word-level Hugging Face tokenizer into a directory, so GuideLLM and AIPerf run offline.

Both tools want a tokenizer (to size synthetic prompts and count output tokens) and would otherwise
download one from the Hugging Face Hub, which this machine cannot reach. A WordLevel model with a
whitespace split counts each of the benchmark server's chunks (`" s<ns>"`) as exactly one token.

    <tool venv>/bin/python benchmarks/tiny_tokenizer.py DIR

Runs under a tool's own interpreter (it needs `tokenizers` and `transformers`, which chatconf does
not depend on). `AutoTokenizer.from_pretrained(DIR)` loads the result.
"""

from __future__ import annotations

import sys
from pathlib import Path


def build(out: Path) -> None:
    """Save tokenizer.json, tokenizer_config.json and special_tokens_map.json into `out`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[BOS]": 1, "[EOS]": 2}
    for i in range(2000):
        vocab.setdefault(f"w{i}", len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")   # joins words with single spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", bos_token="[BOS]",
                                   eos_token="[EOS]", model_max_length=1_000_000)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: tiny_tokenizer.py DIR", file=sys.stderr)
        return 2
    try:
        build(Path(sys.argv[1]))
    except ImportError as exc:
        print(f"error: this interpreter lacks {exc.name} (run it with a tool's venv python)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
