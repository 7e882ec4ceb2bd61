/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kit - the FL participant kit: safe installation from a tarball, verification, local/.
 *
 * SYNOPSIS
 *	#include "lib/kit.h"
 *
 *	int kit_paths(const char *kit_dir, const char *slot, struct kit_paths *p);
 *	int kit_member_path(const char *path, char *clean, size_t cleanlen,
 *			    const char **why);
 *	int kit_link_target_ok(const char *target, const char **why);
 *	int kit_stage(const char *tarball, const char *services_dir,
 *		      const struct kit_limits *lim, struct kit_stage *st,
 *		      char *err, size_t errlen);
 *	int kit_switch(struct kit_stage *st, const char *slot, char *err, size_t errlen);
 *	void kit_stage_discard(struct kit_stage *st);
 *	void kit_verify(const char *kit, const char *slot, time_t now,
 *			const struct kit_trust *trust, struct kit_findings *f);
 *	void kit_check_site(const char *kit, const char *images_dir,
 *			    struct kit_findings *f);
 *	int kit_render(const char *kit, int gpus, int mem_gib, json_t *privacy,
 *		       unsigned *changed, char *err, size_t errlen);
 *	int kit_cert_expiry(const char *kit, time_t *not_after);
 *	int kit_share(const char *kit, gid_t group, char *err, size_t errlen);
 *
 * DESCRIPTION
 *	The live kit of slot S is FL_KIT_DIR/net-1/services/S/ (docs/design/fl.md): startup/
 *	(signed by the kit's root CA), local/ (site-owned, rendered here) and
 *	transfer/. kit_paths() fills in those paths; -1 when one would not fit or
 *	slot is not a single path component.
 *
 *	kit_stage() extracts a tarball ("-": standard input, which must be a regular
 *	file too; tar, optionally gzip, bzip2, xz or zstd
 *	compressed; libarchive reads it, this module writes every file itself,
 *	relative to directory descriptors, O_NOFOLLOW and O_EXCL) into a new folder
 *	`.new-<pid>` of services_dir, which is created if missing. Left-over
 *	`.new-*` and `.old-*` folders of an interrupted install are removed first
 *	(the caller holds the FL lock). Refused, with the member and the reason: a
 *	path that is absolute, has a `..` component or a control character, or is
 *	too long or too deep (kit_member_path); a symbolic link whose target is not
 *	a relative path going down (kit_link_target_ok: such a link cannot lead
 *	outside, even through other links); a hard link to anything but an earlier
 *	regular file of the archive; a device, FIFO or socket; a member over
 *	lim->member_max bytes (claimed in its header or actually read), a running
 *	total over lim->total_max, more than lim->entries_max entries; a member
 *	written through a link or over an earlier one; a truncated or corrupt
 *	archive. Modes are set, not taken from the archive: directories 0750, files
 *	0640, `*.key` 0600, and in startup/ the `.sh` files and those marked
 *	executable 0750. The kit may sit at the top of the archive or under up to
 *	four single folders (`Trust_2/`, `net-1/services/Trust_2/`): st->path is
 *	the folder holding startup/fed_client.json. transfer/ and local/ are created
 *	when the archive lacks them. Every file and directory is fsynced.
 *	st->fingerprint is the SHA-256 of the tarball's bytes as read.
 *
 *	kit_switch() makes the staged kit the live one: one renameat2(2)
 *	RENAME_EXCHANGE with the old kit (a plain rename when there is none; two
 *	renames on a file system without exchange), then removes the old kit.
 *	kit_stage_discard() removes whatever kit_stage() left (after kit_switch()
 *	too) and closes its descriptors; it may be called more than once.
 *
 *	kit_verify() is the check of docs/design/fl.md on the kit folder `kit`: the startup
 *	files exist (executable where they are scripts); when trust names a root
 *	(root_ca_sha256: SHA-256 of rootCA.pem's DER certificate, hex, colons and
 *	case ignored) rootCA.pem must be that root; signature.json may be absent
 *	(NVFLARE 2.8 provisions such kits and treats unlisted files as not signed):
 *	then f->unsigned_kit is set and a warning says so, unless
 *	trust->require_signature makes it a problem. When present, signature.json maps every
 *	other file of startup/, and nothing else, to the standard base64 of an
 *	RSA-PSS signature (SHA-256, MGF1-SHA-256, salt length recovered from the
 *	signature) by rootCA.pem's key; fed_client.json's client.fqsn is slot;
 *	client.crt chains to rootCA.pem, both are within their validity (a warning
 *	when client.crt ends within KIT_EXPIRY_WARN_DAYS); client.key is the key of
 *	client.crt and no one but its owner may read it. kit_check_site() adds what
 *	depends on the host: transfer/ is a writable directory, and the net's image
 *	folder images_dir/net-1 exists and belongs to this user (the node's, which
 *	hands image copies to the FL client's group there). Each problem is one line in f->problem[] naming the file;
 *	f->cert_not_after is client.crt's end (0 when unknown).
 *
 *	kit_render() writes local/resources.json (NVFLARE's GPU resource manager and
 *	consumer: gpus GPUs of mem_gib GiB), local/log_config.json (Python logging,
 *	everything to stdout) and local/privacy.json (privacy, from privacy_render(),
 *	or, when NULL, removes the file), each with durable_write, mode 0640, local/
 *	created when missing. *changed gets KIT_CHANGED_* bits for the files whose
 *	content changed (a running client reads them only when it starts).
 *	kit_cert_expiry() reads client.crt's notAfter.
 *
 *	kit_share() gives the kit tree to the FL client's group (its own user runs
 *	the client, fluser.h): every file and folder this user owns gets group
 *	`group`; files are readable by it and never writable by it (client.key
 *	0640); folders are 0750, except the kit folder itself, 01770 (the client's
 *	workspace: it adds its job folders, the sticky bit keeps startup/, local/ and
 *	transfer/ from being renamed or removed), and transfer/, 02770. What the
 *	client made is left alone. kit_verify() accepts a client.key its group may
 *	read, never one others may read or the group may write.
 *
 * DIAGNOSTICS
 *	kit_stage(), kit_switch(), kit_render() return 0, or -1 with a one-line
 *	message in err (kit_stage: KIT_REFUSED, 1, when the archive itself is at
 *	fault, -1 for the host: I/O, memory). kit_member_path() returns 0 (clean
 *	is the path without `.` and empty components), 1 for the archive's root
 *	itself, -1 with *why. kit_link_target_ok() returns 0 or -1 with *why.
 *	Nothing is printed; nothing exits; no key material is ever put in a message.
 */
#ifndef FLIP_KIT_H
#define FLIP_KIT_H

#include <limits.h>
#include <stddef.h>
#include <time.h>
#include <sys/types.h>
#include <jansson.h>

#define KIT_NET "net-1"
#define KIT_PATH_MAX 1024	     /* bytes of a member path */
#define KIT_DEPTH_MAX 32	     /* components of a member path */
#define KIT_MEMBER_MAX (64LL << 20)  /* bytes of one member */
#define KIT_TOTAL_MAX (512LL << 20)  /* bytes of all members */
#define KIT_ENTRIES_MAX 10000L	     /* members */
#define KIT_EXPIRY_WARN_DAYS 30
#define KIT_REFUSED 1

#define KIT_MAX_FINDINGS 48
#define KIT_FINDING_LEN 320

enum { KIT_CHANGED_RESOURCES = 1, KIT_CHANGED_LOG = 2, KIT_CHANGED_PRIVACY = 4 };

struct kit_paths {
	char services[PATH_MAX];	/* FL_KIT_DIR/net-1/services */
	char live[PATH_MAX];		/* .../services/<slot> */
	char startup[PATH_MAX];		/* .../services/<slot>/startup */
};

struct kit_limits {
	long long member_max, total_max;
	long entries_max;
};

struct kit_stage {
	int servicesfd;			/* -1 when nothing is staged */
	char name[32];			/* ".new-<pid>" in services */
	char root[KIT_PATH_MAX];	/* kit folder inside name, "" for name itself */
	char path[PATH_MAX];		/* absolute path of the staged kit folder */
	char fingerprint[65];		/* SHA-256 of the tarball, hex */
	long files, dirs, links;
	long long bytes;
	int switched;
};

struct kit_findings {
	int nproblems, nwarnings;
	char problem[KIT_MAX_FINDINGS][KIT_FINDING_LEN];
	char warning[8][KIT_FINDING_LEN];
	time_t cert_not_after;
	int unsigned_kit;		/* the kit has no signature.json (accepted) */
};

struct kit_trust {
	int require_signature;		/* FL_KIT_REQUIRE_SIGNATURE */
	const char *root_ca_sha256;	/* FL_KIT_ROOT_CA_SHA256, NULL when not pinned */
};

int kit_paths(const char *kit_dir, const char *slot, struct kit_paths *p);
int kit_member_path(const char *path, char *clean, size_t cleanlen, const char **why);
int kit_link_target_ok(const char *target, const char **why);
int kit_stage(const char *tarball, const char *services_dir, const struct kit_limits *lim,
	      struct kit_stage *st, char *err, size_t errlen);
int kit_switch(struct kit_stage *st, const char *slot, char *err, size_t errlen);
void kit_stage_discard(struct kit_stage *st);
void kit_verify(const char *kit, const char *slot, time_t now, const struct kit_trust *trust,
		struct kit_findings *f);
void kit_check_site(const char *kit, const char *images_dir, struct kit_findings *f);
int kit_render(const char *kit, int gpus, int mem_gib, json_t *privacy, unsigned *changed,
	       char *err, size_t errlen);
int kit_cert_expiry(const char *kit, time_t *not_after);
int kit_share(const char *kit, gid_t group, char *err, size_t errlen);

#endif
