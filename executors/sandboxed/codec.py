"""The plain-data codec: values <-> a JSON-able tagged form, building only standard types.

``encode`` runs where the value lives (the candidate, the judge) and reads every value through
its base type's own methods; ``Decoder`` rebuilds standard types only, so nothing a sender
wrote can run in the reader. The host decodes call-format return values with ``decode`` and
``big_int``, which cap integers and ranges for its own CPU and memory.
"""

import base64
import builtins
import importlib
import sys

MAX_DEPTH = 64

HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python, as opposed to a C type


def encode(v, ref=None, depth=0):
    """Value -> JSON-able tagged form.

    Subclasses of plain types (``IntEnum``, a program's ``dict`` subclass, ...) travel as their
    base type, read through the base type's own methods (``dict.items(v)``,
    ``tuple.__iter__(v)``, ``int.__int__(v)``), so no method a subclass overrides is used; a
    ``namedtuple`` adds its type and field names, and a ``Counter``, ``OrderedDict`` or
    ``defaultdict`` of a builtin factory its kind. Iterators of C types (generators, ``map``,
    ``zip``) are drained and travel as ``iter``; ``Fraction`` as its two integers; ``range``,
    ``deque``, ``bytearray`` and ``datetime`` values as their fields; a standard-library module
    and a type of the builtins module by name.
    Anything else goes to ``ref`` (which returns a tagged reference or raises TypeError)."""
    if depth > MAX_DEPTH:
        raise TypeError("value nested too deeply")
    if v is None or type(v) is bool:
        return v
    scalar = _encode_scalar(v)
    if scalar is not None:
        return scalar
    seq = _encode_container(v, ref, depth + 1)
    if seq is not None:
        return seq
    return _encode_other(v, ref, depth + 1)


def _encode_scalar(v):
    """Tagged form of a number, str or bytes (of any subclass), else None."""
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, int):
        n = int.__int__(v)
        return n if -(2**53) < n < 2**53 else {"int": str(n)}
    if isinstance(v, float):
        return {"float": repr(float.__float__(v))}
    if isinstance(v, complex):
        return {"complex": [repr(complex.real.__get__(v)), repr(complex.imag.__get__(v))]}
    if isinstance(v, bytes):
        return {"bytes": base64.b64encode(bytes.__getitem__(v, slice(None))).decode()}
    if isinstance(v, bytearray):
        return {"bytearray": base64.b64encode(bytes(bytearray.__getitem__(v, slice(None))))
                .decode()}
    return None


def _encode_container(v, ref, depth):
    """Tagged form of a list, tuple, set, frozenset or dict (of any subclass), else None."""
    if isinstance(v, list):
        return [encode(x, ref, depth) for x in list.__iter__(v)]
    for base in (tuple, frozenset, set):
        if isinstance(v, base):
            items = [encode(x, ref, depth) for x in base.__iter__(v)]
            fields = _named_fields(type(v), len(items)) if base is tuple else None
            return {"namedtuple": [type(v).__name__, fields, items]} if fields else {
                base.__name__: items}
    if isinstance(v, dict):
        pairs = [[encode(k, ref, depth), encode(x, ref, depth)] for k, x in dict.items(v)]
        return _mapping_form(v, pairs)
    view = DICT_VIEWS.get(type(v))
    if view is not None:
        return {view: [encode(x, ref, depth) for x in v]}
    return None


DICT_VIEWS = {type({}.keys()): "keys", type({}.values()): "values", type({}.items()): "items"}


def _named_fields(cls, n):
    """The field names of a namedtuple class with ``n`` fields (its ``_fields``, all str),
    else None: a plain tuple or tuple subclass."""
    if cls is tuple:
        return None
    fields = getattr(cls, "_fields", None)
    if type(fields) is tuple and len(fields) == n and all(type(f) is str for f in fields):
        return list(fields)
    return None


# defaultdict factories rebuilt as the reader's own builtins; any other factory: a plain dict
FACTORIES = {t.__name__: t for t in (int, float, str, list, dict, set, tuple, bool)}


