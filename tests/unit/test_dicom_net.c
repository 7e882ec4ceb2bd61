/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dicom_net - the shim's network half (lib/dicom_net.cc, lib/dicom_move.cc) against a real PACS.
 *
 * Not self-contained: tests/integration/test_pacs.py starts a throwaway Orthanc
 * (tests/pacs/orthanc.py), loads the DICOM fixture and runs this program with
 *	FLIP_TEST_PACS_HOST, FLIP_TEST_PACS_PORT	Orthanc's DICOM address
 *	FLIP_TEST_PACS_AET, FLIP_TEST_NODE_AET		called and calling AE titles
 *	FLIP_TEST_PACS_CLOSED_PORT			a loopback port nobody listens on
 *	FLIP_TEST_PACS_EXPECT				"ACC0001=1,ACC0010=7,...": every
 *							fixture accession and its instances
 *	FLIP_TEST_NODE_PORT				the port the PACS knows for the
 *							node's AE (C-MOVE destination);
 *							without it the C-MOVE tests skip
 * Without them every test is skipped (cmocka's skip()), so a plain unit run passes.
 *
 * Shown: C-ECHO; each accession found exactly once, with the AccessionNumber and
 * instance count the PACS reports; a case variant of an accession never yields an
 * exact match (Orthanc 1.10's C-FIND compares it case-sensitively; a PACS that
 * matched case-insensitively would return the stored spelling, which the caller's
 * exact comparison rejects); a wildcard is refused before any connection; C-GET of
 * every study into memory with the expected count and the stored transfer syntaxes,
 * one study de-identified and written in the store callback; a store callback
 * failure is storage_error and stops the retrieval, and the same study is then
 * retrieved whole without a C-FIND before it; an unknown study is not_found;
 * a closed port is pacs_unreachable; a peer that accepts TCP and never answers is
 * pacs_unreachable within the association timeout; a wrong called AE title and an
 * unknown calling AE title are association_rejected. C-MOVE to the shim's own
 * receiver on 127.0.0.1:FLIP_TEST_NODE_PORT: every study with the expected counts and
 * the stored transfer syntaxes, one de-identified in the callback; a store failure is
 * storage_error and the port is free again for the next C-MOVE; an unknown study is
 * not_found; the port held by another socket is io_error before any C-MOVE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/deid.h"
#include "lib/dicom.h"

#define MAX_ACC 64

static struct dicom_peer peer;
static int closed_port;
static int node_port;
static int have_pacs;
static struct {
	char acc[65];
	unsigned long count;
} expect[MAX_ACC];
static int nexpect;

#define NEED_PACS()                                                                         \
	do {                                                                                \
		if (!have_pacs)                                                             \
			skip();                                                             \
	} while (0)

/* find_one - the accession's only study, its UID in uid */
static void find_one(const char *acc, char uid[DICOM_UID_MAX + 1], long *instances)
{
	struct dicom_study *s = NULL;
	size_t n = 0;
	char err[512];
	enum dicom_err r = dicom_find_studies(&peer, acc, &s, &n, err, sizeof err);

	if (r != DICOM_OK)
		fail_msg("find %s: %s: %s", acc, dicom_err_name(r), err);
	if (n != 1)
		fail_msg("find %s: %zu studies, expected exactly 1", acc, n);
	assert_string_equal(s[0].accession, acc);
	snprintf(uid, DICOM_UID_MAX + 1, "%s", s[0].study_uid);
	if (instances)
		*instances = s[0].instances;
	free(s);
}

static void test_echo(void **state)
{
	char err[512];
	enum dicom_err r;

	(void)state;
	NEED_PACS();
	r = dicom_echo(&peer, err, sizeof err);
	if (r != DICOM_OK)
		fail_msg("echo: %s: %s", dicom_err_name(r), err);
}

static void test_find_each_once(void **state)
{
	(void)state;
	NEED_PACS();
	for (int i = 0; i < nexpect; i++) {
		char uid[DICOM_UID_MAX + 1];
		long instances = -2;

		find_one(expect[i].acc, uid, &instances);
		assert_true(strncmp(uid, "1.", 2) == 0 || strncmp(uid, "2.", 2) == 0);
		if (instances != -1)
			assert_int_equal(instances, (long)expect[i].count);
	}
}

static void test_find_case_variant(void **state)
{
	char err[512], variant[65];
	struct dicom_study *s = NULL;
	size_t n = 0, exact = 0;

	(void)state;
	NEED_PACS();
	snprintf(variant, sizeof variant, "%s", expect[0].acc);
	for (char *c = variant; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	assert_string_not_equal(variant, expect[0].acc);
	assert_int_equal(dicom_find_studies(&peer, variant, &s, &n, err, sizeof err), DICOM_OK);
	/* whatever the PACS matched, the caller's exact comparison keeps nothing */
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(s[i].accession, expect[0].acc);
		exact += strcmp(s[i].accession, variant) == 0;
	}
	assert_int_equal(exact, 0);
	free(s);
	/* no match at all: an empty result, not an error */
	assert_int_equal(dicom_find_studies(&peer, "NOSUCHACC", &s, &n, err, sizeof err), DICOM_OK);
	assert_int_equal(n, 0);
	assert_null(s);
}

static void test_find_refuses_wildcards(void **state)
{
	static const char *const bad[] = {"ACC*", "AC?1", "A\\B", "", "ACC\n1"};
	struct dicom_study *s;
	size_t n;
	char err[512];
	/* a valid peer on a port nobody listens on: the refusal must come first */
	struct dicom_peer nowhere = {"127.0.0.1", 1, "ORTHANC", "FLIPNODE", 1, 1, 1};

	(void)state;
	if (closed_port)
		nowhere.port = closed_port;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(dicom_find_studies(&nowhere, bad[i], &s, &n, err, sizeof err),
				 DICOM_ERR_INVALID);
	assert_int_equal(dicom_find_studies(&nowhere, NULL, &s, &n, err, sizeof err),
			 DICOM_ERR_INVALID);
}

/* store callbacks */
struct got {
	unsigned long n;
	int fail_at;		/* fail the n-th instance (1-based), 0 never */
	int deid;		/* de-identify and write each instance */
	char dir[128];
	char ts[8][DICOM_UID_MAX + 1];
	int nts;
};

static int store_cb(struct dicom_ds *ds, void *arg, char *err, size_t errlen)
{
	struct got *g = arg;
	char sop[DICOM_UID_MAX + 1];
	const char *ts = dicom_ds_transfer_syntax(ds);
	int seen = 0;

	g->n++;
	if (g->fail_at && (int)g->n == g->fail_at) {
		snprintf(err, errlen, "test: disk full");
		return -1;
	}
	if (dicom_ds_get_string(ds, DICOM_TAG(0x0008, 0x0018), sop, sizeof sop) != DICOM_OK ||
	    !ts[0]) {
		snprintf(err, errlen, "test: no SOP Instance UID or transfer syntax");
		return -1;
	}
	for (int i = 0; i < g->nts; i++)
		seen |= strcmp(g->ts[i], ts) == 0;
	if (!seen && g->nts < 8)
		snprintf(g->ts[g->nts++], sizeof g->ts[0], "%s", ts);
	if (g->deid) {
		static const unsigned char key[] = "0123456789abcdef0123456789abcdef";
		struct deid_params p = {key, 32, "subject-1", "ACC-TEST"};
		struct deid_stats st;
		char path[256];
		struct dicom_ds *back;

		memset(&st, 0, sizeof st);
		if (deid_instance(ds, &p, &st, err, errlen) != 0)
			return -1;
		snprintf(path, sizeof path, "%s/%lu.dcm", g->dir, g->n);
		if (dicom_ds_save(ds, path, err, errlen) != DICOM_OK)
			return -1;
		if (dicom_ds_load(path, &back, err, errlen) != DICOM_OK)
			return -1;
		char meta_ts[DICOM_UID_MAX + 1];

		/* a Part 10 file: the meta header made for a dataset from the network */
		if (dicom_ds_get_string(back, DICOM_TAG(0x0010, 0x0020), sop, sizeof sop) !=
			    DICOM_OK ||
		    strcmp(sop, "subject-1") != 0 || strcmp(dicom_ds_transfer_syntax(back), ts) ||
		    dicom_ds_get_string(back, DICOM_TAG(0x0002, 0x0010), meta_ts, sizeof meta_ts) !=
			    DICOM_OK ||
		    strcmp(meta_ts, ts) != 0) {
			snprintf(err, errlen, "test: the written instance is not as expected");
			dicom_ds_free(back);
			return -1;
		}
		dicom_ds_free(back);
		unlink(path);
	}
	return 0;
}

static int has_ts(const struct got *g, const char *ts)
{
	for (int i = 0; i < g->nts; i++)
		if (strcmp(g->ts[i], ts) == 0)
			return 1;
	return 0;
}

static void test_get_every_study(void **state)
{
	struct got all;
	int jpeg2000 = 0, rle = 0, big = 0, implicit = 0;

	(void)state;
	NEED_PACS();
	memset(&all, 0, sizeof all);
	for (int i = 0; i < nexpect; i++) {
		char uid[DICOM_UID_MAX + 1], err[512];
		struct got g;
		struct dicom_get_stats st;
		enum dicom_err r;

		find_one(expect[i].acc, uid, NULL);
		memset(&g, 0, sizeof g);
		r = dicom_get_study(&peer, uid, store_cb, &g, &st, err, sizeof err);
		if (r != DICOM_OK)
			fail_msg("get %s: %s: %s", expect[i].acc, dicom_err_name(r), err);
		if (st.instances != expect[i].count || g.n != expect[i].count)
			fail_msg("get %s: %lu instances (%lu seen), expected %lu", expect[i].acc,
				 st.instances, g.n, expect[i].count);
		assert_true(st.bytes > 0);
		jpeg2000 |= has_ts(&g, "1.2.840.10008.1.2.4.91") || has_ts(&g, "1.2.840.10008.1.2.4.90");
		rle |= has_ts(&g, "1.2.840.10008.1.2.5");
		big |= has_ts(&g, "1.2.840.10008.1.2.2");
		implicit |= has_ts(&g, "1.2.840.10008.1.2");
	}
	/* the PACS sent what it stored: no transcoding to a common syntax */
	assert_true(jpeg2000 && rle && big && implicit);
}

static void test_get_deidentified_in_memory(void **state)
{
	char uid[DICOM_UID_MAX + 1], err[512], tmpl[] = "/tmp/flip-test-net-XXXXXX";
	struct got g;
	struct dicom_get_stats st;
	enum dicom_err r;
	int i;

	(void)state;
	NEED_PACS();
	for (i = 0; i < nexpect && expect[i].count < 2; i++)
		;
	if (i == nexpect)
		fail_msg("the fixture has no study of several instances");
	find_one(expect[i].acc, uid, NULL);
	memset(&g, 0, sizeof g);
	g.deid = 1;
	assert_non_null(mkdtemp(tmpl));
	snprintf(g.dir, sizeof g.dir, "%s", tmpl);
	r = dicom_get_study(&peer, uid, store_cb, &g, &st, err, sizeof err);
	rmdir(tmpl);
	if (r != DICOM_OK)
		fail_msg("get %s: %s: %s", expect[i].acc, dicom_err_name(r), err);
	assert_int_equal(g.n, expect[i].count);
}

static void test_get_storage_error(void **state)
{
	char uid[DICOM_UID_MAX + 1], err[512];
	struct got g;
	struct dicom_get_stats st;
	int i;

	(void)state;
	NEED_PACS();
	for (i = 0; i < nexpect && expect[i].count < 3; i++)
		;
	if (i == nexpect)
		fail_msg("the fixture has no study of three instances or more");
	find_one(expect[i].acc, uid, NULL);
	memset(&g, 0, sizeof g);
	g.fail_at = 2;
	assert_int_equal(dicom_get_study(&peer, uid, store_cb, &g, &st, err, sizeof err),
			 DICOM_ERR_STORAGE);
	assert_non_null(strstr(err, "test: disk full"));
	assert_int_equal(st.instances, 1);
	assert_true(g.n < expect[i].count); /* stopped, did not drain the study */
	/* the PACS is fine afterwards; this C-GET has no SOP classes from a C-FIND
	 * (the failed one used them up) and asks the PACS itself */
	memset(&g, 0, sizeof g);
	assert_int_equal(dicom_get_study(&peer, uid, store_cb, &g, &st, err, sizeof err), DICOM_OK);
	assert_int_equal(g.n, expect[i].count);
}

static void test_get_not_found(void **state)
{
	char err[512];
	struct got g;

	(void)state;
	NEED_PACS();
	memset(&g, 0, sizeof g);
	assert_int_equal(dicom_get_study(&peer, "1.2.826.0.1.3680043.2.1125.99999.1", store_cb, &g,
					 NULL, err, sizeof err),
			 DICOM_ERR_NOT_FOUND);
	assert_int_equal(g.n, 0);
	assert_int_equal(dicom_get_study(&peer, "1.2.3.x", store_cb, &g, NULL, err, sizeof err),
			 DICOM_ERR_INVALID);
}

static void test_pacs_down(void **state)
{
	char err[512], uid[] = "1.2.3.4";
	struct dicom_peer down = peer;
	struct dicom_study *s;
	size_t n;
	struct got g;

	(void)state;
	NEED_PACS();
	down.port = closed_port;
	memset(&g, 0, sizeof g);
	assert_int_equal(dicom_echo(&down, err, sizeof err), DICOM_ERR_UNREACHABLE);
	assert_non_null(strstr(err, peer.host));
	assert_int_equal(dicom_find_studies(&down, "ACC0001", &s, &n, err, sizeof err),
			 DICOM_ERR_UNREACHABLE);
	assert_int_equal(dicom_get_study(&down, uid, store_cb, &g, NULL, err, sizeof err),
			 DICOM_ERR_UNREACHABLE);
	assert_null(strstr(err, "ACC0001"));
}

/* a peer that completes the TCP handshake and then says nothing */
static void test_silent_peer_times_out(void **state)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof a;
	struct dicom_peer mute = peer;
	char err[512];
	time_t t0;
	int s;

	(void)state;
	NEED_PACS();
	s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s, 4), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
	mute.host = "127.0.0.1";
	mute.port = ntohs(a.sin_port);
	mute.assoc_timeout = 1;
	mute.network_timeout = 1;
	mute.dimse_timeout = 1;
	t0 = time(NULL);
	assert_int_equal(dicom_echo(&mute, err, sizeof err), DICOM_ERR_UNREACHABLE);
	assert_true(time(NULL) - t0 <= 5);
	close(s);
}

