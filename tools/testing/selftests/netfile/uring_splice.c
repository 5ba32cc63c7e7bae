// SPDX-License-Identifier: GPL-2.0
/*
 * IORING_OP_SPLICE from a TCP socket straight into a file, with no pipe:
 * the request runs the recvfile core, so it moves exact bytes and reports
 * the same errors. Uses liburing's unmodified io_uring_prep_splice().
 */
#include "netfile_util.h"

#include <dirent.h>
#include <liburing.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"

FIXTURE(uring) {
	struct io_uring ring;
	int client, server, file;
};

FIXTURE_SETUP(uring)
{
	int ret = io_uring_queue_init(8, &self->ring, 0);

	if (ret == -ENOSYS)
		SKIP(return, "no io_uring");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &self->client, &self->server));
	self->file = netfile_tmpfile(NULL);
	ASSERT_LE(0, self->file);
}

FIXTURE_TEARDOWN(uring)
{
	io_uring_queue_exit(&self->ring);
	close(self->client);
	close(self->server);
	close(self->file);
}

/* One SPLICE request, waited for; returns cqe->res. */
static int uring_splice_wait(struct __test_metadata *_metadata,
			     struct io_uring *ring, int in, int64_t off_in,
			     int out, int64_t off_out, unsigned int len,
			     unsigned int flags)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int res;

	sqe = io_uring_get_sqe(ring);
	EXPECT_NE(NULL, sqe);
	if (!sqe)
		return -ENOMEM;
	io_uring_prep_splice(sqe, in, off_in, out, off_out, len, flags);
	EXPECT_EQ(1, io_uring_submit(ring));
	EXPECT_EQ(0, io_uring_wait_cqe(ring, &cqe));
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

/* One SPLICE request socket -> file at @off; returns cqe->res. */
static int uring_splice_once(struct __test_metadata *_metadata,
			     struct io_uring *ring, int sock, int file,
			     int64_t off, unsigned int len)
{
	return uring_splice_wait(_metadata, ring, sock, -1, file, off, len, 0);
}

TEST_F_TIMEOUT(uring, socket_to_file_byte_exact, 300)
{
	struct netfile_sender s = {
		.fd = self->client, .seed = 31, .total = (8 << 20) + 333,
		.chunk = 65536, .close_after = true,
	};
	int64_t off = 4095;
	int res;

	self->client = -1;	/* the sender closes it */
	ASSERT_EQ(0, netfile_sender_start(&s));
	while ((res = uring_splice_once(_metadata, &self->ring, self->server,
					self->file, off, 1 << 20)) > 0)
		off += res;
	EXPECT_EQ(0, res) TH_LOG("splice: %s", strerror(-res));
	netfile_sender_join(&s);
	EXPECT_EQ(4095 + s.total, off);
	EXPECT_EQ(-1, netfile_file_check(self->file, 4095, s.total, s.seed, 0));
}

TEST_F(uring, errors_match_recvfile)
{
	char c;
	int sv[2];

	/* A socket has no input offset. */
	{
		struct io_uring_cqe *cqe;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&self->ring);

		ASSERT_NE(NULL, sqe);
		io_uring_prep_splice(sqe, self->server, 0, self->file, 0, 1, 0);
		ASSERT_EQ(1, io_uring_submit(&self->ring));
		ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
		EXPECT_EQ(-ESPIPE, cqe->res);
		io_uring_cqe_seen(&self->ring, cqe);
	}
	/* AF_UNIX is not a pair splice takes without a pipe (6.12 answers
	 * EINVAL), and nothing is consumed.
	 */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(1, write(sv[0], "u", 1));
	EXPECT_EQ(-EINVAL, uring_splice_once(_metadata, &self->ring, sv[1],
					     self->file, 0, 1));
	EXPECT_EQ(1, read(sv[1], &c, 1));
	close(sv[0]);
	close(sv[1]);
	/* A short transfer at EOF, then 0. */
	ASSERT_EQ(3, write(self->client, "abc", 3));
	ASSERT_EQ(0, shutdown(self->client, SHUT_WR));
	EXPECT_EQ(3, uring_splice_once(_metadata, &self->ring, self->server,
				       self->file, 0, 100));
	EXPECT_EQ(0, uring_splice_once(_metadata, &self->ring, self->server,
				       self->file, 3, 100));
}

