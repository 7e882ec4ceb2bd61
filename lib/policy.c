/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy - the trust's governance policy: loader and decision table (see policy.h
 * for the contract, docs/design/data-access.md for the rules).
 *
 * The file becomes a jansson tree through the TOML shim (toml.h), which keeps TOML's
 * types apart: an integer is never a boolean or a float, and a date arrives as an
 * object {"$datetime": ...} that every check below refuses by type. The loader
 * walks the tree once, refusing the first problem with its own message, and keeps
 * only what the decision needs: the [disclosure] floor, the rules (projects in
 * canonical lower-case form, so matching is a plain strcmp) and a reference to
 * [fl_privacy].
 *
 * Values from the file are repeated in messages only through policy_echo(): at
 * most 64 bytes, control characters as '?', so a message stays one line.
 */
#include "lib/policy.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/task.h"
#include "lib/toml.h"

#define POLICY_ECHO 64

struct policy_rule {
	char id[POLICY_ID_MAX + 1];
	enum policy_action action;
	int permit;
	char (*projects)[37]; /* canonical UUIDs; NULL when the rule names none */
	size_t nprojects;
	long floor; /* min_cohort_size of a permit rule, 0 when not given */
};

struct policy {
	char *path;
	long disclosure_floor; /* [disclosure] min_cohort_size, 0 when not given */
	struct policy_rule *rules;
	size_t nrules;
	json_t *fl_privacy; /* owned reference, NULL when absent */
};

static const char *const policy_actions[] = {
	[POLICY_STATISTICS] = "cohort.statistics",
	[POLICY_DATAFRAME] = "cohort.dataframe",
	[POLICY_ACCESSION_IDS] = "cohort.accession_ids",
};
#define POLICY_NACTIONS (sizeof(policy_actions) / sizeof(policy_actions[0]))

static const char *const policy_rule_keys[] = {"id", "action", "effect", "projects",
					       "min_cohort_size", NULL};

/* policy_echo - a printable copy of at most POLICY_ECHO bytes of s */
static const char *policy_echo(const char *s, char buf[POLICY_ECHO + 4])
{
	size_t i;

	for (i = 0; i < POLICY_ECHO && s[i]; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	memcpy(buf + i, s[i] ? "..." : "", s[i] ? 4 : 1);
	return buf;
}

/* policy_type - what a value is, in TOML's words */
static const char *policy_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a float";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_STRING:
		return "a string";
	case JSON_ARRAY:
		return "an array";
	case JSON_OBJECT:
		return json_object_get(v, "$datetime") != NULL ? "a date/time" : "a table";
	default:
		return "null";
	}
}

/* policy_is_table - a TOML table (not a converted date) */
static int policy_is_table(const json_t *v)
{
	return json_is_object(v) && json_object_get(v, "$datetime") == NULL;
}

/* policy_action_name - the TOML name of an action */
const char *policy_action_name(enum policy_action a)
{
	return (size_t)a < POLICY_NACTIONS ? policy_actions[a] : "?";
}

/* policy_floor - an integer min_cohort_size at least min, into *out */
static int policy_floor(const json_t *v, long min, const char *min_name, const char *path,
			const char *where, long *out, char *err, size_t errlen)
{
	json_int_t n;

	if (!json_is_integer(v))
		return err_set(err, errlen, "%s: %s min_cohort_size must be an integer, not %s",
			       path, where, policy_type(v));
	n = json_integer_value(v);
	if (n < min)
		return err_set(err, errlen, "%s: %s min_cohort_size %lld is below the %s %ld", path,
			       where, (long long)n, min_name, min);
	if (n > LONG_MAX)
		return err_set(err, errlen, "%s: %s min_cohort_size %lld is too large", path, where,
			       (long long)n);
	*out = (long)n;
	return 0;
}

