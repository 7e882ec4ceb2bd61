/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_kit - the kit's path checks, extraction rules and local/ rendering.
 *
 * Path checks: kit_member_path() cleans `.` and empty components and refuses
 * absolute paths, `..` anywhere, control characters, over-long paths and
 * components, and paths deeper than KIT_DEPTH_MAX; kit_link_target_ok() takes only
 * relative targets that never go up; kit_paths() refuses a slot that is not one
 * path component. Extraction (tarballs written here with libarchive): a kit at
 * the top or under a folder is found, modes are set by rule (0750 folders, 0640
 * files, 0600 keys, 0750 startup scripts) whatever the archive says, a downward
 * link and a hard link to an earlier file are accepted, a member through a link
 * and a hard link to a later member are refused, the caps (entries, claimed and
 * actual member size, total) are enforced, a corrupt archive is refused, nothing
 * is left behind after a refusal, and the fingerprint is the tarball's SHA-256.
 * kit_switch() exchanges an old kit for the new one. kit_render() writes the
 * three local/ files, reports which changed, and removes a stale privacy.json.
 * (Signature and certificate checks need real keys: tests/integration/test_fl.py.)
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

#include <archive.h>
#include <archive_entry.h>
#include "lib/digest.h"
#include "lib/kit.h"

struct fixture {
	char dir[64];
	char tar[128];
	char services[128];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/test_kit.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->tar, sizeof(f->tar), "%s/kit.tar", f->dir);
	snprintf(f->services, sizeof(f->services), "%s/fl-kit/net-1/services", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

	free(f);
	return rc;
}

/* ---- path checks ----------------------------------------------------------------- */

static void test_member_path(void **state)
{
	char clean[KIT_PATH_MAX], longp[KIT_PATH_MAX + 8], deep[256], comp[300];
	const char *why = NULL;

	(void)state;
	assert_int_equal(kit_member_path("startup/client.key", clean, sizeof(clean), &why), 0);
	assert_string_equal(clean, "startup/client.key");
	assert_int_equal(kit_member_path("./Trust_2//startup/./x/", clean, sizeof(clean), &why), 0);
	assert_string_equal(clean, "Trust_2/startup/x");
	assert_int_equal(kit_member_path("./", clean, sizeof(clean), &why), 1);
	assert_int_equal(kit_member_path("a..b/..c/d..", clean, sizeof(clean), &why), 0);

	assert_int_equal(kit_member_path("/etc/passwd", clean, sizeof(clean), &why), -1);
	assert_string_equal(why, "absolute path");
	assert_int_equal(kit_member_path("../x", clean, sizeof(clean), &why), -1);
	assert_string_equal(why, "`..` in path");
	assert_int_equal(kit_member_path("a/b/../../../x", clean, sizeof(clean), &why), -1);
	assert_int_equal(kit_member_path("a/..", clean, sizeof(clean), &why), -1);
	assert_int_equal(kit_member_path("", clean, sizeof(clean), &why), -1);
	assert_int_equal(kit_member_path("a\nb", clean, sizeof(clean), &why), -1);
	assert_string_equal(why, "control character in path");
	assert_int_equal(kit_member_path("a\033[2Jb", clean, sizeof(clean), &why), -1);

	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	assert_int_equal(kit_member_path(longp, clean, sizeof(clean), &why), -1);
	assert_string_equal(why, "path too long");
	memset(comp, 'b', sizeof(comp) - 1);
	comp[sizeof(comp) - 1] = 0;
	assert_int_equal(kit_member_path(comp, clean, sizeof(clean), &why), -1);
	assert_string_equal(why, "path component too long");
	deep[0] = 0;
	for (int i = 0; i < KIT_DEPTH_MAX + 1; i++)
		strcat(deep, "d/");
	assert_int_equal(kit_member_path(deep, clean, sizeof(clean), &why), -1);
	assert_string_equal(why, "path too deep");
	/* a too small output buffer is refused, never overflowed */
	assert_int_equal(kit_member_path("startup/client.key", clean, 8, &why), -1);
}

static void test_link_target(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_int_equal(kit_link_target_ok("sub/file", &why), 0);
	assert_int_equal(kit_link_target_ok("./file", &why), 0);
	assert_int_equal(kit_link_target_ok("/etc", &why), -1);
	assert_string_equal(why, "link to an absolute path");
	assert_int_equal(kit_link_target_ok("../startup/rootCA.pem", &why), -1);
	assert_string_equal(why, "link pointing up (`..`)");
	assert_int_equal(kit_link_target_ok("a/../../b", &why), -1);
	assert_int_equal(kit_link_target_ok(".", &why), -1);
	assert_int_equal(kit_link_target_ok("", &why), -1);
}

