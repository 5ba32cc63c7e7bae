// SPDX-License-Identifier: GPL-2.0
/*
 * What an adversarial reader of the recvfile core would try: urgent data
 * with and without SO_OOBINLINE (with the FIN already queued), several
 * readers of one socket through every interface at once, the file
 * position while a call waits for the network, *offset becoming
 * unwritable mid-call, and the socket changing kind under a sleeping call
 * (TCP_REPAIR, a ULP, a sockmap). The promise under test: nothing is
 * lost or duplicated, and the count, the offset and the file agree.
 */
#include "netfile_util.h"

#include <linux/bpf.h>
#include <liburing.h>
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/fs.h>

#include "../kselftest_harness.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

enum api { API_RECVFILE, API_SPLICE, API_URING };

static const char * const api_name[] = { "recvfile", "splice", "io_uring" };

/*
 * One call socket -> file at *@off through @api, as a blocking reader
 * would make it; returns the count or -errno, and advances *@off.
 */
static ssize_t move_once(enum api api, struct io_uring *ring, int sock,
			 int file, loff_t *off, size_t len)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	ssize_t ret;

	switch (api) {
	case API_RECVFILE:
		ret = netfile_recvfile(file, sock, off, len, 0);
		return ret < 0 ? -errno : ret;
	case API_SPLICE:
		ret = splice(sock, NULL, file, off, len, 0);
		return ret < 0 ? -errno : ret;
	case API_URING:
		sqe = io_uring_get_sqe(ring);
		if (!sqe)
			return -ENOMEM;
		io_uring_prep_splice(sqe, sock, -1, file, *off, len, 0);
		if (io_uring_submit(ring) != 1 || io_uring_wait_cqe(ring, &cqe))
			return -EIO;
		ret = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		if (ret > 0)
			*off += ret;
		return ret;
	}
	return -EINVAL;
}

#define URG_HALF	(100 << 10)
#define URG_BYTE	'U'

/*
 * The peer sends 100 KiB of the pattern, one urgent byte, the next 100 KiB
 * of the pattern, and closes (@fin) or stays connected.
 */
static void send_with_urgent(struct __test_metadata *_metadata, int fd,
			     uint64_t seed, bool fin)
{
	static char buf[URG_HALF];
	char u = URG_BYTE;

	netfile_pattern_fill(buf, URG_HALF, seed, 0);
	ASSERT_EQ(URG_HALF, send(fd, buf, URG_HALF, 0));
	ASSERT_EQ(1, send(fd, &u, 1, MSG_OOB));
	netfile_pattern_fill(buf, URG_HALF, seed, URG_HALF);
	ASSERT_EQ(URG_HALF, send(fd, buf, URG_HALF, 0));
	if (fin)
		ASSERT_EQ(0, shutdown(fd, SHUT_WR));
}

FIXTURE(urgent) {
	int client, server, file;
	struct io_uring ring;
};

FIXTURE_VARIANT(urgent) {
	enum api api;
	bool inline_oob;
	bool fin;	/* the FIN is queued before the reader starts */
};

FIXTURE_VARIANT_ADD(urgent, recvfile_fin) { .api = API_RECVFILE, .fin = true };

FIXTURE_VARIANT_ADD(urgent, splice_fin) { .api = API_SPLICE, .fin = true };

FIXTURE_VARIANT_ADD(urgent, uring_fin) { .api = API_URING, .fin = true };

FIXTURE_VARIANT_ADD(urgent, recvfile_open) { .api = API_RECVFILE };

FIXTURE_VARIANT_ADD(urgent, uring_open) { .api = API_URING };

FIXTURE_VARIANT_ADD(urgent, recvfile_inline_fin) {
	.api = API_RECVFILE, .inline_oob = true, .fin = true,
};

FIXTURE_VARIANT_ADD(urgent, splice_inline_fin) {
	.api = API_SPLICE, .inline_oob = true, .fin = true,
};

FIXTURE_VARIANT_ADD(urgent, uring_inline_open) {
	.api = API_URING, .inline_oob = true,
};

FIXTURE_SETUP(urgent)
{
	int one = 1;

	ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &self->client, &self->server));
	if (variant->inline_oob)
		ASSERT_EQ(0, setsockopt(self->server, SOL_SOCKET, SO_OOBINLINE,
					&one, sizeof(one)));
	self->file = netfile_tmpfile(NULL);
	ASSERT_LE(0, self->file);
	ASSERT_EQ(0, io_uring_queue_init(8, &self->ring, 0));
}

FIXTURE_TEARDOWN(urgent)
{
	io_uring_queue_exit(&self->ring);
	close(self->file);
	close(self->server);
	if (self->client >= 0)
		close(self->client);
}

FIXTURE(conn) {
	int client, server, file;
	struct io_uring ring;
};

FIXTURE_SETUP(conn)
{
	ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &self->client, &self->server));
	self->file = netfile_tmpfile(NULL);
	ASSERT_LE(0, self->file);
	ASSERT_EQ(0, io_uring_queue_init(8, &self->ring, 0));
}

FIXTURE_TEARDOWN(conn)
{
	io_uring_queue_exit(&self->ring);
	close(self->file);
	close(self->server);
	close(self->client);
}

/*
 * Every byte read(2) would return reaches the file: 200 KiB without
 * SO_OOBINLINE (the urgent byte is out of band), 200 KiB + 1 with it, in
 * stream order; no call returns 0 or an error before that, with or
 * without the FIN already queued at the mark.
 */
TEST_F_TIMEOUT(urgent, file_gets_what_read_gets, 120)
{
	size_t want = 2 * URG_HALF + (variant->inline_oob ? 1 : 0);
	loff_t off = 0;
	size_t got = 0;
	int calls = 0;
	char c;

	send_with_urgent(_metadata, self->client, 7, variant->fin);
	/* Let everything, FIN included, reach the receive queue. */
	usleep(200000);

	while (got < want) {
		loff_t before = off;
		ssize_t n = move_once(variant->api, &self->ring, self->server,
				      self->file, &off, want - got);

		calls++;
		ASSERT_LT(0, n) TH_LOG("%s call %d at %zu of %zu: %s",
				       api_name[variant->api], calls, got, want,
				       n ? strerror(-n) : "0 (false end of stream)");
		ASSERT_EQ(before + n, off);
		got += n;
		ASSERT_LT(calls, 64);
	}
	EXPECT_EQ(want, got);
	if (variant->inline_oob) {
		EXPECT_EQ(-1, netfile_file_check(self->file, 0, URG_HALF, 7, 0));
		ASSERT_EQ(1, pread(self->file, &c, 1, URG_HALF));
		EXPECT_EQ(URG_BYTE, c);
		EXPECT_EQ(-1, netfile_file_check(self->file, URG_HALF + 1,
						 URG_HALF, 7, URG_HALF));
	} else {
		EXPECT_EQ(-1, netfile_file_check(self->file, 0, want, 7, 0));
	}
	/* Nothing left but the end of stream, or nothing at all. */
	if (variant->fin) {
		EXPECT_EQ(0, recv(self->server, &c, 1, MSG_DONTWAIT));
	} else {
		EXPECT_EQ(-1, recv(self->server, &c, 1, MSG_DONTWAIT));
		EXPECT_EQ(EAGAIN, errno);
	}
}

