"""The prompts a step samples from: code prompts per semantics, prompt token counts."""

from coderl_jax.data.problems import Problem
from coderl_jax.execution.spec import TestSpec
from coderl_jax.rl.batch import TaskKind
from coderl_jax.rl.rollout import code_prompt, prompt_token_count


class ChatTokenizer:
    """A chat template of tagged turns; one id per character."""

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        assert add_generation_prompt and not tokenize
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def __call__(self, text, add_special_tokens):
        return {"input_ids": [ord(c) for c in text]}


def decode(ids) -> str:
    return "".join(map(chr, ids))


ROW_MESSAGES = [{"role": "system", "content": "S"}, {"role": "user", "content": "as given"}]
PROBLEM = Problem(
    id="p/0",
    source="prime_code",
    statement="Print 1.",
    tests=TestSpec(kind="stdio", inputs=("\n",), outputs=("1\n",)),
    metadata={"messages": ROW_MESSAGES},
)


def test_official_code_prompts_are_the_rows_own_messages():
    official = code_prompt(PROBLEM, ChatTokenizer(), "official")
    assert official.kind is TaskKind.CODE
    assert decode(official.token_ids) == "<system>S<user>as given<assistant>"
    improved = decode(code_prompt(PROBLEM, ChatTokenizer()).token_ids)
    assert improved.startswith("<user>Print 1.\n\n") and "as given" not in improved
    without_messages = Problem(id="p/1", source="x", statement="Print 1.", tests=PROBLEM.tests)
    assert code_prompt(without_messages, ChatTokenizer(), "official").token_ids == (
        code_prompt(without_messages, ChatTokenizer()).token_ids
    )


def test_prompt_token_count_includes_the_chat_template():
    assert prompt_token_count(ChatTokenizer(), "hi") == len("<user>hi<assistant>")