static int count_iowq_workers(void)
{
	return netfile_iowq_workers(NULL);
}

/* Queue @len pattern bytes on the connection and let them arrive. */
static void queue_data(struct __test_metadata *_metadata, int client,
		       size_t len, uint64_t seed)
{
	char *buf = malloc(len);

	ASSERT_NE(NULL, buf);
	netfile_pattern_fill(buf, len, seed, 0);
	ASSERT_EQ(len, write(client, buf, len));
	free(buf);
	usleep(100000);	/* loopback: delivered long before this */
}

static int mount_scratch_xfs(const char *dir)
{
	return netfile_mount_scratch(dir, "xfs", NULL);
}

/*
 * One request on a fresh task (io-wq workers belong to the task): touch the
 * file's mtime so the write need not update it (a NOWAIT write that must
 * update timestamps punts, as IORING_OP_WRITE does), then splice queued
 * data. Exits 0 if it completed inline, 1 if a worker ran it, 2 on error.
 */
static int inline_attempt(int sock, int file, off_t off)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	int res;

	if (io_uring_queue_init(4, &ring, 0))
		return 2;
	if (pwrite(file, "t", 1, 64 << 20) != 1)
		return 2;
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_splice(sqe, sock, -1, file, off, 4096, 0);
	if (io_uring_submit(&ring) != 1 || io_uring_wait_cqe(&ring, &cqe))
		return 2;
	res = cqe->res;
	if (res != 4096)
		return 2;
	return count_iowq_workers() == 0 ? 0 : 1;
}

/*
 * Data already queued, destination with non-blocking buffered writes
 * (XFS): the request can complete inline, without an io-wq worker. On
 * tmpfs, which cannot write without blocking, it always runs in io-wq.
 */
TEST_F_TIMEOUT(uring, queued_data_completes_inline_on_xfs, 300)
{
	const char *mnt = "/tmp/netfile-xfs";
	int ret, xfs_file, i, inline_done = 0, by_worker = 0, status;

	ret = mount_scratch_xfs(mnt);
	if (ret == -ENODEV || ret == -ENOENT)
		SKIP(return, "no scratch disk or mkfs.xfs");
	ASSERT_EQ(0, ret);
	xfs_file = open("/tmp/netfile-xfs/data", O_CREAT | O_RDWR | O_TRUNC, 0600);
	ASSERT_LE(0, xfs_file);

	for (i = 0; i < 20; i++) {
		pid_t pid;

		queue_data(_metadata, self->client, 4096, 11);
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(inline_attempt(self->server, xfs_file, 0));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_NE(2, WEXITSTATUS(status));
		if (WEXITSTATUS(status) == 0)
			inline_done++;
		else
			by_worker++;
		EXPECT_EQ(-1, netfile_file_check(xfs_file, 0, 4096, 11, 0));
	}
	TH_LOG("XFS: %d of 20 completed inline, %d in io-wq", inline_done, by_worker);
	EXPECT_LE(1, inline_done);

	/* Control: the tmpfs destination needs a worker. */
	queue_data(_metadata, self->client, 4096, 11);
	EXPECT_EQ(4096, uring_splice_once(_metadata, &self->ring, self->server,
					  self->file, 0, 4096));
	EXPECT_LE(1, count_iowq_workers());
	close(xfs_file);
}

/*
 * Bad arguments fail at once even with nothing queued, with recvfile's
 * errors, instead of waiting for data that may never come.
 */
