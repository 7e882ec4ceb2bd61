/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log - one line per event on stderr (see log.h for the contract).
 *
 * Each line is formatted into one buffer and written with a single write(2), so
 * lines from concurrent programs sharing a journal stream never interleave.
 */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *log_name = "flip";
static int log_threshold = LOG_INFO;
static int log_journal = -1;

/* log_init - name the program and set the level */
void log_init(const char *prog, int level)
{
	log_name = prog;
	log_threshold = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

/* log_set_level - change the level once the config is read */
void log_set_level(int level)
{
	log_threshold = level;
}

/* log_prog - the program name given to log_init */
const char *log_prog(void)
{
	return log_name;
}

/* log_level_parse - a level name to its LOG_* value, -1 when unknown */
int log_level_parse(const char *name)
{
	static const struct { const char *name; int level; } names[] = {
		{"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warning", LOG_WARN},
		{"warn", LOG_WARN}, {"error", LOG_ERR}, {"critical", LOG_ERR},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return names[i].level;
	return -1;
}

static void log_emit(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void log_emit(int level, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	if (level > log_threshold)
		return;
	if (log_journal < 0)
		log_journal = getenv("JOURNAL_STREAM") != NULL;
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>", level);
	else
		n = snprintf(line, sizeof(line), "%s: %s: ", log_name,
			     level <= LOG_ERR ? "error" : level == LOG_WARN ? "warning"
			     : level == LOG_INFO ? "info" : "debug");
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;	/* truncated: still one line */
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

#define LOG_FN(fn, lvl)                                                        \
	void fn(const char *fmt, ...)                                          \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		log_emit(lvl, fmt, ap);                                        \
		va_end(ap);                                                    \
	}
LOG_FN(log_error, LOG_ERR)
LOG_FN(log_warn, LOG_WARN)
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_debug, LOG_DEBUG)
