"""pyconc's PriorityQueue order against a stable sort: items leave by (item, insertion order).

pyconc decides most comparisons of int items and of tuples that start with one or two ints from
keys cached beside each entry (csrc/thread/queue.c, entry_t), and the rest by comparing the items.
The oracle is Python's sorted(), which is stable and uses only `<`: after any sequence of puts and
gets, get() must return the very object (by identity) that comes first when the items still in
the queue are sorted in the order they were put. The items mix what the keys handle with what
they must leave alone: ints at the edges of a machine digit and of the 32-bit packing (+-2**30,
+-2**31), big ints, bools and floats that compare equal to ints, negative values, and tuples of
one to three elements whose first elements differ or tie."""
import hypothesis.strategies as st
import pytest
from hypothesis import given

import pyconc.queue as pc_queue

from .common import tally
from .profiles import fuzz_settings, steps

pytestmark = pytest.mark.timeout(120)

EDGES = [0, 1, -1, 2**30 - 1, 2**30, -(2**30 - 1), -(2**30), 2**31 - 1, 2**31, -(2**31),
         -(2**31) - 1, 2**32, 2**62, -(2**63), 2**64]
numbers = st.one_of(st.integers(-3, 3), st.sampled_from(EDGES), st.booleans(),
                    st.sampled_from([0.0, -0.5, 1.0, 2.5, float(2**30), -float(2**31)]),
                    st.integers())
FAMILIES = {
    "numbers": numbers,
    "tuples of numbers": st.lists(numbers, min_size=1, max_size=3).map(tuple),
    "(number, text)": st.tuples(numbers, st.text(max_size=1)),
    "(number, number, text)": st.tuples(numbers, numbers, st.text(max_size=1)),
}


def fresh(x):
    """A new object equal to x (ints from -5 to 256 and bools are singletons: equal ones are the
    same object, and which one leaves first cannot be seen)."""
    if isinstance(x, tuple):
        return tuple([fresh(e) for e in x])
    if type(x) is int:
        return int(str(x))
    if type(x) is float:
        return float(repr(x))
    return x


@fuzz_settings(300)
@given(data=st.data(), family=st.sampled_from(sorted(FAMILIES)))
def test_get_returns_the_first_of_a_stable_sort(data, family):
    items = FAMILIES[family]
    ops = data.draw(st.lists(st.one_of(items.map(lambda x: ("put", x)), st.just(("get",))),
                             max_size=steps(60)), label="ops")
    tally(1, len(ops))
    q = pc_queue.PriorityQueue()
    model = []                       # the items in the queue, in the order they were put
    for op in ops:
        if op[0] == "put":
            item = fresh(op[1])      # identity tells equal items apart
            q.put(item)
            model.append(item)
        elif model:
            expected = sorted(model)[0]          # sorted() is stable
            got = q.get()
            assert got is expected, (got, expected, model)
            model.remove(next(x for x in model if x is got))
        else:
            assert q.empty()
        assert q.qsize() == len(model)
    while model:
        expected = sorted(model)[0]
        got = q.get_nowait()
        assert got is expected, (got, expected, model)
        model.remove(next(x for x in model if x is got))
    assert q.empty()
