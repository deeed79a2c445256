"""What the model sees in each benchmark, and what a perfect answer (the oracle) looks like.

Code generation:

* ``humaneval``, ``synthetic``: the training prompt (``code_generation_messages``: statement,
  fenced starter code, "Present the code in ```python ...``` at the end").
* ``lcb_code_generation``: LiveCodeBench's layout: a system message, then ``### Question``,
  ``### Format`` (complete the starter code, or read stdin and write stdout) with a fenced
  template, and ``### Answer: (use the provided format with backticks)``.
* ``leetcode_contest``: the published ``prompt_sft`` as is (it holds the ``class Solution``
  stub and the answer instruction); rows with only ``prompt`` get the training instruction.

Reasoning (LiveCodeBench style, our wording):

* code execution of a call: the program and ``assert <call> == ??`` between ``[PYTHON]``
  tags, one worked example, the answer as the completed assertion in ``[ANSWER]`` tags;
* code execution of a stdin program: the program and its input (``[INPUT]`` tags), the
  printed output in ``[ANSWER]`` tags;
* test-output prediction: ``### Question``, the function signature, and the assertion to
  complete in a fenced ``python`` block (stdin tests: the output text in a fenced block).

Oracle completions are written in exactly those answer formats, so an oracle run checks
extraction and judging as well as the labels.
"""

from __future__ import annotations

from coderl_jax.data.problems import Problem, code_generation_messages
from coderl_jax.data.reasoning import ReasoningItem
from coderl_jax.evals.answers import CLOSE_TAG, OPEN_TAG, output_kind

Messages = list[dict[str, str]]

LCB_SYSTEM = (
    "You are an expert Python programmer. You will be given a programming problem and will "
    "write a correct Python program that meets its specification and passes all tests."
)
_LCB_CALL_FORMAT = (
    "### Format: Complete the following starter code and enclose your code within "
    "delimiters.\n```python\n{starter}\n```"
)
_LCB_STDIN_FORMAT = (
    "### Format: Read the inputs from stdin, solve the problem and write the answer to stdout "
    "(do not test directly on the sample inputs). Enclose your code within delimiters as "
    "follows.\n```python\n# YOUR CODE HERE\n```"
)
_EXECUTION_CALL = f"""\
You are given a Python function and an assertion that calls it on an input. Complete the \
assertion with a literal (no expressions, no function calls) equal to the value the call \
returns, even if the function looks incorrect or incomplete. Think through the execution \
step by step, then give the full assertion with the correct output between {OPEN_TAG} and \
{CLOSE_TAG}, as in the example.

[PYTHON]
def f(s):
    return s + s[::-1]
assert f("ab") == ??
[/PYTHON]
{OPEN_TAG}
assert f("ab") == "abba"
{CLOSE_TAG}

[PYTHON]
{{program}}
assert {{call}} == ??
[/PYTHON]"""
_EXECUTION_STDIN = f"""\
You are given a Python program and the text on its standard input. Work out exactly what the \
program prints, even if it looks incorrect. Think through the execution step by step, then \
give the printed output and nothing else between {OPEN_TAG} and {CLOSE_TAG}, each tag on a \
line of its own, as in the example.

[PYTHON]
n = int(input())
print(n * 2)
[/PYTHON]
[INPUT]
21
[/INPUT]
{OPEN_TAG}
42
{CLOSE_TAG}

[PYTHON]
{{program}}
[/PYTHON]
[INPUT]
{{stdin}}
[/INPUT]"""


def code_messages(benchmark: str, problem: Problem) -> Messages:
    """Chat messages asking for a solution to ``problem`` in ``benchmark``'s format."""
    if benchmark == "lcb_code_generation":
        fmt = (
            _LCB_CALL_FORMAT.format(starter=problem.starter_code.rstrip())
            if problem.starter_code
            else _LCB_STDIN_FORMAT
        )
        user = (
            f"### Question:\n{problem.statement.strip()}\n\n{fmt}\n\n"
            "### Answer: (use the provided format with backticks)\n"
        )
        return [{"role": "system", "content": LCB_SYSTEM}, {"role": "user", "content": user}]
    if benchmark == "leetcode_contest" and problem.metadata.get("prompt_field") == "prompt_sft":
        return [{"role": "user", "content": problem.statement}]
    return code_generation_messages(problem)


def call_arguments(item: ReasoningItem) -> str:
    """A test-output item's input as call arguments: one argument per line, joined by ", "."""
    return ", ".join(line.strip() for line in item.input.split("\n") if line.strip())


def _function_name(item: ReasoningItem) -> str:
    if not item.function_name:
        raise ValueError(f"reasoning item {item.id}: test_output needs function_name")
    return item.function_name


def reasoning_messages(item: ReasoningItem) -> Messages:
    """Chat messages of a code-reasoning question (module docstring)."""
    if item.task == "code_execution":
        if item.metadata.get("input_kind") == "stdin":
            text = _EXECUTION_STDIN.format(program=item.program.rstrip(), stdin=item.input.rstrip())
        else:
            text = _EXECUTION_CALL.format(program=item.program.rstrip(), call=item.input)
        return [{"role": "user", "content": text}]
    parts = [f"### Question:\n{item.statement.strip()}"]
    if item.starter_code:
        parts.append(f"### Function Signature:\n```python\n{item.starter_code.rstrip()}\n```")
    if output_kind(item) == "stdout":
        parts.append(
            f"### Test input:\n```\n{item.input.rstrip()}\n```\n\nWrite exactly what a correct "
            "solution prints for this input, in a ``` code block."
        )
    else:
        parts.append(
            "### Format: Complete the assertion below with the value the function returns on "
            "this input, written as a literal (no expressions), and give the completed "
            f"assertion in a ```python code block.\n```python\nassert {_function_name(item)}("
            f"{call_arguments(item)}) == ??\n```"
        )
    return [{"role": "user", "content": "\n\n".join(parts)}]


def oracle_code_completion(problem: Problem) -> str | None:
    """The reference solution in the answer format, or None when the problem has none."""
    if not problem.reference_solution:
        return None
    return f"```python\n{problem.reference_solution.rstrip()}\n```"


def oracle_reasoning_completion(item: ReasoningItem) -> str:
    """The label written the way the prompt asks for it."""
    expected = item.expected_output
    if output_kind(item) == "stdout":
        if item.task == "code_execution":
            return f"{OPEN_TAG}\n{expected.rstrip(chr(10))}\n{CLOSE_TAG}"
        return f"```\n{expected.rstrip(chr(10))}\n```"
    if item.task == "code_execution":
        return f"{OPEN_TAG}\nassert {item.input} == {expected}\n{CLOSE_TAG}"
    call = f"{_function_name(item)}({call_arguments(item)})"
    return f"```python\nassert {call} == {expected}\n```"
