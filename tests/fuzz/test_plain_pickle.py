"""Differential fuzz of the C pickles of plain data (csrc/core/plain.c) against pickle itself.

pyconc writes plain messages (None, bool, int, float, str, bytes, tuples, lists and dicts of
them) as protocol 5 pickles in C and reads them back in C, declining everything else to pickle.
The oracle is the stdlib's pickle:
- what _plain_dumps writes, pickle.loads reads as an object of the same types and values;
- what _plain_loads accepts, pickle.loads reads as the same object; whatever pickle rejects,
  _plain_loads declines (so the caller's pickle.loads raises pickle's own error);
- objects whose pickle depends on the memo (a list or dict met twice, a recursive list), on a
  reduce method (subclasses, sets, enums) or on more than 64 bits are declined.
"""
import math
import pickle
import struct

import pytest
from hypothesis import assume, given, strategies as st

from pyconc import _core

from .profiles import fuzz_settings

pytestmark = pytest.mark.timeout(900)   # the long profile's size


def same(a, b):
    """a and b have the same types and values all the way down (NaN == NaN, -0.0 != 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a.items(), b.items()))
    return a == b


atoms = (st.none() | st.booleans()
         | st.integers(min_value=-2**63, max_value=2**63 - 1)
         | st.sampled_from([0, 255, 256, 65535, 65536, -1, 2**31 - 1, -2**31, 2**31, -2**31 - 1,
                            2**63 - 1, -2**63])
         | st.floats(allow_nan=True, allow_infinity=True)
         | st.text(max_size=40) | st.text(min_size=250, max_size=300, alphabet="ab\u00e9\u4e2d")
         | st.binary(max_size=40) | st.binary(min_size=250, max_size=300))
short_atoms = (st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**63 - 1)
               | st.floats() | st.text(max_size=20) | st.binary(max_size=20))
hashables = st.recursive(short_atoms, lambda inner: st.tuples(inner, inner) | st.lists(inner).map(tuple),
                         max_leaves=8)
plain = st.recursive(
    atoms,
    lambda inner: (st.lists(inner, max_size=8) | st.lists(inner, max_size=8).map(tuple)
                   | st.dictionaries(hashables, inner, max_size=6)),
    max_leaves=20)


def rough_size(obj):
    """About the bytes of C's pickle of a plain obj (its cap is 16 KiB)."""
    if isinstance(obj, str):
        return len(obj.encode("utf-8", "surrogatepass")) + 5
    if isinstance(obj, bytes):
        return len(obj) + 5
    if isinstance(obj, (tuple, list)):
        return sum(rough_size(x) for x in obj) + 3
    if isinstance(obj, dict):
        return sum(rough_size(k) + rough_size(v) for k, v in obj.items()) + 3
    return 10


@fuzz_settings(600)
@given(plain)
def test_what_c_writes_pickle_reads_and_c_reads_back(obj):
    data = _core._plain_dumps(obj)
    if data is None:
        assert rough_size(obj) > 15 * 1024, obj     # over the cap: pickle's
        return
    assert same(pickle.loads(data), obj)
    ok, back = _core._plain_loads(data)
    assert ok and same(back, obj)


def mutations(data, draw):
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "opcode"]))
        i = draw(st.integers(0, max(0, len(b) - 1)))
        if kind == "flip" and b:
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            b.insert(i, draw(st.integers(0, 255)))
        elif kind == "delete" and b:
            del b[i]
        elif kind == "truncate":
            del b[i:]
        elif kind == "opcode" and b:
            # an opcode of the dialect, or one pickle has and the dialect has not
            b[i] = draw(st.sampled_from(b"(.NJKMGXBC)t]e}u\x80\x85\x86\x87\x88\x89\x8a\x8c"
                                        b"\x94\x95ahsqrpgIL0123"))
    return bytes(b)


@fuzz_settings(1500)
@given(plain, st.data())
def test_a_damaged_message_is_read_as_pickle_reads_it_or_declined(obj, data):
    clean = _core._plain_dumps(obj)
    assume(clean is not None)
    raw = mutations(clean, data.draw)
    ok, back = _core._plain_loads(raw)
    try:
        expected = pickle.loads(raw)
    except Exception:
        assert not ok, raw         # pickle's error is the caller's, so C must decline
        return
    if ok:
        assert same(back, expected), raw


