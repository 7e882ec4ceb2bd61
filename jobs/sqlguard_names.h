/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlguard_names - the name tables sqlguard's rules consult (not for callers: see
 * sqlguard.h).
 *
 * SYNOPSIS
 *	#include "jobs/sqlguard_names.h"
 *
 *	int sqlguard_cast_type(const char *name);
 *	int sqlguard_from_function(const char *name);
 *	int sqlguard_escape_function(const char *name);
 *	int sqlguard_sample_method(const char *name);
 *	int sqlguard_plain_type(const ProtobufCMessageDescriptor *d);
 *
 * DESCRIPTION
 *	Each says whether a name, as the parser folded it, is on one of the lists
 *	of sqlguard_names.c (the allow- and deny-lists of functions are asked
 *	through sqlguard_function_allowed() and sqlguard_function_denied() of
 *	sqlguard.h): sqlguard_cast_type() a type a cast may name (rule 6),
 *	sqlguard_from_function() a set-returning function that may stand in FROM,
 *	sqlguard_escape_function() the escape function the parser writes for
 *	LIKE/ILIKE/SIMILAR TO ... ESCAPE, sqlguard_sample_method() a built-in
 *	TABLESAMPLE method. sqlguard_plain_type() says whether a node type carries
 *	no rule of its own and is harmless in a SELECT (rule 8): the walker descends
 *	into it. Each returns 1 or 0.
 */
#ifndef FLIP_SQLGUARD_NAMES_H
#define FLIP_SQLGUARD_NAMES_H

#include <protobuf-c/protobuf-c.h>

int sqlguard_cast_type(const char *name);
int sqlguard_from_function(const char *name);
int sqlguard_escape_function(const char *name);
int sqlguard_sample_method(const char *name);
int sqlguard_plain_type(const ProtobufCMessageDescriptor *d);

#endif
