/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err - the one vocabulary of outcomes and the one way to word a failure.
 *
 * SYNOPSIS
 *	#include "lib/err.h"
 *
 *	int err_set(char *err, size_t errlen, const char *fmt, ...);
 *	int err_vset(char *err, size_t errlen, const char *fmt, va_list ap);
 *	int err_exit_code(enum err_kind kind);
 *	const char *err_kind_name(enum err_kind kind);
 *
 * DESCRIPTION
 *	Every step that can fail says which of these it was, and that alone decides
 *	what happens next (docs/design/ARCHITECTURE.md, "Exit codes"):
 *	  ERR_OK         done
 *	  ERR_TRANSIENT  a service (hub, OMOP database, PACS, local disk) is
 *	                 unavailable: the work stays where it is and is retried
 *	                 with retry_backoff() (lib/retry.h); the program exits 1
 *	  ERR_FINAL      this one item fails for good (a refused task, a malformed
 *	                 file): it is reported or set aside, never retried, and the
 *	                 program goes on with the next
 *	  ERR_CONFIG     the node's configuration or its host is wrong: nothing is
 *	                 retried until the operator acts; the program exits 2
 *	  ERR_AUTH       the hub refused the API key or named another trust: as
 *	                 ERR_CONFIG, exit 2, never retried blindly
 *
 *	err_set() writes the message into err (truncated to errlen, always
 *	terminated; err may be NULL or errlen 0) and returns -1, so that a failing
 *	function ends with `return err_set(err, errlen, "...", ...);`. errno is left
 *	as it was, so the caller can still report why the failing call failed.
 *	Messages say what failed and what to do; they never carry a secret or a
 *	patient value. err_vset() is the same with a va_list.
 *
 *	err_exit_code() maps a kind to the program's exit code: 0 for ERR_OK and
 *	ERR_FINAL (the failure was reported), 1 for ERR_TRANSIENT, 2 for ERR_CONFIG
 *	and ERR_AUTH. err_kind_name() is "ok", "transient", "final", "config" or
 *	"auth", for logs and metrics labels.
 */
#ifndef FLIP_ERR_H
#define FLIP_ERR_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum err_kind { ERR_OK = 0, ERR_TRANSIENT = 1, ERR_FINAL = 2, ERR_CONFIG = 3, ERR_AUTH = 4 };

int err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int err_vset(char *err, size_t errlen, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
int err_exit_code(enum err_kind kind);
const char *err_kind_name(enum err_kind kind);

#ifdef __cplusplus
}
#endif

#endif
