-- selfheal.schedule(): an interval pg_cron 1.4 cannot keep, and a database without pg_cron,
-- are one-line errors with a hint (no Python traceback). Real schedules are tried in
-- tests/integration/test_log_capture.py, against pg_cron itself.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(6);

SELECT throws_ok($$SELECT selfheal.schedule('1 minute')$$, '55000',
                 'selfheal: pg_cron is not installed in this database', 'no pg_cron: one line');
SELECT throws_ok($$SELECT selfheal.schedule('10 seconds')$$, '22023',
                 'selfheal: pg_cron 1.4 runs jobs at most once a minute', 'under a minute is refused');
SELECT throws_ok($$SELECT selfheal.schedule('90 seconds')$$, '22023',
                 'selfheal: the interval must be whole minutes', 'part minutes are refused');
SELECT throws_ok($$SELECT selfheal.schedule('7 minutes')$$, '22023',
                 'selfheal: cron can run every 00:07:00 only unevenly', 'minutes that do not divide an hour are refused');
SELECT throws_ok($$SELECT selfheal.schedule('5 hours')$$, '22023',
                 'selfheal: cron can run every 05:00:00 only unevenly', 'hours that do not divide a day are refused');
SELECT is(selfheal.unschedule(), false, 'unschedule without pg_cron: nothing to remove');

SELECT * FROM finish();
ROLLBACK;
