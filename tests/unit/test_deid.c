/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_deid - de-identification (lib/deid.c) and the DICOM dataset shim under it
 * (lib/dicom_dataset.cc), on real files: the sample files of Debian's python3-pydicom,
 * copied to a temporary directory first (the tests skip when they are absent).
 *
 * After deid_instance(), a save and a reload: no attribute the table removes is left
 * at any level, no private or unknown-VR attribute is left anywhere, PatientName and
 * PatientID are the pseudonym and StudyDescription the accession, emptied and
 * dummied attributes hold nothing else, every instance UID is 2.25.<HMAC> (a
 * known-answer vector computed with Python's hmac), the same original gives the same
 * new UID in two instances of one series and in references inside sequences, class
 * UIDs are kept, PatientIdentityRemoved is YES, the original identifying strings
 * occur nowhere in the written file, and Pixel Data is byte-identical in every
 * transfer syntax of the samples (big endian, implicit, deflate, RLE, JPEG, JPEG 2000,
 * JPEG-LS). Bad input: truncated files, value lengths beyond the end of the file, a
 * text file, a directory, a symbolic link, a missing file: each a clean error of the
 * right category. docs/deidentification.md must list exactly the rule table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/deid.h"
#include "lib/dicom.h"

#define SAMPLES "/usr/lib/python3/dist-packages/pydicom/data/test_files"

static const unsigned char key[] = "0123456789abcdef0123456789abcdef";
#define KEYLEN 32
static const char subject[] = "3f2b6c1e-8a7d-4e5f-9b0a-1c2d3e4f5a6b";
static const char accession[] = "ACC0042";

static char tmpdir[256];

/* ---- helpers ------------------------------------------------------------------- */

/* sample - path of a copy of the sample file rel in tmpdir (copied on first use);
 * NULL when the samples are not installed */
static const char *sample(const char *rel, char *out, size_t len)
{
	char src[512], buf[65536];
	FILE *in, *o;
	size_t n;

	snprintf(src, sizeof src, "%s/%s", SAMPLES, rel);
	snprintf(out, len, "%s/%s", tmpdir, rel);
	for (char *c = out + strlen(tmpdir) + 1; *c; c++)
		if (*c == '/')
			*c = '_';
	if (access(out, R_OK) == 0)
		return out;
	if ((in = fopen(src, "rb")) == NULL)
		return NULL;
	o = fopen(out, "wb");
	assert_non_null(o);
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, o), n);
	fclose(in);
	assert_int_equal(fclose(o), 0);
	return out;
}

#define SAMPLE(rel, buf)                                                                    \
	do {                                                                                \
		if (sample(rel, buf, sizeof buf) == NULL)                                   \
			skip();                                                             \
	} while (0)

static struct dicom_ds *load_ok(const char *path)
{
	struct dicom_ds *ds = NULL;
	char err[512];
	enum dicom_err r = dicom_ds_load(path, &ds, err, sizeof err);

	if (r != DICOM_OK)
		fail_msg("load %s: %s: %s", path, dicom_err_name(r), err);
	return ds;
}

/* deid_save_reload - deid ds with the test parameters, save to out, reload */
static struct dicom_ds *deid_save_reload(struct dicom_ds *ds, const char *out,
					 struct deid_stats *st)
{
	struct deid_params p = {key, KEYLEN, subject, accession};
	char err[512];

	if (deid_instance(ds, &p, st, err, sizeof err) != 0)
		fail_msg("deid: %s", err);
	if (dicom_ds_save(ds, out, err, sizeof err) != DICOM_OK)
		fail_msg("save %s: %s", out, err);
	return load_ok(out);
}

static void out_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/out-%s", tmpdir, name);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void get_str(struct dicom_ds *ds, uint32_t tag, char *buf, size_t len)
{
	enum dicom_err r = dicom_ds_get_string(ds, tag, buf, len);

	if (r != DICOM_OK)
		fail_msg("(%04X,%04X): %s", DICOM_GROUP(tag), DICOM_ELEMENT(tag), dicom_err_name(r));
}

/* rule_of - the table's row for t, by a plain scan (not deid.c's search) */
static const struct deid_rule *rule_of(uint32_t t)
{
	size_t n;
	const struct deid_rule *r = deid_rules(&n);

	for (size_t i = 0; i < n; i++)
		if ((t & r[i].mask) == r[i].tag)
			return &r[i];
	return NULL;
}

static int is_class_uid_tag(uint32_t t)
{
	static const uint32_t keep[] = {0x00020002, 0x00020010, 0x00020012, 0x00041510,
					0x00041512, 0x00080016, 0x0008001A, 0x0008001B,
					0x00080062, 0x0008010C, 0x00080117, 0x00080118,
					0x00081150};

	for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
		if (keep[i] == t)
			return 1;
	return 0;
}

/* check - what a de-identified dataset must look like, element by element */
struct check {
	int problems;
	int elements;
	char first[256];
};

static void problem(struct check *c, struct dicom_elem *e, const char *what)
{
	uint32_t t = dicom_elem_tag(e);

	if (c->problems++ == 0)
		snprintf(c->first, sizeof c->first, "(%04X,%04X) %s at depth %d: %s",
			 DICOM_GROUP(t), DICOM_ELEMENT(t), dicom_elem_vr(e), dicom_elem_depth(e),
			 what);
}