static void test_paths(void **state)
{
	struct kit_paths p;

	(void)state;
	assert_int_equal(kit_paths("/opt/flip/fl-kit", "Trust_2", &p), 0);
	assert_string_equal(p.services, "/opt/flip/fl-kit/net-1/services");
	assert_string_equal(p.live, "/opt/flip/fl-kit/net-1/services/Trust_2");
	assert_string_equal(p.startup, "/opt/flip/fl-kit/net-1/services/Trust_2/startup");
	assert_int_equal(kit_paths("/opt", "../x", &p), -1);
	assert_int_equal(kit_paths("/opt", "..", &p), -1);
	assert_int_equal(kit_paths("/opt", "", &p), -1);
	assert_int_equal(kit_paths("/opt", NULL, &p), -1);
}

/* ---- extraction ----------------------------------------------------------------- */

enum { M_FILE, M_DIR, M_LINK, M_HARD, M_FIFO, M_CLAIM };

struct member {
	int kind;
	const char *path;
	const char *data;	/* file content, link target */
	int mode;
	long long size;		/* M_CLAIM: the size the header claims */
};

/*
 * write_tar - a tar file of the members. Written to memory unblocked, then to the
 * file: a member claiming a size it does not have (M_CLAIM) must be the last, and
 * the archive then simply ends after its header (libarchive would pad it to the
 * claimed size on close).
 */
static void write_tar(const char *path, const struct member *m, size_t n)
{
	static char mem[1 << 20];
	struct archive *a = archive_write_new();
	struct archive_entry *e;
	size_t used = 0;
	FILE *fp;

	assert_non_null(a);
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_bytes_per_block(a, 0), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(a, mem, sizeof(mem), &used), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		e = archive_entry_new();
		archive_entry_set_pathname(e, m[i].path);
		archive_entry_set_perm(e, (mode_t)(m[i].mode ? m[i].mode : 0644));
		switch (m[i].kind) {
		case M_FILE:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, (la_int64_t)strlen(m[i].data));
			break;
		case M_DIR: archive_entry_set_filetype(e, AE_IFDIR); break;
		case M_LINK:
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, m[i].data);
			break;
		case M_HARD:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, m[i].data);
			break;
		case M_FIFO: archive_entry_set_filetype(e, AE_IFIFO); break;
		case M_CLAIM:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, (la_int64_t)m[i].size);
			break;
		}
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (m[i].kind == M_FILE)
			archive_write_data(a, m[i].data, strlen(m[i].data));
		archive_entry_free(e);
		if (m[i].kind == M_CLAIM)
			break;
	}
	if (n == 0 || m[n - 1].kind != M_CLAIM)
		assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(mem, 1, used, fp), used);
	fclose(fp);
	/* after a claim, free's implicit close fails on the full buffer: nothing more is kept */
	archive_write_free(a);
}

static const struct member kit_min[] = {
	{M_DIR, "Trust_2", NULL, 0755, 0},
	{M_FILE, "Trust_2/startup/fed_client.json", "{}", 0666, 0},
	{M_FILE, "Trust_2/startup/client.key", "KEY", 0644, 0},
	{M_FILE, "Trust_2/startup/sub_start.sh", "#!/bin/sh\n", 0644, 0},
	{M_FILE, "Trust_2/startup/helper", "#!/bin/sh\n", 0755, 0},
	{M_FILE, "Trust_2/local/notes.sh", "x", 0777, 0},
};

static const struct kit_limits lim_default = {KIT_MEMBER_MAX, KIT_TOTAL_MAX, KIT_ENTRIES_MAX};

static int mode_of(const char *dir, const char *rel)
{
	char p[PATH_MAX + 256];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (lstat(p, &sb) < 0)
		return -1;
	return (int)(sb.st_mode & 07777);
}

/* stage_only_entries - what is in services after a refusal: nothing but nothing */
static int services_entries(const char *services)
{
	char cmd[256];
	int n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -A %s 2>/dev/null | wc -l", services);
	p = popen(cmd, "r");
	if (p == NULL || fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p != NULL)
		pclose(p);
	return n;
}

