"""Schedule arithmetic with an injected clock: next runs across time zones and DST changes, missed runs and grace.

Every instant is written in UTC and compared in UTC, so a wrong offset cannot hide behind a wall-clock time.
"""

from __future__ import annotations

import datetime as dt

import pytest

from bot.config import ConfigError, DigestConfig
from bot.delivery.schedule import (
    DigestTrigger,
    Schedule,
    exchange_for_run,
    last_run,
    missed_run,
    moment,
    next_run,
    partial_date_bounds,
)

UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def sched(month=1, day=1, time="10:00", timezone="Europe/Moscow", grace_days=7.0) -> Schedule:
    return Schedule.from_config(DigestConfig(month=month, day=day, time=time, timezone=timezone, grace_days=grace_days))


def test_default_schedule_is_1_january_10_00_moscow_which_is_07_00_utc():
    s = Schedule.from_config(DigestConfig())
    assert next_run(utc(2025, 6, 1), s) == utc(2026, 1, 1, 7, 0)
    assert s.describe() == "1 January at 10:00 (Europe/Moscow time)"


def test_next_run_is_strictly_after_now_and_does_not_depend_on_the_zone_now_is_written_in():
    s = sched()
    at = utc(2026, 1, 1, 7, 0)
    assert next_run(at - dt.timedelta(seconds=1), s) == at
    assert next_run(at, s) == utc(2027, 1, 1, 7, 0)  # exactly at the moment: that one is due, not next
    in_tokyo = (at - dt.timedelta(minutes=5)).astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert in_tokyo.date() == dt.date(2026, 1, 1)  # already New Year's Day in Tokyo, still the same instant
    assert next_run(in_tokyo, s) == at


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Europe/Moscow", utc(2026, 1, 1, 7)),
        ("Asia/Tokyo", utc(2026, 1, 1, 1)),
        ("America/New_York", utc(2026, 1, 1, 15)),  # EST, UTC-5
        ("Asia/Kolkata", utc(2026, 1, 1, 4, 30)),
        ("UTC", utc(2026, 1, 1, 10)),
    ],
)
def test_next_run_in_other_time_zones(zone, expected):
    assert next_run(utc(2025, 12, 31, 0, 0), sched(timezone=zone)) == expected


def test_summer_and_winter_offsets_of_a_dst_zone():
    ny_summer = sched(month=7, day=1, time="09:00", timezone="America/New_York")
    assert next_run(utc(2025, 1, 1), ny_summer) == utc(2025, 7, 1, 13)  # EDT, UTC-4
    ny_winter = sched(month=1, day=15, time="09:00", timezone="America/New_York")
    assert next_run(utc(2025, 7, 1), ny_winter) == utc(2026, 1, 15, 14)  # EST, UTC-5


def test_a_time_in_the_spring_forward_gap_fires_once_at_the_shifted_instant():
    # Berlin moved clocks from 02:00 to 03:00 on 30 March 2025: 02:30 did not exist that day.
    s = sched(month=3, day=30, time="02:30", timezone="Europe/Berlin")
    first = next_run(utc(2025, 1, 1), s)
    assert first == utc(2025, 3, 30, 1, 30)  # = 03:30 CEST, an hour after 01:30 CET
    assert first.astimezone(s.tz).strftime("%H:%M %Z") == "03:30 CEST"
    # In 2026 the change is on 29 March, so 30 March 02:30 exists (CEST, UTC+2).
    assert next_run(first, s) == utc(2026, 3, 30, 0, 30)


def test_a_time_that_occurs_twice_when_clocks_fall_back_fires_once_at_the_first():
    # Berlin went from 03:00 CEST back to 02:00 CET on 26 October 2025: 02:30 happened twice.
    s = sched(month=10, day=26, time="02:30", timezone="Europe/Berlin")
    first = next_run(utc(2025, 1, 1), s)
    assert first == utc(2025, 10, 26, 0, 30)  # 02:30 CEST
    # Not again an hour later (02:30 CET): the next run is a year on.
    assert next_run(first, s) == utc(2026, 10, 26, 1, 30)  # 2026: the change was 25 October, so CET
    assert next_run(utc(2025, 10, 26, 1, 0), s) == utc(2026, 10, 26, 1, 30)


def test_29_february_fires_only_in_leap_years():
    s = sched(month=2, day=29, time="12:00", timezone="UTC")
    assert moment(2025, s) is None
    assert next_run(utc(2024, 3, 1), s) == utc(2028, 2, 29, 12)
    assert last_run(utc(2027, 6, 1), s) == utc(2024, 2, 29, 12)


