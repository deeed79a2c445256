"""Variable tracer semantics, in the sandbox (trace=True) and in-process."""

from coderl_jax.execution import Job, plain_variable_names
from coderl_jax.execution.tracer import VariableTracer

PROGRAM = """
def helper(n):
    total = 0
    for i in range(n):
        total += i
    return total

def gen(n):
    acc = []
    for i in range(n):
        acc.append(i)
        yield i

class Solution:
    def solve(self, n):
        doubled = helper(n) * 2
        return doubled

def main():
    items = [1, 2]
    alias = items
    snap = helper(3)
    alias.append(99)
    return items

total = Solution().solve(4)
values = list(gen(3))
result = main()
"""


def _trace(pool, code, stdin=b""):
    result = pool.run_batch([Job(code, stdin=stdin, trace=True)])[0]
    assert result.status == "ok", result
    return result.variables


def test_scopes_order_and_final_values(pool):
    variables = _trace(pool, PROGRAM)
    # main() called helper(3) last, so helper's record holds n=3, total=3, i=2.
    assert variables["helper.n"] == 3
    assert variables["helper.total"] == 3
    assert variables["helper.i"] == 2
    assert variables["Solution.solve.doubled"] == 12
    assert variables["main.items"] == [1, 2, 99]
    assert variables["main.snap"] == 3
    assert variables["total"] == 12 and variables["values"] == [0, 1, 2]
    assert variables["result"] == [1, 2, 99]
    # Generator recorded once, on exhaustion: acc holds every item.
    assert variables["gen.acc"] == [0, 1, 2]
    order = list(variables)
    assert (
        order.index("Solution.solve.doubled") < order.index("gen.acc") < order.index("main.items")
    )
    assert order.index("main.items") < order.index("total")  # module scope finishes last
    assert "helper" not in variables and "Solution" not in variables  # not variables


def test_last_finished_frame_wins_for_plain_names(pool):
    code = "def f():\n    x = 1\n    return x\ndef g():\n    x = 2\n    return x\ng()\nf()\n"
    variables = _trace(pool, code)
    assert list(variables) == ["g.x", "f.x"]
    assert plain_variable_names(variables) == {"x": 1}
    assert plain_variable_names({"f.x": 1, "x": 5, "g.y": 2}) == {"x": 5, "y": 2}


def test_snapshot_at_record_time_is_not_affected_by_later_mutation(pool):
    code = "def f(xs):\n    local = xs\n    return None\ndata = [1]\nf(data)\ndata.append(2)\n"
    variables = _trace(pool, code)
    assert variables["f.local"] == [1]
    assert variables["data"] == [1, 2]


def test_hostile_values_big_ints_and_cycles_do_not_break_tracing(pool):
    code = (
        "class Evil:\n"
        "    def __repr__(self): raise SystemExit(3)\n"
        "    def __eq__(self, o): return True\n"
        "    def __hash__(self): return 0\n"
        "big = 3 ** 100000\n"
        "cyc = [1]\ncyc.append(cyc)\n"
        "ev = Evil()\n"
        "text = 'x' * 1000000\n"
        "print('done')\n"
    )
    result = pool.run_batch([Job(code, trace=True, timeout_s=10)])[0]
    assert result.status == "ok" and result.stdout == "done\n"
    variables = result.variables
    assert variables["big"]["digits"] == 47713  # floor(100000 * log10(3)) + 1
    assert variables["cyc"][1]["reason"] == "self-reference"
    assert variables["ev"] == {"__unrepresentable__": "Evil", "reason": "not a plain value"}
    assert variables["text"]["__unrepresentable__"] == "str"


def test_program_reading_stdin_and_failing_still_reports_module_values(pool):
    code = "n = int(input())\nsquares = [i * i for i in range(n)]\nraise ValueError('late')\n"
    result = pool.run_batch([Job(code, stdin=b"4\n", trace=True)])[0]
    assert result.status == "runtime_error"
    assert result.error == "ValueError: late"
    assert result.variables == {"n": 4, "squares": [0, 1, 4, 9]}


def test_in_process_tracer_ignores_frames_of_other_files():
    tracer = VariableTracer()
    code = compile(
        "import json\ndef f(a):\n    b = json.dumps(a)\n    return b\nf([1])\n", "<program>", "exec"
    )
    globals_ = {"__name__": "__main__"}
    tracer.start()
    try:
        exec(code, globals_)
    finally:
        tracer.stop()
    assert tracer.variables == {"f.a": [1], "f.b": "[1]"}
