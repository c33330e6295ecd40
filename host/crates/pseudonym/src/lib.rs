//! carrel's pseudonymisation.
