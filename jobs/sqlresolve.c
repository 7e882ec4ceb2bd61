/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlresolve - names against the OMOP catalog, and subject lineage (see sqlresolve.h).
 *
 * One pass over the checked tree. Each query level keeps the FROM items it can
 * see (struct rel: a name and its columns, each column with a lineage); levels
 * chain outwards for correlated references, CTE lists chain like the guard's
 * scopes. Column names are pointers into the tree, the catalog or static text,
 * never copied; the arrays that hold them live in one arena freed at the end.
 * Whatever this module cannot place is OTHER, never PERSON: an uncertainty makes
 * a cohort uncountable, never countable.
 */
#include "jobs/sqlresolve.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#define MSG_VALIDATE "Could not validate query."
#define RESOLVE_MAX_DEPTH 4000

struct col {
	const char *name;
	unsigned char lin;
};

struct cols {
	int n;
	int known;		/* 0: the columns are not known */
	struct col *v;
};

struct rel {
	const char *name;	/* the alias, or the table / CTE / function name */
	int omop_plain;		/* an omop table without alias (omop.t.c may name it) */
	struct cols c;
	int omop_table;		/* an omop table: its system columns exist too */
};

/* the system columns every table has (never a function call) */
static const char *const system_columns[] = {"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"};

struct level {
	const struct level *up;
	struct rel *rels;
	int nrels, cap;
	struct cols *items;	/* each FROM item's columns, for SELECT * */
	int nitems, icap;
	const struct cols *outs;	/* the output names (ORDER BY, GROUP BY aliases) */
};

struct cte {
	const char *name;
	struct cols c;
};

struct ctescope {
	const struct ctescope *up;
	struct cte *v;
	int n;
};

struct rs {
	const struct omop_catalog *cat;
	char *err;
	size_t errlen;
	int failed, depth;
	void **arena;
	size_t narena, carena;
};

static void walk_expr(struct rs *r, ProtobufCMessage *m, const struct level *L,
		      const struct ctescope *cs);
static void resolve_select(struct rs *r, PgQuery__SelectStmt *s, const struct level *up,
			   const struct ctescope *cs, struct cols *out);

