/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy - the trust's governance policy (ACCESS_POLICY_FILE): loader and decision table.
 *
 * SYNOPSIS
 *	#include "lib/policy.h"
 *
 *	int policy_load(const char *path, long configured_floor, struct policy **out,
 *			char *err, size_t errlen);
 *	void policy_free(struct policy *p);
 *	int policy_names_projects(const struct policy *p, enum policy_action a);
 *	void policy_decide(const struct policy *p, enum policy_action a, const char *project_id,
 *			   long configured_floor, struct policy_decision *d);
 *	json_t *policy_describe(const struct policy *p, long configured_floor);
 *	const json_t *policy_fl_privacy(const struct policy *p);
 *	const char *policy_action_name(enum policy_action a);
 *
 * DESCRIPTION
 *	The policy is FLIP's TOML format (docs/design/data-access.md, "Threshold and governance
 *	policy"), read through toml_load_file() on every run:
 *
 *	  [disclosure]
 *	  min_cohort_size = 20		# integer, at least COHORT_QUERY_THRESHOLD
 *
 *	  [[access.rule]]
 *	  id = "no-rows-for-x"		# non-empty, unique, printable, < 128 bytes
 *	  action = "cohort.dataframe"	# cohort.statistics|cohort.dataframe|cohort.accession_ids
 *	  effect = "deny"		# permit|deny
 *	  projects = ["<uuid>", ...]	# optional, non-empty, UUIDs (kept lower-case)
 *	  min_cohort_size = 50		# permit rules only, at least the section floor
 *
 *	  [fl_privacy]			# kept as is for flip-fl
 *
 *	policy_load() with path NULL or "" means no policy: *out = NULL and 0. Otherwise
 *	the file is loaded and every rule of docs/design/data-access.md checked; the section floor is
 *	max(configured_floor, [disclosure] min_cohort_size). A document that configures
 *	nothing (no floor, no rule, an empty or absent [fl_privacy]) is refused.
 *
 *	policy_decide() is the decision table, for one action and the request's project
 *	id (NULL when the request has none):
 *	  no policy                            permit at the configured floor
 *	  no rule for the action               permit at the section floor
 *	  project id not a UUID while a rule
 *	  for the action names projects        deny
 *	  a matching deny rule (in any order)  deny
 *	  matching permit rules                permit at the largest of their floors
 *	                                       (section floor for a rule without one)
 *	  otherwise                            deny
 *	A rule naming projects matches only a request whose canonical project id is
 *	listed (never a request without one); a rule without projects matches every
 *	request for its action. d->floor is never below configured_floor; d->rule is
 *	the deciding rule's id (for the local log only, never a response), "" when none.
 *
 *	policy_names_projects() tells the caller whether it must open the task's
 *	encrypted_project_id for this action. policy_describe() gives, for `flipctl
 *	policy check`, {"file", "configured_floor", "disclosure_min_cohort_size",
 *	"floor", "rules": [{"id", "action", "effect", "projects"?, "min_cohort_size"?}],
 *	"fl_privacy"} (a permit rule's min_cohort_size is its effective floor).
 *	policy_fl_privacy() is the [fl_privacy] table, borrowed from p, or NULL.
 *
 * DIAGNOSTICS
 *	policy_load() returns 0, or -1 with a one-line message in err naming the file,
 *	the key or rule and what is wrong (the job then fails closed: configuration
 *	error). Nothing is printed; no function here exits.
 */
#ifndef FLIP_POLICY_H
#define FLIP_POLICY_H

#include <stddef.h>
#include <jansson.h>

#define POLICY_MAX_BYTES (256 * 1024) /* cap on the policy file */
#define POLICY_ID_MAX 127	      /* bytes of a rule id */

enum policy_action { POLICY_STATISTICS, POLICY_DATAFRAME, POLICY_ACCESSION_IDS };

struct policy;

struct policy_decision {
	int permit;
	long floor;
	char rule[POLICY_ID_MAX + 1];
};

int policy_load(const char *path, long configured_floor, struct policy **out, char *err,
		size_t errlen);
void policy_free(struct policy *p);
int policy_names_projects(const struct policy *p, enum policy_action a);
void policy_decide(const struct policy *p, enum policy_action a, const char *project_id,
		   long configured_floor, struct policy_decision *d);
json_t *policy_describe(const struct policy *p, long configured_floor);
const json_t *policy_fl_privacy(const struct policy *p);
const char *policy_action_name(enum policy_action a);

#endif
