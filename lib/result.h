/* SPDX-License-Identifier: Apache-2.0 */
/*
 * result - the task result as the hub takes it
 * (docs/design/hub-protocol.md, "Reporting a result").
 *
 * SYNOPSIS
 *	#include "lib/result.h"
 *
 *	json_t *result_success(const char *text);
 *	json_t *result_failure(const char *message, int status_code);
 *	json_t *result_cohort_failure(const char *query_id, const char *trust_id,
 *				      const char *message);
 *	void result_utc_date(char out[11]);
 *
 * DESCRIPTION
 *	result_success() builds {"success": true, "result": text} (text NULL gives
 *	null); text is already JSON text (the hub's double encoding).
 *	result_failure() builds {"success": false, "result": "{\"error\": \"<message>\",
 *	\"status_code\": <int>}"}, the inner text in Python's json.dumps spelling
 *	(", " and ": " separators, ASCII with \u escapes), status_code left out when
 *	it is 0 (unknown), never null.
 *	result_cohort_failure() builds the /cohort/results body of a failed cohort
 *	query: {query_id, trust_id, created (UTC date), record_count: 0, data: [],
 *	error: message}.
 *	All return new references / malloc'd strings, NULL on allocation failure.
 *	result_utc_date() writes today's UTC date, YYYY-MM-DD and a NUL, into out.
 */
#ifndef FLIP_RESULT_H
#define FLIP_RESULT_H

#include <jansson.h>

#define RESULT_MAX_TEXT 10000000	/* the hub's cap on the result string, in characters */

json_t *result_success(const char *text);
json_t *result_failure(const char *message, int status_code);
json_t *result_cohort_failure(const char *query_id, const char *trust_id, const char *message);
void result_utc_date(char out[11]);

#endif
