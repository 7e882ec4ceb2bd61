# SPDX-License-Identifier: Apache-2.0
"""gen - a deterministic OMOP data set of N persons, as SQL, for tests and benchmarks.

    tests/omop/gen N            print the SQL to stdout
    tests/omop/gen N --load     run it with psql (libpq's PGHOST, PGPORT, PGUSER,
                                PGDATABASE, PGPASSWORD from the environment; a
                                superuser or the tables' owner: it truncates)
    import gen; gen.generate_sql(N) -> str

N is the number of persons, 1 to 10,000,000 (tested 100 to 1,000,000). The same N
always gives the same rows: every value is a function of the row number alone, through
md5 of a tagged row number (no random(), no clock, no sequence). CURRENT_DATE is never
used, so ages move with the calendar exactly as they do for real data.

What it writes (in one transaction, after TRUNCATE of every table that holds person
data, so nothing of the hand-made fixture is left to mix in):
  person                person_id 1..N; births spread over 1925-01-01..2004-12-30 at
                        midnight; year/month/day_of_birth consistent with
                        birth_datetime, month_of_birth NULL for ~2%; gender_source_value
                        'M' ~48.5%, 'F' ~48.5%, 'U' ~1.2%, 'X' ~1.2%, NULL ~0.6%, with the
                        matching gender_concept_id (8507, 8532, else 0); race_source_value
                        from four values or NULL; provider_id and ethnicity_source_value
                        NULL everywhere.
  condition_occurrence  1..5 rows per person (mean 3), ids (person_id-1)*5+k; one of ten
                        condition concepts; start 2005-01-01 + 0..6999 days; end date
                        for ~1/3.
  image_occurrence      N/2 rows (at least 1), id k, person 1 + (hash(k) mod N) (so some
                        persons have two or more, some none), accession_id
                        'GEN%08d' % k (unique), study and series UIDs under 2.25.,
                        one of three modality concept ids.
  concept, vocabulary   the concepts used (upserted; existing rows kept).
  concept_ancestor      a few rows (truncated and rewritten), so it is never empty.
Then ANALYZE of those tables.

Speed: on the harness's cluster (fsync off, wal_level minimal, so rows written into
tables truncated in the same transaction produce no WAL) 1,000,000 persons load in
well under a minute on two cores; see the test and docs for figures.
"""

import os
import subprocess
import sys

MIN_N = 1
MAX_N = 10_000_000

# ten condition concept ids (the first four as in the fixture; gen names them all
# 'condition <id>' in concept, so nothing depends on a real vocabulary)
CONDITIONS = [201826, 320128, 317009, 4329847, 255573, 4185932, 81902, 80180, 433736, 140673]
MODALITIES = [4000001, 4000002, 4000003]   # illustrative, as in fixture.sql

# A 60-bit non-negative hash of a tagged row number: md5 is deterministic everywhere,
# and 15 hex digits fit a bigint without reaching the sign bit. Each is computed in a
# subquery fenced with OFFSET 0: without the fence the planner inlines the expression
# into every use, and md5 then runs five to ten times per row.
def _h(tag, expr):
    return "('x' || substr(md5('%s' || (%s)::text), 1, 15))::bit(60)::bigint" % (tag, expr)


