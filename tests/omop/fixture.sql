-- SPDX-License-Identifier: Apache-2.0
-- fixture.sql - a small hand-made OMOP data set: 40 persons, for the statistics tests.
--
-- Loaded after cdm54.sql by tests/omop/pg.py (Postgres.setup_omop). The expected
-- statistics of named queries over it are written down by hand, with the reasons, in
-- tests/omop/fixture_expected.py; change the two files together (the harness test
-- checks them against each other).
--
-- Design:
--   * Birth years all end in 1..5, so a person's ten-year age bucket is the same on
--     every day from 2026-01-01 to 2030-12-31 (age runs from 2025-Y to 2030-Y, and
--     (2025-Y) mod 10 is 0..4). Buckets at the default threshold 10:
--       persons  1-10  born 1991-1995  "30-39"  10  (exactly the threshold: kept)
--       persons 11-22  born 1981-1985  "40-49"  12
--       persons 23-33  born 1961-1965  "60-69"  11
--       persons 34-37  born 1951-1955  "70-79"   4  -> Other
--       persons 38-39  born 2002,2004  "20-29"   2  -> Other
--       person  40     born 1943       "80-89"   1  -> Other
--   * gender_source_value: 18 'M', 17 'F', 2 'U' (21, 36), 2 'X' (22, 37), 1 NULL (40);
--     the last three roll up into "Other" (5).
--   * NULLs: month_of_birth of persons 5, 17, 33; provider_id and
--     ethnicity_source_value of everyone (all-null columns); race_source_value of
--     some; condition_end_date of most type 2 diabetes rows; two image rows'
--     modality_concept_id; one image row's accession_id.
--   * Images: ACC0001 and ACC0002 both belong to person 1; ACC0003..ACC0030 belong to
--     persons 2..29 (ACCnnnn -> person nnnn-1); image 31 (person 35) has no accession.
--     The accession numbers later label the DICOM fixture's files.
--   * Conditions: type 2 diabetes (201826) for persons 11-24, twice for 11-16 (20 rows,
--     14 persons); essential hypertension (320128) four times each for persons 34-36
--     (12 rows, 3 persons: rows above the threshold, people below); asthma (317009)
--     once each for persons 1-10; myocardial infarction (4329847) for person 40.
--   * concept / concept_ancestor / vocabulary hold a few rows, so the empty-vocabulary
--     check (docs/design/data-access.md) finds concept_ancestor non-empty.
-- Gender, condition, drug, measurement, visit, unit and type concept ids are the
-- standard OMOP ones for the names given; the procedure, observation, anatomic-site
-- and image-modality ids are illustrative stand-ins (nothing joins them to concept).

BEGIN;

-- person_id, gender_concept_id, year_of_birth, month_of_birth, day_of_birth,
-- birth_datetime, race_concept_id, ethnicity_concept_id, person_source_value,
-- gender_source_value, race_source_value
INSERT INTO omop.person (person_id, gender_concept_id, year_of_birth, month_of_birth,
                         day_of_birth, birth_datetime, race_concept_id, ethnicity_concept_id,
                         person_source_value, gender_source_value, race_source_value) VALUES
