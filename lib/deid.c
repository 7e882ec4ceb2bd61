/* SPDX-License-Identifier: Apache-2.0 */
/*
 * deid - de-identify one DICOM instance (see deid.h for the contract).
 *
 * The whole rule set is the table below, one row per attribute, sorted by tag
 * with the masked rows (private groups, curves, overlay data and comments, the
 * whole overlay group) last, so that a lookup is a binary search over the exact
 * rows and a scan of the masked ones. The rows are generated (deid_table.inc) by
 * tools/gen-deid-table.py from data/ps3.15-e1-1.json, DICOM PS3.15 Table E.1-1 as
 * machine-read from the standard, plus the departures the generator lists with
 * their reasons; docs/deidentification.md is generated from the same source and
 * `make test` fails when either output no longer matches the generator.
 *
 * The walk (dicom_ds_walk) sees an element before its items, so a sequence the
 * table removes or empties is never descended into, and one it keeps is cleaned
 * item by item with the same table: the structured-report Content Sequence and
 * the Graphic Annotation Sequence (action clean) keep their tree, minus every
 * text, name, date and time value. UIDs are mapped by value with a keyed hash,
 * never looked up in a table of the study's own UIDs, so references in other
 * instances, retrieved in another run, map the same way.
 */
#include "lib/deid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#ifndef FLIP_VERSION
#define FLIP_VERSION "0"
#endif

/* the table: generated, see the file comment */
static const struct deid_rule rules[] = {
#include "lib/deid_table.inc"
};

#define NRULES (sizeof rules / sizeof rules[0])

/* Attributes with VR UI that name a class, a syntax or a coding scheme rather
 * than an instance: kept even when not DICOM-defined (a private SOP class must
 * stay what it is). Sorted. */
static const uint32_t class_uids[] = {
	0x00020002, /* MediaStorageSOPClassUID */
	0x00020010, /* TransferSyntaxUID */
	0x00020012, /* ImplementationClassUID */
	0x00041510, /* ReferencedSOPClassUIDInFile */
	0x00041512, /* ReferencedTransferSyntaxUIDInFile */
	0x00080016, /* SOPClassUID */
	0x0008001A, /* RelatedGeneralSOPClassUID */
	0x0008001B, /* OriginalSpecializedSOPClassUID */
	0x00080062, /* SOPClassesInStudy */
	0x0008010C, /* CodingSchemeUID */
	0x00080117, /* ContextUID */
	0x00080118, /* MappingResourceUID */
	0x00081150, /* ReferencedSOPClassUID */
};

static const char dicom_root[] = "1.2.840.10008.";

/* dummy values by VR (DEID_DUMMY); a VR not listed gets an empty value */
static const struct {
	const char vr[3];
	const char *value;
} dummies[] = {
	{"AE", "ANONYMOUS"}, {"AS", "000Y"},	  {"CS", "ANONYMOUS"},
	{"DA", "19000101"},  {"DS", "0"},	  {"DT", "19000101000000"},
	{"IS", "0"},	     {"LO", "ANONYMOUS"}, {"LT", "ANONYMOUS"},
	{"PN", "ANONYMOUS"}, {"SH", "ANONYMOUS"}, {"ST", "ANONYMOUS"},
	{"TM", "000000"},    {"UC", "ANONYMOUS"}, {"UT", "ANONYMOUS"},
};

struct visit {
	const struct deid_params *p;
	struct deid_stats *st;
	unsigned long dates_kept;	/* DA/DT/TM values left as they came */
	unsigned long dates_gone;	/* DA/DT/TM values removed, emptied or dummied */
	int cleaned_content;		/* a Content Sequence was kept and cleaned */
	int cleaned_graphics;		/* a Graphic Annotation Sequence was */
	char why[120];	/* what went wrong with the element */
	char msg[200];	/* the same with its tag and VR */
};

