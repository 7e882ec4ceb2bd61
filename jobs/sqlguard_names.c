/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlguard_names - the names sqlguard's rules allow or deny: functions, cast types,
 * FROM functions, escape functions, TABLESAMPLE methods and the harmless node
 * types (see sqlguard.h for the rules, sqlguard_names.h for the lookups). The
 * lists are here and nowhere else.
 */
#include "jobs/sqlguard.h"
#include "jobs/sqlguard_names.h"

#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The allow-list: every function a cohort query may call, and nothing else.
 * Names are as the parser folds them. Deliberately absent, among everything
 * else: pg_* (files, backends, WAL, advisory locks, notify, sleep, catalog
 * helpers), lo_*, dblink*, *_to_xml and query_to_*, current_setting,
 * set_config, txid_*, version, inet_*, has_*_privilege, current_database,
 * nextval/setval/currval, setseed, to_regclass and other catalog lookups.
 */
static const char *const allowed_functions[] = {
	/* aggregates */
	"array_agg", "avg", "bit_and", "bit_or", "bool_and", "bool_or", "corr", "count",
	"covar_pop", "covar_samp", "every", "max", "min", "mode", "percentile_cont",
	"percentile_disc", "stddev", "stddev_pop", "stddev_samp", "string_agg", "sum",
	"var_pop", "var_samp", "variance",
	/* window functions */
	"cume_dist", "dense_rank", "first_value", "lag", "last_value", "lead", "nth_value",
	"ntile", "percent_rank", "rank", "row_number",
	/* dates and times (extract, overlaps, timezone: EXTRACT, OVERLAPS, AT TIME ZONE) */
	"age", "date_bin", "date_part", "date_trunc", "extract", "isfinite", "justify_days",
	"justify_hours", "justify_interval", "make_date", "make_interval", "make_time",
	"make_timestamp", "now", "overlaps", "timezone", "to_char", "to_date", "to_number",
	"to_timestamp",
	/* strings (btrim/ltrim/rtrim: TRIM; position, overlay, substring: their syntax) */
	"ascii", "btrim", "char_length", "character_length", "chr", "concat", "concat_ws",
	"initcap", "is_normalized", "left", "length", "lower", "lpad", "ltrim", "md5",
	"normalize", "octet_length", "overlay", "position", "regexp_count", "regexp_instr",
	"regexp_like", "regexp_match", "regexp_matches", "regexp_replace",
	"regexp_split_to_array", "regexp_substr", "repeat", "replace", "reverse", "right",
	"rpad", "rtrim", "split_part", "starts_with", "strpos", "substr", "substring",
	"to_hex", "translate", "trim", "upper",
	/* numbers */
	"abs", "cbrt", "ceil", "ceiling", "degrees", "div", "exp", "floor", "ln", "log",
	"log10", "mod", "pi", "pow", "power", "radians", "random", "round", "sign", "sqrt",
	"trunc", "width_bucket",
	/* arrays and nulls */
	"array_append", "array_cat", "array_length", "array_lower", "array_position",
	"array_positions", "array_prepend", "array_remove", "array_to_string", "array_upper",
	"cardinality", "num_nonnulls", "num_nulls", "string_to_array",
	/* set-returning: the only two allowed in FROM as well */
	"generate_series", "unnest",
};

/*
 * The deny-list, which wins over the allow-list: functions that run SQL held in a
 * string (ts_stat, ts_rewrite, query_to_* and the other *_to_xml, xpath on built
 * XML), and the families no cohort query needs and that reach files, the server
 * or other databases. Checked by exact name, then by prefix, then by substring.
 */
static const char *const denied_functions[] = {"ts_stat", "ts_rewrite", "xpath",
					       "xpath_exists", "current_setting", "set_config",
					       "version"};
static const char *const denied_prefixes[] = {"pg_", "lo_", "dblink", "query_to_",
					      "cursor_to_", "table_to_", "schema_to_",
					      "database_to_", "has_", "txid_", "inet_"};
static const char *const denied_substrings[] = {"xml"};

/*
 * The types a cast may name (the last name, as folded; pg_catalog the only schema
 * allowed): numbers, text, dates and times, boolean, uuid, and arrays of them.
 * Not reg* (a regclass cast looks a string up in the catalog and quotes it back
 * in the error), not json/jsonb/xml (parse errors quote the value), not the rest.
 */