-- "30-39": born 1991-1995
( 1, 8507, 1991,    6, 14, '1991-06-14 00:00:00', 0, 0, 'FIX0001', 'M', 'White'),
( 2, 8532, 1992,    7,  3, '1992-07-03 00:00:00', 0, 0, 'FIX0002', 'F', 'Asian'),
( 3, 8507, 1993,    5, 22, '1993-05-22 00:00:00', 0, 0, 'FIX0003', 'M', NULL),
( 4, 8532, 1994,    8,  9, '1994-08-09 00:00:00', 0, 0, 'FIX0004', 'F', 'Black'),
( 5, 8507, 1995, NULL, 30, '1995-06-30 00:00:00', 0, 0, 'FIX0005', 'M', 'White'),
( 6, 8532, 1991,    9, 17, '1991-09-17 00:00:00', 0, 0, 'FIX0006', 'F', 'White'),
( 7, 8507, 1992,    4, 25, '1992-04-25 00:00:00', 0, 0, 'FIX0007', 'M', NULL),
( 8, 8532, 1993,   10, 11, '1993-10-11 00:00:00', 0, 0, 'FIX0008', 'F', 'Asian'),
( 9, 8507, 1994,    3,  8, '1994-03-08 00:00:00', 0, 0, 'FIX0009', 'M', 'White'),
(10, 8532, 1995,   11, 19, '1995-11-19 00:00:00', 0, 0, 'FIX0010', 'F', 'Black'),
-- "40-49": born 1981-1985
(11, 8507, 1981,    6,  2, '1981-06-02 00:00:00', 0, 0, 'FIX0011', 'M', 'White'),
(12, 8532, 1982,    7, 19, '1982-07-19 00:00:00', 0, 0, 'FIX0012', 'F', NULL),
(13, 8507, 1983,    5,  5, '1983-05-05 00:00:00', 0, 0, 'FIX0013', 'M', 'Asian'),
(14, 8532, 1984,    8, 27, '1984-08-27 00:00:00', 0, 0, 'FIX0014', 'F', 'White'),
(15, 8507, 1985,    6, 12, '1985-06-12 00:00:00', 0, 0, 'FIX0015', 'M', 'Black'),
(16, 8532, 1981,    9, 30, '1981-09-30 00:00:00', 0, 0, 'FIX0016', 'F', 'White'),
(17, 8507, 1982, NULL, 14, '1982-04-14 00:00:00', 0, 0, 'FIX0017', 'M', NULL),
(18, 8532, 1983,   10, 21, '1983-10-21 00:00:00', 0, 0, 'FIX0018', 'F', 'White'),
(19, 8507, 1984,    2, 16, '1984-02-16 00:00:00', 0, 0, 'FIX0019', 'M', 'Asian'),
(20, 8532, 1985,   12,  1, '1985-12-01 00:00:00', 0, 0, 'FIX0020', 'F', 'White'),
(21,    0, 1981,    7,  7, '1981-07-07 00:00:00', 0, 0, 'FIX0021', 'U', NULL),
(22,    0, 1983,    3, 29, '1983-03-29 00:00:00', 0, 0, 'FIX0022', 'X', 'White'),
-- "60-69": born 1961-1965
(23, 8507, 1961,    6, 20, '1961-06-20 00:00:00', 0, 0, 'FIX0023', 'M', 'White'),
(24, 8532, 1962,    7, 11, '1962-07-11 00:00:00', 0, 0, 'FIX0024', 'F', 'Black'),
(25, 8507, 1963,    5, 15, '1963-05-15 00:00:00', 0, 0, 'FIX0025', 'M', 'White'),
(26, 8532, 1964,    8,  4, '1964-08-04 00:00:00', 0, 0, 'FIX0026', 'F', NULL),
(27, 8507, 1965,    6, 26, '1965-06-26 00:00:00', 0, 0, 'FIX0027', 'M', 'Asian'),
(28, 8532, 1961,    9,  9, '1961-09-09 00:00:00', 0, 0, 'FIX0028', 'F', 'White'),
(29, 8507, 1962,    4, 18, '1962-04-18 00:00:00', 0, 0, 'FIX0029', 'M', 'White'),
(30, 8532, 1963,   10,  2, '1963-10-02 00:00:00', 0, 0, 'FIX0030', 'F', 'Black'),
(31, 8507, 1964,    1, 23, '1964-01-23 00:00:00', 0, 0, 'FIX0031', 'M', 'White'),
(32, 8532, 1965,   11, 30, '1965-11-30 00:00:00', 0, 0, 'FIX0032', 'F', NULL),
(33, 8507, 1962, NULL,  8, '1962-08-08 00:00:00', 0, 0, 'FIX0033', 'M', 'White'),
-- "70-79": born 1951-1955
(34, 8532, 1951,    6,  6, '1951-06-06 00:00:00', 0, 0, 'FIX0034', 'F', 'White'),
(35, 8507, 1953,    7, 21, '1953-07-21 00:00:00', 0, 0, 'FIX0035', 'M', 'Asian'),
(36,    0, 1954,    5, 13, '1954-05-13 00:00:00', 0, 0, 'FIX0036', 'U', 'White'),
(37,    0, 1955,    9,  1, '1955-09-01 00:00:00', 0, 0, 'FIX0037', 'X', NULL),
-- "20-29": born 2002, 2004
(38, 8507, 2002,    6, 10, '2002-06-10 00:00:00', 0, 0, 'FIX0038', 'M', 'White'),
(39, 8532, 2004,    7, 28, '2004-07-28 00:00:00', 0, 0, 'FIX0039', 'F', 'Black'),
-- "80-89": born 1943, sex not recorded
(40,    0, 1943,    5, 17, '1943-05-17 00:00:00', 0, 0, 'FIX0040', NULL, 'White');

