-- SPDX-License-Identifier: Apache-2.0
-- cdm54.sql - the OMOP CDM 5.4 tables flip-node's tests need, in schema omop.
--
-- Loaded by tests/omop/pg.py (Postgres.setup_omop) as the cluster's superuser into
-- a fresh database. Column names, types and nullability follow the CDM 5.4
-- PostgreSQL DDL for the tables below (all their columns, not a subset, so a
-- researcher's query written against a real CDM parses and runs here unchanged).
-- Tables: person, observation_period, visit_occurrence, condition_occurrence,
-- drug_exposure, procedure_occurrence, measurement, observation, death, concept,
-- vocabulary, concept_ancestor; plus the imaging extension image_occurrence with
-- FLIP's extra column accession_id varchar(255).
--
-- Primary keys as the CDM's primary-key file declares them; indexes on the
-- person_id foreign-key columns, the concept columns cohort queries filter on, and
-- image_occurrence.accession_id (the node resolves accessions to persons through
-- it). No FOREIGN KEY constraints: the CDM ships them as an optional file, and
-- without them tests/omop/gen can bulk-load tables in any order.
--
-- Every name is schema-qualified: nothing here depends on search_path.

CREATE SCHEMA IF NOT EXISTS omop;

-- ---------------------------------------------------------------- clinical data

CREATE TABLE omop.person (
    person_id                   integer      NOT NULL,
    gender_concept_id           integer      NOT NULL,
    year_of_birth               integer      NOT NULL,
    month_of_birth              integer      NULL,
    day_of_birth                integer      NULL,
    birth_datetime              timestamp    NULL,
    race_concept_id             integer      NOT NULL,
    ethnicity_concept_id        integer      NOT NULL,
    location_id                 integer      NULL,
    provider_id                 integer      NULL,
    care_site_id                integer      NULL,
    person_source_value         varchar(50)  NULL,
    gender_source_value         varchar(50)  NULL,
    gender_source_concept_id    integer      NULL,
    race_source_value           varchar(50)  NULL,
    race_source_concept_id      integer      NULL,
    ethnicity_source_value      varchar(50)  NULL,
    ethnicity_source_concept_id integer      NULL,
    CONSTRAINT xpk_person PRIMARY KEY (person_id)
);
CREATE INDEX idx_gender ON omop.person (gender_concept_id);

CREATE TABLE omop.observation_period (
    observation_period_id         integer NOT NULL,
    person_id                     integer NOT NULL,
    observation_period_start_date date    NOT NULL,
    observation_period_end_date   date    NOT NULL,
    period_type_concept_id        integer NOT NULL,
    CONSTRAINT xpk_observation_period PRIMARY KEY (observation_period_id)
);
CREATE INDEX idx_observation_period_person_id ON omop.observation_period (person_id);

CREATE TABLE omop.visit_occurrence (
    visit_occurrence_id           integer     NOT NULL,
    person_id                     integer     NOT NULL,
    visit_concept_id              integer     NOT NULL,
    visit_start_date              date        NOT NULL,
    visit_start_datetime          timestamp   NULL,
    visit_end_date                date        NOT NULL,
    visit_end_datetime            timestamp   NULL,
    visit_type_concept_id         integer     NOT NULL,
    provider_id                   integer     NULL,
    care_site_id                  integer     NULL,
    visit_source_value            varchar(50) NULL,
    visit_source_concept_id       integer     NULL,
    admitted_from_concept_id      integer     NULL,
    admitted_from_source_value    varchar(50) NULL,
    discharged_to_concept_id      integer     NULL,
    discharged_to_source_value    varchar(50) NULL,
    preceding_visit_occurrence_id integer     NULL,
    CONSTRAINT xpk_visit_occurrence PRIMARY KEY (visit_occurrence_id)
);
CREATE INDEX idx_visit_person_id ON omop.visit_occurrence (person_id);
CREATE INDEX idx_visit_concept_id ON omop.visit_occurrence (visit_concept_id);

CREATE TABLE omop.condition_occurrence (
    condition_occurrence_id       integer     NOT NULL,
    person_id                     integer     NOT NULL,
    condition_concept_id          integer     NOT NULL,
    condition_start_date          date        NOT NULL,
    condition_start_datetime      timestamp   NULL,
    condition_end_date            date        NULL,
    condition_end_datetime        timestamp   NULL,
    condition_type_concept_id     integer     NOT NULL,
    condition_status_concept_id   integer     NULL,
    stop_reason                   varchar(20) NULL,
    provider_id                   integer     NULL,
    visit_occurrence_id           integer     NULL,
    visit_detail_id               integer     NULL,
    condition_source_value        varchar(50) NULL,
    condition_source_concept_id   integer     NULL,
    condition_status_source_value varchar(50) NULL,
    CONSTRAINT xpk_condition_occurrence PRIMARY KEY (condition_occurrence_id)
);
CREATE INDEX idx_condition_person_id ON omop.condition_occurrence (person_id);
CREATE INDEX idx_condition_concept_id ON omop.condition_occurrence (condition_concept_id);

CREATE TABLE omop.drug_exposure (
    drug_exposure_id             integer     NOT NULL,
    person_id                    integer     NOT NULL,
    drug_concept_id              integer     NOT NULL,
    drug_exposure_start_date     date        NOT NULL,
    drug_exposure_start_datetime timestamp   NULL,
    drug_exposure_end_date       date        NOT NULL,
    drug_exposure_end_datetime   timestamp   NULL,
    verbatim_end_date            date        NULL,
    drug_type_concept_id         integer     NOT NULL,
    stop_reason                  varchar(20) NULL,
    refills                      integer     NULL,
    quantity                     numeric     NULL,
    days_supply                  integer     NULL,
    sig                          text        NULL,
    route_concept_id             integer     NULL,
    lot_number                   varchar(50) NULL,
    provider_id                  integer     NULL,
    visit_occurrence_id          integer     NULL,
    visit_detail_id              integer     NULL,
    drug_source_value            varchar(50) NULL,
    drug_source_concept_id       integer     NULL,
    route_source_value           varchar(50) NULL,
    dose_unit_source_value       varchar(50) NULL,
    CONSTRAINT xpk_drug_exposure PRIMARY KEY (drug_exposure_id)
);
CREATE INDEX idx_drug_person_id ON omop.drug_exposure (person_id);
CREATE INDEX idx_drug_concept_id ON omop.drug_exposure (drug_concept_id);

CREATE TABLE omop.procedure_occurrence (
    procedure_occurrence_id     integer     NOT NULL,
    person_id                   integer     NOT NULL,
    procedure_concept_id        integer     NOT NULL,
    procedure_date              date        NOT NULL,
    procedure_datetime          timestamp   NULL,
    procedure_end_date          date        NULL,
    procedure_end_datetime      timestamp   NULL,
    procedure_type_concept_id   integer     NOT NULL,
    modifier_concept_id         integer     NULL,
    quantity                    integer     NULL,
    provider_id                 integer     NULL,
    visit_occurrence_id         integer     NULL,
    visit_detail_id             integer     NULL,
    procedure_source_value      varchar(50) NULL,
    procedure_source_concept_id integer     NULL,
    modifier_source_value       varchar(50) NULL,
    CONSTRAINT xpk_procedure_occurrence PRIMARY KEY (procedure_occurrence_id)
);
CREATE INDEX idx_procedure_person_id ON omop.procedure_occurrence (person_id);
CREATE INDEX idx_procedure_concept_id ON omop.procedure_occurrence (procedure_concept_id);

CREATE TABLE omop.measurement (
    measurement_id                integer     NOT NULL,
    person_id                     integer     NOT NULL,
    measurement_concept_id        integer     NOT NULL,
    measurement_date              date        NOT NULL,
    measurement_datetime          timestamp   NULL,
    measurement_time              varchar(10) NULL,
    measurement_type_concept_id   integer     NOT NULL,
    operator_concept_id           integer     NULL,
    value_as_number               numeric     NULL,
    value_as_concept_id           integer     NULL,
    unit_concept_id               integer     NULL,
    range_low                     numeric     NULL,
    range_high                    numeric     NULL,
    provider_id                   integer     NULL,
    visit_occurrence_id           integer     NULL,
    visit_detail_id               integer     NULL,
    measurement_source_value      varchar(50) NULL,
    measurement_source_concept_id integer     NULL,
    unit_source_value             varchar(50) NULL,
    unit_source_concept_id        integer     NULL,
    value_source_value            varchar(50) NULL,
    measurement_event_id          bigint      NULL,
    meas_event_field_concept_id   integer     NULL,
    CONSTRAINT xpk_measurement PRIMARY KEY (measurement_id)
);
CREATE INDEX idx_measurement_person_id ON omop.measurement (person_id);
CREATE INDEX idx_measurement_concept_id ON omop.measurement (measurement_concept_id);

CREATE TABLE omop.observation (
    observation_id                integer     NOT NULL,
    person_id                     integer     NOT NULL,
    observation_concept_id        integer     NOT NULL,
    observation_date              date        NOT NULL,
    observation_datetime          timestamp   NULL,
    observation_type_concept_id   integer     NOT NULL,
    value_as_number               numeric     NULL,
    value_as_string               varchar(60) NULL,
    value_as_concept_id           integer     NULL,
    qualifier_concept_id          integer     NULL,
    unit_concept_id               integer     NULL,
    provider_id                   integer     NULL,
    visit_occurrence_id           integer     NULL,
    visit_detail_id               integer     NULL,
    observation_source_value      varchar(50) NULL,
    observation_source_concept_id integer     NULL,
    unit_source_value             varchar(50) NULL,
    qualifier_source_value        varchar(50) NULL,
    value_source_value            varchar(50) NULL,
    observation_event_id          bigint      NULL,
    obs_event_field_concept_id    integer     NULL,
    CONSTRAINT xpk_observation PRIMARY KEY (observation_id)
);
CREATE INDEX idx_observation_person_id ON omop.observation (person_id);
CREATE INDEX idx_observation_concept_id ON omop.observation (observation_concept_id);

-- death has no primary key in CDM 5.4 (at most one row per person by convention)
CREATE TABLE omop.death (
    person_id               integer     NOT NULL,
    death_date              date        NOT NULL,
    death_datetime          timestamp   NULL,
    death_type_concept_id   integer     NULL,
    cause_concept_id        integer     NULL,
    cause_source_value      varchar(50) NULL,
    cause_source_concept_id integer     NULL
);
CREATE INDEX idx_death_person_id ON omop.death (person_id);

-- ------------------------------------------------------------------- vocabulary

CREATE TABLE omop.concept (
    concept_id       integer      NOT NULL,
    concept_name     varchar(255) NOT NULL,
    domain_id        varchar(20)  NOT NULL,
    vocabulary_id    varchar(20)  NOT NULL,
    concept_class_id varchar(20)  NOT NULL,
    standard_concept varchar(1)   NULL,
    concept_code     varchar(50)  NOT NULL,
    valid_start_date date         NOT NULL,
    valid_end_date   date         NOT NULL,
    invalid_reason   varchar(1)   NULL,
    CONSTRAINT xpk_concept PRIMARY KEY (concept_id)
);
CREATE INDEX idx_concept_code ON omop.concept (concept_code);
CREATE INDEX idx_concept_vocabluary_id ON omop.concept (vocabulary_id);

CREATE TABLE omop.vocabulary (
    vocabulary_id         varchar(20)  NOT NULL,
    vocabulary_name       varchar(255) NOT NULL,
    vocabulary_reference  varchar(255) NULL,
    vocabulary_version    varchar(255) NULL,
    vocabulary_concept_id integer      NOT NULL,
    CONSTRAINT xpk_vocabulary PRIMARY KEY (vocabulary_id)
);

CREATE TABLE omop.concept_ancestor (
    ancestor_concept_id      integer NOT NULL,
    descendant_concept_id    integer NOT NULL,
    min_levels_of_separation integer NOT NULL,
    max_levels_of_separation integer NOT NULL,
    CONSTRAINT xpk_concept_ancestor PRIMARY KEY (ancestor_concept_id, descendant_concept_id)
);
CREATE INDEX idx_concept_ancestor_id_2 ON omop.concept_ancestor (descendant_concept_id);

-- ------------------------------------------------ imaging extension (with FLIP's column)

CREATE TABLE omop.image_occurrence (
    image_occurrence_id      integer      NOT NULL,
    person_id                integer      NOT NULL,
    procedure_occurrence_id  integer      NULL,
    visit_occurrence_id      integer      NULL,
    anatomic_site_concept_id integer      NULL,
    wadors_uri               varchar(512) NULL,
    local_path               varchar(512) NULL,
    image_occurrence_date    date         NOT NULL,
    image_study_uid          varchar(64)  NULL,
    image_series_uid         varchar(64)  NULL,
    modality_concept_id      integer      NULL,
    accession_id             varchar(255) NULL,     -- FLIP's addition
    CONSTRAINT xpk_image_occurrence PRIMARY KEY (image_occurrence_id)
);
CREATE INDEX idx_image_occurrence_person_id ON omop.image_occurrence (person_id);
CREATE INDEX idx_image_occurrence_accession_id ON omop.image_occurrence (accession_id);
