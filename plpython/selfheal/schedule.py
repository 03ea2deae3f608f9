"""Turn a heal interval into a pg_cron schedule."""

from __future__ import annotations


def interval_to_cron(seconds: float) -> str:
    """A cron spec that runs every `seconds`; pg_cron 1.4 runs jobs once a minute at most."""
    if seconds < 60:
        raise ValueError("pg_cron 1.4 runs jobs at most once a minute; for healing within a second use "
                         "CALL selfheal.watch() in a session of its own")
    minutes, rest = divmod(int(seconds), 60)
    if rest or seconds != int(seconds):
        raise ValueError("the interval must be whole minutes")
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours, rest = divmod(minutes, 60)
    if not rest and hours < 24 and 24 % hours == 0:
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if minutes == 24 * 60:
        return "0 0 * * *"
    raise ValueError("cron can run this interval only unevenly: use minutes that divide an hour "
                     "(1-30, 60) or hours that divide a day")
