"""Views over the columnar `consultations` record the host hands a study: a `Batch` of
groups, each group a `Patient` of `Row`s. A row is a batch and an index: reading it reads
the columns, nothing is copied.

The host hands only the columns the manifest grants; a column it does not grant arrives
empty, and its property on `Row` is None (no codes for `Row.diagnoses`) for every row.
"""

from bisect import bisect_right
from itertools import compress

from .calendar import date_of_days
from .clinical import is_icd10_code, prefix_tuple
from .errors import StudyError

#: The columns a manifest may grant a study (`datasets = { consultations = [...] }`).
COLUMNS = (
    "date",
    "hour",
    "age_years",
    "sex",
    "departement",
    "visit_type",
    "association",
    "outcome",
    "diagnoses",
)

#: The key of a missing text value.
MISSING = 0xFFFFFFFF
#: The age of a patient whose age is unknown.
UNKNOWN_AGE = 255

_TEXTS = ("sex", "departement", "visit_type", "association", "outcome")


class Batch:
    """One batch as the host handed it: independent groups of rows."""

    __slots__ = (
        "columns",
        "rows",
        "_code_values",
        "_code_offsets",
        "_code_keys",
        "_prefix_rows",
        "_icd10_rows",
    )

    def __init__(self, columns):
        """Checks the record's shape once, so that every accessor can trust it."""
        groups = columns.groups
        if groups and groups[0] != 0:
            raise _malformed("the first group does not start at row 0")
        if any(groups[i] > groups[i + 1] for i in range(len(groups) - 1)):
            raise _malformed("the groups are not in row order")
        rows = groups[-1] if groups else 0
        if len(columns.seeds) != max(len(groups) - 1, 0):
            raise _malformed(
                f"{len(columns.seeds)} seeds for {max(len(groups) - 1, 0)} groups"
            )
        for name in ("date", "hour", "age_years"):
            _fits(name, len(getattr(columns, name)), rows)
        for name in _TEXTS:
            _fits(name, len(getattr(columns, name).keys), rows)
        codes = columns.diagnoses
        offsets = codes.offsets
        if offsets:
            if len(offsets) != rows + 1 or offsets[-1] > len(codes.keys):
                raise _malformed(f"`diagnoses` has {len(offsets)} offsets for {rows} rows")
        else:
            # Not granted: every row has no code.
            offsets = [0] * (rows + 1)
        self.columns = columns
        self.rows = rows
        self._code_values = codes.values
        self._code_offsets = offsets
        self._code_keys = codes.keys
        self._prefix_rows = {}
        self._icd10_rows = None

    def __len__(self) -> int:
        return self.rows

    @property
    def groups(self) -> int:
        """The number of groups (patients, or consultations for unit `consultation`)."""
        return max(len(self.columns.groups) - 1, 0)

    def group(self, index: int) -> "Patient":
        groups = self.columns.groups
        return Patient(self, groups[index], groups[index + 1])

    def row(self, index: int) -> "Row":
        if not 0 <= index < self.rows:
            raise IndexError(f"row {index} of a batch of {self.rows}")
        return Row(self, index)

    def all_rows(self):
        """Every row of the batch, across groups."""
        return (Row(self, i) for i in range(self.rows))

    def rows_with_prefix(self, prefixes) -> bytearray:
        """For each row of the batch, 1 when one of its codes starts with one of
        `prefixes`: computed once per batch and prefix list, in a pass over the batch's
        codes that runs in the interpreter's C loops, so that a row's test is a lookup."""
        flags = self._prefix_rows.get(prefixes)
        if flags is None:
            wanted = prefix_tuple(prefixes)
            flags = self._rows_with(
                {k for k, code in enumerate(self._code_values) if code.startswith(wanted)}
            )
            self._prefix_rows[prefixes] = flags
        return flags

    def rows_with_icd10_code(self) -> bytearray:
        """For each row of the batch, 1 when one of its codes is an ICD-10 code."""
        if self._icd10_rows is None:
            self._icd10_rows = self._rows_with(
                {k for k, code in enumerate(self._code_values) if is_icd10_code(code)}
            )
        return self._icd10_rows

    def _rows_with(self, matching: set) -> bytearray:
        flags = bytearray(self.rows)
        if matching:
            offsets = self._code_offsets
            hits = map(matching.__contains__, self._code_keys)
            # Only the positions of matching codes reach Python code.
            for position in compress(range(offsets[-1]), hits):
                flags[bisect_right(offsets, position) - 1] = 1
        return flags


