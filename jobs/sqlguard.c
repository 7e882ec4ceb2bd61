/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlguard - validate and rewrite the researcher's cohort SQL (see sqlguard.h).
 *
 * The tree comes from libpg_query as protobuf, unpacked by protobuf-c into C
 * structures. One generic walker visits every message through its descriptor;
 * the few node types that carry a rule (SelectStmt and its WITH list, RangeVar,
 * FuncCall, RangeFunction, A_Expr, ...) get a handler first, every other type
 * must be on the list of types known to be harmless in a SELECT or the query is
 * refused. A PgQuery__Node is a oneof over every node type, so the walker
 * follows only the member its case names: visiting every member would revisit
 * the same child once per member and never finish.
 *
 * The rewrite is a strdup'd "omop" stored in RangeVar.schemaname: protobuf-c
 * frees every string that is not the field's default with the system allocator,
 * so pg_query__parse_result__free_unpacked releases it with the tree.
 */
#include "jobs/sqlguard.h"
#include "jobs/sqlguard_names.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#define MSG_VALIDATE "Could not validate query."
#define MSG_ONE_STATEMENT "Exactly one SQL statement is allowed per request."
#define MSG_ONLY_SELECT "Only SELECT statements are allowed."
#define MSG_QUALIFIED_FUNCTION "Schema-qualified function calls are not allowed."

/* the CTE names visible at one query level, innermost first */
struct scope {
	const struct scope *up;
	PgQuery__Node **ctes;	/* CommonTableExpr nodes of one WITH list */
	size_t n;		/* how many of them are visible here */
};

struct guard {
	char *err;
	size_t errlen;
	int failed;
	int depth;
	int rewrites;		/* tables pinned to omop by this pass */
};

static void walk_msg(struct guard *g, ProtobufCMessage *m, const struct scope *sc);

/* guard_fail - record the first failure; later ones are ignored */
static void __attribute__((format(printf, 2, 3))) guard_fail(struct guard *g, const char *fmt, ...)
{
	va_list ap;

	if (g->failed)
		return;
	g->failed = 1;
	if (g->err == NULL || g->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(g->err, g->errlen, fmt, ap);
	va_end(ap);
}

/*
 * clean_copy - copy at most n bytes of in to out (outlen bytes, NUL-terminated),
 * control characters replaced by '?', never cutting a UTF-8 sequence in two.
 */
static void clean_copy(char *out, size_t outlen, const char *in, size_t n)
{
	size_t j = 0;

	if (outlen == 0)
		return;
	for (size_t i = 0; i < n && in[i] != '\0' && j + 1 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];
		out[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	/* a truncated multi-byte sequence at the end is dropped */
	if (j > 0 && j + 1 >= outlen) {
		size_t k = j;
		while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && ((unsigned char)out[k - 1] & 0x80)) {
			unsigned char lead = (unsigned char)out[k - 1];
			size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
			if (j - (k - 1) < need)
				j = k - 1;
		}
	}
	out[j] = '\0';
}

/* fail_ident - fail with a message naming one identifier the researcher wrote */
static void fail_ident(struct guard *g, const char *fmt, const char *ident)
{
	char clean[128];

	clean_copy(clean, sizeof(clean), ident ? ident : "", SIZE_MAX);
	/* the formats are the literal ones below: exactly one %s */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	guard_fail(g, fmt, clean);
#pragma GCC diagnostic pop
}

/* nonempty - a protobuf string field that holds a value (absent is "" or NULL) */
static int nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* node_string - the text of a String node, or NULL for anything else */
static const char *node_string(const PgQuery__Node *n)
{
	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_STRING || n->string == NULL)
		return NULL;
	return n->string->sval;
}

/*
 * walk_fields - visit every message-typed field of m (skip: the address of one
 * field to leave out, or NULL). Oneof members are visited only when active.
 */