static void test_stage_modes_and_root(void **state)
{
	struct fixture *f = *state;
	struct kit_stage st;
	char err[512], hex[65], buf[65536];
	FILE *fp;
	size_t n;

	write_tar(f->tar, kit_min, sizeof(kit_min) / sizeof(kit_min[0]));
	assert_int_equal(kit_stage(f->tar, f->services, &lim_default, &st, err, sizeof(err)), 0);
	assert_string_equal(st.root, "Trust_2");
	assert_int_equal(mode_of(st.path, "."), 0750);
	assert_int_equal(mode_of(st.path, "startup"), 0750);
	assert_int_equal(mode_of(st.path, "startup/fed_client.json"), 0640);
	assert_int_equal(mode_of(st.path, "startup/client.key"), 0600);
	assert_int_equal(mode_of(st.path, "startup/sub_start.sh"), 0750);
	assert_int_equal(mode_of(st.path, "startup/helper"), 0750);
	assert_int_equal(mode_of(st.path, "local/notes.sh"), 0640); /* only startup/ scripts */
	assert_int_equal(mode_of(st.path, "transfer"), 0750);	    /* made when missing */
	assert_int_equal(st.files, 5);

	/* the fingerprint is the tarball's SHA-256 */
	fp = fopen(f->tar, "rb");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf), fp);
	assert_true(feof(fp)); /* the whole small tarball */
	fclose(fp);
	digest_sha256_hex(buf, n, hex);
	assert_string_equal(st.fingerprint, hex);

	/* the switch puts it in place; a second one exchanges and removes the old kit */
	assert_int_equal(kit_switch(&st, "Trust_2", err, sizeof(err)), 0);
	assert_int_equal(services_entries(f->services), 1);
	assert_int_equal(kit_stage(f->tar, f->services, &lim_default, &st, err, sizeof(err)), 0);
	assert_int_equal(kit_switch(&st, "Trust_2", err, sizeof(err)), 0);
	assert_int_equal(services_entries(f->services), 1);
	kit_stage_discard(&st);
}

static void test_stage_flat(void **state)
{
	struct fixture *f = *state;
	const struct member m[] = {
		{M_FILE, "./startup/fed_client.json", "{}", 0, 0},
		{M_DIR, "./transfer", NULL, 0700, 0},
	};
	struct kit_stage st;
	char err[512];

	write_tar(f->tar, m, 2);
	assert_int_equal(kit_stage(f->tar, f->services, &lim_default, &st, err, sizeof(err)), 0);
	assert_string_equal(st.root, "");
	assert_int_equal(mode_of(st.path, "transfer"), 0750);
	kit_stage_discard(&st);
	assert_int_equal(services_entries(f->services), 0);
}

static void test_stage_links(void **state)
{
	struct fixture *f = *state;
	const struct member ok[] = {
		{M_FILE, "startup/fed_client.json", "{}", 0, 0},
		{M_DIR, "local/sub", NULL, 0, 0},
		{M_LINK, "local/down", "sub", 0, 0},
		{M_HARD, "local/again.json", "startup/fed_client.json", 0, 0},
	};
	struct kit_stage st;
	char err[512], p[PATH_MAX + 32], target[64];
	ssize_t n;

	write_tar(f->tar, ok, 4);
	assert_int_equal(kit_stage(f->tar, f->services, &lim_default, &st, err, sizeof(err)), 0);
	snprintf(p, sizeof(p), "%s/local/down", st.path);
	n = readlink(p, target, sizeof(target) - 1);
	assert_int_equal(n, 3);
	assert_int_equal(st.links, 2);
	kit_stage_discard(&st);
}

/* refused_with - kit_stage refuses the members, saying needle, and leaves nothing */
static void refused_with(struct fixture *f, const struct member *m, size_t n,
			 const struct kit_limits *lim, const char *needle)
{
	struct kit_stage st;
	char err[512];
	int rc;

	write_tar(f->tar, m, n);
	rc = kit_stage(f->tar, f->services, lim ? lim : &lim_default, &st, err, sizeof(err));
	if (rc != KIT_REFUSED)
		fail_msg("kit_stage returned %d, not KIT_REFUSED (%s), for '%s'", rc,
			 rc ? err : "no error", needle);
	if (strstr(err, needle) == NULL)
		fail_msg("'%s' not in '%s'", needle, err);
	assert_int_equal(services_entries(f->services), 0);
	kit_stage_discard(&st); /* harmless after a refusal */
}

