/* SPDX-License-Identifier: Apache-2.0 */
/*
 * deid - de-identify one DICOM instance: FLIP's rules plus DICOM PS3.15 Annex E.
 *
 * SYNOPSIS
 *	#include "lib/deid.h"
 *
 *	int deid_instance(struct dicom_ds *ds, const struct deid_params *p,
 *			  struct deid_stats *st, char *err, size_t errlen);
 *	const struct deid_rule *deid_rules(size_t *n);
 *	const char *deid_action_name(enum deid_action a);
 *	const char *deid_method(void);
 *	const char *deid_ltim(unsigned long kept, unsigned long gone);
 *	enum deid_burned deid_burned_in(struct dicom_ds *ds, const char **why);
 *	int deid_uid(const unsigned char *key, size_t keylen, const char *uid,
 *		     char out[DEID_UID_LEN]);
 *
 * DESCRIPTION
 *	deid_instance() rewrites ds in place (lib/dicom.h's dataset API), in this
 *	order:
 *
 *	1. Every attribute of the meta header and the dataset, at every nesting level
 *	   (inside every item of every sequence that is kept), is looked up in one table
 *	   (deid_rules(): tag, keyword, the Basic Profile action of PS3.15 Table E.1-1,
 *	   our action, why they differ), generated with docs/deidentification.md from
 *	   the standard's table by tools/gen-deid-table.py. Actions:
 *	     DEID_REMOVE	the attribute is deleted (X)
 *	     DEID_EMPTY		zero-length value; a sequence loses all its items (Z, X/Z)
 *	     DEID_DUMMY		a fixed dummy of the VR ("ANONYMOUS", 19000101, 000000,
 *				0...); a binary value and a sequence are emptied: their
 *				content could be anything (D, X/D, Z/D, X/Z/D)
 *	     DEID_CLEAN		a content tree (ContentSequence, GraphicAnnotationSequence)
 *				is kept and its items de-identified by the same table,
 *				whose rows dummy its text, names, dates and times
 *				(TextValue, UnformattedTextValue, PersonName, Date, ...)
 *	     DEID_UID		a UID value is replaced as below; a sequence is kept and
 *				its items de-identified (U, X/Z/U*)
 *	     DEID_PSEUDONYM	the subject pseudonym (PatientName, PatientID)
 *	     DEID_SESSION	the session label, i.e. the accession (StudyDescription)
 *	     DEID_SET		deleted where found, then written by step 3
 *	   Every private attribute (odd group: creators, values, private sequences) is
 *	   deleted wherever it is, and so is every attribute whose VR is still UN
 *	   after reading (not in the data dictionary: its value cannot be checked).
 *	   X/Z and X/D take the value that keeps a Type 2 or Type 1 attribute
 *	   present: we cannot know the IOD's type, and the value left carries nothing.
 *	   Where FLIP's site script removes an attribute the profile
 *	   would empty (AccessionNumber, PatientBirthDate, ReferringPhysicianName, ...)
 *	   it is removed.
 *	2. Every other attribute with VR UI whose value is not a DICOM-defined UID
 *	   (prefix 1.2.840.10008.) and which does not name a class, syntax or coding
 *	   scheme (SOPClassUID, ReferencedSOPClassUID, TransferSyntaxUID,
 *	   CodingSchemeUID, ...) is replaced, value by value, by
 *	   2.25.<decimal of the first 128 bits of HMAC-SHA-256(key, original UID)>. Study,
 *	   Series, SOP Instance, Media Storage SOP Instance and Frame of Reference UIDs
 *	   and every reference to them in any sequence therefore map alike in every
 *	   instance de-identified with the same key, and the mapping cannot be undone
 *	   or checked by hashing guessed UIDs without the key. deid_uid() is that map.
 *	3. At the top level: PatientName and PatientID := subject, StudyDescription :=
 *	   accession, PatientIdentityRemoved := YES, DeidentificationMethod :=
 *	   deid_method() (this module and its version), DeidentificationMethodCodeSequence
 *	   := (113100, DCM, "Basic Application Confidentiality Profile"), plus
 *	   (113103, Clean Graphics Option) and (113104, Clean Structured Content
 *	   Option) when a graphic annotation or a content tree was cleaned;
 *	   LongitudinalTemporalInformationModified := deid_ltim(): REMOVED when no
 *	   DA, DT or TM value is left as it came, MODIFIED when some are left and some
 *	   went, UNMODIFIED when none went.
 *
 *	deid_burned_in() says whether the pixels may show identifying text: DECLARED
 *	when BurnedInAnnotation (0028,0301) is YES (or any value but NO), UNDECLARED
 *	when it is absent in a capture: a Secondary Capture, Ultrasound, VL (XC,
 *	endoscopy, microscopy, photography) or Encapsulated Document SOP class, or
 *	Modality US, SC, XC, OT, DOC, ES, GM or SM; why (may be NULL) gets a phrase
 *	without any value. The caller decides (the retrieval worker refuses them).
 *
 *	Pixel data, overlays aside, and every geometry attribute are not in the table
 *	and are never touched (overlay data and comments, curves, icon images and
 *	digital signatures are removed, as the profile says). st (accumulated, so
 *	the caller zeroes it once per study) counts the instances, those that
 *	deid_burned_in() flags (stored only when the site allows it), and the attributes removed, emptied, dummied and
 *	the UID values replaced.
 *
 *	p->key is the node's secret (at least DEID_MIN_KEY bytes); subject and
 *	accession are 1..64 printable ASCII characters without backslash.
 *
 * DIAGNOSTICS
 *	deid_instance() returns 0, or -1 with a one-line message in err that names the
 *	step and the tag, never a value; the dataset is then half rewritten and must
 *	be discarded. deid_uid() returns 0, or -1 for an empty or overlong UID.
 */
