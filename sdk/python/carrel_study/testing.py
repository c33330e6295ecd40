"""Trying a study without a host: build consultations (or draw dummy ones), hand them to
the study as the host would (only the granted columns, the same code path as in the
sandbox), and read back what each row added to.

    import app
    from carrel_study.testing import Consultation, Harness

    harness = Harness(["coded", "ili"], granted=["diagnoses"])
    assert harness.consultation(app, Consultation(diagnoses=["J111"])) == ["coded", "ili"]

Dummy data is made up: it holds no one, and its counts mean nothing. Only the host's run
on synthetic data (`carrel study try NAME --synthetic`) shows the released table.
"""

import bisect
import random
from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional

from .batch import COLUMNS, MISSING, UNKNOWN_AGE
from .calendar import date_of_days, parse_date
from .runner import Runner


@dataclass
class Texts:
    values: List[str]
    keys: List[int]


@dataclass
class CodeLists:
    values: List[str]
    offsets: List[int]
    keys: List[int]


@dataclass
class Consultations:
    """The record the host hands a study (`carrel:eds/study-types.consultations`)."""

    groups: List[int]
    seeds: List[int]
    date: List[int]
    hour: bytes
    age_years: bytes
    sex: Texts
    departement: Texts
    visit_type: Texts
    association: Texts
    outcome: Texts
    diagnoses: CodeLists


class Contribution(NamedTuple):
    row: int
    measure: int
    label: int


@dataclass
class Consultation:
    """A consultation to hand a study. Unset, `date` is 1970-01-01 and `hour` 0 (the host
    always has both), the age is unknown, texts are missing, there are no codes."""

    date: Optional[str] = None
    hour: int = 0
    age: Optional[int] = None
    sex: Optional[str] = None
    departement: Optional[str] = None
    visit_type: Optional[str] = None
    association: Optional[str] = None
    outcome: Optional[str] = None
    diagnoses: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class Added:
    """One contribution, read back by name: row `row` of group `group` adds to
    `measure` (under `label` when the table has study-chosen labels)."""

    group: int
    row: int
    measure: str
    label: Optional[str] = None

    def __str__(self) -> str:
        return self.measure if self.label is None else f"{self.measure}[{self.label}]"


class Harness:
    """A table (measures, labels), the run's parameters and the granted columns, as the
    manifest section declares them."""

    def __init__(self, measures, labels=(), params=None, granted=COLUMNS):
        unknown = [c for c in granted if c not in COLUMNS]
        if unknown:
            raise ValueError(f"not columns a study may be granted: {unknown}")
        self.measures = list(measures)
        self.labels = list(labels)
        self.params = dict(params or {})
        self.granted = set(granted)
        self.logged = []

    def consultations(self, groups, seeds=None) -> Consultations:
        """The record the host would hand for these groups (lists of `Consultation`), in
        order; group `g` gets seed `seeds[g]` (by default `g`)."""
        rows = [row for group in groups for row in group]
        starts = [0]
        for group in groups:
            starts.append(starts[-1] + len(group))
        has = self.granted.__contains__

        def texts(name):
            if not has(name):
                return Texts([], [])
            values, keys, index = [], [], {}
            for row in rows:
                value = getattr(row, name)
                if value is None:
                    keys.append(MISSING)
                    continue
                if value not in index:
                    index[value] = len(values)
                    values.append(value)
                keys.append(index[value])
            return Texts(values, keys)

        codes = CodeLists([], [], [])
        if has("diagnoses"):
            index = {}
            codes.offsets.append(0)
            for row in rows:
                for code in row.diagnoses:
                    if code not in index:
                        index[code] = len(codes.values)
                        codes.values.append(code)
                    codes.keys.append(index[code])
                codes.offsets.append(len(codes.keys))
        return Consultations(
            groups=starts,
            seeds=list(seeds) if seeds is not None else list(range(len(groups))),
            date=[parse_date(r.date) if r.date else 0 for r in rows] if has("date") else [],
            hour=bytes(r.hour for r in rows) if has("hour") else b"",
            age_years=bytes(UNKNOWN_AGE if r.age is None else r.age for r in rows)
            if has("age_years")
            else b"",
            sex=texts("sex"),
            departement=texts("departement"),
            visit_type=texts("visit_type"),
            association=texts("association"),
            outcome=texts("outcome"),
            diagnoses=codes,
        )

    def run(self, study, groups, seeds=None) -> List[Added]:
        """Runs `study` (its module, e.g. `import app`) as the host would: `start`, then one
        batch of these groups. Raises what the study raises, and `ValueError` for a
        contribution the host would refuse."""
        from . import log

        runner = Runner(study, Contribution)
        log.set_sink(lambda level, message: self.logged.append(f"{level}: {message}"))
        runner.start(self.measures, self.labels, sorted(self.params.items()))
        columns = self.consultations(groups, seeds)
        rows = columns.groups[-1] if columns.groups else 0
        added = []
        for c in runner.classify(columns):
            if not 0 <= c.row < rows:
                raise ValueError(f"row {c.row} is outside the batch")
            if not 0 <= c.measure < len(self.measures):
                raise ValueError(f"measure {c.measure} is not declared")
            label = None
            if self.labels:
                if not 0 <= c.label < len(self.labels):
                    raise ValueError(f"label {c.label} is not declared")
                label = self.labels[c.label]
            elif c.label != 0:
                raise ValueError(f"label {c.label} is not declared")
            group = bisect.bisect_right(columns.groups, c.row) - 1
            row = c.row - columns.groups[group]
            added.append(Added(group, row, self.measures[c.measure], label))
        return added

    def consultation(self, study, row: Consultation) -> List[str]:
        """What one consultation adds to, as `measure` or `measure[label]` strings."""
        return [str(a) for a in self.run(study, [[row]])]

    def patient(self, study, rows) -> List[Added]:
        """What one patient's consultations (in date order) add to."""
        return self.run(study, [list(rows)])


# What dummy consultations are made of: a few plausible values of each column.
_DEPARTEMENTS = ("35", "29", "22", "56", "75", "13", "69", "2A", "971")
_CODES = (
    "J11", "J111", "J10", "A09", "A080", "J21", "J219", "R05", "R509", "J069",
    "S61", "T78", "http://snomed.info/sct|6142004",
)


def dummy(consultations: int = 1000, seed: int = 1, unit: str = "consultation"):
    """Made-up consultations, as groups for `Harness.run`: one consultation a group, or
    (unit `patient`) one to four a patient in date order. Reproducible with `seed`."""
    rng = random.Random(seed)
    rows = []
    for _ in range(consultations):
        day = parse_date("2024-10-01") + rng.randrange(240)
        codes = rng.sample(_CODES, rng.choice((0, 1, 1, 1, 2)))
        rows.append(
            Consultation(
                date=date_of_days(day).isoformat(),
                hour=rng.randrange(24),
                age=rng.choice((None, rng.randrange(91))),
                sex=rng.choice(("F", "M", "U")),
                departement=rng.choice(_DEPARTEMENTS),
                visit_type=rng.choice(("home", "centre", "tele", "other")),
                association="dummy",
                outcome=rng.choice(("home", "hospital", "unknown")),
                diagnoses=codes,
            )
        )
    if unit == "consultation":
        return [[row] for row in rows]
    groups = []
    while rows:
        size = min(len(rows), rng.randrange(1, 5))
        group, rows = rows[:size], rows[size:]
        groups.append(sorted(group, key=lambda r: r.date))
    return groups