/*
 * Without SO_OOBINLINE a call that moved data stops at the mark, as
 * read(2) does, so the caller can read the urgent byte with MSG_OOB; the
 * next call steps over it.
 */
TEST_F(conn, urgent_stops_at_mark_then_steps_over)
{
	loff_t off = 0;
	ssize_t n;
	char c;

	send_with_urgent(_metadata, self->client, 9, true);
	usleep(200000);

	n = netfile_recvfile(self->file, self->server, &off, 1 << 20,
			     MSG_WAITALL);
	ASSERT_EQ(URG_HALF, n);
	ASSERT_EQ(1, recv(self->server, &c, 1, MSG_OOB));
	EXPECT_EQ(URG_BYTE, c);
	n = netfile_recvfile(self->file, self->server, &off, 1 << 20,
			     MSG_WAITALL);
	EXPECT_EQ(URG_HALF, n);
	EXPECT_EQ(0, netfile_recvfile(self->file, self->server, &off, 1 << 20, 0));
	EXPECT_EQ(-1, netfile_file_check(self->file, 0, 2 * URG_HALF, 9, 0));
}

/*
 * A stream whose 8-byte words hold their own index, so that any run of
 * bytes tells where in the stream it came from.
 */
static uint8_t word_stream_byte(uint64_t off)
{
	return (off >> 3) >> ((off & 7) * 8);
}

struct chunk {
	int file;
	loff_t file_off;
	size_t len;
	uint64_t stream_off;	/* found afterwards */
};

struct reader {
	pthread_t thread;
	enum api api;
	bool use_fpos;		/* recvfile with a NULL offset */
	bool spin;		/* read(2) reader: MSG_DONTWAIT, retried at once */
	size_t max_len;		/* largest count asked for; 0: 256 KiB */
	int sock, file;
	struct chunk *chunks;
	size_t nr, cap;
	uint64_t bytes;
	char err[160];		/* first violation, if any */
};

static void reader_fail(struct reader *r, const char *fmt, long a, long b)
{
	if (!r->err[0])
		snprintf(r->err, sizeof(r->err), fmt, a, b);
}

static void reader_add(struct reader *r, loff_t file_off, size_t len)
{
	if (r->nr == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		r->chunks = realloc(r->chunks, r->cap * sizeof(*r->chunks));
		if (!r->chunks)
			abort();
	}
	r->chunks[r->nr++] = (struct chunk){ .file = r->file,
					     .file_off = file_off, .len = len };
	r->bytes += len;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	unsigned int rnd = r->file * 7919;
	loff_t off = 0;
	size_t max_len = r->max_len ?: 256 << 10;
	char *buf = malloc(max_len);

	if (!buf)
		abort();
	for (;;) {
		size_t len = 1 + rand_r(&rnd) % max_len;
		loff_t before = off, pos_before = 0;
		ssize_t n;

		switch (r->api) {
		case API_RECVFILE:
			if (r->use_fpos) {
				pos_before = lseek(r->file, 0, SEEK_CUR);
				n = netfile_recvfile(r->file, r->sock, NULL, len, 0);
				if (n > 0 && lseek(r->file, 0, SEEK_CUR) != pos_before + n)
					reader_fail(r, "f_pos moved by %ld for a count of %ld",
						    (long)(lseek(r->file, 0, SEEK_CUR) -
							   pos_before), (long)n);
				before = pos_before;
				off = pos_before + (n > 0 ? n : 0);
			} else {
				n = netfile_recvfile(r->file, r->sock, &off, len, 0);
			}
			break;
		case API_SPLICE:
			n = splice(r->sock, NULL, r->file, &off, len, 0);
			break;
		default:
			n = recv(r->sock, buf, len, r->spin ? MSG_DONTWAIT : 0);
			if (n < 0 && r->spin && errno == EAGAIN)
				continue;
			if (n > 0 && pwrite(r->file, buf, n, off) != n)
				abort();
			if (n > 0)
				off += n;
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			reader_fail(r, "error %ld with the offset moved by %ld",
				    errno, (long)(off - before));
			break;
		}
		if (off != before + n) {
			reader_fail(r, "returned %ld but the offset moved by %ld",
				    (long)n, (long)(off - before));
			break;
		}
		if (!n)
			break;
		reader_add(r, before, n);
	}
	free(buf);
	return NULL;
}

/*
 * Find where in the word stream @c came from: the bytes must be one run of
 * the stream. Returns false if they are not.
 */
static bool chunk_locate(struct chunk *c)
{
	size_t n = c->len < 16 ? c->len : 16, i;
	uint8_t head[16], *buf;
	uint64_t w;
	bool ok = false;
	int a;

	if (pread(c->file, head, n, c->file_off) != (ssize_t)n)
		return false;
	if (c->len < 16)
		return false;	/* too short to place; caller counts them */
	for (a = 0; a < 8 && !ok; a++) {
		memcpy(&w, head + a, 8);
		if (w * 8 < (uint64_t)a)
			continue;
		c->stream_off = w * 8 - a;
		ok = true;
		for (i = 0; i < n; i++)
			if (head[i] != word_stream_byte(c->stream_off + i))
				ok = false;
	}
	if (!ok)
		return false;
	buf = malloc(c->len);
	if (!buf || pread(c->file, buf, c->len, c->file_off) != (ssize_t)c->len) {
		free(buf);
		return false;
	}
	for (i = 0; i < c->len; i++)
		if (buf[i] != word_stream_byte(c->stream_off + i)) {
			ok = false;
			break;
		}
	free(buf);
	return ok;
}

static int chunk_cmp(const void *a, const void *b)
{
	const struct chunk *x = a, *y = b;

	return x->stream_off < y->stream_off ? -1 : x->stream_off > y->stream_off;
}

struct word_sender {
	pthread_t thread;
	int fd;
	uint64_t total;
};

