-- Catalog of one table as sorted text lines, for diffing a source before its
-- conversion with the partitioned table after cutover. psql variables:
--   s, t: schema and table name (unquoted); k: the partition column.
-- Also the extended statistics and whether each serial / identity sequence
-- continues past its column's values.
-- Normalisation: the documented widening of PRIMARY KEY / UNIQUE keys with
-- the partition column is removed, "ON ONLY" of partitioned indexes is read
-- as "ON", and storage parameters are read from the first partition when the
-- table is partitioned (a partitioned table holds none).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET search_path = pg_catalog;
WITH rel AS (
  SELECT c.* FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = :'s' AND c.relname = :'t'
), widen AS (
  SELECT ', ' || quote_ident(:'k') AS w
)
SELECT line FROM (
  SELECT 'column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
         ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-') ||
         ' notnull=' || a.attnotnull || ' identity=' || a.attidentity::text ||
         ' generated=' || a.attgenerated::text || ' storage=' || a.attstorage::text ||
         ' compression=' || a.attcompression::text || ' stat=' || a.attstattarget ||
         ' comment=' || coalesce(col_description(a.attrelid, a.attnum), '-') ||
         ' acl=' || coalesce(a.attacl::text, '-') AS line
    FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  UNION ALL
  SELECT 'constraint ' || con.conname || ' ' ||
         replace(pg_get_constraintdef(con.oid), (SELECT w FROM widen) || ')', ')') ||
         ' validated=' || con.convalidated ||
         ' comment=' || coalesce(obj_description(con.oid, 'pg_constraint'), '-')
    FROM rel JOIN pg_constraint con ON con.conrelid = rel.oid
   WHERE con.contype <> 'x' -- exclusion constraints are reported as not carried
  UNION ALL
  SELECT 'incoming ' || con.conrelid::regclass::text || ' ' || con.conname || ' ' ||
         pg_get_constraintdef(con.oid) || ' validated=' || con.convalidated
    FROM rel JOIN pg_constraint con ON con.confrelid = rel.oid AND con.conrelid <> rel.oid
   WHERE con.conparentid = 0
  UNION ALL
  SELECT 'index ' || ic.relname || ' ' ||
         replace(replace(replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON '),
                         (SELECT w FROM widen) || ')', ')'),
                 (SELECT w FROM widen) || ') INCLUDE', ') INCLUDE') ||
         ' comment=' || coalesce(obj_description(i.indexrelid, 'pg_class'), '-') ||
         ' replident=' || i.indisreplident
    FROM rel JOIN pg_index i ON i.indrelid = rel.oid JOIN pg_class ic ON ic.oid = i.indexrelid
   WHERE NOT i.indisexclusion
  UNION ALL
  SELECT 'policy ' || p.policyname || ' ' || p.permissive || ' ' || p.cmd || ' ' ||
         p.roles::text || ' using=' || coalesce(p.qual, '-') || ' check=' || coalesce(p.with_check, '-')
    FROM pg_policies p WHERE p.schemaname = :'s' AND p.tablename = :'t'
  UNION ALL
  SELECT 'grant ' || x.privilege_type || ' to ' ||
         CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END ||
         ' grantable=' || x.is_grantable
    FROM rel, aclexplode(rel.relacl) x WHERE x.grantee <> rel.relowner
  UNION ALL
  SELECT 'trigger ' || tg.tgname || ' ' || pg_get_triggerdef(tg.oid) || ' enabled=' || tg.tgenabled::text ||
         ' comment=' || coalesce(obj_description(tg.oid, 'pg_trigger'), '-')
    FROM rel JOIN pg_trigger tg ON tg.tgrelid = rel.oid AND NOT tg.tgisinternal
  UNION ALL
  SELECT 'table owner=' || pg_get_userbyid(rel.relowner) || ' rls=' || rel.relrowsecurity ||
         ' force=' || rel.relforcerowsecurity || ' replident=' || rel.relreplident::text ||
         ' comment=' || coalesce(obj_description(rel.oid, 'pg_class'), '-') ||
         ' reloptions=' || coalesce((
           SELECT array_to_string(pc.reloptions, ',') FROM pg_class pc
            WHERE pc.oid = CASE WHEN rel.relkind = 'p'
                                THEN (SELECT min(h.inhrelid::regclass::text)::regclass::oid
                                        FROM pg_inherits h WHERE h.inhparent = rel.oid)
                                ELSE rel.oid END), '-')
    FROM rel
  UNION ALL
  SELECT 'view ' || v.oid::regclass::text || ' ' || pg_get_viewdef(v.oid)
    FROM rel JOIN pg_depend dep ON dep.refobjid = rel.oid AND dep.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite rw ON rw.oid = dep.objid JOIN pg_class v ON v.oid = rw.ev_class
   WHERE v.oid <> rel.oid
  UNION ALL
  SELECT 'statistics ' || pg_get_statisticsobjdef(s.oid) ||
         ' comment=' || coalesce(obj_description(s.oid, 'pg_statistic_ext'), '-')
    FROM rel JOIN pg_statistic_ext s ON s.stxrelid = rel.oid
  UNION ALL
  SELECT 'publication ' || p.pubname
    FROM rel JOIN pg_publication_rel pr ON pr.prrelid = rel.oid
    JOIN pg_publication p ON p.oid = pr.prpubid
   WHERE p.pubname NOT LIKE 'pgshift%'
) lines
GROUP BY line ORDER BY line;
-- Sequence next values: every serial / identity sequence of the table is at
-- or past the largest value in its column, so the next default never
-- collides with an existing row.
SELECT format('SELECT %L || (coalesce(pg_sequence_last_value(%L::regclass), 0) >= '
              'coalesce(max(%I), 0)) FROM %I.%I',
              'sequence ' || a.attname || ' continues=', seq, a.attname, :'s', :'t')
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace,
  LATERAL pg_get_serial_sequence(format('%I.%I', :'s', :'t'), a.attname) AS seq
 WHERE n.nspname = :'s' AND c.relname = :'t' AND a.attnum > 0 AND NOT a.attisdropped
   AND seq IS NOT NULL
 ORDER BY a.attnum
\gexec