TEST_F(uring, bad_arguments_fail_without_waiting)
{
	int lfd, ro, app, ux[2];
	struct sockaddr_in sa = { .sin_family = AF_INET };

	ro = open("/proc/self/exe", O_RDONLY);
	ASSERT_LE(0, ro);
	app = netfile_tmpfile(NULL);
	ASSERT_LE(0, app);
	ASSERT_EQ(0, fcntl(app, F_SETFL, O_APPEND));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_EQ(0, listen(lfd, 1));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, ux));

	/* the output: read-only, O_APPEND, a negative offset */
	EXPECT_EQ(-EBADF, uring_splice_once(_metadata, &self->ring, self->server,
					    ro, 0, 100));
	EXPECT_EQ(-EINVAL, uring_splice_once(_metadata, &self->ring, self->server,
					     app, -1, 100));
	EXPECT_EQ(-EINVAL, uring_splice_once(_metadata, &self->ring, self->server,
					     self->file, -2, 100));
	/* the input: a listening socket, an AF_UNIX socket with no data;
	 * neither is a pair splice takes without a pipe (EINVAL, as in 6.12)
	 */
	EXPECT_EQ(-EINVAL, uring_splice_once(_metadata, &self->ring, lfd,
					     self->file, 0, 100));
	EXPECT_EQ(-EINVAL, uring_splice_once(_metadata, &self->ring, ux[0],
					     self->file, 0, 100));
	close(ro);
	close(app);
	close(lfd);
	close(ux[0]);
	close(ux[1]);
}

/* Nothing queued: the request waits (poll) and completes with the data. */
TEST_F(uring, waits_for_data)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&self->ring);

	ASSERT_NE(NULL, sqe);
	io_uring_prep_splice(sqe, self->server, -1, self->file, 0, 100, 0);
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	usleep(100000);
	EXPECT_EQ(-EAGAIN, io_uring_peek_cqe(&self->ring, &cqe));
	ASSERT_EQ(5, write(self->client, "later", 5));
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	EXPECT_EQ(5, cqe->res);
	io_uring_cqe_seen(&self->ring, cqe);
}

/*
 * Requests waiting for data are armed for poll on their socket, as
 * IORING_OP_RECV is: no io-wq worker per idle connection. Data then
 * arrives; on tmpfs (no non-blocking buffered writes) a worker may do the
 * write, but none waits for the network.
 */
TEST_F_TIMEOUT(uring, waiting_requests_use_no_worker, 120)
{
	int i, n = 16, c[16], sv[16], done = 0;
	struct io_uring ring;

	ASSERT_EQ(0, io_uring_queue_init(32, &ring, 0));
	for (i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &c[i], &sv[i]));
		io_uring_prep_splice(sqe, sv[i], -1, self->file, i * 4096, 4096, 0);
		sqe->user_data = i;
	}
	ASSERT_EQ(n, io_uring_submit(&ring));
	usleep(300000);
	EXPECT_EQ(0, count_iowq_workers());
	for (i = 0; i < n; i++) {
		char buf[4096];

		netfile_pattern_fill(buf, sizeof(buf), 40 + i, 0);
		ASSERT_EQ(sizeof(buf), write(c[i], buf, sizeof(buf)));
	}
	while (done < n) {
		struct io_uring_cqe *cqe;

		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		EXPECT_EQ(4096, cqe->res);
		EXPECT_EQ(-1, netfile_file_check(self->file, cqe->user_data * 4096,
						 4096, 40 + cqe->user_data, 0));
		io_uring_cqe_seen(&ring, cqe);
		done++;
	}
	io_uring_queue_exit(&ring);
	for (i = 0; i < n; i++) {
		close(c[i]);
		close(sv[i]);
	}
}

/*
 * Writers of one file must not wait behind each other: the peers send in
 * the reverse order of submission, each only once the previous request
 * completed. Serialised (hashed) work on the file's inode would stall on
 * the first request for ever.
 */
TEST_F_TIMEOUT(uring, idle_connection_does_not_stall_other_writers, 120)
{
	int i, n = 8, c[8], sv[8];
	struct io_uring ring;

	ASSERT_EQ(0, io_uring_queue_init(16, &ring, 0));
	for (i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &c[i], &sv[i]));
		io_uring_prep_splice(sqe, sv[i], -1, self->file, i * 100, 100, 0);
		sqe->user_data = i;
	}
	ASSERT_EQ(n, io_uring_submit(&ring));
	for (i = n - 1; i >= 0; i--) {
		struct __kernel_timespec ts = { .tv_sec = 20 };
		struct io_uring_cqe *cqe;
		char buf[100];

		memset(buf, 'a' + i, sizeof(buf));
		ASSERT_EQ(sizeof(buf), write(c[i], buf, sizeof(buf)));
		ASSERT_EQ(0, io_uring_wait_cqe_timeout(&ring, &cqe, &ts))
			TH_LOG("request %d did not complete: writers serialised?", i);
		EXPECT_EQ(i, cqe->user_data);
		EXPECT_EQ(100, cqe->res);
		io_uring_cqe_seen(&ring, cqe);
	}
	io_uring_queue_exit(&ring);
	for (i = 0; i < n; i++) {
		close(c[i]);
		close(sv[i]);
	}
}