/* deid_rules - the table, for docs and tests */
const struct deid_rule *deid_rules(size_t *n)
{
	if (n)
		*n = NRULES;
	return rules;
}

/* deid_action_name - the action as docs/deidentification.md spells it */
const char *deid_action_name(enum deid_action a)
{
	switch (a) {
	case DEID_REMOVE:
		return "remove";
	case DEID_EMPTY:
		return "empty";
	case DEID_DUMMY:
		return "dummy";
	case DEID_UID:
		return "uid";
	case DEID_PSEUDONYM:
		return "pseudonym";
	case DEID_SESSION:
		return "session";
	case DEID_SET:
		return "set";
	case DEID_CLEAN:
		return "clean";
	}
	return "?";
}

/* deid_method - DeidentificationMethod: the rule set and its version (LO, <= 64) */
const char *deid_method(void)
{
	static const char method[] = "flip-node deid " FLIP_VERSION " (PS3.15 E.1-1 basic + FLIP)";

	_Static_assert(sizeof method <= 65, "DeidentificationMethod is LO: 64 characters");
	return method;
}

/* rule_for - the table's row for tag t, or NULL */
static const struct deid_rule *rule_for(uint32_t t)
{
	static size_t exact;	/* rows before the masked ones */
	size_t lo = 0, hi;

	if (exact == 0)
		while (exact < NRULES && rules[exact].mask == 0xFFFFFFFFu)
			exact++;
	hi = exact;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rules[mid].tag == t)
			return &rules[mid];
		if (rules[mid].tag < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = exact; i < NRULES; i++)
		if ((t & rules[i].mask) == rules[i].tag)
			return &rules[i];
	return NULL;
}

static int is_class_uid(uint32_t t)
{
	for (size_t i = 0; i < sizeof class_uids / sizeof class_uids[0]; i++)
		if (class_uids[i] == t)
			return 1;
	return 0;
}

/* deid_uid - "2.25." and the decimal of the first 128 bits of HMAC-SHA-256 */
int deid_uid(const unsigned char *key, size_t keylen, const char *uid, char out[DEID_UID_LEN])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	unsigned __int128 v = 0;
	char digits[41];
	size_t n = 0, len;

	out[0] = 0;
	if (uid == NULL || (len = strlen(uid)) == 0 || len > DICOM_UID_MAX)
		return -1;
	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)uid, len, mac, &maclen) ==
		    NULL ||
	    maclen < 16)
		return -1;
	for (int i = 0; i < 16; i++)
		v = (v << 8) | mac[i];
	do {
		digits[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v != 0);
	memcpy(out, "2.25.", 5);
	for (size_t i = 0; i < n; i++)
		out[5 + i] = digits[n - 1 - i];
	out[5 + n] = 0;
	return 0;
}

/* map_uids - every value of a UI element not DICOM-defined, by deid_uid() */
static int map_uids(struct visit *v, struct dicom_elem *e)
{
	char in[1024], out[1024];
	size_t o = 0;
	int changed = 0;

	if (dicom_elem_get_string(e, in, sizeof in) != DICOM_OK) {
		snprintf(v->why, sizeof v->why, "cannot read the UID value");
		return -1;
	}
	if (in[0] == 0)
		return 0;
	for (char *s = in, *next; s; s = next) {
		char mapped[DEID_UID_LEN];
		const char *use = s;

		next = strchr(s, '\\');
		if (next)
			*next++ = 0;
		if (strncmp(s, dicom_root, sizeof dicom_root - 1) != 0 && *s) {
			if (deid_uid(v->p->key, v->p->keylen, s, mapped) != 0) {
				snprintf(v->why, sizeof v->why, "not a UID value (%zu characters)",
					 strlen(s));
				return -1;
			}
			use = mapped;
			changed = 1;
			v->st->uids++;
		}
		size_t len = strlen(use);
		if (o + len + 2 > sizeof out) {
			snprintf(v->why, sizeof v->why, "too many UID values");
			return -1;
		}
		if (o)
			out[o++] = '\\';
		memcpy(out + o, use, len);
		o += len;
	}
	out[o] = 0;
	if (changed && dicom_elem_set_string(e, out) != DICOM_OK) {
		snprintf(v->why, sizeof v->why, "cannot write the new UID");
		return -1;
	}
	return 0;
}