static void test_wrong_ae_titles(void **state)
{
	char err[512];
	struct dicom_peer wrong = peer;
	struct dicom_study *s;
	size_t n;

	(void)state;
	NEED_PACS();
	wrong.called_ae = "NOTTHEPACS";
	assert_int_equal(dicom_echo(&wrong, err, sizeof err), DICOM_ERR_REJECTED);
	assert_int_equal(dicom_find_studies(&wrong, "ACC0001", &s, &n, err, sizeof err),
			 DICOM_ERR_REJECTED);
	wrong = peer;
	wrong.calling_ae = "STRANGER";
	assert_int_equal(dicom_echo(&wrong, err, sizeof err), DICOM_ERR_REJECTED);
	wrong.calling_ae = "WAY-TOO-LONG-AE-TITLE";
	assert_int_equal(dicom_echo(&wrong, err, sizeof err), DICOM_ERR_INVALID);
}

#define NEED_MOVE()                                                                         \
	do {                                                                                \
		if (!have_pacs || node_port <= 0)                                           \
			skip();                                                             \
	} while (0)

static void test_move_every_study(void **state)
{
	int jpeg2000 = 0, rle = 0, big = 0, implicit = 0;

	(void)state;
	NEED_MOVE();
	for (int i = 0; i < nexpect; i++) {
		char uid[DICOM_UID_MAX + 1], err[512];
		struct got g;
		struct dicom_get_stats st;
		enum dicom_err r;

		find_one(expect[i].acc, uid, NULL);
		memset(&g, 0, sizeof g);
		r = dicom_move_study(&peer, uid, "127.0.0.1", node_port, store_cb, &g, &st, err,
				     sizeof err);
		if (r != DICOM_OK)
			fail_msg("move %s: %s: %s", expect[i].acc, dicom_err_name(r), err);
		if (st.instances != expect[i].count || g.n != expect[i].count)
			fail_msg("move %s: %lu instances (%lu seen), expected %lu", expect[i].acc,
				 st.instances, g.n, expect[i].count);
		assert_true(st.bytes > 0);
		jpeg2000 |= has_ts(&g, "1.2.840.10008.1.2.4.91") || has_ts(&g, "1.2.840.10008.1.2.4.90");
		rle |= has_ts(&g, "1.2.840.10008.1.2.5");
		big |= has_ts(&g, "1.2.840.10008.1.2.2");
		implicit |= has_ts(&g, "1.2.840.10008.1.2");
	}
	assert_true(jpeg2000 && rle && big && implicit);
}

