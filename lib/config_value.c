/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_value - one configuration value checked according to its kind and stored
 * at its field's offset (the kinds: config_internal.h).
 *
 * Secrets never appear in a message: a bad secret is described by its problem and
 * length only. A message names the key and where its value came from.
 */
#include "lib/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "lib/b64.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/task.h"

#define CONFIG_ECHO "%.64s" /* how much of a bad (non-secret) value a message repeats */

/* config_bad - "KEY in FILE: problem", return -1 */
static int config_bad(char *err, size_t errlen, const struct config_val *v, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));
static int config_bad(char *err, size_t errlen, const struct config_val *v, const char *fmt,
		      ...)
{
	char problem[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	if (v->src == SRC_FILE)
		return err_set(err, errlen, "%s in %s: %s", v->name, v->path, problem);
	if (v->src == SRC_ENV)
		return err_set(err, errlen, "%s in the environment: %s", v->name, problem);
	return err_set(err, errlen, "%s (built-in default): %s", v->name, problem);
}

/* config_int - strict decimal integer in min..max */
static int config_int(const struct config_key *k, const struct config_val *v, long long *out,
		      char *err, size_t errlen)
{
	const char *s = v->text, *p = s;
	long long type_max = k->kind == CK_INT ? INT_MAX : k->kind == CK_LONG ? LONG_MAX : LLONG_MAX;
	char *end;

	if (*p == '-')
		p++;
	for (; *p; p++)
		if (!isdigit((unsigned char)*p))
			break;
	errno = 0;
	if (*p == 0 && p > s && isdigit((unsigned char)p[-1])) {
		*out = strtoll(s, &end, 10);
		if (errno == 0 && *end == 0 && *out >= k->min && *out <= k->max)
			return 0;
	}
	if (k->max == type_max)
		return config_bad(err, errlen, v, "must be a %s integer, got '" CONFIG_ECHO "'",
				  k->min > 0 ? "positive" : "non-negative", s);
	return config_bad(err, errlen, v, "must be an integer from %lld to %lld, got '" CONFIG_ECHO "'",
			  k->min, k->max, s);
}

/* config_bool - true/false/yes/no/1/0 in any case */
static int config_bool(const struct config_val *v, bool *out, char *err, size_t errlen)
{
	static const char *const yes[] = {"true", "yes", "1"}, *const no[] = {"false", "no", "0"};

	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(v->text, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v->text, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return config_bad(err, errlen, v, "must be true or false (or yes/no, 1/0), got '" CONFIG_ECHO "'",
			  v->text);
}

/* config_hold_name - the n bytes at s name a known task type */
static int config_hold_name(const char *s, size_t n)
{
	char name[32];

	if (n == 0 || n >= sizeof(name))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
			return 0;
	memcpy(name, s, n);
	name[n] = 0;
	return task_type_known(name);
}

/* config_hold - comma-separated known task types, stored as "a,b" (NULL when none) */
static int config_hold(const struct config_val *v, char **out, char *err, size_t errlen)
{
	const char *p = v->text;
	char *norm = malloc(strlen(p) + 1), *w = norm;

	if (norm == NULL)
		return config_bad(err, errlen, v, "out of memory");
	for (;;) {
		size_t n;

		p += strspn(p, " ,");
		if (*p == 0)
			break;
		n = strcspn(p, " ,");
		if (!config_hold_name(p, n)) {
			free(norm);
			return config_bad(err, errlen, v,
					  "unknown task type '%.*s' (known: cohort_query "
					  "persist_cohort create_imaging delete_imaging "
					  "get_imaging_status reimport_studies update_user_profile)",
					  (int)(n > 64 ? 64 : n), p);
		}
		if (w != norm)
			*w++ = ',';
		memcpy(w, p, n);
		w += n;
		p += n;
	}
	*w = 0;
	if (w == norm) {
		free(norm);
		norm = NULL;
	}
	*out = norm;
	return 0;
}

/* config_aes - decode the AES key into cfg */
static int config_aes(struct config *cfg, const struct config_val *v, char *err, size_t errlen)
{
	unsigned char *key = NULL;
	size_t len = 0;

	if (b64_decode(v->text, strlen(v->text), &key, &len) < 0)
		return config_bad(err, errlen, v,
				  "not valid base64 (%zu characters; generate a key with: openssl "
				  "rand -base64 32)",
				  strlen(v->text));
	if (len != CONFIG_AES_KEY_LEN) {
		OPENSSL_cleanse(key, len);
		free(key);
		return config_bad(err, errlen, v,
				  "decodes to %zu bytes, need exactly %d (generate one with: "
				  "openssl rand -base64 32)",
				  len, CONFIG_AES_KEY_LEN);
	}
	memcpy(cfg->aes_key, key, CONFIG_AES_KEY_LEN);
	cfg->have_aes_key = true;
	OPENSSL_cleanse(key, len);
	free(key);
	return 0;
}

/* config_header_ok - an RFC 9110 token */
static int config_header_ok(const char *s)
{
	if (*s == 0)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return 0;
	return 1;
}

/* config_path_ok - absolute, no ".." component */
static int config_path_ok(const char *s)
{
	if (*s != '/')
		return 0;
	for (const char *p = s; (p = strstr(p, "..")) != NULL; p += 2)
		if (p[-1] == '/' && (p[2] == '/' || p[2] == 0))
			return 0;
	return 1;
}

/* config_name_ok - [A-Za-z0-9._-]{1,64}, not . or .. */
static int config_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* config_aetitle_ok - 1..16 printable ASCII, no backslash */
static int config_aetitle_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 16)
		return 0;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '\\')
			return 0;
	return 1;
}