static void walk_fields(struct guard *g, ProtobufCMessage *m, const struct scope *sc,
			const void *skip)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char *base = (char *)m;

	for (unsigned i = 0; i < d->n_fields && !g->failed; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char *slot = base + f->offset;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE || slot == skip)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(size_t *)(base + f->quantifier_offset);
			ProtobufCMessage **items = *(ProtobufCMessage ***)slot;
			for (size_t j = 0; j < n && !g->failed; j++)
				walk_msg(g, items[j], sc);
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		walk_msg(g, *(ProtobufCMessage **)slot, sc);
	}
}

/* cte_visible - a CTE of exactly this (folded) name is in scope */
static int cte_visible(const struct scope *sc, const char *name)
{
	for (; sc != NULL; sc = sc->up)
		for (size_t i = 0; i < sc->n; i++) {
			const PgQuery__Node *n = sc->ctes[i];
			if (n->node_case == PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR &&
			    n->common_table_expr != NULL &&
			    nonempty(n->common_table_expr->ctename) &&
			    strcmp(n->common_table_expr->ctename, name) == 0)
				return 1;
		}
	return 0;
}

/* limit_literal - absent, ALL/NULL, or an integer literal */
static int limit_literal(const PgQuery__Node *n)
{
	const PgQuery__AConst *c;
	const char *s;

	if (n == NULL)
		return 1;
	if (n->node_case != PG_QUERY__NODE__NODE_A_CONST || (c = n->a_const) == NULL)
		return 0;
	if (c->isnull)
		return 1;
	if (c->val_case == PG_QUERY__A__CONST__VAL_IVAL)
		return 1;
	/* an integer too large for int4 arrives as a Float holding only digits */
	if (c->val_case != PG_QUERY__A__CONST__VAL_FVAL || c->fval == NULL ||
	    (s = c->fval->fval) == NULL)
		return 0;
	if (*s == '-')
		s++;
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/*
 * walk_with - check a WITH list and walk each member in its own scope: a
 * non-recursive member sees the members before it, a recursive list sees all
 * of itself. inner is set to the scope the query owning the list sees.
 */
static void walk_with(struct guard *g, PgQuery__WithClause *w, const struct scope *sc,
		      struct scope *inner)
{
	inner->up = sc;
	inner->ctes = w->ctes;
	inner->n = w->n_ctes;
	for (size_t i = 0; i < w->n_ctes && !g->failed; i++) {
		PgQuery__Node *n = w->ctes[i];
		PgQuery__CommonTableExpr *cte;
		struct scope member = {sc, w->ctes, w->recursive ? w->n_ctes : i};

		if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR ||
		    (cte = n->common_table_expr) == NULL) {
			guard_fail(g, MSG_VALIDATE);
			return;
		}
		if (cte->ctequery == NULL ||
		    cte->ctequery->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) {
			guard_fail(g, "Data-modifying statements are not allowed in WITH.");
			return;
		}
		walk_fields(g, &cte->base, &member, NULL);
	}
}

/* walk_select - one query level: its own rules, its WITH list, then the rest */
static void walk_select(struct guard *g, PgQuery__SelectStmt *s, const struct scope *sc)
{
	struct scope inner;

	if (s->into_clause != NULL) {
		guard_fail(g, "SELECT ... INTO is not allowed.");
		return;
	}
	if (s->n_locking_clause > 0) {
		guard_fail(g, "FOR UPDATE/SHARE is not allowed.");
		return;
	}
	if (!limit_literal(s->limit_count)) {
		guard_fail(g, "LIMIT must be a literal integer.");
		return;
	}
	if (!limit_literal(s->limit_offset)) {
		guard_fail(g, "OFFSET must be a literal integer.");
		return;
	}
	if (s->with_clause != NULL) {
		walk_with(g, s->with_clause, sc, &inner);
		sc = &inner;
	}
	walk_fields(g, &s->base, sc, &s->with_clause);
}

