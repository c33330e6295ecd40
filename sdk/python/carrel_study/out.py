"""What a study answers for a group: which measures each of its rows adds to."""

from .errors import StudyError

_new = tuple.__new__


class Out:
    """Collects the contributions of one batch, group by group. A study names measures
    (and labels) as the manifest declares them; `Out` turns them into the indexes and
    batch rows the host expects."""

    __slots__ = ("spec", "batch", "start", "end", "contributions", "_type", "_measures")

    def __init__(self, spec, batch, contribution_type):
        self.spec = spec
        #: The whole batch: an escape hatch for tests of the host's own checks. A study
        #: that reads it is not patient-local, and the host refuses its runs.
        self.batch = batch
        #: The batch rows of the group being classified: `start <= row.index < end`.
        self.start = 0
        self.end = 0
        self.contributions = []
        #: A named tuple of (row, measure, label): made with `tuple.__new__`, it costs no
        #: Python call per contribution.
        self._type = contribution_type
        self._measures = None if spec.labels else spec._measure_index

    @property
    def params(self):
        """The run's declared parameters."""
        return self.spec.params

    def add(self, row, measure: str, label=None):
        """`row` adds one to `measure` (a name of the manifest's `table.measures`), in the
        cell the host computes from the row; under `label` (a value of `table.labels`)
        when the table declares labels. Adding twice to one measure counts once.

        Fails the run when `measure` or `label` is not declared, when the table declares
        labels and none is given, or when `row` is not of the group being classified."""
        measures = self._measures
        if measures is not None and label is None:
            index = measures.get(measure)
            if index is None:
                index = self.spec.measure(measure)
            label_index = 0
        else:
            index = self.spec.measure(measure)
            if label is None:
                raise StudyError(
                    f"measure `{measure}`: the table declares labels, so each "
                    "contribution names one: out.add(row, measure, label)"
                )
            label_index = self.spec.label(label)
        at = row.index
        # Only rows of the group at hand: a study sees no other through the API, and a
        # contribution elsewhere would make it depend on its neighbours.
        if not self.start <= at < self.end or row.batch is not self.batch:
            raise StudyError(
                f"row {at} of the batch is not in the group being classified"
            )
        self.contributions.append(_new(self._type, (at, index, label_index)))

    def add_raw(self, row: int, measure: int, label: int = 0):
        """Adds a contribution by indexes, unchecked: an escape hatch for tests of the
        host's own checks. A real study never needs it."""
        self.contributions.append(_new(self._type, (row, measure, label)))
