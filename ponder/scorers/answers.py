"""Final-answer extraction and normalisation: what a vote is counted on.

Extraction tries, in order, the forms a model is asked for or falls back to (the last occurrence of each wins):

1. ``\\boxed{...}`` (balanced braces, nested allowed);
2. ``<answer>...</answer>`` tags;
3. a phrase: "The final answer is X", "The answer is X", "Answer: X", "#### X";
4. the last number in the text.

Text cut off before it ended (``complete=False``: a path that ran into its token limit or deadline) gives an answer
only where it states one (1-3, a phrase leading with a number or a box): its last number, or a phrase's clause, is
wherever the cut fell, so such a path abstains instead of voting for it.

>>> extract_answer("so 3 + 4 = 7, hence \\\\boxed{7}.")
'7'
>>> extract_answer("Step 1: 12 apples. The answer is: **$1,250.00**.")
'1,250.00'
>>> extract_answer("first 3, then 18 cookies")
'18'
>>> extract_answer("no idea") is None
True
>>> normalize_answer("$1,250.00")
'1250'
>>> normalize_answer("\\\\frac{1}{2}") == normalize_answer("0.5")
True
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["extract_answer", "normalize_answer", "answer_key", "ANSWER_INSTRUCTION"]

ANSWER_INSTRUCTION = "Reason step by step, then give the final answer on the last line as: The answer is <answer>."

_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|[-+]?\.\d+"
_NUMBER_RE = re.compile(_NUMBER)
_PHRASE_RE = re.compile(
    r"(?:the\s+final\s+answer\s+is|final\s+answer\s*:|the\s+answer\s+is|answer\s*:|####)\s*:?\s*(?P<rest>[^\n]*)",
    re.IGNORECASE,
)
_TAG_RE = re.compile(r"<answer>\s*(?P<body>.*?)\s*</answer>", re.IGNORECASE | re.DOTALL)
_MAX_ANSWER_CHARS = 200


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` with balanced braces."""
    last = None
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            last = text[m.end() : i - 1]
    return last


def _clean(ans: str) -> str | None:
    ans = ans.strip()
    ans = re.sub(r"^[*_`\s]+|[*_`\s]+$", "", ans)  # markdown emphasis around the answer
    ans = ans.strip().rstrip(".").strip()
    if ans.startswith("$") and ans.endswith("$") and len(ans) > 1 and ans.count("$") == 2:
        ans = ans[1:-1].strip()
    if not ans:
        return None
    return ans[:_MAX_ANSWER_CHARS]


def extract_answer(text: str, complete: bool = True) -> str | None:
    """The final answer stated in ``text``, or ``None`` when there is none (see the module docstring for
    ``complete``).

    >>> extract_answer("14 * 3 = 42, then 42 + 4", complete=False) is None, extract_answer("The answer is 8 and", complete=False)
    (True, '8')
    """
    if not text:
        return None
    boxed = _boxed(text)
    if boxed is not None and boxed.strip():
        return _clean(boxed)
    tags = _TAG_RE.findall(text)
    if tags and tags[-1].strip():
        return _clean(tags[-1])
    phrases = list(_PHRASE_RE.finditer(text))
    for m in reversed(phrases):
        rest = m.group("rest")
        inner = _boxed(rest)
        if inner is not None:
            return _clean(inner)
        # "The answer is 42 apples." -> the number when the phrase leads with one, else the phrase's clause
        num = re.match(r"\s*[*_`$\\(]*\s*(" + _NUMBER + r")", rest)
        if num:
            return _clean(num.group(1))
        if not complete:
            continue
        clause = re.split(r"(?<!\d)\.(?!\d)|\s+(?:because|since|as)\s+", rest, maxsplit=1)[0]
        cleaned = _clean(clause)
        if cleaned:
            return cleaned
    numbers = _NUMBER_RE.findall(text) if complete else []
    if numbers:
        return _clean(numbers[-1])
    return None


def _latex_to_plain(s: str) -> str:
    s = re.sub(r"\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}", r"(\1)/(\2)", s)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\,", "").replace("\\ ", " ")
    s = s.replace("\\%", "%").replace("\\$", "$").replace("^\\circ", "").replace("^{\\circ}", "")
    return s


def _as_number(s: str) -> Fraction | None:
    t = s.replace(",", "").replace(" ", "").replace("$", "").rstrip("%")
    t = re.sub(r"^\((.*)\)/\((.*)\)$", r"\1/\2", t)
    m = re.fullmatch(r"([-+]?\d*\.?\d+)(?:/([-+]?\d*\.?\d+))?", t)
    if not m:
        return None
    try:
        num = Fraction(m.group(1))
        if m.group(2) is not None:
            den = Fraction(m.group(2))
            if den == 0:
                return None
            num /= den
        return num
    except (ValueError, ZeroDivisionError):
        return None


def normalize_answer(answer: str) -> str:
    """A canonical form so that equal answers vote together: numbers become exact decimals or fractions,
    LaTeX wrappers, units in ``\\text{}``, dollar signs, thousands separators and case are dropped."""
    s = _latex_to_plain(answer.strip())
    s = s.strip().strip("$").strip()
    s = re.sub(r"^[a-zA-Z]\s*=\s*", "", s)  # "x = 5" -> "5"
    value = _as_number(s)
    if value is None:
        # a number followed by a unit word ("18 apples", "5 km")
        m = re.fullmatch(r"(" + _NUMBER + r")\s*[a-zA-Z%°]+\.?", s)
        if m:
            value = _as_number(m.group(1))
    if value is not None:
        if value.denominator == 1:
            return str(value.numerator)
        f = float(value)
        if Fraction(repr(f)) == value:
            return repr(f)
        return f"{value.numerator}/{value.denominator}"
    return re.sub(r"\s+", " ", s).lower().rstrip(".")


def answer_key(text: str) -> str | None:
    """The normalised final answer of a completion: the key majority voting counts on."""
    ans = extract_answer(text)
    return normalize_answer(ans) if ans is not None else None
