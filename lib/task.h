/* SPDX-License-Identifier: Apache-2.0 */
/*
 * task - the seven task types and their payload schemas (docs/design/hub-protocol.md).
 *
 * SYNOPSIS
 *	#include "lib/task.h"
 *
 *	const char *const task_types[];			NULL-terminated list
 *	int task_type_known(const char *type);
 *	int task_payload_check(const char *type, const json_t *payload, char *err, size_t errlen);
 *	int task_uuid_ok(const char *s);
 *	int task_uuid_canonical(const char *s, char out[37]);
 *
 * DESCRIPTION
 *	task_payload_check() validates a decrypted payload against the schema of its
 *	task type before anything runs: payload is a JSON object; every required field
 *	present with the right JSON type (a boolean is not an integer, an integer not a
 *	string); UUID fields are UUIDs (8-4-4-4-12 hex, either case); strings capped
 *	(TASK_MAX_STRING, SQL at TASK_MAX_QUERY) and valid UTF-8 without NUL; optional
 *	fields may be null where docs/design/hub-protocol.md says so; unknown extra fields are
 *	ignored (forward compatible with newer hubs). Per type:
 *	  cohort_query: query_name str, query str, encrypted_project_id str,
 *	                query_id UUID, trust_id UUID
 *	  persist_cohort: project_id UUID, trust_id UUID, encrypted_project_id str,
 *	                query str, query_id UUID or null/absent
 *	  create_imaging: project_id UUID, trust_id UUID, project_name str (1..255, no
 *	                < > &), query str or null/absent, users array (<= 1000) of
 *	                objects {id UUID, email str, name str, organisation str or null,
 *	                is_disabled bool}, dicom_to_nifti bool (absent = true)
 *	  delete_imaging: imaging_project_id UUID
 *	  get_imaging_status, reimport_studies: imaging_project_id str (a UUID),
 *	                encoded_query str (URL-safe base64 without padding)
 *	  update_user_profile: email str (contains one @), enabled bool
 *	On failure err holds a message naming the field, e.g.
 *	"Invalid payload: field 'query_id' must be a UUID", and -1 is returned.
 *
 *	task_uuid_ok() is the one UUID validator; task_uuid_canonical() writes the
 *	lower-case canonical form. Both return 1/0 and 0/-1 respectively.
 */
#ifndef FLIP_TASK_H
#define FLIP_TASK_H

#include <stddef.h>
#include <jansson.h>

#define TASK_MAX_STRING 4096
#define TASK_MAX_QUERY (1024 * 1024)

extern const char *const task_types[];

int task_type_known(const char *type);
int task_payload_check(const char *type, const json_t *payload, char *err, size_t errlen);
int task_uuid_ok(const char *s);
int task_uuid_canonical(const char *s, char out[37]);

#endif