static void *word_sender_main(void *arg)
{
	struct word_sender *s = arg;
	unsigned int rnd = 12345;
	uint64_t sent = 0;
	uint8_t *buf = malloc(128 << 10);
	size_t i;

	if (!buf)
		abort();
	while (sent < s->total) {
		size_t n = 1 + rand_r(&rnd) % (128 << 10);
		ssize_t w;

		n = NETFILE_MIN(n, s->total - sent);
		for (i = 0; i < n; i++)
			buf[i] = word_stream_byte(sent + i);
		w = send(s->fd, buf, n, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		sent += w;
	}
	free(buf);
	shutdown(s->fd, SHUT_WR);
	return NULL;
}

/*
 * Check that the chunks of all readers are runs of the stream that cover
 * [0, @total) exactly once; returns the number of problems.
 */
static int check_cover(struct __test_metadata *_metadata, struct chunk *all,
		       size_t nr, uint64_t total)
{
	uint64_t at = 0, small = 0;
	size_t i, placed = 0;
	int bad = 0;

	for (i = 0; i < nr; i++) {
		if (all[i].len < 16) {
			/* placed by elimination below */
			small += all[i].len;
			all[i].stream_off = UINT64_MAX;
			continue;
		}
		if (!chunk_locate(&all[i])) {
			TH_LOG("a chunk of %zu bytes is not a run of the stream",
			       all[i].len);
			bad++;
		}
		placed++;
	}
	qsort(all, nr, sizeof(*all), chunk_cmp);
	for (i = 0; i < placed; i++) {
		if (all[i].stream_off < at) {
			TH_LOG("bytes %llu..%llu delivered twice",
			       (unsigned long long)all[i].stream_off,
			       (unsigned long long)at);
			bad++;
		} else if (all[i].stream_off > at) {
			/* a gap only short chunks may fill */
			if (all[i].stream_off - at > small) {
				TH_LOG("bytes %llu..%llu lost",
				       (unsigned long long)at,
				       (unsigned long long)all[i].stream_off);
				bad++;
			}
			small -= NETFILE_MIN(small, all[i].stream_off - at);
		}
		at = all[i].stream_off + all[i].len;
	}
	if (at + small != total) {
		TH_LOG("delivered up to %llu (+%llu in short chunks) of %llu",
		       (unsigned long long)at, (unsigned long long)small,
		       (unsigned long long)total);
		bad++;
	}
	return bad;
}

/*
 * Run @nr readers of @sock against a sender of @total bytes on @client;
 * every byte must reach exactly one reader, each call's bytes one run of
 * the stream.
 */
static void run_readers(struct __test_metadata *_metadata, int client,
			int sock, struct reader *r, size_t nr_readers,
			uint64_t total)
{
	struct word_sender s = { .fd = client, .total = total };
	struct chunk *all = NULL;
	size_t nr = 0, i;
	uint64_t bytes = 0;

	for (i = 0; i < nr_readers; i++) {
		r[i].sock = sock;
		r[i].file = netfile_tmpfile(NULL);
		ASSERT_LE(0, r[i].file);
		ASSERT_EQ(0, pthread_create(&r[i].thread, NULL, reader_main, &r[i]));
	}
	ASSERT_EQ(0, pthread_create(&s.thread, NULL, word_sender_main, &s));
	pthread_join(s.thread, NULL);
	for (i = 0; i < nr_readers; i++) {
		pthread_join(r[i].thread, NULL);
		EXPECT_EQ(0, r[i].err[0]) TH_LOG("reader %zu: %s", i, r[i].err);
		TH_LOG("reader %zu: %zu calls, %llu bytes", i, r[i].nr,
		       (unsigned long long)r[i].bytes);
		all = realloc(all, (nr + r[i].nr) * sizeof(*all));
		ASSERT_NE(NULL, all);
		memcpy(all + nr, r[i].chunks, r[i].nr * sizeof(*all));
		nr += r[i].nr;
		bytes += r[i].bytes;
	}
	EXPECT_EQ(total, bytes);
	EXPECT_EQ(0, check_cover(_metadata, all, nr, total));
	for (i = 0; i < nr_readers; i++) {
		close(r[i].file);
		free(r[i].chunks);
	}
	free(all);
}

/*
 * Five readers of one socket at once: two recvfile with an offset, one
 * recvfile at the file position, one pipe-less splice and one read(2).
 * Every byte is delivered once, to one reader, and every call's count
 * matches how far its offset moved.
 */
TEST_F_TIMEOUT(conn, concurrent_readers_disjoint, 600)
{
	struct reader r[5] = {
		{ .api = API_RECVFILE }, { .api = API_RECVFILE },
		{ .api = API_RECVFILE, .use_fpos = true },
		{ .api = API_SPLICE }, { .api = (enum api)-1 },
	};

	run_readers(_metadata, self->client, self->server, r, 5, 24 << 20);
}

/*
 * The bytes one call moves without waiting are one run of the stream, as
 * one read(2)'s are, even when they take several batches (1 MiB or 64
 * segments each) and other readers want the socket between them: two
 * recvfile readers asking for up to 4 MiB at a time, a pipe-less splice,
 * a read(2) reader asking for little and one that retries MSG_DONTWAIT
 * at once, so that it tries the socket in every gap between two batches.
 */
TEST_F_TIMEOUT(conn, one_call_one_run_across_batches, 600)
{
	struct reader r[5] = {
		{ .api = API_RECVFILE, .max_len = 4 << 20 },
		{ .api = API_RECVFILE, .max_len = 4 << 20 },
		{ .api = API_SPLICE, .max_len = 4 << 20 },
		{ .api = (enum api)-1, .max_len = 4 << 10 },
		{ .api = (enum api)-1, .max_len = 4 << 10, .spin = true },
	};
	int rcvbuf = 8 << 20;

	/* queue several batches' worth while a reader writes */
	ASSERT_EQ(0, setsockopt(self->server, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				sizeof(rcvbuf)));
	run_readers(_metadata, self->client, self->server, r, 5, 48 << 20);
}

/*
 * Four IORING_OP_SPLICE socket -> file requests in flight on one socket,
 * into tmpfs files (no non-blocking buffered writes there, so they go to
 * io-wq): disjoint bytes, nothing lost.
 */
TEST_F_TIMEOUT(conn, uring_concurrent_splices_disjoint, 600)
{
	enum { QD = 4 };
	struct word_sender s = { .total = 16 << 20 };
	struct chunk *all = NULL;
	size_t nr = 0, cap = 0;
	loff_t off[QD] = { 0 };
	int files[QD], live = QD, i;
	uint64_t bytes = 0;

	s.fd = self->client;
	for (i = 0; i < QD; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&self->ring);

		files[i] = netfile_tmpfile(NULL);
		ASSERT_LE(0, files[i]);
		io_uring_prep_splice(sqe, self->server, -1, files[i], 0, 256 << 10, 0);
		sqe->user_data = i;
	}
	ASSERT_EQ(QD, io_uring_submit(&self->ring));
	ASSERT_EQ(0, pthread_create(&s.thread, NULL, word_sender_main, &s));
	while (live) {
		struct io_uring_cqe *cqe;
		struct io_uring_sqe *sqe;
		int res;

		ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
		i = cqe->user_data;
		res = cqe->res;
		io_uring_cqe_seen(&self->ring, cqe);
		ASSERT_LE(0, res) TH_LOG("request %d: %s", i, strerror(-res));
		if (!res) {
			live--;
			continue;
		}
		if (nr == cap) {
			cap = cap ? 2 * cap : 256;
			all = realloc(all, cap * sizeof(*all));
			ASSERT_NE(NULL, all);
		}
		all[nr++] = (struct chunk){ .file = files[i], .file_off = off[i],
					    .len = res };
		off[i] += res;
		bytes += res;
		sqe = io_uring_get_sqe(&self->ring);
		io_uring_prep_splice(sqe, self->server, -1, files[i], off[i],
				     256 << 10, 0);
		sqe->user_data = i;
		ASSERT_EQ(1, io_uring_submit(&self->ring));
	}
	pthread_join(s.thread, NULL);
	EXPECT_EQ(s.total, bytes);
	EXPECT_EQ(0, check_cover(_metadata, all, nr, s.total));
	for (i = 0; i < QD; i++)
		close(files[i]);
	free(all);
}

