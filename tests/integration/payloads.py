# SPDX-License-Identifier: Apache-2.0
"""payloads - a factory of valid task payloads, one per task type (lib/task.h).

    import payloads
    p = payloads.make("create_imaging", trust_id=hub.trust_id)
    for task_type in payloads.TASK_TYPES: ...

Every call returns a fresh object (new UUIDs), valid against the node's schema for
its type, so a test can alter one field and know that field alone is the problem.
`trust_id` should be the hub's trust (the hub refuses cohort results naming
another trust with 403); a random UUID is used when it is not given.
"""

import base64
import uuid

TASK_TYPES = (
    "cohort_query",
    "persist_cohort",
    "create_imaging",
    "delete_imaging",
    "get_imaging_status",
    "reimport_studies",
    "update_user_profile",
)

SQL = "SELECT person_id FROM omop.person WHERE year_of_birth > 1950"


def _uuid():
    return str(uuid.uuid4())


def encoded_query(sql=SQL):
    """URL-safe base64 of the SQL without padding, as get_imaging_status wants it."""
    return base64.urlsafe_b64encode(sql.encode("utf-8")).decode("ascii").rstrip("=")


def cohort_query(trust_id=None):
    return {"query_name": "adults born after 1950", "query": SQL,
            "encrypted_project_id": "not-opened-by-the-501-handler",
            "query_id": _uuid(), "trust_id": trust_id or _uuid()}


def persist_cohort(trust_id=None):
    return {"project_id": _uuid(), "trust_id": trust_id or _uuid(),
            "encrypted_project_id": "not-opened-by-the-501-handler",
            "query": SQL, "query_id": _uuid()}


def create_imaging(trust_id=None):
    return {"project_id": _uuid(), "trust_id": trust_id or _uuid(),
            "project_name": "Project Lung 2024", "query": SQL,
            "users": [{"id": _uuid(), "email": "ada@example.org", "name": "Ada L",
                       "organisation": "KCL", "is_disabled": False},
                      {"id": _uuid(), "email": "bob@example.org", "name": "Bob",
                       "organisation": None, "is_disabled": True}],
            "dicom_to_nifti": True}


def delete_imaging(trust_id=None):
    return {"imaging_project_id": _uuid()}


def get_imaging_status(trust_id=None):
    return {"imaging_project_id": _uuid(), "encoded_query": encoded_query()}


def reimport_studies(trust_id=None):
    return {"imaging_project_id": _uuid(), "encoded_query": encoded_query()}


def update_user_profile(trust_id=None):
    return {"email": "ada@example.org", "enabled": False}


_FACTORIES = {name: globals()[name] for name in TASK_TYPES}


def make(task_type, trust_id=None):
    """A fresh valid payload object for task_type."""
    return _FACTORIES[task_type](trust_id)


def not_available(task_type):
    """The error text the node's placeholder handlers answer for task_type."""
    return "501: %s is not available on this node yet" % task_type
