import pytest

from executors.schema import Verdict
from rlce.rewards import extract_program, get_reward, register

PASSED = Verdict("a", "passed", passed=3, total=3, tests=[], duration_s=0.1)
HALF = Verdict("b", "failed", passed=1, total=2, tests=[], duration_s=0.1)
CE = Verdict("c", "compile_error", passed=0, total=2, tests=[], duration_s=0.1)


def test_extract_program_prefers_the_last_block_in_the_language():
    text = "Here:\n```python\nx = 1\n```\nand better:\n```py\nx = 2\n```\n```js\ny\n```"
    assert extract_program(text, "python") == ("x = 2\n", True)
    assert extract_program(text, "javascript") == ("y\n", True)
    assert extract_program("```\nfn main(){}\n```", "rust") == ("fn main(){}\n", True)
    assert extract_program("def f(): pass", "python") == ("def f(): pass", False)


def test_extract_program_skips_a_usage_block_after_the_solution():
    text = ("```python\ndef add_two(a, b):\n    return a + b\n```\nExample usage:\n"
            "```python\nprint(add_two(1, 2))\n```\n")
    assert extract_program(text, "python", "add_two") == (
        "def add_two(a, b):\n    return a + b\n", True)
    assert extract_program(text, "python") == ("print(add_two(1, 2))\n", True)
    # a block that only mentions the name (a call) does not count as defining it
    assert extract_program(text, "python", "add_two_x") == ("print(add_two(1, 2))\n", True)
    js = "```js\nfunction f(x) { return x }\n```\n```js\nconsole.log(f(1))\n```"
    assert extract_program(js, "javascript", "f") == ("function f(x) { return x }\n", True)


def test_builtin_rewards():
    assert get_reward("binary")(PASSED, "") == 1.0 and get_reward("binary")(HALF, "") == 0.0
    assert get_reward("fraction")(HALF, "") == 0.5 and get_reward("fraction")(CE, "") == 0.0
    assert get_reward("fraction_with_penalties")(CE, "") == pytest.approx(-0.2)
    assert get_reward("binary_with_format")(PASSED, "```python\nx\n```") == pytest.approx(1.1)
    assert get_reward("binary_with_format")(PASSED, "x") == 1.0


def test_users_add_rewards_by_name_and_unknown_names_fail():
    @register("test_only_length")
    def length(verdict, text):
        return -len(text)

    assert get_reward("test_only_length")(PASSED, "abc") == -3
    with pytest.raises(ValueError, match="already registered"):
        register("binary")(length)
    with pytest.raises(ValueError, match="unknown reward 'nope'; registered: "):
        get_reward("nope")


def test_a_block_cut_off_by_the_token_limit_keeps_its_parsable_part():
    cut = "Here:\n```python\ndef f(x):\n    return x + 1\n\nprint(f(2), \"unfinished"
    assert extract_program(cut, "python", "f") == ("def f(x):\n    return x + 1\n\n", True)
    assert extract_program("```js\nlet a = [1,", "javascript") == ("let a = [1,", True)
    fmt = get_reward("binary_with_format")
    assert fmt(PASSED, cut) == 1.0  # an unclosed block is not the format
    assert fmt(HALF, "```python\nx = 1\n```") == 0.1