/* policy_disclosure - the [disclosure] table */
static int policy_disclosure(struct policy *p, json_t *t, long configured, char *err,
			     size_t errlen)
{
	const char *k;
	json_t *v;
	char e[POLICY_ECHO + 4];

	if (!policy_is_table(t))
		return err_set(err, errlen, "%s: disclosure must be a table, not %s", p->path,
			       policy_type(t));
	json_object_foreach(t, k, v) {
		if (strcmp(k, "min_cohort_size") != 0)
			return err_set(err, errlen, "%s: [disclosure] unknown key '%s'", p->path,
				       policy_echo(k, e));
		if (policy_floor(v, configured, "configured floor COHORT_QUERY_THRESHOLD",
				 p->path, "[disclosure]", &p->disclosure_floor, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* policy_rule_id - check a rule's id; where names the rule for messages */
static int policy_rule_id(struct policy *p, const json_t *r, size_t idx, struct policy_rule *out,
			  char *err, size_t errlen)
{
	const json_t *v = json_object_get(r, "id");
	const char *s;
	char e[POLICY_ECHO + 4];

	if (v == NULL)
		return err_set(err, errlen, "%s: [[access.rule]] #%zu: id is missing", p->path,
			       idx + 1);
	if (!json_is_string(v))
		return err_set(err, errlen, "%s: [[access.rule]] #%zu: id must be a string, not %s",
			       p->path, idx + 1, policy_type(v));
	s = json_string_value(v);
	if (*s == 0)
		return err_set(err, errlen, "%s: [[access.rule]] #%zu: id is empty", p->path,
			       idx + 1);
	if (strlen(s) > POLICY_ID_MAX)
		return err_set(err, errlen, "%s: [[access.rule]] #%zu: id is longer than %d bytes",
			       p->path, idx + 1, POLICY_ID_MAX);
	/* the id goes to the local log: keep it printable */
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return err_set(err, errlen,
				       "%s: [[access.rule]] #%zu: id '%s' holds a control character",
				       p->path, idx + 1, policy_echo(s, e));
	for (size_t i = 0; i < p->nrules; i++)
		if (strcmp(p->rules[i].id, s) == 0)
			return err_set(err, errlen,
				       "%s: [[access.rule]] '%s': duplicate id (rules #%zu and #%zu)",
				       p->path, policy_echo(s, e), i + 1, idx + 1);
	memcpy(out->id, s, strlen(s) + 1);
	return 0;
}

/* policy_rule_projects - the projects list, canonicalised */
static int policy_rule_projects(struct policy *p, const json_t *v, struct policy_rule *out,
				char *err, size_t errlen)
{
	size_t i, n;
	json_t *u;
	char e[POLICY_ECHO + 4];

	if (!json_is_array(v))
		return err_set(err, errlen,
			       "%s: [[access.rule]] '%s': projects must be a list of UUID strings, "
			       "not %s", p->path, policy_echo(out->id, e), policy_type(v));
	n = json_array_size(v);
	if (n == 0)
		return err_set(err, errlen,
			       "%s: [[access.rule]] '%s': projects is empty (leave it out to match "
			       "every project)", p->path, policy_echo(out->id, e));
	out->projects = calloc(n, sizeof(*out->projects));
	if (out->projects == NULL)
		return err_set(err, errlen, "%s: out of memory", p->path);
	json_array_foreach(v, i, u) {
		if (!json_is_string(u) ||
		    task_uuid_canonical(json_string_value(u), out->projects[i]) != 0)
			return err_set(err, errlen,
				       "%s: [[access.rule]] '%s': projects[%zu] is not a UUID string",
				       p->path, policy_echo(out->id, e), i);
	}
	out->nprojects = n;
	return 0;
}

/* policy_rule - one [[access.rule]] table, appended to p->rules */
static int policy_rule(struct policy *p, json_t *r, size_t idx, long section, char *err,
		       size_t errlen)
{
	struct policy_rule *out = &p->rules[p->nrules];
	const json_t *v;
	const char *k, *s;
	json_t *jv;
	char e[POLICY_ECHO + 4], e2[POLICY_ECHO + 4];
	size_t a;

	memset(out, 0, sizeof(*out));
	if (!policy_is_table(r))
		return err_set(err, errlen, "%s: [[access.rule]] #%zu must be a table, not %s",
			       p->path, idx + 1, policy_type(r));
	if (policy_rule_id(p, r, idx, out, err, errlen) != 0)
		return -1;
	json_object_foreach(r, k, jv) {
		const char *const *known;

		for (known = policy_rule_keys; *known && strcmp(*known, k) != 0; known++)
			;
		if (*known == NULL)
			return err_set(err, errlen, "%s: [[access.rule]] '%s': unknown key '%s'",
				       p->path, policy_echo(out->id, e), policy_echo(k, e2));
	}

	v = json_object_get(r, "action");
	if (v == NULL)
		return err_set(err, errlen, "%s: [[access.rule]] '%s': action is missing", p->path,
			       policy_echo(out->id, e));
	if (!json_is_string(v))
		return err_set(err, errlen,
			       "%s: [[access.rule]] '%s': action must be a string, not %s", p->path,
			       policy_echo(out->id, e), policy_type(v));
	s = json_string_value(v);
	for (a = 0; a < POLICY_NACTIONS && strcmp(s, policy_actions[a]) != 0; a++)
		;
	if (a == POLICY_NACTIONS)
		return err_set(err, errlen, "%s: [[access.rule]] '%s': action '%s' is not one of "
			       "cohort.statistics, cohort.dataframe, cohort.accession_ids", p->path,
			       policy_echo(out->id, e), policy_echo(s, e2));
	out->action = (enum policy_action)a;

	v = json_object_get(r, "effect");
	if (v == NULL)
		return err_set(err, errlen,
			       "%s: [[access.rule]] '%s': effect is missing (permit or deny)",
			       p->path, policy_echo(out->id, e));
	if (!json_is_string(v))
		return err_set(err, errlen,
			       "%s: [[access.rule]] '%s': effect must be a string, not %s", p->path,
			       policy_echo(out->id, e), policy_type(v));
	s = json_string_value(v);
	if (strcmp(s, "permit") != 0 && strcmp(s, "deny") != 0)
		return err_set(err, errlen,
			       "%s: [[access.rule]] '%s': effect '%s' is not permit or deny",
			       p->path, policy_echo(out->id, e), policy_echo(s, e2));
	out->permit = strcmp(s, "permit") == 0;

	/* counted before the projects are checked, so policy_free() frees them */
	p->nrules++;
	v = json_object_get(r, "projects");
	if (v != NULL && policy_rule_projects(p, v, out, err, errlen) != 0)
		return -1;

	v = json_object_get(r, "min_cohort_size");
	if (v != NULL) {
		char where[POLICY_ECHO + 32];

		if (!out->permit)
			return err_set(err, errlen,
				       "%s: [[access.rule]] '%s': min_cohort_size is only for permit "
				       "rules", p->path, policy_echo(out->id, e));
		snprintf(where, sizeof(where), "[[access.rule]] '%s':", policy_echo(out->id, e));
		if (policy_floor(v, section, "section floor", p->path, where, &out->floor, err,
				 errlen) != 0)
			return -1;
	}
	return 0;
}

/* policy_access - the [access] table */
static int policy_access(struct policy *p, json_t *t, long section, char *err,
			 size_t errlen)
{
	json_t *rules;
	const char *k;
	json_t *v;
	char e[POLICY_ECHO + 4];
	size_t i;

	if (!policy_is_table(t))
		return err_set(err, errlen, "%s: access must be a table, not %s", p->path,
			       policy_type(t));
	json_object_foreach(t, k, v) {
		if (strcmp(k, "rule") != 0)
			return err_set(err, errlen, "%s: [access] unknown key '%s'", p->path,
				       policy_echo(k, e));
	}
	rules = json_object_get(t, "rule");
	if (rules == NULL)
		return 0;
	if (!json_is_array(rules))
		return err_set(err, errlen,
			       "%s: access.rule must be an array of tables ([[access.rule]]), not %s",
			       p->path, policy_type(rules));
	if (json_array_size(rules) == 0)
		return 0;
	p->rules = calloc(json_array_size(rules), sizeof(*p->rules));
	if (p->rules == NULL)
		return err_set(err, errlen, "%s: out of memory", p->path);
	json_array_foreach(rules, i, v) {
		if (policy_rule(p, v, i, section, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* policy_check - the whole document */
static int policy_check(struct policy *p, json_t *doc, long configured, char *err,
			size_t errlen)
{
	json_t *v;
	const char *k;
	json_t *jv;
	char e[POLICY_ECHO + 4];
	long section;

	json_object_foreach(doc, k, jv) {
		if (strcmp(k, "disclosure") != 0 && strcmp(k, "access") != 0 &&
		    strcmp(k, "fl_privacy") != 0)
			return err_set(err, errlen,
				       "%s: unknown top-level %s '%s' (only disclosure, access, "
				       "fl_privacy)", p->path,
				       policy_is_table(jv) ? "table" : "key", policy_echo(k, e));
	}
	/* disclosure first: the rules' floors are checked against the section floor */
	v = json_object_get(doc, "disclosure");
	if (v != NULL && policy_disclosure(p, v, configured, err, errlen) != 0)
		return -1;
	section = p->disclosure_floor > configured ? p->disclosure_floor : configured;
	v = json_object_get(doc, "access");
	if (v != NULL && policy_access(p, v, section, err, errlen) != 0)
		return -1;
	v = json_object_get(doc, "fl_privacy");
	if (v != NULL) {
		if (!policy_is_table(v))
			return err_set(err, errlen, "%s: fl_privacy must be a table, not %s",
				       p->path, policy_type(v));
		if (json_object_size(v) > 0)
			p->fl_privacy = json_incref(v);
	}
	if (p->disclosure_floor == 0 && p->nrules == 0 && p->fl_privacy == NULL)
		return err_set(err, errlen, "%s: the policy configures nothing (no [disclosure] "
			       "min_cohort_size, no [[access.rule]], no [fl_privacy])", p->path);
	return 0;
}

/* policy_load - load and check the policy at path; NULL or "" is no policy */
int policy_load(const char *path, long configured_floor, struct policy **out, char *err,
		size_t errlen)
{
	struct policy *p;
	json_t *doc;

	*out = NULL;
	if (path == NULL || *path == 0)
		return 0;
	if (configured_floor < 1)
		return err_set(err, errlen,
			       "%s: the configured floor COHORT_QUERY_THRESHOLD must be positive",
			       path);
	doc = toml_load_file(path, POLICY_MAX_BYTES, err, errlen);
	if (doc == NULL)
		return -1;
	p = calloc(1, sizeof(*p));
	if (p == NULL || (p->path = strdup(path)) == NULL) {
		free(p);
		json_decref(doc);
		return err_set(err, errlen, "%s: out of memory", path);
	}
	if (policy_check(p, doc, configured_floor, err, errlen) != 0) {
		json_decref(doc);
		policy_free(p);
		return -1;
	}
	json_decref(doc);
	*out = p;
	return 0;
}

/* policy_free - release p (NULL is fine) */
void policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nrules; i++)
		free(p->rules[i].projects);
	free(p->rules);
	json_decref(p->fl_privacy);
	free(p->path);
	free(p);
}

/* policy_section_floor - max(configured floor, [disclosure] floor), at least 1 */
static long policy_section_floor(const struct policy *p, long configured)
{
	long f = configured < 1 ? 1 : configured;

	if (p != NULL && p->disclosure_floor > f)
		f = p->disclosure_floor;
	return f;
}

/* policy_names_action - some rule is about action a */
static int policy_names_action(const struct policy *p, enum policy_action a)
{
	for (size_t i = 0; p != NULL && i < p->nrules; i++)
		if (p->rules[i].action == a)
			return 1;
	return 0;
}

/* policy_names_projects - some rule for action a names projects */
int policy_names_projects(const struct policy *p, enum policy_action a)
{
	for (size_t i = 0; p != NULL && i < p->nrules; i++)
		if (p->rules[i].action == a && p->rules[i].nprojects > 0)
			return 1;
	return 0;
}

/* policy_rule_matches - r applies to a request with canonical project id (or NULL) */
static int policy_rule_matches(const struct policy_rule *r, const char *project)
{
	if (r->nprojects == 0)
		return 1;
	for (size_t i = 0; project != NULL && i < r->nprojects; i++)
		if (strcmp(r->projects[i], project) == 0)
			return 1;
	return 0;
}

/* policy_decide - the decision table of docs/design/data-access.md */
void policy_decide(const struct policy *p, enum policy_action a, const char *project_id,
		   long configured_floor, struct policy_decision *d)
{
	long section = policy_section_floor(p, configured_floor);
	char canon[37];
	const char *project = NULL;
	const struct policy_rule *best = NULL;
	long best_floor = section;

	memset(d, 0, sizeof(*d));
	d->floor = section;
	if (p == NULL || !policy_names_action(p, a)) {
		d->permit = 1;
		return;
	}
	if (project_id != NULL) {
		if (task_uuid_canonical(project_id, canon) == 0)
			project = canon;
		else if (policy_names_projects(p, a))
			return; /* deny: a project the rules cannot be checked against */
	}
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];
		long f;

		if (r->action != a || !policy_rule_matches(r, project))
			continue;
		if (!r->permit) { /* any deny wins, wherever it stands */
			memcpy(d->rule, r->id, sizeof(d->rule));
			return;
		}
		f = r->floor > section ? r->floor : section;
		if (best == NULL || f > best_floor) {
			best = r;
			best_floor = f;
		}
	}
	if (best == NULL)
		return; /* deny: no rule matched */
	d->permit = 1;
	d->floor = best_floor;
	memcpy(d->rule, best->id, sizeof(d->rule));
}

/* policy_describe - effective floor and rules, for `flipctl policy check` */
json_t *policy_describe(const struct policy *p, long configured_floor)
{
	long section = policy_section_floor(p, configured_floor);
	json_t *d, *rules;

	d = json_pack("{s:s?, s:I, s:o, s:I, s:b}", "file", p ? p->path : NULL,
		      "configured_floor", (json_int_t)configured_floor,
		      "disclosure_min_cohort_size",
		      p && p->disclosure_floor ? json_integer(p->disclosure_floor) : json_null(),
		      "floor", (json_int_t)section, "fl_privacy", p && p->fl_privacy);
	rules = json_array();
	if (d == NULL || rules == NULL || json_object_set_new(d, "rules", rules) != 0) {
		json_decref(d);
		return NULL;
	}
	for (size_t i = 0; p != NULL && i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];
		json_t *o = json_pack("{s:s, s:s, s:s}", "id", r->id, "action",
				      policy_actions[r->action], "effect",
				      r->permit ? "permit" : "deny");
		json_t *pr;

		if (o == NULL || json_array_append_new(rules, o) != 0)
			goto fail;
		if (r->nprojects > 0) {
			pr = json_array();
			if (pr == NULL || json_object_set_new(o, "projects", pr) != 0)
				goto fail;
			for (size_t j = 0; j < r->nprojects; j++)
				if (json_array_append_new(pr, json_string(r->projects[j])) != 0)
					goto fail;
		}
		if (r->permit &&
		    json_object_set_new(o, "min_cohort_size",
					json_integer(r->floor > section ? r->floor : section)) != 0)
			goto fail;
	}
	return d;
fail:
	json_decref(d);
	return NULL;
}

/* policy_fl_privacy - the [fl_privacy] table, borrowed from p, or NULL */
const json_t *policy_fl_privacy(const struct policy *p)
{
	return p != NULL ? p->fl_privacy : NULL;
}
