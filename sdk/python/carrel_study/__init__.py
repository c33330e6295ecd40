"""Write a carrel study in Python.

A study is untrusted code: it never counts, never reads storage and never names a value
that leaves the warehouse. The host hands it the granted columns of one group of rows at
a time (one consultation, or all of one patient's consultations), and the study answers
which declared measures each row adds to. The host computes every dimension of the
output from the rows (week, region, age class, …), counts consultations and distinct
patients per cell, bounds what one patient adds, checks that the study is patient-local
and applies disclosure control.

A study is a module `app.py` with one function:

    from carrel_study import Out, Row

    def consultation(row: Row, out: Out) -> None:      # unit "consultation"
        if row.has_icd10_code():
            out.add(row, "coded")

or `def patient(rows: Patient, out: Out) -> None` for unit `patient` (one patient's
consultations, in date order), and optionally `def start(spec: Spec) -> None`, called once
before any row. See docs/python-studies.md.
"""

from . import log
from .batch import COLUMNS, Batch, Patient, Row
from .calendar import date_of_days, days_of_date, iso_week, parse_date
from .clinical import has_code_prefix, has_icd10_code, is_icd10_code
from .errors import StudyError
from .out import Out
from .randomness import GENERATOR as _GENERATOR  # noqa: F401  (puts the group generator behind `random`)
from .spec import Params, Spec

__all__ = [
    "COLUMNS",
    "Batch",
    "Out",
    "Params",
    "Patient",
    "Row",
    "Spec",
    "StudyError",
    "date_of_days",
    "days_of_date",
    "has_code_prefix",
    "has_icd10_code",
    "is_icd10_code",
    "iso_week",
    "log",
    "parse_date",
]
