/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_deid - libFuzzer target for the DICOM de-identifier on mutated instances.
 *
 * Each input is written to one file (the same path for the whole run:
 * /tmp/fuzz-deid-<pid>.dcm), parsed with dicom_ds_load() as the retrieval worker's
 * C-STORE handler would hand it over, checked by deid_burned_in() and rewritten by
 * deid_instance(). When de-identification succeeds the result is saved, read back
 * and walked, and the run aborts if anything the rules remove is still there: a
 * private (odd group) attribute, an overlay or curve group, an attribute whose row
 * says remove, or a PatientIdentityRemoved that is not YES. A refusal (parse error,
 * deid error with its message) is a fine outcome; a crash, a leak, undefined
 * behaviour or a surviving attribute is not.
 *
 * Seed corpus: tests/fuzz/corpus/deid/, small sample files of Debian's
 * python3-pydicom (structured reports with person names, an RT plan, nested
 * private sequences).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/deid.h"
#include "lib/dicom.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_in[64], fuzz_out[64];
static const unsigned char fuzz_key[32] = "fuzz_deid key, thirty-two bytes";
static const struct deid_rule *fuzz_rules;
static size_t fuzz_nrules;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(fuzz_in, sizeof fuzz_in, "/tmp/fuzz-deid-%ld.dcm", (long)getpid());
	snprintf(fuzz_out, sizeof fuzz_out, "/tmp/fuzz-deid-%ld.out.dcm", (long)getpid());
	fuzz_rules = deid_rules(&fuzz_nrules);
	return 0;
}

/* fuzz_removed - the table says tag t goes wherever it is */
static int fuzz_removed(uint32_t t)
{
	for (size_t i = 0; i < fuzz_nrules; i++)
		if ((t & fuzz_rules[i].mask) == fuzz_rules[i].tag)
			return fuzz_rules[i].action == DEID_REMOVE;
	return 0;
}

/* fuzz_check - the walk over the re-read result: nothing removable is left */
static int fuzz_check(struct dicom_elem *e, void *arg)
{
	uint32_t t = dicom_elem_tag(e);

	(void)arg;
	if ((DICOM_GROUP(t) & 1) || (DICOM_GROUP(t) & 0xFF00) == 0x5000 ||
	    (DICOM_GROUP(t) & 0xFF00) == 0x6000 || fuzz_removed(t)) {
		fprintf(stderr, "fuzz_deid: (%04X,%04X) survived de-identification\n",
			DICOM_GROUP(t), DICOM_ELEMENT(t));
		abort();
	}
	return DICOM_WALK_KEEP;
}

static int fuzz_write(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(fd);
	return off == size ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dicom_ds *ds = NULL, *re = NULL;
	struct deid_params p = {fuzz_key, sizeof fuzz_key, "subject-1", "ACC0001"};
	struct deid_stats st;
	char err[512], v[16];
	const char *why = NULL;

	if (size > (1u << 20) || fuzz_write(fuzz_in, data, size) < 0)
		return 0;
	if (dicom_ds_load(fuzz_in, &ds, err, sizeof err) != DICOM_OK)
		return 0;
	(void)deid_burned_in(ds, &why);
	if (why == NULL)
		abort();
	memset(&st, 0, sizeof st);
	if (deid_instance(ds, &p, &st, err, sizeof err) == 0) {
		if (dicom_ds_save(ds, fuzz_out, err, sizeof err) == DICOM_OK &&
		    dicom_ds_load(fuzz_out, &re, err, sizeof err) == DICOM_OK) {
			if (dicom_ds_walk(re, fuzz_check, NULL) != DICOM_OK)
				abort();
			if (dicom_ds_get_string(re, DICOM_TAG(0x0012, 0x0062), v, sizeof v) !=
				    DICOM_OK ||
			    strcmp(v, "YES") != 0)
				abort();
		}
	} else if (err[0] == 0) {
		abort();	/* a refusal always says why */
	}
	dicom_ds_free(re);
	dicom_ds_free(ds);
	return 0;
}
