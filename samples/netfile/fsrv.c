// SPDX-License-Identifier: GPL-2.0
/*
 * fsrv: a small file server with SMB2-like framing, its client, and the
 * driver that measures its back ends side by side in one boot.
 *
 * Every request is a fixed 32-byte header (op, file id, offset, length);
 * a WRITE is followed by its payload, a READ is answered with a header
 * whose status is the byte count, then the data. A WRITE that fails
 * (ENOSPC, EIO, ...) drains exactly the rest of its payload from the
 * socket, as Samba's drain_socket() does, so the stream stays in sync,
 * and is answered with -errno.
 *
 * WRITE back ends: rw (read() into a 128 KiB buffer + pwrite(), what
 * Samba does today), splice (socket -> pipe -> file, the pipe sized with
 * F_SETPIPE_SZ), recvfile (recvfile(2) with MSG_WAITALL), uring-rw
 * (IORING_OP_RECV + IORING_OP_WRITE through a buffer) and uring
 * (IORING_OP_SPLICE socket -> file, no pipe, linked to the reply).
 * READ back ends: rw (pread() + send()), sendfile, splice (file -> socket,
 * no pipe), sendfile-notif (sendfile with SO_ZEROCOPY_SPLICE completions
 * reaped from the error queue), uring (SEND of the header linked to a
 * pipe-less IORING_OP_SPLICE) and uring-notif (the same with
 * SPLICE_F_NOTIF). The io_uring back ends serve every connection from
 * one ring in one thread; the others use a thread per connection.
 *
 * Networks: lo (loopback), veth (a veth pair into a second network
 * namespace) and nic (two virtio-net ports that QEMU joins with a hub,
 * scripts/vm-run.sh --nic-pair: packets leave through a driver, as to a
 * real NIC, and are not delivered to the receiver in the sender's skbs).
 *
 *   fsrv bench [-s MiB] [-r rounds] [-p 64k,1m,8m] [-c 1,4,16] [-n lo,veth,nic]
 *              [-W backends] [-R backends] [-d dir] [-D datafile]
 *   fsrv check [-d dir]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_recvfile
#define __NR_recvfile 474	/* provisional until merged */
#endif
#ifndef SPLICE_F_NOTIF
#define SPLICE_F_NOTIF 0x40000000U	/* bit 30, as in linux/io_uring.h */
#endif
#ifndef SO_ZEROCOPY_SPLICE
#define SO_ZEROCOPY_SPLICE 86
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY_SPLICE
#define SO_EE_ORIGIN_ZEROCOPY_SPLICE 7
#endif

#define FSRV_MAGIC	0x32424d53	/* "SMB2" */
#define OP_WRITE	1
#define OP_READ		2
#define BUFSZ		(128 << 10)	/* Samba's default recvfile buffer */
#define PIPESZ		(1024 * 1024)
#define MAX_FILES	64
#define MAX_CONNS	64

struct fsrv_hdr {
	uint32_t magic;
	uint16_t op;
	uint16_t flags;
	uint32_t file_id;
	uint32_t length;
	uint64_t offset;
	int32_t status;		/* reply: bytes moved, or -errno */
	uint32_t pad;
};

/* For byte counts: every caller passes two non-negative values. */
static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---- server ----------------------------------------------------------- */

struct server {
	const char *wb, *rb;	/* back ends for WRITE and READ */
	int listen_fd, conns;	/* serve this many connections, then exit */
	int files[MAX_FILES];
	atomic_long requests, bytes, syscalls, notifs, errors;
};

static __thread long nr_syscalls;
#define SYS(call) (nr_syscalls++, (call))

static bool is(const char *a, const char *b)
{
	return !strcmp(a, b);
}

static int recv_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = SYS(recv(fd, (char *)buf + got, len - got, MSG_WAITALL));

		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		got += n;
	}
	return 0;
}

static int send_all(int fd, const void *buf, size_t len, int flags)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = SYS(send(fd, (const char *)buf + done, len - done,
				     flags | MSG_NOSIGNAL));

		if (n < 0)
			return -errno;
		done += n;
	}
	return 0;
}

/* Read and drop exactly @len payload bytes: keeps the stream in sync. */
static int drain_socket(int fd, char *buf, uint64_t len)
{
	while (len) {
		ssize_t n = SYS(read(fd, buf, min_u64(len, BUFSZ)));

		if (n <= 0)
			return -ECONNRESET;
		len -= n;
	}
	return 0;
}

struct conn {
	struct server *srv;
	int sock, pipe[2];
	char *buf;
	long zc_calls, zc_done;	/* sendfile-notif: ids used / completed */
};

static int64_t write_rw(struct conn *c, int file, uint64_t off, uint32_t len)
{
	uint32_t done = 0;
	int err = 0;

	while (done < len) {
		ssize_t n = SYS(read(c->sock, c->buf, min_u64(BUFSZ, len - done)));
		ssize_t w = 0;

		if (n <= 0)
			return -ECONNRESET;
		while (!err && w < n) {
			ssize_t r = SYS(pwrite(file, c->buf + w, n - w, off + done + w));

			if (r < 0)
				err = -errno;
			else
				w += r;
		}
		done += n;	/* after an error this drains the payload */
	}
	return err ? err : (int64_t)len;
}

static int64_t write_splice(struct conn *c, int file, uint64_t off, uint32_t len)
{
	loff_t pos = off;
	uint32_t done = 0;
	int err = 0;

	while (done < len) {
		ssize_t n = SYS(splice(c->sock, NULL, c->pipe[1], NULL,
				       min_u64(PIPESZ, len - done), SPLICE_F_MOVE));
		ssize_t left = n;

		if (n <= 0)
			return -ECONNRESET;
		while (left > 0) {
			ssize_t w;

			if (err) {	/* drop what the file did not take */
				w = SYS(read(c->pipe[0], c->buf, min_u64(left, BUFSZ)));
			} else {
				w = SYS(splice(c->pipe[0], NULL, file, &pos, left,
					       SPLICE_F_MOVE));
				if (w < 0) {
					err = -errno;
					continue;
				}
			}
			if (w <= 0)
				return -EIO;
			left -= w;
		}
		done += n;
	}
	return err ? err : (int64_t)len;
}