#ifndef FLIP_DEID_H
#define FLIP_DEID_H

#include <stddef.h>
#include <stdint.h>

#include "lib/dicom.h"

#define DEID_MIN_KEY 16
#define DEID_UID_LEN 48		/* "2.25." + at most 39 digits + NUL, rounded up */

enum deid_action {
	DEID_REMOVE,
	DEID_EMPTY,
	DEID_DUMMY,
	DEID_UID,
	DEID_PSEUDONYM,
	DEID_SESSION,
	DEID_SET,
	DEID_CLEAN,
};

enum deid_burned {
	DEID_BURNED_NO,		/* BurnedInAnnotation NO, or absent outside the captures */
	DEID_BURNED_DECLARED,	/* BurnedInAnnotation YES (or anything but NO) */
	DEID_BURNED_UNDECLARED,	/* absent in a capture SOP class or modality */
};

struct deid_rule {
	uint32_t tag;		/* matches t when (t & mask) == tag */
	uint32_t mask;		/* 0xFFFFFFFF for one tag */
	const char *pattern;	/* "(0010,0010)", "(60xx,3000)", "(gggg,eeee), gggg odd" */
	const char *keyword;	/* DICOM keyword */
	const char *profile;	/* Table E.1-1 Basic Profile action, "" when not listed */
	enum deid_action action;
	const char *note;	/* why our action differs from the profile, or "" */
};

struct deid_params {
	const unsigned char *key;	/* per-node secret for the UID map */
	size_t keylen;
	const char *subject;		/* pseudonym: PatientName, PatientID */
	const char *accession;		/* session label: StudyDescription */
};

struct deid_stats {
	unsigned long instances;	/* instances de-identified */
	unsigned long burned_in;	/* of them, BurnedInAnnotation YES */
	unsigned long removed;		/* attributes deleted, private ones included */
	unsigned long private_removed;	/* of them, private (odd group) */
	unsigned long emptied;
	unsigned long dummied;
	unsigned long uids;		/* UID values replaced */
};

int deid_instance(struct dicom_ds *ds, const struct deid_params *p, struct deid_stats *st,
		  char *err, size_t errlen);
const struct deid_rule *deid_rules(size_t *n);
const char *deid_action_name(enum deid_action a);
const char *deid_method(void);
const char *deid_ltim(unsigned long kept, unsigned long gone);
enum deid_burned deid_burned_in(struct dicom_ds *ds, const char **why);
int deid_uid(const unsigned char *key, size_t keylen, const char *uid, char out[DEID_UID_LEN]);

#endif
