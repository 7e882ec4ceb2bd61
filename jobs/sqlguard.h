/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlguard - validate and rewrite the researcher's cohort SQL (docs/design/data-access.md).
 *
 * SYNOPSIS
 *	#include "jobs/sqlguard.h"
 *
 *	char *sqlguard_check(const char *sql, char *err, size_t errlen);
 *	int sqlguard_function_allowed(const char *name);
 *	int sqlguard_function_denied(const char *name);
 *
 * DESCRIPTION
 *	sqlguard_check() parses sql with libpg_query (the real PostgreSQL 15 parser),
 *	walks the tree, pins every table to the `omop` schema and deparses it. Only
 *	the returned text may be executed; the researcher's own text never is. The
 *	rules, in the order they are applied (first failure wins):
 *
 *	1. At most SQLGUARD_MAX_LENGTH characters (UTF-8 code points), counted before
 *	   anything else; then the text must be valid UTF-8.
 *	2. It must parse, and hold exactly one non-empty statement: a single trailing
 *	   `;` is fine, any other `;` is not (empty statements are dropped by the
 *	   parser, so the `;` tokens are counted with the scanner).
 *	3. The statement is a SELECT (set operations and VALUES included).
 *	4. No data-modifying node anywhere: a WITH member that is not a SELECT,
 *	   SELECT ... INTO, FOR UPDATE/SHARE (any strength).
 *	5. Every table reference (RangeVar) is qualified with `omop`: names are
 *	   compared as the parser folded them (unquoted lower-cased, quoted as
 *	   written). An unqualified name becomes omop.<name> unless a CTE of exactly
 *	   that name is visible where it is used: a WITH list covers its own query
 *	   and that query's subqueries, never an outer query or a sibling arm of a
 *	   set operation; inside the list a non-recursive member sees only the
 *	   members before it, a WITH RECURSIVE member sees the whole list.
 *	6. Function calls: the name is in the one allow-list (sqlguard_function_
 *	   allowed). A schema-qualified call is refused, except the pg_catalog
 *	   calls the parser itself writes for SQL syntax (EXTRACT, SUBSTRING ...
 *	   FROM, TRIM, POSITION, OVERLAY, AT TIME ZONE, OVERLAPS, NORMALIZE, and the
 *	   escape function of LIKE/ILIKE/SIMILAR TO ... ESCAPE) whose name is itself
 *	   allowed. In FROM only generate_series and unnest. TABLESAMPLE only with
 *	   the built-in BERNOULLI and SYSTEM methods. CURRENT_DATE, CURRENT_TIME,
 *	   CURRENT_TIMESTAMP, LOCALTIME(STAMP) are fine; CURRENT_USER, SESSION_USER,
 *	   USER, CURRENT_ROLE, CURRENT_CATALOG, CURRENT_SCHEMA are refused like the
 *	   functions they are. COALESCE, NULLIF, GREATEST, LEAST and CASE are not
 *	   function calls and are fine. A deny-list wins over the allow-list
 *	   (sqlguard_function_denied): functions that run SQL held in a string
 *	   (ts_stat, ts_rewrite, query_to_*, anything *xml*, xpath) and the pg_*,
 *	   lo_*, dblink*, has_*, txid_*, inet_* families, current_setting,
 *	   set_config, version.
 *	   Attribute notation: PostgreSQL reads (expr).f as f(expr) when expr has no
 *	   field f, so every field selection is refused as "Function 'f' is not
 *	   allowed." (OMOP has no composite columns; write p.col, not (p).col), and a
 *	   column reference longer than table.column, other than omop.table.column,
 *	   is "The column '<name>' does not exist.". Whether table.column names a real
 *	   column is checked by the second stage (sqlresolve.h) against the catalog.
 *	   Casts only to plain types: integers, numeric, floats, text, varchar, char,
 *	   date, time[tz], timestamp[tz], interval, boolean, uuid (and arrays of
 *	   them), bare or in pg_catalog; anything else, reg* and json/jsonb/xml
 *	   first, is "Cast to type '<name>' is not allowed.".
 *	7. LIMIT and OFFSET, in every query level, are absent, ALL, or an integer
 *	   literal (FETCH FIRST n ROWS included).
 *	8. Any node type not known to be safe in a SELECT is refused by name
 *	   (XMLTABLE, XML expressions, $n parameters, column definition lists...).
 *	   Nesting deeper than SQLGUARD_MAX_DEPTH tree levels is refused.
 *
 *	After the rewrite the deparsed text is checked again from scratch and must
 *	come back unchanged; anything else (a deparser surprise) is "Could not
 *	validate query.". So sqlguard_check(sqlguard_check(x)) == sqlguard_check(x).
 *
 *	sqlguard_function_allowed() says whether a function name (as folded by the
 *	parser) is on the allow-list and not on the deny-list; the lists are static
 *	tables in sqlguard_names.c, grouped by kind, and nowhere else.
 *	sqlguard_function_denied() says whether it is on the deny-list.
 *
 * DIAGNOSTICS
 *	sqlguard_check() returns the checked SQL (malloc'd, the caller frees), or
 *	NULL with the detail of a 400-class error in err (the caller renders
 *	"400: <detail>"). The details, exactly:
 *	  Query exceeds the maximum length of 10240 characters.
 *	  Query is not valid UTF-8.
 *	  Exactly one SQL statement is allowed per request.
 *	  Could not parse SQL query: <parser message>
 *	  Only SELECT statements are allowed.
 *	  Data-modifying statements are not allowed in WITH.
 *	  SELECT ... INTO is not allowed.
 *	  FOR UPDATE/SHARE is not allowed.
 *	  Schema '<schema>' is not accessible.
 *	  Cross-database table references are not allowed.
 *	  Function '<name>' is not allowed.
 *	  Function '<name>' is not allowed in FROM.
 *	  Only generate_series and unnest are allowed in FROM.
 *	  Schema-qualified function calls are not allowed.
 *	  Schema-qualified operators are not allowed.
 *	  Cast to type '<type>' is not allowed.
 *	  The column '<name>' does not exist.
 *	  Tablesample method '<name>' is not allowed.
 *	  LIMIT must be a literal integer.
 *	  OFFSET must be a literal integer.
 *	  Query parameters are not allowed.
 *	  SQL construct '<NodeType>' is not allowed.
 *	  Query is nested too deeply.
 *	  Could not validate query.
 *	Messages carry only identifiers the researcher wrote (control characters
 *	replaced by '?'), never literal values: in a parser message a quoted token
 *	that is not a plain word or operator (a string, a number, the rest of an
 *	unterminated literal) is replaced by its position ("at character N").
 *	Nothing is printed. Memory is released on every path; libpg_query keeps a
 *	per-thread memory context that pg_query_exit() releases.
 */
#ifndef FLIP_SQLGUARD_H
#define FLIP_SQLGUARD_H

#include <stddef.h>

#define SQLGUARD_MAX_LENGTH 10240
#define SQLGUARD_MAX_DEPTH 4000

char *sqlguard_check(const char *sql, char *err, size_t errlen);
int sqlguard_function_allowed(const char *name);
int sqlguard_function_denied(const char *name);

#endif
