"""Tests of the Python study SDK, natively (`python3 -m unittest discover -s tests` in
sdk/python; tests/python_studies.rs runs them too). The component runs the same Runner,
Batch and Out, so what holds here holds in the sandbox."""

import pathlib
import random
import sys
import types
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from carrel_study import StudyError  # noqa: E402
from carrel_study.testing import Consultation, Harness, dummy  # noqa: E402


def study(**functions):
    """A study module made of `functions` (`consultation=...` or `patient=...`)."""
    return types.SimpleNamespace(**functions)


class RowsTest(unittest.TestCase):
    def test_granted_columns_read_their_values_and_the_others_none(self):
        seen = []

        def consultation(row, out):
            seen.append((row.age_years, row.departement, row.date, row.sex, row.diagnoses))

        harness = Harness(["n"], granted=["age_years", "departement", "diagnoses"])
        harness.run(
            study(consultation=consultation),
            [
                [Consultation(date="2024-01-15", age=1, departement="2A", diagnoses=["J111"])],
                [Consultation(age=None, sex="F")],
            ],
        )
        self.assertEqual(seen, [(1, "2A", None, None, ["J111"]), (None, None, None, None, [])])

    def test_code_tests_read_each_rows_own_codes(self):
        def consultation(row, out):
            if row.has_icd10_code():
                out.add(row, "coded")
            if row.has_code_prefix(["J10", "J11"]):
                out.add(row, "ili")

        harness = Harness(["coded", "ili"], granted=["diagnoses"])
        rows = [
            ["R05", "J111"],
            ["http://snomed.info/sct|J11"],
            [],
            ["J12"],
            ["x|1", "J10"],
        ]
        added = harness.run(study(consultation=consultation), [[Consultation(diagnoses=d)] for d in rows])
        self.assertEqual(
            [(a.group, a.measure) for a in added],
            [(0, "coded"), (0, "ili"), (3, "coded"), (4, "coded"), (4, "ili")],
        )

    def test_a_patient_reads_its_rows_in_order(self):
        def patient(rows, out):
            self.assertEqual([r.age_years for r in rows], [30, 31])
            self.assertEqual(rows[-1].age_years, 31)
            out.add(rows.last, "n")

        added = Harness(["n"], granted=["age_years"]).run(
            study(patient=patient), [[Consultation(age=30), Consultation(age=31)]]
        )
        self.assertEqual([(a.group, a.row) for a in added], [(0, 1)])


class OutTest(unittest.TestCase):
    def test_an_undeclared_measure_or_label_fails_the_run_naming_it(self):
        harness = Harness(["n"])
        with self.assertRaisesRegex(StudyError, "measure `ili` is not declared"):
            harness.consultation(study(consultation=lambda r, o: o.add(r, "ili")), Consultation())
        labelled = Harness(["n"], labels=["a", "b"])
        with self.assertRaisesRegex(StudyError, "each contribution names one"):
            labelled.consultation(study(consultation=lambda r, o: o.add(r, "n")), Consultation())
        with self.assertRaisesRegex(StudyError, "label `c` is not among"):
            labelled.consultation(
                study(consultation=lambda r, o: o.add(r, "n", "c")), Consultation()
            )
        self.assertEqual(
            labelled.consultation(study(consultation=lambda r, o: o.add(r, "n", "b")), Consultation()),
            ["n[b]"],
        )

    def test_a_row_of_another_group_cannot_be_added(self):
        def consultation(row, out):
            out.add(out.batch.row(0), "n")

        with self.assertRaisesRegex(StudyError, "row 0 of the batch is not in the group"):
            Harness(["n"]).run(study(consultation=consultation), [[Consultation()], [Consultation()]])

    def test_a_study_defines_exactly_one_of_consultation_and_patient(self):
        for functions in ({}, {"consultation": print, "patient": print}):
            with self.assertRaisesRegex(StudyError, "define exactly one"):
                Harness(["n"]).run(study(**functions), [[Consultation()]])

    def test_a_malformed_batch_is_refused_before_the_study_reads_it(self):
        harness = Harness(["n"], granted=["age_years"])
        columns = harness.consultations([[Consultation()], [Consultation()]])
        columns.age_years = bytes([1])
        from carrel_study.batch import Batch

        with self.assertRaisesRegex(StudyError, "`age_years` has 1 values for 2 rows"):
            Batch(columns)
        columns = harness.consultations([[Consultation()]], seeds=[1, 2])
        with self.assertRaisesRegex(StudyError, "2 seeds for 1 groups"):
            Batch(columns)


class RandomTest(unittest.TestCase):
    def draws(self, groups, seeds):
        def consultation(row, out):
            out.add(row, "n" if random.random() < 0.5 else "other")
            # Cached normal deviates must not cross groups either.
            random.gauss()

        added = Harness(["n", "other"]).run(study(consultation=consultation), groups, seeds)
        return [a.measure for a in added]

    def test_a_group_draws_from_its_own_seed_whatever_its_neighbours(self):
        alone = self.draws([[Consultation()]] * 40, list(range(40)))
        # The same groups handed again, reversed and among others.
        again = self.draws([[Consultation()]] * 80, list(reversed(range(40))) + list(range(100, 140)))
        self.assertEqual(list(reversed(again[:40])), alone)
        self.assertNotEqual(len(set(alone)), 1, "the draws vary between groups")

    def test_an_explicit_seed_holds_until_the_next_group(self):
        def consultation(row, out):
            random.seed(7)
            out.add(row, "n" if random.random() < 0.5 else "other")

        added = Harness(["n", "other"]).run(study(consultation=consultation), [[Consultation()]] * 10)
        self.assertEqual(len({a.measure for a in added}), 1)


class DummyTest(unittest.TestCase):
    def test_dummy_data_is_reproducible_and_groups_patients_in_date_order(self):
        self.assertEqual(dummy(50, seed=3), dummy(50, seed=3))
        for group in dummy(200, seed=4, unit="patient"):
            dates = [row.date for row in group]
            self.assertEqual(dates, sorted(dates))


if __name__ == "__main__":
    unittest.main()