def generate_sql(n):
    """generate_sql - the SQL text that loads the data set of n persons."""
    n = int(n)
    if not MIN_N <= n <= MAX_N:
        raise ValueError("person count must be between %d and %d" % (MIN_N, MAX_N))
    n_img = max(1, n // 2)
    cond_arr = "ARRAY[%s]" % ",".join(str(c) for c in CONDITIONS)
    mod_arr = "ARRAY[%s]" % ",".join(str(c) for c in MODALITIES)
    return """-- tests/omop/gen %(n)d: deterministic OMOP data set (see tests/omop/gen.py)
SET client_min_messages = warning;
SET maintenance_work_mem = '256MB';
SET work_mem = '64MB';
BEGIN;
TRUNCATE omop.person, omop.observation_period, omop.visit_occurrence,
         omop.condition_occurrence, omop.drug_exposure, omop.procedure_occurrence,
         omop.measurement, omop.observation, omop.death, omop.image_occurrence,
         omop.concept_ancestor;

INSERT INTO omop.person (person_id, gender_concept_id, year_of_birth, month_of_birth,
       day_of_birth, birth_datetime, race_concept_id, ethnicity_concept_id,
       person_source_value, gender_source_value, race_source_value)
SELECT i,
       CASE WHEN g < 485 THEN 8507 WHEN g < 970 THEN 8532 ELSE 0 END,
       extract(year FROM b)::int,
       CASE WHEN (h >> 30) %% 50 = 0 THEN NULL ELSE extract(month FROM b)::int END,
       extract(day FROM b)::int,
       b::timestamp,
       0, 0,
       'GEN' || i,
       CASE WHEN g < 485 THEN 'M' WHEN g < 970 THEN 'F' WHEN g < 982 THEN 'U'
            WHEN g < 994 THEN 'X' ELSE NULL END,
       (ARRAY['White', 'Asian', 'Black', 'Mixed', NULL])[1 + ((h >> 40) %% 5)::int]
FROM (SELECT i, h, DATE '1925-01-01' + (h %% 29219)::int AS b, ((h >> 16) %% 1000)::int AS g
      FROM (SELECT i, %(hp)s AS h FROM generate_series(1, %(n)d) AS s(i) OFFSET 0) AS s1
      OFFSET 0) AS s2;

INSERT INTO omop.condition_occurrence (condition_occurrence_id, person_id,
       condition_concept_id, condition_start_date, condition_end_date,
       condition_type_concept_id, condition_source_value)
SELECT (p.i - 1) * 5 + k,
       p.i,
       (%(cond)s)[1 + ((c.h >> 8) %% 10)::int],
       DATE '2005-01-01' + (c.h %% 7000)::int,
       CASE WHEN (c.h >> 24) %% 3 = 0 THEN DATE '2005-01-01' + (c.h %% 7000)::int + 30 + ((c.h >> 32) %% 300)::int END,
       32817,
       NULL
FROM (SELECT i, 1 + (%(hn)s %% 5)::int AS nk FROM generate_series(1, %(n)d) AS s(i) OFFSET 0) AS p
CROSS JOIN LATERAL generate_series(1, p.nk) AS k
CROSS JOIN LATERAL (SELECT %(hc)s AS h OFFSET 0) AS c;

INSERT INTO omop.image_occurrence (image_occurrence_id, person_id, procedure_occurrence_id,
       visit_occurrence_id, anatomic_site_concept_id, wadors_uri, local_path,
       image_occurrence_date, image_study_uid, image_series_uid, modality_concept_id,
       accession_id)
SELECT k, 1 + (h %% %(n)d)::int, NULL, NULL, NULL, NULL, NULL,
       DATE '2010-01-01' + ((h >> 24) %% 5000)::int,
       '2.25.' || (h >> 1)::text,
       '2.25.' || ((h >> 1) + 1)::text,
       (%(mod)s)[1 + ((h >> 40) %% 3)::int],
       'GEN' || to_char(k, 'FM00000000')
FROM (SELECT k, %(hi)s AS h FROM generate_series(1, %(n_img)d) AS s(k) OFFSET 0) AS s1;

INSERT INTO omop.vocabulary (vocabulary_id, vocabulary_name, vocabulary_reference,
       vocabulary_version, vocabulary_concept_id) VALUES
('SNOMED', 'Systematized Nomenclature of Medicine', 'gen', 'gen', 0),
('Gender', 'OMOP Gender', 'gen', 'gen', 0),
('Type Concept', 'OMOP Type Concept', 'gen', 'gen', 0)
ON CONFLICT (vocabulary_id) DO NOTHING;

INSERT INTO omop.concept (concept_id, concept_name, domain_id, vocabulary_id,
       concept_class_id, standard_concept, concept_code, valid_start_date, valid_end_date)
SELECT c, 'condition ' || c, 'Condition', 'SNOMED', 'Clinical Finding', 'S', c::text,
       DATE '1970-01-01', DATE '2099-12-31'
FROM unnest(%(cond)s) AS u(c)
UNION ALL SELECT 201820, 'Diabetes mellitus', 'Condition', 'SNOMED', 'Clinical Finding', 'S',
       '73211009', DATE '1970-01-01', DATE '2099-12-31'
UNION ALL SELECT 316866, 'Hypertensive disorder', 'Condition', 'SNOMED', 'Clinical Finding', 'S',
       '38341003', DATE '1970-01-01', DATE '2099-12-31'
UNION ALL SELECT 8507, 'MALE', 'Gender', 'Gender', 'Gender', 'S', 'M',
       DATE '1970-01-01', DATE '2099-12-31'
UNION ALL SELECT 8532, 'FEMALE', 'Gender', 'Gender', 'Gender', 'S', 'F',
       DATE '1970-01-01', DATE '2099-12-31'
UNION ALL SELECT 32817, 'EHR', 'Type Concept', 'Type Concept', 'Type Concept', 'S',
       'OMOP4976890', DATE '1970-01-01', DATE '2099-12-31'
ON CONFLICT (concept_id) DO NOTHING;

INSERT INTO omop.concept_ancestor (ancestor_concept_id, descendant_concept_id,
       min_levels_of_separation, max_levels_of_separation) VALUES
(201820, 201820, 0, 0), (201820, 201826, 1, 1), (201826, 201826, 0, 0),
(316866, 316866, 0, 0), (316866, 320128, 1, 1), (320128, 320128, 0, 0);
COMMIT;

ANALYZE omop.person, omop.condition_occurrence, omop.image_occurrence, omop.concept,
        omop.concept_ancestor;
""" % {"n": n, "n_img": n_img, "cond": cond_arr, "mod": mod_arr,
       "hp": _h("p", "i"), "hn": _h("n", "i"), "hc": _h("c", "p.i * 8 + k"),
       "hi": _h("i", "k")}


def usage():
    sys.stderr.write("usage: gen N [--load]\n"
                     "  N        number of persons, %d..%d\n"
                     "  --load   run the SQL with psql (PGHOST, PGPORT, PGUSER, PGDATABASE,\n"
                     "           PGPASSWORD from the environment) instead of printing it\n"
                     % (MIN_N, MAX_N))
    sys.exit(2)


def main(argv):
    args = [a for a in argv if a != "--load"]
    load = len(args) != len(argv)
    if len(args) != 1 or not args[0].isdigit():
        usage()
    try:
        sql = generate_sql(int(args[0]))
    except ValueError as e:
        sys.stderr.write("gen: %s\n" % e)
        return 2
    if not load:
        sys.stdout.write(sql)
        return 0
    psql = os.environ.get("PSQL", "/usr/lib/postgresql/15/bin/psql")
    if not os.access(psql, os.X_OK):
        psql = "psql"
    p = subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1"], input=sql, text=True)
    return p.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