/* check_range_var - pin a table reference to omop, or refuse it */
static void check_range_var(struct guard *g, PgQuery__RangeVar *rv, const struct scope *sc)
{
	if (nonempty(rv->catalogname)) {
		guard_fail(g, "Cross-database table references are not allowed.");
		return;
	}
	if (!nonempty(rv->relname)) {
		guard_fail(g, MSG_VALIDATE);
		return;
	}
	if (nonempty(rv->schemaname)) {
		if (strcmp(rv->schemaname, "omop") != 0)
			fail_ident(g, "Schema '%s' is not accessible.", rv->schemaname);
	} else if (!cte_visible(sc, rv->relname)) {
		char *omop = strdup("omop");
		if (omop == NULL) {
			guard_fail(g, MSG_VALIDATE);
			return;
		}
		/* "" here is protobuf-c's shared default, never freed */
		if (rv->schemaname != NULL && rv->schemaname != protobuf_c_empty_string)
			free(rv->schemaname);
		rv->schemaname = omop;
		g->rewrites++;
	}
	walk_fields(g, &rv->base, sc, NULL);
}

/*
 * check_func_call - the allow-list. A pg_catalog-qualified call passes only when
 * the parser wrote it for SQL syntax (EXTRACT, SUBSTRING ... FROM, ...) or it is
 * the escape function of LIKE ... ESCAPE (escape_ok, set by check_a_expr).
 */
static void check_func_call(struct guard *g, PgQuery__FuncCall *fc, const struct scope *sc,
			    int escape_ok)
{
	const char *schema = NULL, *name;

	if (fc->n_funcname == 1) {
		name = node_string(fc->funcname[0]);
	} else if (fc->n_funcname == 2) {
		schema = node_string(fc->funcname[0]);
		name = node_string(fc->funcname[1]);
		if (schema == NULL) {
			guard_fail(g, MSG_VALIDATE);
			return;
		}
	} else {
		guard_fail(g, MSG_QUALIFIED_FUNCTION);
		return;
	}
	if (name == NULL) {
		guard_fail(g, MSG_VALIDATE);
		return;
	}
	if (schema == NULL || (strcmp(schema, "pg_catalog") == 0 &&
			       fc->funcformat == PG_QUERY__COERCION_FORM__COERCE_SQL_SYNTAX)) {
		if (!sqlguard_function_allowed(name)) {
			fail_ident(g, "Function '%s' is not allowed.", name);
			return;
		}
	} else if (!(escape_ok && strcmp(schema, "pg_catalog") == 0 &&
		     sqlguard_escape_function(name))) {
		guard_fail(g, MSG_QUALIFIED_FUNCTION);
		return;
	}
	walk_fields(g, &fc->base, sc, NULL);
}

/* check_range_function - FROM f(...): generate_series and unnest only */
static void check_range_function(struct guard *g, PgQuery__RangeFunction *rf,
				 const struct scope *sc)
{
	for (size_t i = 0; i < rf->n_functions; i++) {
		const PgQuery__Node *item = rf->functions[i];
		const PgQuery__Node *first;
		const PgQuery__FuncCall *fc;
		const char *name;

		/* each item is a List (function, column definitions) */
		if (item == NULL || item->node_case != PG_QUERY__NODE__NODE_LIST ||
		    item->list == NULL || item->list->n_items < 1) {
			guard_fail(g, MSG_VALIDATE);
			return;
		}
		first = item->list->items[0];
		if (first == NULL || first->node_case != PG_QUERY__NODE__NODE_FUNC_CALL ||
		    (fc = first->func_call) == NULL) {
			guard_fail(g, "Only generate_series and unnest are allowed in FROM.");
			return;
		}
		if (fc->n_funcname != 1) {
			guard_fail(g, MSG_QUALIFIED_FUNCTION);
			return;
		}
		if ((name = node_string(fc->funcname[0])) == NULL) {
			guard_fail(g, MSG_VALIDATE);
			return;
		}
		if (!sqlguard_function_allowed(name)) {
			fail_ident(g, "Function '%s' is not allowed.", name);
			return;
		}
		if (!sqlguard_from_function(name)) {
			fail_ident(g, "Function '%s' is not allowed in FROM.", name);
			return;
		}
	}
	walk_fields(g, &rf->base, sc, NULL);
}

/* check_operator - OPERATOR(schema.op) only with pg_catalog */
static void check_operator(struct guard *g, PgQuery__Node **names, size_t n)
{
	const char *schema;

	if (n <= 1)
		return;
	schema = node_string(names[0]);
	if (n != 2 || schema == NULL || strcmp(schema, "pg_catalog") != 0)
		guard_fail(g, "Schema-qualified operators are not allowed.");
}

