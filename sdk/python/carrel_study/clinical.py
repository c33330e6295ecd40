"""Diagnosis codes as surveillance reads them.

The `diagnoses` column holds, per consultation, a list of codes: ICD-10 (CIM-10) codes
upper-case without dot (`J11`, `J111` for J11.1), and codes of any other system as
`system|code`. The same rules as the Rust SDK's, so that a study gives the same answer in
either language.
"""


def is_icd10_code(code: str) -> bool:
    """Whether a stored code is an ICD-10 code (any other system is stored as
    `system|code`)."""
    return bool(code) and "|" not in code


def has_icd10_code(codes) -> bool:
    """Whether at least one of the codes is an ICD-10 code: the consultation "has a coded
    diagnosis", the usual denominator of surveillance shares."""
    return any(is_icd10_code(code) for code in codes)


def prefix_tuple(prefixes) -> tuple:
    """`prefixes` as a tuple of strings: one prefix, or a list or tuple of them."""
    if isinstance(prefixes, str):
        return (prefixes,)
    prefixes = tuple(prefixes)
    if not all(isinstance(prefix, str) for prefix in prefixes):
        raise TypeError(f"code prefixes are strings, not {prefixes!r}")
    return prefixes


def has_code_prefix(codes, prefixes) -> bool:
    """Whether one of the codes starts with one of the prefixes, as stored (upper case, no
    dot): `has_code_prefix(codes, ("J10", "J11"))` is true for `J11` and `J111`, false for
    `J12` and for `http://example.org|J11`."""
    prefixes = prefix_tuple(prefixes)
    return any(code.startswith(prefixes) for code in codes)
