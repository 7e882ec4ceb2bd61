/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dicom_move - C-MOVE of one study (see dicom.h, dicom_move_study()): a storage SCP of
 * our own on a thread of its own (MoveReceiver), the C-MOVE on an association from the
 * calling thread, and the verdict from both. The check of the study before, the
 * identifier and the final response are those of C-GET (dicom_net.cc).
 */
#include "lib/dicom.h"
#include "lib/dicom_shim.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dcmtk/dcmnet/diutil.h"
#include "dcmtk/dcmnet/dul.h"

namespace {

/*
 * MoveReceiver - the storage SCP of one dicom_move_study(), on a thread of its own.
 *
 * The listening socket is ours (bound to the address the caller chose, which dcmtk
 * 3.6's acceptor cannot do: it always binds every interface); each connection we
 * accept is handed to dcmtk as an already-connected socket (dcmExternalSocketHandle,
 * its inetd mode: ASC_initializeNetwork then creates no listening socket and
 * ASC_receiveAssociation takes that socket). Associations are accepted only when
 * called for our AE title, with the Verification class and every storage SOP class
 * in the 13 storage syntaxes; each C-STORE dataset is received in memory and, if it
 * belongs to the study asked for, handed to the store callback exactly as a C-GET
 * sub-operation is (hand_over). Nothing is written to disk here.
 *
 * stop: 0 run, 1 drain (the C-MOVE ended well: finish the association in progress,
 * accept no new one), 2 abort (the C-MOVE failed: abort whatever is in progress).
 */
const int DRAIN_IDLE = 5;	/* seconds a draining association may stay silent */

class MoveReceiver {
      public:
	std::string our_ae, study_uid;
	dicom_store_fn store = nullptr;
	void *arg = nullptr;
	int acse_timeout = DEFAULT_TIMEOUT, dimse_timeout = DEFAULT_TIMEOUT;
	int listenfd = -1;
	std::atomic<int> stop{0};

	/* results: read only after the thread is joined */
	unsigned long stored = 0, foreign = 0, associations = 0;
	unsigned long long bytes = 0;
	bool store_failed = false;
	std::string store_err, problem;

	void run()
	{
		try {
			loop();
		} catch (const std::bad_alloc &) {
			note("out of memory");
		} catch (...) {
			note("unexpected exception");
		}
	}

      private:
		void note(const std::string &what)
	{
		if (problem.empty())
			problem = what;
	}

