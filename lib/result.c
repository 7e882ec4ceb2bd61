/* SPDX-License-Identifier: Apache-2.0 */
/*
 * result - the task result bodies the hub takes (see result.h).
 */
#include "lib/result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* result_success - {"success": true, "result": text|null} */
json_t *result_success(const char *text)
{
	return json_pack("{s:b,s:s?}", "success", 1, "result", text);
}

/* result_utf8_clean - a copy of s with every byte that is not valid UTF-8 as '?' */
static char *result_utf8_clean(const char *s)
{
	size_t n = strlen(s), i = 0;
	char *out = strdup(s);

	while (out && i < n) {
		unsigned char c = (unsigned char)out[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		int ok = len > 0 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			ok = ((unsigned char)out[i + k] >> 6) == 2;
		/* overlong forms and surrogates are invalid too: let jansson be the judge */
		if (ok && len > 1) {
			json_t *probe = json_stringn(out + i, len);
			ok = probe != NULL;
			json_decref(probe);
		}
		if (!ok) {
			out[i++] = '?';
			continue;
		}
		i += len;
	}
	return out;
}

/* result_python_hex - lower-case the hex of \uXXXX escapes, as Python writes them */
static void result_python_hex(char *text)
{
	for (char *p = text; *p; p++) {
		if (*p != '\\')
			continue;
		if (p[1] == 'u') {
			for (int k = 2; k < 6 && p[k]; k++)
				if (p[k] >= 'A' && p[k] <= 'F')
					p[k] = (char)(p[k] - 'A' + 'a');
			p += 5;
		} else if (p[1]) {
			p++;	/* an escaped character: skip it, it cannot start an escape */
		}
	}
}

/* result_failure - {"success": false, "result": "<error object as text>"} */
json_t *result_failure(const char *message, int status_code)
{
	json_t *inner, *outer = NULL;
	char *text, *clean = result_utf8_clean(message);

	if (clean == NULL)
		return NULL;
	inner = status_code ? json_pack("{s:s,s:i}", "error", clean, "status_code", status_code)
			    : json_pack("{s:s}", "error", clean);
	free(clean);
	if (inner == NULL)
		return NULL;
	/* flags 0: jansson's default separators are Python's ", " and ": " */
	text = json_dumps(inner, JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	json_decref(inner);
	if (text == NULL)
		return NULL;
	result_python_hex(text);
	outer = json_pack("{s:b,s:s}", "success", 0, "result", text);
	free(text);
	return outer;
}

/* result_utc_date - today's UTC date, YYYY-MM-DD */
void result_utc_date(char out[11])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* result_cohort_failure - the /cohort/results body of a failed cohort query */
json_t *result_cohort_failure(const char *query_id, const char *trust_id, const char *message)
{
	char created[11];

	result_utc_date(created);
	return json_pack("{s:s,s:s,s:s,s:i,s:[],s:s}", "query_id", query_id, "trust_id", trust_id,
			 "created", created, "record_count", 0, "data", "error", message);
}
