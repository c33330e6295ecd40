"""Why a study fails."""


class StudyError(Exception):
    """Raise it to fail the run with a message. On real data only auditors read the
    message; the researcher is told that the run failed. Any other exception fails the
    run the same way."""