def _mapping_form(v, pairs):
    """Tagged form of a dict (of any subclass) whose items are ``pairs``: a ``Counter``,
    ``OrderedDict`` or ``defaultdict`` of a builtin factory keeps its kind (a test may call
    ``most_common`` or read a missing key); any other is a plain dict."""
    coll = sys.modules.get("collections")
    if coll is None:  # the program never imported collections, so holds none of them
        return {"dict": pairs}
    if isinstance(v, coll.Counter):
        return {"counter": pairs}
    if isinstance(v, coll.OrderedDict):
        return {"ordereddict": pairs}
    if isinstance(v, coll.defaultdict):
        factory = coll.defaultdict.default_factory.__get__(v)
        name = next((n for n, t in FACTORIES.items() if t is factory), None)
        if name is not None:
            return {"defaultdict": [name, pairs]}
    return {"dict": pairs}


def _encode_other(v, ref, depth):
    t = type(v)
    if not t.__flags__ & HEAPTYPE and hasattr(t, "__next__"):
        return {"iter": [encode(x, ref, depth) for x in v]}
    if t is _loaded("fractions", "Fraction"):
        return {"fraction": [encode(v.numerator, None, depth), encode(v.denominator, None, depth)]}
    if t is _loaded("decimal", "Decimal"):
        return {"decimal": str(v)}
    if t is range:
        return {"range": [encode(n, None, depth) for n in (v.start, v.stop, v.step)]}
    deque = _loaded("collections", "deque")
    if deque is not None and isinstance(v, deque):
        return {"deque": [[encode(x, ref, depth) for x in deque.__iter__(v)],
                          deque.maxlen.__get__(v)]}
    moment = _encode_datetime(v)
    if moment is not None:
        return moment
    if t is type(sys) and _stdlib_module(v.__name__):
        return {"module": v.__name__}
    if t is type and vars(builtins).get(v.__name__) is v:
        return {"type": v.__name__}
    if ref is None:
        raise TypeError(f"not plain data: {t.__name__}")
    return ref(v)


# datetime types, subclass before base, with the fields that rebuild them
DATETIME_FIELDS = (
    ("datetime", ("year", "month", "day", "hour", "minute", "second", "microsecond", "fold")),
    ("date", ("year", "month", "day")),
    ("time", ("hour", "minute", "second", "microsecond", "fold")),
    ("timedelta", ("days", "seconds", "microseconds")),
)


def _encode_datetime(v):
    """A ``datetime`` date, datetime, time or timedelta (of any subclass) as its kind, fields
    and fixed UTC offset, read through the base type's own descriptors; None if ``v`` is
    none of those or has a time zone other than a fixed ``timezone``."""
    mod = sys.modules.get("datetime")
    for kind, fields in DATETIME_FIELDS if mod is not None else ():
        base = getattr(mod, kind)
        if isinstance(v, base):
            tz = base.tzinfo.__get__(v) if hasattr(base, "tzinfo") else None
            if tz is not None and type(tz) is not mod.timezone:
                return None
            offset = tz and mod.timezone.utcoffset(tz, None)
            zone = tz and [offset.days, offset.seconds, offset.microseconds, tz.tzname(None)]
            return {"datetime": [kind, [getattr(base, f).__get__(v) for f in fields], zone]}
    return None


def _loaded(module, name):
    """``module.name`` if the program imported that module (so only then can it hold one)."""
    return getattr(sys.modules.get(module), name, None)


# Standard modules whose import acts (prints, opens a browser, installs site hooks into the
# builtins): the judge never imports them for the program.
IMPORT_ACTS = frozenset({"antigravity", "this", "site", "idlelib", "turtledemo", "__hello__",
                         "__phello__"})


def _stdlib_module(name):
    """A top-level standard-library module that only defines things when imported (not a
    submodule: importing ``venv.__main__`` runs a program)."""
    return isinstance(name, str) and name in sys.stdlib_module_names and name not in IMPORT_ACTS


MAX_INT_DIGITS = 100_000  # a returned integer longer than this is not judged (host CPU)
MAX_RANGE_ITEMS = 1 << 20  # a returned range longer than this is not judged (host memory)
_CHUNK = 4000  # below CPython's 4300-digit limit on str -> int, which the host keeps


def big_int(text: str, max_digits=MAX_INT_DIGITS) -> int:
    """``int(text)`` for integers of any length up to ``max_digits`` (None: any), without
    lifting the interpreter's str -> int limit for the whole host process; longer ones raise
    ValueError."""
    if type(text) is not str:
        raise ValueError("malformed integer")
    digits = text[1:] if text[:1] in "+-" else text
    if len(digits) <= _CHUNK:
        return int(text)
    if not digits.isdigit():
        raise ValueError("malformed integer")
    if max_digits is not None and len(digits) > max_digits:
        raise ValueError(f"integer with {len(digits)} digits (at most {max_digits} are judged)")
    value = 0
    for i in range(0, len(digits), _CHUNK):
        part = digits[i: i + _CHUNK]
        value = value * 10 ** len(part) + int(part)
    return -value if text.startswith("-") else value


