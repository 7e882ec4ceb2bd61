/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_file - the kit file read and split into KEY=value entries, and where each
 * key's value comes from: the environment, the file (the last occurrence wins, as
 * in a shell) or the default (see config.h for the file's syntax and modes).
 *
 * The file is read whole (at most 1 MiB) into one buffer and split in place. A
 * malformed line is named by its number only (it may hold a secret).
 */
#include "lib/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/log.h"

#define CONFIG_MAX_FILE (1024 * 1024)

/*
 * Keys flip-node knows but that are not fields here: the hub is HTTPS-only, so
 * the http and all proxy variables are left to libcurl's own reading of the
 * environment, and flip-fl renders the FL_SITE_PRIVACY_* keys itself. In the
 * file they get their own debug line.
 */
static const char *const config_elsewhere[] = {
	"HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", NULL,
};
#define CONFIG_PRIVACY_PREFIX "FL_SITE_PRIVACY_"

/* config_key_ok - [A-Za-z_][A-Za-z0-9_]* */
static int config_key_ok(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return 0;
	return 1;
}

/* config_blank - space or tab */
static int config_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* config_parse_line - split one line in place; 0 = entry, 1 = nothing, -1 = bad */
static int config_parse_line(char *s, const char **key, const char **val, const char **why)
{
	char *eq, *end, *v;

	end = s + strlen(s);
	while (end > s && (config_blank(end[-1]) || end[-1] == '\r'))
		*--end = 0;
	while (config_blank(*s))
		s++;
	if (*s == 0 || *s == '#')
		return 1;
	if (strncmp(s, "export", 6) == 0 && config_blank(s[6]))
		for (s += 6; config_blank(*s); s++)
			;
	eq = strchr(s, '=');
	if (eq == NULL) {
		*why = "expected KEY=value";
		return -1;
	}
	for (end = eq; end > s && config_blank(end[-1]); end--)
		;
	*end = 0;
	if (!config_key_ok(s)) {
		*why = "the key must be letters, digits and _, not starting with a digit";
		return -1;
	}
	*key = s;
	for (v = eq + 1; config_blank(*v); v++)
		;
	if (*v == '"' || *v == '\'') {
		char *close = strchr(v + 1, *v), *rest;

		if (close == NULL) {
			*why = "unterminated quote";
			return -1;
		}
		for (rest = close + 1; config_blank(*rest); rest++)
			;
		if (*rest != 0 && *rest != '#') {
			*why = "text after the closing quote";
			return -1;
		}
		*close = 0;
		*val = v + 1;
		return 0;
	}
	/* unquoted: " #" starts a comment, as in docker compose and python-dotenv */
	for (end = v; *end; end++)
		if (*end == '#' && end > v && config_blank(end[-1]))
			break;
	while (end > v && config_blank(end[-1]))
		end--;
	*end = 0;
	*val = v;
	return 0;
}

/* config_parse - split the file buffer into entries */
static int config_parse(struct config_file *f, size_t len, char *err, size_t errlen)
{
	char *p = f->buf, *nl;
	size_t lines = 1;
	int lineno = 0;

	if (memchr(f->buf, 0, len) != NULL)
		return err_set(err, errlen, "%s: contains a NUL byte; not a kit file", f->path);
	for (size_t i = 0; i < len; i++)
		lines += f->buf[i] == '\n';
	f->ent = calloc(lines, sizeof(*f->ent));
	if (f->ent == NULL)
		return err_set(err, errlen, "%s: out of memory", f->path);
	for (; p != NULL && *p; p = nl) {
		const char *key = NULL, *val = NULL, *why = NULL;
		int rc;

		nl = strchr(p, '\n');
		if (nl != NULL)
			*nl++ = 0;
		lineno++;
		rc = config_parse_line(p, &key, &val, &why);
		if (rc < 0)
			return err_set(err, errlen, "%s: line %d: %s", f->path, lineno, why);
		if (rc > 0)
			continue;
		f->ent[f->n].key = key;
		f->ent[f->n].val = val;
		f->n++;
	}
	return 0;
}

/* config_mode_problem - what a too-open mode allows, NULL when it is fine */
static const char *config_mode_problem(mode_t mode)
{
	if ((mode & 0027) == 0)
		return NULL;
	if (mode & 0004)
		return "lets other users read secrets";
	if (mode & 0022)
		return "lets other users change it";
	return "is open to other users";
}

/* config_read - open, check and read the kit file; 1 when the default is absent */
int config_read(struct config_file *f, int explicit_path, char *err, size_t errlen)
{
	struct stat st;
	const char *problem;
	size_t len = 0;
	int fd, rc = -1;

	/* O_NONBLOCK: opening a FIFO must not hang; it is refused below */
	fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT && !explicit_path)
			return 1;
		if (errno == ELOOP)
			return err_set(err, errlen,
				       "%s: is a symbolic link; name the file itself (it is "
				       "opened without following links)",
				       f->path);
		return err_set(err, errlen, "%s: cannot open: %s", f->path, strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		err_set(err, errlen, "%s: cannot stat: %s", f->path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(err, errlen, "%s: not a regular file", f->path);
		goto out;
	}
	problem = config_mode_problem(st.st_mode);
	if (problem != NULL) {
		err_set(err, errlen,
			"%s: mode %04o %s; run: chmod 640 %s (owner root, group flip) or chmod 600",
			f->path, (unsigned)(st.st_mode & 07777), problem, f->path);
		goto out;
	}
	if (st.st_size > CONFIG_MAX_FILE) {
		err_set(err, errlen, "%s: larger than 1 MiB; not a kit file", f->path);
		goto out;
	}
	f->cap = CONFIG_MAX_FILE + 2;
	f->buf = malloc(f->cap);
	if (f->buf == NULL) {
		err_set(err, errlen, "%s: out of memory", f->path);
		goto out;
	}
	/* read to EOF (the file may have grown since fstat), one byte past the cap */
	while (len <= CONFIG_MAX_FILE) {
		ssize_t r = read(fd, f->buf + len, CONFIG_MAX_FILE + 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err_set(err, errlen, "%s: cannot read: %s", f->path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > CONFIG_MAX_FILE) {
		err_set(err, errlen, "%s: larger than 1 MiB; not a kit file", f->path);
		goto out;
	}
	f->buf[len] = 0;
	rc = config_parse(f, len, err, errlen);
out:
	close(fd);
	return rc;
}

/* config_file_find - the last non-empty value of name in the file, marking it used */
static const struct config_entry *config_file_find(struct config_file *f, const char *name)
{
	const struct config_entry *found = NULL;

	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->ent[i].key, name) != 0)
			continue;
		f->ent[i].used = 1;
		if (f->ent[i].val[0] != 0)
			found = &f->ent[i];
	}
	return found;
}