static int64_t write_recvfile(struct conn *c, int file, uint64_t off, uint32_t len)
{
	loff_t pos = off;
	uint32_t done = 0;

	while (done < len) {
		ssize_t n = SYS(syscall(__NR_recvfile, file, c->sock, &pos,
					len - done, MSG_WAITALL));

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			int err = -errno;

			/* nothing of the rest was consumed: drain it */
			if (drain_socket(c->sock, c->buf, len - done))
				return -ECONNRESET;
			return err;
		}
		done += n;
	}
	return len;
}

static int reap_zc(struct conn *c, bool wait)
{
	char control[128];
	struct msghdr msg = { .msg_control = control };
	struct pollfd pfd = { .fd = c->sock };

	while (c->zc_done < c->zc_calls) {
		struct sock_extended_err *serr;
		struct cmsghdr *cm;

		if (wait && SYS(poll(&pfd, 1, 10000)) != 1)
			return -ETIMEDOUT;
		msg.msg_controllen = sizeof(control);
		if (SYS(recvmsg(c->sock, &msg, MSG_ERRQUEUE | MSG_DONTWAIT)) < 0) {
			if (errno == EAGAIN && wait)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		cm = CMSG_FIRSTHDR(&msg);
		if (!cm)
			continue;
		serr = (void *)CMSG_DATA(cm);
		if (serr->ee_origin != SO_EE_ORIGIN_ZEROCOPY_SPLICE)
			continue;
		c->zc_done += serr->ee_data - serr->ee_info + 1;
		atomic_fetch_add(&c->srv->notifs, serr->ee_data - serr->ee_info + 1);
	}
	return 0;
}

static int64_t read_to_socket(struct conn *c, int file, uint64_t off, uint32_t len)
{
	const char *rb = c->srv->rb;
	loff_t pos = off;
	uint32_t done = 0;

	while (done < len) {
		ssize_t n;

		if (is(rb, "rw")) {
			n = SYS(pread(file, c->buf, min_u64(BUFSZ, len - done), pos));
			if (n > 0 && send_all(c->sock, c->buf, n, 0))
				return -ECONNRESET;
			pos += n > 0 ? n : 0;
		} else if (is(rb, "splice")) {
			n = SYS(splice(file, &pos, c->sock, NULL, len - done, 0));
		} else {
			n = SYS(sendfile(c->sock, file, &pos, len - done));
			if (n > 0 && is(rb, "sendfile-notif"))
				c->zc_calls++;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	if (is(rb, "sendfile-notif"))
		reap_zc(c, false);
	return len;
}

static int64_t serve_write(struct conn *c, int file, struct fsrv_hdr *h)
{
	const char *wb = c->srv->wb;

	if (is(wb, "splice"))
		return write_splice(c, file, h->offset, h->length);
	if (is(wb, "recvfile"))
		return write_recvfile(c, file, h->offset, h->length);
	return write_rw(c, file, h->offset, h->length);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct server *srv = c->srv;
	struct fsrv_hdr h;
	int one = 1;

	c->buf = malloc(BUFSZ);
	if (pipe2(c->pipe, O_CLOEXEC) == 0)
		fcntl(c->pipe[0], F_SETPIPE_SZ, PIPESZ);
	if (is(srv->rb, "sendfile-notif"))
		setsockopt(c->sock, SOL_SOCKET, SO_ZEROCOPY_SPLICE, &one,
			   sizeof(one));

	while (recv_exact(c->sock, &h, sizeof(h)) == 0) {
		int file;
		int64_t st;

		if (h.magic != FSRV_MAGIC || h.file_id >= MAX_FILES)
			break;
		file = srv->files[h.file_id];
		h.flags = 0;
		if (h.op == OP_WRITE) {
			st = serve_write(c, file, &h);
			if (st == -ECONNRESET)
				break;
			h.status = st;
			if (send_all(c->sock, &h, sizeof(h), 0))
				break;
		} else if (h.op == OP_READ) {
			h.status = h.length;
			if (send_all(c->sock, &h, sizeof(h), MSG_MORE))
				break;
			st = read_to_socket(c, file, h.offset, h.length);
			if (st < 0)
				break;
		} else {
			break;
		}
		if (st < 0)
			atomic_fetch_add(&srv->errors, 1);
		else
			atomic_fetch_add(&srv->bytes, st);
		atomic_fetch_add(&srv->requests, 1);
	}
	if (is(srv->rb, "sendfile-notif"))
		reap_zc(c, true);
	atomic_fetch_add(&srv->syscalls, nr_syscalls);
	close(c->sock);
	close(c->pipe[0]);
	close(c->pipe[1]);
	free(c->buf);
	free(c);
	return NULL;
}

static void serve_threads(struct server *srv)
{
	pthread_t th[MAX_CONNS];
	int i;

	for (i = 0; i < srv->conns; i++) {
		struct conn *c = calloc(1, sizeof(*c));

		c->srv = srv;
		c->sock = SYS(accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC));
		if (c->sock < 0)
			exit(2);
		pthread_create(&th[i], NULL, conn_main, c);
	}
	for (i = 0; i < srv->conns; i++)
		pthread_join(th[i], NULL);
	atomic_fetch_add(&srv->syscalls, nr_syscalls);
}

/* ---- io_uring server: one ring, one thread, every connection ---------- */

enum { K_HDR = 1, K_PAYLOAD, K_FILE_WRITE, K_REPLY, K_RHDR, K_RDATA, K_DRAIN };
enum { S_HDR, S_WSPLICE, S_RW_RECV, S_RW_WRITE, S_REPLY, S_DRAIN, S_READ };

struct uconn {
	int sock, file;
	struct fsrv_hdr h;
	uint32_t done;		/* payload bytes moved so far */
	int err;		/* first error of this request */
	int step;		/* S_*: what the CQEs in flight belong to */
	int step_cqes;		/* CQEs still expected for the current step */
	int res, send_res;	/* results seen in this step */
	int notifs;		/* notifications outstanding */
	bool eof, closing;
	char *buf;
};

static uint64_t ud(int idx, int kind)
{
	return ((uint64_t)idx << 8) | kind;
}

static struct io_uring_sqe *get_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	return sqe;
}

static void u_step(struct uconn *u, int step, int cqes)
{
	u->step = step;
	u->step_cqes = cqes;
	u->res = 0;
	u->send_res = 0;
}

static void u_recv_hdr(struct io_uring *ring, struct uconn *u, int i)
{
	struct io_uring_sqe *sqe = get_sqe(ring);

	io_uring_prep_recv(sqe, u->sock, &u->h, sizeof(u->h), MSG_WAITALL);
	sqe->user_data = ud(i, K_HDR);
	u_step(u, S_HDR, 1);
}

static void u_reply(struct io_uring *ring, struct uconn *u, int i, int status)
{
	struct io_uring_sqe *sqe = get_sqe(ring);

	u->h.status = status;
	io_uring_prep_send(sqe, u->sock, &u->h, sizeof(u->h), MSG_NOSIGNAL);
	sqe->user_data = ud(i, K_REPLY);
	u_step(u, S_REPLY, 1);
}

/*
 * WRITE payload. uring: SPLICE socket -> file linked to the reply; a
 * short splice breaks the link and the rest is spliced again. uring-rw:
 * RECV into the buffer, then WRITE it.
 */
static void u_write_step(struct io_uring *ring, struct server *srv,
			 struct uconn *u, int i)
{
	uint32_t left = u->h.length - u->done;
	struct io_uring_sqe *sqe;

	if (is(srv->wb, "uring-rw")) {
		sqe = get_sqe(ring);
		io_uring_prep_recv(sqe, u->sock, u->buf, min_u64(left, BUFSZ), 0);
		sqe->user_data = ud(i, K_PAYLOAD);
		u_step(u, S_RW_RECV, 1);
		return;
	}
	sqe = get_sqe(ring);
	io_uring_prep_splice(sqe, u->sock, -1, u->file, u->h.offset + u->done,
			     left, 0);
	sqe->user_data = ud(i, K_PAYLOAD);
	sqe->flags |= IOSQE_IO_LINK;
	u->h.status = u->h.length;
	sqe = get_sqe(ring);
	io_uring_prep_send(sqe, u->sock, &u->h, sizeof(u->h), MSG_NOSIGNAL);
	sqe->user_data = ud(i, K_REPLY);
	u_step(u, S_WSPLICE, 2);
}

static void u_drain_step(struct io_uring *ring, struct uconn *u, int i)
{
	struct io_uring_sqe *sqe = get_sqe(ring);

	io_uring_prep_recv(sqe, u->sock, u->buf,
			   min_u64(u->h.length - u->done, BUFSZ), 0);
	sqe->user_data = ud(i, K_DRAIN);
	u_step(u, S_DRAIN, 1);
}

/* After an error, drop the rest of the payload, then answer -errno. */
static void u_fail_write(struct io_uring *ring, struct uconn *u, int i)
{
	if (u->done < u->h.length)
		u_drain_step(ring, u, i);
	else
		u_reply(ring, u, i, u->err);
}

/* READ: SEND(header, MSG_MORE) linked to SPLICE file -> socket. */
static void u_read_step(struct io_uring *ring, struct server *srv,
			struct uconn *u, int i, bool with_header)
{
	bool notif = is(srv->rb, "uring-notif");
	struct io_uring_sqe *sqe;

	u_step(u, S_READ, with_header ? 2 : 1);
	if (with_header) {
		u->h.status = u->h.length;
		sqe = get_sqe(ring);
		io_uring_prep_send(sqe, u->sock, &u->h, sizeof(u->h),
				   MSG_MORE | MSG_NOSIGNAL);
		sqe->user_data = ud(i, K_RHDR);
		sqe->flags |= IOSQE_IO_LINK;
	}
	sqe = get_sqe(ring);
	io_uring_prep_splice(sqe, u->file, u->h.offset + u->done, u->sock, -1,
			     u->h.length - u->done, notif ? SPLICE_F_NOTIF : 0);
	sqe->user_data = ud(i, K_RDATA);
	if (notif)
		u->notifs++;
}

static void u_request_done(struct io_uring *ring, struct server *srv,
			   struct uconn *u, int i)
{
	if (u->err)
		atomic_fetch_add(&srv->errors, 1);
	else
		atomic_fetch_add(&srv->bytes, u->h.length);
	atomic_fetch_add(&srv->requests, 1);
	u_recv_hdr(ring, u, i);
}

static void u_start_request(struct io_uring *ring, struct server *srv,
			    struct uconn *u, int i)
{
	u->done = 0;
	u->err = 0;
	if (u->h.magic != FSRV_MAGIC || u->h.file_id >= MAX_FILES) {
		u->closing = true;
		return;
	}
	u->file = srv->files[u->h.file_id];
	u->h.flags = 0;
	if (u->h.op == OP_WRITE)
		u_write_step(ring, srv, u, i);
	else if (u->h.op == OP_READ)
		u_read_step(ring, srv, u, i, true);
	else
		u->closing = true;
}

/* Every CQE of the current step is in: decide what comes next. */
static void u_step_done(struct io_uring *ring, struct server *srv,
			struct uconn *u, int i)
{
	struct io_uring_sqe *sqe;

	if (u->eof) {
		u->closing = true;
		return;
	}
	switch (u->step) {
	case S_HDR:
		if (u->res != sizeof(u->h))
			u->closing = true;
		else
			u_start_request(ring, srv, u, i);
		break;
	case S_WSPLICE:
		if (u->send_res == sizeof(u->h))
			u_request_done(ring, srv, u, i);
		else if (u->send_res != -ECANCELED)
			u->closing = true;
		else if (u->err)
			u_fail_write(ring, u, i);
		else
			u_write_step(ring, srv, u, i);	/* short: the rest */
		break;
	case S_RW_RECV:
		sqe = get_sqe(ring);
		io_uring_prep_write(sqe, u->file, u->buf, u->res,
				    u->h.offset + u->done);
		sqe->user_data = ud(i, K_FILE_WRITE);
		u->h.pad = u->res;	/* bytes in the buffer */
		u_step(u, S_RW_WRITE, 1);
		break;
	case S_RW_WRITE:
		u->done += u->h.pad;
		if (u->res < 0)
			u->err = u->res;
		if (u->err)
			u_fail_write(ring, u, i);
		else if (u->done < u->h.length)
			u_write_step(ring, srv, u, i);
		else
			u_reply(ring, u, i, u->h.length);
		break;
	case S_REPLY:
		if (u->send_res == sizeof(u->h))
			u_request_done(ring, srv, u, i);
		else
			u->closing = true;
		break;
	case S_DRAIN:
		u->done += u->res;
		u_fail_write(ring, u, i);
		break;
	case S_READ:
		if (u->err)
			u->closing = true;
		else if (u->done < u->h.length)
			u_read_step(ring, srv, u, i, false);
		else
			u_request_done(ring, srv, u, i);
		break;
	}
}

/* One CQE of connection @i; returns false when the connection is done. */
static bool u_handle(struct io_uring *ring, struct server *srv, struct uconn *u,
		     int i, int kind, int res, unsigned int cflags)
{
	if (cflags & IORING_CQE_F_NOTIF) {
		u->notifs--;
		atomic_fetch_add(&srv->notifs, 1);
		return !(u->closing && !u->notifs && !u->step_cqes);
	}
	switch (kind) {
	case K_PAYLOAD:
	case K_RDATA:
		if (kind == K_PAYLOAD && u->step == S_RW_RECV) {
			u->res = res;
			u->eof = res <= 0;
		} else if (res > 0) {
			u->done += res;
		} else if (res == 0) {
			u->eof = true;
		} else if (!u->err) {
			u->err = res;
		}
		break;
	case K_REPLY:
		u->send_res = res;
		break;
	case K_RHDR:
		if (res < 0 && !u->err)
			u->err = res;
		break;
	case K_DRAIN:
		u->eof = res <= 0;
		u->res = res;
		break;
	default:	/* K_HDR, K_FILE_WRITE */
		u->res = res;
		break;
	}
	if (!--u->step_cqes)
		u_step_done(ring, srv, u, i);
	return !(u->closing && !u->step_cqes && !u->notifs);
}

static int count_iowq_workers(void)
{
	struct dirent *de;
	char path[300], comm[32];
	int n = 0;
	DIR *d = opendir("/proc/self/task");

	while (d && (de = readdir(d))) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, "iou-wrk-", 8))
			n++;
		fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static int max_workers;

