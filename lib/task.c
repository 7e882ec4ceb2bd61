/* SPDX-License-Identifier: Apache-2.0 */
/*
 * task - the seven task types and their payload schemas (see task.h for the contract).
 *
 * The schemas are data: one table of fields per task type, read by one checker,
 * so a schema change is a one-line change and every type gets the same checks and
 * the same messages. Fields are checked in table order; the first failure wins.
 * String caps count characters (code points), as the hub's pydantic models do, so
 * a name the hub accepted is not refused here for being non-ASCII.
 */
#include "lib/task.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/b64.h"
#include "lib/err.h"

const char *const task_types[] = {
	"cohort_query",	      "persist_cohort",	  "create_imaging",	 "delete_imaging",
	"get_imaging_status", "reimport_studies", "update_user_profile", NULL,
};

/* What a field holds; every kind but BOOL and USERS is a JSON string. */
enum task_kind {
	TASK_STR,    /* UTF-8 text, no NUL, at most cap characters */
	TASK_UUID,   /* 8-4-4-4-12 hex */
	TASK_BOOL,   /* true or false, never 0/1 */
	TASK_EMAIL,  /* text with exactly one '@' */
	TASK_NAME,   /* text, 1..cap characters, none of < > & */
	TASK_B64URL, /* URL-safe base64 without padding of UTF-8 text */
	TASK_USERS,  /* array of at most cap objects, each checked against task_user */
};

#define TASK_OPTIONAL 1u /* may be absent */
#define TASK_NULLABLE 2u /* may be null */

#define TASK_MAX_NAME 255
#define TASK_MAX_USERS 1000
/* encoded_query decodes to at most TASK_MAX_QUERY bytes of SQL */
#define TASK_MAX_ENCODED_QUERY ((TASK_MAX_QUERY + 2) / 3 * 4)

struct task_field {
	const char *name;
	enum task_kind kind;
	unsigned flags;
	size_t cap;
};

struct task_schema {
	const char *type;
	const struct task_field *fields;
	size_t nfields;
};

#define TASK_NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static const struct task_field task_cohort_query[] = {
	{"query_name", TASK_STR, 0, TASK_MAX_STRING},
	{"query", TASK_STR, 0, TASK_MAX_QUERY},
	{"encrypted_project_id", TASK_STR, 0, TASK_MAX_STRING},
	{"query_id", TASK_UUID, 0, 0},
	{"trust_id", TASK_UUID, 0, 0},
};

static const struct task_field task_persist_cohort[] = {
	{"project_id", TASK_UUID, 0, 0},
	{"trust_id", TASK_UUID, 0, 0},
	{"encrypted_project_id", TASK_STR, 0, TASK_MAX_STRING},
	{"query", TASK_STR, 0, TASK_MAX_QUERY},
	{"query_id", TASK_UUID, TASK_OPTIONAL | TASK_NULLABLE, 0},
};

static const struct task_field task_create_imaging[] = {
	{"project_id", TASK_UUID, 0, 0},
	{"trust_id", TASK_UUID, 0, 0},
	{"project_name", TASK_NAME, 0, TASK_MAX_NAME},
	{"query", TASK_STR, TASK_OPTIONAL | TASK_NULLABLE, TASK_MAX_QUERY},
	{"users", TASK_USERS, 0, TASK_MAX_USERS},
	{"dicom_to_nifti", TASK_BOOL, TASK_OPTIONAL, 0},
};

/* one item of create_imaging's users[] */
static const struct task_field task_user[] = {
	{"id", TASK_UUID, 0, 0},
	{"email", TASK_STR, 0, TASK_MAX_STRING},
	{"name", TASK_STR, 0, TASK_MAX_STRING},
	{"organisation", TASK_STR, TASK_NULLABLE, TASK_MAX_STRING},
	{"is_disabled", TASK_BOOL, 0, 0},
};

static const struct task_field task_delete_imaging[] = {
	{"imaging_project_id", TASK_UUID, 0, 0},
};

/* get_imaging_status and reimport_studies share one payload */
static const struct task_field task_imaging_query[] = {
	{"imaging_project_id", TASK_UUID, 0, 0},
	{"encoded_query", TASK_B64URL, 0, TASK_MAX_ENCODED_QUERY},
};

static const struct task_field task_update_user_profile[] = {
	{"email", TASK_EMAIL, 0, TASK_MAX_STRING},
	{"enabled", TASK_BOOL, 0, 0},
};