	void loop()
	{
		while (stop.load() == 0) {
			struct pollfd p = {listenfd, POLLIN, 0};
			int n = poll(&p, 1, 100);

			if (n < 0 && errno != EINTR) {
				note(std::string("poll: ") + strerror(errno));
				return;
			}
			if (n <= 0 || stop.load() != 0)
				continue;
			int fd = accept4(listenfd, nullptr, nullptr, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			serve(fd);
		}
	}

	void serve(int fd)
	{
		T_ASC_Network *net = nullptr;
		T_ASC_Association *assoc = nullptr;

		dcmExternalSocketHandle.set(fd);
		OFCondition c = ASC_initializeNetwork(NET_ACCEPTOR, 0, acse_timeout, &net);
		if (c.good())
			c = ASC_setTransportLayer(net, &tuned_layer, 0);
		if (c.good()) /* "secure" only so that dcmtk uses tuned_layer: plain TCP */
			c = ASC_receiveAssociation(net, &assoc, ASC_DEFAULTMAXPDU, nullptr, nullptr,
						   OFTrue, DUL_NOBLOCK, acse_timeout);
		dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
		if (net == nullptr) {
			close(fd);
			note(std::string("cannot set up the receiver: ") + c.text());
			return;
		}
		if (c.bad()) {
			note(std::string("incoming association failed: ") + c.text());
		} else {
			associations++;
			if (negotiate(assoc))
				converse(assoc);
		}
		if (assoc) {
			ASC_dropSCPAssociation(assoc);
			ASC_destroyAssociation(&assoc);
		}
		ASC_dropNetwork(&net);
	}

	bool negotiate(T_ASC_Association *assoc)
	{
		char calling[65] = "", called[65] = "", responding[65] = "";

		ASC_getAPTitles(assoc->params, calling, sizeof calling, called, sizeof called,
				responding, sizeof responding);
		std::string cd(called);
		while (!cd.empty() && cd.back() == ' ')
			cd.pop_back();
		if (cd != our_ae) {
			T_ASC_RejectParameters rej = {ASC_RESULT_REJECTEDPERMANENT,
						      ASC_SOURCE_SERVICEUSER,
						      ASC_REASON_SU_CALLEDAETITLENOTRECOGNIZED};
			ASC_rejectAssociation(assoc, &rej);
			note("an association for another called AE title was rejected");
			return false;
		}
		const char *ver[] = {UID_VerificationSOPClass};
		const char *unc[] = {uncompressed[0], uncompressed[1]};
		const char *ts[sizeof storage_syntaxes / sizeof storage_syntaxes[0]];
		for (size_t i = 0; i < n_storage_syntaxes; i++)
			ts[i] = storage_syntaxes[i];
		OFCondition c = ASC_acceptContextsWithPreferredTransferSyntaxes(assoc->params, ver, 1,
										 unc, 2);
		if (c.good())
			c = ASC_acceptContextsWithPreferredTransferSyntaxes(
				assoc->params, dcmAllStorageSOPClassUIDs,
				numberOfDcmAllStorageSOPClassUIDs, ts, (int)n_storage_syntaxes);
		if (c.good())
			c = ASC_acknowledgeAssociation(assoc);
		if (c.bad()) {
			note(std::string("cannot accept the incoming association: ") + c.text());
			ASC_abortAssociation(assoc);
			return false;
		}
		return true;
	}

	/* converse - DIMSE until release, abort, error or stop */
	void converse(T_ASC_Association *assoc)
	{
		int idle = 0;

		for (;;) {
			T_ASC_PresentationContextID pc = 0;
			T_DIMSE_Message msg;
			memset(&msg, 0, sizeof msg);
			OFCondition c = DIMSE_receiveCommand(assoc, DIMSE_NONBLOCKING, 1, &pc, &msg,
							     nullptr);
			if (c == DIMSE_NODATAAVAILABLE) {
				int s = stop.load();
				idle++;
				if (s == 2 || (s == 1 && idle >= DRAIN_IDLE) || idle >= dimse_timeout) {
					if (s == 0)
						note("the PACS went silent during the transfer");
					ASC_abortAssociation(assoc);
					return;
				}
				continue;
			}
			idle = 0;
			if (c == DUL_PEERREQUESTEDRELEASE) {
				ASC_acknowledgeRelease(assoc);
				return;
			}
			if (c == DUL_PEERABORTEDASSOCIATION)
				return;
			if (c.bad()) {
				note(std::string("receiving a command: ") + c.text());
				ASC_abortAssociation(assoc);
				return;
			}
			if (msg.CommandField == DIMSE_C_ECHO_RQ) {
				c = DIMSE_sendEchoResponse(assoc, pc, &msg.msg.CEchoRQ, STATUS_Success,
							   nullptr);
			} else if (msg.CommandField == DIMSE_C_STORE_RQ) {
				if (!store_one(assoc, pc, msg.msg.CStoreRQ))
					return;
			} else {
				note("unexpected DIMSE command on the receiver");
				ASC_abortAssociation(assoc);
				return;
			}
			if (c.bad()) {
				note(std::string("answering: ") + c.text());
				ASC_abortAssociation(assoc);
				return;
			}
		}
	}

	/* store_one - the dataset of one C-STORE, to the callback, and the response;
	 * false when the association was aborted */
	bool store_one(T_ASC_Association *assoc, T_ASC_PresentationContextID pc,
		       const T_DIMSE_C_StoreRQ &req)
	{
		DcmDataset *ds = nullptr;
		T_ASC_PresentationContextID dpc = 0;
		OFCondition c = DIMSE_receiveDataSetInMemory(assoc, DIMSE_NONBLOCKING, dimse_timeout,
							     &dpc, &ds, nullptr, nullptr);
		if (c.bad() || ds == nullptr) {
			delete ds;
			note(std::string("receiving a dataset: ") + c.text());
			ASC_abortAssociation(assoc);
			return false;
		}
		Uint16 status = STATUS_Success;
		bool go_on = true;
		OFString v;
		if (store_failed || stop.load() == 2) {
			delete ds;
			status = STATUS_STORE_Refused_OutOfResources;
			go_on = false;
		} else if (ds->findAndGetOFString(DCM_StudyInstanceUID, v).bad() ||
			   trim(v) != study_uid) {
			/* not the study we asked for: never handed on */
			delete ds;
			foreign++;
			status = STATUS_STORE_Error_CannotUnderstand;
		} else {
			unsigned long long len = 0;
			if (hand_over(ds, store, arg, len, store_err) != 0) {
				store_failed = true;
				status = STATUS_STORE_Refused_OutOfResources;
				go_on = false;
			} else {
				stored++;
				bytes += len;
			}
		}
		T_DIMSE_Message rsp;
		memset(&rsp, 0, sizeof rsp);
		rsp.CommandField = DIMSE_C_STORE_RSP;
		T_DIMSE_C_StoreRSP &r = rsp.msg.CStoreRSP;
		r.MessageIDBeingRespondedTo = req.MessageID;
		OFStandard::strlcpy(r.AffectedSOPClassUID, req.AffectedSOPClassUID,
				    sizeof r.AffectedSOPClassUID);
		OFStandard::strlcpy(r.AffectedSOPInstanceUID, req.AffectedSOPInstanceUID,
				    sizeof r.AffectedSOPInstanceUID);
		r.DataSetType = DIMSE_DATASET_NULL;
		r.DimseStatus = status;
		r.opts = O_STORE_AFFECTEDSOPCLASSUID | O_STORE_AFFECTEDSOPINSTANCEUID;
		c = DIMSE_sendMessageUsingMemoryData(assoc, pc, &rsp, nullptr, nullptr, nullptr,
						      nullptr);
		if (c.bad() || !go_on) {
			if (c.bad())
				note(std::string("answering a C-STORE: ") + c.text());
			ASC_abortAssociation(assoc);
			return false;
		}
		return true;
	}
};

/* open_listener - a listening TCP socket on host:port (IPv4, as dcmtk 3.6 is) */
enum dicom_err open_listener(const char *host, int port, int &fd, Err &e)
{
	struct addrinfo hints, *ai = nullptr;
	char ps[16];

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(ps, sizeof ps, "%d", port);
	int g = getaddrinfo(host, ps, &hints, &ai);
	if (g != 0 || ai == nullptr)
		return e.set(DICOM_ERR_IO, "C-MOVE receiver: cannot resolve bind address %s: %s",
			     host, gai_strerror(g));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return e.set(DICOM_ERR_IO, "C-MOVE receiver: socket: %s", strerror(errno));
	}
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
	int saved = errno;
	freeaddrinfo(ai);
	if (rc == 0 && listen(fd, 16) == 0)
		return DICOM_OK;
	if (rc == 0)
		saved = errno;
	close(fd);
	fd = -1;
	if (saved == EADDRINUSE)
		return e.set(DICOM_ERR_IO,
			     "C-MOVE receiver: port %d on %s is already in use (FLIP_DICOM_PORT): "
			     "another process listens there",
			     port, host);
	return e.set(DICOM_ERR_IO, "C-MOVE receiver: cannot listen on %s:%d: %s", host, port,
		     strerror(saved));
}

/* ReceiverRun - the receiver thread; stopped (abort) and joined on every way out */
struct ReceiverRun {
	MoveReceiver &rx;
	std::thread t;
	explicit ReceiverRun(MoveReceiver &r) : rx(r), t([&r]() { r.run(); }) {}
	void end(int how)
	{
		if (t.joinable()) {
			int zero = 0;
			rx.stop.compare_exchange_strong(zero, how);
			t.join();
		}
	}
	~ReceiverRun()
	{
		end(2);
		if (rx.listenfd >= 0)
			close(rx.listenfd);
		rx.listenfd = -1;
	}
};

}  // namespace