-- one observation period per person
INSERT INTO omop.observation_period (observation_period_id, person_id,
       observation_period_start_date, observation_period_end_date, period_type_concept_id)
SELECT person_id, person_id, DATE '2010-01-01', DATE '2025-12-31', 32817 FROM omop.person;

INSERT INTO omop.visit_occurrence (visit_occurrence_id, person_id, visit_concept_id,
       visit_start_date, visit_end_date, visit_type_concept_id, visit_source_value) VALUES
( 1,  1, 9202, '2021-03-01', '2021-03-01', 32817, 'OP'),
( 2,  2, 9202, '2021-04-12', '2021-04-12', 32817, 'OP'),
( 3,  3, 9202, '2021-05-20', '2021-05-20', 32817, NULL),
( 4, 11, 9202, '2019-02-02', '2019-02-02', 32817, 'OP'),
( 5, 12, 9202, '2019-06-15', '2019-06-15', 32817, 'OP'),
( 6, 34, 9202, '2020-01-09', '2020-01-09', 32817, NULL),
( 7, 35, 9202, '2020-02-10', '2020-02-10', 32817, 'OP'),
( 8, 40, 9202, '2022-11-30', '2022-12-04', 32817, 'IP');

-- conditions (see the header for who has what)
INSERT INTO omop.condition_occurrence (condition_occurrence_id, person_id,
       condition_concept_id, condition_start_date, condition_end_date,
       condition_type_concept_id, visit_occurrence_id, condition_source_value) VALUES