/* SPLICE_F_NONBLOCK: nothing queued means -EAGAIN, not a wait. */
TEST_F(uring, nonblock_flag_does_not_wait)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&self->ring);

	io_uring_prep_splice(sqe, self->server, -1, self->file, 0, 100,
			     SPLICE_F_NONBLOCK);
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	EXPECT_EQ(-EAGAIN, cqe->res);
	io_uring_cqe_seen(&self->ring, cqe);
	queue_data(_metadata, self->client, 100, 3);
	EXPECT_EQ(100, uring_splice_once(_metadata, &self->ring, self->server,
					 self->file, 0, 100));
	EXPECT_EQ(-1, netfile_file_check(self->file, 0, 100, 3, 0));
}

/* An SMB2-style WRITE: RECV(header) linked to SPLICE(socket -> file, payload). */
TEST_F_TIMEOUT(uring, linked_header_then_payload, 120)
{
	struct netfile_sender s = {
		.fd = self->client, .seed = 5, .total = 64 + (1 << 20),
		.chunk = 65536, .close_after = true,
	};
	char header[64], want[64];
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int64_t off = 0;
	int i, res;

	self->client = -1;
	ASSERT_EQ(0, netfile_sender_start(&s));
	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_recv(sqe, self->server, header, sizeof(header), MSG_WAITALL);
	sqe->flags |= IOSQE_IO_LINK;
	sqe->user_data = 1;
	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_splice(sqe, self->server, -1, self->file, 0, 1 << 20, 0);
	sqe->user_data = 2;
	ASSERT_EQ(2, io_uring_submit(&self->ring));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
		EXPECT_TRUE(cqe->user_data != 1 || cqe->res == sizeof(header));
		if (cqe->user_data != 1)
			off = cqe->res;
		io_uring_cqe_seen(&self->ring, cqe);
	}
	ASSERT_LT(0, off);
	netfile_pattern_fill(want, sizeof(want), s.seed, 0);
	EXPECT_EQ(0, memcmp(header, want, sizeof(header)));
	while (off < 1 << 20) {
		res = uring_splice_once(_metadata, &self->ring, self->server,
					self->file, off, (1 << 20) - off);
		ASSERT_LT(0, res);
		off += res;
	}
	netfile_sender_join(&s);
	EXPECT_EQ(-1, netfile_file_check(self->file, 0, 1 << 20, s.seed, 64));
}

struct drain {
	int fd;
	uint64_t seed, total, got;
	off_t bad;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	char buf[65536];
	ssize_t n;

	d->bad = -1;
	while (d->got < d->total && (n = read(d->fd, buf, sizeof(buf))) > 0) {
		ssize_t at = netfile_pattern_check(buf, n, d->seed, d->got);

		if (at >= 0 && d->bad < 0)
			d->bad = d->got + at;
		d->got += n;
	}
	return NULL;
}

/* File -> socket without a pipe: sendfile through the ring. */
TEST_F_TIMEOUT(uring, file_to_socket_byte_exact, 300)
{
	struct drain d = { .fd = self->client, .seed = 17, .total = (3 << 20) + 5 };
	char *buf = malloc(d.total);
	int64_t off = 0;
	pthread_t th;

	ASSERT_NE(NULL, buf);
	netfile_pattern_fill(buf, d.total, d.seed, 0);
	ASSERT_EQ(d.total, pwrite(self->file, buf, d.total, 0));
	free(buf);
	ASSERT_EQ(0, pthread_create(&th, NULL, drain_main, &d));
	while ((uint64_t)off < d.total) {
		struct io_uring_cqe *cqe;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&self->ring);

		ASSERT_NE(NULL, sqe);
		io_uring_prep_splice(sqe, self->file, off, self->server, -1,
				     d.total - off, 0);
		ASSERT_EQ(1, io_uring_submit(&self->ring));
		ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
		ASSERT_LT(0, cqe->res) TH_LOG("splice file -> socket: %s",
					      strerror(-cqe->res));
		off += cqe->res;
		io_uring_cqe_seen(&self->ring, cqe);
	}
	pthread_join(th, NULL);
	EXPECT_EQ(d.total, d.got);
	EXPECT_EQ(-1, d.bad);
	/* Plain splice(2) takes the same path. */
	EXPECT_EQ(-1, splice(self->file, NULL, self->server, &off, 1, 0));
	EXPECT_EQ(ESPIPE, errno);
}

