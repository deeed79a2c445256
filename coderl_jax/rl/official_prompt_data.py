"""The official CodeRL+ alignment prompt, kept as data (the one literal taken from the
official code).

Source: github jiangxxxue/CODERLPLUS, commit c574a90229001956dfa8b2db22b84ae3b3db556c,
``recipe/code_extractor.py`` lines 176-198 (``create_exec_semantics_align_prompt``). The
function is an f-string; ``TEMPLATE`` is the text it produces, with its three fill-in points
written as ``{code}``, ``{test_input}`` and ``{local_variable_name}`` (the doubled braces of
the f-string are single here, and its ``\\n`` escape inside the example answer is a real
line break, as the model receives it). Fill it by one pass of plain substitution
(``coderl_jax.rl.alignment_prompt.render_official_prompt``), never with ``str.format``: the
example answer holds literal braces.
"""

SOURCE = (
    "github jiangxxxue/CODERLPLUS @ c574a90229001956dfa8b2db22b84ae3b3db556c, "
    "recipe/code_extractor.py:176-198 (create_exec_semantics_align_prompt)"
)
FILL_POINTS = ("{code}", "{test_input}", "{local_variable_name}")
TEMPLATE = (
    "Given the following Python Code and Input, predict:\n"
    "1) The code's output value (final_output)\n"
    "2) The final values of the listed local variables at the moment the code outputs\n"
    "\n"
    "Python code: ```python{code}```\n"
    "Input: {test_input}\n"
    "Target local variables: {local_variable_name}\n"
    "\n"
    "Instructions:\n"
    "1. First, write a reasoning section explaining step-by-step how the code executes with the given Input\n"
    "2. Do not include any JSON in the reasoning section\n"
    "3. On the LAST line only, output a strict JSON object with the required format\n"
    "\n"
    "Example of final answer (LAST line only):\n"
    '{"final_output": 3\n'
    '6, "variables": {"cnt": 2, "buf": [1, 2]}}\n'
)
