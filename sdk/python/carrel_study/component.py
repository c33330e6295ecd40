"""The component's entry point. `componentize-py -d wit -w carrel:eds/study componentize
carrel_study.component -p . -p sdk/python` builds a component of the `carrel:eds/study`
world from it: it puts the per-group generator behind `random` before the study imports
anything, imports the study's `app` module, and answers the world's `start` and
`classify` with it. Any exception of the study fails the run; its text is kept for
auditors (and shown by `carrel study try --synthetic`).

This module runs only inside the component (the `wit_world` bindings exist only there).
"""

import collections
import sys
import traceback

from . import log as _log
from . import randomness  # noqa: F401  (installed before the study imports `random`)
from .errors import StudyError
from .runner import Runner

import wit_world
from componentize_py_types import Err
from wit_world.imports import log as _host_log
from wit_world.imports import study_types

_LEVELS = {
    "debug": _host_log.Level.DEBUG,
    "info": _host_log.Level.INFO,
    "warn": _host_log.Level.WARN,
    "error": _host_log.Level.ERROR,
}
_log.set_sink(lambda level, message: _host_log.log(_LEVELS[level], message))

import app  # noqa: E402  (the study)

# componentize-py reads a record by its fields' names, so a named tuple of them will do (and
# costs no Python call to make: see Out).
_RUNNER = Runner(app, collections.namedtuple("Contribution", ["row", "measure", "label"]))


def describe(error: BaseException) -> str:
    """`Type: message (app.py line N, in function)`, the innermost frame of the study's
    own code first: what an auditor needs to read a failure."""
    text = f"{type(error).__name__}: {error}"
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if f.filename.rsplit("/", 1)[-1] not in _SDK_FILES]
    where = (own or frames)[-1:] if frames else []
    for frame in where:
        text += f" ({frame.filename.rsplit('/', 1)[-1]} line {frame.lineno}, in {frame.name})"
    return text


_SDK_FILES = {"component.py", "runner.py", "batch.py", "out.py", "spec.py"}


def _flush():
    # Python buffers what it prints: hand it to the host (as log lines) after each call.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001  (a closed stream has nothing to hand)
            pass


def _call(function, *args):
    try:
        return function(*args)
    except StudyError as error:
        failure = str(error)
    except BaseException as error:  # noqa: BLE001  (any failure of the study fails the run)
        failure = describe(error)
    finally:
        _flush()
    raise Err(study_types.StudyError_Failed(failure))


class WitWorld(wit_world.WitWorld):
    def start(self, table: study_types.TableSpec) -> None:
        _call(_RUNNER.start, table.measures, table.labels, table.params)

    def classify(self, batch: study_types.Consultations) -> list:
        return _call(_RUNNER.classify, batch)