static int set_value(struct visit *v, struct dicom_elem *e, const char *value)
{
	if (dicom_elem_set_string(e, value) != DICOM_OK) {
		snprintf(v->why, sizeof v->why, "cannot write the new value");
		return -1;
	}
	return 0;
}

/* is_date - a DA, DT or TM value: what LongitudinalTemporalInformationModified is about */
static int is_date(const char *vr)
{
	return strcmp(vr, "DA") == 0 || strcmp(vr, "DT") == 0 || strcmp(vr, "TM") == 0;
}

/* has_value - the element is not empty (unreadable counts as a value) */
static int has_value(const struct dicom_elem *e)
{
	char buf[80];

	return dicom_elem_get_string(e, buf, sizeof buf) != DICOM_OK || buf[0] != 0;
}

/* dummy - a fixed value of the VR; a binary value or an unknown VR becomes empty */
static int dummy(struct visit *v, struct dicom_elem *e, const char *vr)
{
	v->st->dummied++;
	if (dicom_elem_is_string(e))
		for (size_t i = 0; i < sizeof dummies / sizeof dummies[0]; i++)
			if (strcmp(dummies[i].vr, vr) == 0)
				return set_value(v, e, dummies[i].value) < 0 ? -1 : DICOM_WALK_KEEP;
	if (dicom_elem_clear(e) != DICOM_OK) {
		snprintf(v->why, sizeof v->why, "cannot empty the value");
		return -1;
	}
	return DICOM_WALK_KEEP;
}

/* visit - the walk callback: one element, by the table and the UID rule */
static int visit(struct dicom_elem *e, void *arg)
{
	struct visit *v = arg;
	uint32_t t = dicom_elem_tag(e);
	const struct deid_rule *r;
	const char *vr = dicom_elem_vr(e);
	int seq = dicom_elem_is_sequence(e);
	int uid = strcmp(vr, "UI") == 0 && !seq;
	int date = !seq && is_date(vr);
	int rc = DICOM_WALK_KEEP;

	if (DICOM_GROUP(t) & 1) {
		v->st->removed++;
		v->st->private_removed++;
		v->dates_gone += date;
		return DICOM_WALK_REMOVE;
	}
	if (strcmp(vr, "UN") == 0) {
		/* not in dcmtk's dictionary, so its value cannot be read as what it is:
		 * it could hold anything, and goes */
		v->st->removed++;
		return DICOM_WALK_REMOVE;
	}
	r = rule_for(t);
	if (r == NULL) {
		if (uid && !is_class_uid(t))
			rc = map_uids(v, e) < 0 ? -1 : DICOM_WALK_KEEP;
		else if (date && has_value(e))
			v->dates_kept++;
		goto out;
	}
	v->dates_gone += date;
	switch (r->action) {
	case DEID_REMOVE:
	case DEID_SET:
		v->st->removed++;
		return DICOM_WALK_REMOVE;
	case DEID_EMPTY:
		v->st->emptied++;
		if (dicom_elem_clear(e) != DICOM_OK) {
			snprintf(v->why, sizeof v->why, "cannot empty the value");
			rc = -1;
		}
		goto out;
	case DEID_CLEAN:
		if (!seq) {
			/* a content tree that is not a sequence in this file: nothing to clean */
			v->st->removed++;
			return DICOM_WALK_REMOVE;
		}
		if (t == DICOM_TAG(0x0040, 0xA730))
			v->cleaned_content = 1;
		else
			v->cleaned_graphics = 1;
		goto out;	/* kept; its items are visited next */
	case DEID_UID:
		if (seq)
			goto out;	/* kept; its items are visited next */
		if (!uid) {
			/* a UID row whose value is not a UID here: it could be anything */
			v->st->removed++;
			return DICOM_WALK_REMOVE;
		}
		rc = map_uids(v, e) < 0 ? -1 : DICOM_WALK_KEEP;
		goto out;
	case DEID_DUMMY:
		/* a sequence's items could hold anything: it keeps none (dummy() empties) */
		rc = dummy(v, e, vr);
		goto out;
	case DEID_PSEUDONYM:
	case DEID_SESSION:
		if (!dicom_elem_is_string(e)) {
			/* a value we cannot rewrite goes; step 3 puts the top-level one */
			v->st->removed++;
			return DICOM_WALK_REMOVE;
		}
		rc = set_value(v, e, r->action == DEID_PSEUDONYM ? v->p->subject : v->p->accession);
		rc = rc < 0 ? -1 : DICOM_WALK_KEEP;
		goto out;
	}
out:
	if (rc < 0 && v->why[0] == 0)
		snprintf(v->why, sizeof v->why, "cannot rewrite the value");
	if (rc < 0)
		snprintf(v->msg, sizeof v->msg, "(%04X,%04X) %s: %s", DICOM_GROUP(t),
			 DICOM_ELEMENT(t), vr, v->why);
	return rc;
}

