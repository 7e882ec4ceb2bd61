# SPDX-License-Identifier: Apache-2.0
"""fixture_expected - what cohort_query must answer for named queries over fixture.sql.

Written by hand from fixture.sql (whose header explains the design), not computed by
running SQL; tests/omop/test_pg_harness.py checks these numbers against the loaded
fixture, so a slip here shows up there first.

    from fixture_expected import QUERIES, expected, same_statistics
    q = QUERIES["Q_ALL"]
    q.sql                          # the researcher's SQL, unqualified tables as on the hub
    want = expected("Q_ALL")       # {"record_count", "data", "suppressed"} at threshold 10,
                                   #   today's date (UTC); FLIP's StatisticsResponse minus
                                   #   query_id, trust_id and created
    assert same_statistics(got, want)

Semantics (docs/design/data-access.md, "Statistics"): record_count is the number of rows; group
"Counts" the non-null values per column, "Nulls" the nulls, value = column name with
every "_" replaced by "\\n"; a column null in every row is dropped from both (the cohort
has rows); duplicate column names keep the first. With a person_id column, "Age
Distribution" (floor(age in whole years at CURRENT_DATE from birth_datetime / 10) * 10,
as "30-39", ordered by bucket) and "Sex Distribution" (by gender_source_value) over
the distinct non-null persons, each rolled up: buckets below the threshold merge into
one "Other", appended last and only if its sum is above 0. The subject count (people,
not rows) decides suppression: distinct non-null person_id; else the distinct persons
of image_occurrence rows whose accession_id is in the cohort; else undetermined. Below
the threshold, or undetermined, the answer is SUPPRESSED, byte-identical to a zero.

Ages: every fixture birth year ends in 1..5, so the buckets are fixed for any day of
2026-2030 (AGE_2026_2030 below, written by hand). Outside those years expected()
computes the buckets from PERSONS' birth dates with age_bucket(), the same rule as
PostgreSQL's date_part('year', age(CURRENT_DATE, birth_datetime)).

FLIP gives no order for "Sex Distribution" (a GROUP BY without ORDER BY);
same_statistics() compares that group as a multiset, everything else in order.
"""

import datetime

THRESHOLD = 10
SUPPRESSED = {"record_count": 0, "data": [], "suppressed": True}

# person_id: (birth date, gender_source_value) - copied by hand from fixture.sql
PERSONS = {
    1: ("1991-06-14", "M"), 2: ("1992-07-03", "F"), 3: ("1993-05-22", "M"),
    4: ("1994-08-09", "F"), 5: ("1995-06-30", "M"), 6: ("1991-09-17", "F"),
    7: ("1992-04-25", "M"), 8: ("1993-10-11", "F"), 9: ("1994-03-08", "M"),
    10: ("1995-11-19", "F"),
    11: ("1981-06-02", "M"), 12: ("1982-07-19", "F"), 13: ("1983-05-05", "M"),
    14: ("1984-08-27", "F"), 15: ("1985-06-12", "M"), 16: ("1981-09-30", "F"),
    17: ("1982-04-14", "M"), 18: ("1983-10-21", "F"), 19: ("1984-02-16", "M"),
    20: ("1985-12-01", "F"), 21: ("1981-07-07", "U"), 22: ("1983-03-29", "X"),
    23: ("1961-06-20", "M"), 24: ("1962-07-11", "F"), 25: ("1963-05-15", "M"),
    26: ("1964-08-04", "F"), 27: ("1965-06-26", "M"), 28: ("1961-09-09", "F"),
    29: ("1962-04-18", "M"), 30: ("1963-10-02", "F"), 31: ("1964-01-23", "M"),
    32: ("1965-11-30", "F"), 33: ("1962-08-08", "M"),
    34: ("1951-06-06", "F"), 35: ("1953-07-21", "M"), 36: ("1954-05-13", "U"),
    37: ("1955-09-01", "X"),
    38: ("2002-06-10", "M"), 39: ("2004-07-28", "F"),
    40: ("1943-05-17", None),
}

# accession_id -> person_id (image_occurrence 1..30); image 31 (person 35) has none
ACCESSIONS = {"ACC0001": 1, "ACC0002": 1}
ACCESSIONS.update({"ACC%04d" % k: k - 1 for k in range(3, 31)})


def age_bucket(birth, today=None):
    """age_bucket - "30-39" style bucket of a person born on birth (ISO date or date)
    at today (default: today's UTC date, as the test cluster's CURRENT_DATE)."""
    if isinstance(birth, str):
        birth = datetime.date.fromisoformat(birth)
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    b = age // 10 * 10
    return "%d-%d" % (b, b + 9)


