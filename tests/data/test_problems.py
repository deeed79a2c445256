"""Problem schema round trips and prompt rendering through a real HF chat template."""

import json

import pytest
import tokenizers
from transformers import PreTrainedTokenizerFast

from coderl_jax.data.problems import (
    DEFAULT_CODE_INSTRUCTION,
    Problem,
    code_generation_messages,
    render_prompt,
)
from coderl_jax.execution.spec import TestSpec as Spec  # alias: pytest would collect Test*

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _stdio_problem(**overrides):
    fields = dict(
        id="synthetic/train/000001",
        source="synthetic",
        statement="Read an integer n and print n plus 3.",
        tests=Spec(kind="stdio", inputs=("1\n", "5\n"), outputs=("4\n", "8\n")),
        reference_solution="n = int(input())\nprint(n + 3)\n",
        family="add_constant",
        metadata={"params": {"k": 3}},
    )
    fields.update(overrides)
    return Problem(**fields)


def _tokenizer():
    model = tokenizers.models.WordLevel({"<unk>": 0}, unk_token="<unk>")
    tok = PreTrainedTokenizerFast(tokenizer_object=tokenizers.Tokenizer(model))
    tok.chat_template = CHAT_TEMPLATE
    return tok


def test_json_round_trip_stdio_and_call():
    stdio = _stdio_problem()
    call = Problem(
        id="x/1",
        source="synthetic",
        statement="Write count(nums).",
        tests=Spec(kind="call", fn_name="count", inputs=("[[1, 2]]",), outputs=("2",)),
        starter_code="def count(nums):\n",
    )
    humaneval_like = Problem(
        id="humaneval/0",
        source="humaneval",
        statement='def add(a, b):\n    """Return a + b."""\n',
        tests=Spec(
            kind="assert", check_code="def check(c):\n    assert c(1, 2) == 3\n", entry_point="add"
        ),
        reference_solution="    return a + b\n",
    )
    for p in (stdio, call, humaneval_like):
        text = json.dumps(p.to_json())
        assert Problem.from_json(json.loads(text)) == p
        assert Problem.from_json(json.loads(p.to_json_str())) == p
    assert json.loads(stdio.to_json_str())["tests"]["inputs"] == ["1\n", "5\n"]


def test_bad_problems_raise_naming_the_field():
    with pytest.raises(ValueError, match="statement"):
        _stdio_problem(statement="  ")
    with pytest.raises(TypeError, match="tests must be a TestSpec"):
        _stdio_problem(tests={"kind": "stdio"})
    with pytest.raises(ValueError, match="unknown fields.*'prompt'"):
        Problem.from_json({**_stdio_problem().to_json(), "prompt": "x"})
    with pytest.raises(ValueError, match="missing fields.*'tests'"):
        d = _stdio_problem().to_json()
        del d["tests"]
        Problem.from_json(d)


def test_code_generation_messages_follow_coderl_style():
    msgs = code_generation_messages(_stdio_problem())
    assert msgs == [
        {
            "role": "user",
            "content": "Read an integer n and print n plus 3.\n\nWrite Python code to solve the "
            "problem. Present the code in ```python ...``` at the end.",
        }
    ]
    assert DEFAULT_CODE_INSTRUCTION in msgs[0]["content"]


def test_messages_with_system_prompt_starter_code_and_custom_instruction():
    p = _stdio_problem(starter_code="def f(x):\n    pass\n")
    msgs = code_generation_messages(p, instruction="Answer in Python.", system_prompt="Be brief.")
    assert msgs[0] == {"role": "system", "content": "Be brief."}
    assert msgs[1]["content"] == (
        "Read an integer n and print n plus 3.\n\n```python\ndef f(x):\n    pass\n```\n\n"
        "Answer in Python."
    )


def test_render_prompt_uses_the_tokenizer_chat_template():
    text = render_prompt(
        code_generation_messages(_stdio_problem(), instruction="Go."), _tokenizer()
    )
    assert text == (
        "<|im_start|>user\nRead an integer n and print n plus 3.\n\nGo.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_render_prompt_rejects_objects_without_chat_template():
    with pytest.raises(TypeError, match="apply_chat_template"):
        render_prompt([{"role": "user", "content": "hi"}], object())
