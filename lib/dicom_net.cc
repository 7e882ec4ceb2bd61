/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dicom_net - the shim's network calls as the association requestor (see dicom.h):
 * setting up and ending an association, C-ECHO, C-FIND, C-GET, and what C-GET shares
 * with C-MOVE (dicom_move.cc): the hand-over of a received dataset to the store
 * callback, the check of a study before a retrieval, the identifier and the final
 * response.
 *
 * Networking rides on dcmtk's DcmSCU. C-GET is the interesting part: a C-GET
 * association carries the PACS's C-STORE sub-operations back to us, so the storage
 * SOP classes are proposed with the SCP role, and DcmSCU's store handler is
 * overridden (FlipSCU::handleSTORERequest) so that each received dataset, already
 * parsed in memory by dcmtk, goes to the caller's callback instead of a file. A
 * dataset arrives in the transfer syntax of the presentation context the PACS
 * picked for it; proposing one context per (SOP class, transfer syntax) lets a PACS
 * that selects per instance (Orthanc does: it looks for an accepted context with
 * the instance's own syntax first) send what it stored without transcoding, which
 * is why dicom_get_study() needs SOPClassesInStudy (from the C-FIND that found the
 * study, or asked for).
 */
#include "lib/dicom.h"
#include "lib/dicom_shim.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "dcmtk/dcmnet/diutil.h"

namespace {

const size_t MAX_CONTEXTS = 127;	/* 128 presentation contexts, one for the Q/R model */

/* query_value_ok - an exact-match key: no wildcard, separator or control character */
bool query_value_ok(const char *v, size_t max)
{
	size_t n;

	if (v == nullptr || (n = strlen(v)) == 0 || n > max)
		return false;
	for (const char *c = v; *c; c++)
		if (*c == '*' || *c == '?' || *c == '\\' || (unsigned char)*c < 0x20 ||
		    *c == 0x7f)
			return false;
	return true;
}

/* sop_classes - the UIDs of SOPClassesInStudy in a C-FIND answer (none if absent) */
std::vector<std::string> sop_classes(DcmDataset *d)
{
	std::vector<std::string> out;
	OFString v;

	if (d->findAndGetOFStringArray(DCM_SOPClassesInStudy, v).bad())
		return out;
	std::string s = trim(v);
	size_t at = 0;
	while (at <= s.size()) {
		size_t bs = s.find('\\', at);
		std::string one = s.substr(at, bs == std::string::npos ? std::string::npos : bs - at);
		while (!one.empty() && (one.back() == ' ' || one.back() == '\0'))
			one.pop_back();
		if (uid_ok(one.c_str()))
			out.push_back(one);
		if (bs == std::string::npos)
			break;
		at = bs + 1;
	}
	return out;
}

/*
 * The SOP classes dicom_find_studies() just learnt, for the dicom_get_study() that
 * usually follows it: the retrieval worker finds a study by accession and then
 * fetches it, and asking the PACS twice would cost one more association per study.
 * An entry is used once (erased by the C-GET that uses it) and the cache holds the
 * last CLASS_CACHE finds only, so it never outlives the find-then-get sequence
 * by much; a C-GET without an entry asks the PACS itself.
 */
const size_t CLASS_CACHE = 64;
std::vector<std::pair<std::string, std::vector<std::string>>> class_cache;

std::string cache_key(const struct dicom_peer *p, const char *study_uid)
{
	return std::string(p->host) + ":" + std::to_string(p->port) + "|" + p->called_ae + "|" +
	       p->calling_ae + "|" + study_uid;
}

void cache_put(const std::string &key, std::vector<std::string> classes)
{
	for (auto &e : class_cache)
		if (e.first == key) {
			e.second = std::move(classes);
			return;
		}
	if (class_cache.size() >= CLASS_CACHE)
		class_cache.erase(class_cache.begin());
	class_cache.emplace_back(key, std::move(classes));
}

bool cache_take(const std::string &key, std::vector<std::string> &classes)
{
	for (auto it = class_cache.begin(); it != class_cache.end(); ++it)
		if (it->first == key) {
			classes = std::move(it->second);
			class_cache.erase(it);
			return true;
		}
	return false;
}

}  // namespace

/* ---- the SCU -------------------------------------------------------------------- */

/* hand_over - one received dataset (taken) to the caller's store callback, in memory,
 * as a dicom_ds valid during the call; 0, or -1 with the reason in why. len is the
 * dataset's encoded length. The same for C-GET and C-MOVE. */
int hand_over(DcmDataset *incoming, dicom_store_fn store, void *arg, unsigned long long &len,
	      std::string &why)
{
	E_TransferSyntax x = incoming->getOriginalXfer();
	len = incoming->getLength(x == EXS_Unknown ? EXS_LittleEndianExplicit : x);
	DcmFileFormat *ff = new (std::nothrow) DcmFileFormat(incoming, OFFalse /* take it */);
	if (ff == nullptr) {
		delete incoming;
		why = "out of memory";
		return -1;
	}
	struct dicom_ds *ds;
	try {
		ds = ds_wrap(ff);
	} catch (...) {
		delete ff;
		why = "out of memory";
		return -1;
	}
	char msg[256] = "";
	int rc = store(ds, arg, msg, sizeof msg);
	if (rc == DICOM_STORE_KEPT)
		return 0;	/* the callback owns ds now */
	dicom_ds_free(ds);
	if (rc != 0) {
		why = msg[0] ? msg : "store callback failed";
		return -1;
	}
	return 0;
}

OFCondition FlipSCU::handleSTORERequest(const T_ASC_PresentationContextID, DcmDataset *incoming,
					OFBool &continueSession, Uint16 &status)
{
	if (incoming == nullptr)
		return DIMSE_NULLKEY;
	if (store_failed) {
		/* already failing: refuse the rest while the association goes down */
		delete incoming;
		status = STATUS_STORE_Refused_OutOfResources;
		continueSession = OFFalse;
		return EC_Normal;
	}
	unsigned long long len = 0;
	if (hand_over(incoming, store, arg, len, store_err) != 0) {
		store_failed = true;
		status = STATUS_STORE_Refused_OutOfResources;
		continueSession = OFFalse;
		return EC_Normal;
	}
	stored++;
	bytes += len;
	status = STATUS_Success;
	return EC_Normal;
}

/* setup - peer, titles and timeouts on an SCU (the timeouts are dcmtk globals) */
void setup(FlipSCU &scu, const struct dicom_peer *p)
{
	int assoc = or_default(p->assoc_timeout), net = or_default(p->network_timeout);

	scu.setPeerHostName(p->host);
	scu.setPeerPort((Uint16)p->port);
	scu.setPeerAETitle(p->called_ae);
	scu.setAETitle(p->calling_ae);
	scu.setACSETimeout((Uint32)assoc);
	scu.setConnectionTimeout(assoc);
	scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
	scu.setDIMSETimeout((Uint32)or_default(p->dimse_timeout));
	scu.setMaxReceivePDULength(ASC_MAXIMUMPDUSIZE > 131072 ? 131072 : ASC_MAXIMUMPDUSIZE);
	dcmSocketSendTimeout.set(net);
	dcmSocketReceiveTimeout.set(net);
}

/* what - "C-FIND to ORTHANC@host:4242 as FLIPNODE", for messages */
std::string what(const char *op, const struct dicom_peer *p)
{
	return std::string(op) + " to " + p->called_ae + "@" + p->host + ":" +
	       std::to_string(p->port) + " as " + p->calling_ae;
}

/* connect - initNetwork + negotiateAssociation, with the failure categorised */
enum dicom_err connect(FlipSCU &scu, const std::string &w, Err &e)
{
	OFCondition c = scu.initNetwork();

	if (c.good())
		c = scu.tune();
	if (c.bad())
		return e.set(DICOM_ERR_PROTOCOL, "%s: cannot set up the network: %s", w.c_str(),
			     c.text());
	c = scu.negotiateAssociation();
	if (c.good())
		return DICOM_OK;
	if (c == DUL_ASSOCIATIONREJECTED)
		return e.set(DICOM_ERR_REJECTED,
			     "%s: association rejected by the PACS (AE titles not accepted?)",
			     w.c_str());
	if (c == NET_EC_NoAcceptablePresentationContexts)
		return e.set(DICOM_ERR_REJECTED,
			     "%s: the PACS accepted none of the proposed presentation contexts",
			     w.c_str());
	return e.set(DICOM_ERR_UNREACHABLE, "%s: no association: %s", w.c_str(), c.text());
}

OFList<OFString> syntax_list(const char *const *s, size_t n)
{
	OFList<OFString> l;

	for (size_t i = 0; i < n; i++)
		l.push_back(s[i]);
	return l;
}

/* finish - release a healthy association, abort one in an unknown state */
void finish(FlipSCU &scu, bool healthy)
{
	if (!scu.isConnected())
		return;
	if (healthy)
		scu.releaseAssociation();
	else
		scu.abortAssociation();
}

namespace {

/* find - one C-FIND (Study Root) with query on an association of its own; the
 * pending responses' datasets are handed to each() */
template <typename F>
enum dicom_err find(const struct dicom_peer *peer, DcmDataset &query, const char *op, F each,
		    Err &e)
{
	FlipSCU scu;
	std::string w = what(op, peer);

	setup(scu, peer);
	scu.addPresentationContext(UID_FINDStudyRootQueryRetrieveInformationModel,
				   syntax_list(uncompressed, 2));
	enum dicom_err r = connect(scu, w, e);
	if (r != DICOM_OK)
		return r;
	T_ASC_PresentationContextID pc =
		scu.findAnyPresentationContextID(UID_FINDStudyRootQueryRetrieveInformationModel, "");
	if (pc == 0) {
		finish(scu, true);
		return e.set(DICOM_ERR_REJECTED, "%s: Study Root C-FIND not accepted", w.c_str());
	}
	OFList<QRResponse *> rsp;
	OFCondition c = scu.sendFINDRequest(pc, &query, &rsp);
	Uint16 final_status = 0xffff;
	size_t matches = 0;
	r = DICOM_OK;
	for (QRResponse *q : rsp) {
		if (r == DICOM_OK && DICOM_PENDING_STATUS(q->m_status) && q->m_dataset) {
			if (++matches > DICOM_FIND_MAX)
				r = e.set(DICOM_ERR_PROTOCOL, "%s: more than %d matches", w.c_str(),
					  DICOM_FIND_MAX);
			else
				r = each(q->m_dataset, e);
		} else if (!DICOM_PENDING_STATUS(q->m_status)) {
			final_status = q->m_status;
		}
		delete q;
	}
	if (r != DICOM_OK) {
		finish(scu, false);
		return r;
	}
	if (c.bad()) {
		finish(scu, false);
		return e.set(DICOM_ERR_PROTOCOL, "%s: %s", w.c_str(), c.text());
	}
	if (final_status != STATUS_Success) {
		finish(scu, true);
		return e.set(DICOM_ERR_PROTOCOL, "%s: final status 0x%04x (%s)", w.c_str(),
			     final_status, DU_cfindStatusString(final_status));
	}
	finish(scu, true);
	return DICOM_OK;
}

}  // namespace

FinalResponse final_response(OFList<RetrieveResponse *> &rsp)
{
	FinalResponse f;

	for (RetrieveResponse *x : rsp) {
		if (!DICOM_PENDING_STATUS(x->m_status)) {
			f.have = true;
			f.status = x->m_status;
			f.failed = x->m_numberOfFailedSubops;
			f.completed = x->m_numberOfCompletedSubops;
			f.warning = x->m_numberOfWarningSubops;
		}
		delete x;
	}
	rsp.clear();
	return f;
}

/* study_context - the accepted Study Root context for a retrieval, or refused */
enum dicom_err study_context(FlipSCU &scu, const char *model, const char *what,
			     const std::string &w, Err &e, T_ASC_PresentationContextID *pc)
{
	*pc = scu.findAnyPresentationContextID(model, "");
	if (*pc != 0)
		return DICOM_OK;
	finish(scu, true);
	return e.set(DICOM_ERR_REJECTED, "%s: Study Root %s not accepted", w.c_str(), what);
}

/*
 * retrieval_start - what every retrieval (op "C-GET" or "C-MOVE") checks first, then
 * the SOP classes of the study: from the C-FIND that found it (the cache), else from
 * a C-FIND of its own, which also makes an unknown study DICOM_ERR_NOT_FOUND
 */
enum dicom_err retrieval_start(const char *op, const struct dicom_peer *peer,
			       const char *study_uid, dicom_store_fn store,
			       std::vector<std::string> &classes, Err &e)
{
	enum dicom_err r = peer_check(peer, e);
	if (r != DICOM_OK)
		return r;
	if (!uid_ok(study_uid))
		return e.set(DICOM_ERR_INVALID, "%s: not a valid Study Instance UID", op);
	if (store == nullptr)
		return e.set(DICOM_ERR_INVALID, "%s: no store callback", op);
	if (cache_take(cache_key(peer, study_uid), classes))
		return DICOM_OK;
	DcmDataset q;
	q.putAndInsertString(DCM_QueryRetrieveLevel, "STUDY");
	q.putAndInsertString(DCM_StudyInstanceUID, study_uid);
	q.putAndInsertString(DCM_SOPClassesInStudy, "");
	size_t matches = 0;
	r = find(peer, q, (std::string("C-FIND (") + op + " preparation)").c_str(),
		 [&](DcmDataset *d, Err &) -> enum dicom_err {
			 matches++;
			 std::vector<std::string> c = sop_classes(d);
			 classes.insert(classes.end(), c.begin(), c.end());
			 return DICOM_OK;
		 },
		 e);
	if (r != DICOM_OK)
		return r;
	if (matches == 0)
		return e.set(DICOM_ERR_NOT_FOUND, "%s: no such study on the PACS",
			     what(op, peer).c_str());
	return DICOM_OK;
}

/* study_identifier - the study-level identifier of a C-GET or C-MOVE */
void study_identifier(DcmDataset &d, const char *study_uid)
{
	d.putAndInsertString(DCM_QueryRetrieveLevel, "STUDY");
	d.putAndInsertString(DCM_StudyInstanceUID, study_uid);
}

/* ---- the C API ------------------------------------------------------------------- */

extern "C" {

/* dicom_echo - C-ECHO: the PACS answers and accepts us */
enum dicom_err dicom_echo(const struct dicom_peer *peer, char *err, size_t errlen)
{
	Err e(err, errlen);

	return guarded(e, "C-ECHO", [&]() -> enum dicom_err {
		enum dicom_err r = peer_check(peer, e);
		if (r != DICOM_OK)
			return r;
		FlipSCU scu;
		std::string w = what("C-ECHO", peer);
		setup(scu, peer);
		scu.addPresentationContext(UID_VerificationSOPClass, syntax_list(uncompressed, 2));
		if ((r = connect(scu, w, e)) != DICOM_OK)
			return r;
		OFCondition c = scu.sendECHORequest(0);
		if (c.bad()) {
			finish(scu, false);
			return e.set(DICOM_ERR_PROTOCOL, "%s: %s", w.c_str(), c.text());
		}
		finish(scu, true);
		return DICOM_OK;
	});
}

/* dicom_find_studies - the studies whose AccessionNumber matches, as the PACS says */
enum dicom_err dicom_find_studies(const struct dicom_peer *peer, const char *accession,
				  struct dicom_study **studies, size_t *n, char *err, size_t errlen)
{
	Err e(err, errlen);

	if (studies)
		*studies = nullptr;
	if (n)
		*n = 0;
	return guarded(e, "C-FIND", [&]() -> enum dicom_err {
		enum dicom_err r = peer_check(peer, e);
		if (r != DICOM_OK)
			return r;
		if (studies == nullptr || n == nullptr)
			return e.set(DICOM_ERR_INVALID, "C-FIND: no result pointers");
		if (!query_value_ok(accession, 64))
			return e.set(DICOM_ERR_INVALID,
				     "C-FIND: accession empty, too long, or holding a wildcard, "
				     "backslash or control character");
		DcmDataset q;
		q.putAndInsertString(DCM_QueryRetrieveLevel, "STUDY");
		q.putAndInsertString(DCM_AccessionNumber, accession);
		q.putAndInsertString(DCM_StudyInstanceUID, "");
		q.putAndInsertString(DCM_NumberOfStudyRelatedInstances, "");
		q.putAndInsertString(DCM_SOPClassesInStudy, "");
		std::vector<struct dicom_study> found;
		std::vector<std::pair<std::string, std::vector<std::string>>> classes;
		r = find(peer, q, "C-FIND",
			 [&](DcmDataset *d, Err &ee) -> enum dicom_err {
				 struct dicom_study s;
				 OFString v;
				 std::string t;

				 memset(&s, 0, sizeof s);
				 s.instances = -1;
				 if (d->findAndGetOFString(DCM_StudyInstanceUID, v).bad() ||
				     !uid_ok((t = trim(v)).c_str()))
					 return ee.set(DICOM_ERR_PROTOCOL,
						       "C-FIND: a match without a valid "
						       "StudyInstanceUID");
				 snprintf(s.study_uid, sizeof s.study_uid, "%s", t.c_str());
				 if (d->findAndGetOFStringArray(DCM_AccessionNumber, v).good()) {
					 t = trim(v);
					 if (t.size() >= sizeof s.accession)
						 return ee.set(DICOM_ERR_PROTOCOL,
							       "C-FIND: an AccessionNumber longer "
							       "than 64 bytes");
					 snprintf(s.accession, sizeof s.accession, "%s", t.c_str());
				 }
				 Sint32 k;
				 if (d->findAndGetSint32(DCM_NumberOfStudyRelatedInstances, k).good() &&
				     k >= 0)
					 s.instances = k;
				 found.push_back(s);
				 classes.emplace_back(s.study_uid, sop_classes(d));
				 return DICOM_OK;
			 },
			 e);
		if (r != DICOM_OK)
			return r;
		for (auto &c : classes)
			if (!c.second.empty())
				cache_put(cache_key(peer, c.first.c_str()), std::move(c.second));
		if (!found.empty()) {
			*studies = static_cast<struct dicom_study *>(
				malloc(found.size() * sizeof(struct dicom_study)));
			if (*studies == nullptr)
				return e.set(DICOM_ERR_NOMEM, "C-FIND: out of memory");
			memcpy(*studies, found.data(), found.size() * sizeof(struct dicom_study));
		}
		*n = found.size();
		return DICOM_OK;
	});
}

/* dicom_get_study - C-GET of one study, every instance through store() */
enum dicom_err dicom_get_study(const struct dicom_peer *peer, const char *study_uid,
			       dicom_store_fn store, void *arg, struct dicom_get_stats *stats,
			       char *err, size_t errlen)
{
	Err e(err, errlen);

	if (stats)
		memset(stats, 0, sizeof *stats);
	return guarded(e, "C-GET", [&]() -> enum dicom_err {
		/* 1. which SOP classes does the study hold (and does it exist at all) */
		std::vector<std::string> classes;
		enum dicom_err r = retrieval_start("C-GET", peer, study_uid, store, classes, e);
		if (r != DICOM_OK)
			return r;

		/* 2. the association: the GET model, then the storage contexts (SCP role) */
		FlipSCU scu;
		std::string w = what("C-GET", peer);
		setup(scu, peer);
		scu.store = store;
		scu.arg = arg;
		scu.addPresentationContext(UID_GETStudyRootQueryRetrieveInformationModel,
					   syntax_list(uncompressed, 2));
		OFList<OFString> all = syntax_list(storage_syntaxes, n_storage_syntaxes);
		if (classes.empty()) {
			/* the PACS did not say: the common storage classes, one context each */
			for (int i = 0; i < numberOfDcmLongSCUStorageSOPClassUIDs &&
					(size_t)i < MAX_CONTEXTS;
			     i++)
				scu.addPresentationContext(dcmLongSCUStorageSOPClassUIDs[i], all,
							   ASC_SC_ROLE_SCP);
		} else if (classes.size() * n_storage_syntaxes <= MAX_CONTEXTS) {
			for (const std::string &cl : classes)
				for (size_t k = 0; k < n_storage_syntaxes; k++)
					scu.addPresentationContext(
						cl.c_str(), syntax_list(&storage_syntaxes[k], 1),
						ASC_SC_ROLE_SCP);
		} else {
			for (size_t i = 0; i < classes.size() && i < MAX_CONTEXTS; i++)
				scu.addPresentationContext(classes[i].c_str(), all, ASC_SC_ROLE_SCP);
		}
		if ((r = connect(scu, w, e)) != DICOM_OK)
			return r;
		T_ASC_PresentationContextID pc;
		if ((r = study_context(scu, UID_GETStudyRootQueryRetrieveInformationModel, "C-GET", w,
				       e, &pc)) != DICOM_OK)
			return r;

		/* 3. C-GET; the instances arrive in FlipSCU::handleSTORERequest */
		DcmDataset g;
		study_identifier(g, study_uid);
		OFList<RetrieveResponse *> rsp;
		OFCondition c = scu.sendCGETRequest(pc, &g, &rsp);
		FinalResponse fin = final_response(rsp);
		Uint16 status = fin.status, failed = fin.failed, completed = fin.completed,
		       warning = fin.warning;
		bool have_final = fin.have;
		if (stats) {
			stats->instances = scu.stored;
			stats->bytes = scu.bytes;
		}
		if (scu.store_failed) {
			finish(scu, false);
			return e.set(DICOM_ERR_STORAGE, "%s: storing an instance failed: %s",
				     w.c_str(), scu.store_err.c_str());
		}
		if (c.bad()) {
			finish(scu, false);
			return e.set(DICOM_ERR_PROTOCOL, "%s: %s (after %lu instances)", w.c_str(),
				     c.text(), scu.stored);
		}
		if (!have_final) {
			finish(scu, false);
			return e.set(DICOM_ERR_PROTOCOL, "%s: no final C-GET response", w.c_str());
		}
		finish(scu, true);
		if (status == STATUS_Success && scu.stored == 0)
			return e.set(DICOM_ERR_NOT_FOUND, "%s: the PACS sent no instance", w.c_str());
		if (status == STATUS_Success)
			return DICOM_OK;
		if ((status & 0xf000) == 0xc000 || (status & 0xff00) == 0xa700 ||
		    (status & 0xff00) == 0xa900) {
			if (scu.stored == 0 && completed == 0 && failed == 0 && warning == 0)
				return e.set(DICOM_ERR_NOT_FOUND,
					     "%s: the PACS refused: status 0x%04x (%s)", w.c_str(),
					     status, DU_cgetStatusString(status));
		}
		return e.set(DICOM_ERR_PROTOCOL,
			     "%s: final status 0x%04x (%s): %u completed, %u failed, %u warning, "
			     "%lu received",
			     w.c_str(), status, DU_cgetStatusString(status), completed, failed,
			     warning, scu.stored);
	});
}

}  // extern "C"
