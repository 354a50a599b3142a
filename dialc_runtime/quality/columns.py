"""Rows held as columns: each field's distinct values once, each row's value as a small integer code.

The filter's global view keeps a row per record; as dicts or tuples that is a few hundred bytes per record,
as columns a few bytes per field (a serial id, "prompts-000123", as its head's code and its number). Rows are
read back as read-only mappings (`TableRow`), made on access, and give the values they were given (the
same objects: values alike are held once, told apart as JSON tells them apart: 1, 1.0 and true differ).
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()  # a row without this field
WIDER = {"B": "H", "H": "I", "I": "Q"}  # code array types, narrowest first
LIMIT = {"B": 2**8, "H": 2**16, "I": 2**32, "Q": 2**64}
SERIAL = re.compile(r"([0-9]{1,18})\Z")  # a trailing run of ASCII digits an int64 holds


def value_key(value: Any) -> Hashable:
    """What tells values apart: a string itself; a number, bool or None with its type (True == 1 == 1.0 in
    Python, not in JSON); a dict, list, tuple or float by its repr (NaN, -0.0, key order); anything else by
    identity."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int or kind is bool or value is None:
        return (kind, value)
    if kind is float or kind is dict or kind is list or kind is tuple:
        return (kind, repr(value))
    return (object, id(value))  # kept alive in the column's values, so its id stays its own


class Column:
    """One field of every row, dictionary-coded: the distinct values in a list, a code per row in an array
    as narrow as their number allows."""

    __slots__ = ("codes", "index", "values")

    def __init__(self, rows: int = 0) -> None:
        self.values: list[Any] = [ABSENT]
        self.index: dict[Hashable, int] = {}
        self.codes = array("B", bytes(rows))  # every row so far without it

    def __len__(self) -> int:
        return len(self.codes)

    def code(self, value: Any) -> int:
        if value is ABSENT:
            return 0
        key = value_key(value)
        code = self.index.get(key)
        if code is None:
            code = self.index[key] = len(self.values)
            self.values.append(value)
            if code >= LIMIT[self.codes.typecode]:
                self.codes = array(WIDER[self.codes.typecode], self.codes)
        return code

    def append(self, value: Any) -> None:
        code = self.code(value)  # first: it may widen the codes into a new array
        self.codes.append(code)

    def set(self, i: int, value: Any) -> None:
        code = self.code(value)
        self.codes[i] = code

    def get(self, i: int) -> Any:
        return self.values[self.codes[i]]


class SerialColumn:
    """A field of mostly distinct strings that end in a number (record ids): the head before the digits
    coded as a Column, the digits as a number and their width. Any other value is held as a head alone."""

    __slots__ = ("heads", "numbers", "widths")

    def __init__(self, rows: int = 0) -> None:
        self.heads = Column(rows)
        self.numbers = array("q", bytes(8 * rows))
        self.widths = array("B", bytes(rows))  # 0: no number, the head is the whole value

    def __len__(self) -> int:
        return len(self.heads)

    def split(self, value: Any) -> tuple[Any, int, int]:
        if type(value) is str and (m := SERIAL.search(value)):
            digits = m.group(1)
            return value[: m.start()], int(digits), len(digits)
        return value, 0, 0

    def append(self, value: Any) -> None:
        head, number, width = self.split(value)
        self.heads.append(head)
        self.numbers.append(number)
        self.widths.append(width)

    def set(self, i: int, value: Any) -> None:
        head, self.numbers[i], self.widths[i] = self.split(value)
        self.heads.set(i, head)

    def get(self, i: int) -> Any:
        head, width = self.heads.get(i), self.widths[i]
        return head + str(self.numbers[i]).zfill(width) if width else head


