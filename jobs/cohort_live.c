/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cohort_live - a frozen membership applied to live OMOP (see cohort_live.h).
 *
 * Why a merge and not `= ANY($1)`: a million frozen persons as one array parameter
 * costs the client the whole array twice (the literal and libpq's send buffer), so
 * flip-serve's memory would grow with the cohort. Ordering the live rows by the
 * key lets the sorted set file be read alongside, one line at a time.
 */
#include "jobs/cohort_live.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int live_numeric(unsigned int oid)
{
	return oid == 20 || oid == 21 || oid == 23;	/* int8 int2 int4 */
}

const char *cohort_live_order(const struct cohort_columns *c)
{
	return c->person >= 0 && live_numeric(c->types[c->person]) ? "numeric" : "bytewise";
}

/* live_key - the select expression of column col ordered as its set file is */
static void live_key(FILE *f, int col, int numeric)
{
	if (numeric)
		fprintf(f, "c%d", col);
	else
		fprintf(f, "(c%d)::text COLLATE \"C\"", col);
}

/* live_alias - "(<checked>) AS flip_cohort(c0, ..., c<n-1>)" */
static void live_alias(FILE *f, const char *checked, int n)
{
	fprintf(f, "(%s) AS flip_cohort(", checked);
	for (int i = 0; i < n; i++)
		fprintf(f, "%sc%d", i ? ", " : "", i);
	fputc(')', f);
}

static int live_nomem(struct omop_error *e)
{
	memset(e, 0, sizeof(*e));
	e->status = 500;
	snprintf(e->message, sizeof(e->message), "500: internal_error");
	return ERR_FINAL;
}

/* --- freezing ----------------------------------------------------------------------------- */

struct live_freeze {
	struct snapshot_writer *w;
	int set, first;
	long long rows, ids;
	int err;		/* errno when the writer stopped */
	char prev[4096];	/* the last id written: rows come sorted, so repeats are adjacent */
};

/* live_freeze_line - omop_copy_out callback: one row's id ("<id>\n", \N for NULL),
 * sorted, so each distinct id is written once, when it first appears */
static int live_freeze_line(const char *buf, int len, void *arg)
{
	struct live_freeze *z = arg;
	const char *tab = len > 0 && buf[len - 1] == '\n' ? buf + len - 1 : buf + len;
	char id[4096];
	size_t k = 0;

	z->rows++;
	if (tab - buf == 2 && buf[0] == '\\' && buf[1] == 'N')
		return 0;
	for (const char *p = buf; p < tab; p++) {
		char ch = *p;
		if (ch == '\\' && p + 1 < tab) {
			/* COPY's text escapes; an id with a control character is not an id */
			ch = *++p;
			if (ch != '\\') {
				z->err = EINVAL;
				return -1;
			}
		}
		if (k + 1 >= sizeof(id)) {
			z->err = ENAMETOOLONG;
			return -1;
		}
		id[k++] = ch;
	}
	id[k] = 0;
	if (z->ids > 0 && strcmp(id, z->prev) == 0)
		return 0;
	memcpy(z->prev, id, k + 1);
	z->ids++;
	if (snapshot_add_id(z->w, z->set, id) == 0)
		return 0;
	z->err = errno;
	return -1;
}

int cohort_live_freeze(struct omop *db, const char *checked, const struct cohort_columns *c,
		       struct snapshot_writer *w, struct cohort_frozen *out, struct omop_error *e)
{
	const int cols[2] = {c->person, c->accession};
	int rc = ERR_OK, first = 1;

	out->rows = 0;
	out->persons = -1;
	out->accessions = 0;
	out->person_order = cohort_live_order(c);
	for (int set = 0; set < 2 && rc == ERR_OK; set++) {
		struct live_freeze z = {.w = w, .set = set, .first = first};
		char *sql = NULL;
		size_t len;
		FILE *f;

		if (cols[set] < 0)
			continue;
		if ((f = open_memstream(&sql, &len)) == NULL)
			return live_nomem(e);
		fputs("SELECT ", f);
		live_key(f, cols[set], set == SNAPSHOT_PERSONS && live_numeric(c->types[cols[set]]));
		/* every row's id, sorted (the same sort a DISTINCT would do): the rows are
		 * counted and the repeats dropped here, in the one pass */
		fputs(" AS flip_k FROM ", f);
		live_alias(f, checked, cols[set] + 1);
		fputs(" ORDER BY 1", f);
		if (fclose(f) != 0) {
			free(sql);
			return live_nomem(e);
		}
		rc = omop_copy_out(db, sql, live_freeze_line, &z, e);
		free(sql);
		if (rc == ERR_FINAL && e->stopped)
			errno = z.err ? z.err : EINVAL;	/* the drain may have changed it */
		if (first)
			out->rows = z.rows;
		first = 0;
		if (set == SNAPSHOT_PERSONS)
			out->persons = z.ids;
		else
			out->accessions = z.ids;
	}
	return rc;
}

/* --- the live re-run ---------------------------------------------------------------------- */

struct live_merge {
	FILE *ids;
	char *line;
	size_t cap;
	ssize_t len;		/* -1: the set is exhausted */
	long long num;		/* line as a number, numeric order */
	int numeric, counted, collect;
	omop_row_fn row;
	void *arg;
	long long rows, subjects;
	FILE *kept;		/* collect: the kept accessions as an array literal */
};

static void live_next(struct live_merge *m)
{
	m->len = getline(&m->line, &m->cap, m->ids);
	if (m->len > 0 && m->line[m->len - 1] == '\n')
		m->line[--m->len] = 0;
	if (m->len > 0 && m->numeric)
		m->num = strtoll(m->line, NULL, 10);
	m->counted = 0;
}

/* live_array_put - one element of a PostgreSQL array literal, quoted */
static void live_array_put(FILE *f, const char *v, int first)
{
	fputs(first ? "{\"" : ",\"", f);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', f);
		fputc(*v, f);
	}
	fputc('"', f);
}