-- type 2 diabetes, first row for persons 11-24; end date only for 11 and 12
( 1, 11, 201826, '2015-03-02', '2016-03-02', 32817,    4, 'E11.9'),
( 2, 12, 201826, '2015-04-13', '2016-04-13', 32817,    5, 'E11.9'),
( 3, 13, 201826, '2015-05-04', NULL,         32817, NULL, 'E11.9'),
( 4, 14, 201826, '2015-06-15', NULL,         32817, NULL, 'E11.9'),
( 5, 15, 201826, '2015-07-06', NULL,         32817, NULL, 'E11.9'),
( 6, 16, 201826, '2015-08-17', NULL,         32817, NULL, 'E11.9'),
( 7, 17, 201826, '2015-09-08', NULL,         32817, NULL, 'E11.9'),
( 8, 18, 201826, '2015-10-19', NULL,         32817, NULL, 'E11.9'),
( 9, 19, 201826, '2015-11-10', NULL,         32817, NULL, NULL),
(10, 20, 201826, '2015-12-21', NULL,         32817, NULL, 'E11.9'),
(11, 21, 201826, '2016-01-12', NULL,         32817, NULL, 'E11.9'),
(12, 22, 201826, '2016-02-23', NULL,         32817, NULL, 'E11.9'),
(13, 23, 201826, '2016-03-14', NULL,         32817, NULL, 'E11.9'),
(14, 24, 201826, '2016-04-25', NULL,         32817, NULL, 'E11.9'),
-- type 2 diabetes, second row for persons 11-16, all with end dates
(15, 11, 201826, '2018-01-05', '2018-06-05', 32817, NULL, 'E11.9'),
(16, 12, 201826, '2018-02-06', '2018-07-06', 32817, NULL, 'E11.9'),
(17, 13, 201826, '2018-03-07', '2018-08-07', 32817, NULL, 'E11.9'),
(18, 14, 201826, '2018-04-08', '2018-09-08', 32817, NULL, 'E11.9'),
(19, 15, 201826, '2018-05-09', '2018-10-09', 32817, NULL, 'E11.9'),
(20, 16, 201826, '2018-06-10', '2018-11-10', 32817, NULL, 'E11.9'),
-- essential hypertension, four rows each for persons 34-36
(21, 34, 320128, '2012-01-10', NULL, 32817,    6, 'I10'),
(22, 34, 320128, '2013-01-10', NULL, 32817, NULL, 'I10'),
(23, 34, 320128, '2014-01-10', NULL, 32817, NULL, 'I10'),
(24, 34, 320128, '2015-01-10', NULL, 32817, NULL, 'I10'),
(25, 35, 320128, '2012-02-11', NULL, 32817,    7, 'I10'),
(26, 35, 320128, '2013-02-11', NULL, 32817, NULL, 'I10'),
(27, 35, 320128, '2014-02-11', NULL, 32817, NULL, 'I10'),
(28, 35, 320128, '2015-02-11', NULL, 32817, NULL, 'I10'),
(29, 36, 320128, '2012-03-12', NULL, 32817, NULL, 'I10'),
(30, 36, 320128, '2013-03-12', NULL, 32817, NULL, 'I10'),
(31, 36, 320128, '2014-03-12', NULL, 32817, NULL, 'I10'),
(32, 36, 320128, '2015-03-12', NULL, 32817, NULL, 'I10'),
-- asthma, once each for persons 1-10
(33,  1, 317009, '2020-05-01', NULL, 32817,    1, 'J45.9'),
(34,  2, 317009, '2020-05-02', NULL, 32817,    2, 'J45.9'),
(35,  3, 317009, '2020-05-03', NULL, 32817,    3, 'J45.9'),
(36,  4, 317009, '2020-05-04', NULL, 32817, NULL, 'J45.9'),
(37,  5, 317009, '2020-05-05', NULL, 32817, NULL, 'J45.9'),
(38,  6, 317009, '2020-05-06', NULL, 32817, NULL, 'J45.9'),
(39,  7, 317009, '2020-05-07', NULL, 32817, NULL, 'J45.9'),
(40,  8, 317009, '2020-05-08', NULL, 32817, NULL, 'J45.9'),
(41,  9, 317009, '2020-05-09', NULL, 32817, NULL, 'J45.9'),
(42, 10, 317009, '2020-05-10', NULL, 32817, NULL, 'J45.9'),
-- myocardial infarction, person 40
(43, 40, 4329847, '2022-11-30', '2022-12-04', 32817, 8, 'I21.9');

-- metformin for persons 11-16; quantity unknown for two
INSERT INTO omop.drug_exposure (drug_exposure_id, person_id, drug_concept_id,
       drug_exposure_start_date, drug_exposure_end_date, drug_type_concept_id,
       quantity, days_supply, drug_source_value) VALUES
(1, 11, 1503297, '2015-03-02', '2015-04-01', 32817,   60, 30, 'metformin 500mg'),
(2, 12, 1503297, '2015-04-13', '2015-05-13', 32817,   60, 30, 'metformin 500mg'),
(3, 13, 1503297, '2015-05-04', '2015-06-03', 32817, NULL, 30, 'metformin 500mg'),
(4, 14, 1503297, '2015-06-15', '2015-07-15', 32817,   60, 30, 'metformin 500mg'),
(5, 15, 1503297, '2015-07-06', '2015-08-05', 32817, NULL, 30, 'metformin 500mg'),
(6, 16, 1503297, '2015-08-17', '2015-09-16', 32817,   60, 30, 'metformin 500mg');