/* check_a_expr - operators; the escape call of LIKE ... ESCAPE is the parser's */
static void check_a_expr(struct guard *g, PgQuery__AExpr *e, const struct scope *sc)
{
	check_operator(g, e->name, e->n_name);
	if ((e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_LIKE ||
	     e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_ILIKE ||
	     e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_SIMILAR) &&
	    e->rexpr != NULL && e->rexpr->node_case == PG_QUERY__NODE__NODE_FUNC_CALL &&
	    e->rexpr->func_call != NULL) {
		if (e->lexpr != NULL)
			walk_msg(g, &e->lexpr->base, sc);
		if (!g->failed)
			check_func_call(g, e->rexpr->func_call, sc, 1);
		return;
	}
	walk_fields(g, &e->base, sc, NULL);
}

/* check_sql_value - CURRENT_DATE and friends; the session-identity ones are refused */
static void check_sql_value(struct guard *g, const PgQuery__SQLValueFunction *v)
{
	const char *name;

	switch (v->op) {
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_DATE:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIME:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIME_N:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP_N:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIME:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIME_N:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP_N:
		return;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_ROLE:
		name = "current_role";
		break;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_USER:
		name = "current_user";
		break;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_USER:
		name = "user";
		break;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_SESSION_USER:
		name = "session_user";
		break;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_CATALOG:
		name = "current_catalog";
		break;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_SCHEMA:
		name = "current_schema";
		break;
	default:
		guard_fail(g, MSG_VALIDATE);
		return;
	}
	fail_ident(g, "Function '%s' is not allowed.", name);
}

/* check_table_sample - TABLESAMPLE with a built-in method */
static void check_table_sample(struct guard *g, PgQuery__RangeTableSample *ts,
			       const struct scope *sc)
{
	const char *name;

	if (ts->n_method != 1) {
		guard_fail(g, MSG_QUALIFIED_FUNCTION);
		return;
	}
	if ((name = node_string(ts->method[0])) == NULL) {
		guard_fail(g, MSG_VALIDATE);
		return;
	}
	if (!sqlguard_sample_method(name)) {
		fail_ident(g, "Tablesample method '%s' is not allowed.", name);
		return;
	}
	walk_fields(g, &ts->base, sc, NULL);
}

/* check_type_cast - casts only to the plain types of cast_types (and arrays of them) */
static void check_type_cast(struct guard *g, PgQuery__TypeCast *tc, const struct scope *sc)
{
	const PgQuery__TypeName *t = tc->type_name;
	const char *schema = NULL, *name = NULL;
	char shown[160];

	if (t == NULL || t->n_names < 1 || t->n_names > 2 || t->setof || t->pct_type) {
		guard_fail(g, MSG_VALIDATE);
		return;
	}
	name = node_string(t->names[t->n_names - 1]);
	if (t->n_names == 2)
		schema = node_string(t->names[0]);
	if (name == NULL || (t->n_names == 2 && schema == NULL)) {
		guard_fail(g, MSG_VALIDATE);
		return;
	}
	if ((schema != NULL && strcmp(schema, "pg_catalog") != 0) ||
	    !sqlguard_cast_type(name)) {
		if (schema != NULL && strcmp(schema, "pg_catalog") != 0)
			snprintf(shown, sizeof(shown), "%.70s.%.70s", schema, name);
		else
			snprintf(shown, sizeof(shown), "%s", name);
		fail_ident(g, "Cast to type '%s' is not allowed.", shown);
		return;
	}
	walk_fields(g, &tc->base, sc, NULL);
}

/*
 * check_indirection - (expr).f is f(expr) to PostgreSQL unless expr has a field f;
 * no cohort needs a field selection (OMOP has no composite columns; p.col is a
 * column reference, not this), so every one is refused as the function it may
 * be. Subscripts ([1], [1:2]) are fine.
 */
