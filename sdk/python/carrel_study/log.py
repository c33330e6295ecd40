"""Messages a study leaves for the auditors: `log.info("…")`. The host bounds their number
and length; on real data no researcher sees them, only `carrel study try --synthetic`
shows them to whoever runs it. `print` and anything written to `sys.stdout` or
`sys.stderr` become log lines the same way. Never log row-level data: auditors may not
see it either.
"""

import sys

LEVELS = ("debug", "info", "warn", "error")


def _to_stderr(level: str, message: str):
    print(f"{level}: {message}", file=sys.stderr)


_sink = _to_stderr


def set_sink(sink):
    """Where messages go: `sink(level, message)`. Inside a component, the host's `log`
    interface; natively, standard error (or a test's list)."""
    global _sink
    _sink = sink


def _write(level: str, message):
    _sink(level, str(message))


def debug(message):
    _write("debug", message)


def info(message):
    _write("info", message)


def warn(message):
    _write("warn", message)


def error(message):
    _write("error", message)