struct blocked_call {
	pthread_t thread;
	int file, sock;
	loff_t *off;
	size_t count;
	unsigned int flags;
	ssize_t ret;
	int err;
};

static void *blocked_call_main(void *arg)
{
	struct blocked_call *b = arg;

	b->ret = netfile_recvfile(b->file, b->sock, b->off, b->count, b->flags);
	b->err = b->ret < 0 ? errno : 0;
	return NULL;
}

struct late_sender {
	pthread_t thread;
	int fd;
	useconds_t delay;
	size_t len;
	uint64_t seed, at;
};

static void *late_sender_main(void *arg)
{
	struct late_sender *l = arg;
	char *buf = malloc(l->len);

	usleep(l->delay);
	netfile_pattern_fill(buf, l->len, l->seed, l->at);
	if (send(l->fd, buf, l->len, 0) != (ssize_t)l->len)
		abort();
	free(buf);
	return NULL;
}

/*
 * recvfile(..., NULL, ...) waiting for the peer holds no lock that other
 * users of the open file description need: lseek, write and read from
 * another thread return at once, and the wait then writes at the file
 * position as it is when the data comes.
 */
TEST_F_TIMEOUT(conn, file_position_not_held_while_waiting, 60)
{
	struct blocked_call b = {
		.file = self->file, .sock = self->server, .count = 4096,
		.flags = MSG_WAITALL,
	};
	struct late_sender l = {
		.fd = self->client, .delay = 3000000, .len = 4096, .seed = 3,
	};
	double t0, t;
	char c = 'x';

	ASSERT_EQ(0, pthread_create(&b.thread, NULL, blocked_call_main, &b));
	/* the peer sends only after 3 s: anything blocked waits that long */
	ASSERT_EQ(0, pthread_create(&l.thread, NULL, late_sender_main, &l));
	usleep(300000);

	t0 = netfile_now();
	EXPECT_EQ(0, lseek(self->file, 0, SEEK_CUR));
	EXPECT_EQ(1, write(self->file, &c, 1));
	EXPECT_EQ(0, read(self->file, &c, 1));
	t = netfile_now() - t0;
	EXPECT_GT(1.0, t) TH_LOG("lseek/write/read waited %.2f s for the network", t);

	pthread_join(l.thread, NULL);
	pthread_join(b.thread, NULL);
	EXPECT_EQ(4096, b.ret);
	EXPECT_EQ(1 + 4096, lseek(self->file, 0, SEEK_CUR));
	EXPECT_EQ(-1, netfile_file_check(self->file, 1, 4096, 3, 0));
}

/*
 * *offset cannot be written back after the data moved (the caller made
 * it read-only meanwhile): the call still reports what moved, and leaves
 * *offset as it was, rather than failing with bytes gone from the socket.
 */
TEST_F_TIMEOUT(conn, offset_unwritable_after_move, 60)
{
	long pg = sysconf(_SC_PAGESIZE);
	loff_t *off = mmap(NULL, pg, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct blocked_call b = {
		.file = self->file, .sock = self->server, .count = 4096,
		.flags = MSG_WAITALL,
	};
	struct late_sender l = {
		.fd = self->client, .delay = 0, .len = 4096, .seed = 5,
	};
	char c;

	ASSERT_NE(MAP_FAILED, off);
	*off = 100;
	b.off = off;
	ASSERT_EQ(0, pthread_create(&b.thread, NULL, blocked_call_main, &b));
	usleep(300000);
	ASSERT_EQ(0, mprotect(off, pg, PROT_READ));
	ASSERT_EQ(0, pthread_create(&l.thread, NULL, late_sender_main, &l));
	pthread_join(l.thread, NULL);
	pthread_join(b.thread, NULL);

	EXPECT_EQ(4096, b.ret) TH_LOG("recvfile: %s", strerror(b.err));
	EXPECT_EQ(100, *off);
	EXPECT_EQ(-1, netfile_file_check(self->file, 100, 4096, 5, 0));
	EXPECT_EQ(-1, recv(self->server, &c, 1, MSG_DONTWAIT));
	EXPECT_EQ(EAGAIN, errno);
	munmap(off, pg);
}

/* A socket in TCP_REPAIR mode belongs to the checkpoint tool: refused. */
TEST_F(conn, repair_mode_refused)
{
	char buf[4096];
	loff_t off = 0;
	int one = 1, zero = 0;

	netfile_pattern_fill(buf, sizeof(buf), 11, 0);
	ASSERT_EQ(sizeof(buf), send(self->client, buf, sizeof(buf), 0));
	usleep(100000);
	if (setsockopt(self->server, SOL_TCP, TCP_REPAIR, &one, sizeof(one)))
		SKIP(return, "TCP_REPAIR: %s", strerror(errno));
	EXPECT_EQ(-1, netfile_recvfile(self->file, self->server, &off, 4096, 0));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, splice(self->server, NULL, self->file, &off, 4096, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, off);
	ASSERT_EQ(0, setsockopt(self->server, SOL_TCP, TCP_REPAIR, &zero, sizeof(zero)));
	EXPECT_EQ(4096, netfile_recvfile(self->file, self->server, &off, 4096, 0));
	EXPECT_EQ(-1, netfile_file_check(self->file, 0, 4096, 11, 0));
}

/*
 * Something that changes how the receive queue is read is attached while
 * a WAITALL recvfile sleeps after 16 KiB: the call must return those
 * 16 KiB and leave the rest for the new owner; the next call is refused.
 */
static void attached_mid_call(struct __test_metadata *_metadata, int client,
			      int server, int file, int (*attach)(int),
			      int (*detach)(int))
{
	struct blocked_call b = {
		.file = file, .sock = server, .count = 64 << 10,
		.flags = MSG_WAITALL,
	};
	struct late_sender l = { .fd = client, .len = 16 << 10, .seed = 13 };
	loff_t off = 0;
	char buf[16 << 10];
	int err;

	b.off = &off;
	ASSERT_EQ(0, pthread_create(&b.thread, NULL, blocked_call_main, &b));
	late_sender_main(&l);
	usleep(300000);
	err = attach(server);
	if (err) {
		/* let the call finish before skipping */
		l.at = 16 << 10;
		l.len = 48 << 10;
		late_sender_main(&l);
		pthread_join(b.thread, NULL);
		SKIP(return, "cannot attach: %s", strerror(err));
	}
	l.at = 16 << 10;
	late_sender_main(&l);
	pthread_join(b.thread, NULL);
	EXPECT_EQ(16 << 10, b.ret)
		TH_LOG("recvfile: %zd (%s)", b.ret, strerror(b.err));
	EXPECT_EQ(16 << 10, off);
	EXPECT_EQ(-1, netfile_recvfile(file, server, &off, 64 << 10, 0));
	EXPECT_EQ(EOPNOTSUPP, errno);
	/* what came after the attach is still on the socket */
	if (detach)
		ASSERT_EQ(0, detach(server));
	ASSERT_EQ(sizeof(buf), recv(server, buf, sizeof(buf), MSG_WAITALL));
	EXPECT_EQ(-1, netfile_pattern_check(buf, sizeof(buf), 13, 16 << 10));
	EXPECT_EQ(-1, netfile_file_check(file, 0, 16 << 10, 13, 0));
}

static int attach_tls_ulp(int fd)
{
	return setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) ? errno : 0;
}

