#!/usr/bin/env python3
"""Independent reference for Valet's tokenizer and chat-template tests.

Reads a JSON request file (argv[1]) and prints JSON answers:
  - token ids from a Hugging Face `tokenizers` BPE built from the GGUF vocabulary and merges, with the
    pre-tokenizer the model's `tokenizer.ggml.pre` stands for;
  - pre-tokenizer pieces per split rule, both from `tokenizers` (where a Hugging Face model uses that rule)
    and from the `regex` module applying llama.cpp's expressions one after another;
  - chat renders of the GGUF's own `tokenizer.chat_template` and of the public family templates, via jinja2.
Run by Tests/InferenceTests/TokenizerTests.swift and ChatTemplateTests.swift.
"""
import json
import sys

import numpy as np
from gguf import GGUFReader

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"""
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")

# llama.cpp's expression lists per pre-tokenizer: each one splits the pieces the previous one left.
LLAMA_CPP_EXPRESSIONS = {
    "gpt2": [GPT2],
    "smollm": [r"\p{N}", GPT2],
    "llama3": [LLAMA3],
    "qwen2": [QWEN2],
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
}


def regex_split(text, expressions):
    import regex
    pieces = [text] if text else []
    for expr in expressions:
        pattern = regex.compile(expr)
        out = []
        for piece in pieces:
            last = 0
            for m in pattern.finditer(piece):
                if m.start() > last:
                    out.append(piece[last:m.start()])
                if m.end() > m.start():
                    out.append(m.group(0))
                last = m.end()
            if last < len(piece):
                out.append(piece[last:])
        pieces = out
    return pieces


def hf_pre_tokenizer(rule):
    from tokenizers import Regex, pre_tokenizers as pt
    byte_level = pt.ByteLevel(add_prefix_space=False, use_regex=False)
    if rule == "gpt2":
        return pt.ByteLevel(add_prefix_space=False, use_regex=True)
    if rule == "smollm":
        return pt.Sequence([pt.Digits(individual_digits=True), pt.ByteLevel(add_prefix_space=False, use_regex=True)])
    if rule in ("llama3", "qwen2"):
        pattern = LLAMA3 if rule == "llama3" else QWEN2
        return pt.Sequence([pt.Split(Regex(pattern), behavior="isolated", invert=False), byte_level])
    return None


def hf_split(text, rule):
    pre = hf_pre_tokenizer(rule)
    if pre is None:
        return None
    pieces = [text[a:b] for _, (a, b) in pre.pre_tokenize_str(text)]
    assert "".join(pieces) == text, (text, pieces)
    return pieces


def field_strings(reader, key):
    f = reader.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def field_scalar(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    v = f.parts[f.data[0]]
    if f.types[0].name == "STRING":
        return bytes(v).decode("utf-8")
    return np.asarray(v).tolist()[0]


GGUF_PRE_TO_RULE = {"smollm": "smollm", "llama-bpe": "llama3", "qwen2": "qwen2", "gpt-2": "gpt2", "default": "default"}


def hf_tokenizers(reader, pre=None):
    from tokenizers import AddedToken, Tokenizer, decoders, models

    tokens = field_strings(reader, "tokenizer.ggml.tokens")
    types = [int(reader.fields["tokenizer.ggml.token_type"].parts[i][0]) for i in reader.fields["tokenizer.ggml.token_type"].data]
    merges = [tuple(m.split(" ", 1)) for m in field_strings(reader, "tokenizer.ggml.merges")]
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    rule = GGUF_PRE_TO_RULE[pre or field_scalar(reader, "tokenizer.ggml.pre")]

    def build(with_specials):
        tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=(rule == "llama3")))
        tk.pre_tokenizer = hf_pre_tokenizer(rule)
        tk.decoder = decoders.ByteLevel()
        if with_specials:
            tk.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                                   for i, t in enumerate(types) if t in (2, 3, 4)])
        return tk

    return build(True), build(False)


# Public chat templates of each family, as their model cards' tokenizer_config.json carry them.
FAMILY_TEMPLATES = {
    "chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    "llama3": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
    "llama2": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
    "mistral": "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
    "zephyr": "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
    "gemma": "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
}
# Llama 3.1's template without its tool-calling branches (Valet renders conversations without tools).
FAMILY_TEMPLATES["llama3.1"] = """{{- bos_token }}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""
FAMILY_SPECIALS = {
    "llama3.1": ("<|begin_of_text|>", "<|eot_id|>"),
    "chatml": ("<s>", "</s>"), "llama3": ("<|begin_of_text|>", "<|eot_id|>"), "llama2": ("<s>", "</s>"),
    "mistral": ("<s>", "</s>"), "zephyr": ("<s>", "</s>"), "gemma": ("<bos>", "<eos>"),
}


def render(template, messages, add_generation_prompt, bos, eos):
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    # The settings transformers renders chat templates with.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                bos_token=bos, eos_token=eos)
    except TemplateError as e:
        return {"error": str(e)}


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    out = {}
    if "split" in req:
        out["split"] = {rule: [{"regex": regex_split(t, exprs), "hf": hf_split(t, rule)} for t in req["split"]]
                        for rule, exprs in LLAMA_CPP_EXPRESSIONS.items()}
    reader = GGUFReader(req["model"]) if req.get("model") else None
    if reader is not None and "texts" in req:
        special, plain = hf_tokenizers(reader)
        out["special"] = [special.encode(t, add_special_tokens=False).ids for t in req["texts"]]
        out["plain"] = [plain.encode(t, add_special_tokens=False).ids for t in req["texts"]]
        out["decoded"] = [special.decode(ids, skip_special_tokens=False) for ids in out["special"]]
        # The same vocabulary under the other pre-tokenizers, to check their whole encode path too.
        out["by_pre"] = {}
        for pre in req.get("pre", []):
            tk, _ = hf_tokenizers(reader, pre)
            out["by_pre"][pre] = [tk.encode(t, add_special_tokens=False).ids for t in req["texts"]]
    if "conversations" in req:
        renders = {}
        if reader is not None:
            tokens = field_strings(reader, "tokenizer.ggml.tokens")
            bos = tokens[field_scalar(reader, "tokenizer.ggml.bos_token_id")]
            eos = tokens[field_scalar(reader, "tokenizer.ggml.eos_token_id")]
            template = field_scalar(reader, "tokenizer.chat_template")
            renders["model"] = [[render(template, c, g, bos, eos) for g in (False, True)] for c in req["conversations"]]
        for family, template in FAMILY_TEMPLATES.items():
            bos, eos = FAMILY_SPECIALS[family]
            renders[family] = [[render(template, c, g, bos, eos) for g in (False, True)] for c in req["conversations"]]
        out["renders"] = renders
    if req.get("templates"):
        out["templates"] = {f: [t, *FAMILY_SPECIALS[f]] for f, t in FAMILY_TEMPLATES.items()}
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
