"""The judge's namespace and its channel to the program (issue 15, classes 2 and 11).

Hostile programs: names that shadow builtins or fake a standard module, replies forged on
the program's socket, objects whose protocols would lie. Honest programs: standard-library
containers, generators, ``Fraction``, classes used by asserts, a large module-level table.
Each hostile case also checks that the executor keeps serving (a canary passes after it)."""

import pytest

from tests.executors.conftest import asserts_job, io_job, run

pytestmark = pytest.mark.slow  # every case starts a program in a sandbox

NOT_PASSED = {"failed", "runtime_error", "timeout", "memory_limit", "output_limit"}
CANARY = asserts_job("def add(a, b):\n    return a + b\n", ["assert add(2, 2) == 4"], id="canary")


def check_job(source, code, entry="f", **kw):
    return {"id": kw.pop("id", "t"), "language": "python", "source": source,
            "tests": {"format": "check", "code": code, "entry_point": entry},
            "limits": {"timeout_s": 5}, **kw}


def call_job(source, cases, fn="f"):
    return {"id": "t", "language": "python", "source": source,
            "tests": {"format": "call", "fn_name": fn, "cases": cases}}


# A program whose function returns a wrong value and which redefines the builtin the test
# relies on to hide it.
SHADOWED = {
    "range": ("range = lambda *a: []", "for i in range(5):\n        assert c(i) == i + 1"),
    "abs": ("abs = lambda x: 0", "assert abs(c(1) - 2) < 1e-6"),
    "len": ("len = lambda x: 3", "assert len(c(1)) == 3"),
    "sorted": ("sorted = lambda *a, **k: [1, 2, 3]", "assert sorted(c(1)) == [1, 2, 3]"),
    "set": ("set = lambda *a: {1, 2}", "assert set(c(1)) == {1, 2}"),
    "tuple": ("tuple = lambda *a: (1, 2)", "assert tuple(c(1)) == (1, 2)"),
    "int": ("int = lambda *a: 3", "assert int(c(1)) == 3"),
    "sum": ("sum = lambda *a: 6", "assert sum(c(3)) == 6"),
    "all": ("all = lambda *a: True", "assert all([c(i) == i for i in (1, 2, 3)])"),
}


@pytest.mark.parametrize("name", sorted(SHADOWED))
def test_shadowed_builtins_never_reach_the_tests(runner, name):
    prog, assertion = SHADOWED[name]
    source = f"{prog}\ndef f(x):\n    return 0\n"
    v = run(runner, check_job(source, f"def check(c):\n    {assertion}\n"))
    assert v["status"] in NOT_PASSED, v
    assert run(runner, CANARY)["status"] == "passed"


def test_shadowed_builtins_in_asserts(runner):
    src = "range = lambda *a: []\nlen = lambda x: 2\ndef f(x):\n    return None\n"
    v = run(runner, asserts_job(src, ["for i in range(9):\n    assert f(i) == i",
                                      "assert len(f(1)) == 2"]))
    # the program defines builtin names the tests read: each such test is an error
    assert [t["status"] for t in v["tests"]] == ["runtime_error", "runtime_error"], v


FAKE_MATH = {
    "instance": "class M:\n    isclose = staticmethod(lambda *a, **k: True)\nmath = M()\n",
    "class": "class math:\n    isclose = staticmethod(lambda *a, **k: True)\n",
    "function": "def math():\n    pass\nmath.isclose = lambda *a, **k: True\n",
}


@pytest.mark.parametrize("kind", sorted(FAKE_MATH))
def test_a_fake_standard_module_is_not_the_tests_module(runner, kind):
    """The program's ``math`` is never the asserts' ``math``: they get the real module."""
    src = FAKE_MATH[kind] + "def f(x):\n    return 0.0\n"
    v = run(runner, asserts_job(src, ["assert math.isclose(f(1), 2.5)"]))
    assert v["status"] == "failed", v


# The program writes a frame of its own on its socket to the judge, before the real reply.
FORGE = ("import os, stat, struct\n"
         "def _sock():\n    for fd in range(3, 256):\n        try:\n"
         "            if stat.S_ISSOCK(os.fstat(fd).st_mode):\n                return fd\n"
         "        except OSError:\n            pass\n"
         "def f(x):\n    body = BODY\n    os.write(_sock(), struct.pack('>I', len(body)) + body)\n"
         "    return 0\n")
