"""Syndromic surveillance, in Python: the weekly share of consultations for
influenza-like illness (ICD-10 J10, J11), gastroenteritis (A08, A09) and bronchiolitis
(J21, under 2 years only) among consultations with at least one coded (ICD-10) diagnosis.

The same study as the shipped Rust `ili-weekly` (components/studies/ili-weekly): on the
same data it must release exactly the same table (tests/python_studies.rs). Unit
`consultation`; sees `age_years` and `diagnoses` only. The host puts each row in its cell
of week, region and age class, and computes the shares over `coded`.
"""

from carrel_study import Out, Row

ILI = ("J10", "J11")
GASTRO = ("A08", "A09")
BRONCHIOLITIS = ("J21",)


def consultation(row: Row, out: Out) -> None:
    # The denominator of every share: consultations with at least one ICD-10 code.
    if not row.has_icd10_code():
        return
    out.add(row, "coded")
    if row.has_code_prefix(ILI):
        out.add(row, "ili")
    if row.has_code_prefix(GASTRO):
        out.add(row, "gastro")
    # Bronchiolitis is a disease of infants: counted under 2 only, and an unknown age is
    # not under 2.
    age = row.age_years
    if age is not None and age < 2 and row.has_code_prefix(BRONCHIOLITIS):
        out.add(row, "bronchiolitis")