-- chest radiographs for persons 1-5, linked from image rows 1-6
INSERT INTO omop.procedure_occurrence (procedure_occurrence_id, person_id,
       procedure_concept_id, procedure_date, procedure_type_concept_id,
       procedure_source_value) VALUES
(1, 1, 4163872, '2021-03-01', 32817, 'XR CHEST'),
(2, 1, 4163872, '2022-03-01', 32817, 'XR CHEST'),
(3, 2, 4163872, '2021-04-12', 32817, 'XR CHEST'),
(4, 3, 4163872, '2021-05-20', 32817, NULL),
(5, 4, 4163872, '2021-06-30', 32817, 'XR CHEST'),
(6, 5, 4163872, '2021-07-31', 32817, 'XR CHEST');

-- HbA1c for persons 11-16; one value missing
INSERT INTO omop.measurement (measurement_id, person_id, measurement_concept_id,
       measurement_date, measurement_type_concept_id, value_as_number, unit_concept_id,
       measurement_source_value, unit_source_value) VALUES
(1, 11, 3004410, '2015-03-02', 32817,  7.9, 8554, 'HbA1c', '%'),
(2, 12, 3004410, '2015-04-13', 32817,  8.4, 8554, 'HbA1c', '%'),
(3, 13, 3004410, '2015-05-04', 32817, NULL, 8554, 'HbA1c', '%'),
(4, 14, 3004410, '2015-06-15', 32817,  6.8, 8554, 'HbA1c', '%'),
(5, 15, 3004410, '2015-07-06', 32817,  7.1, 8554, 'HbA1c', '%'),
(6, 16, 3004410, '2015-08-17', 32817,  9.2, 8554, 'HbA1c', '%');

INSERT INTO omop.observation (observation_id, person_id, observation_concept_id,
       observation_date, observation_type_concept_id, value_as_string,
       observation_source_value) VALUES
(1, 34, 4275495, '2012-01-10', 32817, 'former smoker', 'smoking'),
(2, 35, 4275495, '2012-02-11', 32817, NULL,            'smoking'),
(3, 40, 4275495, '2022-11-30', 32817, 'never smoked',  'smoking');

INSERT INTO omop.death (person_id, death_date, death_type_concept_id, cause_concept_id,
       cause_source_value) VALUES
(40, '2022-12-04', 32817, 4329847, 'I21.9');

-- image_occurrence: ACCnnnn -> person nnnn-1, except ACC0001 and ACC0002 (both person 1);
-- image 31 (person 35) has no accession; images 7 and 19 have no modality
INSERT INTO omop.image_occurrence (image_occurrence_id, person_id, procedure_occurrence_id,
       visit_occurrence_id, anatomic_site_concept_id, wadors_uri, local_path,
       image_occurrence_date, image_study_uid, image_series_uid, modality_concept_id,
       accession_id) VALUES