static int check_elem(struct dicom_elem *e, void *arg)
{
	struct check *c = arg;
	uint32_t t = dicom_elem_tag(e);
	const struct deid_rule *r = rule_of(t);
	char v[1024];

	c->elements++;
	if (DICOM_GROUP(t) & 1)
		problem(c, e, "private attribute left");
	if (strcmp(dicom_elem_vr(e), "UN") == 0)
		problem(c, e, "UN attribute left");
	if (r && r->mask == 0xFFFFFFFFu && r->action == DEID_REMOVE)
		problem(c, e, "attribute the table removes is present");
	if (r && r->action == DEID_SET && dicom_elem_depth(e) > 0)
		problem(c, e, "a SET attribute inside a sequence");
	if (dicom_elem_is_string(e) && dicom_elem_get_string(e, v, sizeof v) == DICOM_OK) {
		if (r && r->action == DEID_EMPTY && v[0])
			problem(c, e, "emptied attribute has a value");
		if (r && r->action == DEID_PSEUDONYM && strcmp(v, subject) != 0)
			problem(c, e, "not the pseudonym");
		if (r && r->action == DEID_SESSION && strcmp(v, accession) != 0)
			problem(c, e, "not the session label");
		if (r && r->action == DEID_DUMMY && strcmp(dicom_elem_vr(e), "UI") != 0 && v[0] &&
		    strcmp(v, "ANONYMOUS") && strcmp(v, "19000101") && strcmp(v, "000000") &&
		    strcmp(v, "19000101000000") && strcmp(v, "0") && strcmp(v, "000Y"))
			problem(c, e, "dummied attribute holds something else");
		if (strcmp(dicom_elem_vr(e), "UI") == 0 && !is_class_uid_tag(t) && v[0]) {
			for (char *s = v, *next; s; s = next) {
				next = strchr(s, '\\');
				if (next)
					*next++ = 0;
				if (strncmp(s, "2.25.", 5) && strncmp(s, "1.2.840.10008.", 14))
					problem(c, e, "instance UID not replaced");
			}
		}
	}
	if (r && r->action == DEID_EMPTY && dicom_elem_is_sequence(e)) {
		/* an emptied sequence has no items: its items would be visited next with
		 * depth + 1 and parent t; checked by check_parent */
	}
	return DICOM_WALK_KEEP;
}

struct parent_check {
	int bad;
};

static int check_parent(struct dicom_elem *e, void *arg)
{
	const struct deid_rule *r = rule_of(dicom_elem_parent(e));

	if (dicom_elem_depth(e) > 0 && r && (r->action == DEID_EMPTY || r->action == DEID_REMOVE))
		((struct parent_check *)arg)->bad++;
	return DICOM_WALK_KEEP;
}

static void assert_deidentified(struct dicom_ds *ds)
{
	struct check c;
	struct parent_check pc = {0};
	char v[128];

	memset(&c, 0, sizeof c);
	assert_int_equal(dicom_ds_walk(ds, check_elem, &c), DICOM_OK);
	if (c.problems)
		fail_msg("%d problems, first: %s", c.problems, c.first);
	assert_true(c.elements > 5);
	assert_int_equal(dicom_ds_walk(ds, check_parent, &pc), DICOM_OK);
	assert_int_equal(pc.bad, 0);
	get_str(ds, DICOM_TAG(0x0010, 0x0010), v, sizeof v);
	assert_string_equal(v, subject);
	get_str(ds, DICOM_TAG(0x0010, 0x0020), v, sizeof v);
	assert_string_equal(v, subject);
	get_str(ds, DICOM_TAG(0x0008, 0x1030), v, sizeof v);
	assert_string_equal(v, accession);
	get_str(ds, DICOM_TAG(0x0012, 0x0062), v, sizeof v);
	assert_string_equal(v, "YES");
	get_str(ds, DICOM_TAG(0x0012, 0x0063), v, sizeof v);
	assert_string_equal(v, deid_method());
	assert_non_null(strstr(v, FLIP_VERSION));
	get_str(ds, DICOM_TAG(0x0028, 0x0303), v, sizeof v);
	assert_string_equal(v, "REMOVED");
	assert_int_equal(dicom_ds_get_string(ds, DICOM_TAG(0x0008, 0x0050), v, sizeof v),
			 DICOM_ERR_NOT_FOUND);
}

static int no_private_cb(struct dicom_elem *e, void *arg)
{
	if (DICOM_GROUP(dicom_elem_tag(e)) & 1)
		(*(int *)arg)++;
	return DICOM_WALK_KEEP;
}

/* collect - every value of tag t at depth > 0, in walk order */
struct collect {
	uint32_t tag;
	int n;
	char v[32][DICOM_UID_MAX + 1];
};

static int collect_cb(struct dicom_elem *e, void *arg)
{
	struct collect *c = arg;

	if (dicom_elem_tag(e) == c->tag && dicom_elem_depth(e) > 0 && c->n < 32)
		if (dicom_elem_get_string(e, c->v[c->n], sizeof c->v[0]) == DICOM_OK)
			c->n++;
	return DICOM_WALK_KEEP;
}

/* ---- tests ---------------------------------------------------------------------- */

