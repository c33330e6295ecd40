"""Calls a study as the host does: `start` once, then per batch the study's function
once per group. The component and the native test harness share this code, so a study
tested natively runs the same way in the sandbox."""

from .batch import Batch, Patient, Row
from .errors import StudyError
from .out import Out
from .randomness import GENERATOR
from .spec import Spec


class Runner:
    """Runs `study`, a module (the study's `app.py`) or any object with a function
    `consultation(row, out)` or `patient(rows, out)`, and optionally `start(spec)`.
    Contributions are `contribution_type`, a named tuple of (row, measure, label)."""

    def __init__(self, study, contribution_type):
        self.consultation = getattr(study, "consultation", None)
        self.patient = getattr(study, "patient", None)
        self.on_start = getattr(study, "start", None)
        self.contribution_type = contribution_type
        self.spec = None

    def start(self, measures, labels, params) -> None:
        if (self.consultation is None) == (self.patient is None):
            which = "both" if self.consultation is not None else "neither"
            raise StudyError(
                f"the study defines {which} of `consultation(row, out)` and "
                "`patient(rows, out)`: define exactly one"
            )
        spec = Spec(measures, labels, params)
        if self.on_start is not None:
            self.on_start(spec)
        self.spec = spec

    def classify(self, columns) -> list:
        """The contributions of every group of `columns`, in group order."""
        if self.spec is None:
            raise StudyError("a batch came before `start`")
        batch = Batch(columns)
        out = Out(self.spec, batch, self.contribution_type)
        groups = columns.groups
        GENERATOR.enter_batch(out, groups, columns.seeds)
        by_row = self.consultation
        by_patient = self.patient
        if by_row is not None and len(groups) == batch.rows + 1:
            # Unit `consultation`: every group is one row, and this loop runs once per row.
            for index in range(batch.rows):
                out.start = index
                out.end = index + 1
                by_row(Row(batch, index), out)
            return out.contributions
        for g in range(len(groups) - 1):
            start = groups[g]
            end = groups[g + 1]
            out.start = start
            out.end = end
            if by_row is not None:
                for index in range(start, end):
                    by_row(Row(batch, index), out)
            else:
                by_patient(Patient(batch, start, end), out)
        return out.contributions