/* ---- the C API ------------------------------------------------------------------- */

extern "C" {

/* dicom_move_study - C-MOVE of one study to a receiver of our own, every instance
 * through store() */
enum dicom_err dicom_move_study(const struct dicom_peer *peer, const char *study_uid,
				const char *bind_host, int port, dicom_store_fn store, void *arg,
				struct dicom_get_stats *stats, char *err, size_t errlen)
{
	Err e(err, errlen);

	if (stats)
		memset(stats, 0, sizeof *stats);
	return guarded(e, "C-MOVE", [&]() -> enum dicom_err {
		if (bind_host == nullptr || !*bind_host)
			return e.set(DICOM_ERR_INVALID, "C-MOVE: no bind address for the receiver");
		if (port < 1 || port > 65535)
			return e.set(DICOM_ERR_INVALID, "C-MOVE: receiver port %d out of range 1..65535",
				     port);

		/* 1. does the study exist (its classes are the receiver's business) */
		std::vector<std::string> classes;
		enum dicom_err r = retrieval_start("C-MOVE", peer, study_uid, store, classes, e);
		if (r != DICOM_OK)
			return r;

		/* 2. the receiver: our socket, then the thread */
		std::string w = what("C-MOVE", peer) + " (receiver " + bind_host + ":" +
				std::to_string(port) + ")";
		MoveReceiver rx;
		rx.our_ae = peer->calling_ae;
		rx.study_uid = study_uid;
		rx.store = store;
		rx.arg = arg;
		rx.acse_timeout = or_default(peer->assoc_timeout);
		rx.dimse_timeout = or_default(peer->dimse_timeout);
		if ((r = open_listener(bind_host, port, rx.listenfd, e)) != DICOM_OK)
			return r;
		ReceiverRun run(rx);

		/* 3. the C-MOVE on an association of its own */
		FlipSCU scu;
		setup(scu, peer);
		scu.addPresentationContext(UID_MOVEStudyRootQueryRetrieveInformationModel,
					   syntax_list(uncompressed, 2));
		if ((r = connect(scu, w, e)) != DICOM_OK)
			return r;
		T_ASC_PresentationContextID pc;
		if ((r = study_context(scu, UID_MOVEStudyRootQueryRetrieveInformationModel, "C-MOVE",
				       w, e, &pc)) != DICOM_OK)
			return r;
		DcmDataset m;
		study_identifier(m, study_uid);
		OFList<RetrieveResponse *> rsp;
		OFCondition c = scu.sendMOVERequest(pc, peer->calling_ae, &m, &rsp);
		FinalResponse fin = final_response(rsp);
		Uint16 status = fin.status, failed = fin.failed, completed = fin.completed,
		       warning = fin.warning;
		bool have_final = fin.have;
		bool healthy = c.good() && have_final;
		finish(scu, healthy);

		/* 4. the receiver ends: drains after a final response, aborts otherwise */
		run.end(healthy && !rx.store_failed ? 1 : 2);
		if (stats) {
			stats->instances = rx.stored;
			stats->bytes = rx.bytes;
		}
		std::string extra = rx.problem.empty() ? "" : "; receiver: " + rx.problem;
		if (rx.foreign)
			extra += "; " + std::to_string(rx.foreign) +
				 " instances of another study refused";
		if (rx.store_failed)
			return e.set(DICOM_ERR_STORAGE, "%s: storing an instance failed: %s",
				     w.c_str(), rx.store_err.c_str());
		if (c.bad())
			return e.set(DICOM_ERR_PROTOCOL, "%s: %s (after %lu instances)%s", w.c_str(),
				     c.text(), rx.stored, extra.c_str());
		if (!have_final)
			return e.set(DICOM_ERR_PROTOCOL, "%s: no final C-MOVE response%s", w.c_str(),
				     extra.c_str());
		if (status == STATUS_MOVE_Failed_MoveDestinationUnknown)
			return e.set(DICOM_ERR_REJECTED,
				     "%s: the PACS does not know the move destination %s (register "
				     "the node's AE title, address and port on the PACS)",
				     w.c_str(), peer->calling_ae);
		if (status == STATUS_Success && completed == 0 && failed == 0 && rx.stored == 0)
			return e.set(DICOM_ERR_NOT_FOUND, "%s: the PACS sent no instance", w.c_str());
		if (status == STATUS_Success && rx.stored >= completed && rx.problem.empty())
			return DICOM_OK;
		if (rx.associations == 0)
			return e.set(DICOM_ERR_PROTOCOL,
				     "%s: final status 0x%04x (%s), but the PACS never connected to "
				     "the receiver: does it send %s to this host and port?%s",
				     w.c_str(), status, DU_cmoveStatusString(status), peer->calling_ae,
				     extra.c_str());
		return e.set(DICOM_ERR_PROTOCOL,
			     "%s: final status 0x%04x (%s): %u completed, %u failed, %u warning, "
			     "%lu received%s",
			     w.c_str(), status, DU_cmoveStatusString(status), completed, failed,
			     warning, rx.stored, extra.c_str());
	});
}

}  // extern "C"
