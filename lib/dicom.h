/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dicom - the node's only door to DICOM: an extern "C" shim over dcmtk 3.6.
 *
 * SYNOPSIS
 *	#include "lib/dicom.h"
 *
 *	uint32_t DICOM_TAG(uint16_t group, uint16_t element);
 *	uint16_t DICOM_GROUP(uint32_t tag);
 *	uint16_t DICOM_ELEMENT(uint32_t tag);
 *
 *	void dicom_init(int debug);
 *	const char *dicom_err_name(enum dicom_err e);
 *
 *	enum dicom_err dicom_echo(const struct dicom_peer *peer, char *err, size_t errlen);
 *	enum dicom_err dicom_find_studies(const struct dicom_peer *peer, const char *accession,
 *					  struct dicom_study **studies, size_t *n,
 *					  char *err, size_t errlen);
 *	enum dicom_err dicom_get_study(const struct dicom_peer *peer, const char *study_uid,
 *				       dicom_store_fn store, void *arg,
 *				       struct dicom_get_stats *stats, char *err, size_t errlen);
 *	enum dicom_err dicom_move_study(const struct dicom_peer *peer, const char *study_uid,
 *					const char *bind_host, int port, dicom_store_fn store,
 *					void *arg, struct dicom_get_stats *stats, char *err,
 *					size_t errlen);
 *
 *	enum dicom_err dicom_ds_load(const char *path, struct dicom_ds **ds,
 *				     char *err, size_t errlen);
 *	enum dicom_err dicom_ds_save(struct dicom_ds *ds, const char *path,
 *				     char *err, size_t errlen);
 *	enum dicom_err dicom_ds_save_fd(struct dicom_ds *ds, int fd, char *err, size_t errlen);
 *	void dicom_ds_free(struct dicom_ds *ds);
 *	enum dicom_err dicom_ds_get_string(struct dicom_ds *ds, uint32_t tag, char *buf,
 *					   size_t len);
 *	enum dicom_err dicom_ds_put_string(struct dicom_ds *ds, uint32_t tag, const char *value);
 *	enum dicom_err dicom_ds_put_code_item(struct dicom_ds *ds, uint32_t seq_tag,
 *					      const char *value, const char *scheme,
 *					      const char *meaning);
 *	int dicom_ds_remove(struct dicom_ds *ds, uint32_t tag);
 *	size_t dicom_ds_remove_private(struct dicom_ds *ds);
 *	enum dicom_err dicom_ds_walk(struct dicom_ds *ds, dicom_walk_fn fn, void *arg);
 *	int dicom_ds_has_pixel_data(struct dicom_ds *ds);
 *	int dicom_ds_burned_in(struct dicom_ds *ds);
 *	const char *dicom_ds_transfer_syntax(struct dicom_ds *ds);
 *	enum dicom_err dicom_ds_encode_element(struct dicom_ds *ds, uint32_t tag,
 *					       unsigned char **buf, size_t *len);
 *
 *	uint32_t dicom_elem_tag(const struct dicom_elem *e);
 *	const char *dicom_elem_vr(const struct dicom_elem *e);
 *	int dicom_elem_depth(const struct dicom_elem *e);
 *	uint32_t dicom_elem_parent(const struct dicom_elem *e);
 *	int dicom_elem_is_sequence(const struct dicom_elem *e);
 *	int dicom_elem_is_string(const struct dicom_elem *e);
 *	enum dicom_err dicom_elem_get_string(const struct dicom_elem *e, char *buf, size_t len);
 *	enum dicom_err dicom_elem_set_string(struct dicom_elem *e, const char *value);
 *	enum dicom_err dicom_elem_clear(struct dicom_elem *e);
 *
 * DESCRIPTION
 *	dcmtk is C++; this file, dicom_shim.h and dicom*.cc are the only places that know
 *	it. Every handle is opaque, every failure comes back as an enum dicom_err with a
 *	one-line message in err, and no C++ exception crosses into C. Messages name the
 *	operation, the peer (host:port, AE titles) and dcmtk's condition text, never an
 *	attribute value: no accession number, UID or patient data is ever put in err.
 *
 *	dicom_init() sets dcmtk's logger (oflog). Without it (or with debug 0), dcmtk
 *	prints nothing at all; with debug 1 dcmtk's INFO lines (association
 *	requested/accepted, C-GET sent, C-STORE received: no attribute values at that
 *	level) go through log_debug() with a "dcmtk: " prefix. Every other function
 *	calls dicom_init(0) itself the first time, so forgetting it never lets dcmtk
 *	write "I: Requesting Association" on the node's stderr. It also makes dcmtk
 *	read a standard attribute that an explicit-VR file wrote with VR UN by its
 *	dictionary VR (dcmEnableUnknownVRConversion), so that its value is visible to
 *	the walk below. Not thread-safe, like
 *	the rest of the shim: dcmtk's network timeouts are process-wide globals.
 *
 *   Network (the node is always the association requestor, the PACS the acceptor)
 *	A struct dicom_peer names the PACS: host and port, called AE (PACS_AETITLE),
 *	calling AE (FLIP_AETITLE), and three timeouts in seconds (0 = default 30):
 *	association (the TCP connect and the A-ASSOCIATE exchange), DIMSE (waiting for
 *	each DIMSE message, e.g. the next C-STORE of a C-GET) and network (each socket
 *	read and write). Every connection, outgoing or accepted by the C-MOVE receiver,
 *	is plain TCP with TCP_NODELAY set and TCP_QUICKACK re-armed after each read:
 *	DICOM is a conversation of small messages, and with Nagle's algorithm and
 *	delayed ACKs (the defaults of dcmtk as Debian builds it, and of Orthanc) each
 *	exchange can wait 40 ms for an ACK (see TunedConnection in dicom.cc).
 *
 *	dicom_echo() opens an association with the Verification SOP class, sends
 *	C-ECHO, releases. The heartbeat's `dicom` health probe.
 *
 *	dicom_find_studies() sends one Study Root C-FIND at STUDY level on
 *	AccessionNumber and returns every match as a malloc'd array of struct
 *	dicom_study (free() it): the StudyInstanceUID and the AccessionNumber the PACS
 *	returned, which need not equal the one asked for (Orthanc matches
 *	case-insensitively): the caller keeps exact matches only. instances is
 *	NumberOfStudyRelatedInstances, or -1 when the PACS did not say. An accession
 *	that is empty, longer than 64 bytes, or holds a wildcard (* ?), a backslash or
 *	a control character is refused (DICOM_ERR_INVALID) before any connection:
 *	it would turn an exact lookup into a search. At most DICOM_FIND_MAX matches
 *	are kept; more is DICOM_ERR_PROTOCOL.
 *
 *	dicom_get_study() retrieves a study with C-GET on one association: the images
 *	come back on the connection the node opened, no inbound port. It needs the
 *	SOP classes the study holds (SOPClassesInStudy): dicom_find_studies() asks for
 *	them and keeps them for the next dicom_get_study() of that study on that peer
 *	(used once; the last 64 finds only); without them it asks the PACS with a
 *	C-FIND of its own first, which also makes an unknown study DICOM_ERR_NOT_FOUND.
 *	For each class it proposes one presentation context per transfer syntax it
 *	knows (uncompressed, deflate, RLE, JPEG, JPEG-LS, JPEG 2000; 13 in all), so a
 *	PACS that chooses per instance (as Orthanc does) sends every instance in the
 *	transfer syntax it stored, without transcoding. More than 9 classes, or a PACS
 *	that does not report them, get one context per class listing all 13 syntaxes
 *	(for the latter, dcmtk's list of common storage classes): the PACS then picks
 *	one syntax per class and transcodes the rest, which fails for what it cannot
 *	transcode (Orthanc 1.10 without its GDCM plugin cannot decode JPEG 2000: a
 *	failed sub-operation, DICOM_ERR_PROTOCOL). Each received
 *	instance is parsed in memory (dcmtk writes no file) and handed to store(ds,
 *	arg, err, errlen) as a dataset that is valid only during the call (the shim
 *	frees it afterwards); its transfer syntax is the one it arrived in, which
 *	dicom_ds_save() keeps. store may instead return DICOM_STORE_KEPT: it then owns
 *	the dataset (to work on it in another thread while the next instance comes; it
 *	frees it with dicom_ds_free()). store returns 0, or -1 with a message: the C-STORE is
 *	then answered with a failure status, the association is aborted and the call
 *	returns DICOM_ERR_STORAGE with that message. stats (may be NULL) counts the
 *	instances stored and their bytes (the dataset's encoded length).
 *
 *	dicom_move_study() retrieves a study with C-MOVE, for a PACS without C-GET:
 *	the node runs a C-STORE receiver only for the duration of the call. It listens
 *	on bind_host:port (IPv4; the caller picks the address the PACS sends to), on a
 *	thread of its own, then sends a Study Root C-MOVE at STUDY level with move
 *	destination peer->calling_ae on a separate association; the PACS must know that
 *	AE title with this host and port. The receiver accepts associations called for
 *	peer->calling_ae only (others are rejected), with Verification and every
 *	storage SOP class in the 13 syntaxes above (the PACS's choice per context); each
 *	received instance is parsed in memory and handed to store exactly as by
 *	dicom_get_study() (store runs on the receiver thread, while the calling thread
 *	waits for the C-MOVE), except that an instance of another study is refused
 *	with a failure status and never handed on. Nothing is written to disk. When the
 *	final C-MOVE response arrives the receiver finishes the association in progress
 *	(at most 5 s of silence) and stops; on any failure or timeout it aborts it. The
 *	study's existence comes from the preceding dicom_find_studies() or a C-FIND of
 *	its own, as for C-GET. Categories as for C-GET, and: the port already in use, or
 *	any other failure to listen, is DICOM_ERR_IO (before any association); a
 *	"move destination unknown" answer is DICOM_ERR_REJECTED; a PACS that reports
 *	sub-operations but never connected to the receiver, or fewer instances arriving
 *	than it reports completed, is DICOM_ERR_PROTOCOL.
 *
 *	Error categories of the network calls:
 *	  DICOM_ERR_UNREACHABLE	no association: DNS, TCP connect refused or timed
 *				out, the peer silent or dropping the connection during
 *				association negotiation
 *	  DICOM_ERR_REJECTED	the PACS rejected the association (A-ASSOCIATE-RJ, e.g.
 *				an unknown called or calling AE title) or accepted none
 *				of the proposed presentation contexts
 *	  DICOM_ERR_NOT_FOUND	C-GET: the PACS has no such study (nothing received
 *				and no sub-operation attempted, or a refusal status)
 *	  DICOM_ERR_STORAGE	C-GET: the store callback failed
 *	  DICOM_ERR_PROTOCOL	anything after the association was accepted: a DIMSE
 *				failure or timeout, a failure status, failed
 *				sub-operations, an abort by the peer
 *	  DICOM_ERR_INVALID	a bad argument, refused before touching the network
 *
 *   Datasets
 *	struct dicom_ds is one DICOM instance in memory (file meta information plus
 *	dataset).
 *
 *	dicom_ds_load() reads a DICOM file (with or without a Part 10 header; opened
 *	O_NOFOLLOW, a regular file, at most DICOM_MAX_FILE bytes) completely into
 *	memory. A truncated file, a value length beyond the end of the file or an
 *	unparsable file is DICOM_ERR_CORRUPT; a file that cannot be opened or read is
 *	DICOM_ERR_IO.
 *
 *	dicom_ds_save_fd() writes the instance as a Part 10 file to fd, from its current
 *	offset, in the transfer syntax the dataset was read or received in (pixel data
 *	is never re-encoded); the meta header is brought in line with the dataset
 *	(SOP Class and Instance UIDs, transfer syntax, dcmtk as the implementation;
 *	created when the instance came from the network), its other attributes kept
 *	(de-identification removes the identifying ones). It does not fsync or close: the
 *	caller's write-fsync-rename does that. A failed write is DICOM_ERR_IO with
 *	strerror. dicom_ds_save() is the same into path, created or truncated (mode
 *	0640 before umask, O_NOFOLLOW), not fsynced.
 *
 *	Tags are uint32_t (group << 16 | element); DICOM_TAG(g, e) builds one,
 *	DICOM_GROUP(t) and DICOM_ELEMENT(t) take one apart.
 *	dicom_ds_get_string() copies the value of a top-level string attribute (all
 *	values, backslash-separated, trailing padding removed) into buf:
 *	DICOM_ERR_NOT_FOUND when absent, DICOM_ERR_INVALID when not a string VR or
 *	longer than len - 1. dicom_ds_put_string() sets (or inserts) a top-level
 *	attribute; tags of group 0002 go to the meta header. dicom_ds_put_code_item()
 *	appends to the top-level sequence seq_tag (created if absent) one item holding
 *	CodeValue, CodingSchemeDesignator and CodeMeaning. dicom_ds_remove() deletes a
 *	top-level attribute and returns 1, or 0 when absent. dicom_ds_remove_private()
 *	deletes every attribute of an odd group (private creators included) at every
 *	nesting level and returns how many it deleted.
 *
 *	dicom_ds_walk() visits every attribute of the meta header and the dataset,
 *	depth first and in tag order, descending into every item of every sequence.
 *	fn(e, arg) sees the element e (valid during the call only) and returns
 *	DICOM_WALK_KEEP (then, for a sequence, its items are visited next),
 *	DICOM_WALK_REMOVE (the element, with its items, is deleted and not descended
 *	into), DICOM_WALK_SKIP (kept, items not visited) or a negative number (the
 *	walk stops there and returns DICOM_ERR_INVALID; the callback keeps its own
 *	reason in arg). fn may change e in place with dicom_elem_set_string() or
 *	dicom_elem_clear() (a sequence is cleared by deleting all its items). Sequences
 *	nested deeper than 64 levels stop the walk the same way. dicom_elem_depth() is
 *	0 at the top level (meta header or dataset) and one more inside each sequence
 *	item; dicom_elem_parent() is the tag of the sequence holding the item (0 at
 *	the top level); dicom_elem_vr() is the two-letter VR ("UN" when dcmtk has
 *	none).
 *
 *	dicom_ds_has_pixel_data() is 1 when the dataset holds Pixel Data, Float Pixel
 *	Data or Double Float Pixel Data (7FE0,0010/0008/0009). dicom_ds_burned_in() is
 *	1 when BurnedInAnnotation (0028,0301) is YES. dicom_ds_transfer_syntax() is
 *	the UID the dataset was read or received in ("" when unknown).
 *	dicom_ds_encode_element() serialises one top-level element (tag, length and
 *	value, or the encapsulated fragments) as it would be written in the dataset's
 *	transfer syntax into a malloc'd buffer: tests compare Pixel Data byte for byte
 *	with it.
 *
 * DIAGNOSTICS
 *	Each function returns DICOM_OK or a category; err gets one line (control
 *	characters replaced). Out of memory inside dcmtk is DICOM_ERR_NOMEM.
 */
#ifndef FLIP_DICOM_H
#define FLIP_DICOM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DICOM_TAG(g, e) ((uint32_t)(((uint32_t)(g) << 16) | (uint32_t)(e)))
#define DICOM_GROUP(t) ((uint16_t)((t) >> 16))
#define DICOM_ELEMENT(t) ((uint16_t)((t) & 0xffffu))

#define DICOM_FIND_MAX 1000		      /* C-FIND matches kept */
#define DICOM_MAX_FILE (4ULL << 30)	      /* dicom_ds_load() refuses larger files */
#define DICOM_UID_MAX 64		      /* a UID: at most 64 characters */

enum dicom_err {
	DICOM_OK = 0,
	DICOM_ERR_UNREACHABLE,	/* "pacs_unreachable" */
	DICOM_ERR_REJECTED,	/* "association_rejected" */
	DICOM_ERR_NOT_FOUND,	/* "not_found" */
	DICOM_ERR_STORAGE,	/* "storage_error" */
	DICOM_ERR_PROTOCOL,	/* "protocol_error" */
	DICOM_ERR_CORRUPT,	/* "corrupt_file": truncated or unparsable DICOM */
	DICOM_ERR_IO,		/* "io_error": a file could not be opened, read or written */
	DICOM_ERR_INVALID,	/* "invalid_argument" */
	DICOM_ERR_NOMEM,	/* "out_of_memory" */
};

struct dicom_peer {
	const char *host;		/* PACS_HOST */
	int port;			/* PACS_DICOM_PORT, 1..65535 */
	const char *called_ae;		/* PACS_AETITLE, 1..16 characters */
	const char *calling_ae;		/* FLIP_AETITLE, 1..16 characters */
	int assoc_timeout;		/* seconds; 0 = 30 */
	int dimse_timeout;		/* seconds; 0 = 30 */
	int network_timeout;		/* seconds; 0 = 30 */
};

struct dicom_study {
	char study_uid[DICOM_UID_MAX + 1];	/* StudyInstanceUID */
	char accession[65];			/* AccessionNumber as the PACS returned it */
	long instances;				/* NumberOfStudyRelatedInstances, -1 unknown */
};

struct dicom_get_stats {
	unsigned long instances;	/* instances handed to store() that it accepted */
	unsigned long long bytes;	/* their encoded dataset lengths */
};

struct dicom_ds;
struct dicom_elem;

/* store callback of dicom_get_study(): 0 (done with ds), DICOM_STORE_KEPT (the callback
 * keeps ds and frees it later with dicom_ds_free, from any thread), or -1 with a
 * message in err */
#define DICOM_STORE_KEPT 1
typedef int (*dicom_store_fn)(struct dicom_ds *ds, void *arg, char *err, size_t errlen);

enum { DICOM_WALK_KEEP = 0, DICOM_WALK_REMOVE = 1, DICOM_WALK_SKIP = 2 };
/* walk callback: DICOM_WALK_*, or < 0 to stop the walk */
typedef int (*dicom_walk_fn)(struct dicom_elem *e, void *arg);

void dicom_init(int debug);
const char *dicom_err_name(enum dicom_err e);

enum dicom_err dicom_echo(const struct dicom_peer *peer, char *err, size_t errlen);
enum dicom_err dicom_find_studies(const struct dicom_peer *peer, const char *accession,
				  struct dicom_study **studies, size_t *n, char *err,
				  size_t errlen);
enum dicom_err dicom_get_study(const struct dicom_peer *peer, const char *study_uid,
			       dicom_store_fn store, void *arg, struct dicom_get_stats *stats,
			       char *err, size_t errlen);
enum dicom_err dicom_move_study(const struct dicom_peer *peer, const char *study_uid,
				const char *bind_host, int port, dicom_store_fn store, void *arg,
				struct dicom_get_stats *stats, char *err, size_t errlen);

enum dicom_err dicom_ds_load(const char *path, struct dicom_ds **ds, char *err, size_t errlen);
enum dicom_err dicom_ds_save(struct dicom_ds *ds, const char *path, char *err, size_t errlen);
enum dicom_err dicom_ds_save_fd(struct dicom_ds *ds, int fd, char *err, size_t errlen);
void dicom_ds_free(struct dicom_ds *ds);
enum dicom_err dicom_ds_get_string(struct dicom_ds *ds, uint32_t tag, char *buf, size_t len);
enum dicom_err dicom_ds_put_string(struct dicom_ds *ds, uint32_t tag, const char *value);
enum dicom_err dicom_ds_put_code_item(struct dicom_ds *ds, uint32_t seq_tag, const char *value,
				      const char *scheme, const char *meaning);
int dicom_ds_remove(struct dicom_ds *ds, uint32_t tag);
size_t dicom_ds_remove_private(struct dicom_ds *ds);
enum dicom_err dicom_ds_walk(struct dicom_ds *ds, dicom_walk_fn fn, void *arg);
int dicom_ds_has_pixel_data(struct dicom_ds *ds);
int dicom_ds_burned_in(struct dicom_ds *ds);
const char *dicom_ds_transfer_syntax(struct dicom_ds *ds);
enum dicom_err dicom_ds_encode_element(struct dicom_ds *ds, uint32_t tag, unsigned char **buf,
				       size_t *len);

uint32_t dicom_elem_tag(const struct dicom_elem *e);
const char *dicom_elem_vr(const struct dicom_elem *e);
int dicom_elem_depth(const struct dicom_elem *e);
uint32_t dicom_elem_parent(const struct dicom_elem *e);
int dicom_elem_is_sequence(const struct dicom_elem *e);
int dicom_elem_is_string(const struct dicom_elem *e);
enum dicom_err dicom_elem_get_string(const struct dicom_elem *e, char *buf, size_t len);
enum dicom_err dicom_elem_set_string(struct dicom_elem *e, const char *value);
enum dicom_err dicom_elem_clear(struct dicom_elem *e);

#ifdef __cplusplus
}
#endif

#endif
