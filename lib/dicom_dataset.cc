/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dicom_dataset - the shim's datasets (see dicom.h, "Datasets"): one DICOM instance in
 * memory, read from a file, written to a descriptor, edited attribute by attribute
 * or walked; the handle a C-GET or C-MOVE hands to the store callback is made here
 * (ds_wrap).
 *
 * Files are read by dcmtk through /proc/self/fd/N of a descriptor we opened with
 * O_NOFOLLOW and checked to be a regular file, so what is parsed is the file we
 * checked. Large values are loaded lazily (dcmtk re-opens that /proc path while the
 * descriptor is still open) and then all at once before it is closed: parsing with
 * lazy values is what keeps an absurd value length from becoming an allocation of
 * that size (dcmtk allocates a value before reading it). Writing goes through our
 * own DcmConsumer (FlipSink) to a descriptor or a string, so that a short write or
 * ENOSPC is seen and reported with errno, which dcmtk's FILE-based consumer would
 * lose in fclose().
 */
#include "lib/dicom.h"
#include "lib/dicom_shim.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dcmtk/dcmdata/dcostrma.h"
#include "dcmtk/dcmdata/dcwcache.h"

/* the opaque handles of dicom.h */
struct dicom_ds {
	DcmFileFormat *ff;
	char xfer[DICOM_UID_MAX + 1];
};

struct dicom_elem {
	DcmElement *el;
	int depth;
	uint32_t parent;
	char vr[3];
};

/* ds_wrap - a dicom_ds around a file format object (taking ownership) */
struct dicom_ds *ds_wrap(DcmFileFormat *ff)
{
	struct dicom_ds *ds = new struct dicom_ds;
	E_TransferSyntax x = ff->getDataset()->getOriginalXfer();

	ds->ff = ff;
	ds->xfer[0] = 0;
	if (x != EXS_Unknown) {
		DcmXfer xf(x);
		snprintf(ds->xfer, sizeof ds->xfer, "%s", xf.getXferID());
	}
	return ds;
}

namespace {

const int MAX_DEPTH = 64;		/* sequence nesting the walk accepts */

/* ---- writing -------------------------------------------------------------------- */

/* FlipSink - a DcmConsumer writing to a descriptor or appending to a string */
class FlipSink : public DcmConsumer {
      public:
	int fd = -1;
	std::string *out = nullptr;
	int saved_errno = 0;
	/*
	 * dcmtk hands the consumer one element at a time: written straight to the fd that
	 * was some 800 write(2) calls per instance (seen with strace). Buffer and write in
	 * large pieces; drain() at the end (save_to) writes the rest. A piece of chunk
	 * bytes or more (the pixel data) goes straight from dcmtk's buffer to the fd:
	 * appending it to `pending` cost a copy plus the string's regrowth copies, a
	 * quarter of a CT retrieval's instructions (callgrind, 600 slices of 512x512).
	 */
	std::string pending;
	static constexpr size_t chunk = 256 * 1024;

	OFBool good() const override { return saved_errno == 0; }
	OFCondition status() const override { return good() ? EC_Normal : EC_InternalError; }
	OFBool isFlushed() const override { return OFTrue; }
	offile_off_t avail() const override { return 2147483647L; }
	void flush() override {}
	void put(const char *p, size_t len)
	{
		size_t done = 0;

		while (!saved_errno && done < len) {
			ssize_t n = ::write(fd, p + done, len - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				saved_errno = n < 0 ? errno : EIO;
				break;
			}
			done += (size_t)n;
		}
	}
	void drain()
	{
		put(pending.data(), pending.size());
		pending.clear();
	}
	offile_off_t write(const void *buf, offile_off_t len) override
	{
		const char *p = static_cast<const char *>(buf);

		if (saved_errno || len <= 0)
			return saved_errno ? len : 0;
		if (out) {
			out->append(p, (size_t)len);
			return len;
		}
		if ((size_t)len >= chunk) {
			drain();
			put(p, (size_t)len);
			return len;
		}
		pending.append(p, (size_t)len);
		if (pending.size() >= chunk)
			drain();
		/* a failed sink takes everything, so the write ends; save_to reads saved_errno */
		return len;
	}
};

class SinkStream : public DcmOutputStream {
      public:
	explicit SinkStream(FlipSink *s) : DcmOutputStream(s) {}
};

enum dicom_err save_to(struct dicom_ds *ds, FlipSink &sink, Err &e)
{
	DcmDataset *d = ds->ff->getDataset();
	E_TransferSyntax x = d->getOriginalXfer();
	DcmWriteCache wcache;

