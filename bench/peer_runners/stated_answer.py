"""The smallest fix the peers' self-consistency needs to vote on answers: the number a response states as its
answer. Standard library only: each peer runner imports it inside the peer's own virtual environment (a runner's
folder is first on its path), where no ponder code runs."""

import re


def answer_projection(text: str) -> str:
    """The number after "The answer is", else the last number, else the stripped text.

    >>> answer_projection("so 1,200 + 5 = 1,205. The answer is: $1,205"), answer_projection("no numbers ")
    ('1205', 'no numbers')
    """
    m = re.findall(r"answer is\s*[:$]*\s*(-?[\d,]*\.?\d+)", text or "", flags=re.I)
    if m:
        return m[-1].replace(",", "")
    nums = re.findall(r"-?\d[\d,]*\.?\d*", text or "")
    return nums[-1].replace(",", "").rstrip(".") if nums else (text or "").strip()