/* rs_fail - the first failure wins */
static void __attribute__((format(printf, 2, 3))) rs_fail(struct rs *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	r->failed = 1;
	if (r->err == NULL || r->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(r->err, r->errlen, fmt, ap);
	va_end(ap);
	/* identifiers from the query: no control characters in a message */
	for (char *p = r->err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* rs_alloc - zeroed memory that lives until the pass ends */
static void *rs_alloc(struct rs *r, size_t n)
{
	void *p;

	if (r->narena == r->carena) {
		size_t c = r->carena ? 2 * r->carena : 64;
		void **a = realloc(r->arena, c * sizeof(*a));
		if (a == NULL)
			goto oom;
		r->arena = a;
		r->carena = c;
	}
	if ((p = calloc(1, n ? n : 1)) == NULL)
		goto oom;
	r->arena[r->narena++] = p;
	return p;
oom:
	rs_fail(r, MSG_VALIDATE);
	return NULL;
}

/* node_string - the text of a String node, or NULL */
static const char *node_string(const PgQuery__Node *n)
{
	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_STRING || n->string == NULL)
		return NULL;
	return n->string->sval;
}

static int nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* cols_make - n columns, all OTHER, unnamed */
static int cols_make(struct rs *r, struct cols *c, int n)
{
	c->n = n;
	c->known = 1;
	c->v = rs_alloc(r, (size_t)(n > 0 ? n : 1) * sizeof(*c->v));
	return c->v != NULL ? 0 : -1;
}

/* cols_rename - an alias list renames the first columns, lineage kept */
static void cols_rename(struct rs *r, struct cols *c, PgQuery__Node **names, size_t n)
{
	struct cols o;

	if (n == 0 || !c->known)
		return;
	if ((int)n > c->n) {
		rs_fail(r, MSG_VALIDATE);	/* more aliases than columns: PostgreSQL refuses */
		return;
	}
	if (cols_make(r, &o, c->n) < 0)
		return;
	for (int i = 0; i < c->n; i++) {
		o.v[i] = c->v[i];
		if ((size_t)i < n && node_string(names[i]) != NULL)
			o.v[i].name = node_string(names[i]);
	}
	*c = o;
}

/* level_add - a visible FROM item (name may be NULL: star expansion only) */
static void level_add(struct rs *r, struct level *L, const char *name, int omop_plain,
		      int omop_table, const struct cols *c)
{
	if (name != NULL) {
		if (L->nrels == L->cap) {
			int cap = L->cap ? 2 * L->cap : 8;
			struct rel *v = rs_alloc(r, (size_t)cap * sizeof(*v));
			if (v == NULL)
				return;
			if (L->nrels)
				memcpy(v, L->rels, (size_t)L->nrels * sizeof(*v));
			L->rels = v;
			L->cap = cap;
		}
		L->rels[L->nrels++] = (struct rel){name, omop_plain, *c, omop_table};
	}
}

/* level_item - a top-level FROM item's columns, in order, for SELECT * */
static void level_item(struct rs *r, struct level *L, const struct cols *c)
{
	if (L->nitems == L->icap) {
		int cap = L->icap ? 2 * L->icap : 8;
		struct cols *v = rs_alloc(r, (size_t)cap * sizeof(*v));
		if (v == NULL)
			return;
		if (L->nitems)
			memcpy(v, L->items, (size_t)L->nitems * sizeof(*v));
		L->items = v;
		L->icap = cap;
	}
	L->items[L->nitems++] = *c;
}

/* catalog_table - the omop table of that name, or NULL */
static const struct omop_table *catalog_table(const struct rs *r, const char *name)
{
	for (int i = 0; r->cat != NULL && i < r->cat->n; i++)
		if (strcmp(r->cat->tables[i].name, name) == 0)
			return &r->cat->tables[i];
	return NULL;
}

/* cte_find - the visible CTE of that name, innermost first */
static const struct cte *cte_find(const struct ctescope *cs, const char *name)
{
	for (; cs != NULL; cs = cs->up)
		for (int i = cs->n - 1; i >= 0; i--)
			if (strcmp(cs->v[i].name, name) == 0)
				return &cs->v[i];
	return NULL;
}

/* lin_and - the lineage two sources agree on, else OTHER */
static unsigned char lin_and(unsigned char a, unsigned char b)
{
	return a == b ? a : SQLRESOLVE_OTHER;
}

/* rel_column - the lineage of column name in c (-1: not a column; all its copies agree) */
static int rel_column(const struct cols *c, const char *name)
{
	int found = -1;

	for (int i = 0; i < c->n; i++)
		if (c->v[i].name != NULL && strcmp(c->v[i].name, name) == 0)
			found = found < 0 ? c->v[i].lin : lin_and((unsigned char)found, c->v[i].lin);
	return found;
}

/* find_rel - the nearest visible FROM item of that name (omop_only: unaliased omop tables) */
static const struct rel *find_rel(const struct level *L, const char *name, int omop_only)
{
	for (; L != NULL; L = L->up)
		for (int i = L->nrels - 1; i >= 0; i--)
			if (strcmp(L->rels[i].name, name) == 0 && (!omop_only || L->rels[i].omop_plain))
				return &L->rels[i];
	return NULL;
}

/* colref_name - "a.b.c" of a column reference, for a message */
static void colref_name(const PgQuery__ColumnRef *cr, char *out, size_t outlen)
{
	size_t j = 0;

	out[0] = '\0';
	for (size_t i = 0; i < cr->n_fields && j + 1 < outlen; i++) {
		const char *f = node_string(cr->fields[i]);
		int w = snprintf(out + j, outlen - j, "%s%.100s", i ? "." : "", f ? f : "*");
		if (w < 0)
			break;
		j += (size_t)w;
	}
}

/*
 * check_colref - is this reference a column of what it names? Its lineage, or
 * -1 after a failure.
 */
static int check_colref(struct rs *r, const PgQuery__ColumnRef *cr, const struct level *L)
{
	char shown[320];
	const char *a, *b, *c;
	const struct rel *rel;
	int lin;

	if (cr->n_fields == 0) {
		rs_fail(r, MSG_VALIDATE);
		return -1;
	}
	if (cr->n_fields == 1) {
		int all_known = 1;

		if ((a = node_string(cr->fields[0])) == NULL)
			return SQLRESOLVE_OTHER;	/* SELECT * */
		for (const struct level *l = L; l != NULL; l = l->up) {
			int found = -1;
			for (int i = 0; i < l->nrels; i++) {
				int x = rel_column(&l->rels[i].c, a);
				if (!l->rels[i].c.known)
					all_known = 0;
				if (x >= 0)
					found = found < 0 ? x : lin_and((unsigned char)found,
									(unsigned char)x);
			}
			if (found >= 0)
				return found;
			if (!all_known)
				return SQLRESOLVE_OTHER;	/* the database decides */
		}
		if (find_rel(L, a, 0) != NULL)
			return SQLRESOLVE_OTHER;	/* a whole-row reference */
		if (L != NULL && L->outs != NULL && rel_column(L->outs, a) >= 0)
			return SQLRESOLVE_OTHER;	/* an output alias (ORDER BY, GROUP BY) */
		goto fail_column;
	}
	if (cr->n_fields == 2) {
		a = node_string(cr->fields[0]);
		b = node_string(cr->fields[1]);
		rel = a != NULL ? find_rel(L, a, 0) : NULL;
	} else if (cr->n_fields == 3) {
		a = node_string(cr->fields[0]);
		c = node_string(cr->fields[1]);
		b = node_string(cr->fields[2]);
		rel = (a != NULL && c != NULL && strcmp(a, "omop") == 0) ? find_rel(L, c, 1) : NULL;
	} else {
		goto fail_column;
	}
	if (rel == NULL)
		goto fail_column;
	if (b == NULL)
		return SQLRESOLVE_OTHER;	/* rel.* */
	if (rel->omop_table)
		for (size_t i = 0; i < sizeof(system_columns) / sizeof(system_columns[0]); i++)
			if (strcmp(b, system_columns[i]) == 0)
				return SQLRESOLVE_OTHER;
	if (!rel->c.known || (lin = rel_column(&rel->c, b)) < 0)
		goto fail_column;
	return lin;
fail_column:
	colref_name(cr, shown, sizeof(shown));
	rs_fail(r, "The column '%s' does not exist.", shown);
	return -1;
}

/* walk_fields - every message-typed field of m through walk_expr (active oneof only) */
static void walk_fields(struct rs *r, ProtobufCMessage *m, const struct level *L,
			const struct ctescope *cs)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char *base = (char *)m;

	for (unsigned i = 0; i < d->n_fields && !r->failed; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char *slot = base + f->offset;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(size_t *)(base + f->quantifier_offset);
			ProtobufCMessage **items = *(ProtobufCMessage ***)slot;
			for (size_t j = 0; j < n && !r->failed; j++)
				walk_expr(r, items[j], L, cs);
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		walk_expr(r, *(ProtobufCMessage **)slot, L, cs);
	}
}

/* walk_expr - check every column reference and every subquery in an expression */
static void walk_expr(struct rs *r, ProtobufCMessage *m, const struct level *L,
		      const struct ctescope *cs)
{
	const ProtobufCMessageDescriptor *d;

	if (m == NULL || r->failed)
		return;
	if (++r->depth > RESOLVE_MAX_DEPTH) {
		rs_fail(r, "Query is nested too deeply.");
		r->depth--;
		return;
	}
	d = m->descriptor;
	if (d == &pg_query__column_ref__descriptor) {
		check_colref(r, (const PgQuery__ColumnRef *)m, L);
	} else if (d == &pg_query__select_stmt__descriptor) {
		struct cols ignored;
		resolve_select(r, (PgQuery__SelectStmt *)m, L, cs, &ignored);
	} else {
		walk_fields(r, m, L, cs);
	}
	r->depth--;
}

/* figure_colname - the name PostgreSQL gives an output column without AS */
static const char *figure_colname(const PgQuery__Node *n)
{
	if (n == NULL)
		return "?column?";
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_COLUMN_REF: {
		const PgQuery__ColumnRef *cr = n->column_ref;
		const char *last = cr->n_fields ? node_string(cr->fields[cr->n_fields - 1]) : NULL;
		return last ? last : "?column?";
	}
	case PG_QUERY__NODE__NODE_FUNC_CALL: {
		const PgQuery__FuncCall *fc = n->func_call;
		const char *last = fc->n_funcname ? node_string(fc->funcname[fc->n_funcname - 1]) : NULL;
		return last ? last : "?column?";
	}
	case PG_QUERY__NODE__NODE_TYPE_CAST: {
		const char *inner = figure_colname(n->type_cast->arg);
		const PgQuery__TypeName *t = n->type_cast->type_name;
		if (strcmp(inner, "?column?") != 0 || t == NULL || t->n_names == 0)
			return inner;
		inner = node_string(t->names[t->n_names - 1]);
		return inner ? inner : "?column?";
	}
	case PG_QUERY__NODE__NODE_CASE_EXPR:
		return "case";
	case PG_QUERY__NODE__NODE_COALESCE_EXPR:
		return "coalesce";
	case PG_QUERY__NODE__NODE_MIN_MAX_EXPR:
		return n->min_max_expr->op == PG_QUERY__MIN_MAX_OP__IS_GREATEST ? "greatest" : "least";
	case PG_QUERY__NODE__NODE_A_EXPR:
		return n->a_expr->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NULLIF ? "nullif" : "?column?";
	case PG_QUERY__NODE__NODE_A_ARRAY_EXPR:
		return "array";
	case PG_QUERY__NODE__NODE_ROW_EXPR:
		return "row";
	case PG_QUERY__NODE__NODE_GROUPING_FUNC:
		return "grouping";
	case PG_QUERY__NODE__NODE_SUB_LINK:
		if (n->sub_link->sub_link_type == PG_QUERY__SUB_LINK_TYPE__EXISTS_SUBLINK)
			return "exists";
		if (n->sub_link->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ARRAY_SUBLINK)
			return "array";
		if (n->sub_link->sub_link_type == PG_QUERY__SUB_LINK_TYPE__EXPR_SUBLINK &&
		    n->sub_link->subselect != NULL &&
		    n->sub_link->subselect->node_case == PG_QUERY__NODE__NODE_SELECT_STMT) {
			const PgQuery__SelectStmt *s = n->sub_link->subselect->select_stmt;
			if (s->n_target_list > 0 && s->target_list[0]->node_case ==
						     PG_QUERY__NODE__NODE_RES_TARGET) {
				const PgQuery__ResTarget *rt = s->target_list[0]->res_target;
				return nonempty(rt->name) ? rt->name : figure_colname(rt->val);
			}
		}
		return "?column?";
	default:
		return "?column?";
	}
}