/* the docs table is the C table, row by row */
static void test_docs_table(void **state)
{
	char path[512], *text, *line, *save = NULL;
	size_t len, n, row = 0;
	const struct deid_rule *r = deid_rules(&n);

	(void)state;
	snprintf(path, sizeof path, "docs/deidentification.md");
	if (access(path, R_OK) != 0)
		snprintf(path, sizeof path, "%s/../../docs/deidentification.md",
			 getenv("FLIP_SRCDIR") ? getenv("FLIP_SRCDIR") : ".");
	if (access(path, R_OK) != 0)
		fail_msg("docs/deidentification.md not found (run from the repository root)");
	text = read_file(path, &len);
	text[len] = 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char cells[5][256];
		int k = 0;
		char *c = line + 1;

		if (strncmp(line, "| (", 3) != 0)
			continue;
		for (; k < 5 && c && *c; k++) {
			char *bar = strchr(c, '|');
			size_t o = 0;

			if (bar == NULL)
				break;
			*bar = 0;
			while (*c == ' ')
				c++;
			for (; *c; c++)
				if (*c != '`' && o < sizeof cells[k] - 1)
					cells[k][o++] = *c;
			while (o && cells[k][o - 1] == ' ')
				o--;
			cells[k][o] = 0;
			c = bar + 1;
		}
		assert_int_equal(k, 5);
		if (row >= n)
			fail_msg("docs has more rows than the table (%zu): %s", n, cells[0]);
		if (strcmp(cells[0], r[row].pattern) || strcmp(cells[1], r[row].keyword) ||
		    strcmp(cells[2], r[row].profile) ||
		    strcmp(cells[3], deid_action_name(r[row].action)) || strcmp(cells[4], r[row].note))
			fail_msg("docs row %zu differs from the table: docs \"%s | %s | %s | %s | %s\", "
				 "table \"%s | %s | %s | %s | %s\"",
				 row + 1, cells[0], cells[1], cells[2], cells[3], cells[4],
				 r[row].pattern, r[row].keyword, r[row].profile,
				 deid_action_name(r[row].action), r[row].note);
		row++;
	}
	free(text);
	assert_int_equal(row, n);
}

/* the table: exact rows sorted and unique, masked rows last, every FLIP row there */
static void test_table_shape(void **state)
{
	size_t n, i;
	const struct deid_rule *r = deid_rules(&n);
	static const uint32_t flip_removed[] = {
		0x00100030, 0x00100032, 0x00101000, 0x00101002, 0x00101001, 0x00101005,
		0x00101040, 0x00102154, 0x00080080, 0x00080081, 0x00081040, 0x00080090,
		0x00081050, 0x00081060, 0x00081048, 0x00081070, 0x00080050, 0x00101090,
		0x00102160, 0x00102180, 0x001021B0, 0x00321032, 0x00400006, 0x00402016,
		0x00402017, 0x00401006, 0x00401007, 0x0040A123};

	(void)state;
	assert_true(n > 400);
	for (i = 0; i < n && r[i].mask == 0xFFFFFFFFu; i++)
		if (i > 0 && r[i - 1].tag >= r[i].tag)
			fail_msg("row %zu %s out of order", i, r[i].pattern);
	assert_int_equal(n - i, 5); /* curves, two overlay rows, the overlay group, private */
	for (; i < n; i++)
		assert_int_not_equal(r[i].mask, 0xFFFFFFFFu);
	for (i = 0; i < sizeof flip_removed / sizeof flip_removed[0]; i++) {
		const struct deid_rule *x = rule_of(flip_removed[i]);

		assert_non_null(x);
		if (x->action != DEID_REMOVE)
			fail_msg("%s (%s) is not removed", x->pattern, x->keyword);
	}
	assert_int_equal(rule_of(0x00100010)->action, DEID_PSEUDONYM);
	assert_int_equal(rule_of(0x00100020)->action, DEID_PSEUDONYM);
	assert_int_equal(rule_of(0x00081030)->action, DEID_SESSION);
	assert_int_equal(rule_of(0x00091001)->action, DEID_REMOVE);   /* private */
	assert_int_equal(rule_of(0x60003000)->action, DEID_REMOVE);   /* overlay */
	assert_int_equal(rule_of(0x60220010)->action, DEID_REMOVE);   /* overlay rows */
	assert_int_equal(rule_of(0x0040A730)->action, DEID_CLEAN);
	assert_int_equal(rule_of(0x0020000D)->action, DEID_UID);
	assert_null(rule_of(0x7FE00010));			      /* pixel data: untouched */
	assert_null(rule_of(0x00200032));			      /* geometry: untouched */
}

/* the UID map: a known-answer vector from Python's hmac, shape, key dependence */
static void test_uid_map(void **state)
{
	char a[DEID_UID_LEN], b[DEID_UID_LEN];
	static const unsigned char other[] = "another key, 32 bytes long......";

	(void)state;
	assert_int_equal(deid_uid(key, KEYLEN, "1.2.3.4", a), 0);
	assert_string_equal(a, "2.25.152605341394861574609155254148933280169");
	assert_int_equal(deid_uid(key, KEYLEN, "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322", a), 0);
	assert_string_equal(a, "2.25.260468923806193966875091676099379136654");
	assert_int_equal(deid_uid(other, KEYLEN, "1.2.3.4", b), 0);
	assert_string_not_equal(a, b);
	assert_true(strlen(b) <= 44);
	for (const char *c = b + 5; *c; c++)
		assert_true(*c >= '0' && *c <= '9');
	assert_int_equal(deid_uid(key, KEYLEN, "", a), -1);
}

