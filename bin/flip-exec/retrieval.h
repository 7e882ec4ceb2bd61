/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retrieval - the imaging retrieval worker behind `flip-exec imaging` (docs/design/imaging.md).
 *
 * SYNOPSIS
 *	#include "bin/flip-exec/retrieval.h"
 *
 *	enum err_kind retrieval_run(struct node *n, struct retrieval_stats *st, char *err,
 *				    size_t errlen);
 *
 * DESCRIPTION
 *	Works through every queued accession of every imaging project, oldest project
 *	first, under flip-exec's imaging lock. For each: C-FIND at study level on the
 *	AccessionNumber, keeping exact matches only (Orthanc matches case-insensitively);
 *	none or more than one is queue_failed (never guess), and so is an accession that
 *	is not a single RFC 3986 unreserved path segment. Then the study is retrieved by
 *	C-GET (PACS_RETRIEVE=get, the default: no inbound port) or by C-MOVE to a
 *	receiver the node runs on FLIP_DICOM_PORT for the duration of that one study
 *	(PACS_RETRIEVE=move, for PACS without C-GET): either way every instance is
 *	de-identified in memory (deid.h) before anything touches the disk,
 *	written under its final name by write-rename into a temporary folder laid
 *	out as XNAT lays out its archive, made durable whole by one syncfs(2), and the
 *	folder is renamed into data/<subject>/<accession>/ in one step, so a study is
 *	there whole or not at all.
 *	NIfTI conversion with dcm2niix when the project asked for it and the program is
 *	installed (recorded as skipped otherwise). successful only when every instance
 *	is stored; failed with a category otherwise (storage_error, deid_error,
 *	protocol_error, not_found). An instance whose pixels may show identifying text
 *	(deid_burned_in(): BurnedInAnnotation YES, or undeclared in a capture) stops
 *	the retrieval and nothing of the study is kept: the accession is queue_failed
 *	with the category burned_in_annotation, unless DEID_ALLOW_BURNED_IN is set;
 *	then it is stored and each such instance is an audit event
 *	(imaging.burned_in_stored, with the project, the position and the reason).
 *
 *	Resumable: an accession left in processing by a crash is taken again from the
 *	start (its temporary folder is replaced). A PACS that cannot be reached or
 *	refuses the association puts the accession back in queued and ends the run
 *	(ERR_TRANSIENT): the next timer run tries again, a PACS reboot costs a
 *	delay. A project deleted during retrieval is noticed before each accession and
 *	each instance, and the worker stops working on it.
 *
 *	Logs and state hold counts, positions and pseudonyms ("project <id>: accession
 *	3/40, 212 instances, 96 MB"), never accession numbers or patient data.
 *
 * DIAGNOSTICS
 *	An outcome of lib/err.h, err saying what happened and what to do: ERR_OK
 *	(also when no accession waits, with or without PACS_HOST); ERR_TRANSIENT
 *	when the PACS is down or an accession's state cannot be recorded on the local
 *	disk (the run ends; the next one takes the accession again); ERR_CONFIG when
 *	PACS_HOST is unset while one waits or there is no de-identification key.
 *	A study that fails for good is recorded in its accession's state, not here.
 */
#ifndef FLIP_RETRIEVAL_H
#define FLIP_RETRIEVAL_H

#include <stddef.h>

#include "lib/err.h"
#include "lib/node.h"

struct retrieval_stats {
	int accessions, successful, failed, queue_failed;
	unsigned long instances;
	unsigned long long bytes;
};

enum err_kind retrieval_run(struct node *n, struct retrieval_stats *st, char *err, size_t errlen);

#endif