static void test_move_deidentified_in_memory(void **state)
{
	char uid[DICOM_UID_MAX + 1], err[512], tmpl[] = "/tmp/flip-test-net-XXXXXX";
	struct got g;
	struct dicom_get_stats st;
	enum dicom_err r;
	int i;

	(void)state;
	NEED_MOVE();
	for (i = 0; i < nexpect && expect[i].count < 2; i++)
		;
	if (i == nexpect)
		fail_msg("the fixture has no study of several instances");
	find_one(expect[i].acc, uid, NULL);
	memset(&g, 0, sizeof g);
	g.deid = 1;
	assert_non_null(mkdtemp(tmpl));
	snprintf(g.dir, sizeof g.dir, "%s", tmpl);
	r = dicom_move_study(&peer, uid, "127.0.0.1", node_port, store_cb, &g, &st, err,
			     sizeof err);
	rmdir(tmpl);
	if (r != DICOM_OK)
		fail_msg("move %s: %s: %s", expect[i].acc, dicom_err_name(r), err);
	assert_int_equal(g.n, expect[i].count);
}

static void test_move_storage_error(void **state)
{
	char uid[DICOM_UID_MAX + 1], err[512];
	struct got g;
	struct dicom_get_stats st;
	int i;

	(void)state;
	NEED_MOVE();
	for (i = 0; i < nexpect && expect[i].count < 3; i++)
		;
	if (i == nexpect)
		fail_msg("the fixture has no study of three instances or more");
	find_one(expect[i].acc, uid, NULL);
	memset(&g, 0, sizeof g);
	g.fail_at = 2;
	assert_int_equal(dicom_move_study(&peer, uid, "127.0.0.1", node_port, store_cb, &g, &st,
					  err, sizeof err),
			 DICOM_ERR_STORAGE);
	assert_non_null(strstr(err, "test: disk full"));
	assert_int_equal(st.instances, 1);
	/* the receiver is gone and its port free: the next C-MOVE gets the whole study */
	memset(&g, 0, sizeof g);
	if (dicom_move_study(&peer, uid, "127.0.0.1", node_port, store_cb, &g, &st, err,
			     sizeof err) != DICOM_OK)
		fail_msg("move again: %s", err);
	assert_int_equal(g.n, expect[i].count);
}