( 1,  1,    1,    1, 4036295, NULL, NULL, '2021-03-01', '2.25.1001', '2.25.2001', 4000001, 'ACC0001'),
( 2,  1,    2, NULL, 4036295, NULL, NULL, '2022-03-01', '2.25.1002', '2.25.2002', 4000001, 'ACC0002'),
( 3,  2,    3,    2, 4036295, NULL, NULL, '2021-04-12', '2.25.1003', '2.25.2003', 4000001, 'ACC0003'),
( 4,  3,    4,    3, 4036295, NULL, NULL, '2021-05-20', '2.25.1004', '2.25.2004', 4000001, 'ACC0004'),
( 5,  4,    5, NULL, 4036295, NULL, NULL, '2021-06-30', '2.25.1005', '2.25.2005', 4000001, 'ACC0005'),
( 6,  5,    6, NULL, 4036295, NULL, NULL, '2021-07-31', '2.25.1006', '2.25.2006', 4000001, 'ACC0006'),
( 7,  6, NULL, NULL,    NULL, NULL, NULL, '2021-08-15', '2.25.1007', '2.25.2007',    NULL, 'ACC0007'),
( 8,  7, NULL, NULL,    NULL, NULL, NULL, '2021-09-15', '2.25.1008', '2.25.2008', 4000002, 'ACC0008'),
( 9,  8, NULL, NULL,    NULL, NULL, NULL, '2021-10-15', '2.25.1009', '2.25.2009', 4000002, 'ACC0009'),
(10,  9, NULL, NULL,    NULL, NULL, NULL, '2021-11-15', '2.25.1010', '2.25.2010', 4000002, 'ACC0010'),
(11, 10, NULL, NULL,    NULL, NULL, NULL, '2021-12-15', '2.25.1011', '2.25.2011', 4000002, 'ACC0011'),
(12, 11, NULL, NULL,    NULL, NULL, NULL, '2019-02-02', '2.25.1012', '2.25.2012', 4000002, 'ACC0012'),
(13, 12, NULL, NULL,    NULL, NULL, NULL, '2019-06-15', '2.25.1013', '2.25.2013', 4000003, 'ACC0013'),
(14, 13, NULL, NULL,    NULL, NULL, NULL, '2019-07-15', '2.25.1014', '2.25.2014', 4000003, 'ACC0014'),
(15, 14, NULL, NULL,    NULL, NULL, NULL, '2019-08-15', '2.25.1015', '2.25.2015', 4000003, 'ACC0015'),
(16, 15, NULL, NULL,    NULL, NULL, NULL, '2019-09-15', '2.25.1016', '2.25.2016', 4000003, 'ACC0016'),
(17, 16, NULL, NULL,    NULL, NULL, NULL, '2019-10-15', '2.25.1017', '2.25.2017', 4000003, 'ACC0017'),
(18, 17, NULL, NULL,    NULL, NULL, NULL, '2019-11-15', '2.25.1018', '2.25.2018', 4000003, 'ACC0018'),
(19, 18, NULL, NULL,    NULL, NULL, NULL, '2019-12-15', '2.25.1019', '2.25.2019',    NULL, 'ACC0019'),
(20, 19, NULL, NULL,    NULL, NULL, NULL, '2020-01-15', '2.25.1020', '2.25.2020', 4000001, 'ACC0020'),
(21, 20, NULL, NULL,    NULL, NULL, NULL, '2020-02-15', '2.25.1021', '2.25.2021', 4000001, 'ACC0021'),
(22, 21, NULL, NULL,    NULL, NULL, NULL, '2020-03-15', '2.25.1022', '2.25.2022', 4000001, 'ACC0022'),
(23, 22, NULL, NULL,    NULL, NULL, NULL, '2020-04-15', '2.25.1023', '2.25.2023', 4000001, 'ACC0023'),
(24, 23, NULL, NULL,    NULL, NULL, NULL, '2020-05-15', '2.25.1024', '2.25.2024', 4000002, 'ACC0024'),
(25, 24, NULL, NULL,    NULL, NULL, NULL, '2020-06-15', '2.25.1025', '2.25.2025', 4000002, 'ACC0025'),
(26, 25, NULL, NULL,    NULL, NULL, NULL, '2020-07-15', '2.25.1026', '2.25.2026', 4000002, 'ACC0026'),
(27, 26, NULL, NULL,    NULL, NULL, NULL, '2020-08-15', '2.25.1027', '2.25.2027', 4000002, 'ACC0027'),
(28, 27, NULL, NULL,    NULL, NULL, NULL, '2020-09-15', '2.25.1028', '2.25.2028', 4000003, 'ACC0028'),
(29, 28, NULL, NULL,    NULL, NULL, NULL, '2020-10-15', '2.25.1029', '2.25.2029', 4000003, 'ACC0029'),
(30, 29, NULL, NULL,    NULL, NULL, NULL, '2020-11-15', '2.25.1030', '2.25.2030', 4000003, 'ACC0030'),
(31, 35, NULL,    7,    NULL, NULL, NULL, '2020-02-10', '2.25.1031', '2.25.2031', 4000001, NULL);