/* add_from - one FROM item into L; its columns (for * and joins) into *out */
static void add_from(struct rs *r, struct level *L, PgQuery__Node *n, const struct ctescope *cs,
		     struct cols *out)
{
	memset(out, 0, sizeof(*out));
	if (n == NULL || r->failed) {
		rs_fail(r, MSG_VALIDATE);
		return;
	}
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_RANGE_VAR: {
		const PgQuery__RangeVar *rv = n->range_var;
		const PgQuery__Alias *al = rv->alias;
		const char *name = al != NULL && nonempty(al->aliasname) ? al->aliasname : rv->relname;

		if (nonempty(rv->schemaname)) {
			const struct omop_table *t = catalog_table(r, rv->relname);
			if (strcmp(rv->schemaname, "omop") != 0 || t == NULL) {
				rs_fail(r, "The table '%s' does not exist.", rv->relname);
				return;
			}
			if (cols_make(r, out, t->ncols) < 0)
				return;
			for (int i = 0; i < t->ncols; i++) {
				out->v[i].name = t->cols[i];
				if (strcmp(t->cols[i], "person_id") == 0)
					out->v[i].lin = SQLRESOLVE_PERSON;
				else if (strcmp(t->cols[i], "accession_id") == 0 &&
					 strcmp(t->name, "image_occurrence") == 0)
					out->v[i].lin = SQLRESOLVE_ACCESSION;
			}
		} else {
			const struct cte *c = cte_find(cs, rv->relname);
			if (c == NULL) {
				rs_fail(r, MSG_VALIDATE);	/* the guard pinned everything else */
				return;
			}
			*out = c->c;
		}
		if (al != NULL)
			cols_rename(r, out, al->colnames, al->n_colnames);
		level_add(r, L, name, nonempty(rv->schemaname) && al == NULL, nonempty(rv->schemaname),
			  out);
		return;
	}
	case PG_QUERY__NODE__NODE_RANGE_SUBSELECT: {
		const PgQuery__RangeSubselect *sub = n->range_subselect;
		if (sub->subquery == NULL || sub->subquery->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) {
			rs_fail(r, MSG_VALIDATE);
			return;
		}
		resolve_select(r, sub->subquery->select_stmt, sub->lateral ? L : L->up, cs, out);
		if (r->failed)
			return;
		if (sub->alias != NULL) {
			cols_rename(r, out, sub->alias->colnames, sub->alias->n_colnames);
			level_add(r, L, sub->alias->aliasname, 0, 0, out);
		}
		return;
	}
	case PG_QUERY__NODE__NODE_RANGE_FUNCTION: {
		PgQuery__RangeFunction *rf = n->range_function;
		const PgQuery__Alias *al = rf->alias;
		const char *fname = NULL;
		int ncol = 0;

		walk_fields(r, &rf->base, L, cs);
		if (r->failed)
			return;
		/* each function: one column named after it (the alias, for a lone function) */
		for (size_t i = 0; i < rf->n_functions; i++) {
			const PgQuery__Node *item = rf->functions[i];
			const PgQuery__FuncCall *fc;
			if (item == NULL || item->node_case != PG_QUERY__NODE__NODE_LIST ||
			    item->list->n_items < 1 || item->list->items[0]->node_case !=
							   PG_QUERY__NODE__NODE_FUNC_CALL) {
				rs_fail(r, MSG_VALIDATE);
				return;
			}
			fc = item->list->items[0]->func_call;
			if (fc->n_funcname != 1 || (fc->n_args > 1 && node_string(fc->funcname[0]) != NULL &&
						    strcmp(node_string(fc->funcname[0]), "unnest") == 0))
				out->known = -1;	/* unnest(a, b): several columns */
			if (i == 0)
				fname = node_string(fc->funcname[0]);
			ncol++;
		}
		if (fname == NULL) {
			rs_fail(r, MSG_VALIDATE);
			return;
		}
		int unknown = out->known == -1;
		if (cols_make(r, out, ncol + (rf->ordinality ? 1 : 0)) < 0)
			return;
		for (size_t i = 0; i < rf->n_functions; i++)
			out->v[i].name = node_string(rf->functions[i]->list->items[0]->func_call->funcname[0]);
		if (rf->n_functions == 1 && al != NULL && nonempty(al->aliasname))
			out->v[0].name = al->aliasname;
		if (rf->ordinality)
			out->v[ncol].name = "ordinality";
		if (unknown && (al == NULL || al->n_colnames == 0))
			out->known = 0;
		if (al != NULL && al->n_colnames > 0) {
			if (unknown) {
				/* the alias list names them all: take it as the columns */
				if (cols_make(r, out, (int)al->n_colnames) < 0)
					return;
				for (size_t i = 0; i < al->n_colnames; i++)
					out->v[i].name = node_string(al->colnames[i]);
			} else {
				cols_rename(r, out, al->colnames, al->n_colnames);
			}
		}
		level_add(r, L, al != NULL && nonempty(al->aliasname) ? al->aliasname : fname, 0, 0, out);
		return;
	}
	case PG_QUERY__NODE__NODE_RANGE_TABLE_SAMPLE: {
		PgQuery__RangeTableSample *ts = n->range_table_sample;
		add_from(r, L, ts->relation, cs, out);
		for (size_t i = 0; i < ts->n_args && !r->failed; i++)
			walk_expr(r, &ts->args[i]->base, L, cs);
		if (ts->repeatable != NULL)
			walk_expr(r, &ts->repeatable->base, L, cs);
		return;
	}
	case PG_QUERY__NODE__NODE_JOIN_EXPR: {
		PgQuery__JoinExpr *j = n->join_expr;
		struct cols lc, rc;
		const char **merged = NULL;
		int nm = 0, k = 0;

		add_from(r, L, j->larg, cs, &lc);
		add_from(r, L, j->rarg, cs, &rc);
		if (r->failed)
			return;
		if (!lc.known || !rc.known) {
			out->known = 0;
		} else {
			/* USING / NATURAL: the merged columns first, then each side's others */
			merged = rs_alloc(r, (size_t)(lc.n + rc.n + 1) * sizeof(*merged));
			if (merged == NULL)
				return;
			if (j->is_natural) {
				for (int i = 0; i < lc.n; i++)
					if (rel_column(&rc, lc.v[i].name) >= 0)
						merged[nm++] = lc.v[i].name;
			} else {
				for (size_t i = 0; i < j->n_using_clause; i++)
					if ((merged[nm] = node_string(j->using_clause[i])) != NULL)
						nm++;
			}
			if (cols_make(r, out, lc.n + rc.n - nm) < 0)
				return;
			for (int i = 0; i < nm; i++) {
				int a = rel_column(&lc, merged[i]), b = rel_column(&rc, merged[i]);
				out->v[k].name = merged[i];
				out->v[k++].lin = (a >= 0 && b >= 0) ? lin_and((unsigned char)a,
									       (unsigned char)b)
								     : SQLRESOLVE_OTHER;
			}
			for (int side = 0; side < 2; side++) {
				const struct cols *s = side ? &rc : &lc;
				for (int i = 0; i < s->n && k < out->n; i++) {
					int is_merged = 0;
					for (int m = 0; m < nm; m++)
						if (s->v[i].name && strcmp(s->v[i].name, merged[m]) == 0)
							is_merged = 1;
					if (!is_merged)
						out->v[k++] = s->v[i];
				}
			}
			out->n = k;
		}
		if (j->quals != NULL)
			walk_expr(r, &j->quals->base, L, cs);
		if (j->alias != NULL && nonempty(j->alias->aliasname)) {
			cols_rename(r, out, j->alias->colnames, j->alias->n_colnames);
			level_add(r, L, j->alias->aliasname, 0, 0, out);
		}
		return;
	}
	default:
		rs_fail(r, MSG_VALIDATE);
	}
}

