/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log - one line per event on stderr, the way a Debian system service writes.
 *
 * SYNOPSIS
 *	#include "lib/log.h"
 *
 *	void log_init(const char *prog, int level);
 *	void log_set_level(int level);
 *	int log_level_parse(const char *name);
 *	const char *log_prog(void);
 *	void log_error(const char *fmt, ...);
 *	void log_warn(const char *fmt, ...);
 *	void log_info(const char *fmt, ...);
 *	void log_debug(const char *fmt, ...);
 *
 * DESCRIPTION
 *	Under systemd (JOURNAL_STREAM set) every line starts with the syslog priority
 *	prefix `<N>` so journald files it at the right level; otherwise lines read
 *	`prog: level: message` for a person at a terminal. Lines below the level are
 *	dropped; an idle run at info writes nothing.
 *
 *	Callers never pass secrets, SQL text, accession numbers, patient ids or row
 *	values: log fingerprints and counts (docs/design/operations.md).
 *
 *	log_level_parse() maps debug|info|warning|warn|error|critical (any case) to a
 *	LOG_* value, or -1. log_prog() is the program name given to log_init().
 */
#ifndef FLIP_LOG_H
#define FLIP_LOG_H

enum { LOG_ERR = 3, LOG_WARN = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

void log_init(const char *prog, int level);
void log_set_level(int level);
int log_level_parse(const char *name);
const char *log_prog(void);
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