static void note_iowq_workers(void)
{
	int w = count_iowq_workers();

	if (w > max_workers)
		max_workers = w;
}

static void serve_uring(struct server *srv)
{
	struct uconn *u = calloc(srv->conns, sizeof(*u));
	int i, live = srv->conns, polls = 0;
	struct io_uring ring;

	if (io_uring_queue_init(256, &ring, 0))
		exit(2);
	for (i = 0; i < srv->conns; i++) {
		u[i].sock = SYS(accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC));
		if (u[i].sock < 0)
			exit(2);
		u[i].buf = malloc(BUFSZ);
		u_recv_hdr(&ring, &u[i], i);
	}
	while (live) {
		struct io_uring_cqe *cqe;
		unsigned int head, seen = 0;

		SYS(io_uring_submit_and_wait(&ring, 1));
		io_uring_for_each_cqe(&ring, head, cqe) {
			int idx = cqe->user_data >> 8;

			seen++;
			if (u[idx].sock < 0)
				continue;
			if (!u_handle(&ring, srv, &u[idx], idx, cqe->user_data & 0xff,
				      cqe->res, cqe->flags)) {
				close(u[idx].sock);
				free(u[idx].buf);
				u[idx].sock = -1;
				live--;
			}
		}
		io_uring_cq_advance(&ring, seen);
		if (!(++polls & 63))
			note_iowq_workers();
	}
	/* idle workers linger for seconds: this sees any the run started */
	note_iowq_workers();
	io_uring_queue_exit(&ring);
	free(u);
	atomic_fetch_add(&srv->syscalls, nr_syscalls);
}