/* target_outputs - the output columns of one plain SELECT level */
static void target_outputs(struct rs *r, const PgQuery__SelectStmt *s, struct level *L,
			   const struct ctescope *cs, struct cols *out)
{
	int n = 0, k = 0, known = 1;

	/* first the count: a star stands for every column of what it names */
	for (size_t i = 0; i < s->n_target_list; i++) {
		const PgQuery__ResTarget *rt;
		const PgQuery__ColumnRef *cr;
		if (s->target_list[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET) {
			rs_fail(r, MSG_VALIDATE);
			return;
		}
		rt = s->target_list[i]->res_target;
		if (rt->val != NULL && rt->val->node_case == PG_QUERY__NODE__NODE_COLUMN_REF &&
		    (cr = rt->val->column_ref)->n_fields > 0 &&
		    node_string(cr->fields[cr->n_fields - 1]) == NULL) {
			if (cr->n_fields == 1) {
				for (int j = 0; j < L->nitems; j++) {
					known &= L->items[j].known;
					n += L->items[j].n;
				}
			} else {
				const struct rel *rel = check_colref(r, cr, L) < 0 ? NULL :
					find_rel(L, node_string(cr->fields[cr->n_fields - 2]),
						 cr->n_fields == 3);
				if (rel == NULL) {
					rs_fail(r, MSG_VALIDATE);
					return;
				}
				known &= rel->c.known;
				n += rel->c.n;
			}
		} else {
			n++;
		}
	}
	if (!known) {
		out->known = 0;
		out->n = 0;
		for (size_t i = 0; i < s->n_target_list && !r->failed; i++)
			walk_expr(r, &s->target_list[i]->base, L, cs);
		return;
	}
	if (cols_make(r, out, n) < 0)
		return;
	for (size_t i = 0; i < s->n_target_list && !r->failed; i++) {
		PgQuery__ResTarget *rt = s->target_list[i]->res_target;
		const PgQuery__ColumnRef *cr = rt->val != NULL &&
			rt->val->node_case == PG_QUERY__NODE__NODE_COLUMN_REF ? rt->val->column_ref : NULL;

		if (cr != NULL && cr->n_fields > 0 && node_string(cr->fields[cr->n_fields - 1]) == NULL) {
			if (cr->n_fields == 1) {
				for (int j = 0; j < L->nitems; j++)
					for (int c = 0; c < L->items[j].n; c++)
						out->v[k++] = L->items[j].v[c];
			} else {
				const struct rel *rel = find_rel(L, node_string(cr->fields[cr->n_fields - 2]),
								 cr->n_fields == 3);
				for (int c = 0; rel != NULL && c < rel->c.n; c++)
					out->v[k++] = rel->c.v[c];
			}
			continue;
		}
		out->v[k].name = nonempty(rt->name) ? rt->name : figure_colname(rt->val);
		if (cr != NULL) {
			int lin = check_colref(r, cr, L);
			out->v[k].lin = lin > 0 ? (unsigned char)lin : SQLRESOLVE_OTHER;
		} else {
			walk_expr(r, &rt->base, L, cs);
		}
		k++;
	}
}

/* resolve_with - the CTE list of one level, each member resolved in its own scope */
static void resolve_with(struct rs *r, const PgQuery__WithClause *w, const struct level *up,
			 const struct ctescope *cs, struct ctescope *inner)
{
	struct cte *v = rs_alloc(r, (w->n_ctes + 1) * sizeof(*v));

	inner->up = cs;
	inner->v = v;
	inner->n = 0;
	if (v == NULL)
		return;
	for (size_t i = 0; i < w->n_ctes; i++) {
		const PgQuery__Node *n = w->ctes[i];
		const PgQuery__CommonTableExpr *c;
		if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR ||
		    (c = n->common_table_expr)->ctequery == NULL ||
		    c->ctequery->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) {
			rs_fail(r, MSG_VALIDATE);
			return;
		}
		v[i].name = c->ctename;
		v[i].c.known = 0;	/* until resolved: a recursive reference knows no columns */
		if (c->n_aliascolnames > 0 && cols_make(r, &v[i].c, (int)c->n_aliascolnames) == 0)
			for (size_t k = 0; k < c->n_aliascolnames; k++)
				v[i].c.v[k].name = node_string(c->aliascolnames[k]);
	}
	for (size_t i = 0; i < w->n_ctes && !r->failed; i++) {
		const PgQuery__CommonTableExpr *c = w->ctes[i]->common_table_expr;
		PgQuery__SelectStmt *q = c->ctequery->select_stmt;
		struct ctescope own = {cs, v, w->recursive ? (int)w->n_ctes : (int)i};
		struct cols got;

		if (w->recursive && !v[i].c.known && q->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
		    q->larg != NULL) {
			/* the non-recursive arm names the columns; their lineage stays OTHER */
			struct ctescope first = {cs, v, (int)i};
			resolve_select(r, q->larg, up, &first, &got);
			if (r->failed)
				return;
			if (got.known && cols_make(r, &v[i].c, got.n) == 0)
				for (int k = 0; k < got.n; k++)
					v[i].c.v[k].name = got.v[k].name;
		}
		resolve_select(r, q, up, &own, &got);
		if (r->failed)
			return;
		cols_rename(r, &got, c->aliascolnames, c->n_aliascolnames);
		v[i].c = got;
		inner->n = (int)i + 1;
	}
	inner->n = (int)w->n_ctes;
}

