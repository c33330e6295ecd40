"""The approved table, as the host tells it to the study before its first batch."""

from .errors import StudyError


class Params:
    """The run's values of the parameters the manifest declares (`params = {...}`), each
    already checked by the host against its declared values."""

    __slots__ = ("_values",)

    def __init__(self, pairs=()):
        values = {}
        for name, value in pairs:
            if name in values:
                raise StudyError(f"parameter `{name}` is given more than once")
            values[name] = value
        self._values = values

    def get(self, name, default=None):
        return self._values.get(name, default)

    def required(self, name) -> str:
        """The value of `name`; fails the run when the run did not give it."""
        value = self._values.get(name)
        if value is None:
            raise StudyError(f"parameter `{name}` is required")
        return value

    def __getitem__(self, name) -> str:
        return self.required(name)

    def __contains__(self, name) -> bool:
        return name in self._values

    def __iter__(self):
        return iter(self._values.items())

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Params({self._values!r})"


class Spec:
    """The declared measures, labels and the run's parameters. Contributions name
    measures and labels as the manifest declares them; the SDK turns names into the
    indexes the host expects."""

    __slots__ = ("measures", "labels", "params", "_measure_index", "_label_index")

    def __init__(self, measures, labels=(), params=()):
        self.measures = tuple(measures)
        self.labels = tuple(labels)
        self.params = params if isinstance(params, Params) else Params(params)
        self._measure_index = {name: i for i, name in enumerate(self.measures)}
        self._label_index = {value: i for i, value in enumerate(self.labels)}

    def measure_index(self, name):
        """The index of measure `name`, or None when the table does not declare it."""
        return self._measure_index.get(name)

    def label_index(self, value):
        """The index of label `value`, or None when the table does not declare it."""
        return self._label_index.get(value)

    def measure(self, name) -> int:
        index = self._measure_index.get(name)
        if index is None:
            raise StudyError(
                f"measure `{name}` is not declared in the manifest's table "
                f"(measures: {', '.join(self.measures)})"
            )
        return index

    def label(self, value) -> int:
        if not self.labels:
            raise StudyError(
                f"label `{value}`: the manifest's table declares no `labels`"
            )
        index = self._label_index.get(value)
        if index is None:
            raise StudyError(f"label `{value}` is not among the table's declared labels")
        return index