# namedtuple classes one decoder builds, and fields of one: past either, a plain tuple (each
# class compiles code, which a reply of many distinct names must not multiply)
MAX_NAMED = 1000


class Decoder:
    """Tagged form -> value, building only standard types whatever the sender wrote: no code
    of the sender's can run here. Malformed input raises ValueError or TypeError.

    ``ref`` turns a reference id into an object (the judge's handles, the candidate's own
    objects); without it a reference is malformed. ``live`` (inside the sandbox) rebuilds
    iterators, modules, builtin types and the standard types below; otherwise (on the host) an
    iterator, a ``range`` or a ``deque`` is the list of its items, a namedtuple a tuple, a
    ``Counter``, ``OrderedDict`` or ``defaultdict`` a dict, and a module, a type or a date is
    malformed.
    Only the host caps integers at MAX_INT_DIGITS (its own CPU): inside the sandbox the job's
    time and memory limits bound them, so ``math.factorial(30000)`` is judged."""

    def __init__(self, ref=None, live=False):
        self.ref = ref
        self.live = live
        self.max_digits = None if live else MAX_INT_DIGITS
        self.range_items = 0  # items of ranges expanded so far (host only)
        self.named = {}  # namedtuple classes built so far, by type and field names

    def __call__(self, v, depth=0):
        if depth > MAX_DEPTH:
            raise ValueError("value nested too deeply")
        t = type(v)
        if v is None or t is bool or t is str or t is float:
            return v
        if t is int:
            if not -(2**53) < v < 2**53:
                raise ValueError("malformed integer")
            return v
        if t is list:
            return [self(x, depth + 1) for x in v]
        if t is not dict or len(v) != 1:
            raise ValueError("malformed value")
        ((tag, x),) = v.items()
        build = getattr(self, f"tag_{tag}", None) if type(tag) is str else None
        if build is None:
            raise ValueError(f"bad tag {tag!r}"[:80])
        return build(x, depth + 1)

    def items(self, x, depth):
        if type(x) is not list:
            raise ValueError("malformed container")
        return [self(i, depth) for i in x]

    def tag_int(self, x, depth):
        return big_int(x, self.max_digits)

    def tag_float(self, x, depth):
        if type(x) is not str:
            raise ValueError("malformed float")
        return float(x)

    def tag_complex(self, x, depth):
        re, im = self.items(x, depth)
        return complex(self.tag_float(re, depth), self.tag_float(im, depth))

    def tag_bytes(self, x, depth):
        if type(x) is not str:
            raise ValueError("malformed bytes")
        return base64.b64decode(x, validate=True)

    def tag_tuple(self, x, depth):
        return tuple(self.items(x, depth))

    def tag_set(self, x, depth):
        return set(self.items(x, depth))

    def tag_frozenset(self, x, depth):
        return frozenset(self.items(x, depth))

    def tag_dict(self, x, depth):
        pairs = self.items(x, depth)
        if not all(type(p) is list and len(p) == 2 for p in pairs):
            raise ValueError("malformed dict")
        return dict(pairs)

    def tag_namedtuple(self, x, depth):
        """A namedtuple rebuilt by the standard factory with the sender's type and field names
        (validated identifiers: the factory refuses any other, and renames bad fields); on the
        host, or past MAX_NAMED classes or fields, a tuple."""
        if type(x) is not list or len(x) != 3 or type(x[0]) is not str or type(
                x[1]) is not list or not all(type(f) is str for f in x[1]):
            raise ValueError("malformed namedtuple")
        values = self.items(x[2], depth)
        if len(values) != len(x[1]):
            raise ValueError("malformed namedtuple")
        key = (x[0], tuple(x[1]))
        if not self.live or key not in self.named and (
                len(self.named) >= MAX_NAMED or len(key[1]) > MAX_NAMED):
            return tuple(values)
        if key not in self.named:
            import collections  # here, not at the top: most jobs never need it in the template

            self.named[key] = collections.namedtuple(x[0], x[1], rename=True)
        return tuple.__new__(self.named[key], values)

    def tag_counter(self, x, depth):
        return self.mapping("Counter", self.tag_dict(x, depth))

    def tag_ordereddict(self, x, depth):
        return self.mapping("OrderedDict", self.tag_dict(x, depth))

    def tag_defaultdict(self, x, depth):
        if type(x) is not list or len(x) != 2 or type(x[0]) is not str or x[0] not in FACTORIES:
            raise ValueError("malformed defaultdict")
        return self.mapping("defaultdict", self.tag_dict(x[1], depth), FACTORIES[x[0]])

    def mapping(self, kind, d, *factory):
        """``d`` as the ``collections`` mapping ``kind`` inside the sandbox; on the host, a dict."""
        if not self.live:
            return d
        import collections  # here, not at the top: most jobs never need it in the template

        return getattr(collections, kind)(*factory, d)

    def tag_type(self, x, depth):
        """A builtin type, by name: the reader's own (never on the host)."""
        t = vars(builtins).get(x) if self.live and type(x) is str else None
        if type(t) is not type:
            raise ValueError("malformed type reference")
        return t

    def tag_iter(self, x, depth):
        values = self.items(x, depth)
        return iter(values) if self.live else values

    def tag_fraction(self, x, depth):
        num, den = self.items(x, depth)
        if type(num) is not int or type(den) is not int or den == 0:
            raise ValueError("malformed fraction")
        import fractions  # here, not at the top: most jobs never need it in the template

        return fractions.Fraction(num, den)

    def tag_decimal(self, x, depth):
        if type(x) is not str:
            raise ValueError("malformed decimal")
        import decimal  # here, not at the top: most jobs never need it in the template

        return decimal.Decimal(x)

    def tag_keys(self, x, depth):
        keys = self.items(x, depth)
        return dict.fromkeys(keys).keys() if self.live else keys

    def tag_values(self, x, depth):
        values = self.items(x, depth)
        return dict(enumerate(values)).values() if self.live else values

    def tag_items(self, x, depth):
        pairs = self.items(x, depth)
        if not all(type(p) is tuple and len(p) == 2 for p in pairs):
            raise ValueError("malformed dict items")
        return dict(pairs).items() if self.live else pairs

    def tag_bytearray(self, x, depth):
        data = self.tag_bytes(x, depth)
        return bytearray(data) if self.live else data

    def tag_range(self, x, depth):
        bounds = self.items(x, depth)
        if len(bounds) != 3 or not all(type(n) is int for n in bounds) or bounds[2] == 0:
            raise ValueError("malformed range")
        if self.live:
            return range(*bounds)
        # its list is built here, on the host: all ranges of one value share one budget (a
        # list of many ranges, each under the cap, must not multiply the host's memory)
        self.range_items += len(range(*bounds))
        if self.range_items > MAX_RANGE_ITEMS:
            raise ValueError(f"ranges of {self.range_items} items in all (at most "
                             f"{MAX_RANGE_ITEMS} are judged)")
        return list(range(*bounds))

    def tag_deque(self, x, depth):
        if type(x) is not list or len(x) != 2 or not (x[1] is None or type(x[1]) is int):
            raise ValueError("malformed deque")
        items = self.items(x[0], depth)
        if not self.live:
            return items
        import collections  # here, not at the top: most jobs never need it in the template

        return collections.deque(items, x[1])

    def tag_datetime(self, x, depth):
        """A date, datetime, time or timedelta rebuilt from its fields (never on the host)."""
        if not self.live or type(x) is not list or len(x) != 3:
            raise ValueError("malformed datetime value")
        kind, values, zone = x
        fields = dict(DATETIME_FIELDS).get(kind)
        if fields is None or type(values) is not list or len(values) != len(fields) or not all(
                type(n) is int for n in values):
            raise ValueError("malformed datetime value")
        import datetime  # here, not at the top: most jobs never need it in the template

        kwargs = dict(zip(fields, values))
        if zone is not None:
            kwargs["tzinfo"] = datetime.timezone(datetime.timedelta(*zone[:3]), zone[3])
        return getattr(datetime, kind)(**kwargs)

    def tag_module(self, x, depth):
        if not self.live or not _stdlib_module(x):
            raise ValueError("malformed module reference")
        return importlib.import_module(x)

    def tag_ref(self, x, depth):
        if self.ref is None or type(x) is not int:
            raise ValueError("a reference where plain data was expected")
        return self.ref(x)


def decode(v):
    """Decode a value on the host (a fresh decoder each time: its range budget is per value)."""
    return Decoder()(v)