@fuzz_settings(300)
@given(plain)
def test_what_pickle_writes_is_declined_or_the_same(obj):
    # pickle frames and memoizes: C reads only its own dialect, and declines the rest
    # except the few that need neither (b"\x80\x05N." is None's pickle and also C's)
    for proto in (2, 4, 5):
        raw = pickle.dumps(obj, proto)
        ok, back = _core._plain_loads(raw)
        assert not ok or (same(back, obj) and raw == _core._plain_dumps(obj))


class MyInt(int):
    pass


class MyStr(str):
    pass


def declined_objects():
    shared = [1, 2]
    d = {}
    rec = []
    rec.append(rec)
    deep = ()
    for _ in range(40):
        deep = (deep,)
    long_s = "x" * 2000
    return [
        ("int beyond 64 bits", 2**63), ("negative int beyond 64 bits", -2**63 - 1),
        ("int subclass", MyInt(3)), ("str subclass", MyStr("a")),
        ("lone surrogate", "\ud800"), ("set", {1, 2}), ("frozenset", frozenset()),
        ("bytearray", bytearray(b"x")), ("complex", 1j), ("object", object()),
        ("shared list", [shared, shared]), ("shared dict in a tuple", (d, d)),
        ("recursive list", rec), ("deep tuples", deep),
        ("output over the cap", [long_s] * 20), ("huge string", "y" * 20_000),
        ("a plain list holding a set", [1, {2}]), ("dict with a subclass key", {MyStr("k"): 1}),
    ]


@pytest.mark.parametrize("name,obj", declined_objects(), ids=[n for n, _ in declined_objects()])
def test_objects_that_need_pickle_are_declined(name, obj):
    assert _core._plain_dumps(obj) is None


def test_boundaries_pick_pickles_opcodes_and_read_back():
    for v in [0, 255, 256, 65535, 65536, -1, 2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**63 - 1,
              -2**63, True, False, None, 0.0, -0.0, math.inf, -math.inf, math.nan, "", b"",
              "a" * 255, "a" * 256, b"b" * 255, b"b" * 256, "\u00e9" * 200, (), [], {},
              (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), {"k": [1, (2, 3.5)]}]:
        data = _core._plain_dumps(v)
        assert same(pickle.loads(data), v), v
        ok, back = _core._plain_loads(data)
        assert ok and same(back, v), v


def test_trailing_bytes_and_wrong_protocol_are_declined():
    data = _core._plain_dumps((1, "a"))
    assert _core._plain_loads(data)[0]
    assert not _core._plain_loads(data + b".")[0]
    assert not _core._plain_loads(b"\x80\x04" + data[2:])[0]
    assert not _core._plain_loads(data[:-1])[0]
    assert not _core._plain_loads(b"")[0]


def test_an_unhashable_key_is_declined_as_pickle_raises():
    # EMPTY_DICT MARK EMPTY_LIST K1 SETITEMS: pickle raises TypeError
    raw = b"\x80\x05}(]K\x01u."
    with pytest.raises(TypeError):
        pickle.loads(raw)
    assert _core._plain_loads(raw) == (False, None)


@pytest.mark.parametrize("raw", [b"\x80\x05]((K\x01et\x86.", b"\x80\x05}((K\x01K\x02ut\x86.",
                                 b"\x80\x05(]((K\x01ett."])
def test_appends_and_setitems_below_an_enclosing_mark_are_declined(raw):
    # pickle's fence: the list or dict under APPENDS / SETITEMS must be above any open MARK
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(raw)
    assert _core._plain_loads(raw) == (False, None)


dialect_ops = st.sampled_from([b"N", b"\x88", b"K\x05", b"M\x01\x02", b"J\xff\xff\xff\xff",
                               b"\x8c\x01a", b"C\x01b", b")", b"]", b"}", b"(", b"t", b"e", b"u",
                               b"\x85", b"\x86", b"\x87"])


@fuzz_settings(3000)
@given(st.lists(dialect_ops, max_size=14))
def test_any_sequence_of_the_dialects_opcodes_reads_as_pickle_reads_it(ops):
    # structure the mutations of a valid message rarely reach: marks, fences and targets in
    # every arrangement
    raw = b"\x80\x05" + b"".join(ops) + b"."
    ok, back = _core._plain_loads(raw)
    try:
        expected = pickle.loads(raw)
    except Exception:
        assert not ok, raw
        return
    if ok:
        assert same(back, expected), raw