static const struct task_schema task_schemas[] = {
	{"cohort_query", task_cohort_query, TASK_NFIELDS(task_cohort_query)},
	{"persist_cohort", task_persist_cohort, TASK_NFIELDS(task_persist_cohort)},
	{"create_imaging", task_create_imaging, TASK_NFIELDS(task_create_imaging)},
	{"delete_imaging", task_delete_imaging, TASK_NFIELDS(task_delete_imaging)},
	{"get_imaging_status", task_imaging_query, TASK_NFIELDS(task_imaging_query)},
	{"reimport_studies", task_imaging_query, TASK_NFIELDS(task_imaging_query)},
	{"update_user_profile", task_update_user_profile, TASK_NFIELDS(task_update_user_profile)},
};

/* task_format - vsnprintf into buf, if there is one (sizes are the callers' concern) */
__attribute__((format(printf, 3, 4))) static void task_format(char *buf, size_t len,
							      const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* task_utf8_count - count the code points of strict UTF-8 text, -1 if it is not */
static int task_utf8_count(const unsigned char *s, size_t len, size_t *count)
{
	size_t i = 0, n = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t more;
		unsigned long cp;

		if (c < 0x80) {
			more = 0;
			cp = c;
		} else if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			cp = c & 0x07;
		} else {
			return -1;
		}
		if (len - i - 1 < more)
			return -1;
		for (size_t k = 1; k <= more; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return -1;
		i += more + 1;
		n++;
	}
	*count = n;
	return 0;
}

/* task_check_text - UTF-8 without NUL, at most cap characters (cap 0: no cap) */
static int task_check_text(const json_t *v, const char *name, size_t cap, char *err, size_t errlen)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v), nchars;

	/* jansson can hold "\u0000" when built with json_stringn(); C code would truncate */
	if (strlen(s) != len)
		return err_set(err, errlen, "Invalid payload: field '%s' must not contain NUL",
			       name);
	if (task_utf8_count((const unsigned char *)s, len, &nchars) != 0)
		return err_set(err, errlen, "Invalid payload: field '%s' must be valid UTF-8",
			       name);
	if (cap > 0 && nchars > cap)
		return err_set(err, errlen, "Invalid payload: field '%s' is too long (%zu > %zu)",
			       name, nchars, cap);
	return 0;
}

/* task_check_b64url - URL-safe base64 without padding, decoding to UTF-8 without NUL */
static int task_check_b64url(const char *s, size_t len, const char *name, char *err, size_t errlen)
{
	unsigned char *sql = NULL;
	size_t sqllen = 0, nchars;
	int rc = 0;

	if (b64url_decode_nopad(s, len, &sql, &sqllen) != 0)
		return err_set(err, errlen,
			       "Invalid payload: field '%s' must be URL-safe base64 without padding",
			       name);
	if (strlen((const char *)sql) != sqllen || task_utf8_count(sql, sqllen, &nchars) != 0)
		rc = err_set(err, errlen, "Invalid payload: field '%s' must decode to UTF-8 text",
			     name);
	free(sql);
	return rc;
}

static int task_check_object(const json_t *obj, const struct task_field *fields, size_t n,
			     const char *prefix, char *err, size_t errlen);

/* task_check_users - users[]: an array of at most cap user objects */
static int task_check_users(const json_t *v, const char *name, size_t cap, char *err, size_t errlen)
{
	size_t i, n = json_array_size(v);
	char item[64];

	if (n > cap)
		return err_set(err, errlen,
			       "Invalid payload: field '%s' has too many items (%zu > %zu)", name,
			       n, cap);
	for (i = 0; i < n; i++) {
		const json_t *u = json_array_get(v, i);

		task_format(item, sizeof(item), "%s[%zu]", name, i);
		if (!json_is_object(u))
			return err_set(err, errlen, "Invalid payload: field '%s' must be an object",
				       item);
		if (task_check_object(u, task_user, TASK_NFIELDS(task_user), item, err, errlen) !=
		    0)
			return -1;
	}
	return 0;
}