#ifndef SPLICE_F_NOTIF
#define SPLICE_F_NOTIF		0x40000000U	/* bit 30 */
#endif

/* A tmpfs file (always cached) holding @len pattern bytes of @seed. */
static void fill_file(struct __test_metadata *_metadata, int file,
		      size_t len, uint64_t seed)
{
	char *buf = malloc(len);

	ASSERT_NE(NULL, buf);
	netfile_pattern_fill(buf, len, seed, 0);
	ASSERT_EQ(len, pwrite(file, buf, len, 0));
	free(buf);
}

/* Keep at most @bytes queued on the sending side: the socket fills fast. */
static void small_sndbuf(struct __test_metadata *_metadata, int sock, int bytes)
{
	ASSERT_EQ(0, setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)));
}

/*
 * File -> socket with cached pages runs in the submitting task: 64
 * requests of 64 KiB, each bigger than the initial send buffer, so most
 * of them fill the socket, wait for POLLOUT and go on inline. No io-wq
 * worker is ever started.
 */
TEST_F_TIMEOUT(uring, file_to_socket_inline_no_worker, 120)
{
	struct drain d = { .fd = self->client, .seed = 23, .total = 4 << 20 };
	pthread_t th;
	int i;

	fill_file(_metadata, self->file, d.total, d.seed);
	ASSERT_EQ(0, pthread_create(&th, NULL, drain_main, &d));
	for (i = 0; i < 64; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&self->ring);
		struct io_uring_cqe *cqe;

		io_uring_prep_splice(sqe, self->file, i * 65536, self->server,
				     -1, 65536, 0);
		ASSERT_EQ(1, io_uring_submit(&self->ring));
		ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
		EXPECT_EQ(65536, cqe->res);
		io_uring_cqe_seen(&self->ring, cqe);
	}
	pthread_join(th, NULL);
	EXPECT_EQ(d.total, d.got);
	EXPECT_EQ(-1, d.bad);
	EXPECT_EQ(0, count_iowq_workers());
}

/*
 * A peer that does not read: the requests wait for write space with poll,
 * no worker each, and complete whole and byte-exact once the peers drain.
 */
TEST_F_TIMEOUT(uring, file_to_socket_waits_for_space_with_poll, 120)
{
	enum { N = 4, LEN = 4 << 20 };
	int i, c[N], sv[N], done = 0;
	struct drain d[N];
	pthread_t th[N];
	struct io_uring ring;

	fill_file(_metadata, self->file, LEN, 29);
	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	for (i = 0; i < N; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &c[i], &sv[i]));
		small_sndbuf(_metadata, sv[i], 65536);
		io_uring_prep_splice(sqe, self->file, 0, sv[i], -1, LEN, 0);
		sqe->user_data = i;
	}
	ASSERT_EQ(N, io_uring_submit(&ring));
	usleep(300000);
	EXPECT_EQ(0, io_uring_cq_ready(&ring));
	EXPECT_EQ(0, count_iowq_workers());

	for (i = 0; i < N; i++) {
		d[i] = (struct drain){ .fd = c[i], .seed = 29, .total = LEN };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, drain_main, &d[i]));
	}
	while (done < N) {
		struct io_uring_cqe *cqe;

		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		EXPECT_EQ(LEN, cqe->res);
		io_uring_cqe_seen(&ring, cqe);
		done++;
	}
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(LEN, d[i].got);
		EXPECT_EQ(-1, d[i].bad);
		close(c[i]);
		close(sv[i]);
	}
	EXPECT_EQ(0, count_iowq_workers());
	io_uring_queue_exit(&ring);
}