static void check_indirection(struct guard *g, PgQuery__AIndirection *ind, const struct scope *sc)
{
	for (size_t i = 0; i < ind->n_indirection; i++) {
		const PgQuery__Node *n = ind->indirection[i];
		const char *f = node_string(n);
		if (f != NULL) {
			fail_ident(g, "Function '%s' is not allowed.", f);
			return;
		}
		if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_A_INDICES) {
			guard_fail(g, MSG_VALIDATE);	/* (expr).* */
			return;
		}
	}
	walk_fields(g, &ind->base, sc, NULL);
}

/*
 * check_column_ref - at most table.column, or omop.table.column: a longer name is
 * a field selection on a column (a function call to PostgreSQL when the field
 * does not exist). Whether the table has the column is the second stage's work
 * (sqlresolve), which knows the catalog.
 */
static void check_column_ref(struct guard *g, PgQuery__ColumnRef *cr, const struct scope *sc)
{
	char shown[256];
	size_t j = 0;
	const char *first = cr->n_fields > 0 ? node_string(cr->fields[0]) : NULL;

	if (cr->n_fields <= 2 || (cr->n_fields == 3 && first != NULL && strcmp(first, "omop") == 0)) {
		walk_fields(g, &cr->base, sc, NULL);
		return;
	}
	shown[0] = '\0';
	for (size_t i = 0; i < cr->n_fields && j + 1 < sizeof(shown); i++) {
		const char *f = node_string(cr->fields[i]);
		j += (size_t)snprintf(shown + j, sizeof(shown) - j, "%s%s", i ? "." : "", f ? f : "*");
	}
	fail_ident(g, "The column '%s' does not exist.", shown);
}

/* walk_msg - dispatch one message to its rule, or descend if it has none */
static void walk_msg(struct guard *g, ProtobufCMessage *m, const struct scope *sc)
{
	const ProtobufCMessageDescriptor *d;

	if (m == NULL || g->failed)
		return;
	if (++g->depth > SQLGUARD_MAX_DEPTH) {
		guard_fail(g, "Query is nested too deeply.");
		g->depth--;
		return;
	}
	d = m->descriptor;
	if (d == &pg_query__select_stmt__descriptor)
		walk_select(g, (PgQuery__SelectStmt *)m, sc);
	else if (d == &pg_query__range_var__descriptor)
		check_range_var(g, (PgQuery__RangeVar *)m, sc);
	else if (d == &pg_query__func_call__descriptor)
		check_func_call(g, (PgQuery__FuncCall *)m, sc, 0);
	else if (d == &pg_query__range_function__descriptor)
		check_range_function(g, (PgQuery__RangeFunction *)m, sc);
	else if (d == &pg_query__a__expr__descriptor)
		check_a_expr(g, (PgQuery__AExpr *)m, sc);
	else if (d == &pg_query__sub_link__descriptor) {
		PgQuery__SubLink *sl = (PgQuery__SubLink *)m;
		check_operator(g, sl->oper_name, sl->n_oper_name);
		walk_fields(g, m, sc, NULL);
	} else if (d == &pg_query__sort_by__descriptor) {
		PgQuery__SortBy *sb = (PgQuery__SortBy *)m;
		check_operator(g, sb->use_op, sb->n_use_op);
		walk_fields(g, m, sc, NULL);
	} else if (d == &pg_query__type_cast__descriptor)
		check_type_cast(g, (PgQuery__TypeCast *)m, sc);
	else if (d == &pg_query__a__indirection__descriptor)
		check_indirection(g, (PgQuery__AIndirection *)m, sc);
	else if (d == &pg_query__column_ref__descriptor)
		check_column_ref(g, (PgQuery__ColumnRef *)m, sc);
	else if (d == &pg_query__sqlvalue_function__descriptor)
		check_sql_value(g, (const PgQuery__SQLValueFunction *)m);
	else if (d == &pg_query__range_table_sample__descriptor)
		check_table_sample(g, (PgQuery__RangeTableSample *)m, sc);
	else if (d == &pg_query__into_clause__descriptor)
		guard_fail(g, "SELECT ... INTO is not allowed.");
	else if (d == &pg_query__locking_clause__descriptor)
		guard_fail(g, "FOR UPDATE/SHARE is not allowed.");
	else if (d == &pg_query__param_ref__descriptor)
		guard_fail(g, "Query parameters are not allowed.");
	else if (sqlguard_plain_type(d))
		walk_fields(g, m, sc, NULL);
	else
		fail_ident(g, "SQL construct '%s' is not allowed.", d->short_name);
	g->depth--;
}