static int server_main(const char *dir, const char *wb, const char *rb,
		       int listen_fd, int conns, int stats_fd)
{
	struct server srv = { .wb = wb, .rb = rb, .listen_fd = listen_fd,
			      .conns = conns };
	char path[512];
	int i;

	for (i = 0; i < MAX_FILES; i++) {
		snprintf(path, sizeof(path), "%s/f%d", dir, i);
		srv.files[i] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (srv.files[i] < 0)
			return 2;
	}
	if (is(wb, "uring") || is(wb, "uring-rw") || is(rb, "uring") ||
	    is(rb, "uring-notif"))
		serve_uring(&srv);
	else
		serve_threads(&srv);
	dprintf(stats_fd, "%ld %ld %ld %ld %ld %d\n", (long)srv.requests,
		(long)srv.bytes, (long)srv.syscalls, (long)srv.notifs,
		(long)srv.errors, max_workers);
	return 0;
}

/* ---- client ------------------------------------------------------------ */

struct client {
	pthread_t th;
	struct sockaddr_in addr;
	int op, file_id, sock;
	uint32_t payload;
	long requests;
	uint64_t window;	/* offsets cycle within this many bytes */
	char *buf;
	int failed;
	int verify_seed;	/* check mode: pattern seed, 0 = don't check */
};