/*
 * SPLICE_F_NONBLOCK file -> socket does not wait for space: a short count
 * for what fitted, then -EAGAIN; the file offset moves only by what was
 * sent and the peer gets exactly those bytes.
 */
TEST_F_TIMEOUT(uring, file_to_socket_nonblock_is_short, 60)
{
	struct drain d = { .fd = self->client, .seed = 31 };
	int first, second;

	fill_file(_metadata, self->file, 4 << 20, d.seed);
	small_sndbuf(_metadata, self->server, 65536);
	first = uring_splice_wait(_metadata, &self->ring, self->file, -1,
				  self->server, -1, 4 << 20, SPLICE_F_NONBLOCK);
	ASSERT_LT(0, first);
	ASSERT_GT(4 << 20, first);
	EXPECT_EQ(first, lseek(self->file, 0, SEEK_CUR));

	/* Still full (an ACK may have freed a little: then a short count). */
	second = uring_splice_wait(_metadata, &self->ring, self->file, -1,
				   self->server, -1, 4 << 20, SPLICE_F_NONBLOCK);
	EXPECT_TRUE(second == -EAGAIN || (second >= 0 && first + second < (4 << 20)));
	second = second > 0 ? second : 0;
	EXPECT_EQ(first + second, lseek(self->file, 0, SEEK_CUR));

	shutdown(self->server, SHUT_WR);
	d.total = 8 << 20;	/* read to EOF */
	drain_main(&d);
	EXPECT_EQ(first + second, d.got);
	EXPECT_EQ(-1, d.bad);
	EXPECT_EQ(0, count_iowq_workers());
}

/*
 * SPLICE_F_NOTIF from a cached file takes the same inline path: the result
 * and the notification arrive without an io-wq worker.
 */
TEST_F_TIMEOUT(uring, file_to_socket_notif_inline, 60)
{
	struct drain d = { .fd = self->client, .seed = 37, .total = 1 << 20 };
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int i, got_res = 0, got_notif = 0;
	pthread_t th;

	fill_file(_metadata, self->file, d.total, d.seed);
	ASSERT_EQ(0, pthread_create(&th, NULL, drain_main, &d));
	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_splice(sqe, self->file, 0, self->server, -1, d.total,
			     SPLICE_F_NOTIF);
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
		if (cqe->flags & IORING_CQE_F_NOTIF) {
			got_notif++;
		} else {
			EXPECT_EQ(d.total, cqe->res);
			EXPECT_TRUE(cqe->flags & IORING_CQE_F_MORE);
			got_res++;
		}
		io_uring_cqe_seen(&self->ring, cqe);
	}
	pthread_join(th, NULL);
	EXPECT_EQ(1, got_res);
	EXPECT_EQ(1, got_notif);
	EXPECT_EQ(d.total, d.got);
	EXPECT_EQ(-1, d.bad);
	EXPECT_EQ(0, count_iowq_workers());
}

/*
 * Sockets that cannot send never report POLLOUT: a file -> socket request
 * must fail as splice(2) does, not wait for write space for ever.
 */
TEST_F_TIMEOUT(uring, file_to_unsendable_socket_fails, 60)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	int fresh = socket(AF_INET, SOCK_STREAM, 0);
	int socks[2] = { lfd, fresh }, i;

	signal(SIGPIPE, SIG_IGN);	/* splice(2) raises it for EPIPE */
	fill_file(_metadata, self->file, 65536, 43);
	ASSERT_LE(0, lfd);
	ASSERT_LE(0, fresh);
	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&addr, sizeof(addr)));
	ASSERT_EQ(0, listen(lfd, 1));
	for (i = 0; i < 2; i++) {
		int res = uring_splice_wait(_metadata, &self->ring, self->file,
					    0, socks[i], -1, 65536, 0);

		EXPECT_GT(0, res);
		EXPECT_EQ(-1, splice(self->file, NULL, socks[i], NULL, 65536, 0));
		EXPECT_EQ(-res, errno);
	}
	close(lfd);
	close(fresh);
}

/*
 * Pages that are not cached: the inline attempt does not wait for the
 * disk (it starts readahead and stops), so io-wq reads and sends what is
 * still missing, or a later inline attempt finds it read; either way the
 * bytes are exact.
 */
