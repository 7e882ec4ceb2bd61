/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ident - the one validator for identifiers that become paths (see ident.h).
 */
#include "lib/ident.h"

#include "lib/spool.h"

#include <ctype.h>
#include <string.h>

static int ident_span(const char *s, size_t min, size_t max, const char *extra)
{
	size_t n = 0;

	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];
		if (n >= max)
			return 0;
		if (!isascii(c) || !(isalnum(c) || strchr(extra, c)))
			return 0;
	}
	return n >= min;
}

static int ident_uuid(const char *s)
{
	static const int dash[] = {8, 13, 18, 23};
	size_t i, d = 0;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (d < 4 && i == (size_t)dash[d]) {
			if (s[i] != '-')
				return 0;
			d++;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/* ident_ok - is s a well-formed identifier of this kind */
int ident_ok(enum ident_kind kind, const char *s)
{
	if (s == NULL)
		return 0;
	switch (kind) {
	case IDENT_TASK_ID:
		return s[0] != '-' && ident_span(s, 1, 64, "_-");
	case IDENT_JOB_NAME:
		for (int i = 0; i < SPOOL_SEQ_DIGITS; i++)
			if (!isdigit((unsigned char)s[i]))
				return 0;
		return s[SPOOL_SEQ_DIGITS] == '-' && ident_ok(IDENT_TASK_ID, s + SPOOL_SEQ_PREFIX);
	case IDENT_UUID:
		return ident_uuid(s);
	case IDENT_ACCESSION:
		return strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && ident_span(s, 1, 64, "._~-");
	case IDENT_NET_ID:
		return strncmp(s, "net-", 4) == 0 && s[4] != 0 && strlen(s + 4) <= 6 &&
		       strspn(s + 4, "0123456789") == strlen(s + 4);
	}
	return 0;
}

/* ident_kind_name - a kind's name for messages */
const char *ident_kind_name(enum ident_kind kind)
{
	switch (kind) {
	case IDENT_TASK_ID: return "task id";
	case IDENT_JOB_NAME: return "job name";
	case IDENT_UUID: return "UUID";
	case IDENT_ACCESSION: return "accession number";
	case IDENT_NET_ID: return "net id";
	}
	return "identifier";
}
