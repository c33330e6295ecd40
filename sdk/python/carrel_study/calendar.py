"""Dates as the host hands them: days since 1970-01-01."""

import datetime

_EPOCH = datetime.date(1970, 1, 1).toordinal()


def date_of_days(days: int) -> datetime.date:
    """The day `days` days after 1970-01-01."""
    return datetime.date.fromordinal(_EPOCH + days)


def days_of_date(day: datetime.date) -> int:
    """Days since 1970-01-01 of `day`."""
    return day.toordinal() - _EPOCH


def parse_date(text: str) -> int:
    """Days since 1970-01-01 of a `YYYY-MM-DD` date; ValueError otherwise."""
    return days_of_date(datetime.date.fromisoformat(text))


def iso_week(day: datetime.date) -> str:
    """`YYYY-Www`, the ISO week of `day` as the host names the `week` dimension."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
