#!/usr/bin/env python3
# Validation helper: tokenizes text with the BPE vocabulary and merges stored in a gpt2-style GGUF, using the
# HF `tokenizers` package (optional; not needed by the oracle or CI), so prompt token ids can be derived independently.
"""
usage: gguf_tokenize.py MODEL.gguf [--chat] TEXT     prints comma-separated token ids
       gguf_tokenize.py MODEL.gguf --decode 1,2,3     prints the text of the ids

--chat wraps TEXT as one ChatML user turn after SmolLM2's default system message, with the assistant turn opened.
Only the gpt2 tokenizer model is handled: byte-level BPE, digits split one by one as the `smollm` pre-tokenizer does.
"""
import sys

import gguf

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(user: str) -> str:
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")


def build(model: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, AddedToken

    r = gguf.GGUFReader(model)
    f = r.fields
    assert f["tokenizer.ggml.model"].contents() == "gpt2", "only gpt2 (byte-level BPE) vocabularies"
    tokens = f["tokenizer.ggml.tokens"].contents()
    types = f["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in f["tokenizer.ggml.merges"].contents()]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    # Control tokens (GGUF token type 3) such as <|im_start|> are matched whole, never split by BPE.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    return tok


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    tok = build(argv[1])
    if argv[2] == "--decode":
        print(tok.decode([int(x) for x in argv[3].split(",")], skip_special_tokens=False))
        return 0
    text = chatml(argv[3]) if argv[2] == "--chat" else argv[2]
    print(",".join(str(i) for i in tok.encode(text).ids))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
