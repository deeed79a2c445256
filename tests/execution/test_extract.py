"""Code extraction on clean and messy completions."""

import pytest

from coderl_jax.execution.extract import EXTRACT_REASONS, extract_code, extract_code_with_reason


@pytest.mark.parametrize(
    "completion, code, reason",
    [
        ("Here:\n```python\nprint(1)\n```\n", "print(1)\n", "fenced_python"),
        # Several blocks: the last python block wins over a later non-python one.
        (
            "```python\nx = 1\n```\nthen\n```python\nx = 2\nprint(x)\n```\n```text\n2\n```",
            "x = 2\nprint(x)\n",
            "fenced_python",
        ),
        ("```py\na = 1\n```", "a = 1\n", "fenced_python"),
        ("```Python3\na = 1\n```", "a = 1\n", "fenced_python"),
        # No python tag anywhere: the last block of any tag.
        ("```\nprint(3)\n```\nand\n```bash\necho hi\n```", "echo hi\n", "fenced_other"),
        ("```\nprint(3)\n```", "print(3)\n", "fenced_other"),
        # Cut off inside the final fence.
        (
            "Solution:\n```python\nn = int(input())\nprint(n",
            "n = int(input())\nprint(n\n",
            "unterminated_fence",
        ),
        ("```\nprint(5)", "print(5)\n", "unterminated_fence"),
        # A complete block beats an unterminated one after it.
        ("```python\nprint(1)\n```\n```python\nprint(2", "print(1)\n", "fenced_python"),
        # Unterminated non-python fence is not code.
        ("```text\nhello", None, "no_code"),
        ("Just prose, the answer is 42.", None, "no_code"),
        ("", None, "no_code"),
        ("```python\n   \n```", None, "no_code"),
        # Closing fence glued to the last code line (small models do this).
        ("```python\nprint(7)```", "print(7)\n", "fenced_python"),
        # Opening fence in the middle of a line.
        ("Answer: ```python\nprint(8)\n```", "print(8)\n", "fenced_python"),
        # The instruction echoed in prose opens no fence.
        (
            "Present the code in ```python ...``` at the end.\n```python\nprint(9)\n```",
            "print(9)\n",
            "fenced_python",
        ),
        ("I will use ```python ...``` at the end.", None, "no_code"),
        # CRLF line endings.
        ("```python\r\nx = 1\r\nprint(x)\r\n```\r\n", "x = 1\nprint(x)\n", "fenced_python"),
        # Indented fence (inside a markdown list) is dedented.
        (
            "1. code:\n    ```python\n    if True:\n        print(1)\n    ```",
            "if True:\n    print(1)\n",
            "fenced_python",
        ),
    ],
)
def test_extract_code_with_reason(completion, code, reason):
    assert extract_code_with_reason(completion) == (code, reason)
    assert extract_code(completion) == code
    assert reason in EXTRACT_REASONS


def test_think_sections_are_removed_first():
    completion = (
        "<think>\n```python\nprint('draft')\n```\n</think>\nFinal:\n```python\nprint('final')\n```"
    )
    assert extract_code_with_reason(completion) == ("print('final')\n", "fenced_python")
    # Only reasoning, no answer: the draft inside <think> is not taken.
    assert extract_code_with_reason("<think>```python\nprint(1)\n```</think>ok") == (
        None,
        "no_code",
    )
    # Unclosed <think>: the completion was cut off while reasoning.
    assert (
        extract_code("```python\nprint(1)\n```\n<think>\n```python\nprint(2)\n```") == "print(1)\n"
    )
    # Opening tag was in the prompt: text before the lone </think> is reasoning.
    assert extract_code("```python\nprint(1)\n```</think>\n```\nprint(2)\n```") == "print(2)\n"
    assert extract_code("```python\nprint(1)\n```</think> no code after") is None


def test_non_string_completion_raises():
    with pytest.raises(TypeError, match="completion must be str"):
        extract_code(b"```python\nprint(1)\n```")