static void test_move_not_found(void **state)
{
	char err[512];
	struct got g;

	(void)state;
	NEED_MOVE();
	memset(&g, 0, sizeof g);
	assert_int_equal(dicom_move_study(&peer, "1.2.826.0.1.3680043.2.1125.99999.1", "127.0.0.1",
					  node_port, store_cb, &g, NULL, err, sizeof err),
			 DICOM_ERR_NOT_FOUND);
	assert_int_equal(g.n, 0);
	assert_int_equal(dicom_move_study(&peer, "1.2.3.4", "127.0.0.1", 0, store_cb, &g, NULL, err,
					  sizeof err),
			 DICOM_ERR_INVALID);
}

static void test_move_port_in_use(void **state)
{
	char uid[DICOM_UID_MAX + 1], err[512];
	struct sockaddr_in a;
	struct got g;
	int fd;

	(void)state;
	NEED_MOVE();
	find_one(expect[0].acc, uid, NULL);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)node_port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(fd, 1), 0);
	memset(&g, 0, sizeof g);
	assert_int_equal(dicom_move_study(&peer, uid, "127.0.0.1", node_port, store_cb, &g, NULL,
					  err, sizeof err),
			 DICOM_ERR_IO);
	close(fd);
	assert_non_null(strstr(err, "already in use"));
	assert_int_equal(g.n, 0);
}

