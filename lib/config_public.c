/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_public - the configuration as it may be shown to a third party (flipctl
 * bundle; see config.h for what is shown and what is redacted).
 */
#include "lib/config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config_internal.h"
#include "lib/log.h"

/*
 * Free text (CK_STR) that config_public() may show. FL_CLIENT_COMMAND is not here:
 * it is a command line, and a vendor client may take a password as an argument.
 */
static const char *const config_public_text[] = {"no_proxy", "OMOP_POSTGRES_DB",
						 "DATA_ACCESS_POSTGRES_USER", NULL};

/* config_secret_name - a key name that says it holds a secret (checked on top of the kind) */
static int config_secret_name(const char *name)
{
	static const char *const words[] = {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL",
					    "PRIVATE", "APIKEY", NULL};
	char up[128];
	size_t n = strlen(name);

	if (n >= sizeof(up))
		return 1;
	for (size_t i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)name[i]);
	for (const char *const *w = words; *w != NULL; w++)
		if (strstr(up, *w) != NULL)
			return 1;
	if (n >= 4 && strcmp(up + n - 4, "_KEY") == 0)
		return 1;
	/* TRUST_API_KEY_HEADER names a header; AES_KEY_BASE64 is a key */
	return strstr(up, "_KEY_") != NULL && !(n >= 7 && strcmp(up + n - 7, "_HEADER") == 0);
}

/* config_public_redacted - {"redacted": true, "set": set} (and what may be shown) */
static json_t *config_public_redacted(int set, const char *shown)
{
	json_t *v = json_pack("{s:b,s:b}", "redacted", 1, "set", set);

	if (v != NULL && shown != NULL)
		json_object_set_new(v, "shown", json_string(shown));
	return v;
}

/*
 * config_public_url - a URL without user:password@, query or fragment (authority_only:
 * scheme://host:port alone); NULL when out of memory. curl takes a proxy without a
 * scheme too, so the authority starts at the text's start when there is no "://".
 */
static char *config_public_url(const char *url, int authority_only)
{
	const char *scheme = strstr(url, "://"), *start = scheme ? scheme + 3 : url;
	const char *end = start + strcspn(start, "/?#"), *host = start, *stop;
	char *out = NULL;

	for (const char *p = start; p < end; p++)
		if (*p == '@')
			host = p + 1;
	stop = authority_only ? end : end + strcspn(end, "?#");
	if (asprintf(&out, "%.*s%.*s", (int)(start - url), url, (int)(stop - host), host) < 0)
		return NULL;
	return out;
}

/* config_public_string - s as a JSON string, or a note when it is not UTF-8 */
static json_t *config_public_string(const char *s)
{
	json_t *v;

	if (s == NULL)
		return json_null();
	v = json_string(s);
	return v != NULL ? v : json_string("(not UTF-8)");
}

/* config_public_value - one key's value as config_public() shows it */
static json_t *config_public_value(const struct config *cfg, const struct config_key *k)
{
	const void *field = (const char *)cfg + k->off;
	const char *s = NULL;
	char *clean;
	json_t *v;

	switch (k->kind) {
	case CK_INT:
		return json_integer(*(const int *)field);
	case CK_LONG:
		return json_integer(*(const long *)field);
	case CK_LLONG:
		return json_integer(*(const long long *)field);
	case CK_BOOL:
		return json_boolean(*(const bool *)field);
	case CK_LOGLEVEL: {
		int l = *(const int *)field;
		return json_string(l >= LOG_DEBUG ? "debug" : l >= LOG_INFO ? "info"
						: l >= LOG_WARN ? "warning" : "error");
	}
	default:
		s = *(char *const *)field;
		break;
	}
	if (config_secret_name(k->names[0]))
		return config_public_redacted(s != NULL, NULL);
	switch (k->kind) {
	case CK_HOST:
	case CK_NAME:
	case CK_PATH:
	case CK_KITPATH:
	case CK_HEADER:
	case CK_CHOICE:
	case CK_HOLD:
	case CK_AETITLE:
	case CK_UUID:
		return config_public_string(s);
	case CK_URL:
		if (s == NULL)
			return json_null();
		clean = config_public_url(s, 0);
		v = clean != NULL ? config_public_string(clean) : config_public_redacted(1, NULL);
		free(clean);
		return v;
	case CK_STR:
		for (const char *const *p = config_public_text; *p != NULL; p++)
			if (strcmp(*p, k->names[0]) == 0)
				return config_public_string(s);
		break;
	case CK_SECRET:
		/* the proxy's credentials are its only secret; where it is helps support */
		if (k->off == F(https_proxy) && s != NULL) {
			clean = config_public_url(s, 1);
			v = config_public_redacted(1, clean);
			free(clean);
			return v;
		}
		break;
	default:
		break;
	}
	return config_public_redacted(s != NULL, NULL);
}

/* config_public - the configuration with every secret replaced by whether it is set */
json_t *config_public(const struct config *cfg)
{
	json_t *out = json_object(), *v;
	const char *key;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		json_object_set_new(out, config_keys[i].names[0],
				    config_public_value(cfg, &config_keys[i]));
	json_object_foreach(cfg->fl_privacy, key, v) {
		json_object_set_new(out, key, config_secret_name(key)
						      ? config_public_redacted(1, NULL)
						      : json_copy(v));
	}
	return out;
}