class Table(Sequence["TableRow"]):
    """Rows as columns: `append` a mapping, `update` a row's fields, read `table[i]` as a mapping. A field
    named in `serial` is a SerialColumn, one named in `nested` (its values mappings) a Table of its own."""

    def __init__(self, serial: Iterable[str] = (), nested: Iterable[str] = ()) -> None:
        self.columns: dict[str, Column | SerialColumn | NestedColumn] = {}
        self.serial, self.nested = frozenset(serial), frozenset(nested)
        self.rows = 0

    def __len__(self) -> int:
        return self.rows

    def _column(self, name: str) -> Column | SerialColumn | NestedColumn:
        column = self.columns.get(name)
        if column is None:
            kind = NestedColumn if name in self.nested else SerialColumn if name in self.serial else Column
            column = self.columns[name] = kind(self.rows)
        return column

    def append(self, fields: Mapping[str, Any]) -> None:
        for name, value in fields.items():
            self._column(name).append(value)
        self.rows += 1
        for column in self.columns.values():
            if len(column) < self.rows:
                column.append(ABSENT)

    def update(self, i: int, fields: Mapping[str, Any]) -> None:
        """Set (or add) these fields of row i."""
        for name, value in fields.items():
            self._column(name).set(i, value)

    @overload
    def __getitem__(self, i: int) -> TableRow: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[TableRow]: ...
    def __getitem__(self, i: int | slice) -> TableRow | Sequence[TableRow]:
        if isinstance(i, slice):
            return [TableRow(self, j) for j in range(*i.indices(self.rows))]
        if not -self.rows <= i < self.rows:
            raise IndexError(i)
        return TableRow(self, i % self.rows)

    def __iter__(self) -> Iterator[TableRow]:
        return (TableRow(self, i) for i in range(self.rows))

    def value(self, i: int, name: str) -> Any:
        """Row i's value of a field, ABSENT where it has none."""
        column = self.columns.get(name)
        return ABSENT if column is None else column.get(i)

    def select(self, indices: Iterable[int]) -> Selection:
        return Selection(self, indices)


class NestedColumn:
    """A field whose values are mappings (a record's verdicts, dimension → verdict): a Table of their fields,
    read back as a TableRow."""

    __slots__ = ("present", "table")

    def __init__(self, rows: int = 0) -> None:
        self.table = Table()
        self.present = bytearray(rows)
        for _ in range(rows):
            self.table.append({})

    def __len__(self) -> int:
        return len(self.present)

    def append(self, value: Any) -> None:
        if value is not ABSENT and not isinstance(value, Mapping):
            raise TypeError(f"a nested column holds mappings, not {type(value).__name__}")
        self.present.append(value is not ABSENT)
        self.table.append({} if value is ABSENT else value)

    def set(self, i: int, value: Any) -> None:
        if value is not ABSENT and not isinstance(value, Mapping):
            raise TypeError(f"a nested column holds mappings, not {type(value).__name__}")
        self.present[i] = value is not ABSENT
        fields = {} if value is ABSENT else value
        self.table.update(i, {name: fields.get(name, ABSENT) for name in self.table.columns} | dict(fields))

    def get(self, i: int) -> Any:
        return TableRow(self.table, i) if self.present[i] else ABSENT


class Selection(Sequence["TableRow"]):
    """Some of a table's rows, in a given order (their indices in an array, not a view per row)."""

    def __init__(self, table: Table, indices: Iterable[int]) -> None:
        self.table, self.indices = table, array("q", indices)

    def __len__(self) -> int:
        return len(self.indices)

    @overload
    def __getitem__(self, i: int) -> TableRow: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[TableRow]: ...
    def __getitem__(self, i: int | slice) -> TableRow | Sequence[TableRow]:
        if isinstance(i, slice):
            return [TableRow(self.table, j) for j in self.indices[i]]
        return TableRow(self.table, self.indices[i])

    def __iter__(self) -> Iterator[TableRow]:
        return (TableRow(self.table, i) for i in self.indices)


class TableRow(Mapping[str, Any]):
    """Row i of a table, read like a dict (its fields in the order the table first saw them)."""

    __slots__ = ("index", "table")

    def __init__(self, table: Table, index: int) -> None:
        self.table, self.index = table, index

    def __getitem__(self, key: str) -> Any:
        value = self.table.value(self.index, key)
        if value is ABSENT:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:  # as dict.get, without a raise
        value = self.table.value(self.index, key)
        return default if value is ABSENT else value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.table.value(self.index, key) is not ABSENT

    def __iter__(self) -> Iterator[str]:
        return (name for name, column in self.table.columns.items() if column.get(self.index) is not ABSENT)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"TableRow({dict(self.items())!r})"