/* CT with private tags: everything the table says, and nothing identifying left */
static void test_ct_small(void **state)
{
	char in[512], out[512], v[128], *bytes;
	unsigned char *px0, *px1;
	size_t len0, len1, flen;
	struct deid_stats st;
	struct dicom_ds *ds, *re;
	int priv = 0;
	static const char *const originals[] = {
		"CompressedSamples^CT1", "1CT1", "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322",
		"1.3.6.1.4.1.5962.1.4.1.1.20040119072730.12322"};

	(void)state;
	SAMPLE("CT_small.dcm", in);
	out_path("CT_small.dcm", out, sizeof out);
	memset(&st, 0, sizeof st);
	ds = load_ok(in);
	assert_int_equal(dicom_ds_walk(ds, no_private_cb, &priv), DICOM_OK);
	assert_true(priv > 0);
	assert_int_equal(dicom_ds_encode_element(ds, DICOM_TAG(0x7FE0, 0x0010), &px0, &len0),
			 DICOM_OK);
	re = deid_save_reload(ds, out, &st);
	assert_deidentified(re);
	assert_int_equal(st.instances, 1);
	assert_true(st.private_removed > 0 && st.uids >= 4);
	assert_string_equal(dicom_ds_transfer_syntax(re), "1.2.840.10008.1.2.1");
	assert_int_equal(dicom_ds_encode_element(re, DICOM_TAG(0x7FE0, 0x0010), &px1, &len1),
			 DICOM_OK);
	assert_int_equal(len0, len1);
	assert_memory_equal(px0, px1, len0);
	/* the instance UIDs are the keyed map of the originals */
	get_str(re, DICOM_TAG(0x0020, 0x000D), v, sizeof v);
	assert_string_equal(v, "2.25.260468923806193966875091676099379136654");
	/* nothing identifying anywhere in the bytes written */
	bytes = read_file(out, &flen);
	for (size_t i = 0; i < sizeof originals / sizeof originals[0]; i++)
		if (memmem(bytes, flen, originals[i], strlen(originals[i])))
			fail_msg("\"%s\" still in the written file", originals[i]);
	free(bytes);
	free(px0);
	free(px1);
	dicom_ds_free(ds);
	dicom_ds_free(re);
}

/* two instances of one series: same study/series/frame of reference, distinct SOP */
static void test_series_consistency(void **state)
{
	char in1[512], in2[512], out1[512], out2[512];
	char a[4][80], b[4][80], orig[80], mapped[DEID_UID_LEN];
	static const uint32_t tags[4] = {0x0020000D, 0x0020000E, 0x00200052, 0x00080018};
	struct deid_stats st;
	struct dicom_ds *d1, *d2, *r1, *r2;

	(void)state;
	SAMPLE("dicomdirtests/98892001/CT5N/2062", in1);
	SAMPLE("dicomdirtests/98892001/CT5N/2392", in2);
	out_path("ct5n-1.dcm", out1, sizeof out1);
	out_path("ct5n-2.dcm", out2, sizeof out2);
	memset(&st, 0, sizeof st);
	d1 = load_ok(in1);
	d2 = load_ok(in2);
	get_str(d1, tags[1], orig, sizeof orig);
	r1 = deid_save_reload(d1, out1, &st);
	r2 = deid_save_reload(d2, out2, &st);
	assert_int_equal(st.instances, 2);
	for (int i = 0; i < 4; i++) {
		get_str(r1, tags[i], a[i], sizeof a[i]);
		get_str(r2, tags[i], b[i], sizeof b[i]);
		assert_memory_equal(a[i], "2.25.", 5);
	}
	assert_string_equal(a[0], b[0]);
	assert_string_equal(a[1], b[1]);
	assert_string_equal(a[2], b[2]);
	assert_string_not_equal(a[3], b[3]);
	assert_int_equal(deid_uid(key, KEYLEN, orig, mapped), 0);
	assert_string_equal(a[1], mapped);
	/* the meta header follows the dataset */
	get_str(r1, DICOM_TAG(0x0002, 0x0003), orig, sizeof orig);
	assert_string_equal(orig, a[3]);
	assert_deidentified(r1);
	assert_deidentified(r2);
	dicom_ds_free(d1);
	dicom_ds_free(d2);
	dicom_ds_free(r1);
	dicom_ds_free(r2);
}

/* a segmentation's references to its source images map like the images' own UIDs;
 * the referenced SOP classes are kept */