TEST_F_TIMEOUT(conn, ulp_attached_mid_call, 60)
{
	attached_mid_call(_metadata, self->client, self->server, self->file,
			  attach_tls_ulp, NULL);
}

static int sockmap_fd = -1;

static int bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int attach_sockmap(int fd)
{
	union bpf_attr attr = {
		.map_type = BPF_MAP_TYPE_SOCKMAP, .key_size = 4,
		.value_size = 4, .max_entries = 1,
	};
	int key = 0, value = fd;

	sockmap_fd = bpf(BPF_MAP_CREATE, &attr);
	if (sockmap_fd < 0)
		return errno;
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = sockmap_fd;
	attr.key = (uintptr_t)&key;
	attr.value = (uintptr_t)&value;
	return bpf(BPF_MAP_UPDATE_ELEM, &attr) ? errno : 0;
}

static int detach_sockmap(int fd)
{
	union bpf_attr attr = { .map_fd = sockmap_fd };
	int key = 0;

	attr.key = (uintptr_t)&key;
	if (bpf(BPF_MAP_DELETE_ELEM, &attr))
		return -1;
	close(sockmap_fd);
	return 0;
}

TEST_F_TIMEOUT(conn, sockmap_attached_mid_call, 60)
{
	attached_mid_call(_metadata, self->client, self->server, self->file,
			  attach_sockmap, detach_sockmap);
}

/* MPTCP is not plain TCP: recvfile refuses it, splice answers as 6.12. */
TEST(mptcp_refused)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int lfd, cfd, sfd, file;
	loff_t off = 0;

	lfd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	if (lfd < 0)
		SKIP(return, "no MPTCP: %s", strerror(errno));
	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&sa, len));
	ASSERT_EQ(0, listen(lfd, 1));
	ASSERT_EQ(0, getsockname(lfd, (struct sockaddr *)&sa, &len));
	cfd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, connect(cfd, (struct sockaddr *)&sa, len));
	sfd = accept(lfd, NULL, NULL);
	ASSERT_LE(0, sfd);
	file = netfile_tmpfile(NULL);
	ASSERT_LE(0, file);
	ASSERT_EQ(5, send(cfd, "hello", 5, 0));

	EXPECT_EQ(-1, netfile_recvfile(file, sfd, &off, 5, 0));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, splice(sfd, NULL, file, &off, 5, 0));
	EXPECT_EQ(EINVAL, errno);
	close(file);
	close(sfd);
	close(cfd);
	close(lfd);
}

/* ---- io_uring: one request, the same files from start to end ----------- */

#define BIG	(8 << 20)

struct big_reader {
	pthread_t thread;
	int fd;
	uint64_t seed;
	size_t got, wrong;
};

static void *big_reader_main(void *arg)
{
	struct big_reader *r = arg;
	static uint8_t buf[1 << 16];
	ssize_t n, i;

	while ((n = read(r->fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++)
			if (buf[i] != netfile_pattern_byte(r->seed, r->got + i))
				r->wrong++;
		r->got += n;
	}
	return NULL;
}

/*
 * An 8 MiB file of the pattern @seed in @dir (tmpfs if NULL). With
 * @cached_head, only its first MiB is left in the page cache, so that a
 * non-blocking read of the rest would block and the request goes to
 * io-wq part way.
 */
static int pattern_file(const char *dir, uint64_t seed, bool cached_head)
{
	char *buf = malloc(BIG);
	int fd = netfile_tmpfile(dir);

	if (!buf || fd < 0)
		return -1;
	netfile_pattern_fill(buf, BIG, seed, 0);
	if (pwrite(fd, buf, BIG, 0) != BIG)
		return -1;
	if (cached_head) {
		if (fsync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) ||
		    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM) ||
		    pread(fd, buf, 1 << 20, 0) != 1 << 20)
			return -1;
	}
	free(buf);
	return fd;
}

enum swap_what { SWAP_IN_FD, SWAP_OUT_FD, SWAP_IN_SLOT, SWAP_OUT_SLOT };

FIXTURE(samefiles) {
	int a, b, client, server, other_client, other_server;
	struct io_uring ring;
};

FIXTURE_VARIANT(samefiles) {
	enum swap_what what;
	bool uncached_tail;	/* ext4, only the first MiB cached: io-wq part way */
};

FIXTURE_VARIANT_ADD(samefiles, input_fd_reused) { .what = SWAP_IN_FD };

FIXTURE_VARIANT_ADD(samefiles, input_slot_updated) { .what = SWAP_IN_SLOT };

FIXTURE_VARIANT_ADD(samefiles, input_fd_reused_uncached) {
	.what = SWAP_IN_FD, .uncached_tail = true,
};

FIXTURE_VARIANT_ADD(samefiles, output_fd_reused_uncached) {
	.what = SWAP_OUT_FD, .uncached_tail = true,
};

FIXTURE_VARIANT_ADD(samefiles, output_slot_updated_uncached) {
	.what = SWAP_OUT_SLOT, .uncached_tail = true,
};

#define SAME_MNT "/tmp/netfile-samefiles"