/* token_plain - a parser-message token that is a word or an operator, not a literal */
static int token_plain(const char *t, size_t n)
{
	static const char ops[] = "+-*/<>=~!@#%^&|`?,;:()[].";
	int word = 1, op = 1;

	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
		int digit = (c >= '0' && c <= '9') || c == '$';
		if (!(letter || (i > 0 && digit)))
			word = 0;
		if (c == '\0' || strchr(ops, c) == NULL)
			op = 0;
	}
	return word || (op && n <= 8);
}

/*
 * parse_failure - "Could not parse SQL query: <parser message>", with any
 * quoted token that could be a literal replaced by its position.
 */
static void parse_failure(struct guard *g, const PgQueryError *e)
{
	static const char near[] = " at or near \"";
	const char *m = (e != NULL && e->message != NULL) ? e->message : "syntax error";
	size_t len = strlen(m);
	char out[512];
	size_t j = 0;

	out[0] = '\0';
	for (size_t i = 0; i < len && j + 1 < sizeof(out);) {
		const char *q, *close;
		size_t tok;

		if (strncmp(m + i, near, sizeof(near) - 1) == 0 && len >= 1 && m[len - 1] == '"' &&
		    m + len - 1 >= m + i + sizeof(near) - 1) {
			/* the standard tail: the token runs to the message's last quote */
			q = m + i + sizeof(near) - 1;
			tok = (size_t)(m + len - 1 - q);
			if (token_plain(q, tok)) {
				clean_copy(out + j, sizeof(out) - j, m + i, len - i);
			} else {
				snprintf(out + j, sizeof(out) - j, " at character %d",
					 e != NULL ? e->cursorpos : 0);
			}
			j = strlen(out);
			break;
		}
		if (m[i] == '"') {
			q = m + i + 1;
			close = strchr(q, '"');
			tok = close != NULL ? (size_t)(close - q) : 0;
			if (close != NULL && token_plain(q, tok))
				clean_copy(out + j, sizeof(out) - j, m + i, tok + 2);
			else
				clean_copy(out + j, sizeof(out) - j, "\"...\"", 5);
			j = strlen(out);
			if (close == NULL)
				break;
			i = (size_t)(close - m) + 1;
			continue;
		}
		clean_copy(out + j, sizeof(out) - j, m + i, 1);
		j = strlen(out);
		i++;
	}
	guard_fail(g, "Could not parse SQL query: %s", out);
}

/*
 * one_statement - the scanner's view: no ';' token except, optionally, one
 * last (comments aside). The parser drops empty statements, so "SELECT 1; ;"
 * and "; SELECT 1" parse to one statement and are caught only here.
 */
static int one_statement(const char *sql)
{
	PgQueryScanResult sr = pg_query_scan(sql);
	PgQuery__ScanResult *s = NULL;
	int ok = 0, seen = 0;

	if (sr.error != NULL)
		goto out;
	s = pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
	if (s == NULL)
		goto out;
	ok = 1;
	for (size_t i = 0; i < s->n_tokens && ok; i++) {
		PgQuery__Token t = s->tokens[i]->token;
		if (t == PG_QUERY__TOKEN__SQL_COMMENT || t == PG_QUERY__TOKEN__C_COMMENT)
			continue;
		if (seen)
			ok = 0;
		else if (t == PG_QUERY__TOKEN__ASCII_59)
			seen = 1;
	}
out:
	if (s != NULL)
		pg_query__scan_result__free_unpacked(s, NULL);
	pg_query_free_scan_result(sr);
	return ok;
}