static void test_references(void **state)
{
	char in[512], out[512], mapped[DEID_UID_LEN];
	struct collect inst0 = {.tag = 0x00081155}, inst1 = {.tag = 0x00081155};
	struct collect cls0 = {.tag = 0x00081150}, cls1 = {.tag = 0x00081150};
	struct deid_stats st;
	struct dicom_ds *ds, *re;

	(void)state;
	SAMPLE("liver_1frame.dcm", in);
	out_path("liver.dcm", out, sizeof out);
	memset(&st, 0, sizeof st);
	ds = load_ok(in);
	assert_int_equal(dicom_ds_walk(ds, collect_cb, &inst0), DICOM_OK);
	assert_int_equal(dicom_ds_walk(ds, collect_cb, &cls0), DICOM_OK);
	assert_true(inst0.n >= 2);
	re = deid_save_reload(ds, out, &st);
	assert_deidentified(re);
	assert_int_equal(dicom_ds_walk(re, collect_cb, &inst1), DICOM_OK);
	assert_int_equal(dicom_ds_walk(re, collect_cb, &cls1), DICOM_OK);
	assert_int_equal(inst0.n, inst1.n);
	assert_int_equal(cls0.n, cls1.n);
	for (int i = 0; i < inst0.n; i++) {
		assert_int_equal(deid_uid(key, KEYLEN, inst0.v[i], mapped), 0);
		assert_string_equal(inst1.v[i], mapped);
		assert_string_equal(cls0.v[i], cls1.v[i]);
	}
	dicom_ds_free(ds);
	dicom_ds_free(re);
}

/* SR: the content tree stays, person names and text go, observers are dropped */
static int count_tag_cb(struct dicom_elem *e, void *arg)
{
	uint32_t *want = arg;

	if (dicom_elem_tag(e) == want[0])
		want[1]++;
	return DICOM_WALK_KEEP;
}

static void test_structured_report(void **state)
{
	char in[512], out[512], *bytes;
	size_t flen;
	uint32_t names[2] = {0x0040A123, 0}, content[2] = {0x0040A730, 0},
		 observer[2] = {0x0040A075, 0};
	struct deid_stats st;
	struct dicom_ds *ds, *re;

	(void)state;
	/* a person name in the content tree */
	SAMPLE("reportsi.dcm", in);
	out_path("reportsi.dcm", out, sizeof out);
	memset(&st, 0, sizeof st);
	ds = load_ok(in);
	assert_int_equal(dicom_ds_walk(ds, count_tag_cb, names), DICOM_OK);
	assert_true(names[1] > 0);
	re = deid_save_reload(ds, out, &st);
	assert_deidentified(re);
	names[1] = 0;
	assert_int_equal(dicom_ds_walk(re, count_tag_cb, names), DICOM_OK);
	assert_int_equal(names[1], 0);
	assert_int_equal(dicom_ds_walk(re, count_tag_cb, content), DICOM_OK);
	assert_true(content[1] > 1); /* the tree is still there */
	bytes = read_file(out, &flen);
	assert_null(memmem(bytes, flen, "Last Name^First Name", 20));
	free(bytes);
	dicom_ds_free(ds);
	dicom_ds_free(re);

	/* verifying observers: a dummied sequence keeps no item, so no name is left */
	SAMPLE("test-SR.dcm", in);
	out_path("sr.dcm", out, sizeof out);
	ds = load_ok(in);
	assert_int_equal(dicom_ds_walk(ds, count_tag_cb, observer), DICOM_OK);
	assert_true(observer[1] > 0);
	observer[1] = 0;
	re = deid_save_reload(ds, out, &st);
	assert_deidentified(re);
	assert_int_equal(dicom_ds_walk(re, count_tag_cb, observer), DICOM_OK);
	assert_int_equal(observer[1], 0);
	bytes = read_file(out, &flen);
	assert_null(memmem(bytes, flen, "Observer^Verifying", 18));
	assert_null(memmem(bytes, flen, "Test^S R", 8));
	free(bytes);
	dicom_ds_free(ds);
	dicom_ds_free(re);
}

/* private sequences nested in private sequences, and the shim's own remover */
static void test_private_sequences(void **state)
{
	char in[512], out[512];
	struct deid_stats st;
	struct dicom_ds *ds, *re;
	int priv = 0;

	(void)state;
	SAMPLE("nested_priv_SQ.dcm", in);
	out_path("npsq.dcm", out, sizeof out);
	ds = load_ok(in);
	assert_true(dicom_ds_remove_private(ds) > 0);
	assert_int_equal(dicom_ds_walk(ds, no_private_cb, &priv), DICOM_OK);
	assert_int_equal(priv, 0);
	dicom_ds_free(ds);

	SAMPLE("priv_SQ.dcm", in);
	memset(&st, 0, sizeof st);
	ds = load_ok(in);
	re = deid_save_reload(ds, out, &st);
	assert_true(st.private_removed > 0);
	assert_int_equal(dicom_ds_walk(re, no_private_cb, &priv), DICOM_OK);
	assert_int_equal(priv, 0);
	assert_deidentified(re);
	dicom_ds_free(ds);
	dicom_ds_free(re);
}