/* config_lookup - the value of a key: environment, then file, then default; 0 = none */
int config_lookup(const struct config_key *k, struct config_file *f, struct config_val *v)
{
	const struct config_entry *e = NULL;
	size_t i;

	v->path = f->path;
	for (i = 0; i < 4 && k->names[i] != NULL; i++) {
		const char *env = getenv(k->names[i]);

		if (env != NULL && *env != 0 && v->text == NULL) {
			v->name = k->names[i];
			v->text = env;
			v->src = SRC_ENV;
		}
	}
	/* look every name up even when found, so that all of them count as used */
	for (i = 0; i < 4 && k->names[i] != NULL; i++) {
		const struct config_entry *x = config_file_find(f, k->names[i]);

		if (x != NULL && e == NULL) {
			e = x;
			if (v->text == NULL) {
				v->name = k->names[i];
				v->text = x->val;
				v->src = SRC_FILE;
			}
		}
	}
	if (v->text == NULL && k->def != NULL) {
		v->name = k->names[0];
		v->text = k->def;
		v->src = SRC_DEFAULT;
	}
	return v->text != NULL;
}

/* config_elsewhere_key - a proxy key, which libcurl takes from the environment */
static int config_elsewhere_key(const char *key)
{
	for (const char *const *p = config_elsewhere; *p != NULL; p++)
		if (strcmp(*p, key) == 0)
			return 1;
	return 0;
}

/* config_log_ignored - one debug line per distinct file key nobody reads here */
void config_log_ignored(const struct config_file *f)
{
	for (size_t i = 0; i < f->n; i++) {
		const char *key = f->ent[i].key;
		size_t j;

		if (f->ent[i].used)
			continue;
		for (j = i + 1; j < f->n; j++)
			if (strcmp(f->ent[j].key, key) == 0)
				break;
		if (j < f->n)
			continue; /* logged at its last occurrence */
		if (strncmp(key, CONFIG_PRIVACY_PREFIX, strlen(CONFIG_PRIVACY_PREFIX)) == 0)
			continue;	/* kept in cfg->fl_privacy for flip-fl */
		else if (config_elsewhere_key(key))
			log_debug("%s in %s has no effect: libcurl reads it from the process "
				  "environment only",
				  key, f->path);
		else
			log_debug("ignoring %s (used only by FLIP's containers)", key);
	}
}

/* config_privacy_value - a privacy key's value: printable text, stored as given */
static int config_privacy_value(json_t *out, const char *key, const char *val, const char *src,
				char *err, size_t errlen)
{
	if (*val == 0) {
		json_object_del(out, key);	/* empty is unset, as for every key */
		return 0;
	}
	for (const char *p = val; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return err_set(err, errlen, "%s in %s: control character in the value", key,
				       src);
	json_t *v = json_string(val);
	if (v == NULL)
		return err_set(err, errlen, "a FL_SITE_PRIVACY_ key in %s: the value is not UTF-8",
			       src);
	if (json_object_set_new(out, key, v) < 0)
		return err_set(err, errlen, "a FL_SITE_PRIVACY_ key in %s: the name is not UTF-8",
			       src);
	return 0;
}

extern char **environ;

/*
 * config_privacy - FL_SITE_PRIVACY_* from the file, then the environment: the set of
 * keys is open (FL_SITE_PRIVACY_SVT_*), and flip-fl's privacy module is the one that
 * knows which belong to which preset, so config keeps them as text.
 */
int config_privacy(struct config *cfg, const struct config_file *f, char *err, size_t errlen)
{
	size_t plen = strlen(CONFIG_PRIVACY_PREFIX);

	cfg->fl_privacy = json_object();
	if (cfg->fl_privacy == NULL)
		return err_set(err, errlen, "out of memory");
	for (size_t i = 0; i < f->n; i++) {
		if (strncmp(f->ent[i].key, CONFIG_PRIVACY_PREFIX, plen) != 0)
			continue;
		if (config_privacy_value(cfg->fl_privacy, f->ent[i].key, f->ent[i].val, f->path, err,
					 errlen) < 0)
			return -1;
	}
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		char key[128];

		if (eq == NULL || strncmp(*e, CONFIG_PRIVACY_PREFIX, plen) != 0 ||
		    (size_t)(eq - *e) >= sizeof(key))
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(eq - *e), *e);
		if (config_privacy_value(cfg->fl_privacy, key, eq + 1, "the environment", err,
					 errlen) < 0)
			return -1;
	}
	return 0;
}