	if (x == EXS_Unknown)
		x = EXS_LittleEndianExplicit;
	SinkStream stream(&sink);
	ds->ff->transferInit();
	OFCondition c = ds->ff->write(stream, x, EET_UndefinedLength, &wcache, EGL_recalcGL,
				      EPD_noChange, 0, 0, 0, EWM_updateMeta);
	ds->ff->transferEnd();
	stream.flush();
	if (sink.fd >= 0)
		sink.drain();
	if (sink.saved_errno)
		return e.set(DICOM_ERR_IO, "cannot write DICOM file: %s", strerror(sink.saved_errno));
	if (c.bad())
		return e.set(DICOM_ERR_CORRUPT, "cannot encode DICOM dataset: %s", c.text());
	return DICOM_OK;
}

/* ---- the walk ------------------------------------------------------------------- */

const char *vr_name(DcmElement *el, char out[3])
{
	DcmEVR evr = el->getVR();
	const char *n;

	/* dcmtk's internal VRs for pixel data and friends */
	if (evr == EVR_ox || evr == EVR_px || evr == EVR_pixelSQ)
		n = el->getTag().getEVR() == EVR_OW ? "OW" : "OB";
	else if (evr == EVR_lt)
		n = "OW";
	else if (evr == EVR_xs)
		n = "US";
	else
		n = DcmVR(evr).getValidVRName();
	snprintf(out, 3, "%s", n && strlen(n) == 2 ? n : "UN");
	return out;
}

/* walk_item - visit item's elements (see dicom_ds_walk); -1 when stopped */
int walk_item(DcmItem *item, int depth, uint32_t parent, dicom_walk_fn fn, void *arg)
{
	if (depth > MAX_DEPTH)
		return -1;
	for (unsigned long i = 0; i < item->card();) {
		DcmElement *el = item->getElement(i);
		struct dicom_elem e;

		e.el = el;
		e.depth = depth;
		e.parent = parent;
		vr_name(el, e.vr);
		int rc = fn(&e, arg);
		if (rc < 0)
			return -1;
		if (rc == DICOM_WALK_REMOVE) {
			delete item->remove(i);
			continue;
		}
		if (rc == DICOM_WALK_KEEP && el->ident() == EVR_SQ) {
			DcmSequenceOfItems *sq = static_cast<DcmSequenceOfItems *>(el);
			uint32_t tag = DICOM_TAG(el->getGTag(), el->getETag());

			for (unsigned long j = 0; j < sq->card(); j++)
				if (walk_item(sq->getItem(j), depth + 1, tag, fn, arg) < 0)
					return -1;
		}
		i++;
	}
	return 0;
}

int remove_private_cb(struct dicom_elem *e, void *arg)
{
	if (e->el->getGTag() & 1) {
		(*static_cast<size_t *>(arg))++;
		return DICOM_WALK_REMOVE;
	}
	return DICOM_WALK_KEEP;
}

/* item_for - the meta header for group 0002, the dataset otherwise */
DcmItem *item_for(struct dicom_ds *ds, uint32_t tag)
{
	if (DICOM_GROUP(tag) == 0x0002)
		return ds->ff->getMetaInfo();
	return ds->ff->getDataset();
}

/* string_value - a string element's values, backslash-separated, padding trimmed,
 * into buf; DICOM_ERR_INVALID when unreadable or not shorter than len */
enum dicom_err string_value(DcmElement *el, char *buf, size_t len)
{
	OFString v;

	if (el->getOFStringArray(v).bad() && el->getLength() != 0)
		return DICOM_ERR_INVALID;
	std::string t = trim(v);
	if (t.size() >= len)
		return DICOM_ERR_INVALID;
	memcpy(buf, t.c_str(), t.size() + 1);
	return DICOM_OK;
}

}  // namespace

