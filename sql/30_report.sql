-- selfheal: the before/after report. Plain queries over error_event and audit, run with the
-- caller's rights: whoever may read those tables may read the report, nobody else.

CREATE OR REPLACE FUNCTION selfheal.report()
RETURNS TABLE (signature text, sqlstate text, message text, class text, status text,
               before_repair bigint, after_repair bigint, first_seen timestamptz, last_seen timestamptz,
               healed_at timestamptz, time_to_heal interval, share_eliminated numeric, audit_id bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH repair AS (
    SELECT e.signature_key, min(a.created_at) AS healed_at, (array_agg(a.id ORDER BY a.created_at))[1] AS audit_id,
           bool_and(a.undone_by IS NOT NULL) AS undone
      FROM selfheal.error_event e JOIN selfheal.audit a ON a.id = e.audit_id
     WHERE a.status = 'applied'
     GROUP BY e.signature_key
), latest AS (
    -- The latest decision: errors that came in since and wait for heal() do not undo it.
    SELECT DISTINCT ON (e.signature_key) e.signature_key, e.status
      FROM selfheal.error_event e ORDER BY e.signature_key, e.processed_at IS NULL, e.id DESC
), decided AS (
    -- Errors are split at the repair; one never repaired is split where selfheal first decided
    -- about it, so errors that go on after a refusal still show.
    SELECT e.signature_key, min(e.processed_at) AS decided_at
      FROM selfheal.error_event e GROUP BY e.signature_key
), per_signature AS (
    SELECT e.signature_key, min(e.signature) AS signature, min(e.sqlstate) AS sqlstate,
           (array_agg(e.message ORDER BY e.id))[1] AS message,
           min(e.class) AS class,
           coalesce(sum(e.occurrences) FILTER (WHERE s.before), 0)::bigint AS before_repair,
           coalesce(sum(e.occurrences) FILTER (WHERE NOT s.before), 0)::bigint AS after_repair,
           min(e.occurred_at) AS first_seen, max(coalesce(e.last_occurred_at, e.occurred_at)) AS last_seen, r.healed_at, r.audit_id, r.undone
      FROM selfheal.error_event e
      JOIN decided d ON d.signature_key = e.signature_key
      LEFT JOIN repair r ON r.signature_key = e.signature_key
      -- <=: the error that set the repair off shares its transaction's time.
      CROSS JOIN LATERAL (SELECT coalesce(r.healed_at, d.decided_at) IS NULL
                                 OR e.occurred_at <= coalesce(r.healed_at, d.decided_at)
                                 OR coalesce(e.audit_id = r.audit_id, false) AS before) s
     GROUP BY e.signature_key, r.healed_at, r.audit_id, r.undone
), rows AS (
    SELECT p.signature, p.sqlstate, p.message, p.class,
           CASE WHEN p.undone THEN 'undone'
                WHEN p.healed_at IS NOT NULL THEN 'healed'
                WHEN l.status IN ('needs_review', 'not_schema', 'failed', 'ineffective') THEN 'needs review'
                WHEN l.status = 'refused' THEN 'refused by policy'
                WHEN l.status IN ('pending_approval', 'observed') THEN 'pending approval'
                WHEN l.status = 'resolved' THEN 'resolved'
                ELSE 'pending' END AS status,
           p.before_repair, p.after_repair, p.first_seen, p.last_seen, p.healed_at,
           p.healed_at - p.first_seen AS time_to_heal,
           CASE WHEN p.healed_at IS NOT NULL AND NOT p.undone
                THEN round(100.0 * p.before_repair / (p.before_repair + p.after_repair), 1) ELSE 0 END
             AS share_eliminated,
           p.audit_id
      FROM per_signature p JOIN latest l ON l.signature_key = p.signature_key
)
SELECT * FROM (SELECT * FROM rows ORDER BY before_repair + after_repair DESC, signature) ordered
UNION ALL
SELECT '(all errors)', NULL, NULL, NULL, 'summary',
       sum(before_repair)::bigint, sum(after_repair)::bigint, min(first_seen), max(last_seen), max(healed_at),
       NULL,
       round(100.0 * coalesce(sum(before_repair) FILTER (WHERE status = 'healed'), 0)
             / nullif(sum(before_repair + after_repair), 0), 1),
       NULL
  FROM rows
$$;
COMMENT ON FUNCTION selfheal.report() IS
  'One row per error signature: occurrences before and after its first repair (for a signature never repaired, before and after selfheal first decided about it), time to heal, status (healed, undone, needs review, refused by policy, pending approval, resolved, pending) and the repair''s audit id; then a summary row with the share of errors eliminated';

CREATE OR REPLACE FUNCTION selfheal.timeline(bucket interval DEFAULT '1 minute')
RETURNS TABLE (bucket_start timestamptz, signature text, occurrences bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT date_bin(bucket, e.occurred_at, TIMESTAMPTZ '2000-01-01') AS bucket_start, e.signature,
       sum(e.occurrences)::bigint
  FROM selfheal.error_event e
 GROUP BY 1, 2
 ORDER BY 1, 2
$$;
COMMENT ON FUNCTION selfheal.timeline(interval) IS
  'Errors per time bucket and signature, for the report''s timeline chart';