static uint8_t pattern(int seed, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9e3779b97f4a7c15ULL + seed;

	return (uint8_t)((x ^ (x >> 29)) >> (8 * (off & 7)));
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	long r;

	for (r = 0; r < cl->requests; r++) {
		struct fsrv_hdr h = {
			.magic = FSRV_MAGIC, .op = cl->op, .file_id = cl->file_id,
			.length = cl->payload,
			.offset = (r * (uint64_t)cl->payload) % cl->window,
		};
		struct fsrv_hdr rep;

		if (cl->op == OP_WRITE && cl->verify_seed) {
			uint32_t k;

			for (k = 0; k < cl->payload; k++)
				cl->buf[k] = pattern(cl->verify_seed, h.offset + k);
		}
		if (send_all(cl->sock, &h, sizeof(h), cl->op == OP_WRITE ? MSG_MORE : 0))
			goto fail;
		if (cl->op == OP_WRITE) {
			if (send_all(cl->sock, cl->buf, cl->payload, 0) ||
			    recv_exact(cl->sock, &rep, sizeof(rep)))
				goto fail;
			if (rep.status != (int32_t)cl->payload)
				goto fail;
		} else {
			if (recv_exact(cl->sock, &rep, sizeof(rep)) ||
			    rep.status != (int32_t)cl->payload ||
			    recv_exact(cl->sock, cl->buf, cl->payload))
				goto fail;
			if (cl->verify_seed) {
				uint32_t k;

				for (k = 0; k < cl->payload; k++)
					if ((uint8_t)cl->buf[k] !=
					    pattern(cl->verify_seed, h.offset + k))
						goto fail;
			}
		}
	}
	return NULL;
fail:
	cl->failed = 1;
	return NULL;
}

/* ---- driver ------------------------------------------------------------ */

static int peer_ns = -1, self_ns = -1, init_ns = -1;
static bool have_nic;

#define NIC_MTU		"61440"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/*
 * The two virtio-net ports of scripts/vm-run.sh --nic-pair (eth0, eth1 in
 * the initial namespace): eth1 goes to the server's namespace (@pid's),
 * eth0 stays with the client in the initial one. The hub has no offloads,
 * so a large MTU keeps the per-packet cost of software checksums and
 * segmentation down.
 */
static bool setup_nic(pid_t pid)
{
	bool ok;

	if (access("/sys/class/net/eth0", F_OK) || access("/sys/class/net/eth1", F_OK))
		return false;
	if (setns(init_ns, CLONE_NEWNET))
		return false;
	ok = !sh("ip link set eth1 netns %d && ip link set eth0 mtu " NIC_MTU
		 " && ip addr add 10.79.0.1/24 dev eth0 && ip link set eth0 up", pid);
	if (setns(peer_ns, CLONE_NEWNET))
		return false;
	ok = ok && !sh("ip link set eth1 mtu " NIC_MTU
		       " && ip addr add 10.79.0.2/24 dev eth1 && ip link set eth1 up");
	if (setns(self_ns, CLONE_NEWNET))
		return false;
	return ok;
}

/*
 * A veth pair to a second network namespace, as in the selftests, and the
 * virtio-net pair if the VM has one.
 */