FIXTURE_SETUP(samefiles)
{
	const char *dir = NULL;

	if (variant->uncached_tail) {
		int ret = netfile_mount_scratch(SAME_MNT, "ext4", NULL);

		if (ret == -ENODEV || ret == -ENOENT)
			SKIP(return, "needs the runner's scratch disk and mkfs.ext4");
		ASSERT_EQ(0, ret);
		dir = SAME_MNT;
	}
	self->a = pattern_file(dir, 51, variant->uncached_tail);
	self->b = pattern_file(dir, 52, false);
	ASSERT_LE(0, self->a);
	ASSERT_LE(0, self->b);
	ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &self->client, &self->server));
	ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &self->other_client,
				      &self->other_server));
	/*
	 * Small buffers, so that the request stops for POLLOUT inside the
	 * cached head of the file, before anything sends it to io-wq: the
	 * swap then happens between an inline issue and a later one.
	 */
	if (variant->uncached_tail) {
		int small = 64 << 10;

		ASSERT_EQ(0, setsockopt(self->server, SOL_SOCKET, SO_SNDBUF, &small,
					sizeof(small)));
		ASSERT_EQ(0, setsockopt(self->client, SOL_SOCKET, SO_RCVBUF, &small,
					sizeof(small)));
	}
	ASSERT_EQ(0, io_uring_queue_init(8, &self->ring, 0));
}

FIXTURE_TEARDOWN(samefiles)
{
	if (!self->a)
		return;		/* skipped */
	io_uring_queue_exit(&self->ring);
	close(self->a);
	close(self->b);
	close(self->client);
	close(self->server);
	close(self->other_client);
	close(self->other_server);
}

/*
 * An 8 MiB file -> socket IORING_OP_SPLICE that must wait for its reader
 * part way; meanwhile the input (or output) fd is closed and its number
 * reused for another file (socket), or the fixed-file slot is updated.
 * The rest must still come from the file the request started with and go
 * to the socket it started with.
 */
TEST_F_TIMEOUT(samefiles, file_to_socket_keeps_its_files, 300)
{
	struct big_reader r = { .fd = self->client, .seed = 51 };
	struct big_reader other = { .fd = self->other_client, .seed = 52 };
	bool fixed = variant->what == SWAP_IN_SLOT || variant->what == SWAP_OUT_SLOT;
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int files[2] = { self->a, self->server };
	int in = self->a, out = self->server, res;

	if (fixed) {
		ASSERT_EQ(0, io_uring_register_files(&self->ring, files, 2));
		in = 0;
		out = 1;
	}
	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_splice(sqe, in, 0, out, -1, BIG,
			     fixed ? SPLICE_F_FD_IN_FIXED : 0);
	if (fixed)
		sqe->flags |= IOSQE_FIXED_FILE;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	usleep(300000);
	ASSERT_EQ(-EAGAIN, io_uring_peek_cqe(&self->ring, &cqe))
		TH_LOG("the request did not have to wait; the test proves nothing");

	switch (variant->what) {
	case SWAP_IN_FD:
		ASSERT_EQ(self->a, dup2(self->b, self->a));
		break;
	case SWAP_OUT_FD:
		ASSERT_EQ(self->server, dup2(self->other_server, self->server));
		break;
	case SWAP_IN_SLOT:
		ASSERT_EQ(1, io_uring_register_files_update(&self->ring, 0, &self->b, 1));
		break;
	case SWAP_OUT_SLOT:
		ASSERT_EQ(1, io_uring_register_files_update(&self->ring, 1,
							    &self->other_server, 1));
		break;
	}
	ASSERT_EQ(0, pthread_create(&r.thread, NULL, big_reader_main, &r));
	ASSERT_EQ(0, pthread_create(&other.thread, NULL, big_reader_main, &other));
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	res = cqe->res;
	io_uring_cqe_seen(&self->ring, cqe);
	EXPECT_EQ(BIG, res);
	/* end both streams so the readers finish */
	if (fixed)
		io_uring_unregister_files(&self->ring);
	shutdown(self->server, SHUT_WR);
	shutdown(self->other_server, SHUT_WR);
	pthread_join(r.thread, NULL);
	pthread_join(other.thread, NULL);
	EXPECT_EQ(BIG, r.got);
	EXPECT_EQ(0, r.wrong)
		TH_LOG("%zu of %zu bytes not from the file the request started with",
		       r.wrong, r.got);
	EXPECT_EQ(0, other.got) TH_LOG("%zu bytes went to the socket that took the fd", other.got);
}

/* ---- io_uring: a frozen filesystem never stalls the ring --------------- */

#define FRZ_MNT	"/tmp/netfile-freeze"

struct thawer {
	pthread_t thread;
	int dir;
	useconds_t after;
	bool thawed;
};

static void *thawer_main(void *arg)
{
	struct thawer *t = arg;

	usleep(t->after);
	t->thawed = !ioctl(t->dir, FITHAW, 0);
	return NULL;
}

/*
 * Submit a NOP and wait for its CQE; returns how long that took. A CQE of
 * another request that comes first is kept in *@other_res.
 */
static double nop_latency(struct io_uring *ring, int *other_res)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	double t0 = netfile_now();
	bool nop = false;

	sqe = io_uring_get_sqe(ring);
	io_uring_prep_nop(sqe);
	sqe->user_data = 0x90;
	if (io_uring_submit(ring) != 1)
		return -1;
	while (!nop && !io_uring_wait_cqe(ring, &cqe)) {
		nop = cqe->user_data == 0x90;
		if (!nop)
			*other_res = cqe->res;
		io_uring_cqe_seen(ring, cqe);
	}
	return netfile_now() - t0;
}

FIXTURE(frozen) {
	int client, server, file, dir;
	struct io_uring ring;
};

FIXTURE_SETUP(frozen)
{
	int ret = netfile_mount_scratch(FRZ_MNT, "xfs", NULL);

	if (ret == -ENODEV || ret == -ENOENT)
		SKIP(return, "needs the runner's scratch disk and mkfs.xfs");
	ASSERT_EQ(0, ret);
	self->dir = open(FRZ_MNT, O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, self->dir);
	self->file = netfile_tmpfile(FRZ_MNT);
	ASSERT_LE(0, self->file);
	ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &self->client, &self->server));
	ASSERT_EQ(0, io_uring_queue_init(8, &self->ring, 0));
}

FIXTURE_TEARDOWN(frozen)
{
	if (self->dir <= 0)
		return;
	ioctl(self->dir, FITHAW, 0);
	io_uring_queue_exit(&self->ring);
	close(self->file);
	close(self->server);
	close(self->client);
	close(self->dir);
}

static void frozen_splice(struct __test_metadata *_metadata,
			  struct _test_data_frozen *self, bool data_first)
{
	struct thawer t = { .dir = self->dir, .after = 4000000 };
	int res = INT_MIN;
	char buf[65536];
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	double t0, submit_s, nop_s;

