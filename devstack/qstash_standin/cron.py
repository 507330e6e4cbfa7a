"""Five-field cron expressions at minute granularity, as QStash schedules accept them.

Supports `*`, lists, ranges, steps, month and weekday names, the `@hourly`-style macros and a
leading `CRON_TZ=<zone>` (times are UTC otherwise). When both day of month and day of week are
restricted, a day matching either one fires (classic cron semantics).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# Searching further than this many years without a match means the expression never fires
# (for example 30 February).
_HORIZON_YEARS = 5


class CronError(ValueError):
    pass


def _value(text: str, names: dict[str, int]) -> int:
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise CronError(f"invalid cron value {text!r}")
    return int(text)


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    names = names or {}
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else (1 if not step_text else 0)
        if step < 1:
            raise CronError(f"invalid cron step in {part!r}")
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, stop = _value(first, names), _value(last, names)
        else:
            start = _value(base, names)
            stop = high if step_text else start
        if not (low <= start <= high and low <= stop <= high) or start > stop:
            raise CronError(f"cron value out of range in {part!r}")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_restricted: bool
    weekday_restricted: bool
    zone: ZoneInfo | None

    def _day_matches(self, day: datetime) -> bool:
        in_month = day.day in self.days
        # Python: Monday = 0; cron: Sunday = 0.
        in_week = (day.weekday() + 1) % 7 in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return in_month or in_week
        return in_month and in_week

    def next_after(self, moment: datetime) -> datetime:
        """First firing time strictly after `moment` (an aware datetime), in UTC."""
        zone = self.zone or UTC
        local = moment.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
        candidate = local + timedelta(minutes=1)
        limit = candidate + timedelta(days=366 * _HORIZON_YEARS)
        while candidate < limit:
            if candidate.month not in self.months:
                year, month = divmod(candidate.month, 12)
                candidate = candidate.replace(year=candidate.year + year, month=month + 1,
                                              day=1, hour=0, minute=0)
            elif not self._day_matches(candidate):
                candidate = (candidate + timedelta(days=1)).replace(hour=0, minute=0)
            elif candidate.hour not in self.hours:
                candidate = (candidate + timedelta(hours=1)).replace(minute=0)
            elif candidate.minute not in self.minutes:
                candidate += timedelta(minutes=1)
            else:
                return candidate.replace(tzinfo=zone).astimezone(UTC)
        raise CronError("cron expression never fires")


def parse_cron(expression: str) -> CronSchedule:
    text = expression.strip()
    zone: ZoneInfo | None = None
    if text.startswith(("CRON_TZ=", "TZ=")):
        zone_name, _, text = text.partition("=")[2].partition(" ")
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise CronError(f"unknown time zone {zone_name!r}") from None
        text = text.strip()
    text = _MACROS.get(text.lower(), text)
    fields = text.split()
    if len(fields) != 5:
        raise CronError("a cron expression has five fields: minute hour day month weekday")
    minute, hour, day, month, weekday = fields
    weekdays = {d % 7 for d in _field(weekday, 0, 7, _DAYS)}
    schedule = CronSchedule(
        minutes=_field(minute, 0, 59),
        hours=_field(hour, 0, 23),
        days=_field(day, 1, 31),
        months=_field(month, 1, 12, _MONTHS),
        weekdays=frozenset(weekdays),
        day_restricted=not day.startswith("*"),
        weekday_restricted=not weekday.startswith("*"),
        zone=zone,
    )
    schedule.next_after(datetime.now(UTC))
    return schedule