RAISES = "def check(c):\n    try:\n        c(-1)\n    except {}:\n        return\n    assert False\n"
FORGED = {
    "bad_tag": (b'{"ok": {"bogus": 1}}', "ValueError"),
    "not_json": (b"\xff not json", "ValueError"),
    "string_reply": (b'"ok"', "Exception"),
    "missing_msg": (b'{"exc": "ValueError"}', "Exception"),
    "exc_not_string": (b'{"exc": ["ValueError"], "msg": "x"}', "Exception"),
    "bad_int": (b'{"ok": {"int": "' + b"7" * 5000 + b'x"}}', "ValueError"),
    "deep": (b'{"ok": ' + b"[" * 100000 + b"]" * 100000 + b"}", "Exception"),
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_a_malformed_reply_fails_the_test_even_where_the_test_catches_it(runner, name):
    """A test that expects an exception must not pass because the judge could not read the
    program's reply: the reply is hostile input, and a malformed one ends the test."""
    body, caught = FORGED[name]
    v = run(runner, check_job(FORGE.replace("BODY", repr(body)), RAISES.format(caught)))
    assert v["status"] == "runtime_error" and "malformed reply" in v["message"], v
    assert run(runner, CANARY)["status"] == "passed"


@pytest.mark.parametrize("caught", ["Exception", "BaseException", ""])
def test_exiting_inside_a_call_fails_a_test_that_catches_everything(runner, caught):
    src = "import os\ndef f(x):\n    os._exit(0)\n"
    v = run(runner, check_job(src, RAISES.format(caught).replace("except :", "except:")))
    assert v["status"] in NOT_PASSED, v


@pytest.mark.parametrize("assertion", ["assert all(map(c, [1, 2, 3]))",
                                       "assert not any(map(c, [1, 2, 3]))",
                                       "assert list(map(c, [4, 5])) == []"])
def test_stop_iteration_from_the_program_does_not_end_the_tests_loop(runner, assertion):
    src = "def f(x):\n    raise StopIteration\n"
    v = run(runner, check_job(src, f"def check(c):\n    {assertion}\n"))
    assert v["status"] == "runtime_error" and "StopIteration" in v["message"], v


OBJECT = "class O:\n{}\ndef f(x):\n    return O()\n"
PROTOCOLS = {  # objects of the program reach the judge as handles: no protocol is forwarded
    "eq": ("    def __eq__(self, o):\n        return True", "assert c(1) == 3"),
    "eq_in_list": ("    def __eq__(self, o):\n        return True", "assert [c(1)] == [3]"),
    "len": ("    def __len__(self):\n        return 3", "assert len(c(1)) == 3"),
    "iter": ("    def __iter__(self):\n        return iter([1, 2])", "assert list(c(1)) == [1, 2]"),
    "index": ("    def __index__(self):\n        return 3", "assert [0, 0, 0, 9][c(1)] == 9"),
    "hash": ("    def __hash__(self):\n        return hash(3)\n    def __eq__(self, o):\n"
             "        return True", "assert c(1) in {3}"),
    "bool_false": ("    def __bool__(self):\n        return False", "assert not c(1)"),
}


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_objects_of_the_program_cannot_lie_in_the_judge(runner, name):
    body, assertion = PROTOCOLS[name]
    v = run(runner, check_job(OBJECT.format(body), f"def check(c):\n    {assertion}\n"))
    assert v["status"] in NOT_PASSED, v


def test_handles_carry_no_dunder_and_stay_in_their_program(runner):
    src = ("class O:\n    def __eq__(self, o):\n        return True\n"
           "def f(x):\n    return O()\ndef g(o):\n    return o.__eq__(5)\n")
    v = run(runner, asserts_job(src, ["assert f(1).__eq__(3) is True",
                                      "assert g(f(1)) is True",
                                      "import copy\nassert copy.deepcopy(f(1)) == 3"]))
    # a handle's dunders are the judge's own; the program may use its own object itself
    assert [t["status"] for t in v["tests"]] == ["failed", "passed", "runtime_error"], v


HONEST = {
    "counter": ("from collections import Counter\ndef f(s):\n    return Counter(s)\n",
                "assert c('abca') == {'a': 2, 'b': 1, 'c': 1}"),
    "defaultdict": ("from collections import defaultdict\ndef f(xs):\n    d = defaultdict(list)\n"
                    "    for x in xs:\n        d[x % 2].append(x)\n    return d\n",
                    "assert c([1, 2, 3]) == {1: [1, 3], 0: [2]}"),
    "ordereddict": ("from collections import OrderedDict\ndef f(n):\n"
                    "    return OrderedDict((i, i * i) for i in range(n))\n",
                    "assert c(3) == {0: 0, 1: 1, 2: 4}"),
    "namedtuple": ("from collections import namedtuple\nP = namedtuple('P', 'x y')\n"
                   "def f(a):\n    return P(a, a + 1)\n", "assert c(1) == (1, 2)"),
    "fraction": ("from fractions import Fraction\ndef f(a):\n    return Fraction(a, 4)\n",
                 "assert c(2) == 0.5 and c(3) == 0.75"),
    "generator": ("def f(n):\n    for i in range(n):\n        yield i * i\n",
                  "assert list(c(4)) == [0, 1, 4, 9]"),
    "map": ("def f(xs):\n    return map(abs, xs)\n", "assert sorted(c([-2, 1])) == [1, 2]"),
    "decimal": ("from decimal import Decimal\ndef f(a):\n    return Decimal(a) / 4\n",
                "from decimal import Decimal\n    assert c('1') == Decimal('0.25')"),
    "dict_views": ("def f(d):\n    return d.keys(), d.values(), d.items()\n",
                   "k, v, i = c({1: 'a', 2: 'b'})\n    assert k == {1, 2} and list(k) == [1, 2]\n"
                   "    assert list(v) == ['a', 'b'] and i == {(1, 'a'), (2, 'b')}"),
    "int_enum": ("import enum\nclass K(enum.IntEnum):\n    A = 7\ndef f():\n    return K.A\n",
                 "assert c() == 7"),
    "own_exception": ("class Bad(ValueError):\n    pass\ndef f(x):\n    raise Bad('no')\n",
                      "try:\n        c(1)\n    except ValueError:\n        return\n"
                      "    assert False"),
}

# standard types that are not containers, carried as data and rebuilt as the real types,
# read through the base type's own descriptors (a subclass's overrides never run)
STANDARD = {
    "range": ("def f(n):\n    return range(n)\n",
              "assert list(c(3)) == [0, 1, 2] and c(3) == range(3)"),
    "deque": ("import collections\ndef f(n):\n    return collections.deque(range(n), 5)\n",
              "import collections\n    d = c(3)\n"
              "    assert d == collections.deque([0, 1, 2]) and d.maxlen == 5"),
    "bytearray": ("def f(s):\n    return bytearray(s, 'ascii')\n", "assert c('ab') == b'ab'"),
    "date": ("import datetime\ndef f(d):\n    return datetime.date(2024, 2, d)\n",
             "import datetime\n    assert c(29) == datetime.date(2024, 2, 29)"),
    "datetime": ("import datetime\ndef f(h):\n"
                 "    return datetime.datetime(2024, 1, 1, h, tzinfo=datetime.timezone.utc)\n",
                 "import datetime\n    utc = datetime.timezone.utc\n"
                 "    assert c(5) == datetime.datetime(2024, 1, 1, 5, tzinfo=utc)"),
    "timedelta": ("import datetime\ndef f(d):\n"
                  "    return datetime.timedelta(days=d, seconds=1)\n",
                  "import datetime\n    assert c(2) == datetime.timedelta(days=2, seconds=1)"),
    "time": ("import datetime\ndef f(m):\n    return datetime.time(12, m)\n",
             "import datetime\n    assert c(30) == datetime.time(12, 30)"),
    "date_subclass": ("import datetime\nclass D(datetime.date):\n    @property\n"
                      "    def year(self):\n        return 1999\n"
                      "def f():\n    return D(2024, 1, 1)\n",
                      "import datetime\n    d = c()\n"
                      "    assert type(d) is datetime.date and d.year == 2024"),
}
HONEST.update(STANDARD)


@pytest.mark.parametrize("name", sorted(HONEST))
def test_honest_return_values_are_judged_like_humaneval(runner, name):
    source, assertion = HONEST[name]
    v = run(runner, check_job(source, f"def check(c):\n    {assertion}\n"))
    assert v["status"] == "passed", v


def test_call_format_takes_standard_containers_and_generators_as_data(runner):
    src = ("from collections import Counter\ndef f(s):\n    return Counter(s)\n"
           "def g(n):\n    return (i for i in range(n))\n")
    assert run(runner, call_job(src, [{"args": ["aab"], "expected": {"a": 2, "b": 1}}]))[
        "status"] == "passed"
    assert run(runner, call_job(src, [{"args": [3], "expected": [0, 1, 2]}], fn="g"))[
        "status"] == "passed"
    v = run(runner, call_job("class O:\n    pass\ndef f():\n    return O()\n", [{"expected": 1}]))
    assert v["status"] == "runtime_error" and "not plain data" in v["message"], v


def test_asserts_build_the_programs_classes(runner):
    """MBPP: asserts construct the program's class and pass its objects back to it."""
    src = ("class Pair(object):\n    def __init__(self, a, b):\n        self.a = a\n"
           "        self.b = b\n"
           "def max_chain_length(arr, n):\n    arr = sorted(arr, key=lambda p: p.b)\n"
           "    best, end = 0, float('-inf')\n    for p in arr:\n        if p.a > end:\n"
           "            best, end = best + 1, p.b\n    return best\n")
    v = run(runner, asserts_job(src, [
        "assert max_chain_length([Pair(5, 24), Pair(15, 25), Pair(27, 40), Pair(50, 60)], 4) == 3",
        "p = Pair(1, 2)\nassert (p.a, p.b) == (1, 2) and p is p and p != Pair(1, 2)"]))
    assert v["status"] == "passed", v


def test_setup_builds_a_tree_of_the_programs_nodes(runner):
    src = ("class Node:\n    def __init__(self, v):\n        self.v = v\n"
           "        self.left = self.right = None\n"
           "def height(n):\n    return 0 if n is None else 1 + max(height(n.left), height(n.right))\n")
    job = asserts_job(src, ["assert height(root) == 3", "assert root.left.left.v == 4"])
    job["tests"]["setup"] = ("root = Node(1)\nroot.left = Node(2)\nroot.right = Node(3)\n"
                             "root.left.left = Node(4)\n")
    v = run(runner, job)
    assert v["status"] == "passed", v


def test_a_large_table_the_tests_do_not_read_stays_in_the_program(runner):
    src = "TABLE = [0.5] * 10**7\ndef f(i):\n    return TABLE[i] * 2\n"
    v = run(runner, asserts_job(src, ["assert f(3) == 1.0"]))
    assert v["status"] == "passed", v
    # an attribute of the same name is not a read of the global
    src = "data = [0.5] * 10**7\nclass Box:\n    data = 3\ndef f():\n    return Box()\n"
    v = run(runner, asserts_job(src, ["assert f().data == 3"]))
    assert v["status"] == "passed", v


def test_printing_test_code_does_not_disturb_the_sandbox(solo):
    v = run(solo, asserts_job("def f():\n    return 1\n", ["print('x' * 100000)\nassert f() == 1"]))
    assert v["status"] == "passed", v
    assert run(solo, CANARY)["status"] == "passed"


def entry_job(source, asserts, entry):
    job = asserts_job(source, asserts)
    job["tests"]["entry_point"] = entry
    return job


def test_a_function_named_like_a_builtin_is_never_silently_replaced(runner):
    """Without an entry point the asserts' ``max`` would be the builtin, and a wrong ``max``
    would pass: such a test is an error that says to set ``tests.entry_point``."""
    wrong = "def max(xs):\n    return 0\n"
    v = run(runner, asserts_job(wrong, ["assert max([1, 5, 3]) == 5"]))
    assert v["status"] == "runtime_error" and "tests.entry_point" in v["message"], v
    assert "'max'" in v["message"], v
    v = run(runner, entry_job(wrong, ["assert max([1, 5, 3]) == 5"], "max"))
    assert v["status"] == "failed", v
    honest = "def round(x):\n    return int(x + 0.5)\n"
    v = run(runner, entry_job(honest, ["assert round(2.5) == 3"], "round"))
    assert v["status"] == "passed", v


def test_the_entry_point_keeps_other_builtins_the_judges(runner):
    """Naming ``max`` the entry point does not hand the program's ``range`` to the tests."""
    src = "range = lambda *a: []\ndef max(xs):\n    return 0\n"
    v = run(runner, entry_job(src, ["for i in range(3):\n    assert max([i, 9]) == 9"], "max"))
    assert v["status"] == "runtime_error" and "'range'" in v["message"], v
    v = run(runner, entry_job("def g(x):\n    return x\n", ["assert max([1]) == 1"], "max"))
    assert v["status"] == "runtime_error" and "defines no function 'max'" in v["message"], v


STDLIB_NAMED = {
    "secrets": ("def secrets(n):\n    return n + 1\n", "assert secrets(1) == 2"),
    "string": ("def string(s):\n    return s[::-1]\n", "assert string('ab') == 'ba'"),
    "array": ("array = [1, 2, 3]\ndef total(xs):\n    return sum(xs)\n",
              "assert total(array) == 6"),
}


@pytest.mark.parametrize("name", sorted(STDLIB_NAMED))
def test_a_program_name_that_is_a_module_name_is_the_programs(runner, name):
    """Only a name whose attribute the tests read is the judge's own module (see the fake
    ``math`` above); called or passed, it is the program's value."""
    source, assertion = STDLIB_NAMED[name]
    v = run(runner, asserts_job(source, [assertion]))
    assert v["status"] == "passed", v


def test_an_exception_whose_constructor_takes_several_arguments_is_caught(runner):
    src = "def f(b):\n    return b.decode('ascii')\n"
    code = ("def check(c):\n    try:\n        c(b'\\xff')\n"
            "    except UnicodeDecodeError as e:\n        str(e)\n        return\n"
            "    assert False\n")
    v = run(runner, check_job(src, code))
    assert v["status"] == "passed", v


def test_a_big_integer_is_judged_inside_the_sandbox(runner):
    """The host's digit cap is the host's: the judge compares 30000! itself."""
    src = "import math\ndef f(n):\n    return math.factorial(n)\n"
    v = run(runner, asserts_job(src, ["import math\nassert f(30000) == math.factorial(30000)"],
                                limits={"timeout_s": 20}))
    assert v["status"] == "passed", v


def test_a_syntax_error_raised_while_running_is_a_runtime_error(runner):
    v = run(runner, io_job("x = input()\nprint(eval(x))\n", [("1+1", "2"), ("1+", "error")]))
    assert (v["status"], v["passed"]) == ("runtime_error", 1), v
    v = run(runner, asserts_job("import ast\nast.parse('1+')\ndef f():\n    return 1\n",
                                ["assert f() == 1"]))
    assert v["status"] == "runtime_error", v
    v = run(runner, asserts_job("def f(:\n", ["assert f() == 1"]))
    assert v["status"] == "compile_error", v
    assert run(runner, io_job("print(1 +)\n", [("", "1")]))["status"] == "compile_error"


@pytest.mark.parametrize("entry", ["1x", "", 3, None])
def test_an_asserts_entry_point_must_be_an_identifier(entry):
    from executors.schema import InvalidJob, parse_job

    with pytest.raises(InvalidJob, match="entry_point"):
        parse_job(entry_job("def f():\n    return 1\n", ["assert f() == 1"], entry))


RAISED = {  # the program's exception reaches the tests with its own args and message
    "message": ("def f(x):\n    raise ValueError('negative')\n",
                "except ValueError as e:\n    assert str(e) == 'negative' and e.args == ('negative',)"),
    "key": ("def f(x):\n    return {}[x]\n", "except KeyError as e:\n    assert e.args == (3,)"),
    "several": ("def f(x):\n    raise ValueError('a', [x])\n",
                "except ValueError as e:\n    assert e.args == ('a', [3])"),
    "subclass": ("class Bad(ValueError):\n    pass\ndef f(x):\n    raise Bad('no')\n",
                 "except ValueError as e:\n    assert str(e) == 'no'"),
    "object_arg": ("class O:\n    pass\ndef f(x):\n    raise ValueError(O())\n",
                   "except ValueError as e:\n    assert str(e).startswith('<')"),
}


@pytest.mark.parametrize("name", sorted(RAISED))
def test_the_programs_exception_keeps_its_message(runner, name):
    source, handler = RAISED[name]
    v = run(runner, asserts_job(source, [f"try:\n    f(3)\n{handler}\nelse:\n    assert False"]))
    assert v["status"] == "passed", v


def test_exception_arguments_are_plain_data_or_the_reply_is_malformed(runner):
    """Arguments the program writes itself are decoded as data: a reference among them is
    malformed (never a handle the judge would stringify), and a replaced class keeps its
    name in the message."""
    body = b'{"exc": "ValueError", "msg": "x", "args": {"tuple": [{"ref": 0}]}}'
    v = run(runner, check_job(FORGE.replace("BODY", repr(body)), RAISES.format("ValueError")))
    assert v["status"] == "runtime_error" and "malformed reply" in v["message"], v
    body = b'{"exc": "Nope", "msg": "x", "args": {"tuple": ["y"]}}'
    v = run(runner, check_job(FORGE.replace("BODY", repr(body)),
                              "def check(c):\n    try:\n        c(1)\n    except RuntimeError as e:\n"
                              "        assert str(e) == 'Nope: x'\n"))
    assert v["status"] == "passed", v
    src = "def f(x):\n    raise ExceptionGroup('g', [ValueError(1)])\n"
    v = run(runner, asserts_job(src, ["try:\n    f(1)\nexcept Exception as e:\n    pass"]))
    assert v["status"] == "passed", v


KINDS = {  # standard types the judge rebuilds as themselves, not as their base type
    "namedtuple": ("from collections import namedtuple\nP = namedtuple('P', 'x y')\n"
                   "def f():\n    return P(1, 2)\n",
                   "p = f()\nassert (p.x, p.y) == (1, 2) and p == (1, 2) and type(p).__name__ == 'P'"
                   "\nassert p._fields == ('x', 'y') and p._replace(x=5) == (5, 2)"),
    "counter": ("from collections import Counter\ndef f(s):\n    return Counter(s)\n",
                "assert f('aab').most_common(1) == [('a', 2)] and f('a')['z'] == 0"),
    "defaultdict": ("from collections import defaultdict\ndef f():\n"
                    "    d = defaultdict(int)\n    d['a'] = 1\n    return d\n",
                    "d = f()\nassert d['b'] == 0 and d == {'a': 1, 'b': 0}"),
    "defaultdict_other": ("from collections import defaultdict\ndef f():\n"
                          "    return defaultdict(lambda: 7, a=1), defaultdict(str)\n",
                          "d, e = f()\nassert type(d) is dict and d == {'a': 1} and e[1] == ''"),
    "defaultdict_list": ("import collections\ndef f():\n    return collections.defaultdict(list)\n",
                         "d = f()\nd[1].append(2)\nassert d == {1: [2]}"),
    "ordereddict": ("from collections import OrderedDict\ndef f():\n"
                    "    return OrderedDict([(2, 'b'), (1, 'a')])\n",
                    "from collections import OrderedDict\n"
                    "assert f() == OrderedDict([(2, 'b'), (1, 'a')]) and list(f()) == [2, 1]\n"
                    "assert f() != OrderedDict([(1, 'a'), (2, 'b')])"),
    "builtin_type": ("def f(v):\n    return type(v)\n",
                     "assert f(1) == int and f('') is str and f([]) is list and f(True) is bool"),
    "type_argument": ("def f(t):\n    return t('12')\n", "assert f(int) == 12"),
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_standard_kinds_keep_their_type_in_the_judge(runner, name):
    source, test = KINDS[name]
    v = run(runner, asserts_job(source, [test]))
    assert v["status"] == "passed", v


# replies the program writes itself: a namedtuple's type name is refused unless the standard
# factory accepts it, its field names are renamed where not identifiers (no code through a
# name), a defaultdict's factory and a type are only builtins ones
FORGED_KINDS = {
    "namedtuple_typename": b'{"ok": {"namedtuple": ["P(): pass\\nimport os#", ["x"], [1]]}}',
    "namedtuple_count": b'{"ok": {"namedtuple": ["P", ["x", "y"], [1]]}}',
    "defaultdict_factory": b'{"ok": {"defaultdict": ["eval", []]}}',
    "type_not_builtin": b'{"ok": {"type": "print"}}',
    "type_unknown": b'{"ok": {"type": "Nope"}}',
}


def test_forged_kinds_are_malformed_and_field_names_are_checked(runner):
    for name, body in FORGED_KINDS.items():
        v = run(runner, check_job(FORGE.replace("BODY", repr(body)), RAISES.format("Exception")))
        assert v["status"] == "runtime_error" and "malformed reply" in v["message"], (name, v)
    body = b'{"ok": {"namedtuple": ["P", ["x", "def", "_y", "x", "a=f()"], [1, 2, 3, 4, 5]]}}'
    v = run(runner, check_job(FORGE.replace("BODY", repr(body)),
                              "def check(c):\n    p = c(1)\n    assert p.x == 1 and p._fields == "
                              "('x', '_1', '_2', '_3', '_4')\n"))
    assert v["status"] == "passed", v
    assert run(runner, CANARY)["status"] == "passed"