/* deid_ltim - LongitudinalTemporalInformationModified that is true of the result */
const char *deid_ltim(unsigned long kept, unsigned long gone)
{
	if (kept == 0)
		return "REMOVED";
	return gone ? "MODIFIED" : "UNMODIFIED";
}

/* SOP classes that are screen or document captures, or photographs */
static const char *const capture_classes[] = {
	"1.2.840.10008.5.1.4.1.1.104.",	/* Encapsulated PDF, CDA, STL, OBJ, MTL */
	"1.2.840.10008.5.1.4.1.1.3.1",	/* Ultrasound Multi-frame */
	"1.2.840.10008.5.1.4.1.1.6.",	/* Ultrasound */
	"1.2.840.10008.5.1.4.1.1.7",	/* Secondary Capture, and its multi-frame kinds */
	"1.2.840.10008.5.1.4.1.1.77.1.", /* VL endoscopic, microscopic, photographic... */
};

/* modalities that commonly burn text into the pixels */
static const char *const capture_modalities[] = {"DOC", "ES", "GM", "OT", "SC",
						 "SM", "US", "XC"};

/* deid_burned_in - does the instance (may) show identifying text in its pixels? */
enum deid_burned deid_burned_in(struct dicom_ds *ds, const char **why)
{
	char v[32] = "", sop[DICOM_UID_MAX + 1] = "", mod[32] = "";
	const char *dummy_why;

	if (why == NULL)
		why = &dummy_why;
	*why = "";
	if (dicom_ds_get_string(ds, DICOM_TAG(0x0028, 0x0301), v, sizeof v) == DICOM_OK &&
	    v[0]) {
		if (strcasecmp(v, "NO") == 0)
			return DEID_BURNED_NO;
		*why = "declares BurnedInAnnotation";
		return DEID_BURNED_DECLARED;	/* YES, or a value that is not NO */
	}
	dicom_ds_get_string(ds, DICOM_TAG(0x0008, 0x0016), sop, sizeof sop);
	dicom_ds_get_string(ds, DICOM_TAG(0x0008, 0x0060), mod, sizeof mod);
	for (size_t i = 0; i < sizeof capture_classes / sizeof capture_classes[0]; i++) {
		size_t n = strlen(capture_classes[i]);

		/* a prefix ending in a dot names a family; otherwise the class or its .n kinds */
		if (strncmp(sop, capture_classes[i], n) == 0 &&
		    (capture_classes[i][n - 1] == '.' || sop[n] == 0 || sop[n] == '.')) {
			*why = "a capture SOP class without BurnedInAnnotation";
			return DEID_BURNED_UNDECLARED;
		}
	}
	for (size_t i = 0; i < sizeof capture_modalities / sizeof capture_modalities[0]; i++)
		if (strcmp(mod, capture_modalities[i]) == 0) {
			*why = "a capture modality without BurnedInAnnotation";
			return DEID_BURNED_UNDECLARED;
		}
	return DEID_BURNED_NO;
}

