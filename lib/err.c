/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err - outcome kinds and the message formatter every module uses (see err.h).
 */
#include "lib/err.h"

#include <errno.h>
#include <stdio.h>

/* err_vset - the message into err, -1; errno as it was (the caller may still need it) */
int err_vset(char *err, size_t errlen, const char *fmt, va_list ap)
{
	int saved = errno;

	if (err != NULL && errlen > 0)
		vsnprintf(err, errlen, fmt, ap);
	errno = saved;
	return -1;
}

/* err_set - the message into err, -1 */
int err_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* err_exit_code - 0 (done or reported), 1 (try again later), 2 (the operator must act) */
int err_exit_code(enum err_kind kind)
{
	switch (kind) {
	case ERR_OK:
	case ERR_FINAL:
		return 0;
	case ERR_TRANSIENT:
		return 1;
	case ERR_CONFIG:
	case ERR_AUTH:
		return 2;
	}
	return 2;
}

/* err_kind_name - the kind as a word for logs and metric labels */
const char *err_kind_name(enum err_kind kind)
{
	static const char *const names[] = {"ok", "transient", "final", "config", "auth"};

	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "config";
}