TEST_F_TIMEOUT(uring, file_to_socket_uncached_is_byte_exact, 300)
{
	struct drain d = { .fd = self->client, .seed = 41, .total = 2 << 20 };
	const char *mnt = "/tmp/netfile-xfs";
	int ret, xfs_file;
	pthread_t th;

	ret = mount_scratch_xfs(mnt);
	if (ret == -ENODEV || ret == -ENOENT)
		SKIP(return, "no scratch disk or mkfs.xfs");
	ASSERT_EQ(0, ret);
	xfs_file = open("/tmp/netfile-xfs/data", O_CREAT | O_RDWR | O_TRUNC, 0600);
	ASSERT_LE(0, xfs_file);
	fill_file(_metadata, xfs_file, d.total, d.seed);
	ASSERT_EQ(0, fsync(xfs_file));
	ASSERT_EQ(0, posix_fadvise(xfs_file, 0, 0, POSIX_FADV_DONTNEED));

	ASSERT_EQ(0, pthread_create(&th, NULL, drain_main, &d));
	EXPECT_EQ(d.total, uring_splice_wait(_metadata, &self->ring, xfs_file, 0,
					     self->server, -1, d.total, 0));
	pthread_join(th, NULL);
	EXPECT_EQ(d.total, d.got);
	EXPECT_EQ(-1, d.bad);
	TH_LOG("uncached file -> socket: %d io-wq worker(s)", count_iowq_workers());
	close(xfs_file);
}

/* Registered files on both sides (SPLICE_F_FD_IN_FIXED, IOSQE_FIXED_FILE). */
TEST_F(uring, fixed_files)
{
	int fds[2] = { self->server, self->file };
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	char c[5];

	ASSERT_EQ(0, io_uring_register_files(&self->ring, fds, 2));
	ASSERT_EQ(5, write(self->client, "fixed", 5));
	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_splice(sqe, 0, -1, 1, 0, 5, SPLICE_F_FD_IN_FIXED);
	sqe->flags |= IOSQE_FIXED_FILE;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	EXPECT_EQ(5, cqe->res);
	io_uring_cqe_seen(&self->ring, cqe);
	ASSERT_EQ(5, pread(self->file, c, 5, 0));
	EXPECT_EQ(0, memcmp(c, "fixed", 5));
}

/* A request waiting for data can be cancelled; the socket keeps later data. */
TEST_F(uring, cancel_while_waiting)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int i, seen = 0;
	char c;

	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_splice(sqe, self->server, -1, self->file, 0, 100, 0);
	sqe->user_data = 1;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	usleep(200000);
	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_cancel64(sqe, 1, 0);
	sqe->user_data = 2;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
		if (cqe->user_data == 1) {
			EXPECT_TRUE(cqe->res == -EINTR || cqe->res == -ECANCELED)
				TH_LOG("cancelled splice: %d", cqe->res);
			seen++;
		} else {
			EXPECT_TRUE(cqe->res == 0 || cqe->res == -EALREADY)
				TH_LOG("cancel: %d", cqe->res);
		}
		io_uring_cqe_seen(&self->ring, cqe);
	}
	EXPECT_EQ(1, seen);
	ASSERT_EQ(1, write(self->client, "n", 1));
	EXPECT_EQ(1, read(self->server, &c, 1));
}

/*
 * Tearing the ring down with requests blocked on the network. Cancellation
 * on ring exit is asynchronous, so a request may still take data sent
 * just after the close: each byte must end up exactly once, in the file or
 * on the socket, and nothing may hang.
 */