/* every transfer syntax of the samples: kept, pixel data byte-identical */
static void test_transfer_syntaxes(void **state)
{
	static const char *const files[] = {
		"MR_small_bigendian.dcm",  "MR_small_implicit.dcm",   "image_dfl.dcm",
		"MR_small_RLE.dcm",	   "SC_rgb_rle_2frame.dcm",   "JPEG-lossy.dcm",
		"SC_jpeg_no_color_transform.dcm", "SC_rgb_jpeg_gdcm.dcm", "693_J2KI.dcm",
		"MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "rtdose.dcm",
		"rtdose_rle.dcm",	   "liver_expb_1frame.dcm",   "ExplVR_BigEnd.dcm",
		"waveform_ecg.dcm",	   "rtplan.dcm",	      "rtstruct.dcm",
		"reportsi.dcm",		   "badVR.dcm",		      "UN_sequence.dcm",
		"ExplVR_BigEndNoMeta.dcm", "no_meta_group_length.dcm"};

	(void)state;
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char in[512], out[512], ts[DICOM_UID_MAX + 1];
		unsigned char *px0 = NULL, *px1 = NULL;
		size_t len0 = 0, len1 = 0;
		struct deid_stats st;
		struct dicom_ds *ds, *re;
		int pixels;

		SAMPLE(files[i], in);
		out_path(files[i], out, sizeof out);
		memset(&st, 0, sizeof st);
		ds = load_ok(in);
		snprintf(ts, sizeof ts, "%s", dicom_ds_transfer_syntax(ds));
		pixels = dicom_ds_has_pixel_data(ds);
		if (pixels)
			assert_int_equal(dicom_ds_encode_element(ds, DICOM_TAG(0x7FE0, 0x0010),
								 &px0, &len0),
					 DICOM_OK);
		re = deid_save_reload(ds, out, &st);
		if (strcmp(ts, dicom_ds_transfer_syntax(re)) != 0)
			fail_msg("%s: transfer syntax %s became %s", files[i], ts,
				 dicom_ds_transfer_syntax(re));
		assert_int_equal(dicom_ds_has_pixel_data(re), pixels);
		if (pixels) {
			assert_int_equal(dicom_ds_encode_element(re, DICOM_TAG(0x7FE0, 0x0010),
								 &px1, &len1),
					 DICOM_OK);
			if (len0 != len1 || memcmp(px0, px1, len0) != 0)
				fail_msg("%s: pixel data changed", files[i]);
		}
		assert_deidentified(re);
		free(px0);
		free(px1);
		dicom_ds_free(ds);
		dicom_ds_free(re);
	}
}

/* instances declaring burned-in annotation are counted */
static void test_burned_in(void **state)
{
	char in[512], out[512];
	struct deid_stats st;
	struct dicom_ds *ds, *re;

	(void)state;
	SAMPLE("MR_small.dcm", in);
	out_path("burned.dcm", out, sizeof out);
	memset(&st, 0, sizeof st);
	ds = load_ok(in);
	assert_int_equal(dicom_ds_burned_in(ds), 0);
	assert_int_equal(dicom_ds_put_string(ds, DICOM_TAG(0x0028, 0x0301), "YES"), DICOM_OK);
	assert_int_equal(dicom_ds_burned_in(ds), 1);
	re = deid_save_reload(ds, out, &st);
	assert_int_equal(st.burned_in, 1);
	assert_int_equal(dicom_ds_burned_in(re), 1);
	dicom_ds_free(re);
	re = deid_save_reload(ds, out, &st); /* a second pass counts again */
	assert_int_equal(st.instances, 2);
	assert_int_equal(st.burned_in, 2);
	dicom_ds_free(ds);
	dicom_ds_free(re);
}

/* the capture rule: declared, undeclared in a capture class or modality, or neither */
static void test_burned_in_captures(void **state)
{
	char in[512];
	const char *why = NULL;
	struct dicom_ds *ds;

	(void)state;
	SAMPLE("MR_small.dcm", in);
	ds = load_ok(in);
	assert_int_equal(deid_burned_in(ds, &why), DEID_BURNED_NO);	/* MR, undeclared */
	assert_string_equal(why, "");
	assert_int_equal(dicom_ds_put_string(ds, DICOM_TAG(0x0008, 0x0060), "US"), DICOM_OK);
	assert_int_equal(deid_burned_in(ds, &why), DEID_BURNED_UNDECLARED);
	assert_string_equal(why, "a capture modality without BurnedInAnnotation");
	assert_int_equal(dicom_ds_put_string(ds, DICOM_TAG(0x0028, 0x0301), "NO"), DICOM_OK);
	assert_int_equal(deid_burned_in(ds, NULL), DEID_BURNED_NO);
	assert_int_equal(dicom_ds_put_string(ds, DICOM_TAG(0x0028, 0x0301), "MAYBE"), DICOM_OK);
	assert_int_equal(deid_burned_in(ds, &why), DEID_BURNED_DECLARED); /* not NO: refused */
	dicom_ds_free(ds);
	/* a secondary capture (Modality OT) without the attribute; and by class alone */
	SAMPLE("SC_rgb_rle_2frame.dcm", in);
	ds = load_ok(in);
	assert_int_equal(deid_burned_in(ds, &why), DEID_BURNED_UNDECLARED);
	assert_string_equal(why, "a capture SOP class without BurnedInAnnotation");
	assert_int_equal(dicom_ds_put_string(ds, DICOM_TAG(0x0008, 0x0060), "CT"), DICOM_OK);
	assert_int_equal(deid_burned_in(ds, NULL), DEID_BURNED_UNDECLARED);
	/* a class that only shares a prefix with Secondary Capture (…1.1.77.x) or is CT */
	assert_int_equal(dicom_ds_put_string(ds, DICOM_TAG(0x0008, 0x0016),
					     "1.2.840.10008.5.1.4.1.1.70"), DICOM_OK);
	assert_int_equal(deid_burned_in(ds, NULL), DEID_BURNED_NO);
	assert_int_equal(dicom_ds_put_string(ds, DICOM_TAG(0x0008, 0x0016),
					     "1.2.840.10008.5.1.4.1.1.7.4"), DICOM_OK);
	assert_int_equal(deid_burned_in(ds, NULL), DEID_BURNED_UNDECLARED);
	dicom_ds_free(ds);
}