/* resolve_select - check one query level (and all below it); its output columns */
static void resolve_select(struct rs *r, PgQuery__SelectStmt *s, const struct level *up,
			   const struct ctescope *cs, struct cols *out)
{
	struct ctescope inner;
	struct level L = {0};

	memset(out, 0, sizeof(*out));
	if (s == NULL || r->failed) {
		rs_fail(r, MSG_VALIDATE);
		return;
	}
	if (++r->depth > RESOLVE_MAX_DEPTH) {
		rs_fail(r, "Query is nested too deeply.");
		r->depth--;
		return;
	}
	if (s->with_clause != NULL) {
		resolve_with(r, s->with_clause, up, cs, &inner);
		cs = &inner;
	}
	L.up = up;
	if (r->failed) {
		/* nothing */
	} else if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE) {
		struct cols a, b;
		resolve_select(r, s->larg, up, cs, &a);
		resolve_select(r, s->rarg, up, cs, &b);
		if (!r->failed) {
			*out = a;
			if (a.known && b.known && cols_make(r, out, a.n) == 0)
				for (int i = 0; i < a.n; i++) {
					out->v[i].name = a.v[i].name;
					out->v[i].lin = i < b.n && a.n == b.n ? lin_and(a.v[i].lin, b.v[i].lin)
									   : SQLRESOLVE_OTHER;
				}
			else
				out->known = 0;
		}
	} else if (s->n_values_lists > 0) {
		const PgQuery__Node *first = s->values_lists[0];
		int n = first != NULL && first->node_case == PG_QUERY__NODE__NODE_LIST
				? (int)first->list->n_items : 0;
		static const char *const names[] = {"column1", "column2", "column3", "column4",
						    "column5", "column6", "column7", "column8"};
		for (size_t i = 0; i < s->n_values_lists && !r->failed; i++)
			walk_expr(r, &s->values_lists[i]->base, &L, cs);
		if (!r->failed && cols_make(r, out, n) == 0)
			for (int i = 0; i < n; i++)
				out->v[i].name = i < 8 ? names[i] : "column";
	} else {
		struct cols item;
		for (size_t i = 0; i < s->n_from_clause && !r->failed; i++) {
			add_from(r, &L, s->from_clause[i], cs, &item);
			if (!r->failed)
				level_item(r, &L, &item);
		}
		if (!r->failed)
			target_outputs(r, s, &L, cs, out);
		L.outs = out;
	}
	/* the clauses that see the level's FROM items (and, for ORDER BY, its outputs) */
	if (!r->failed && s->where_clause != NULL)
		walk_expr(r, &s->where_clause->base, &L, cs);
	if (!r->failed && s->having_clause != NULL)
		walk_expr(r, &s->having_clause->base, &L, cs);
	for (size_t i = 0; i < s->n_group_clause && !r->failed; i++)
		walk_expr(r, &s->group_clause[i]->base, &L, cs);
	for (size_t i = 0; i < s->n_window_clause && !r->failed; i++)
		walk_expr(r, &s->window_clause[i]->base, &L, cs);
	for (size_t i = 0; i < s->n_distinct_clause && !r->failed; i++)
		walk_expr(r, &s->distinct_clause[i]->base, &L, cs);
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE)
		L.outs = out;
	for (size_t i = 0; i < s->n_sort_clause && !r->failed; i++)
		walk_expr(r, &s->sort_clause[i]->base, &L, cs);
	r->depth--;
}