	netfile_pattern_fill(buf, sizeof(buf), 61, 0);
	if (data_first)
		ASSERT_EQ(sizeof(buf), send(self->client, buf, sizeof(buf), 0));
	ASSERT_EQ(0, ioctl(self->dir, FIFREEZE, 0));
	/* never leave the filesystem frozen, whatever the kernel does */
	ASSERT_EQ(0, pthread_create(&t.thread, NULL, thawer_main, &t));

	t0 = netfile_now();
	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_splice(sqe, self->server, -1, self->file, 0, sizeof(buf), 0);
	sqe->user_data = 1;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	submit_s = netfile_now() - t0;
	if (!data_first) {
		usleep(200000);
		ASSERT_EQ(sizeof(buf), send(self->client, buf, sizeof(buf), 0));
		usleep(200000);
	}
	nop_s = nop_latency(&self->ring, &res);

	EXPECT_GT(1.0, submit_s) TH_LOG("io_uring_enter() took %.2f s", submit_s);
	EXPECT_GT(1.0, nop_s) TH_LOG("a NOP took %.2f s while the filesystem was frozen",
				     nop_s);
	EXPECT_FALSE(t.thawed) TH_LOG("the ring only moved after the thaw");
	ASSERT_EQ(0, ioctl(self->dir, FITHAW, 0));
	pthread_join(t.thread, NULL);

	if (res == INT_MIN) {
		ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
		EXPECT_EQ(1, cqe->user_data);
		res = cqe->res;
		io_uring_cqe_seen(&self->ring, cqe);
	}
	EXPECT_EQ(sizeof(buf), res);
	EXPECT_EQ(-1, netfile_file_check(self->file, 0, sizeof(buf), 61, 0));
}

/* Data queued at submission: the inline write must not wait for the thaw. */
TEST_F_TIMEOUT(frozen, queued_data_does_not_block_submit, 60)
{
	frozen_splice(_metadata, self, true);
}

/* Data arriving for a waiting request: the retry in task work must not either. */
TEST_F_TIMEOUT(frozen, arriving_data_does_not_block_task_work, 60)
{
	frozen_splice(_metadata, self, false);
}

/* Whether thread @tid sleeps in a socket wait. */
static bool waits_on_socket(const char *tid)
{
	char path[300], wchan[64];
	bool ret;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%s/wchan", tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	ret = fgets(wchan, sizeof(wchan), f) &&
	      (strstr(wchan, "sk_wait") || strstr(wchan, "wait_woken"));
	fclose(f);
	return ret;
}

/* io-wq workers of this process that sleep in a socket wait. */
static int workers_waiting_on_socket(void)
{
	return netfile_iowq_workers(waits_on_socket);
}

struct frozen_reader {
	pthread_t thread;
	int sock, file;
	ssize_t ret;
};

static void *frozen_reader_main(void *arg)
{
	struct frozen_reader *f = arg;
	loff_t off = 0;

	f->ret = netfile_recvfile(f->file, f->sock, &off, 1 << 20, 0);
	return NULL;
}

/*
 * Another reader (a recvfile into a frozen filesystem) holds the queued
 * data while an IORING_OP_SPLICE into tmpfs goes to io-wq; then it writes
 * and consumes all of it. The io-wq worker must not then sleep waiting
 * for more data from the network: the request goes back to waiting with
 * poll, and completes when new data comes.
 */
TEST_F_TIMEOUT(frozen, worker_never_waits_for_the_network, 60)
{
	struct frozen_reader x = { .sock = self->server, .file = self->file };
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int tmp = netfile_tmpfile(NULL), waiting;
	char buf[65536];

	ASSERT_LE(0, tmp);
	netfile_pattern_fill(buf, sizeof(buf), 71, 0);
	ASSERT_EQ(sizeof(buf), send(self->client, buf, sizeof(buf), 0));
	usleep(100000);
	ASSERT_EQ(0, ioctl(self->dir, FIFREEZE, 0));
	/* X takes the queued bytes and waits for the thaw to write them */
	ASSERT_EQ(0, pthread_create(&x.thread, NULL, frozen_reader_main, &x));
	usleep(300000);

	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_splice(sqe, self->server, -1, tmp, 0, sizeof(buf), 0);
	sqe->user_data = 2;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	usleep(300000);
	ASSERT_EQ(0, ioctl(self->dir, FITHAW, 0));
	pthread_join(x.thread, NULL);
	EXPECT_EQ(sizeof(buf), x.ret);
	usleep(500000);

	EXPECT_EQ(-EAGAIN, io_uring_peek_cqe(&self->ring, &cqe));
	waiting = workers_waiting_on_socket();
	EXPECT_EQ(0, waiting) TH_LOG("%d io-wq workers sleep waiting for the network",
				     waiting);

	netfile_pattern_fill(buf, sizeof(buf), 72, 0);
	ASSERT_EQ(sizeof(buf), send(self->client, buf, sizeof(buf), 0));
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	EXPECT_EQ(2, cqe->user_data);
	EXPECT_EQ(sizeof(buf), cqe->res);
	io_uring_cqe_seen(&self->ring, cqe);
	EXPECT_EQ(-1, netfile_file_check(tmp, 0, sizeof(buf), 72, 0));
	close(tmp);
}

#define FROZEN_CLAIM_LEN	65536

/*
 * Queue FROZEN_CLAIM_LEN bytes of pattern @seed from @peer to @x->sock,
 * freeze the filesystem and start @x: its recvfile collects them, holds
 * the queue's claim and waits for the thaw to write them.
 */
static int claim_while_frozen(struct _test_data_frozen *self,
			      struct frozen_reader *x, int peer, uint64_t seed)
{
	static char buf[FROZEN_CLAIM_LEN];

	netfile_pattern_fill(buf, sizeof(buf), seed, 0);
	if (send(peer, buf, sizeof(buf), 0) != sizeof(buf))
		return -1;
	usleep(100000);
	if (ioctl(self->dir, FIFREEZE, 0))
		return -1;
	if (pthread_create(&x->thread, NULL, frozen_reader_main, x)) {
		ioctl(self->dir, FITHAW, 0);
		return -1;
	}
	usleep(300000);
	return 0;
}

/*
 * A recvfile holds the queue's claim while its write waits for the thaw.
 * Adding the socket to a sockmap now would let a verdict program read,
 * from softirq, the bytes the call is writing: EBUSY, as for a ULP. Once
 * the call has ended the socket is taken as before.
 */