def _malformed(what: str) -> StudyError:
    return StudyError(f"malformed batch: {what}")


def _fits(name: str, length: int, rows: int):
    if length not in (0, rows):
        raise _malformed(f"`{name}` has {length} values for {rows} rows")


class Patient:
    """The rows of one group, in date order: one patient's consultations of the period (a
    study of unit `patient`), or a single consultation (unit `consultation`)."""

    __slots__ = ("batch", "start", "end")

    def __init__(self, batch: Batch, start: int, end: int):
        self.batch = batch
        self.start = start
        self.end = end

    def __len__(self) -> int:
        return self.end - self.start

    def __iter__(self):
        batch = self.batch
        return (Row(batch, i) for i in range(self.start, self.end))

    def __getitem__(self, index: int) -> "Row":
        size = self.end - self.start
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"row {index} of a patient's {size} rows")
        return Row(self.batch, self.start + index)

    @property
    def rows(self) -> list:
        """The rows, in date order."""
        return list(self)

    @property
    def first(self):
        return Row(self.batch, self.start) if self.end > self.start else None

    @property
    def last(self):
        return Row(self.batch, self.end - 1) if self.end > self.start else None


class Row:
    """One consultation. Each property reads one column; a column the manifest does not
    grant is None (no codes for `diagnoses`) for every row, as is a value the source did
    not send."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: Batch, index: int):
        self.batch = batch
        #: The row's index in the whole batch: what `Out.add_raw` takes.
        self.index = index

    @property
    def days(self):
        """Consultation start date in days since 1970-01-01 (`date`)."""
        column = self.batch.columns.date
        return column[self.index] if column else None

    @property
    def date(self):
        """Consultation start date (`date`), a `datetime.date`."""
        column = self.batch.columns.date
        return date_of_days(column[self.index]) if column else None

    @property
    def hour(self):
        """Consultation start hour, 0-23 (`hour`)."""
        column = self.batch.columns.hour
        return column[self.index] if column else None

    @property
    def age_years(self):
        """Age at consultation in whole years, top-coded at 90 (`age_years`); None when
        unknown."""
        column = self.batch.columns.age_years
        if not column:
            return None
        age = column[self.index]
        return None if age == UNKNOWN_AGE else age

    @property
    def sex(self):
        """`F`, `M` or `U` (`sex`)."""
        return _text(self.batch.columns.sex, self.index)

    @property
    def departement(self):
        """INSEE département code, such as `35` or `2A` (`departement`)."""
        return _text(self.batch.columns.departement, self.index)

    @property
    def visit_type(self):
        """`home`, `centre`, `tele` or `other` (`visit_type`)."""
        return _text(self.batch.columns.visit_type, self.index)

    @property
    def association(self):
        """The association that sent the consultation (`association`)."""
        return _text(self.batch.columns.association, self.index)

    @property
    def outcome(self):
        """`home`, `hospital`, `deceased` or `unknown` (`outcome`)."""
        return _text(self.batch.columns.outcome, self.index)

    @property
    def diagnoses(self) -> list:
        """The consultation's codes (`diagnoses`): ICD-10 upper-case without dot
        (`J111`), other systems as `system|code`. Empty when not granted."""
        batch = self.batch
        offsets = batch._code_offsets
        values = batch._code_values
        keys = batch._code_keys[offsets[self.index] : offsets[self.index + 1]]
        return [values[key] for key in keys]

    def has_icd10_code(self) -> bool:
        """Whether one of the codes is an ICD-10 code (see `is_icd10_code`)."""
        batch = self.batch
        flags = batch._icd10_rows
        if flags is None:
            flags = batch.rows_with_icd10_code()
        return flags[self.index] == 1

    def has_code_prefix(self, prefixes) -> bool:
        """Whether one of the codes starts with one of `prefixes` (a string, or a tuple
        or list of them): `row.has_code_prefix(("J10", "J11"))`."""
        batch = self.batch
        if type(prefixes) is list:
            prefixes = tuple(prefixes)
        flags = batch._prefix_rows.get(prefixes)
        if flags is None:
            flags = batch.rows_with_prefix(prefixes)
        return flags[self.index] == 1

    def __repr__(self) -> str:
        return f"Row({self.index})"


def _text(texts, row: int):
    keys = texts.keys
    if not keys:
        return None
    key = keys[row]
    return None if key == MISSING else texts.values[key]