static int live_merge_row(PGresult *res, int r, void *arg)
{
	struct live_merge *m = arg;
	const char *key = PQgetvalue(res, r, 0);
	long long k = m->numeric ? strtoll(key, NULL, 10) : 0;

	for (;;) {
		if (m->len <= 0)
			return 0;	/* past the last member: the rest are not frozen */
		int cmp = m->numeric ? (m->num > k) - (m->num < k) : strcmp(m->line, key);
		if (cmp > 0)
			return 0;	/* not a member */
		if (cmp == 0)
			break;
		live_next(m);
	}
	if (!m->counted) {
		m->counted = 1;
		m->subjects++;
		if (m->collect)
			live_array_put(m->kept, key, m->subjects == 1);
	}
	m->rows++;
	return m->row ? m->row(res, r, m->arg) : 0;
}

int cohort_live_run(struct omop *db, const char *checked, const struct cohort_columns *c,
		    const struct snapshot *s, omop_row_fn row, void *arg,
		    struct cohort_live_count *out, struct omop_error *e)
{
	int set = c->person >= 0 ? SNAPSHOT_PERSONS : SNAPSHOT_ACCESSIONS;
	int key = set == SNAPSHOT_PERSONS ? c->person : c->accession;
	const char *order = json_string_value(json_object_get(snapshot_meta(s), "person_order"));
	struct live_merge m = {0};
	char *sql = NULL, *kept = NULL;
	size_t len, klen;
	FILE *f;
	int rc;

	out->rows = 0;
	out->subjects = 0;
	if (key < 0 || (set == SNAPSHOT_PERSONS && (order == NULL ||
						    strcmp(order, cohort_live_order(c)) != 0))) {
		/* the query of record no longer describes the way it was frozen */
		memset(e, 0, sizeof(*e));
		e->status = 500;
		snprintf(e->message, sizeof(e->message), "500: snapshot_mismatch");
		return ERR_FINAL;
	}
	m.numeric = set == SNAPSHOT_PERSONS && strcmp(order, "numeric") == 0;
	m.row = row;
	m.arg = arg;
	m.len = -1;
	m.ids = snapshot_ids(s, set);
	if (m.ids == NULL && errno != ENOENT)
		return live_nomem(e);
	if (m.ids)
		live_next(&m);
	m.collect = set == SNAPSHOT_ACCESSIONS;
	if (m.collect && (m.kept = open_memstream(&kept, &klen)) == NULL) {
		rc = live_nomem(e);
		goto out;
	}
	if ((f = open_memstream(&sql, &len)) == NULL) {
		rc = live_nomem(e);
		goto out;
	}
	fputs("SELECT ", f);
	live_key(f, key, m.numeric);
	fputs(", * FROM (SELECT *, row_number() OVER () AS flip_n FROM ", f);
	live_alias(f, checked, c->n);
	fprintf(f, ") AS flip_live WHERE c%d IS NOT NULL ORDER BY 1, flip_n", key);
	if (fclose(f) != 0) {
		free(sql);
		sql = NULL;
		rc = live_nomem(e);
		goto out;
	}
	rc = m.ids ? omop_each_row(db, sql, live_merge_row, &m, e) : ERR_OK;
	out->rows = m.rows;
	out->subjects = m.subjects;
	if (rc == ERR_OK && m.collect) {
		PGresult *res;
		const char *param;

		if (m.subjects == 0)
			fputs("{", m.kept);
		fputs("}", m.kept);
		if (fclose(m.kept) != 0) {
			m.kept = NULL;
			rc = live_nomem(e);
			goto out;
		}
		m.kept = NULL;
		param = kept;
		rc = omop_query(db, "SELECT count(DISTINCT person_id) FROM omop.image_occurrence "
				"WHERE accession_id = ANY($1::text[])", 1, &param, &res, e);
		if (rc == ERR_OK) {
			out->subjects = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			PQclear(res);
		}
	}
out:
	if (m.kept)
		fclose(m.kept);
	free(kept);
	free(sql);
	free(m.line);
	if (m.ids)
		fclose(m.ids);
	return rc;
}

int cohort_live_accessions(struct omop *db, const struct snapshot *s, PGresult **res,
			   struct omop_error *e)
{
	FILE *ids = snapshot_ids(s, SNAPSHOT_ACCESSIONS), *f;
	char *line = NULL, *arr = NULL;
	size_t cap = 0, len;
	ssize_t n;
	int first = 1, rc;
	const char *param;

	if (ids == NULL && errno != ENOENT)
		return live_nomem(e);
	if ((f = open_memstream(&arr, &len)) == NULL) {
		if (ids)
			fclose(ids);
		return live_nomem(e);
	}
	while (ids && (n = getline(&line, &cap, ids)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = 0;
		live_array_put(f, line, first);
		first = 0;
	}
	fputs(first ? "{}" : "}", f);
	free(line);
	if (ids)
		fclose(ids);
	if (fclose(f) != 0) {
		free(arr);
		return live_nomem(e);
	}
	param = arr;
	rc = omop_query(db, "SELECT DISTINCT accession_id::text COLLATE \"C\" AS accession_id "
			"FROM omop.image_occurrence WHERE accession_id = ANY($1::text[]) ORDER BY 1",
			1, &param, res, e);
	free(arr);
	return rc;
}