/* label_ok - a pseudonym or accession: 1..64 printable ASCII, no backslash */
static int label_ok(const char *s)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > 64)
		return 0;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '\\')
			return 0;
	return 1;
}

static int put(struct dicom_ds *ds, uint32_t tag, const char *value, const char *name, char *err,
	       size_t errlen)
{
	if (dicom_ds_put_string(ds, tag, value) == DICOM_OK)
		return 0;
	snprintf(err, errlen, "deid: cannot set %s", name);
	return -1;
}

/* deid_instance - rewrite ds in place (see deid.h) */
int deid_instance(struct dicom_ds *ds, const struct deid_params *p, struct deid_stats *st,
		  char *err, size_t errlen)
{
	struct visit v;
	enum dicom_err r;
	int burned;

	if (err && errlen)
		err[0] = 0;
	if (ds == NULL || p == NULL || st == NULL) {
		snprintf(err, errlen, "deid: no dataset, parameters or statistics");
		return -1;
	}
	if (p->key == NULL || p->keylen < DEID_MIN_KEY) {
		snprintf(err, errlen, "deid: the UID key must have at least %d bytes", DEID_MIN_KEY);
		return -1;
	}
	if (!label_ok(p->subject) || !label_ok(p->accession)) {
		snprintf(err, errlen,
			 "deid: subject and accession must be 1..64 printable characters, no "
			 "backslash");
		return -1;
	}
	burned = deid_burned_in(ds, NULL) != DEID_BURNED_NO;
	memset(&v, 0, sizeof v);
	v.p = p;
	v.st = st;
	r = dicom_ds_walk(ds, visit, &v);
	if (r != DICOM_OK) {
		snprintf(err, errlen, "deid: %s",
			 v.msg[0] ? v.msg : "sequences nested too deep, or out of memory");
		return -1;
	}
	if (put(ds, DICOM_TAG(0x0010, 0x0010), p->subject, "PatientName", err, errlen) ||
	    put(ds, DICOM_TAG(0x0010, 0x0020), p->subject, "PatientID", err, errlen) ||
	    put(ds, DICOM_TAG(0x0008, 0x1030), p->accession, "StudyDescription", err, errlen) ||
	    put(ds, DICOM_TAG(0x0012, 0x0062), "YES", "PatientIdentityRemoved", err, errlen) ||
	    put(ds, DICOM_TAG(0x0012, 0x0063), deid_method(), "DeidentificationMethod", err,
		errlen) ||
	    put(ds, DICOM_TAG(0x0028, 0x0303), deid_ltim(v.dates_kept, v.dates_gone),
		"LongitudinalTemporalInformationModified", err, errlen))
		return -1;
	/* the profile, and the options whose work this instance actually got */
	if (dicom_ds_put_code_item(ds, DICOM_TAG(0x0012, 0x0064), "113100", "DCM",
				   "Basic Application Confidentiality Profile") != DICOM_OK ||
	    (v.cleaned_graphics &&
	     dicom_ds_put_code_item(ds, DICOM_TAG(0x0012, 0x0064), "113103", "DCM",
				    "Clean Graphics Option") != DICOM_OK) ||
	    (v.cleaned_content &&
	     dicom_ds_put_code_item(ds, DICOM_TAG(0x0012, 0x0064), "113104", "DCM",
				    "Clean Structured Content Option") != DICOM_OK)) {
		snprintf(err, errlen, "deid: cannot set DeidentificationMethodCodeSequence");
		return -1;
	}
	st->instances++;
	st->burned_in += burned != 0;
	return 0;
}