/* sqlresolve_check - see sqlresolve.h */
int sqlresolve_check(const char *checked_sql, const struct omop_catalog *cat,
		     struct sqlresolve_output *out, char *err, size_t errlen)
{
	struct rs r = {cat, err, errlen, 0, 0, NULL, 0, 0};
	PgQueryProtobufParseResult pr;
	PgQuery__ParseResult *tree = NULL;
	struct cols top = {0};

	out->n = -1;
	out->lineage = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (checked_sql == NULL) {
		rs_fail(&r, MSG_VALIDATE);
		return -1;
	}
	pr = pg_query_parse_protobuf(checked_sql);
	if (pr.error == NULL)
		tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
						      (const uint8_t *)pr.parse_tree.data);
	if (tree == NULL || tree->n_stmts != 1 || tree->stmts[0]->stmt == NULL ||
	    tree->stmts[0]->stmt->node_case != PG_QUERY__NODE__NODE_SELECT_STMT)
		rs_fail(&r, MSG_VALIDATE);
	else
		resolve_select(&r, tree->stmts[0]->stmt->select_stmt, NULL, NULL, &top);
	if (!r.failed && top.known) {
		out->lineage = malloc((size_t)(top.n > 0 ? top.n : 1));
		if (out->lineage == NULL) {
			rs_fail(&r, MSG_VALIDATE);
		} else {
			out->n = top.n;
			for (int i = 0; i < top.n; i++)
				out->lineage[i] = top.v[i].lin;
		}
	}
	if (tree != NULL)
		pg_query__parse_result__free_unpacked(tree, NULL);
	pg_query_free_protobuf_parse_result(pr);
	for (size_t i = 0; i < r.narena; i++)
		free(r.arena[i]);
	free(r.arena);
	return r.failed ? -1 : 0;
}

/* sqlresolve_output_free - release the lineage */
void sqlresolve_output_free(struct sqlresolve_output *out)
{
	free(out->lineage);
	out->lineage = NULL;
	out->n = -1;
}