static const char *const cast_types[] = {
	"int2", "int4", "int8", "smallint", "integer", "int", "bigint", "numeric", "decimal",
	"float4", "float8", "real", "double precision", "text", "varchar", "bpchar", "char",
	"character", "character varying", "date", "time", "timetz", "timestamp", "timestamptz",
	"interval", "bool", "boolean", "uuid",
};

/* the set-returning functions that may stand in FROM */
static const char *const from_functions[] = {"generate_series", "unnest"};

/* the escape functions the parser writes for LIKE/ILIKE/SIMILAR TO ... ESCAPE */
static const char *const escape_functions[] = {"like_escape", "similar_to_escape"};

/* the built-in TABLESAMPLE methods */
static const char *const sample_methods[] = {"bernoulli", "system"};

/*
 * Node types that carry no rule of their own and are harmless in a SELECT: the
 * walker descends into them. Everything absent and not handled in walk_msg
 * (XMLTABLE, XML expressions, column definition lists, every statement type
 * and every post-analysis node) is refused by name.
 */
static const ProtobufCMessageDescriptor *const plain_types[] = {
	&pg_query__node__descriptor,
	&pg_query__list__descriptor,
	&pg_query__integer__descriptor,
	&pg_query__float__descriptor,
	&pg_query__boolean__descriptor,
	&pg_query__string__descriptor,
	&pg_query__bit_string__descriptor,
	&pg_query__a__const__descriptor,
	&pg_query__a__star__descriptor,
	&pg_query__a__indices__descriptor,
	&pg_query__a__array_expr__descriptor,
	&pg_query__res_target__descriptor,
	&pg_query__alias__descriptor,
	&pg_query__type_name__descriptor,
	&pg_query__collate_clause__descriptor,
	&pg_query__bool_expr__descriptor,
	&pg_query__null_test__descriptor,
	&pg_query__boolean_test__descriptor,
	&pg_query__case_expr__descriptor,
	&pg_query__case_when__descriptor,
	&pg_query__coalesce_expr__descriptor,
	&pg_query__min_max_expr__descriptor,
	&pg_query__row_expr__descriptor,
	&pg_query__grouping_func__descriptor,
	&pg_query__grouping_set__descriptor,
	&pg_query__named_arg_expr__descriptor,
	&pg_query__window_def__descriptor,
	&pg_query__range_subselect__descriptor,
	&pg_query__join_expr__descriptor,
	&pg_query__ctesearch_clause__descriptor,
	&pg_query__ctecycle_clause__descriptor,
};

/* in_list - name is one of the n names */
static int in_list(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, list[i]) == 0)
			return 1;
	return 0;
}

/* sqlguard_function_denied - on the deny-list, whatever the allow-list says */
int sqlguard_function_denied(const char *name)
{
	if (name == NULL)
		return 1;
	if (in_list(name, denied_functions, NELEM(denied_functions)))
		return 1;
	for (size_t i = 0; i < NELEM(denied_prefixes); i++)
		if (strncmp(name, denied_prefixes[i], strlen(denied_prefixes[i])) == 0)
			return 1;
	for (size_t i = 0; i < NELEM(denied_substrings); i++)
		if (strstr(name, denied_substrings[i]) != NULL)
			return 1;
	return 0;
}

/* sqlguard_function_allowed - the one allow-list, for tests and docs */
int sqlguard_function_allowed(const char *name)
{
	return name != NULL && in_list(name, allowed_functions, NELEM(allowed_functions)) &&
	       !sqlguard_function_denied(name);
}

/* sqlguard_cast_type - a type a cast may name (cast_types) */
int sqlguard_cast_type(const char *name)
{
	return in_list(name, cast_types, NELEM(cast_types));
}

/* sqlguard_from_function - a set-returning function that may stand in FROM */
int sqlguard_from_function(const char *name)
{
	return in_list(name, from_functions, NELEM(from_functions));
}

/* sqlguard_escape_function - the parser's escape function of LIKE ... ESCAPE */
int sqlguard_escape_function(const char *name)
{
	return in_list(name, escape_functions, NELEM(escape_functions));
}

/* sqlguard_sample_method - a built-in TABLESAMPLE method */
int sqlguard_sample_method(const char *name)
{
	return in_list(name, sample_methods, NELEM(sample_methods));
}

/* sqlguard_plain_type - the descriptor is one of the harmless node types */
int sqlguard_plain_type(const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < NELEM(plain_types); i++)
		if (plain_types[i] == d)
			return 1;
	return 0;
}