/* ---- the C API ------------------------------------------------------------------- */

extern "C" {

/* dicom_ds_load - a whole DICOM file into memory */
enum dicom_err dicom_ds_load(const char *path, struct dicom_ds **out, char *err, size_t errlen)
{
	Err e(err, errlen);

	if (out)
		*out = nullptr;
	if (path == nullptr || out == nullptr)
		return e.set(DICOM_ERR_INVALID, "dicom_ds_load: no path");
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return e.set(DICOM_ERR_IO, "%s: %s", path,
			     errno == ELOOP ? "is a symbolic link (refused)" : strerror(errno));
	enum dicom_err r = guarded(e, path, [&]() -> enum dicom_err {
		struct stat st;
		if (fstat(fd, &st) != 0)
			return e.set(DICOM_ERR_IO, "%s: %s", path, strerror(errno));
		if (!S_ISREG(st.st_mode))
			return e.set(DICOM_ERR_IO, "%s: not a regular file", path);
		if ((unsigned long long)st.st_size > DICOM_MAX_FILE)
			return e.set(DICOM_ERR_IO, "%s: larger than %llu bytes", path,
				     (unsigned long long)DICOM_MAX_FILE);
		if (st.st_size < 8)
			return e.set(DICOM_ERR_CORRUPT, "%s: too short to be DICOM", path);
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		DcmFileFormat *ff = new DcmFileFormat();
		/* Values longer than DCM_MaxReadLength are only located, not read, by the
		 * parse: a length beyond the end of the file then fails as a premature end
		 * of the stream instead of first allocating that many bytes. They are read
		 * (through the same /proc path, while fd is open) just after. */
		OFCondition c = ff->loadFile(proc, EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
					     ERM_autoDetect);
		if (c.good())
			c = ff->loadAllDataIntoMemory();
		if (c.bad()) {
			delete ff;
			if (c == EC_MemoryExhausted)
				return e.set(DICOM_ERR_CORRUPT,
					     "%s: not a DICOM file dcmtk can read (a value "
					     "length beyond the file?)",
					     path);
			return e.set(DICOM_ERR_CORRUPT, "%s: not a readable DICOM file: %s", path,
				     c.text());
		}
		if (ff->getDataset()->card() == 0) {
			delete ff;
			return e.set(DICOM_ERR_CORRUPT, "%s: no DICOM dataset in the file", path);
		}
		try {
			*out = ds_wrap(ff);
		} catch (...) {
			delete ff;
			throw;
		}
		return DICOM_OK;
	});
	close(fd);
	return r;
}

/* dicom_ds_save_fd - a Part 10 file onto fd, in the dataset's own transfer syntax */
enum dicom_err dicom_ds_save_fd(struct dicom_ds *ds, int fd, char *err, size_t errlen)
{
	Err e(err, errlen);

	if (ds == nullptr || fd < 0)
		return e.set(DICOM_ERR_INVALID, "dicom_ds_save_fd: no dataset or descriptor");
	return guarded(e, "save", [&]() -> enum dicom_err {
		FlipSink sink;
		sink.fd = fd;
		return save_to(ds, sink, e);
	});
}

/* dicom_ds_save - the same into path (created or truncated, not fsynced) */
enum dicom_err dicom_ds_save(struct dicom_ds *ds, const char *path, char *err, size_t errlen)
{
	Err e(err, errlen);

	if (ds == nullptr || path == nullptr)
		return e.set(DICOM_ERR_INVALID, "dicom_ds_save: no dataset or path");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
		return e.set(DICOM_ERR_IO, "%s: %s", path, strerror(errno));
	enum dicom_err r = dicom_ds_save_fd(ds, fd, err, errlen);
	if (close(fd) != 0 && r == DICOM_OK)
		r = e.set(DICOM_ERR_IO, "%s: %s", path, strerror(errno));
	return r;
}

/* dicom_ds_free - the dataset and everything in it */
void dicom_ds_free(struct dicom_ds *ds)
{
	if (ds == nullptr)
		return;
	delete ds->ff;
	delete ds;
}

/* dicom_ds_get_string - a top-level string value */
enum dicom_err dicom_ds_get_string(struct dicom_ds *ds, uint32_t tag, char *buf, size_t len)
{
	if (buf && len)
		buf[0] = 0;
	if (ds == nullptr || buf == nullptr || len == 0)
		return DICOM_ERR_INVALID;
	try {
		DcmElement *el = nullptr;
		DcmTagKey key(DICOM_GROUP(tag), DICOM_ELEMENT(tag));

		if (item_for(ds, tag)->findAndGetElement(key, el, OFFalse).bad() || el == nullptr)
			return DICOM_ERR_NOT_FOUND;
		if (!el->isaString())
			return DICOM_ERR_INVALID;
		return string_value(el, buf, len);
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_ds_put_string - set or insert a top-level attribute */
enum dicom_err dicom_ds_put_string(struct dicom_ds *ds, uint32_t tag, const char *value)
{
	if (ds == nullptr || value == nullptr)
		return DICOM_ERR_INVALID;
	try {
		DcmTag t(DICOM_GROUP(tag), DICOM_ELEMENT(tag));

		if (!t.getVR().isaString())
			return DICOM_ERR_INVALID;
		return item_for(ds, tag)->putAndInsertString(t, value).good() ? DICOM_OK
										 : DICOM_ERR_INVALID;
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_ds_put_code_item - append a coded entry to a top-level sequence */
enum dicom_err dicom_ds_put_code_item(struct dicom_ds *ds, uint32_t seq_tag, const char *value,
				      const char *scheme, const char *meaning)
{
	if (ds == nullptr || value == nullptr || scheme == nullptr || meaning == nullptr)
		return DICOM_ERR_INVALID;
	try {
		DcmItem *it = nullptr;
		DcmTag t(DICOM_GROUP(seq_tag), DICOM_ELEMENT(seq_tag));

		if (t.getEVR() != EVR_SQ)
			return DICOM_ERR_INVALID;
		if (ds->ff->getDataset()->findOrCreateSequenceItem(t, it, -2).bad() || it == nullptr)
			return DICOM_ERR_INVALID;
		if (it->putAndInsertString(DCM_CodeValue, value).bad() ||
		    it->putAndInsertString(DCM_CodingSchemeDesignator, scheme).bad() ||
		    it->putAndInsertString(DCM_CodeMeaning, meaning).bad())
			return DICOM_ERR_INVALID;
		return DICOM_OK;
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_ds_remove - delete a top-level attribute: 1, or 0 when absent */
int dicom_ds_remove(struct dicom_ds *ds, uint32_t tag)
{
	if (ds == nullptr)
		return 0;
	try {
		DcmTagKey key(DICOM_GROUP(tag), DICOM_ELEMENT(tag));

		return item_for(ds, tag)->findAndDeleteElement(key, OFFalse, OFFalse).good() ? 1 : 0;
	} catch (...) {
		return 0;
	}
}

/* dicom_ds_remove_private - every odd-group attribute, at every level */
size_t dicom_ds_remove_private(struct dicom_ds *ds)
{
	size_t n = 0;

	if (ds != nullptr)
		(void)dicom_ds_walk(ds, remove_private_cb, &n);
	return n;
}

/* dicom_ds_walk - every attribute, depth first, fn deciding */
enum dicom_err dicom_ds_walk(struct dicom_ds *ds, dicom_walk_fn fn, void *arg)
{
	if (ds == nullptr || fn == nullptr)
		return DICOM_ERR_INVALID;
	try {
		if (walk_item(ds->ff->getMetaInfo(), 0, 0, fn, arg) < 0 ||
		    walk_item(ds->ff->getDataset(), 0, 0, fn, arg) < 0)
			return DICOM_ERR_INVALID;
		return DICOM_OK;
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_ds_has_pixel_data - any of the three pixel data attributes */
int dicom_ds_has_pixel_data(struct dicom_ds *ds)
{
	if (ds == nullptr)
		return 0;
	DcmDataset *d = ds->ff->getDataset();
	return d->tagExists(DCM_PixelData) || d->tagExists(DCM_FloatPixelData) ||
	       d->tagExists(DCM_DoubleFloatPixelData);
}

/* dicom_ds_burned_in - BurnedInAnnotation is YES */
int dicom_ds_burned_in(struct dicom_ds *ds)
{
	char v[16];

	if (dicom_ds_get_string(ds, DICOM_TAG(0x0028, 0x0301), v, sizeof v) != DICOM_OK)
		return 0;
	return strcasecmp(v, "YES") == 0;
}

/* dicom_ds_transfer_syntax - the UID the dataset came in, "" when unknown */
const char *dicom_ds_transfer_syntax(struct dicom_ds *ds)
{
	return ds ? ds->xfer : "";
}

/* dicom_ds_encode_element - one element as written in the dataset's syntax */
enum dicom_err dicom_ds_encode_element(struct dicom_ds *ds, uint32_t tag, unsigned char **buf,
				       size_t *len)
{
	if (buf)
		*buf = nullptr;
	if (len)
		*len = 0;
	if (ds == nullptr || buf == nullptr || len == nullptr)
		return DICOM_ERR_INVALID;
	try {
		DcmElement *el = nullptr;
		DcmTagKey key(DICOM_GROUP(tag), DICOM_ELEMENT(tag));
		E_TransferSyntax x = ds->ff->getDataset()->getOriginalXfer();

		if (x == EXS_Unknown)
			x = EXS_LittleEndianExplicit;
		if (item_for(ds, tag)->findAndGetElement(key, el, OFFalse).bad() || el == nullptr)
			return DICOM_ERR_NOT_FOUND;
		std::string out;
		FlipSink sink;
		sink.out = &out;
		SinkStream stream(&sink);
		el->transferInit();
		OFCondition c = el->write(stream, x, EET_UndefinedLength, nullptr);
		el->transferEnd();
		stream.flush();
		if (c.bad())
			return DICOM_ERR_CORRUPT;
		*buf = static_cast<unsigned char *>(malloc(out.size() ? out.size() : 1));
		if (*buf == nullptr)
			return DICOM_ERR_NOMEM;
		memcpy(*buf, out.data(), out.size());
		*len = out.size();
		return DICOM_OK;
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

uint32_t dicom_elem_tag(const struct dicom_elem *e)
{
	return DICOM_TAG(e->el->getGTag(), e->el->getETag());
}

const char *dicom_elem_vr(const struct dicom_elem *e) { return e->vr; }

int dicom_elem_depth(const struct dicom_elem *e) { return e->depth; }

uint32_t dicom_elem_parent(const struct dicom_elem *e) { return e->parent; }

int dicom_elem_is_sequence(const struct dicom_elem *e) { return e->el->ident() == EVR_SQ; }

int dicom_elem_is_string(const struct dicom_elem *e)
{
	return e->el->ident() != EVR_SQ && e->el->isaString();
}

/* dicom_elem_get_string - the element's string value (see dicom_ds_get_string) */
enum dicom_err dicom_elem_get_string(const struct dicom_elem *e, char *buf, size_t len)
{
	if (buf && len)
		buf[0] = 0;
	if (e == nullptr || buf == nullptr || len == 0 || !dicom_elem_is_string(e))
		return DICOM_ERR_INVALID;
	try {
		return string_value(e->el, buf, len);
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_elem_set_string - replace a string element's value in place */
enum dicom_err dicom_elem_set_string(struct dicom_elem *e, const char *value)
{
	if (e == nullptr || value == nullptr || !dicom_elem_is_string(e))
		return DICOM_ERR_INVALID;
	try {
		return e->el->putString(value).good() ? DICOM_OK : DICOM_ERR_INVALID;
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_elem_clear - zero-length value; a sequence loses all its items */
enum dicom_err dicom_elem_clear(struct dicom_elem *e)
{
	if (e == nullptr)
		return DICOM_ERR_INVALID;
	try {
		return e->el->clear().good() ? DICOM_OK : DICOM_ERR_INVALID;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

}  // extern "C"