/* parse_expect - "ACC0001=1,ACC0002=7" into expect[] */
static int parse_expect(const char *s)
{
	char buf[4096], *tok, *save = NULL;

	snprintf(buf, sizeof buf, "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok && nexpect < MAX_ACC;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq == NULL || eq == tok)
			return -1;
		*eq = 0;
		snprintf(expect[nexpect].acc, sizeof expect[0].acc, "%s", tok);
		expect[nexpect].count = strtoul(eq + 1, NULL, 10);
		if (expect[nexpect].count == 0)
			return -1;
		nexpect++;
	}
	return nexpect > 0 ? 0 : -1;
}

static int setup(void **state)
{
	const char *host = getenv("FLIP_TEST_PACS_HOST"), *port = getenv("FLIP_TEST_PACS_PORT");
	const char *aet = getenv("FLIP_TEST_PACS_AET"), *node = getenv("FLIP_TEST_NODE_AET");
	const char *closed = getenv("FLIP_TEST_PACS_CLOSED_PORT");
	const char *exp = getenv("FLIP_TEST_PACS_EXPECT");

	(void)state;
	dicom_init(getenv("FLIP_TEST_DICOM_DEBUG") != NULL);
	if (!host || !port || !aet || !node || !closed || !exp)
		return 0; /* every test skips */
	if (parse_expect(exp) != 0)
		return -1;
	peer.host = host;
	peer.port = atoi(port);
	peer.called_ae = aet;
	peer.calling_ae = node;
	peer.assoc_timeout = 10;
	peer.dimse_timeout = 30;
	peer.network_timeout = 30;
	closed_port = atoi(closed);
	node_port = getenv("FLIP_TEST_NODE_PORT") ? atoi(getenv("FLIP_TEST_NODE_PORT")) : 0;
	have_pacs = 1;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_find_each_once),
		cmocka_unit_test(test_find_case_variant),
		cmocka_unit_test(test_find_refuses_wildcards),
		cmocka_unit_test(test_get_every_study),
		cmocka_unit_test(test_get_deidentified_in_memory),
		cmocka_unit_test(test_get_storage_error),
		cmocka_unit_test(test_get_not_found),
		cmocka_unit_test(test_pacs_down),
		cmocka_unit_test(test_silent_peer_times_out),
		cmocka_unit_test(test_wrong_ae_titles),
		cmocka_unit_test(test_move_every_study),
		cmocka_unit_test(test_move_deidentified_in_memory),
		cmocka_unit_test(test_move_storage_error),
		cmocka_unit_test(test_move_not_found),
		cmocka_unit_test(test_move_port_in_use),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
