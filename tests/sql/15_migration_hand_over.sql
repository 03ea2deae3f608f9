-- The application's own migration wins: when it adds a column selfheal added earlier, selfheal's
-- column goes first if it holds only its default, else the migration fails and says what to do.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(8);

CREATE TABLE players (id int PRIMARY KEY, name text);
INSERT INTO players VALUES (1, 'ann'), (2, 'bob');
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "level" does not exist', 'SELECT level FROM players WHERE level > 1')),
          'healed', 'selfheal adds level when the code first asks for it');
SELECT lives_ok($$ALTER TABLE players ADD COLUMN level smallint NOT NULL DEFAULT 1$$,
                'the team''s real migration adds level itself and succeeds');
SELECT col_type_is('players', 'level', 'smallint', 'with its own type');
SELECT results_eq('SELECT level FROM players ORDER BY id', $$VALUES (1::smallint), (1::smallint)$$,
                  'and its own default');
SELECT ok((SELECT undone_by IS NOT NULL FROM selfheal.audit WHERE action = 'add_column' AND column_name = 'level'),
          'selfheal''s repair is marked as handed over');
SELECT matches((SELECT reason FROM selfheal.audit WHERE action = 'undo' AND column_name = 'level'), 'handed over',
               'and the hand-over is audited');

SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "notes" does not exist', 'SELECT notes FROM players WHERE notes <> ''''')),
          'healed', 'selfheal adds notes');
UPDATE players SET notes = 'written by the app' WHERE id = 1;
SELECT throws_like($$ALTER TABLE players ADD COLUMN notes varchar(200)$$,
                   '%holds data the migration would replace%selfheal.undo(%, force => true)%',
                   'a migration over a column that holds data fails and says what to do');

SELECT * FROM finish();
ROLLBACK;