def roll_up(pairs, threshold=THRESHOLD):
    """roll_up - FLIP's make_other_category: keep buckets >= threshold in order,
    append "Other" with the sum of the rest when that sum is above 0."""
    kept = [{"value": v, "count": c} for v, c in pairs if c >= threshold]
    other = sum(c for _v, c in pairs if c < threshold)
    if other > 0:
        kept.append({"value": "Other", "count": other})
    return kept


def age_distribution(person_ids, today=None, threshold=THRESHOLD):
    """age_distribution - the rolled-up "Age Distribution" results for these persons."""
    counts = {}
    for pid in set(person_ids):
        b = age_bucket(PERSONS[pid][0], today)
        counts[b] = counts.get(b, 0) + 1
    pairs = sorted(counts.items(), key=lambda kv: int(kv[0].split("-")[0]))
    return roll_up(pairs, threshold)


def _label(column):
    return column.replace("_", "\n")


class Query:
    """One named cohort query and its hand-written answer at threshold 10.

    columns: [(column name, non-null count, null count)] in result order, after
    dropping duplicate names and all-null columns; persons: the distinct persons for the
    age and sex groups (None when the cohort has no person_id column); sex: the
    rolled-up sex distribution (a multiset); age_2026_2030: the rolled-up age
    distribution valid for every day of 2026-2030; subjects: the subject count (None when
    undetermined)."""

    def __init__(self, sql, why, record_count, subjects, columns=(), persons=None,
                 sex=None, age_2026_2030=None):
        self.sql = sql
        self.why = why
        self.record_count = record_count
        self.subjects = subjects
        self.columns = list(columns)
        self.persons = None if persons is None else sorted(persons)
        self.sex = sex
        self.age_2026_2030 = age_2026_2030

    def suppressed(self, threshold=THRESHOLD):
        return self.subjects is None or self.subjects < threshold


R = range  # persons are written as ranges of ids below: R(1, 11) is persons 1..10