static int setup_veth(void)
{
	int p[2];
	pid_t pid;
	char c, path[64];

	init_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (init_ns < 0 || unshare(CLONE_NEWNET) || pipe(p))
		return -1;
	self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (sh("ip link set lo up && ip link add vA type veth peer name vB"))
		return -1;
	pid = fork();
	if (!pid) {
		if (unshare(CLONE_NEWNET) || write(p[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	if (read(p[0], &c, 1) != 1)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	peer_ns = open(path, O_RDONLY | O_CLOEXEC);
	sh("ip link set vB netns %d", pid);
	have_nic = setup_nic(pid);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	if (sh("ip addr add 10.78.0.1/24 dev vA && ip link set vA up"))
		return -1;
	if (setns(peer_ns, CLONE_NEWNET) ||
	    sh("ip link set lo up && ip addr add 10.78.0.2/24 dev vB && ip link set vB up") ||
	    setns(self_ns, CLONE_NEWNET))
		return -1;
	return 0;
}

/* A TCP socket created in network namespace @ns (-1: the current one). */
static int socket_in(int ns)
{
	int fd;

	if (ns >= 0 && setns(ns, CLONE_NEWNET))
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ns >= 0 && setns(self_ns, CLONE_NEWNET)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int listen_on(const char *net, struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd;

	fd = socket_in(strcmp(net, "lo") ? peer_ns : -1);
	if (fd < 0)
		return -1;
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)addr, &len))
		return -1;
	addr->sin_addr.s_addr = inet_addr(!strcmp(net, "veth") ? "10.78.0.2" :
					  !strcmp(net, "nic") ? "10.79.0.2" : "127.0.0.1");
	return fd;
}

/* The client's side of @net: the initial namespace for the NIC pair. */
static int client_socket(const char *net)
{
	return socket_in(!strcmp(net, "nic") ? init_ns : -1);
}

struct run {
	const char *dir;	/* server's file directory */
	const char *net;	/* lo, veth or nic */
	int op, conns;
	uint32_t payload;
	uint64_t total;		/* payload bytes per run, all connections */
	const char *wb, *rb;
	int verify_seed;
	/* results */
	double mbps, sys_per_gib, syscalls_per_req;
	long notifs, errors, requests;
	int workers;
};

/* Fork a server for @r; returns its pid and the read end of its stats pipe. */
static pid_t start_server(struct run *r, struct sockaddr_in *addr, int *stats)
{
	int lfd, sp[2];
	pid_t pid;

	lfd = listen_on(r->net, addr);
	if (lfd < 0 || pipe(sp))
		return -1;
	pid = fork();
	if (!pid) {
		close(sp[0]);
		/* its own name, so that a profile can tell it from the client */
		prctl(PR_SET_NAME, "fsrv-server");
		_exit(server_main(r->dir, r->wb, r->rb, lfd, r->conns, sp[1]));
	}
	close(sp[1]);
	close(lfd);
	*stats = sp[0];
	return pid;
}

/* Reap the server: its CPU time and the counts it reported. */
static int finish_server(struct run *r, pid_t pid, int stats, long *bytes,
			 long *sysc, double *stime)
{
	struct rusage ru;
	char line[256];
	int status, ret = 0;
	FILE *f;

	if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		ret = -1;
	f = fdopen(stats, "r");
	if (!f || !fgets(line, sizeof(line), f) ||
	    sscanf(line, "%ld %ld %ld %ld %ld %d", &r->requests, bytes, sysc,
		   &r->notifs, &r->errors, &r->workers) != 6)
		ret = -1;
	if (f)
		fclose(f);
	*stime = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	return ret;
}

static int do_run(struct run *r)
{
	struct client cl[MAX_CONNS];
	struct sockaddr_in addr;
	int stats, i, failed = 0;
	long bytes, sysc;
	double t0, secs, stime;
	pid_t pid;

	pid = start_server(r, &addr, &stats);
	if (pid < 0)
		return -1;

	memset(cl, 0, sizeof(cl));
	for (i = 0; i < r->conns; i++) {
		uint32_t k;

		cl[i].op = r->op;
		cl[i].file_id = i;
		cl[i].payload = r->payload;
		cl[i].requests = (r->total / r->conns + r->payload - 1) / r->payload;
		if (cl[i].requests < 1)
			cl[i].requests = 1;
		cl[i].window = ((32ULL << 20) / r->payload) * r->payload ?: r->payload;
		cl[i].buf = malloc(r->payload);
		cl[i].verify_seed = r->verify_seed ? r->verify_seed + i : 0;
		for (k = 0; k < r->payload; k++)
			cl[i].buf[k] = pattern(cl[i].verify_seed ?: 1, k);
		cl[i].sock = client_socket(r->net);
		if (connect(cl[i].sock, (struct sockaddr *)&addr, sizeof(addr)))
			return -1;
	}
	t0 = now();
	for (i = 0; i < r->conns; i++)
		pthread_create(&cl[i].th, NULL, client_main, &cl[i]);
	for (i = 0; i < r->conns; i++) {
		pthread_join(cl[i].th, NULL);
		failed |= cl[i].failed;
	}
	secs = now() - t0;
	for (i = 0; i < r->conns; i++) {
		close(cl[i].sock);
		free(cl[i].buf);
	}
	if (finish_server(r, pid, stats, &bytes, &sysc, &stime) || failed)
		return -1;
	r->mbps = bytes / secs / 1e6;
	r->sys_per_gib = stime / (bytes / (double)(1 << 30));
	r->syscalls_per_req = r->requests ? (double)sysc / r->requests : 0;
	return 0;
}

/* Fill each connection's file so that READs find data. */
static int prefill(const char *dir, int conns, int seed_base)
{
	size_t len = 32 << 20;
	char *buf = malloc(len), path[512];
	int i;

	for (i = 0; i < conns; i++) {
		size_t k;
		int fd;

		snprintf(path, sizeof(path), "%s/f%d", dir, i);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		for (k = 0; k < len; k++)
			buf[k] = pattern(seed_base ? seed_base + i : 1, k);
		if (fd < 0 || pwrite(fd, buf, len, 0) != (ssize_t)len)
			return -1;
		close(fd);
	}
	free(buf);
	return 0;
}

static double memcpy_gbps(void)
{
	size_t len = 64 << 20;
	char *a = malloc(len), *b = malloc(len);
	double best = 0;
	int i;

	memset(a, 1, len);
	memset(b, 2, len);
	for (i = 0; i < 5; i++) {
		double t0 = now(), s;

		memcpy(b, a, len);
		s = now() - t0;
		if (len / s / 1e9 > best)
			best = len / s / 1e9;
	}
	free(a);
	free(b);
	return best;
}

static const char * const write_backends[] = {
	"rw", "splice", "recvfile", "uring-rw", "uring", NULL
};

static const char * const read_backends[] = {
	"rw", "sendfile", "splice", "sendfile-notif", "uring", "uring-notif", NULL
};

static bool no_recvfile;

/*
 * recvfile(2)'s number is provisional until it is merged: check that it is
 * recvfile that answers there (flags checked first, EINVAL; then the
 * descriptors, EBADF) before a back end uses it.
 */
static bool have_recvfile(void)
{
	if (syscall(__NR_recvfile, -1, -1, NULL, 0, 0) != -1 || errno != EBADF)
		return false;
	return syscall(__NR_recvfile, -1, -1, NULL, 0, ~0U) == -1 &&
	       errno == EINVAL;
}

static bool usable(const char *backend)
{
	return !(no_recvfile && is(backend, "recvfile"));
}

static bool listed(const char *list, const char *name)
{
	char buf[256], *tok, *save;

	if (!list)
		return true;
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (is(tok, name))
			return true;
	return false;
}

static uint32_t parse_size(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*end == 'k' || *end == 'K')
		v <<= 10;
	else if (*end == 'm' || *end == 'M')
		v <<= 20;
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAX_ROUNDS 16

struct cell {
	const char *backend;
	double mbps[MAX_ROUNDS], sys[MAX_ROUNDS], sysc[MAX_ROUNDS];
	double med_mbps, med_sys, med_sysc;
	long notifs;
	int workers, n;
};

/* What bench() was asked for, shared by every point of the table. */
struct bench_opts {
	const char *dir, *wsel, *rsel;
	uint64_t total;
	int rounds;
	FILE *dat;
};

/* One point of the table: an op over one network, payload and conns. */
struct point {
	int dirn;		/* 0: WRITE, 1: READ */
	const char *net, *payload, *conns;
};

/* Run every back end of @cells at @pt, @o->rounds times, interleaved. */
static int run_point(const struct bench_opts *o, const struct point *pt,
		     struct cell *cells, int nb)
{
	int b, rd;

	for (rd = 0; rd < o->rounds; rd++) {
		for (b = 0; b < nb; b++) {
			struct run r = {
				.dir = o->dir, .net = pt->net,
				.op = pt->dirn ? OP_READ : OP_WRITE,
				.conns = atoi(pt->conns),
				.payload = parse_size(pt->payload),
				.total = o->total,
				.wb = pt->dirn ? "rw" : cells[b].backend,
				.rb = pt->dirn ? cells[b].backend : "rw",
			};

			if (r.conns < 1 || r.conns > MAX_CONNS)
				return 2;
			if (do_run(&r)) {
				fprintf(stderr, "fsrv: %s %s failed\n",
					pt->dirn ? "READ" : "WRITE",
					cells[b].backend);
				return 1;
			}
			cells[b].mbps[rd] = r.mbps;
			cells[b].sys[rd] = r.sys_per_gib;
			cells[b].sysc[rd] = r.syscalls_per_req;
			cells[b].notifs += r.notifs;
			if (r.workers > cells[b].workers)
				cells[b].workers = r.workers;
			cells[b].n++;
		}
	}
	return 0;
}

/* Print the rows of @pt: one per back end, to the table and the data file. */
static void print_point(const struct bench_opts *o, const struct point *pt,
			struct cell *cells, int nb)
{
	const char *op = pt->dirn ? "READ" : "WRITE";
	const char *base2 = pt->dirn ? "sendfile" : "splice";
	double rw_mbps = 0, rw_sys = 0, b2_mbps = 0;
	int b;

	for (b = 0; b < nb; b++) {
		cells[b].med_mbps = median(cells[b].mbps, o->rounds);
		cells[b].med_sys = median(cells[b].sys, o->rounds);
		cells[b].med_sysc = median(cells[b].sysc, o->rounds);
		if (is(cells[b].backend, "rw")) {
			rw_mbps = cells[b].med_mbps;
			rw_sys = cells[b].med_sys;
		}
		if (is(cells[b].backend, base2))
			b2_mbps = cells[b].med_mbps;
	}
	for (b = 0; b < nb; b++) {
		const struct cell *x = &cells[b];
		char note[64] = "";

		if (strstr(x->backend, "notif"))
			snprintf(note, sizeof(note), "%ld completions",
				 x->notifs);
		else if (!strncmp(x->backend, "uring", 5))
			snprintf(note, sizeof(note), "io-wq workers seen: %d",
				 x->workers);
		printf("| %s | %s | %s | %s | %s | %.1f | %.2f | %.1f | %.2fx | %.2fx | %s |\n",
		       op, pt->net, pt->payload, pt->conns,
		       x->backend, x->med_mbps, x->med_sys, x->med_sysc,
		       rw_mbps ? x->med_mbps / rw_mbps : 0,
		       b2_mbps ? x->med_mbps / b2_mbps : 0,
		       note);
		if (o->dat)
			fprintf(o->dat, "%s %s %s %s %s %.2f %.3f %.2f %.3f\n",
				op, pt->net, pt->payload, pt->conns,
				x->backend, x->med_mbps, x->med_sys, x->med_sysc,
				rw_sys ? x->med_sys / rw_sys : 0);
	}
	fflush(stdout);
}

/* Measure and print one point: every selected back end of its op. */
static int bench_point(const struct bench_opts *o, const struct point *pt)
{
	const char * const *names = pt->dirn ? read_backends : write_backends;
	const char *sel = pt->dirn ? o->rsel : o->wsel;
	struct cell cells[8] = {};
	int nb = 0, b, ret;

	for (b = 0; names[b]; b++)
		if (listed(sel, names[b]) && usable(names[b]))
			cells[nb++].backend = names[b];
	ret = run_point(o, pt, cells, nb);
	if (ret)
		return ret;
	print_point(o, pt, cells, nb);
	return 0;
}

/* @nets without the NIC pair if this VM has none; into @buf. */
static const char *available_nets(const char *nets, char *buf, size_t size)
{
	char list[64], *n, *ns;
	size_t used = 0;

	snprintf(list, sizeof(list), "%s", nets);
	buf[0] = '\0';
	for (n = strtok_r(list, ",", &ns); n; n = strtok_r(NULL, ",", &ns)) {
		if (!strcmp(n, "nic") && !have_nic) {
			fprintf(stderr, "fsrv: no virtio-net pair, no nic runs\n");
			continue;
		}
		used += snprintf(buf + used, size - used, "%s%s", used ? "," : "", n);
		if (used >= size)
			return "";
	}
	return buf;
}

static int bench(int argc, char **argv)
{
	const char *payloads = "64k,1m,8m", *conns_list = "1,4,16", *nets = "lo,veth,nic";
	const char *datafile = NULL;
	struct bench_opts o = {
		.dir = "/tmp/fsrv", .total = 128ULL << 20, .rounds = 3,
	};
	struct point pt;
	int opt, ret, max_conns = 0;
	double gbps;
	char pbuf[256], cbuf[64], nbuf[64], nets_buf[64], *p, *ps, *c, *cs, *n, *ns;

	while ((opt = getopt(argc, argv, "s:r:p:c:n:W:R:d:D:")) != -1) {
		switch (opt) {
		case 's':
			o.total = strtoull(optarg, NULL, 0) << 20;
			break;
		case 'r':
			o.rounds = atoi(optarg);
			break;
		case 'p':
			payloads = optarg;
			break;
		case 'c':
			conns_list = optarg;
			break;
		case 'n':
			nets = optarg;
			break;
		case 'W':
			o.wsel = optarg;
			break;
		case 'R':
			o.rsel = optarg;
			break;
		case 'd':
			o.dir = optarg;
			break;
		case 'D':
			datafile = optarg;
			break;
		default:
			return 2;
		}
	}
	if (o.rounds < 1 || o.rounds > MAX_ROUNDS || strlen(conns_list) >= sizeof(cbuf))
		return 2;
	mkdir(o.dir, 0755);
	if (strcmp(nets, "lo") && setup_veth()) {
		fprintf(stderr, "fsrv: no veth/netns here, loopback only\n");
		nets = "lo";
	}
	nets = available_nets(nets, nets_buf, sizeof(nets_buf));
	if (!*nets)
		return 2;
	snprintf(cbuf, sizeof(cbuf), "%s", conns_list);
	for (c = strtok_r(cbuf, ",", &cs); c; c = strtok_r(NULL, ",", &cs))
		if (atoi(c) > max_conns)
			max_conns = atoi(c);
	if (max_conns < 1 || max_conns > MAX_CONNS) {
		fprintf(stderr, "fsrv: 1..%d connections\n", MAX_CONNS);
		return 2;
	}
	if (prefill(o.dir, max_conns, 0)) {
		perror("fsrv: prefill");
		return 1;
	}
	if (datafile)
		o.dat = fopen(datafile, "w");
	gbps = memcpy_gbps();
	printf("memcpy, one thread: %.2f GB/s = %.2f s per GiB (the one-copy limit)\n",
	       gbps, (1 << 30) / (gbps * 1e9));
	printf("%llu MiB per run, %d rounds interleaved; ratios are of medians within this run\n\n",
	       (unsigned long long)(o.total >> 20), o.rounds);
	printf("| op | net | payload | conns | back end | MB/s | sys s/GiB | syscalls/req |");
	printf(" vs rw | vs splice/sendfile | notes |\n");
	printf("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|\n");

	for (pt.dirn = 0; pt.dirn < 2; pt.dirn++) {
		snprintf(nbuf, sizeof(nbuf), "%s", nets);
		for (n = strtok_r(nbuf, ",", &ns); n; n = strtok_r(NULL, ",", &ns)) {
			pt.net = n;
			snprintf(pbuf, sizeof(pbuf), "%s", payloads);
			for (p = strtok_r(pbuf, ",", &ps); p; p = strtok_r(NULL, ",", &ps)) {
				pt.payload = p;
				snprintf(cbuf, sizeof(cbuf), "%s", conns_list);
				for (c = strtok_r(cbuf, ",", &cs); c;
				     c = strtok_r(NULL, ",", &cs)) {
					pt.conns = c;
					ret = bench_point(&o, &pt);
					if (ret)
						return ret;
				}
			}
		}
	}
	if (o.dat)
		fclose(o.dat);
	return 0;
}

static int enospc_check(const char *dir, const char *wb)
{
	struct run r = {
		.dir = dir, .net = "lo", .op = OP_WRITE, .conns = 1, .wb = wb, .rb = "rw",
	};
	struct fsrv_hdr h = { .magic = FSRV_MAGIC, .op = OP_WRITE, .length = 8 << 20 };
	struct sockaddr_in addr;
	int stats, sock, ret = -1;
	double stime;
	long bytes, sysc;
	uint32_t k;
	char *buf = malloc(8 << 20);
	pid_t pid;

	sh("rm -f %s/f*", dir);
	pid = start_server(&r, &addr, &stats);
	if (pid < 0)
		return -1;
	for (k = 0; k < h.length; k++)
		buf[k] = pattern(7, k);
	sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) ||
	    send_all(sock, &h, sizeof(h), MSG_MORE) || send_all(sock, buf, h.length, 0) ||
	    recv_exact(sock, &h, sizeof(h)) || h.status != -ENOSPC)
		goto out;
	h.op = OP_READ;
	h.length = 64 << 10;
	h.status = 0;
	if (send_all(sock, &h, sizeof(h), 0) || recv_exact(sock, &h, sizeof(h)) ||
	    h.status != 64 << 10 || recv_exact(sock, buf, h.length))
		goto out;
	for (k = 0; k < h.length; k++)
		if ((uint8_t)buf[k] != pattern(7, k))
			goto out;
	ret = 0;
out:
	close(sock);
	if (finish_server(&r, pid, stats, &bytes, &sysc, &stime))
		ret = -1;
	free(buf);
	return ret;
}

