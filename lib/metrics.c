/*
 * metrics - node_exporter textfile metrics (see metrics.h).
 */
#include "metrics.h"

#include "durable.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void metrics_printf(struct metrics *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void metrics_printf(struct metrics *m, const char *fmt, ...)
{
	va_list ap;
	char line[512];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (m->len + (size_t)n + 1 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 4096;
		while (ncap < m->len + (size_t)n + 1)
			ncap *= 2;
		char *nb = realloc(m->buf, ncap);
		if (nb == NULL)
			return;
		m->buf = nb;
		m->cap = ncap;
	}
	memcpy(m->buf + m->len, line, (size_t)n + 1);
	m->len += (size_t)n;
}

/* metrics_begin - start a program's metrics */
void metrics_begin(struct metrics *m, const char *prog)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->prog, sizeof(m->prog), "%s", prog);
}

/* metrics_add - one sample */
void metrics_add(struct metrics *m, const char *name, const char *labels, double value)
{
	metrics_printf(m, "flip_%s{prog=\"%s\"%s%s} %.17g\n", name, m->prog, labels ? "," : "",
		       labels ? labels : "", value);
}

/* metrics_spool_depth - jobs per state and the age of the oldest waiting job */
void metrics_spool_depth(struct metrics *m, struct spool *sp)
{
	for (int st = SPOOL_NEW; st < SPOOL_NSTATES; st++) {
		char **names, labels[64];
		size_t cnt;

		if (spool_list(sp, (enum spool_state)st, &names, &cnt) < 0)
			continue;
		snprintf(labels, sizeof(labels), "state=\"%s\"", spool_state_name((enum spool_state)st));
		metrics_add(m, "spool_jobs", labels, (double)cnt);
		if ((st == SPOOL_NEW || st == SPOOL_OUT) && cnt > 0) {
			struct stat stt;
			if (fstatat(sp->statefd[st], names[0], &stt, AT_SYMLINK_NOFOLLOW) == 0)
				metrics_add(m, "spool_oldest_age_seconds", labels,
					    difftime(time(NULL), stt.st_mtime));
		}
		spool_list_free(names, cnt);
	}
}

/* metrics_commit - write the file atomically and free */
void metrics_commit(struct metrics *m, struct node *n)
{
	char file[64];
	int fd = node_state_dirfd(n, "metrics");

	snprintf(file, sizeof(file), "%s.prom", m->prog);
	/* no fsync: metrics are rewritten every run; rename keeps each file whole */
	if (fd < 0 || durable_write_nosync(fd, file, m->buf ? m->buf : "", m->len, 0644) < 0)
		log_debug("cannot write metrics %s: %s", file, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(m->buf);
	memset(m, 0, sizeof(*m));
}