/* config_text - a checked string value into a malloc'd copy (NULL on error) */
static char *config_text(const struct config_key *k, const struct config_val *v, char *err,
			 size_t errlen)
{
	char uuid[37], *s;
	const char *host;
	size_t n;

	switch (k->kind) {
	case CK_URL:
		if (strncmp(v->text, "https://", 8) != 0 && strncmp(v->text, "http://", 7) != 0) {
			config_bad(err, errlen, v,
				   "must start with https:// (or http:// for a test hub), got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		host = v->text + (v->text[4] == 's' ? 8 : 7);
		if (strpbrk(v->text, " \t") != NULL || *host == 0 || *host == '/') {
			config_bad(err, errlen, v, "not a URL with a host, got '" CONFIG_ECHO "'", v->text);
			return NULL;
		}
		break;
	case CK_KITPATH:
		/*
		 * FLIP's docker kits write these relative to the compose folder
		 * (BASE_IMAGES_DOWNLOAD_DIR=./data/trust). A kit copied as it is must still
		 * work, so a relative path from the file means "beside the kit file".
		 */
		if (v->text[0] != '/' && v->src == SRC_FILE && v->path && v->path[0] == '/') {
			const char *rel = strncmp(v->text, "./", 2) == 0 ? v->text + 2 : v->text;
			int dirlen = (int)(strrchr(v->path, '/') - v->path);
			char *abs = NULL;
			if (asprintf(&abs, "%.*s/%s", dirlen, v->path, rel) < 0) {
				config_bad(err, errlen, v, "out of memory");
				return NULL;
			}
			if (!config_path_ok(abs)) {
				free(abs);
				config_bad(err, errlen, v,
					   "must be a path without a '..' component, got '" CONFIG_ECHO "'",
					   v->text);
				return NULL;
			}
			log_debug("%s is relative in %s; using %s", v->name, v->path, abs);
			n = strlen(abs);
			if (n > 1 && abs[n - 1] == '/')
				abs[n - 1] = 0;
			return abs;
		}
		/* fall through */
	case CK_PATH:
		if (!config_path_ok(v->text)) {
			config_bad(err, errlen, v,
				   "must be an absolute path without a '..' component, got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		break;
	case CK_HEADER:
		if (!config_header_ok(v->text)) {
			config_bad(err, errlen, v,
				   "not a valid HTTP header name (letters, digits and !#$%%&'*+-.^_`|~), got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		break;
	case CK_HOST:
		if (strpbrk(v->text, " \t") != NULL) {
			config_bad(err, errlen, v, "must not contain white space, got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		break;
	case CK_NAME:
		if (!config_name_ok(v->text)) {
			config_bad(err, errlen, v,
				   "must be 1 to 64 of letters, digits, '.', '_' and '-', got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		break;
	case CK_AETITLE:
		if (!config_aetitle_ok(v->text)) {
			config_bad(err, errlen, v,
				   "must be 1 to 16 printable ASCII characters without '\\', got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		break;
	case CK_UUID:
		if (task_uuid_canonical(v->text, uuid) < 0) {
			config_bad(err, errlen, v, "must be a UUID (the trust's id on the hub), got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		return strdup(uuid);
	case CK_CHOICE:
		for (const char *const *c = k->choices; *c != NULL; c++)
			if (strcmp(*c, v->text) == 0)
				return strdup(v->text);
		{
			char list[128] = "";

			for (const char *const *c = k->choices; *c != NULL; c++) {
				strncat(list, *c, sizeof(list) - strlen(list) - 1);
				if (c[1] != NULL)
					strncat(list, c[2] == NULL ? " or " : ", ",
						sizeof(list) - strlen(list) - 1);
			}
			config_bad(err, errlen, v, "must be %s, got '" CONFIG_ECHO "'", list, v->text);
		}
		return NULL;
	default:
		break;
	}
	s = strdup(v->text);
	if (s == NULL) {
		config_bad(err, errlen, v, "out of memory");
		return NULL;
	}
	n = strlen(s);
	/* URLs lose one trailing slash, paths all of them but the root's */
	if (k->kind == CK_URL && s[n - 1] == '/')
		s[n - 1] = 0;
	if (k->kind == CK_PATH || k->kind == CK_KITPATH)
		while (n > 1 && s[n - 1] == '/')
			s[--n] = 0;
	return s;
}

/* config_control - the value holds a control character */
static int config_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* config_set - check one value and store it in its field */
int config_set(struct config *cfg, const struct config_key *k, const struct config_val *v,
	       char *err, size_t errlen)
{
	void *field = (char *)cfg + k->off;
	long long n = 0;
	int level;

	if (config_control(v->text)) {
		if (k->kind == CK_SECRET || k->kind == CK_AES)
			return config_bad(err, errlen, v, "contains a control character (%zu characters)",
					  strlen(v->text));
		return config_bad(err, errlen, v, "contains a control character");
	}
	switch (k->kind) {
	case CK_INT:
	case CK_LONG:
	case CK_LLONG:
		if (config_int(k, v, &n, err, errlen) < 0)
			return -1;
		if (k->kind == CK_INT)
			*(int *)field = (int)n;
		else if (k->kind == CK_LONG)
			*(long *)field = (long)n;
		else
			*(long long *)field = n;
		return 0;
	case CK_BOOL:
		return config_bool(v, (bool *)field, err, errlen);
	case CK_LOGLEVEL:
		level = log_level_parse(v->text);
		if (level < 0)
			return config_bad(err, errlen, v,
					  "must be debug, info, warning, error or critical, got '" CONFIG_ECHO "'",
					  v->text);
		*(int *)field = level;
		return 0;
	case CK_HOLD:
		return config_hold(v, (char **)field, err, errlen);
	case CK_AES:
		if (config_aes(cfg, v, err, errlen) < 0)
			return -1;
		break;
	default:
		break;
	}
	*(char **)field = config_text(k, v, err, errlen);
	return *(char **)field != NULL ? 0 : -1;
}
