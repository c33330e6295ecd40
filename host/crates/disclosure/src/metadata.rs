//! Arrow field metadata keys that drive disclosure control.
//!
//! A study declares what each column of its output is; the host never guesses from
//! names or types, because a guess that misses a count column would release it
//! unprotected. A column without [`KIND`] is a dimension and is released unchanged.

/// The kind of a column: [`COUNT`] or [`SHARE`]. Absent means dimension.
pub const KIND: &str = "carrel.kind";
/// [`KIND`] value of a count column (an integer column of counts of people or events).
pub const COUNT: &str = "count";
/// [`KIND`] value of a share column (a ratio of two count columns of the same row).
pub const SHARE: &str = "share";
/// On a share column: the name of the count column that is its numerator.
pub const NUMERATOR: &str = "carrel.numerator";
/// On a share column: the name of the count column that is its denominator.
pub const DENOMINATOR: &str = "carrel.denominator";
/// On a count column: comma-separated names of the count columns it is the row total of.
pub const TOTAL_OF: &str = "carrel.total_of";
/// On a count column (e.g. of consultations): the name of the count column that holds
/// the distinct patients behind it, row by row. The two cells of a row are withheld
/// together: a cell of 20 consultations of 3 patients is withheld because of the 3.
pub const PATIENTS: &str = "carrel.patients";
/// Set by the host on released count and share columns, with value [`REDACTED_NULL`]:
/// a null cell there means "redacted", not "missing".
pub const REDACTED: &str = "carrel.redacted";
/// The value of [`REDACTED`].
pub const REDACTED_NULL: &str = "null";