static void test_stage_refusals(void **state)
{
	struct fixture *f = *state;
	const struct member through[] = {
		{M_DIR, "local/sub", NULL, 0, 0},
		{M_LINK, "local/down", "sub", 0, 0},
		{M_FILE, "local/down/x", "through the link", 0, 0},
	};
	const struct member hard_later[] = {
		{M_HARD, "local/a", "local/b", 0, 0},
		{M_FILE, "local/b", "b", 0, 0},
	};
	const struct member hard_dir[] = {
		{M_DIR, "local/d", NULL, 0, 0},
		{M_HARD, "local/a", "local/d", 0, 0},
	};
	const struct member fifo[] = {{M_FIFO, "local/p", NULL, 0, 0}};
	const struct member dup[] = {
		{M_FILE, "local/a", "1", 0, 0},
		{M_FILE, "./local/a", "2", 0, 0},
	};
	const struct member over_dir[] = {
		{M_FILE, "local/a", "1", 0, 0},
		{M_FILE, "local/a/b", "2", 0, 0},
	};
	const struct member no_kit[] = {{M_FILE, "a/startup/x", "1", 0, 0},
					{M_FILE, "b/startup/fed_client.json", "{}", 0, 0}};
	const struct member claim[] = {{M_CLAIM, "local/big", NULL, 0, 1LL << 40}};
	const struct member three[] = {
		{M_FILE, "startup/fed_client.json", "{}", 0, 0},
		{M_FILE, "local/a", "0123456789", 0, 0},
		{M_FILE, "local/b", "0123456789", 0, 0},
	};
	struct kit_limits small = {8, KIT_TOTAL_MAX, KIT_ENTRIES_MAX};
	struct kit_limits total = {KIT_MEMBER_MAX, 15, KIT_ENTRIES_MAX};
	struct kit_limits two = {KIT_MEMBER_MAX, KIT_TOTAL_MAX, 2};

	refused_with(f, through, 3, NULL, "through a link");
	refused_with(f, hard_later, 2, NULL, "not an earlier file");
	refused_with(f, hard_dir, 2, NULL, "not an earlier file");
	refused_with(f, fifo, 1, NULL, "device, FIFO or socket");
	refused_with(f, dup, 2, NULL, "appears twice");
	refused_with(f, over_dir, 2, NULL, "through a link or a file");
	refused_with(f, no_kit, 2, NULL, "no startup/fed_client.json");
	refused_with(f, claim, 1, NULL, "claims 1099511627776 bytes");
	refused_with(f, three, 3, &small, "cap of 8 bytes per member");
	refused_with(f, three, 3, &total, "cap of 15 bytes");
	refused_with(f, three, 3, &two, "more than the cap of 2 entries");
}

static void test_stage_not_tar(void **state)
{
	struct fixture *f = *state;
	struct kit_stage st;
	char err[512];
	FILE *fp = fopen(f->tar, "w");

	assert_non_null(fp);
	fputs("this is not a tarball at all, just text that goes on for a while\n", fp);
	fclose(fp);
	assert_int_equal(kit_stage(f->tar, f->services, &lim_default, &st, err, sizeof(err)),
			 KIT_REFUSED);
	assert_int_equal(services_entries(f->services), 0);
	/* a missing tarball is the host's problem, not the archive's */
	unlink(f->tar);
	assert_int_equal(kit_stage(f->tar, f->services, &lim_default, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
}

/* ---- local/ ---------------------------------------------------------------------- */

static void test_render(void **state)
{
	struct fixture *f = *state;
	char kit[128], p[256];
	json_t *doc, *priv;
	json_error_t jerr;
	unsigned changed;
	char err[256];

	snprintf(kit, sizeof(kit), "%s/kit", f->dir);
	assert_int_equal(mkdir(kit, 0750), 0);
	priv = json_pack("{s:[], s:s}", "scopes", "default_scope", "site_default");
	assert_int_equal(kit_render(kit, 2, 24, priv, &changed, err, sizeof(err)), 0);
	assert_int_equal(changed, KIT_CHANGED_RESOURCES | KIT_CHANGED_LOG | KIT_CHANGED_PRIVACY);
	assert_int_equal(mode_of(kit, "local/privacy.json"), 0640);

	snprintf(p, sizeof(p), "%s/local/resources.json", kit);
	doc = json_load_file(p, 0, &jerr);
	assert_non_null(doc);
	json_t *args = json_object_get(json_array_get(json_object_get(doc, "components"), 0), "args");
	assert_int_equal(json_integer_value(json_object_get(args, "num_of_gpus")), 2);
	assert_int_equal(json_integer_value(json_object_get(args, "mem_per_gpu_in_GiB")), 24);
	json_decref(doc);
	snprintf(p, sizeof(p), "%s/local/log_config.json", kit);
	doc = json_load_file(p, 0, &jerr);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(doc, "handlers"), "consoleHandler"),
				    "stream")),
			    "ext://sys.stdout");
	json_decref(doc);

	/* the same again: nothing changed */
	assert_int_equal(kit_render(kit, 2, 24, priv, &changed, err, sizeof(err)), 0);
	assert_int_equal(changed, 0);
	/* no privacy setting: the stale file goes */
	assert_int_equal(kit_render(kit, 2, 24, NULL, &changed, err, sizeof(err)), 0);
	assert_int_equal(changed, KIT_CHANGED_PRIVACY);
	assert_int_equal(mode_of(kit, "local/privacy.json"), -1);
	json_decref(priv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_member_path),
		cmocka_unit_test(test_link_target),
		cmocka_unit_test(test_paths),
		cmocka_unit_test_setup_teardown(test_stage_modes_and_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_flat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_not_tar, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