/* task_check_field - one present, non-null value against its field's kind */
static int task_check_field(const json_t *v, const struct task_field *f, const char *name,
			    char *err, size_t errlen)
{
	const char *s;

	switch (f->kind) {
	case TASK_BOOL:
		if (!json_is_boolean(v))
			return err_set(err, errlen, "Invalid payload: field '%s' must be a boolean",
				       name);
		return 0;
	case TASK_USERS:
		if (!json_is_array(v))
			return err_set(err, errlen, "Invalid payload: field '%s' must be an array",
				       name);
		return task_check_users(v, name, f->cap, err, errlen);
	case TASK_UUID:
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
		    !task_uuid_ok(json_string_value(v)))
			return err_set(err, errlen, "Invalid payload: field '%s' must be a UUID",
				       name);
		return 0;
	default:
		break;
	}
	if (!json_is_string(v))
		return err_set(err, errlen, "Invalid payload: field '%s' must be a string", name);
	if (task_check_text(v, name, f->cap, err, errlen) != 0)
		return -1;
	s = json_string_value(v);
	switch (f->kind) {
	case TASK_EMAIL: {
		const char *at = strchr(s, '@');
		if (at == NULL || strchr(at + 1, '@') != NULL)
			return err_set(err, errlen,
				       "Invalid payload: field '%s' must contain exactly one '@'",
				       name);
		return 0;
	}
	case TASK_NAME:
		if (*s == 0)
			return err_set(err, errlen, "Invalid payload: field '%s' must not be empty",
				       name);
		if (strpbrk(s, "<>&") != NULL)
			return err_set(err, errlen,
				       "Invalid payload: field '%s' must not contain '<', '>' or '&'",
				       name);
		return 0;
	case TASK_B64URL:
		return task_check_b64url(s, json_string_length(v), name, err, errlen);
	default:
		return 0;
	}
}

/* task_check_object - every field of a table against one JSON object */
static int task_check_object(const json_t *obj, const struct task_field *fields, size_t n,
			     const char *prefix, char *err, size_t errlen)
{
	char name[96];

	for (size_t i = 0; i < n; i++) {
		const struct task_field *f = &fields[i];
		const json_t *v = json_object_get(obj, f->name);

		if (prefix != NULL)
			task_format(name, sizeof(name), "%s.%s", prefix, f->name);
		else
			task_format(name, sizeof(name), "%s", f->name);
		if (v == NULL) {
			if (f->flags & TASK_OPTIONAL)
				continue;
			return err_set(err, errlen, "Invalid payload: field '%s' is missing", name);
		}
		if (json_is_null(v) && (f->flags & TASK_NULLABLE))
			continue;
		if (task_check_field(v, f, name, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* task_schema_find - the schema of a task type, NULL when unknown */
static const struct task_schema *task_schema_find(const char *type)
{
	if (type == NULL)
		return NULL;
	for (size_t i = 0; i < TASK_NFIELDS(task_schemas); i++)
		if (strcmp(task_schemas[i].type, type) == 0)
			return &task_schemas[i];
	return NULL;
}

/* task_type_known - 1 if type is one of the seven task types */
int task_type_known(const char *type)
{
	return task_schema_find(type) != NULL;
}

/* task_payload_check - validate a decrypted payload against its type's schema */
int task_payload_check(const char *type, const json_t *payload, char *err, size_t errlen)
{
	const struct task_schema *schema = task_schema_find(type);

	if (schema == NULL) {
		char echo[68];
		size_t i;

		/* the type came from the hub: echo a bounded, printable copy */
		for (i = 0; type != NULL && type[i] != 0 && i < 64; i++)
			echo[i] = (type[i] >= 0x20 && type[i] < 0x7f) ? type[i] : '?';
		echo[i] = 0;
		return err_set(err, errlen, "Unknown task type: %s%s", echo,
			       type != NULL && type[i] != 0 ? "..." : "");
	}
	if (!json_is_object(payload))
		return err_set(err, errlen, "Invalid payload: payload must be a JSON object");
	return task_check_object(payload, schema->fields, schema->nfields, NULL, err, errlen);
}

/* task_uuid_ok - 1 if s is 8-4-4-4-12 hex digits (either case), nothing more */
int task_uuid_ok(const char *s)
{
	if (s == NULL)
		return 0;
	for (int i = 0; i < 36; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return 0;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return 0;
		}
	}
	return s[36] == 0;
}

/* task_uuid_canonical - the lower-case form of a UUID, -1 if s is not one */
int task_uuid_canonical(const char *s, char out[37])
{
	if (!task_uuid_ok(s))
		return -1;
	for (int i = 0; i < 36; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] - 'A' + 'a') : s[i];
	out[36] = 0;
	return 0;
}