/* LongitudinalTemporalInformationModified says what happened to the dates */
static void test_longitudinal_truthful(void **state)
{
	char in[512], out[512], v[32];
	struct deid_stats st;
	struct dicom_ds *ds, *re;

	(void)state;
	assert_string_equal(deid_ltim(0, 0), "REMOVED");
	assert_string_equal(deid_ltim(0, 7), "REMOVED");
	assert_string_equal(deid_ltim(2, 0), "UNMODIFIED");
	assert_string_equal(deid_ltim(2, 7), "MODIFIED");
	SAMPLE("MR_small.dcm", in);
	out_path("ltim.dcm", out, sizeof out);
	memset(&st, 0, sizeof st);
	ds = load_ok(in);
	re = deid_save_reload(ds, out, &st);
	get_str(re, DICOM_TAG(0x0028, 0x0303), v, sizeof v);
	assert_string_equal(v, "REMOVED");	/* every date it has is a listed one */
	dicom_ds_free(re);
	/* a date the standard does not list (ExpiryDate) stays, so not REMOVED */
	assert_int_equal(dicom_ds_put_string(ds, DICOM_TAG(0x0014, 0x1020), "20300101"), DICOM_OK);
	re = deid_save_reload(ds, out, &st);
	get_str(re, DICOM_TAG(0x0028, 0x0303), v, sizeof v);
	assert_string_equal(v, "MODIFIED");
	dicom_ds_free(re);
	dicom_ds_free(ds);
}

/* truncated files: the samples cut on purpose, and cuts inside pixel data */
static void test_truncated(void **state)
{
	static const char *const cut[] = {"MR_truncated.dcm", "rtplan_truncated.dcm"};
	char in[512], path[512], err[512];
	struct dicom_ds *ds;
	char *bytes;
	size_t len;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		SAMPLE(cut[i], in);
		assert_int_equal(dicom_ds_load(in, &ds, err, sizeof err), DICOM_ERR_CORRUPT);
		assert_null(ds);
		assert_non_null(strstr(err, cut[i]));
	}
	SAMPLE("CT_small.dcm", in);
	bytes = read_file(in, &len);
	snprintf(path, sizeof path, "%s/cut.dcm", tmpdir);
	/* pixel data starts at 6300 and runs 32768 bytes: every cut there is corrupt */
	for (size_t at = 6400; at < len; at += 4099) {
		write_file(path, bytes, at);
		assert_int_equal(dicom_ds_load(path, &ds, err, sizeof err), DICOM_ERR_CORRUPT);
	}
	/* anywhere else: a clean answer either way, never a crash */
	for (size_t at = 0; at < 6400; at += 97) {
		enum dicom_err r;

		write_file(path, bytes, at);
		r = dicom_ds_load(path, &ds, err, sizeof err);
		assert_true(r == DICOM_OK || r == DICOM_ERR_CORRUPT);
		dicom_ds_free(ds);
	}
	free(bytes);
}

/* value lengths far beyond the end of the file */
static void test_absurd_lengths(void **state)
{
	char in[512], path[512], err[512];
	struct dicom_ds *ds;
	char *bytes;
	size_t len;
	char *px, *pn, *meta;
	static const uint32_t lens[] = {0xFFFFFFF0u, 0x7FFFFFF0u, 0x00100000u};

	(void)state;
	SAMPLE("CT_small.dcm", in);
	bytes = read_file(in, &len);
	snprintf(path, sizeof path, "%s/absurd.dcm", tmpdir);
	px = memmem(bytes, len, "\xe0\x7f\x10\x00OW", 6);
	pn = memmem(bytes, len, "\x10\x00\x10\x00PN", 6);
	meta = memmem(bytes, len, "\x02\x00\x00\x00UL", 6);
	assert_non_null(px);
	assert_non_null(pn);
	assert_non_null(meta);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		uint32_t l = lens[i];

		memcpy(px + 8, &l, 4); /* little endian host, little endian file */
		write_file(path, bytes, len);
		assert_int_equal(dicom_ds_load(path, &ds, err, sizeof err), DICOM_ERR_CORRUPT);
		assert_null(ds);
	}
	memcpy(px + 8, "\x00\x80\x00\x00", 4);
	pn[6] = (char)0xf0;
	pn[7] = (char)0xff; /* 65520 bytes of name in a 39 kB file */
	write_file(path, bytes, len);
	assert_int_equal(dicom_ds_load(path, &ds, err, sizeof err), DICOM_ERR_CORRUPT);
	pn[6] = 0x16;
	pn[7] = 0;
	memcpy(meta + 8, "\x00\xff\xff\xff", 4); /* meta group length */
	write_file(path, bytes, len);
	assert_int_equal(dicom_ds_load(path, &ds, err, sizeof err), DICOM_ERR_CORRUPT);
	free(bytes);
}

