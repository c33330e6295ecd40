"""A Python study for the host's tests: the declared parameter `op` chooses one honest or
one hostile behaviour, as the Rust probe (tests/programs/study-probe) does, so that the
host's refusals are tried on a Python guest too (tests/python_studies.rs). Its table has
measures `n` and `other`; it is granted `date`, `age_years` and `departement`. It defines
`patient(rows, out)`, which serves unit `consultation` as well (a group of one row).

- `count`: every row adds to `n` (what a study should do);
- `twice`: every row adds to `n` twice (the host counts it once);
- `out-of-range`, `bad-measure`, `bad-label`: a contribution naming the row just past
  the batch, measure 9999 or label 9999 (through `out.add_raw`, the SDK's escape hatch);
- `log-rows`, `print-rows`: each row's département, age and date in `log.info`, or
  printed to standard output and error, then counts honestly;
- `fail-rows`: fails with the first rows' values in its error;
- `counter`: counts only the first 50 groups an instance sees (state kept across
  patients);
- `few`: adds to `other` instead of `n` when the batch has fewer than 200 groups;
- `carrier`: counts honestly, and when a row of the batch has age 90, the first 1000
  rows without age 90 also add to `other` (unrelated rows move when a target is present);
- `fail-target`: fails when a row of the batch has age 90;
- `random`: each row adds to `n` or `other` by `random.random()` (reseeded per patient:
  patient-local);
- `urandom`: the same by `os.urandom` (the run-wide source: not patient-local);
- `flood`: prints 10,000 lines at its first group, then counts honestly;
- `loop`: never returns; `memory`: allocates until the memory limit;
- `fingerprint`: prints what it can see of the environment, files, sockets, clocks and
  random numbers at its first group, then counts honestly.
"""

import os
import random
import sys
import time

from carrel_study import Out, Patient, Row, StudyError, log

TARGET_AGE = 90

_groups_seen = 0
_first = True


def start(spec):
    op = spec.params.required("op")
    if op not in OPS:
        raise StudyError(f"unknown op `{op}`")


def describe(row: Row) -> str:
    return f"dep={row.departement} age={row.age_years} date={row.date}"


def add_each(rows: Patient, out: Out, measure: str) -> None:
    for row in rows:
        out.add(row, measure)


def target_in_batch(out: Out) -> bool:
    return any(row.age_years == TARGET_AGE for row in out.batch.all_rows())


def patient(rows: Patient, out: Out) -> None:
    global _groups_seen, _first
    op = out.params["op"]
    first, _first = _first, False
    first_of_batch = rows.start == 0
    if op == "twice":
        add_each(rows, out, "n")
        add_each(rows, out, "n")
    elif op == "out-of-range":
        out.add_raw(len(out.batch), 0)
    elif op == "bad-measure":
        for row in rows:
            out.add_raw(row.index, 9999)
    elif op == "bad-label":
        for row in rows:
            out.add_raw(row.index, 0, 9999)
    elif op == "fail-rows":
        first_rows = [describe(r) for r in list(out.batch.all_rows())[:20]]
        raise StudyError("rows: " + "; ".join(first_rows))
    elif op == "counter":
        _groups_seen += 1
        if _groups_seen <= 50:
            add_each(rows, out, "n")
    elif op == "few":
        add_each(rows, out, "other" if out.batch.groups < 200 else "n")
    elif op == "carrier":
        if first_of_batch and target_in_batch(out):
            other = out.spec.measure("other")
            carried = [
                row.index
                for row in out.batch.all_rows()
                if row.age_years != TARGET_AGE
            ][:1000]
            for index in carried:
                out.add_raw(index, other)
        add_each(rows, out, "n")
    elif op == "fail-target":
        if first_of_batch and target_in_batch(out):
            raise StudyError("a target is in the batch")
        add_each(rows, out, "n")
    elif op == "random":
        for row in rows:
            out.add(row, "n" if random.random() < 0.5 else "other")
    elif op == "urandom":
        for row in rows:
            out.add(row, "n" if os.urandom(1)[0] < 128 else "other")
    elif op == "loop":
        while True:
            pass
    elif op == "memory":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    else:
        if op == "log-rows":
            for row in rows:
                log.info(describe(row))
        elif op == "print-rows":
            for row in rows:
                print(describe(row))
                print(describe(row), file=sys.stderr)
        elif op == "flood" and first:
            for i in range(10_000):
                print(f"line {i}")
        elif op == "fingerprint" and first:
            for observation in fingerprint():
                print(observation)
        add_each(rows, out, "n")


def fingerprint() -> list:
    """What the sandbox lets a study observe of the machine it runs on."""
    seen = [f"env-vars={len(os.environ)}", f"argv={sys.argv}"]
    for path in ("/", ".", "/etc/passwd", "/proc/self/environ", "/tmp/x"):
        try:
            with open(path, "rb") as f:
                f.read(1)
            outcome = "read"
        except OSError as e:
            outcome = f"denied ({type(e).__name__})"
        seen.append(f"open {path}: {outcome}")
    try:
        with open("/tmp/carrel-probe-written", "w") as f:
            f.write("x")
        seen.append("write /tmp: written")
    except OSError as e:
        seen.append(f"write /tmp: denied ({type(e).__name__})")
    try:
        os.listdir("/")
        seen.append("listdir /: listed")
    except OSError as e:
        seen.append(f"listdir /: denied ({type(e).__name__})")
    try:
        import socket

        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("127.0.0.1", 80))
        seen.append("socket: connected")
    except Exception as e:  # noqa: BLE001  (any refusal will do)
        seen.append(f"socket: denied ({type(e).__name__})")
    now = time.time()
    seen.append(f"day={int(now) // 86400}")
    seen.append(f"seconds-into-day={int(now) % 86400}")
    seen.append(f"sub-second={now % 1}")
    started = time.monotonic()
    sum(range(20_000))
    seen.append(f"monotonic-elapsed={time.monotonic() - started}")
    seen.append(f"perf-counter={time.perf_counter()}")
    return seen


OPS = {
    "count",
    "twice",
    "out-of-range",
    "bad-measure",
    "bad-label",
    "log-rows",
    "print-rows",
    "fail-rows",
    "counter",
    "few",
    "carrier",
    "fail-target",
    "random",
    "urandom",
    "flood",
    "loop",
    "memory",
    "fingerprint",
}