-- --------------------------------------------------------------------- vocabulary

INSERT INTO omop.vocabulary (vocabulary_id, vocabulary_name, vocabulary_reference,
       vocabulary_version, vocabulary_concept_id) VALUES
('SNOMED',       'Systematized Nomenclature of Medicine', 'fixture', 'fixture', 0),
('RxNorm',       'RxNorm',                                'fixture', 'fixture', 0),
('LOINC',        'Logical Observation Identifiers Names and Codes', 'fixture', 'fixture', 0),
('Gender',       'OMOP Gender',                           'fixture', 'fixture', 0),
('Visit',        'OMOP Visit',                            'fixture', 'fixture', 0),
('Type Concept', 'OMOP Type Concept',                     'fixture', 'fixture', 0),
('UCUM',         'Unified Code for Units of Measure',     'fixture', 'fixture', 0);

INSERT INTO omop.concept (concept_id, concept_name, domain_id, vocabulary_id,
       concept_class_id, standard_concept, concept_code, valid_start_date,
       valid_end_date, invalid_reason) VALUES
(   8507, 'MALE',                         'Gender',      'Gender',       'Gender',          'S', 'M',        '1970-01-01', '2099-12-31', NULL),
(   8532, 'FEMALE',                       'Gender',      'Gender',       'Gender',          'S', 'F',        '1970-01-01', '2099-12-31', NULL),
( 201820, 'Diabetes mellitus',            'Condition',   'SNOMED',       'Clinical Finding', 'S', '73211009', '1970-01-01', '2099-12-31', NULL),
( 201826, 'Type 2 diabetes mellitus',     'Condition',   'SNOMED',       'Clinical Finding', 'S', '44054006', '1970-01-01', '2099-12-31', NULL),
( 316866, 'Hypertensive disorder',        'Condition',   'SNOMED',       'Clinical Finding', 'S', '38341003', '1970-01-01', '2099-12-31', NULL),
( 320128, 'Essential hypertension',       'Condition',   'SNOMED',       'Clinical Finding', 'S', '59621000', '1970-01-01', '2099-12-31', NULL),
( 317009, 'Asthma',                       'Condition',   'SNOMED',       'Clinical Finding', 'S', '195967001','1970-01-01', '2099-12-31', NULL),
(4329847, 'Myocardial infarction',        'Condition',   'SNOMED',       'Clinical Finding', 'S', '22298006', '1970-01-01', '2099-12-31', NULL),
(1503297, 'metformin',                    'Drug',        'RxNorm',       'Ingredient',      'S', '6809',     '1970-01-01', '2099-12-31', NULL),
(3004410, 'Hemoglobin A1c/Hemoglobin.total in Blood', 'Measurement', 'LOINC', 'Lab Test',   'S', '4548-4',   '1970-01-01', '2099-12-31', NULL),
(   9202, 'Outpatient Visit',             'Visit',       'Visit',        'Visit',           'S', 'OP',       '1970-01-01', '2099-12-31', NULL),
(  32817, 'EHR',                          'Type Concept','Type Concept', 'Type Concept',    'S', 'OMOP4976890','1970-01-01','2099-12-31', NULL),
(   8554, 'percent',                      'Unit',        'UCUM',         'Unit',            'S', '%',        '1970-01-01', '2099-12-31', NULL);

INSERT INTO omop.concept_ancestor (ancestor_concept_id, descendant_concept_id,
       min_levels_of_separation, max_levels_of_separation) VALUES
(201820, 201820, 0, 0),
(201820, 201826, 1, 1),
(201826, 201826, 0, 0),
(316866, 316866, 0, 0),
(316866, 320128, 1, 1),
(320128, 320128, 0, 0);

COMMIT;
