/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_internal - what the pieces of the config module share (not for callers:
 * see config.h).
 *
 * SYNOPSIS
 *	#include "lib/config_internal.h"
 *
 *	int config_read(struct config_file *f, int explicit_path, char *err, size_t errlen);
 *	int config_lookup(const struct config_key *k, struct config_file *f,
 *			  struct config_val *v);
 *	int config_set(struct config *cfg, const struct config_key *k,
 *		       const struct config_val *v, char *err, size_t errlen);
 *	int config_privacy(struct config *cfg, const struct config_file *f, char *err,
 *			   size_t errlen);
 *	void config_log_ignored(const struct config_file *f);
 *	size_t F(field);
 *
 * DESCRIPTION
 *	The config module is four files: config.c (the table of keys, config_load(),
 *	config_free() and the config_require_* checks), config_file.c (the kit file
 *	read and split into KEY=value entries, and where each key's value comes from:
 *	the environment, the file or the default), config_value.c (each value checked
 *	by its kind and stored in its field) and config_public.c (config_public()).
 *
 *	config_keys[] holds every key of docs/design/operations.md, config_nkeys
 *	entries; F(field) is a field's offset in struct config.
 *
 *	config_read() opens, checks and reads f->path and splits it into f->ent:
 *	0, 1 when the default file is absent (explicit_path 0), -1 with err.
 *	config_lookup() fills v with the value of k (environment, file, default)
 *	and returns whether there is one; every file entry of its names counts as
 *	used. config_set() checks v by k's kind and stores it in cfg: 0 or -1 with
 *	err. config_privacy() collects the FL_SITE_PRIVACY_* keys of the file and
 *	the environment into cfg->fl_privacy: 0 or -1 with err.
 *	config_log_ignored() writes one debug line per file key nobody read.
 */
#ifndef FLIP_CONFIG_INTERNAL_H
#define FLIP_CONFIG_INTERNAL_H

#include <stddef.h>

#include "lib/config.h"

enum config_kind {
	CK_STR,	     /* text without control characters */
	CK_SECRET,   /* text, never repeated in a message */
	CK_HOST,     /* host name, address or socket directory: no white space */
	CK_NAME,     /* 1..64 of [A-Za-z0-9._-], not . or ..: becomes a path component */
	CK_INT,	     /* int field, min..max */
	CK_LONG,     /* long field, min..max */
	CK_LLONG,    /* long long field, min..max */
	CK_BOOL,     /* true/false/yes/no/1/0, any case */
	CK_URL,	     /* https:// (or http://) URL, one trailing '/' removed */
	CK_PATH,     /* absolute path without a ".." component, trailing '/' removed */
	CK_KITPATH,  /* CK_PATH, or relative in the file: resolved against the file's folder */
	CK_HEADER,   /* HTTP header name (RFC 9110 token) */
	CK_CHOICE,   /* one of choices[] */
	CK_AES,	     /* base64 of exactly 32 bytes; also fills aes_key/have_aes_key */
	CK_HOLD,     /* comma-separated task types */
	CK_AETITLE,  /* DICOM AE title: 1..16 printable ASCII, no backslash */
	CK_UUID,     /* UUID, stored in lower case */
	CK_LOGLEVEL, /* log_level_parse() name, int field */
};

struct config_key {
	const char *names[4]; /* the name to use first, then aliases; NULL-terminated */
	enum config_kind kind;
	size_t off;	 /* field in struct config */
	const char *def; /* default text, run through the same checks; NULL = none */
	long long min, max;
	const char *const *choices;
};

#define F(field) offsetof(struct config, field)

extern const struct config_key config_keys[];
extern const size_t config_nkeys;
#define CONFIG_NKEYS config_nkeys

/* One KEY=value line of the file; key and val point into the file buffer. */
struct config_entry {
	const char *key;
	const char *val;
	int used;
};

struct config_file {
	const char *path; /* "" when no file was read */
	char *buf;
	size_t cap; /* bytes allocated for buf (wiped in full) */
	struct config_entry *ent;
	size_t n;
};

/* Where a value came from, for the message. */
struct config_val {
	const char *name; /* the key name that supplied it */
	const char *text;
	enum { SRC_ENV, SRC_FILE, SRC_DEFAULT } src;
	const char *path;
};

int config_read(struct config_file *f, int explicit_path, char *err, size_t errlen);
int config_lookup(const struct config_key *k, struct config_file *f, struct config_val *v);
int config_set(struct config *cfg, const struct config_key *k, const struct config_val *v,
	       char *err, size_t errlen);
int config_privacy(struct config *cfg, const struct config_file *f, char *err, size_t errlen);
void config_log_ignored(const struct config_file *f);

#endif