/* deparse - pack the edited tree and turn it back into SQL (malloc'd) */
static char *deparse(struct guard *g, const PgQuery__ParseResult *tree)
{
	size_t n = pg_query__parse_result__get_packed_size(tree);
	uint8_t *buf = malloc(n > 0 ? n : 1);
	PgQueryProtobuf pb;
	PgQueryDeparseResult dr;
	char *sql = NULL;

	if (buf == NULL) {
		guard_fail(g, MSG_VALIDATE);
		return NULL;
	}
	pb.len = pg_query__parse_result__pack(tree, buf);
	pb.data = (char *)buf;
	dr = pg_query_deparse_protobuf(pb);
	if (dr.error == NULL && dr.query != NULL)
		sql = strdup(dr.query);
	if (sql == NULL)
		guard_fail(g, MSG_VALIDATE);
	pg_query_free_deparse_result(dr);
	free(buf);
	return sql;
}

/* guard_run - rules 2 to 8 on one text; the rewritten SQL or NULL */
static char *guard_run(struct guard *g, const char *sql)
{
	PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
	PgQuery__ParseResult *tree = NULL;
	PgQuery__RawStmt *raw;
	char *out = NULL;

	if (pr.error != NULL) {
		parse_failure(g, pr.error);
		goto done;
	}
	tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
					      (const uint8_t *)pr.parse_tree.data);
	if (tree == NULL) {
		guard_fail(g, MSG_VALIDATE);
		goto done;
	}
	if (tree->n_stmts != 1 || !one_statement(sql)) {
		guard_fail(g, MSG_ONE_STATEMENT);
		goto done;
	}
	raw = tree->stmts[0];
	if (raw == NULL || raw->stmt == NULL) {
		guard_fail(g, MSG_VALIDATE);
		goto done;
	}
	if (raw->stmt->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) {
		guard_fail(g, MSG_ONLY_SELECT);
		goto done;
	}
	walk_msg(g, &raw->stmt->base, NULL);
	if (!g->failed)
		out = deparse(g, tree);
done:
	if (tree != NULL)
		pg_query__parse_result__free_unpacked(tree, NULL);
	pg_query_free_protobuf_parse_result(pr);
	return out;
}

/* utf8_valid - strict UTF-8: no overlong forms, no surrogates, at most U+10FFFF */
static int utf8_valid(const unsigned char *s)
{
	while (*s) {
		unsigned char c = *s;
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		for (size_t i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += n + 1;
	}
	return 1;
}

/* too_long - more than SQLGUARD_MAX_LENGTH characters (or 4x as many bytes) */
static int too_long(const char *sql)
{
	size_t chars = 0, bytes = 0;

	for (const char *p = sql; *p; p++) {
		if (++bytes > 4 * (size_t)SQLGUARD_MAX_LENGTH)
			return 1;
		if (((unsigned char)*p & 0xc0) != 0x80 && ++chars > SQLGUARD_MAX_LENGTH)
			return 1;
	}
	return 0;
}

/* sqlguard_check - validate the researcher's SQL and return the SQL to execute */
char *sqlguard_check(const char *sql, char *err, size_t errlen)
{
	struct guard g = {err, errlen, 0, 0, 0};
	struct guard again = {NULL, 0, 0, 0, 0};
	char *out, *twice;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (sql == NULL) {
		guard_fail(&g, MSG_VALIDATE);
		return NULL;
	}
	if (too_long(sql)) {
		guard_fail(&g, "Query exceeds the maximum length of %d characters.",
			   SQLGUARD_MAX_LENGTH);
		return NULL;
	}
	if (!utf8_valid((const unsigned char *)sql)) {
		guard_fail(&g, "Query is not valid UTF-8.");
		return NULL;
	}
	if ((out = guard_run(&g, sql)) == NULL) {
		if (!g.failed)
			guard_fail(&g, MSG_VALIDATE);
		return NULL;
	}
	/*
	 * What runs is the deparser's text, so check that text too: it must pass
	 * with nothing left to pin and come back unchanged. A deparser that
	 * printed something the parser reads differently is caught here rather
	 * than at the database.
	 */
	twice = guard_run(&again, out);
	if (twice == NULL || again.rewrites != 0 || strcmp(out, twice) != 0) {
		free(out);
		free(twice);
		guard_fail(&g, MSG_VALIDATE);
		return NULL;
	}
	free(twice);
	return out;
}