def test_missed_run_within_and_beyond_the_grace_period():
    s = sched()  # 1 January 10:00 Moscow, grace 7 days
    scheduled = utc(2026, 1, 1, 7, 0)
    assert missed_run(scheduled, s) == scheduled  # the moment itself
    assert missed_run(scheduled + dt.timedelta(days=3), s) == scheduled  # back up on 4 January: send it
    assert missed_run(scheduled + dt.timedelta(days=7), s) == scheduled  # the last instant of grace
    assert missed_run(scheduled + dt.timedelta(days=7, seconds=1), s) is None  # too late: skipped
    assert missed_run(scheduled - dt.timedelta(seconds=1), s) is None  # last year's moment is long gone
    assert missed_run(scheduled + dt.timedelta(days=3), sched(grace_days=1)) is None


def test_grace_is_measured_in_real_time_across_a_dst_change():
    # 10:00 New York on 7 March 2026; clocks spring forward on 8 March. 1 day 23.5 hours of real time later
    # is 10:30 local on 9 March: over 2 days on the wall clock, but within a 2-day grace in real time.
    s = sched(month=3, day=7, time="10:00", timezone="America/New_York", grace_days=2)
    scheduled = utc(2026, 3, 7, 15, 0)
    later = (scheduled + dt.timedelta(days=1, hours=23, minutes=30)).astimezone(s.tz)
    assert later.strftime("%d %H:%M") == "09 10:30"
    assert missed_run(later, s) == scheduled
    assert missed_run(later + dt.timedelta(hours=1), s) is None


def test_now_must_be_timezone_aware():
    with pytest.raises(ValueError, match="aware"):
        next_run(dt.datetime(2025, 1, 1), sched())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timezone", "Mars/Olympus", "unknown IANA time zone"),
        ("time", "25:00", "HH:MM"),
        ("day", 31, "not a day of the year"),
        ("grace_days", -1, "negative"),
    ],
)
def test_unusable_digest_settings_are_named(field, value, message):
    cfg = DigestConfig(month=4 if field == "day" else 1, **{field: value})
    with pytest.raises(ConfigError, match=message):
        Schedule.from_config(cfg)


def test_the_jobqueue_trigger_fires_at_next_run():
    s = sched()
    trigger = DigestTrigger(s)
    now = utc(2025, 5, 5)
    assert trigger.get_next_fire_time(None, now) == next_run(now, s)
    fired = utc(2026, 1, 1, 7)
    assert trigger.get_next_fire_time(fired, fired + dt.timedelta(seconds=2)) == utc(2027, 1, 1, 7)


def test_partial_dates_cover_their_whole_period():
    assert partial_date_bounds("2025-12") == (dt.date(2025, 12, 1), dt.date(2025, 12, 31))
    assert partial_date_bounds("2024-02") == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert partial_date_bounds("2023") == (dt.date(2023, 1, 1), dt.date(2023, 12, 31))
    assert partial_date_bounds("2021-12-31") == (dt.date(2021, 12, 31), dt.date(2021, 12, 31))


def test_a_1_january_run_sends_the_exchange_of_the_previous_year_end():
    dates = ["2021-12-31", "2023-12-31", "2024-12-31", "2025-12"]
    tz = sched().tz

    def at(year: int) -> dt.datetime:  # the default run: 1 January 10:00 Moscow
        return next_run(utc(year - 1, 12, 1), sched())

    assert exchange_for_run(at(2022), dates, tz) == "2021-12-31"
    assert exchange_for_run(at(2024), dates, tz) == "2023-12-31"
    assert exchange_for_run(at(2025), dates, tz) == "2024-12-31"
    assert exchange_for_run(at(2026), dates, tz) == "2025-12"
    # No exchange at the end of 2022, and 2021's is over a year old: nothing to send, rather than a stale digest.
    assert exchange_for_run(at(2023), dates, tz) is None
    assert exchange_for_run(at(2027), dates, tz) is None
    # The day is the schedule's: 00:30 on 1 January in Moscow is still 31 December in UTC.
    assert exchange_for_run(utc(2024, 12, 31, 21, 30), ["2024-12-31"], tz) == "2024-12-31"
    assert exchange_for_run(utc(2024, 12, 31, 21, 30), ["2025-01-01"], tz) == "2025-01-01"
    assert exchange_for_run(utc(2024, 12, 31, 21, 30), ["2025-01-01"]) is None  # read in UTC it is too early
