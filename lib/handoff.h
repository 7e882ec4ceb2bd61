/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handoff - imaging studies handed to FL training code, and its results taken back.
 *
 * SYNOPSIS
 *	#include "lib/handoff.h"
 *
 *	int handoff_download(const struct config *cfg, const char *net_id, const char *project,
 *			     const char *accession, const char *assessor_type,
 *			     const char *resource_type, int force, char *path, size_t pathlen,
 *			     const char **detail);
 *	int handoff_upload(const struct config *cfg, const char *net_id, const char *project,
 *			   const char *accession, const char *scan_id, const char *resource_id,
 *			   const json_t *files, int exist_ok, json_t **stored, const char **detail);
 *	int handoff_sweep(const struct config *cfg, time_t now, struct handoff_sweep *sw);
 *
 * DESCRIPTION
 *	handoff_download() makes one accession's files of the given resource type
 *	(NIFTI, DICOM, SEG, any other resource name the store holds, or ALL for every
 *	one) available under
 *	BASE_IMAGES_DOWNLOAD_DIR/<net_id>/<hub project>/<accession>/scans/<series>/
 *	resources/<TYPE>/files/, as hard links from the project store where the file
 *	system allows (a copy otherwise), then writes the sentinel. Every file handed
 *	over is 0440, owned by the node's user, in the FL client's group
 *	(FL_CLIENT_USER's primary group; the store file itself when it is a link),
 *	and every folder 0750 in that group: the client reads, and cannot change the
 *	store through a link. The node's user must be in that group (the package
 *	puts it there); without the user nothing is handed over (500). The sentinel is
 *	.flip_complete-<assessor_type>-<resource_type>. With the sentinel present (and
 *	no force) it answers at once, touching the sentinel (the copy is in use).
 *	Every component was validated by the caller
 *	(ident.h); the final directory must resolve inside the base directory.
 *	assessor_type "assessor" asks for derived resources, which the native store
 *	does not hold: not found.
 *
 *	handoff_upload() takes files training code wrote under
 *	BASE_IMAGES_DOWNLOAD_DIR/<net_id>/upload/ (each a relative path without ".."
 *	or links) into the store as the resource <resource_id> of scan <scan_id> of
 *	that accession (write-fsync-rename, each), refusing to replace an existing
 *	resource unless exist_ok and an upload created it (a new resource is marked
 *	so with a .flip-upload file before any file goes in: retrieved DICOM, NIFTI
 *	and SEG resources are never written by an upload), and removes the
 *	accession's sentinels so the next
 *	download sees it. *stored lists the stored file names.
 *
 *	handoff_sweep() is `flipctl purge --images` (docs/design/imaging.md): under
 *	BASE_IMAGES_DOWNLOAD_DIR/<net_id>/<hub project>/ it removes each accession
 *	copy whose last use (its folder's mtime, or a sentinel's: a download touches
 *	it) is older than IMAGE_CACHE_RETENTION_HOURS, then the project folder if it
 *	is left empty. Only names the node makes are looked at (net-N, a UUID, an
 *	accession), never through a link; <net_id>/upload/ and anything else there is
 *	the training code's and is left alone. The store's files are hard links, so
 *	removing a copy never touches the project store; a base directory that holds,
 *	or is inside, FLIP_STATE_DIR is refused (ELOOP) rather than swept. sw counts
 *	the copies removed, kept and skipped, and the failures.
 *
 * DIAGNOSTICS
 *	handoff_sweep() returns 0 (a missing base directory is nothing to do), or -1
 *	with errno. The others return the HTTP status to answer (200 on success), with *detail the text for the
 *	others: 404 project, accession or resource not found; 409 resource exists;
 *	422 a path or name that is not acceptable; 500 "Trust-side storage error".
 */
#ifndef FLIP_HANDOFF_H
#define FLIP_HANDOFF_H

#include <stddef.h>
#include <time.h>
#include <jansson.h>

#include "lib/config.h"

int handoff_download(const struct config *cfg, const char *net_id, const char *project,
		     const char *accession, const char *assessor_type, const char *resource_type,
		     int force, char *path, size_t pathlen, const char **detail);
struct handoff_sweep {
	long removed, kept, skipped, errors;
};

int handoff_upload(const struct config *cfg, const char *net_id, const char *project,
		   const char *accession, const char *scan_id, const char *resource_id,
		   const json_t *files, int exist_ok, json_t **stored, const char **detail);
int handoff_sweep(const struct config *cfg, time_t now, struct handoff_sweep *sw);

#endif
