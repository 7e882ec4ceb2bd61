/* SPDX-License-Identifier: Apache-2.0 */
/*
 * toml - read a TOML file into a jansson tree (an extern "C" shim over toml11).
 *
 * SYNOPSIS
 *	#include "lib/toml.h"
 *
 *	json_t *toml_load_file(const char *path, size_t max_bytes, char *err, size_t errlen);
 *
 * DESCRIPTION
 *	toml_load_file() reads the file at path (opened O_NOFOLLOW; it must be a regular
 *	file of at most max_bytes bytes), parses it with toml11 and returns the whole
 *	document as a new JSON object, types preserved exactly:
 *	  TOML integer          json integer (a boolean is never an integer); one
 *	                        that does not fit 64 bits is refused, as is a binary
 *	                        literal of more than 62 digits
 *	  TOML boolean          json true / false
 *	  TOML float            json real (inf, nan and overflow are refused: JSON
 *	                        has no infinities)
 *	  TOML string           json string (a string or key holding NUL is refused)
 *	  TOML array            json array
 *	  table, inline table   json object
 *	  array of tables       json array of objects
 *	  date, time, datetime  json object {"$datetime": "<text>"}, so that C code
 *	                        expecting a scalar refuses it by type
 *	Nesting is bounded because toml11 parses and destroys recursively and a crafted
 *	file would otherwise exhaust the stack: before toml11 sees the text, at most
 *	TOML_MAX_DEPTH levels of [ and { and at most TOML_MAX_DOTS dots outside strings
 *	and comments on one line (dotted keys nest too); after parsing, a document
 *	deeper than TOML_MAX_DEPTH tables and arrays is refused.
 *
 * DIAGNOSTICS
 *	NULL with a one-line message in err naming the file (and the line, for a
 *	syntax error: "FILE: line N: what"); toml11's multi-line, possibly coloured
 *	text is reduced to its first line. No exception crosses into C; nothing is
 *	printed. The caller owns the returned reference.
 */
#ifndef FLIP_TOML_H
#define FLIP_TOML_H

#include <stddef.h>
#include <jansson.h>

#define TOML_MAX_DEPTH 32
#define TOML_MAX_DOTS 128

#ifdef __cplusplus
extern "C" {
#endif

json_t *toml_load_file(const char *path, size_t max_bytes, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
