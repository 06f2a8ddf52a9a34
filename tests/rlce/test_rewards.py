import pytest

from rlce.rewards import extract_program, get_reward, register

PASSED = {"status": "passed", "passed": 3, "total": 3}
HALF = {"status": "failed", "passed": 1, "total": 2}
CE = {"status": "compile_error", "passed": 0, "total": 2}


def test_extract_program_prefers_the_last_block_in_the_language():
    text = "Here:\n```python\nx = 1\n```\nand better:\n```py\nx = 2\n```\n```js\ny\n```"
    assert extract_program(text, "python") == ("x = 2\n", True)
    assert extract_program(text, "javascript") == ("y\n", True)
    assert extract_program("```\nfn main(){}\n```", "rust") == ("fn main(){}\n", True)
    assert extract_program("def f(): pass", "python") == ("def f(): pass", False)


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
