"""The proposal distribution: which instruction the model is given with the question. Every strategy takes
``prompt=`` (a template name, or in the library and CLI a text file); ``None`` keeps its default: the problem's
own instruction (``cot``), PAL's for ``program``, the tool protocol's for ``tir``.

>>> sorted(TEMPLATES)
['boxed', 'cot', 'direct', 'none', 'pal', 'tir']
>>> instruction("boxed")
'Please reason step by step, and put your final answer within \\\\boxed{}.'
"""

from __future__ import annotations

import functools
from pathlib import Path

from ponder.errors import InvalidRequest
from ponder.types import Message, Problem, Prompt

COT = "Reason step by step, then give the final answer on the last line as: The answer is <answer>."
BOXED = "Please reason step by step, and put your final answer within \\boxed{}."  # Qwen2.5-Math's own
PAL = ("Solve this by writing a Python program that computes the answer and prints only the final "
       "answer with print(). Reply with the program in one ```python code block.")
TIR = ("Solve the problem step by step. Whenever a calculation is needed, write a Python code block "
       "(```python ... ```) that prints the result; its output will be shown to you in an ```output "
       "block, and you continue from there. Put the final answer in \\boxed{}.")
DIRECT = "Give only the final answer, with no working, on one line as: The answer is <answer>."  # no thinking at all
TEMPLATES: dict[str, str | None] = {"cot": COT, "boxed": BOXED, "pal": PAL, "tir": TIR, "direct": DIRECT, "none": None}


def instruction(ref: str) -> str | None:
    """A template's instruction, or a text file's content (a path: not accepted by the server)."""
    if ref in TEMPLATES:
        return TEMPLATES[ref]
    path = Path(ref)
    if not path.is_file():
        raise InvalidRequest(f"prompt must be one of {', '.join(sorted(TEMPLATES))} or a text file, got {ref!r}")
    text = path.read_text(encoding="utf-8").strip()
    if len(text) > 20000:
        raise InvalidRequest(f"the prompt file {path} is over 20000 characters")
    return text or None


def with_shots(prompt: Prompt, problem: Problem, bank: str, k: int) -> Prompt:
    """``prompt`` with ``k`` exemplars of ``bank`` before the question, each a user turn (its question, with the same
    instruction) and an assistant turn (the verified path); an exemplar of this very question is skipped."""
    exemplars = [e for e in _load(bank) if e.question.strip() != problem.question.strip()][:k]
    if len(exemplars) < k:
        raise InvalidRequest(f"the exemplar bank {bank} has {len(exemplars)} usable exemplars, fewer than shots={k}")
    if not prompt.messages:
        return prompt
    head = tuple(m for m in prompt.messages if m.role == "system")
    instruction_text = prompt.messages[-1].content[len(problem.question):]  # what the template appended
    turns: tuple[Message, ...] = ()
    for e in exemplars:
        turns += (Message("user", e.question + instruction_text), Message("assistant", e.answer))
    return Prompt(messages=head + turns + (prompt.messages[-1],))


def _load(bank: str):
    path = Path(bank)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return _load_cached(str(path.resolve()), stamp)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, stamp: int):
    """A bank read once per file version (strategies ask for the prompt on every request)."""
    from ponder.traces.exemplars import load_bank

    return load_bank(path)