/*
 * Correctness of every back end: WRITE a pattern and READ it back through
 * each READ back end; then a WRITE into a full filesystem must be refused
 * with ENOSPC and leave the stream in sync for the next request.
 */
static int run_checks(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp/fsrv-check";
	char small[300];
	int b, fails = 0;

	mkdir(dir, 0755);
	for (b = 0; write_backends[b]; b++) {
		struct run w = { .dir = dir, .net = "lo", .op = OP_WRITE, .conns = 4,
				 .payload = 1 << 20, .total = 8 << 20,
				 .wb = write_backends[b], .rb = "rw",
				 .verify_seed = 100 + 10 * b };
		int k;

		if (!usable(write_backends[b]))
			continue;
		if (prefill(dir, 4, 0) || do_run(&w) || w.errors) {
			printf("not ok WRITE %s\n", write_backends[b]);
			fails++;
			continue;
		}
		for (k = 0; read_backends[k]; k++) {
			struct run r = w;

			r.op = OP_READ;
			r.wb = "rw";
			r.rb = read_backends[k];
			if (do_run(&r) || r.errors) {
				printf("not ok WRITE %s, READ %s: data differs\n",
				       write_backends[b], read_backends[k]);
				fails++;
			}
		}
		printf("ok WRITE %s, READ back with every back end\n", write_backends[b]);
	}

	/*
	 * ENOSPC: an 8 MiB WRITE into a 4 MiB tmpfs is answered -ENOSPC, and
	 * a READ on the same connection then gets a valid header and the
	 * start of what was written: the server drained exactly the payload.
	 */
	snprintf(small, sizeof(small), "%s/small", dir);
	mkdir(small, 0755);
	if (mount("tmpfs", small, "tmpfs", 0, "size=4m")) {
		printf("# no tmpfs mount here, ENOSPC check skipped\n");
		return fails ? 1 : 0;
	}
	for (b = 0; write_backends[b]; b++) {
		if (!usable(write_backends[b]))
			continue;
		if (enospc_check(small, write_backends[b])) {
			printf("not ok ENOSPC %s\n", write_backends[b]);
			fails++;
		} else {
			printf("ok ENOSPC %s: -ENOSPC, the next request on the connection works\n",
			       write_backends[b]);
		}
	}
	umount(small);
	return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	no_recvfile = !have_recvfile();
	if (no_recvfile)
		fprintf(stderr, "fsrv: no recvfile(2) at %d here: back end skipped\n",
			__NR_recvfile);
	if (argc > 1 && is(argv[1], "bench"))
		return bench(argc - 1, argv + 1);
	if (argc > 1 && is(argv[1], "check"))
		return run_checks(argc - 1, argv + 1);
	fprintf(stderr, "usage: fsrv bench [options] | fsrv check [dir]\n");
	return 2;
}
