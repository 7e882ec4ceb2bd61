/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sqlattack - libFuzzer target: hostile cohort queries (the seeds are
 * tests/integration/attacks.json's, one a file) mutated and run through both
 * stages of the guard, sqlguard_check and sqlresolve_check against a fixed OMOP
 * catalog. Neither may crash, and a refusal may quote only what the query wrote:
 * every '...' or "..." quoted in the message, split at '.', must be found in the
 * query (compared as the parser folds: ASCII lower case; double quotes, white
 * space, control characters and the '?' a message shows in their place dropped).
 * The only quoted word of the guard's own is the node type of "SQL construct
 * '<NodeType>' is not allowed.". No database is involved, so no server text can
 * be either: the end-to-end side of this is tests/integration/test_disclosure.py.
 * regress-*.sql in the corpus are inputs that once failed here.
 *
 *	make fuzz   (FUZZ_SECONDS=60 by default; make test runs it for 10 s)
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/omop.h"
#include "jobs/sqlguard.h"
#include "jobs/sqlresolve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the fixed catalog: a few OMOP tables with the columns the seeds use */
static const char *const catalog_spec[] = {
	"person:person_id,gender_concept_id,year_of_birth,birth_datetime,person_source_value,"
	"gender_source_value,race_source_value",
	"image_occurrence:image_occurrence_id,person_id,accession_id,image_occurrence_date",
	"death:person_id,death_date",
	"condition_occurrence:condition_occurrence_id,person_id,condition_concept_id,"
	"condition_start_date",
};
static struct omop_catalog *catalog;

/* fixed_catalog - catalog_spec as an omop_catalog, built once (lives for the run) */
static const struct omop_catalog *fixed_catalog(void)
{
	size_t n = sizeof(catalog_spec) / sizeof(catalog_spec[0]);

	if (catalog != NULL)
		return catalog;
	if ((catalog = calloc(1, sizeof(*catalog))) == NULL ||
	    (catalog->tables = calloc(n, sizeof(*catalog->tables))) == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct omop_table *t = &catalog->tables[catalog->n++];
		char *spec = strdup(catalog_spec[i]), *save = NULL, *colon;
		if (spec == NULL || (colon = strchr(spec, ':')) == NULL)
			abort();
		*colon = '\0';
		t->name = strdup(spec);
		for (char *c = strtok_r(colon + 1, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
			if ((t->cols = realloc(t->cols, (size_t)(t->ncols + 1) * sizeof(*t->cols))) == NULL)
				abort();
			t->cols[t->ncols++] = strdup(c);
		}
		free(spec);
	}
	return catalog;
}

/* fold - the query or a token as compared: lower case, '?' for controls, no '"' or space */
static char *fold(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t j = 0;

	if (out == NULL)
		abort();
	for (size_t i = 0; i < n && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		/* a control character is white space between tokens but '?' in a message
		 * quoting a name that holds one: both sides drop it, and '?' */
		if (c == '"' || c == ' ' || c == '?' || c < 0x20 || c == 0x7f)
			continue;
		out[j++] = (char)tolower(c);
	}
	out[j] = '\0';
	return out;
}

/* quoted_from_query - every quoted token of err is in the (folded) query */
static void quoted_from_query(const char *err, const char *q)
{
	const char *p = err;

	if (strncmp(err, "SQL construct '", 15) == 0)
		return;
	while ((p = strpbrk(p, "'\"")) != NULL) {
		char quote = *p;
		const char *end = strchr(p + 1, quote);
		char *tok, *save = NULL;

		if (end == NULL)
			break;
		tok = fold(p + 1, (size_t)(end - p - 1));
		if (strcmp(tok, "...") != 0)
			for (char *part = strtok_r(tok, ".", &save); part; part = strtok_r(NULL, ".", &save))
				if (strstr(q, part) == NULL) {
					/* text in a refusal the query did not write */
					fprintf(stderr, "refusal quotes '%s', not in the query: %s\n",
						part, err);
					abort();
				}
		free(tok);
		p = end + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sqlresolve_output o;
	char err[512];
	char *sql, *q, *out;

	if (size > 4 * SQLGUARD_MAX_LENGTH + 8)
		return 0;
	sql = malloc(size + 1);
	if (sql == NULL)
		return 0;
	memcpy(sql, data, size);
	sql[size] = '\0';
	q = fold(sql, size);
	out = sqlguard_check(sql, err, sizeof(err));
	if (out == NULL) {
		if (err[0] == '\0')
			abort();
		quoted_from_query(err, q);
	} else {
		if (sqlresolve_check(out, fixed_catalog(), &o, err, sizeof(err)) < 0) {
			if (err[0] == '\0')
				abort();
			quoted_from_query(err, q);
		} else if (o.n >= 0 && o.lineage == NULL) {
			abort();
		}
		sqlresolve_output_free(&o);
		free(out);
	}
	free(q);
	free(sql);
	return 0;
}
