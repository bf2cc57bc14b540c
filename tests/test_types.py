import pytest

from ponder.errors import InvalidRequest
from ponder.types import Budget, GenerationRequest, Message, Prompt, Problem, SamplingParams, Usage


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": -1}, "temperature must be in [0, 2], got -1"),
    ({"temperature": 1e308}, "temperature must be in [0, 2], got 1e+308"),
    ({"top_p": 0}, "top_p must be in (0, 1], got 0"),
    ({"top_k": -3}, "top_k must be in [0, 1000000], got -3"),
    ({"top_k": 2**70}, f"top_k must be in [0, 1000000], got {2**70}"),
    ({"seed": 2**32}, f"seed must be in [0, {2**32 - 1}], got {2**32}"),
    ({"min_p": 1.0}, "min_p must be in [0, 1), got 1.0"),
    ({"max_tokens": 0}, "max_tokens must be in [1, 1048576], got 0"),
    ({"logprobs": 21}, "logprobs must be in [0, 20], got 21"),
    ({"stop": ("",)}, "stop strings must be non-empty strings"),
    ({"temperature": float("nan")}, "temperature must be in [0, 2], got nan"),
    ({"stop": ("x",) * 17}, "at most 16 stop strings of at most 256 characters"),
])
def test_sampling_params_say_what_is_wrong(kwargs, message):
    with pytest.raises(InvalidRequest) as e:
        SamplingParams(**kwargs)
    assert str(e.value) == message


def test_stop_list_is_normalised_to_a_tuple():
    assert SamplingParams(stop=["\n\n"]).stop == ("\n\n",)


def test_requests_and_prompts_validate():
    with pytest.raises(InvalidRequest, match="n must be in"):
        GenerationRequest(Prompt.chat("hi"), n=0)
    with pytest.raises(InvalidRequest, match="either messages or raw text"):
        Prompt()
    with pytest.raises(InvalidRequest, match="role"):
        Message("robot", "hi")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="empty"):
        Problem("   ")
    with pytest.raises(InvalidRequest, match="max_seconds"):
        Budget(max_seconds=0)


def test_usage_adds_up():
    u = Usage(10, 4, 5, 1.0, 1) + Usage(3, 0, 2, 0.5, 1)
    assert (u.prompt_tokens, u.cached_prompt_tokens, u.completion_tokens, u.requests) == (13, 4, 7, 2)
    assert u.evaluated_prompt_tokens == 9 and u.total_tokens == 20
    assert Usage.total([]) == Usage()


def test_problem_prompt_carries_the_answer_instruction():
    p = Problem("What is 2+2?", system="Be brief.")
    msgs = p.prompt().messages
    assert msgs[0].role == "system" and "The answer is" in msgs[1].content
    assert Problem("x", instruction=None).prompt().messages[0].content == "x"
