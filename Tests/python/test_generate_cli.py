"""`valet generate` end to end with the default model: the sanity answers llama.cpp also gives at temperature 0."""
import os
import subprocess

import pytest

VALET = os.environ.get("VALET_BIN", ".build/release/valet")
MODEL = os.environ.get("VALET_TEST_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")


def generate(*args):
    return subprocess.run([VALET, "generate", "--model", MODEL, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("question,answer", [
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the largest ocean on Earth?", "Pacific"),
])
def test_chat_sanity_answers(question, answer):
    out = generate("--chat", "--prompt", question, "--max-tokens", "40", "--threads", "2")
    assert out.returncode == 0, out.stderr
    assert answer in out.stdout


def test_greedy_is_deterministic_and_seeded_sampling_repeats():
    a = generate("--prompt", "Once upon a time", "--max-tokens", "24")
    b = generate("--prompt", "Once upon a time", "--max-tokens", "24")
    assert a.returncode == 0 and a.stdout == b.stdout and a.stdout.strip()
    s1 = generate("--prompt", "Once upon a time", "--max-tokens", "24", "--temperature", "0.9", "--seed", "7")
    s2 = generate("--prompt", "Once upon a time", "--max-tokens", "24", "--temperature", "0.9", "--seed", "7")
    assert s1.returncode == 0 and s1.stdout == s2.stdout


def test_missing_model_is_one_line_error():
    out = subprocess.run([VALET, "generate", "--model", "/nonexistent/model.gguf", "--prompt", "hi"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "/nonexistent/model.gguf" in lines[0]