/* not DICOM, not a regular file, not there */
static void test_bad_files(void **state)
{
	char path[512], link[512], err[512];
	struct dicom_ds *ds;

	(void)state;
	snprintf(path, sizeof path, "%s/text.dcm", tmpdir);
	write_file(path, "hello, this is not a DICOM file at all\n", 39);
	assert_int_equal(dicom_ds_load(path, &ds, err, sizeof err), DICOM_ERR_CORRUPT);
	snprintf(link, sizeof link, "%s/link.dcm", tmpdir);
	unlink(link);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(dicom_ds_load(link, &ds, err, sizeof err), DICOM_ERR_IO);
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(dicom_ds_load(tmpdir, &ds, err, sizeof err), DICOM_ERR_IO);
	snprintf(path, sizeof path, "%s/missing.dcm", tmpdir);
	assert_int_equal(dicom_ds_load(path, &ds, err, sizeof err), DICOM_ERR_IO);
	assert_int_equal(dicom_ds_load(NULL, &ds, err, sizeof err), DICOM_ERR_INVALID);
}

/* parameters deid refuses before touching the dataset */
static void test_bad_params(void **state)
{
	char in[512], err[256];
	struct deid_stats st;
	struct dicom_ds *ds;
	struct deid_params p = {key, 8, subject, accession};

	(void)state;
	SAMPLE("MR_small.dcm", in);
	memset(&st, 0, sizeof st);
	ds = load_ok(in);
	assert_int_equal(deid_instance(ds, &p, &st, err, sizeof err), -1);
	p.keylen = KEYLEN;
	p.subject = "a\\b";
	assert_int_equal(deid_instance(ds, &p, &st, err, sizeof err), -1);
	p.subject = "";
	assert_int_equal(deid_instance(ds, &p, &st, err, sizeof err), -1);
	p.subject = subject;
	p.accession = "ACC\n1";
	assert_int_equal(deid_instance(ds, &p, &st, err, sizeof err), -1);
	assert_null(strstr(err, "ACC"));
	assert_int_equal(st.instances, 0);
	dicom_ds_free(ds);
}

/* the dataset API on its own: get/put/remove, the walk's KEEP/REMOVE/SKIP/stop */
static int walk_skip_cb(struct dicom_elem *e, void *arg)
{
	int *n = arg;

	n[0]++;
	if (dicom_elem_depth(e) > 0)
		n[1]++;
	if (dicom_elem_tag(e) == 0x00100010)
		return DICOM_WALK_REMOVE;
	return dicom_elem_is_sequence(e) ? DICOM_WALK_SKIP : DICOM_WALK_KEEP;
}

static int walk_stop_cb(struct dicom_elem *e, void *arg)
{
	(void)e;
	return ++*(int *)arg == 3 ? -1 : DICOM_WALK_KEEP;
}

static void test_dataset_api(void **state)
{
	char in[512], v[64];
	struct dicom_ds *ds;
	int n[2] = {0, 0}, stop = 0;

	(void)state;
	SAMPLE("test-SR.dcm", in);
	ds = load_ok(in);
	assert_int_equal(dicom_ds_get_string(ds, 0x00100010, v, 4), DICOM_ERR_INVALID);
	assert_int_equal(dicom_ds_get_string(ds, 0x7FE00010, v, sizeof v), DICOM_ERR_NOT_FOUND);
	assert_int_equal(dicom_ds_put_string(ds, 0x00100010, "X^Y"), DICOM_OK);
	get_str(ds, 0x00100010, v, sizeof v);
	assert_string_equal(v, "X^Y");
	assert_int_equal(dicom_ds_put_string(ds, 0x0040A730, "no"), DICOM_ERR_INVALID);
	assert_int_equal(dicom_ds_walk(ds, walk_skip_cb, n), DICOM_OK);
	assert_int_equal(n[1], 0); /* every sequence skipped */
	assert_int_equal(dicom_ds_get_string(ds, 0x00100010, v, sizeof v), DICOM_ERR_NOT_FOUND);
	assert_int_equal(dicom_ds_remove(ds, 0x00100020), 1);
	assert_int_equal(dicom_ds_remove(ds, 0x00100020), 0);
	assert_int_equal(dicom_ds_walk(ds, walk_stop_cb, &stop), DICOM_ERR_INVALID);
	assert_int_equal(stop, 3);
	assert_string_equal(dicom_err_name(DICOM_ERR_UNREACHABLE), "pacs_unreachable");
	assert_string_equal(dicom_err_name(DICOM_ERR_REJECTED), "association_rejected");
	assert_string_equal(dicom_err_name(DICOM_ERR_STORAGE), "storage_error");
	dicom_ds_free(ds);
}

/* ---- fixture -------------------------------------------------------------------- */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "%s/flip-test-deid-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	dicom_init(0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_docs_table),
		cmocka_unit_test(test_burned_in_captures),
		cmocka_unit_test(test_longitudinal_truthful),
		cmocka_unit_test(test_table_shape),
		cmocka_unit_test(test_uid_map),
		cmocka_unit_test(test_ct_small),
		cmocka_unit_test(test_series_consistency),
		cmocka_unit_test(test_references),
		cmocka_unit_test(test_structured_report),
		cmocka_unit_test(test_private_sequences),
		cmocka_unit_test(test_transfer_syntaxes),
		cmocka_unit_test(test_burned_in),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_absurd_lengths),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_dataset_api),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
