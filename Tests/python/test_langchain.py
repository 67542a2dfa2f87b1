# LangChain's structured output and tool binding against a real `valet serve` and the real model: every method
# LangChain offers yields a parsed answer, because the grammar constrains what the model may write.
import pydantic
import pytest

langchain_openai = pytest.importorskip("langchain_openai")


class Capital(pydantic.BaseModel):
    """The capital city of a country."""
    country: str
    city: str


def llm(valet, **kw):
    return langchain_openai.ChatOpenAI(base_url=valet.base + "/v1", api_key=valet.api_key or "none",
                                       model=valet.model_name, temperature=0, max_tokens=64, max_retries=0, **kw)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output_parses_into_the_model(valet, method):
    out = llm(valet).with_structured_output(Capital, method=method).invoke("What is the capital of France?")
    assert isinstance(out, Capital)
    assert out.country and out.city


def test_with_structured_output_json_mode_parses(valet):
    out = llm(valet).with_structured_output(None, method="json_mode").invoke(
        "Reply in JSON: the capital of Italy, with keys country and city.")
    assert isinstance(out, dict)


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


def test_bind_tools_with_a_forced_choice_calls_the_tool(valet):
    msg = llm(valet).bind_tools([get_weather], tool_choice="get_weather").invoke("How is the weather in Paris?")
    assert [c["name"] for c in msg.tool_calls] == ["get_weather"]
    assert isinstance(msg.tool_calls[0]["args"].get("city"), str)
    # The call's arguments run the tool, and the result goes back as a tool message LangChain builds.
    from langchain_core.messages import HumanMessage, ToolMessage
    result = get_weather(**msg.tool_calls[0]["args"])
    follow = llm(valet).bind_tools([get_weather]).invoke([
        HumanMessage("How is the weather in Paris?"), msg,
        ToolMessage(result, tool_call_id=msg.tool_calls[0]["id"])])
    assert follow.content or follow.tool_calls
