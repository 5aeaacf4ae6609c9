"""The records ps_mem's stages pass each other (classes derived from
ps_mem.Record): tuples with named items, made as collections.namedtuple
makes them, which the type checker is shown instead."""

import marshal
from collections import namedtuple

import pytest

from tests.harness import ps_mem


class Point(ps_mem.Record):
    """A point, maybe labelled."""

    x: int
    y: int
    label: str = "origin"
    weight: float = 1.0

    def norm(self) -> int:
        return abs(self.x) + abs(self.y)

    @staticmethod
    def origin() -> "Point":
        return Point(0, 0)


# What namedtuple makes of the same class: the yardstick.
Expected = namedtuple("Point", ["x", "y", "label", "weight"], defaults=["origin", 1.0])


@pytest.mark.parametrize("args, named", [
    ((1, 2), {}),
    ((1, 2, "a"), {}),
    ((1, 2, "a", 3.0), {}),
    ((1,), {"y": 2}),
    ((), {"y": 2, "x": 1, "weight": 0.5}),
    ((1, 2), {"weight": 2.0}),
])
def test_made_as_namedtuple_makes_it(args, named):
    point = Point(*args, **named)
    expected = Expected(*args, **named)
    assert tuple(point) == tuple(expected) and point == expected
    assert (point.x, point.y, point.label, point.weight) == \
        (expected.x, expected.y, expected.label, expected.weight)
    assert repr(point) == repr(expected)
    assert type(point).__name__ == "Point" and isinstance(point, tuple)


@pytest.mark.parametrize("args, named, message", [
    ((1,), {}, "Point: missing y"),
    ((), {}, "Point: missing x, y"),
    ((1, 2, "a", 1.0, 5), {}, "Point takes 4 values, not 5"),
    ((1, 2), {"z": 3}, "Point: unexpected or repeated value for 'z'"),
    ((1, 2), {"x": 3}, "Point: unexpected or repeated value for 'x'"),
])
def test_arguments_that_do_not_fit(args, named, message):
    with pytest.raises(TypeError) as caught:
        Point(*args, **named)
    assert str(caught.value) == message


def test_replace_fields_and_docstring():
    point = Point(1, 2)
    assert point._replace(label="a", y=5) == (1, 5, "a", 1.0)
    assert point == (1, 2, "origin", 1.0)  # unchanged
    with pytest.raises(TypeError):
        point._replace(z=1)
    assert Point._fields == ("x", "y", "label", "weight")
    assert Point.__doc__ == "A point, maybe labelled."


def test_methods_of_the_class_are_kept():
    assert Point(3, -4).norm() == 7
    assert Point.origin() == (0, 0, "origin", 1.0) and type(Point.origin()) is Point


def test_immutable_and_slotted():
    point = Point(1, 2)
    with pytest.raises(AttributeError):
        point.x = 5
    with pytest.raises(AttributeError):
        point.other = 5  # no __dict__


def test_carried_by_marshal_as_a_plain_tuple():
    # How forked readers send their samples (see _Reader).
    sample = ps_mem.ProcessSample(7, "x", 1.0, 2.0, 0, 0, 5, True, True)
    assert ps_mem.ProcessSample(*marshal.loads(marshal.dumps(tuple(sample)))) == sample
