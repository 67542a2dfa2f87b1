# Default sampling end to end: what a request that omits the fields gets, where it comes from (flags, the model
# file, llama.cpp's values), and that the startup line and /v1/models say so.
import requests

from conftest import ValetProcess

LLAMA_CPP = {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "repetition_penalty": 1.0}
QUESTION = [{"role": "user", "content": "Which planet is known as the Red Planet?"}]


def card(server):
    r = requests.get(server.base + "/v1/models", headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["data"][0]


def test_models_and_startup_line_show_llama_cpp_defaults_for_a_file_without_its_own(valet):
    # SmolLM2's GGUF has no general.sampling.* keys, so llama.cpp's values are in force.
    assert card(valet)["sampling_defaults"] == LLAMA_CPP
    assert "sampling defaults temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1.0" in valet.log_text()


def test_flags_and_variables_set_the_defaults_and_requests_still_override_them():
    import os

    env_before = os.environ.get("VALET_TOP_K")
    os.environ["VALET_TOP_K"] = "5"
    try:
        server = ValetProcess("--ctx-size", "1024", "--temperature", "0", "--min-p", "0.1")
    finally:
        if env_before is None:
            os.environ.pop("VALET_TOP_K")
        else:
            os.environ["VALET_TOP_K"] = env_before
    try:
        assert card(server)["sampling_defaults"] == {**LLAMA_CPP, "temperature": 0.0, "top_k": 5, "min_p": 0.1}
        client = server.client()
        # Temperature 0 by default: every request without sampling fields is the same greedy answer.
        answers = {client.chat.completions.create(model=server.model_name, messages=QUESTION, max_tokens=16)
                   .choices[0].message.content for _ in range(3)}
        explicit = client.chat.completions.create(model=server.model_name, messages=QUESTION, max_tokens=16,
                                                  temperature=0).choices[0].message.content
        assert answers == {explicit}
        assert "Mars" in explicit
        # A request's own temperature wins over the server's 0.
        sampled = {client.chat.completions.create(model=server.model_name, messages=QUESTION, max_tokens=16,
                                                  temperature=1.5, seed=s).choices[0].message.content
                   for s in range(4)}
        assert sampled != {explicit}
    finally:
        server.stop()