TEST_F_TIMEOUT(frozen, claimed_socket_refuses_sockmap, 60)
{
	struct frozen_reader x = { .sock = self->server, .file = self->file };
	int ret;

	ASSERT_EQ(0, claim_while_frozen(self, &x, self->client, 73));
	ret = attach_sockmap(self->server);
	if (!ret)
		detach_sockmap(self->server);
	else if (sockmap_fd >= 0)
		close(sockmap_fd);
	ASSERT_EQ(0, ioctl(self->dir, FITHAW, 0));
	pthread_join(x.thread, NULL);
	EXPECT_EQ(EBUSY, ret) TH_LOG("sockmap update while claimed: %s",
				     ret ? strerror(ret) : "taken");
	EXPECT_EQ(FROZEN_CLAIM_LEN, x.ret);
	EXPECT_EQ(-1, netfile_file_check(self->file, 0, FROZEN_CLAIM_LEN, 73, 0));
	EXPECT_EQ(0, attach_sockmap(self->server));
	detach_sockmap(self->server);
}

/*
 * The claim is a flag of the socket, and sk_clone_lock() copies the
 * parent's flags. A socket disconnected (connect() AF_UNSPEC) and made to
 * listen while a recvfile held the claim must not hand it to the sockets
 * it accepts: nothing would ever clear it, and their readers would wait
 * (or get EAGAIN) for good.
 */
TEST_F_TIMEOUT(frozen, accepted_socket_does_not_inherit_the_claim, 60)
{
	struct frozen_reader x = { .sock = self->client, .file = self->file };
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int peer, child, err = 0;
	char got[2];
	ssize_t n;

	ASSERT_EQ(0, claim_while_frozen(self, &x, self->server, 74));

	ASSERT_EQ(0, connect(self->client, &unspec, sizeof(unspec)));
	ASSERT_EQ(0, listen(self->client, 1));
	ASSERT_EQ(0, getsockname(self->client, (struct sockaddr *)&ss, &len));
	peer = socket(ss.ss_family, SOCK_STREAM, 0);
	ASSERT_LE(0, peer);
	ASSERT_EQ(0, connect(peer, (struct sockaddr *)&ss, len));
	child = accept(self->client, NULL, NULL);
	ASSERT_LE(0, child);
	ASSERT_EQ(2, send(peer, "ok", 2, 0));
	usleep(100000);
	n = recv(child, got, sizeof(got), MSG_DONTWAIT);
	if (n < 0)
		err = errno;

	ASSERT_EQ(0, ioctl(self->dir, FITHAW, 0));
	pthread_join(x.thread, NULL);
	EXPECT_EQ(2, n) TH_LOG("recv on the accepted socket: %s",
			       n < 0 ? strerror(err) : "short");
	/* what the call collected before the disconnect reached the file */
	EXPECT_EQ(FROZEN_CLAIM_LEN, x.ret);
	EXPECT_EQ(-1, netfile_file_check(self->file, 0, FROZEN_CLAIM_LEN, 74, 0));
	close(child);
	close(peer);
}

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *pinned_frozen_reader_main(void *arg)
{
	pin_to_cpu(1);
	return frozen_reader_main(arg);
}

struct waitall_reader {
	pthread_t thread;
	int sock;
	size_t len;
	char *buf;
	ssize_t ret;
	bool done;
};

/* recv(MSG_WAITALL) at SCHED_IDLE, on the CPU the recvfile runs on. */
static void *waitall_reader_main(void *arg)
{
	struct waitall_reader *w = arg;
	struct sched_param sp = { 0 };

	pin_to_cpu(1);
	sched_setscheduler(0, SCHED_IDLE, &sp);
	w->ret = recv(w->sock, w->buf, w->len, MSG_WAITALL);
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	return NULL;
}

#define WAITALL_PART	(32 << 10)

/*
 * A recv(MSG_WAITALL) has part of what it waits for and sleeps; a
 * recvfile, woken by the same data, claims it first (it runs at normal
 * priority on the reader's CPU, the reader at SCHED_IDLE) and waits for
 * the thaw to write it. The recv must keep waiting, as it waits for data,
 * and not return short: it then gets its first part and the part after
 * the recvfile's, in stream order.
 */
TEST_F_TIMEOUT(frozen, waitall_recv_waits_for_a_claim, 60)
{
	struct frozen_reader x = { .sock = self->server, .file = self->file };
	struct waitall_reader r = { .sock = self->server,
				    .len = 2 * WAITALL_PART };
	char buf[WAITALL_PART];
	bool early;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs two CPUs");
	r.buf = malloc(r.len);
	ASSERT_NE(NULL, r.buf);
	pin_to_cpu(0);
	ASSERT_EQ(0, pthread_create(&r.thread, NULL, waitall_reader_main, &r));
	netfile_pattern_fill(buf, WAITALL_PART, 75, 0);
	ASSERT_EQ(WAITALL_PART, send(self->client, buf, WAITALL_PART, 0));
	usleep(200000);
	ASSERT_EQ(0, ioctl(self->dir, FIFREEZE, 0));
	ASSERT_EQ(0, pthread_create(&x.thread, NULL, pinned_frozen_reader_main,
				    &x));
	usleep(200000);
	netfile_pattern_fill(buf, WAITALL_PART, 75, WAITALL_PART);
	ASSERT_EQ(WAITALL_PART, send(self->client, buf, WAITALL_PART, 0));
	usleep(300000);
	early = __atomic_load_n(&r.done, __ATOMIC_ACQUIRE);
	ASSERT_EQ(0, ioctl(self->dir, FITHAW, 0));

	/*
	 * The third part goes to whoever still waits: the recv, once the
	 * recvfile has returned with the second (or, if the recv took the
	 * first two, the recvfile).
	 */
	if (!early)
		pthread_join(x.thread, NULL);
	netfile_pattern_fill(buf, WAITALL_PART, 75, 2 * WAITALL_PART);
	ASSERT_EQ(WAITALL_PART, send(self->client, buf, WAITALL_PART, 0));
	if (early)
		pthread_join(x.thread, NULL);
	pthread_join(r.thread, NULL);
	if (early && r.ret == 2 * WAITALL_PART)
		SKIP(goto out, "the recv took the data before the recvfile");
	EXPECT_FALSE(early) TH_LOG("recv(MSG_WAITALL) returned %zd of %zu while claimed",
				   r.ret, r.len);
	EXPECT_EQ(WAITALL_PART, x.ret);
	EXPECT_EQ(-1, netfile_file_check(self->file, 0, WAITALL_PART, 75,
					 WAITALL_PART));
	EXPECT_EQ(2 * WAITALL_PART, r.ret);
	EXPECT_EQ(-1, netfile_pattern_check(r.buf, WAITALL_PART, 75, 0));
	EXPECT_EQ(-1, netfile_pattern_check(r.buf + WAITALL_PART, WAITALL_PART,
					    75, 2 * WAITALL_PART));
out:
	free(r.buf);
}

TEST_HARNESS_MAIN