QUERIES = {
    # Everyone. Counts/Nulls per column; person 40's sex is NULL. Ages: 10 in their
    # 30s (kept: exactly the threshold), 12 in their 40s, 11 in their 60s, and 4+2+1
    # (70s, 20s, 80s) in Other. Sex: 18 M, 17 F, Other = 2 U + 2 X + 1 NULL.
    "Q_ALL": Query(
        "SELECT p.person_id, p.gender_source_value, p.year_of_birth FROM person p",
        "all persons", record_count=40, subjects=40,
        columns=[("person_id", 40, 0), ("gender_source_value", 39, 1),
                 ("year_of_birth", 40, 0)],
        persons=R(1, 41),
        sex=[("M", 18), ("F", 17), ("Other", 5)],
        age_2026_2030=[("30-39", 10), ("40-49", 12), ("60-69", 11), ("Other", 7)]),

    # provider_id is NULL for everyone: dropped from Counts and Nulls.
    # month_of_birth is NULL for persons 5, 17, 33.
    "Q_ALLNULL": Query(
        "SELECT p.person_id, p.provider_id, p.month_of_birth FROM person p",
        "an all-null column is dropped", record_count=40, subjects=40,
        columns=[("person_id", 40, 0), ("month_of_birth", 37, 3)],
        persons=R(1, 41),
        sex=[("M", 18), ("F", 17), ("Other", 5)],
        age_2026_2030=[("30-39", 10), ("40-49", 12), ("60-69", 11), ("Other", 7)]),

    # Two columns named yob: the first (year_of_birth, never null) is kept; keeping
    # the second (month_of_birth) would show 37 / 3.
    "Q_DUP": Query(
        "SELECT p.person_id, p.year_of_birth AS yob, p.month_of_birth AS yob FROM person p",
        "duplicate column names keep the first", record_count=40, subjects=40,
        columns=[("person_id", 40, 0), ("yob", 40, 0)],
        persons=R(1, 41),
        sex=[("M", 18), ("F", 17), ("Other", 5)],
        age_2026_2030=[("30-39", 10), ("40-49", 12), ("60-69", 11), ("Other", 7)]),

    # Type 2 diabetes: persons 11-24 once (ids 1-14), persons 11-16 again (ids 15-20):
    # 20 rows, 14 people. End dates: rows 1, 2 and 15-20 -> 8 set, 12 null.
    # Ages: 11-22 are in their 40s (12), 23-24 in their 60s (2 -> Other).
    # Sex of 11-24: M 11,13,15,17,19,23 = 6; F 12,14,16,18,20,24 = 6; U 21; X 22:
    # all below 10 -> Other 14.
    "Q_T2DM": Query(
        "SELECT co.person_id, co.condition_start_date, co.condition_end_date "
        "FROM condition_occurrence co WHERE co.condition_concept_id = 201826",
        "rows vs distinct persons; everything rolls into Other", record_count=20, subjects=14,
        columns=[("person_id", 20, 0), ("condition_start_date", 20, 0),
                 ("condition_end_date", 8, 12)],
        persons=R(11, 25),
        sex=[("Other", 14)],
        age_2026_2030=[("40-49", 12), ("Other", 2)]),

    # A CTE called cohort binds (it is not omop.cohort). Born 1980-1990: persons 11-22.
    # Sex: M 5, F 5, U 1, X 1 -> Other 12.
    "Q_CTE": Query(
        "WITH cohort AS (SELECT person_id FROM person WHERE year_of_birth BETWEEN 1980 AND 1990) "
        "SELECT c.person_id FROM cohort c",
        "a CTE named cohort", record_count=12, subjects=12,
        columns=[("person_id", 12, 0)],
        persons=R(11, 23),
        sex=[("Other", 12)],
        age_2026_2030=[("40-49", 12)]),

    # SUBSTRING and a window function. Born before 2000: everyone but 38 and 39 (38
    # people). sex is NULL for person 40. Ages: 30s 10, 40s 12, 60s 11, Other 4 + 1.
    # Sex: M 18-1 = 17, F 17-1 = 16, Other 2 U + 2 X + 1 NULL = 5.
    "Q_FUNCS": Query(
        "SELECT p.person_id, SUBSTRING(p.gender_source_value, 1, 1) AS sex, "
        "row_number() OVER (ORDER BY p.person_id) AS rn FROM person p "
        "WHERE p.year_of_birth < 2000",
        "SUBSTRING and a window function", record_count=38, subjects=38,
        columns=[("person_id", 38, 0), ("sex", 37, 1), ("rn", 38, 0)],
        persons=list(R(1, 38)) + [40],
        sex=[("M", 17), ("F", 16), ("Other", 5)],
        age_2026_2030=[("30-39", 10), ("40-49", 12), ("60-69", 11), ("Other", 5)]),

    # Multi-join: asthma (persons 1-10) joined to their images: person 1 has ACC0001
    # and ACC0002, persons 2-10 have ACC0003..ACC0011: 11 rows, 10 people, all in
    # their 30s. Sex: 5 M, 5 F -> Other 10.
    "Q_JOIN": Query(
        "SELECT DISTINCT p.person_id, io.accession_id FROM person p "
        "JOIN condition_occurrence co ON co.person_id = p.person_id "
        "JOIN image_occurrence io ON io.person_id = p.person_id "
        "WHERE co.condition_concept_id = 317009",
        "a multi-join cohort", record_count=11, subjects=10,
        columns=[("person_id", 11, 0), ("accession_id", 11, 0)],
        persons=R(1, 11),
        sex=[("Other", 10)],
        age_2026_2030=[("30-39", 10)]),

    # LEFT JOIN: person_id is NULL on the 10 rows of persons without images (30-34,
    # 36-40). Rows: person 1 twice, 2-29 once, 35 once (no accession), 10 null rows = 41.
    # accession_id: 30 set, 11 null. Subjects: 30 distinct non-null (1-29, 35).
    # Ages: 1-10 30s (10), 11-22 40s (12), 23-29 60s (7) and 35 70s (1) -> Other 8.
    # Sex: M 5+5+4+1 = 15, F 5+5+3 = 13, U 21, X 22 -> Other 2.
    "Q_LEFT": Query(
        "SELECT io.person_id, io.accession_id FROM person p "
        "LEFT JOIN image_occurrence io ON io.person_id = p.person_id",
        "null person_ids are not persons", record_count=41, subjects=30,
        columns=[("person_id", 31, 10), ("accession_id", 30, 11)],
        persons=list(R(1, 30)) + [35],
        sex=[("M", 15), ("F", 13), ("Other", 2)],
        age_2026_2030=[("30-39", 10), ("40-49", 12), ("Other", 8)]),

    # No person_id, but accession_id: subjects through image_occurrence. 31 rows, 30
    # accessions (29 persons: 1..29), 1 null; modality null on images 7 and 19.
    # No age or sex groups without person_id.
    "Q_ACC_ALL": Query(
        "SELECT io.accession_id, io.modality_concept_id FROM image_occurrence io",
        "subjects counted through accession ids", record_count=31, subjects=29,
        columns=[("accession_id", 30, 1), ("modality_concept_id", 29, 2)]),

    # ACC0001..ACC0011: 11 rows, 10 people (person 1 has two): just at the threshold.
    "Q_ACC_11": Query(
        "SELECT io.accession_id FROM image_occurrence io WHERE io.accession_id <= 'ACC0011'",
        "accession cohort at the threshold", record_count=11, subjects=10,
        columns=[("accession_id", 11, 0)]),

    # ACC0001..ACC0010: 10 rows (not below 10) but 9 people: suppressed.
    "Q_ACC_10": Query(
        "SELECT io.accession_id FROM image_occurrence io WHERE io.accession_id <= 'ACC0010'",
        "ten rows, nine people: suppressed", record_count=10, subjects=9,
        columns=[("accession_id", 10, 0)]),

    # Accessions nobody has: 20 rows, 0 subjects.
    "Q_ACC_UNKNOWN": Query(
        "SELECT 'NOPE' || g AS accession_id FROM generate_series(1, 20) AS g",
        "unknown accessions count 0", record_count=20, subjects=0,
        columns=[("accession_id", 20, 0)]),

    # Hypertension: 12 rows (persons 34-36, four each), 3 people: suppressed.
    "Q_HTN": Query(
        "SELECT co.person_id, co.condition_start_date FROM condition_occurrence co "
        "WHERE co.condition_concept_id = 320128",
        "twelve rows, three people: suppressed", record_count=12, subjects=3,
        columns=[("person_id", 12, 0), ("condition_start_date", 12, 0)],
        persons=[34, 35, 36]),

    # Born before 1960: persons 34-37 and 40 = 5: suppressed.
    "Q_BELOW": Query(
        "SELECT p.person_id, p.year_of_birth FROM person p WHERE p.year_of_birth < 1960",
        "below the threshold", record_count=5, subjects=5,
        columns=[("person_id", 5, 0), ("year_of_birth", 5, 0)],
        persons=[34, 35, 36, 37, 40]),

    # Nobody: a genuine zero, suppressed identically (concept_ancestor has 6 rows, so
    # no empty-vocabulary error is logged).
    "Q_ZERO": Query(
        "SELECT p.person_id FROM person p WHERE p.year_of_birth > 2100",
        "a genuine zero", record_count=0, subjects=0,
        columns=[("person_id", 0, 0)], persons=[]),

    # Neither person_id nor accession_id: the subject count is undetermined: suppressed
    # although there are 40 rows.
    "Q_NO_SUBJECT": Query(
        "SELECT p.gender_source_value, p.year_of_birth FROM person p",
        "undetermined subject count", record_count=40, subjects=None,
        columns=[("gender_source_value", 39, 1), ("year_of_birth", 40, 0)]),
}

