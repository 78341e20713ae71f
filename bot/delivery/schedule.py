"""When the yearly digest goes out: pure calendar arithmetic, with the clock always passed in.

This module owns the digest schedule (a month, day and wall-clock time in an IANA timezone, from the
`digest:` config keys), the next scheduled moment after a given instant, the missed-run rule (the last
scheduled moment at or before now is still sent if it is at most `grace_days` old), which exchange a run
sends, and the small APScheduler trigger that makes PTB's JobQueue follow exactly this arithmetic.

Time-zone rules, chosen deliberately: the schedule is wall-clock time in the configured zone. A time that
does not exist on that day (the spring-forward gap) fires at the same instant as the wall time read with
the offset in force before the change (02:30 in a one-hour gap fires at 03:30 new time); a time that occurs
twice (fall back) fires once, at the first occurrence. A 29 February schedule fires only in leap years.
APScheduler's own CronTrigger can fire twice on a fall-back day, which is why the JobQueue job uses
`DigestTrigger` below instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger

from bot.config import ConfigError, DigestConfig

UTC = dt.UTC
# A January run sends the exchange of the end of the previous year; an exchange older than this is not
# "this year's" any more, so a run finding nothing newer sends nothing rather than last year's digest again.
EXCHANGE_MAX_AGE = dt.timedelta(days=365)


@dataclasses.dataclass(frozen=True)
class Schedule:
    month: int
    day: int
    hour: int
    minute: int
    tz: ZoneInfo
    grace: dt.timedelta

    @classmethod
    def from_config(cls, cfg: DigestConfig) -> Schedule:
        """The schedule from the `digest:` config keys; ConfigError naming the key when one is unusable."""
        try:
            tz = ZoneInfo(cfg.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"digest.timezone: unknown IANA time zone {cfg.timezone!r} (e.g. Europe/Moscow)"
            ) from None
        hour, minute = (int(p) for p in cfg.time.split(":"))
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise ConfigError(f"digest.time must be a time of day HH:MM, not {cfg.time!r}")
        try:
            dt.date(2000, cfg.month, cfg.day)  # a leap year, so 29 February is accepted
        except ValueError:
            raise ConfigError(f"digest.month/day: {cfg.month}/{cfg.day} is not a day of the year") from None
        if cfg.grace_days < 0:
            raise ConfigError(f"digest.grace_days must not be negative, not {cfg.grace_days}")
        return cls(cfg.month, cfg.day, hour, minute, tz, dt.timedelta(days=cfg.grace_days))

    def describe(self) -> str:
        """E.g. '1 January at 10:00 (Europe/Moscow time)', for replies to users."""
        month = dt.date(2000, self.month, 1).strftime("%B")
        return f"{self.day} {month} at {self.hour:02d}:{self.minute:02d} ({self.tz.key} time)"


def moment(year: int, schedule: Schedule) -> dt.datetime | None:
    """The scheduled instant in `year` (aware, in the schedule's zone), or None if the day does not exist."""
    try:
        wall = dt.datetime(year, schedule.month, schedule.day, schedule.hour, schedule.minute, tzinfo=schedule.tz)
    except ValueError:  # 29 February in a common year
        return None
    # The round trip through UTC normalises a wall time inside a DST gap to a real local time.
    return wall.astimezone(UTC).astimezone(schedule.tz)


def _moments_around(now: dt.datetime, schedule: Schedule) -> Iterable[dt.datetime]:
    """Scheduled moments (in UTC) from a few years before `now` to a few after, in order (leap years need 8)."""
    year = now.astimezone(schedule.tz).year
    for y in range(year - 8, year + 9):
        m = moment(y, schedule)
        if m is not None:
            yield m.astimezone(UTC)


def _utc(now: dt.datetime) -> dt.datetime:
    # Everything is compared and returned in UTC: Python compares and subtracts two datetimes sharing a tzinfo
    # by wall time (wrong across DST), and a local time in a fall-back hour never equals a UTC instant.
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def next_run(now: dt.datetime, schedule: Schedule) -> dt.datetime:
    """The first scheduled moment strictly after `now`, in UTC (show it with `.astimezone(schedule.tz)`)."""
    now = _utc(now)
    return next(m for m in _moments_around(now, schedule) if m > now)


def last_run(now: dt.datetime, schedule: Schedule) -> dt.datetime:
    """The latest scheduled moment at or before `now`, in UTC."""
    now = _utc(now)
    return [m for m in _moments_around(now, schedule) if m <= now][-1]


def missed_run(now: dt.datetime, schedule: Schedule) -> dt.datetime | None:
    """The last scheduled moment if it is still due (at most `grace` ago), else None.

    Called at start-up: a bot that was down at the moment sends that run's digest when it comes back within
    the grace period. Whether the run already happened is the caller's business (the store records it).
    """
    last = last_run(now, schedule)
    return last if _utc(now) - last <= schedule.grace else None


def partial_date_bounds(date: str) -> tuple[dt.date, dt.date]:
    """First and last day a partial date ('YYYY', 'YYYY-MM', 'YYYY-MM-DD') may mean."""
    parts = [int(p) for p in date.split("-")]
    if len(parts) == 3:
        day = dt.date(*parts)
        return day, day
    if len(parts) == 2:
        first = dt.date(parts[0], parts[1], 1)
        following = dt.date(parts[0] + (parts[1] == 12), parts[1] % 12 + 1, 1)
        return first, following - dt.timedelta(days=1)
    return dt.date(parts[0], 1, 1), dt.date(parts[0], 12, 31)


def exchange_for_run(run: dt.datetime, exchange_dates: Iterable[str], tz: dt.tzinfo | None = None) -> str | None:
    """Which exchange a run sends: the latest one dated on or before the run's day in `tz`, if under a year old.

    A 1 January run therefore sends the exchange of 31 December of the previous year. A partial date counts
    from its first day ('2025-12' is on or before 1 January 2026). Returns the chosen date string.
    """
    day = run.astimezone(tz).date() if tz is not None else run.date()
    candidates = [(partial_date_bounds(d)[0], d) for d in exchange_dates]
    due = [c for c in candidates if c[0] <= day and day - c[0] <= EXCHANGE_MAX_AGE]
    return max(due)[1] if due else None


class DigestTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no types: an untyped base class
    """APScheduler trigger firing at `next_run`, so the JobQueue keeps exactly the rules tested here."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(self, previous_fire_time: dt.datetime | None, now: dt.datetime) -> dt.datetime:
        # After a fire, continue from that fire time (APScheduler then applies misfire/coalesce rules).
        return next_run(previous_fire_time or now, self.schedule)

    def __str__(self) -> str:
        return f"digest[{self.schedule.describe()}]"