TEST_F_TIMEOUT(uring, teardown_with_pending_requests, 60)
{
	struct io_uring ring;
	int i, sv[8][2];

	ASSERT_EQ(0, io_uring_queue_init(16, &ring, 0));
	for (i = 0; i < 8; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &sv[i][0], &sv[i][1]));
		io_uring_prep_splice(sqe, sv[i][1], -1, self->file, i * 4096, 4096, 0);
	}
	ASSERT_EQ(8, io_uring_submit(&ring));
	usleep(200000);
	io_uring_queue_exit(&ring);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(1, write(sv[i][0], "d", 1));
	for (i = 0; i < 8; i++) {
		int tries, on_socket = 0, in_file = 0;
		char c;

		for (tries = 0; tries < 200 && !on_socket && !in_file; tries++) {
			on_socket = recv(sv[i][1], &c, 1, MSG_DONTWAIT) == 1;
			in_file = pread(self->file, &c, 1, i * 4096) == 1 && c == 'd';
			if (!on_socket && !in_file)
				usleep(10000);
		}
		EXPECT_TRUE(on_socket != in_file) TH_LOG("byte %d: socket %d file %d",
							 i, on_socket, in_file);
		close(sv[i][0]);
		close(sv[i][1]);
	}
}

/*
 * Many connections into one file through one ring, up to @depth requests in
 * flight (one per connection: two reads of one stream at once would race).
 */
FIXTURE(uring_many) {
	struct io_uring ring;
	int file;
};

FIXTURE_VARIANT(uring_many) {
	int conns;
	int depth;
};

FIXTURE_VARIANT_ADD(uring_many, qd1_1conn) { .conns = 1, .depth = 1 };
FIXTURE_VARIANT_ADD(uring_many, qd8_16conns) { .conns = 16, .depth = 8 };
FIXTURE_VARIANT_ADD(uring_many, qd64_64conns) { .conns = 64, .depth = 64 };

FIXTURE_SETUP(uring_many)
{
	ASSERT_EQ(0, io_uring_queue_init(64, &self->ring, 0));
	self->file = netfile_tmpfile(NULL);
	ASSERT_LE(0, self->file);
}

FIXTURE_TEARDOWN(uring_many)
{
	io_uring_queue_exit(&self->ring);
	close(self->file);
}

#define PER_CONN (256 << 10)

struct many_conn {
	struct netfile_sender s;
	int server;
	uint64_t done;
	bool busy, eof;
};

static void many_submit(struct io_uring *ring, struct many_conn *c, int i,
			int file)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	io_uring_prep_splice(sqe, c->server, -1, file,
			     (int64_t)i * PER_CONN + c->done, PER_CONN - c->done, 0);
	sqe->user_data = i;
	c->busy = true;
}

TEST_F_TIMEOUT(uring_many, byte_exact, 600)
{
	struct many_conn *c = calloc(variant->conns, sizeof(*c));
	int i, inflight = 0, finished = 0, next = 0;

	ASSERT_NE(NULL, c);
	for (i = 0; i < variant->conns; i++) {
		int client;

		ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &client, &c[i].server));
		c[i].s = (struct netfile_sender) { .fd = client, .seed = 1000 + i,
			.total = PER_CONN, .chunk = 8192 * (1 + i % 4),
			.close_after = true };
		ASSERT_EQ(0, netfile_sender_start(&c[i].s));
	}
	while (finished < variant->conns) {
		struct io_uring_cqe *cqe;
		struct many_conn *m;

		/* Top up: idle, unfinished connections, round robin. */
		for (i = 0; i < variant->conns && inflight < variant->depth; i++) {
			int k = (next + i) % variant->conns;

			if (c[k].busy || c[k].eof)
				continue;
			many_submit(&self->ring, &c[k], k, self->file);
			inflight++;
		}
		next++;
		ASSERT_LE(0, io_uring_submit(&self->ring));
		ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
		m = &c[cqe->user_data];
		ASSERT_LE(0, cqe->res) TH_LOG("conn %llu: %s",
					      (unsigned long long)cqe->user_data,
					      strerror(-cqe->res));
		m->busy = false;
		inflight--;
		m->done += cqe->res;
		if (cqe->res == 0 || m->done == PER_CONN) {
			m->eof = true;
			finished++;
		}
		io_uring_cqe_seen(&self->ring, cqe);
	}
	for (i = 0; i < variant->conns; i++) {
		netfile_sender_join(&c[i].s);
		EXPECT_EQ(PER_CONN, c[i].done);
		EXPECT_EQ(-1, netfile_file_check(self->file, (off_t)i * PER_CONN,
						 PER_CONN, c[i].s.seed, 0));
		close(c[i].server);
	}
	free(c);
}

TEST_HARNESS_MAIN