# The age groups above, valid on every day of 2026-2030 (written by hand, checked
# against age_distribution() by the harness test).
AGE_2026_2030 = {name: q.age_2026_2030 for name, q in QUERIES.items()
                 if q.age_2026_2030 is not None}


def expected(name, today=None, threshold=THRESHOLD):
    """expected - the statistics for QUERIES[name]: {"record_count", "data", "suppressed"}.
    Ages from the hand-written table when today (default: UTC today) is in 2026-2030
    and threshold is 10, else computed from PERSONS' birth dates."""
    q = QUERIES[name]
    if q.suppressed(threshold):
        return dict(SUPPRESSED)
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    data = [
        {"name": "Counts", "results": [{"value": _label(c), "count": n} for c, n, _z in q.columns]},
        {"name": "Nulls", "results": [{"value": _label(c), "count": z} for c, _n, z in q.columns]},
    ]
    if q.persons is not None:
        if threshold == THRESHOLD and 2026 <= today.year <= 2030 and q.age_2026_2030 is not None:
            age = [{"value": v, "count": c} for v, c in q.age_2026_2030]
        else:
            age = age_distribution(q.persons, today, threshold)
        if threshold == THRESHOLD:
            sex = [{"value": v, "count": c} for v, c in q.sex]
        else:
            counts = {}
            for pid in q.persons:
                counts[PERSONS[pid][1]] = counts.get(PERSONS[pid][1], 0) + 1
            sex = roll_up(sorted(counts.items(), key=lambda kv: (kv[0] is None, kv[0] or "")),
                          threshold)
        data += [{"name": "Age Distribution", "results": age},
                 {"name": "Sex Distribution", "results": sex}]
    return {"record_count": q.record_count, "data": data, "suppressed": False}


def _sex_key(item):
    return (item["value"] is None, str(item["value"]), item["count"])


def same_statistics(got, want):
    """same_statistics - got (a decoded cohort_query result; extra keys such as
    query_id, trust_id, created are ignored) equals want, comparing "Sex Distribution"
    as a multiset and everything else in order."""
    if (got.get("record_count"), got.get("suppressed")) != (want["record_count"], want["suppressed"]):
        return False
    gd, wd = got.get("data"), want["data"]
    if not isinstance(gd, list) or len(gd) != len(wd):
        return False
    for g, w in zip(gd, wd):
        if g.get("name") != w["name"]:
            return False
        gr, wr = g.get("results"), w["results"]
        if w["name"] == "Sex Distribution":
            if not isinstance(gr, list) or sorted(gr, key=_sex_key) != sorted(wr, key=_sex_key):
                return False
        elif gr != wr:
            return False
    return True
