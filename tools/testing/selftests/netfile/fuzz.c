// SPDX-License-Identifier: GPL-2.0
/*
 * Bounded random checks of recvfile(2), splice(2) without a pipe and
 * IORING_OP_SPLICE, over a pool of descriptors of every kind (files opened
 * every way, pipes, sockets in every state, memfds with seals, eventfd,
 * /dev/null, closed and impossible numbers), odd offsets (NULL, negative,
 * near LLONG_MAX, an unmapped pointer), odd counts and junk flags.
 *
 * After every call:
 *  - a failure has an errno from a known set; any other errno fails the
 *    test, listed with the first call that produced it;
 *  - a success moved no more than was asked, and only between descriptors
 *    that can do it (recvfile: a writable regular file from TCP);
 *  - offsets and file positions advanced by exactly the bytes moved;
 *  - when the input was the TCP connection with K known bytes queued, the
 *    bytes moved plus the bytes still readable make K, the rest is the
 *    pattern in order, and the file holds exactly the bytes moved.
 * Through io_uring every request gets one result CQE, and one notification
 * CQE exactly when the result had IORING_CQE_F_MORE (SPLICE_F_NOTIF).
 * Last, the same conservation under injected allocation failures (failslab
 * and fail_page_alloc, restricted to one task with make-it-fail).
 *
 * Nothing may block: every socket but the data connection is O_NONBLOCK,
 * and that one is only read with MSG_DONTWAIT / SPLICE_F_NONBLOCK on
 * the recvfile path or made O_NONBLOCK for the call.
 *
 * NETFILE_FUZZ_SEED=<n> replays the same choices (the seed is logged).
 * Without it the seeds are fixed, so that a CI run is reproducible; with
 * NETFILE_FUZZ_SEED=random or NETFILE_SOAK they are new every run, and
 * NETFILE_SOAK runs ten times longer.
 */
#include "netfile_util.h"

#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/*
 * The harness is not -Wextra clean: an unused handler argument, and the
 * TEST_F() wrapper's locals around its setjmp() (this file has no other).
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "../kselftest_harness.h"
#pragma GCC diagnostic pop
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wclobbered"
#endif

#ifndef SPLICE_F_NOTIF
#define SPLICE_F_NOTIF		0x40000000U	/* bit 30 */
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED	0x80000000U	/* bit 31 */
#endif

#define SPLICE_F_ALL_USER	(SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | \
				 SPLICE_F_GIFT)
#define RW_COUNT_MAX		((size_t)(INT_MAX & ~4095))	/* MAX_RW_COUNT, 4K pages */
#define DATA_MAX		(32 << 10)	/* queued on the data connection */
#define FAULT_MAX		(256 << 10)	/* one transfer under fault injection */
#define BUF_SIZE		(256 << 10)	/* scratch buffer */
#define FILE_TRIM		(64 << 20)	/* truncate pool files grown past this */
#define MAX_REPORTS		20
#define BUDGET_S		360		/* per fuzz test, below the timeout */
#define BATCH			16
#define RING_DEPTH		32

/* xorshift64*: cheap and reproducible from the logged seed. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t fuzz_seed(void)
{
	const char *env = getenv("NETFILE_FUZZ_SEED");
	static uint64_t fixed = 20261122;

	if (env && *env && strcmp(env, "random"))
		return strtoull(env, NULL, 0);
	if (!env && !getenv("NETFILE_SOAK"))
		return fixed++;
	return (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

/* ---- the descriptor pool --------------------------------------------------- */

enum kind {
	K_FILE,			/* tmpfs file, O_RDWR */
	K_FILE_RO,		/* the same inode, O_RDONLY */
	K_FILE_APPEND,		/* the same inode, O_RDWR | O_APPEND */
	K_PATH,			/* the same inode, O_PATH */
	K_DIR,
	K_PIPE_R,
	K_PIPE_W,
	K_TCP_DATA,		/* connected, DATA_MAX or fewer known bytes queued */
	K_TCP_EMPTY,		/* connected, nothing queued, O_NONBLOCK */
	K_TCP_UNCONN,
	K_TCP_LISTEN,
	K_UDP,
	K_UNIX,			/* AF_UNIX stream, with data */
	K_EVENTFD,
	K_MEMFD,
	K_MEMFD_SEAL_WRITE,
	K_MEMFD_SEAL_GROW,
	K_DEVNULL,
	K_CLOSED,		/* a number that is not open */
	K_MINUS1,
	K_HUGE,
	NR_KINDS
};

static const char * const kind_name[NR_KINDS] = {
	[K_FILE] = "file", [K_FILE_RO] = "file-ro", [K_FILE_APPEND] = "file-append",
	[K_PATH] = "O_PATH", [K_DIR] = "dir", [K_PIPE_R] = "pipe-r",
	[K_PIPE_W] = "pipe-w", [K_TCP_DATA] = "tcp-data", [K_TCP_EMPTY] = "tcp-empty",
	[K_TCP_UNCONN] = "tcp-unconnected", [K_TCP_LISTEN] = "tcp-listen",
	[K_UDP] = "udp", [K_UNIX] = "unix", [K_EVENTFD] = "eventfd",
	[K_MEMFD] = "memfd", [K_MEMFD_SEAL_WRITE] = "memfd-seal-write",
	[K_MEMFD_SEAL_GROW] = "memfd-seal-grow", [K_DEVNULL] = "/dev/null",
	[K_CLOSED] = "closed", [K_MINUS1] = "-1", [K_HUGE] = "INT_MAX",
};

#define KB(k)		(1U << (k))
#define ALL_KINDS	(KB(NR_KINDS) - 1)
/* one inode, several open files */
#define TMPFILE_KINDS	(KB(K_FILE) | KB(K_FILE_RO) | KB(K_FILE_APPEND) | KB(K_PATH))
#define MEMFD_KINDS	(KB(K_MEMFD) | KB(K_MEMFD_SEAL_WRITE) | KB(K_MEMFD_SEAL_GROW))
/* regular files with a file position */
#define FILE_KINDS	(KB(K_FILE) | KB(K_FILE_RO) | KB(K_FILE_APPEND) | MEMFD_KINDS)
#define TCP_KINDS	(KB(K_TCP_DATA) | KB(K_TCP_EMPTY) | KB(K_TCP_UNCONN) | \
			 KB(K_TCP_LISTEN))
#define SOCK_KINDS	(TCP_KINDS | KB(K_UDP) | KB(K_UNIX))
#define BADFD_KINDS	(KB(K_PATH) | KB(K_CLOSED) | KB(K_MINUS1) | KB(K_HUGE))
#define NOREAD_KINDS	(BADFD_KINDS | KB(K_PIPE_W))
#define NOWRITE_KINDS	(BADFD_KINDS | KB(K_PIPE_R) | KB(K_FILE_RO) | KB(K_DIR))
/* what recvfile accepts as output, and what can store bytes */
#define RF_OUT_KINDS	(KB(K_FILE) | MEMFD_KINDS)
#define RF_STORE_KINDS	(KB(K_FILE) | KB(K_MEMFD) | KB(K_MEMFD_SEAL_GROW))

static bool is(int kind, unsigned int mask)
{
	return kind >= 0 && kind < NR_KINDS && (KB(kind) & mask);
}

struct pool {
	int fd[NR_KINDS];
	int data_peer, empty_peer, unix_peer;
	bool data_blocking;	/* K_TCP_DATA left blocking (syscall test) */
	uint64_t data_seed;	/* pattern queued on K_TCP_DATA ... */
	size_t data_len;	/* ... and how many bytes of it */
	char *buf;		/* BUF_SIZE scratch */
};

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
}

/* Bytes readable on a socket now. */
static int sock_inq(int fd)
{
	int n;

	return ioctl(fd, FIONREAD, &n) ? -errno : n;
}

/* Throw away what is queued on @fd now. */
static void discard_queued(int fd, char *buf)
{
	while (fd >= 0 && recv(fd, buf, BUF_SIZE, MSG_DONTWAIT) > 0)
		;
}

/* Read what is queued on @fd now, keeping at most @size bytes in @buf. */
static size_t read_queued(int fd, char *buf, size_t size)
{
	size_t got = 0;
	ssize_t n;

	while (got < size && (n = recv(fd, buf + got, size - got, MSG_DONTWAIT)) > 0)
		got += n;
	return got;
}

/*
 * A fresh data connection with a random number of known bytes queued (and
 * sometimes a FIN after them). Returns 0 or -errno.
 */
static int pool_new_data(struct pool *p, uint64_t *rng)
{
	size_t k = 1 + rnd(rng) % DATA_MAX;
	int c, s, ret, i;

	if (p->fd[K_TCP_DATA] >= 0)
		close(p->fd[K_TCP_DATA]);
	if (p->data_peer >= 0)
		close(p->data_peer);
	p->fd[K_TCP_DATA] = -1;
	p->data_peer = -1;
	ret = netfile_tcp_pair(AF_INET, &c, &s);
	if (ret)
		return ret;
	p->fd[K_TCP_DATA] = s;
	p->data_peer = c;
	if (!p->data_blocking && set_nonblock(s))
		return -errno;
	p->data_seed = rnd(rng);
	netfile_pattern_fill(p->buf, k, p->data_seed, 0);
	if (write(c, p->buf, k) != (ssize_t)k)
		return -EIO;
	if (rnd(rng) % 4 == 0 && shutdown(c, SHUT_WR))
		return -errno;
	/* loopback delivers at once; do not start before it all arrived */
	for (i = 0; i < 2000 && sock_inq(s) != (int)k; i++)
		usleep(1000);
	if (sock_inq(s) != (int)k)
		return -ETIMEDOUT;
	p->data_len = k;
	return 0;
}

static int reopen(int fd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, flags | O_CLOEXEC);
}

static int sealed_memfd(unsigned int seals, char *buf)
{
	int fd = memfd_create("netfile-fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -1;
	netfile_pattern_fill(buf, 65536, 7, 0);
	if (write(fd, buf, 65536) != 65536 || fcntl(fd, F_ADD_SEALS, seals)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int bound_socket(int type)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Open every kind; returns 0, or -1 with *@what naming the one that failed. */
static int pool_open(struct pool *p, bool data_blocking, uint64_t *rng,
		     const char **what)
{
	int k, pfd[2], sv[2];

	memset(p, 0, sizeof(*p));
	for (k = 0; k < NR_KINDS; k++)
		p->fd[k] = -1;
	p->data_peer = -1;
	p->empty_peer = -1;
	p->unix_peer = -1;
	p->data_blocking = data_blocking;
	p->buf = malloc(BUF_SIZE);
	*what = "buffer";
	if (!p->buf)
		return -1;
	memset(p->buf, 0, BUF_SIZE);

	*what = "tmpfile";
	p->fd[K_FILE] = netfile_tmpfile(NULL);
	if (p->fd[K_FILE] < 0)
		return -1;
	p->fd[K_FILE_RO] = reopen(p->fd[K_FILE], O_RDONLY);
	p->fd[K_FILE_APPEND] = reopen(p->fd[K_FILE], O_RDWR | O_APPEND);
	p->fd[K_PATH] = reopen(p->fd[K_FILE], O_PATH);
	p->fd[K_DIR] = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*what = "reopened files";
	if (p->fd[K_FILE_RO] < 0 || p->fd[K_FILE_APPEND] < 0 || p->fd[K_PATH] < 0 ||
	    p->fd[K_DIR] < 0)
		return -1;
	*what = "pipe";
	if (pipe2(pfd, O_NONBLOCK | O_CLOEXEC))
		return -1;
	p->fd[K_PIPE_R] = pfd[0];
	p->fd[K_PIPE_W] = pfd[1];
	if (write(pfd[1], p->buf, 4096) != 4096)
		return -1;

	*what = "data connection";
	if (pool_new_data(p, rng))
		return -1;
	*what = "empty connection";
	if (netfile_tcp_pair(AF_INET, &p->empty_peer, &p->fd[K_TCP_EMPTY]) ||
	    set_nonblock(p->fd[K_TCP_EMPTY]) || set_nonblock(p->empty_peer))
		return -1;
	*what = "sockets";
	p->fd[K_TCP_UNCONN] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	p->fd[K_TCP_LISTEN] = bound_socket(SOCK_STREAM);
	p->fd[K_UDP] = bound_socket(SOCK_DGRAM);
	if (p->fd[K_TCP_UNCONN] < 0 || p->fd[K_TCP_LISTEN] < 0 || p->fd[K_UDP] < 0 ||
	    listen(p->fd[K_TCP_LISTEN], 4))
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		return -1;
	p->fd[K_UNIX] = sv[0];
	p->unix_peer = sv[1];
	if (write(sv[1], p->buf, 4096) != 4096)
		return -1;

	*what = "eventfd, memfds or /dev/null";
	p->fd[K_EVENTFD] = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
	p->fd[K_MEMFD] = memfd_create("netfile-fuzz", MFD_CLOEXEC);
	p->fd[K_MEMFD_SEAL_WRITE] = sealed_memfd(F_SEAL_WRITE, p->buf);
	p->fd[K_MEMFD_SEAL_GROW] = sealed_memfd(F_SEAL_GROW, p->buf);
	p->fd[K_DEVNULL] = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (k = K_EVENTFD; k <= K_DEVNULL; k++)
		if (p->fd[k] < 0)
			return -1;

	/* A high number nothing will be given: fds are allocated lowest first. */
	*what = "closed fd";
	p->fd[K_CLOSED] = fcntl(p->fd[K_DEVNULL], F_DUPFD_CLOEXEC, 200);
	if (p->fd[K_CLOSED] < 0 || close(p->fd[K_CLOSED]))
		return -1;
	p->fd[K_MINUS1] = -1;
	p->fd[K_HUGE] = INT_MAX;
	return 0;
}

static void pool_close(struct pool *p)
{
	int k;

	for (k = 0; k < NR_KINDS; k++)
		if (!is(k, KB(K_CLOSED) | KB(K_MINUS1) | KB(K_HUGE)) && p->fd[k] >= 0)
			close(p->fd[k]);
	if (p->data_peer >= 0)
		close(p->data_peer);
	if (p->empty_peer >= 0)
		close(p->empty_peer);
	if (p->unix_peer >= 0)
		close(p->unix_peer);
	free(p->buf);
}

/* Read what the pool's sockets sent, so that sends (and their pages) drain. */
static void pool_drain_peers(struct pool *p)
{
	discard_queued(p->data_peer, p->buf);
	discard_queued(p->empty_peer, p->buf);
	discard_queued(p->unix_peer, p->buf);
}

/* Keep the pool interesting: data in the pipe and AF_UNIX, files bounded. */
static void pool_tend(struct pool *p, uint64_t *rng, long iter)
{
	struct stat st;
	int r = rnd(rng) % 16;

	pool_drain_peers(p);
	if (sock_inq(p->fd[K_UNIX]) < 1024 &&
	    send(p->unix_peer, p->buf, 4096, MSG_DONTWAIT) < 0 && errno != EAGAIN)
		perror("# refilling the AF_UNIX socket");
	if (r == 0)
		while (read(p->fd[K_PIPE_R], p->buf, BUF_SIZE) > 0)
			;
	else if (r == 1 && write(p->fd[K_PIPE_W], p->buf, 1 + rnd(rng) % 8192) < 0 &&
		 errno != EAGAIN)
		perror("# refilling the pipe");
	if (iter % 32)
		return;
	/* Offsets near LLONG_MAX make sparse files of any size: start over. */
	if (!fstat(p->fd[K_FILE], &st) && st.st_size > FILE_TRIM) {
		if (ftruncate(p->fd[K_FILE], 0))
			perror("# ftruncate");
		lseek(p->fd[K_FILE], 0, SEEK_SET);
		lseek(p->fd[K_FILE_RO], 0, SEEK_SET);
		lseek(p->fd[K_FILE_APPEND], 0, SEEK_SET);
	}
	if (!fstat(p->fd[K_MEMFD], &st) && st.st_size > FILE_TRIM) {
		if (ftruncate(p->fd[K_MEMFD], 0))
			perror("# ftruncate");
		lseek(p->fd[K_MEMFD], 0, SEEK_SET);
	}
}

/* The descriptor to read back what was written through @kind. */
static int readback_fd(struct pool *p, int kind)
{
	return is(kind, TMPFILE_KINDS) ? p->fd[K_FILE] : p->fd[kind];
}

/* The kinds that share storage (an inode) with @kind. */
static unsigned int same_inode(int kind)
{
	if (is(kind, TMPFILE_KINDS))
		return TMPFILE_KINDS;
	return is(kind, MEMFD_KINDS) ? KB(kind) : 0;
}

static int pick_from(uint64_t *rng, unsigned int mask)
{
	int n = __builtin_popcount(mask), i = rnd(rng) % n, k;

	for (k = 0; k < NR_KINDS; k++)
		if ((mask & KB(k)) && !i--)
			return k;
	return K_DEVNULL;
}

/* ---- findings ---------------------------------------------------------------- */

#define NR_ODD	16

struct fz {
	uint64_t seed, rng;
	long iter;
	unsigned int failures;
	struct {
		int err;
		unsigned int count;
		char first[240];	/* "step N: " and a call's description */
	} odd[NR_ODD];
	int nr_odd;
	unsigned long calls, successes, bytes, data_checks, masked;
};

static void fz_init(struct fz *f, uint64_t salt)
{
	memset(f, 0, sizeof(*f));
	f->seed = fuzz_seed();
	f->rng = (f->seed ^ salt) | 1;
}

static void __printf(2, 3)
fz_fail(struct fz *f, const char *fmt, ...)
{
	va_list ap;

	if (++f->failures > MAX_REPORTS)
		return;
	fprintf(stderr, "# seed %llu step %ld: ", (unsigned long long)f->seed, f->iter);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void fz_odd_errno(struct fz *f, int err, const char *what)
{
	int i;

	for (i = 0; i < f->nr_odd; i++) {
		if (f->odd[i].err == err) {
			f->odd[i].count++;
			return;
		}
	}
	if (f->nr_odd == NR_ODD)
		return;
	f->odd[i].err = err;
	f->odd[i].count = 1;
	snprintf(f->odd[i].first, sizeof(f->odd[i].first), "step %ld: %s", f->iter, what);
	f->nr_odd++;
}

static bool errno_allowed(int err, int out_kind)
{
	switch (err) {
	case EBADF: case EINVAL: case ESPIPE: case EAGAIN: case EFAULT:
	case EOVERFLOW: case EFBIG: case EPERM: case ENOTSOCK: case ENOTCONN:
	case EOPNOTSUPP: case EISDIR: case ENOSPC: case EINTR: case ENOTDIR:
	case EXDEV: case ETXTBSY: case ECONNRESET: case EPIPE: case ENOMEM:
		return true;
	}
	/* what sendmsg() says on an unconnected datagram socket */
	return out_kind == K_UDP && (err == EDESTADDRREQ || err == EMSGSIZE);
}

static void fz_report(struct __test_metadata *_metadata, struct fz *f)
{
	int i;

	for (i = 0; i < f->nr_odd; i++)
		TH_LOG("unexpected errno %d (%s), %u times; first at %s", f->odd[i].err,
		       strerror(f->odd[i].err), f->odd[i].count, f->odd[i].first);
	EXPECT_EQ(0, f->nr_odd) TH_LOG("seed %llu: unexpected errnos",
				       (unsigned long long)f->seed);
	EXPECT_EQ(0U, f->failures)
		TH_LOG("seed %llu: %u violations, the first %d above",
		       (unsigned long long)f->seed, f->failures, MAX_REPORTS);
}

/*
 * The data connection after a call that read it: bytes consumed must be
 * exactly what the call returned, the rest must be the pattern in order,
 * and bytes returned must be in the file at @start. Consumes the rest.
 */
static void check_data(struct fz *f, struct pool *p, const char *what, ssize_t ret,
		       size_t count, int out_kind, loff_t start)
{
	size_t k = p->data_len, moved = ret > 0 ? ret : 0;
	size_t rest = read_queued(p->fd[K_TCP_DATA], p->buf, BUF_SIZE);
	ssize_t bad;
	off_t at;

	f->data_checks++;
	if (moved + rest != k) {
		fz_fail(f, "%s: %zu moved + %zu still queued != %zu sent", what, moved, rest, k);
		return;
	}
	bad = netfile_pattern_check(p->buf, rest, p->data_seed, moved);
	if (bad >= 0)
		fz_fail(f, "%s: byte %zu of the stream left on the socket is wrong", what,
			moved + bad);
	/* the recvfile core: 0 is end of stream, never "the file took nothing" */
	if (ret == 0 && count && rest && is(out_kind, FILE_KINDS))
		fz_fail(f, "%s: returned 0 (end of stream) with %zu bytes queued", what, rest);
	if (!moved || !is(out_kind, FILE_KINDS))
		return;
	at = netfile_file_check(readback_fd(p, out_kind), start, moved, p->data_seed, 0);
	if (at != -1)
		fz_fail(f, "%s: file differs from the stream at offset %lld", what,
			(long long)at);
}

/* ---- recvfile(2) and splice(2) --------------------------------------------- */

enum api { API_RECVFILE, API_SPLICE };

enum off_sel {
	OFF_NULL, OFF_ZERO, OFF_SMALL, OFF_LLMAX, OFF_LLMAX_1, OFF_LLMAX_4K, OFF_NEG,
	OFF_BADPTR,
};

struct call {
	enum api api;
	int in, out;			/* kinds */
	enum off_sel in_sel, out_sel;
	loff_t off_in, off_out;		/* values passed (when a real pointer) */
	loff_t off_in0, off_out0;	/* ... and before the call */
	size_t count;
	unsigned int flags;
	bool tmp_nonblock;		/* K_TCP_DATA made O_NONBLOCK for the call */
	off_t pos_in0, pos_out0, pos_in1, pos_out1;
	ssize_t ret;
	int err;
	char what[200];
};

static enum off_sel pick_off(uint64_t *rng, loff_t *val)
{
	int r = rnd(rng) % 100;

	*val = 0;
	if (r < 25)
		return OFF_NULL;
	if (r < 40)
		return OFF_ZERO;
	if (r < 72) {
		*val = rnd(rng) % (1 << 20);
		return OFF_SMALL;
	}
	if (r < 77) {
		*val = LLONG_MAX;
		return OFF_LLMAX;
	}
	if (r < 82) {
		*val = LLONG_MAX - 1;
		return OFF_LLMAX_1;
	}
	if (r < 87) {
		*val = LLONG_MAX - 4096;
		return OFF_LLMAX_4K;
	}
	if (r < 97) {
		*val = r & 1 ? LLONG_MIN : -1 - (loff_t)(rnd(rng) % (1 << 20));
		return OFF_NEG;
	}
	return OFF_BADPTR;
}

static loff_t *off_ptr(enum off_sel sel, loff_t *val)
{
	if (sel == OFF_NULL)
		return NULL;
	return sel == OFF_BADPTR ? (loff_t *)1 : val;
}

static size_t pick_count(uint64_t *rng, size_t data_len)
{
	int r = rnd(rng) % 100;

	if (r < 3)
		return 0;
	if (r < 10)
		return 1;
	if (r < 50)
		return 1 + rnd(rng) % (1 << 20);
	if (r < 65)
		return data_len;
	if (r < 70)
		return SIZE_MAX;
	if (r < 75)
		return SSIZE_MAX;
	if (r < 80)
		return RW_COUNT_MAX;
	if (r < 85)
		return RW_COUNT_MAX + 1;
	if (r < 90)
		return (size_t)UINT_MAX + 1;
	return 1 + rnd(rng) % 65536;
}

/* Flags with at least one bit recvfile(2) does not take. */
static unsigned int junk_flags(uint64_t *rng, unsigned int valid)
{
	static const unsigned int junk[] = {
		1U << 31, (1U << 31) | MSG_DONTWAIT, 4, ~0U, 1U << 30,
	};
	unsigned int r = rnd(rng) % (ARRAY_SIZE(junk) + 1);
	unsigned int flags = r < ARRAY_SIZE(junk) ? junk[r] : (unsigned int)rnd(rng);

	return flags & ~valid ? flags : flags | MSG_OOB;
}

static void describe(struct call *c)
{
	char in[32], out[32];

	if (c->in_sel == OFF_NULL || c->in_sel == OFF_BADPTR)
		snprintf(in, sizeof(in), "%s", c->in_sel ? "(loff_t *)1" : "NULL");
	else
		snprintf(in, sizeof(in), "&%lld", (long long)c->off_in0);
	if (c->out_sel == OFF_NULL || c->out_sel == OFF_BADPTR)
		snprintf(out, sizeof(out), "%s", c->out_sel ? "(loff_t *)1" : "NULL");
	else
		snprintf(out, sizeof(out), "&%lld", (long long)c->off_out0);
	if (c->api == API_RECVFILE)
		snprintf(c->what, sizeof(c->what), "recvfile(%s, %s, %s, %zu, %#x)%s",
			 kind_name[c->out], kind_name[c->in], out, c->count, c->flags,
			 c->tmp_nonblock ? " on O_NONBLOCK" : "");
	else
		snprintf(c->what, sizeof(c->what), "splice(%s, %s, %s, %s, %zu, %#x)%s",
			 kind_name[c->in], in, kind_name[c->out], out, c->count, c->flags,
			 c->tmp_nonblock ? " on O_NONBLOCK" : "");
}

static void pick_call(struct fz *f, struct pool *p, struct call *c)
{
	uint64_t *rng = &f->rng;
	int r = rnd(rng) % 100;

	memset(c, 0, sizeof(*c));
	c->api = rnd(rng) & 1 ? API_SPLICE : API_RECVFILE;
	if (r < 40) {
		/* the case with a known answer: TCP with data into a file */
		c->in = K_TCP_DATA;
		c->out = rnd(rng) % 4 ? pick_from(rng, FILE_KINDS | KB(K_PIPE_W)) :
					pick_from(rng, ALL_KINDS);
	} else if (r < 55 && c->api == API_SPLICE) {
		/* file or pipe to a socket: what sendfile does */
		c->in = pick_from(rng, FILE_KINDS | KB(K_PIPE_R));
		c->out = pick_from(rng, SOCK_KINDS | KB(K_PIPE_W));
	} else {
		c->in = pick_from(rng, ALL_KINDS);
		c->out = pick_from(rng, ALL_KINDS);
	}

	c->in_sel = OFF_NULL;
	c->out_sel = OFF_NULL;
	if (c->api == API_SPLICE && rnd(rng) % 8 == 0) {
		c->in_sel = pick_off(rng, &c->off_in);
		c->out_sel = pick_off(rng, &c->off_out);
	} else if (c->api == API_SPLICE && is(c->in, FILE_KINDS)) {
		c->in_sel = pick_off(rng, &c->off_in);
	} else {
		c->out_sel = pick_off(rng, &c->off_out);
	}
	c->off_in0 = c->off_in;
	c->off_out0 = c->off_out;
	c->count = pick_count(rng, p->data_len);

	if (c->api == API_RECVFILE) {
		static const unsigned int menu[] = {
			0, MSG_DONTWAIT, MSG_WAITALL,
			MSG_DONTWAIT | MSG_WAITALL,
		};

		r = rnd(rng) % 5;
		c->flags = r < 4 ? menu[r] : junk_flags(rng, NETFILE_RECVFILE_FLAGS);
		/* the only blocking socket: never wait on it */
		if (c->in == K_TCP_DATA && p->data_blocking) {
			if (rnd(rng) & 1)
				c->flags |= MSG_DONTWAIT;
			else
				c->tmp_nonblock = true;
		}
	} else {
		c->flags = SPLICE_F_NONBLOCK |
			   (rnd(rng) & (SPLICE_F_MOVE | SPLICE_F_MORE | SPLICE_F_GIFT));
		if (rnd(rng) % 20 == 0)
			c->flags |= 1U << (4 + rnd(rng) % 28);
		/*
		 * SPLICE_F_NONBLOCK keeps the socket -> file path from waiting,
		 * but a socket's own splice_read and sendmsg only look at
		 * O_NONBLOCK.
		 */
		if (p->data_blocking && (c->in == K_TCP_DATA || c->out == K_TCP_DATA) &&
		    !(c->in == K_TCP_DATA && is(c->out, FILE_KINDS)))
			c->tmp_nonblock = true;
	}
	describe(c);
}

static void run_call(struct pool *p, struct call *c)
{
	int in = p->fd[c->in], out = p->fd[c->out], fl = 0;
	loff_t *pin = off_ptr(c->in_sel, &c->off_in);
	loff_t *pout = off_ptr(c->out_sel, &c->off_out);

	c->pos_in0 = is(c->in, FILE_KINDS) ? lseek(in, 0, SEEK_CUR) : 0;
	c->pos_out0 = is(c->out, FILE_KINDS) ? lseek(out, 0, SEEK_CUR) : 0;
	if (c->tmp_nonblock) {
		fl = fcntl(p->fd[K_TCP_DATA], F_GETFL);
		fcntl(p->fd[K_TCP_DATA], F_SETFL, fl | O_NONBLOCK);
	}
	errno = 0;
	if (c->api == API_RECVFILE)
		c->ret = netfile_recvfile(out, in, pout, c->count, c->flags);
	else
		c->ret = splice(in, pin, out, pout, c->count, c->flags);
	c->err = errno;
	if (c->tmp_nonblock)
		fcntl(p->fd[K_TCP_DATA], F_SETFL, fl);
	c->pos_in1 = is(c->in, FILE_KINDS) ? lseek(in, 0, SEEK_CUR) : 0;
	c->pos_out1 = is(c->out, FILE_KINDS) ? lseek(out, 0, SEEK_CUR) : 0;
}

/* What only a recvfile(2) that did its job can return. */
static void check_recvfile(struct fz *f, struct call *c)
{
	bool flags_ok = !(c->flags & ~NETFILE_RECVFILE_FLAGS);

	if (!flags_ok && !(c->ret == -1 && c->err == EINVAL))
		fz_fail(f, "%s = %zd (%s), not EINVAL for unknown flags", c->what, c->ret,
			strerror(c->err));
	else if (flags_ok && is(c->in, BADFD_KINDS) && !(c->ret == -1 && c->err == EBADF))
		fz_fail(f, "%s = %zd (%s), not EBADF for the input", c->what, c->ret,
			strerror(c->err));
	else if (flags_ok && !is(c->in, BADFD_KINDS) && is(c->out, BADFD_KINDS) &&
		 !(c->ret == -1 && c->err == EBADF))
		fz_fail(f, "%s = %zd (%s), not EBADF for the output", c->what, c->ret,
			strerror(c->err));
	if (c->out_sel == OFF_BADPTR && c->ret != -1)
		fz_fail(f, "%s = %zd with an unmapped offset pointer", c->what, c->ret);
	if (c->ret >= 0 && (!is(c->out, RF_OUT_KINDS) || !is(c->in, TCP_KINDS)))
		fz_fail(f, "%s = %zd: should have failed", c->what, c->ret);
	if (c->ret > 0 && (c->in != K_TCP_DATA || !is(c->out, RF_STORE_KINDS)))
		fz_fail(f, "%s = %zd: moved data it cannot have", c->what, c->ret);
	if (c->ret > (ssize_t)RW_COUNT_MAX)
		fz_fail(f, "%s = %zd: more than MAX_RW_COUNT", c->what, c->ret);
}

static void check_splice(struct fz *f, struct call *c)
{
	if (!c->count && c->ret != 0)
		fz_fail(f, "%s = %zd (%s) for a zero length", c->what, c->ret,
			strerror(c->err));
	if (!c->count)
		return;
	if (c->flags & ~SPLICE_F_ALL_USER && !(c->ret == -1 && c->err == EINVAL))
		fz_fail(f, "%s = %zd (%s), not EINVAL for unknown flags", c->what, c->ret,
			strerror(c->err));
	if ((c->in_sel == OFF_BADPTR || c->out_sel == OFF_BADPTR) && c->ret != -1)
		fz_fail(f, "%s = %zd with an unmapped offset pointer", c->what, c->ret);
	if (c->ret >= 0 && (is(c->in, NOREAD_KINDS) || is(c->out, NOWRITE_KINDS)))
		fz_fail(f, "%s = %zd: should have failed", c->what, c->ret);
}

/* Offsets and file positions move by exactly the bytes moved. */
static void check_positions(struct fz *f, struct call *c)
{
	loff_t moved = c->ret > 0 ? c->ret : 0;

	if (c->in_sel != OFF_NULL && c->in_sel != OFF_BADPTR &&
	    c->off_in != c->off_in0 + moved)
		fz_fail(f, "%s = %zd: input offset became %lld", c->what, c->ret,
			(long long)c->off_in);
	/* /dev/null's splice_write takes the bytes and leaves the offset */
	if (c->out_sel != OFF_NULL && c->out_sel != OFF_BADPTR &&
	    c->out != K_DEVNULL && c->off_out != c->off_out0 + moved)
		fz_fail(f, "%s = %zd: output offset became %lld", c->what, c->ret,
			(long long)c->off_out);
	/* one open file on both sides is refused; its position is unchanged */
	if (c->in == c->out)
		moved = 0;
	if (is(c->in, FILE_KINDS) && c->in_sel == OFF_NULL &&
	    c->pos_in1 != c->pos_in0 + moved)
		fz_fail(f, "%s = %zd: input position %lld -> %lld", c->what, c->ret,
			(long long)c->pos_in0, (long long)c->pos_in1);
	if (is(c->out, FILE_KINDS) && c->out_sel == OFF_NULL &&
	    c->pos_out1 != c->pos_out0 + moved)
		fz_fail(f, "%s = %zd: output position %lld -> %lld", c->what, c->ret,
			(long long)c->pos_out0, (long long)c->pos_out1);
}

static void check_call(struct fz *f, struct call *c)
{
	f->calls++;
	if (c->ret < -1 || (c->ret == -1 && !c->err)) {
		fz_fail(f, "%s = %zd, errno %d", c->what, c->ret, c->err);
		return;
	}
	if (c->ret == -1 && !errno_allowed(c->err, c->out))
		fz_odd_errno(f, c->err, c->what);
	if (c->ret >= 0 && (size_t)c->ret > c->count)
		fz_fail(f, "%s = %zd: more than asked", c->what, c->ret);
	if (c->ret > 0) {
		f->successes++;
		f->bytes += c->ret;
	}
	if (c->api == API_RECVFILE)
		check_recvfile(f, c);
	else
		check_splice(f, c);
	check_positions(f, c);
}

FIXTURE(netfile) {};

FIXTURE_SETUP(netfile)
{
	(void)self;
	(void)variant;
	/* splice to a socket sends without MSG_NOSIGNAL */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
}

FIXTURE_TEARDOWN(netfile)
{
	(void)self;
	(void)variant;
}

TEST_F_TIMEOUT(netfile, fuzz_recvfile_and_splice, 600)
{
	long iters = getenv("NETFILE_SOAK") ? 30000 : 3000;
	double t0 = netfile_now();
	const char *what;
	struct pool p;
	struct fz f;
	int ret;

	(void)self;
	(void)variant;
	fz_init(&f, 0x72656376);
	TH_LOG("seed %llu (NETFILE_FUZZ_SEED), %ld calls", (unsigned long long)f.seed,
	       iters);
	ASSERT_EQ(0, pool_open(&p, true, &f.rng, &what))
		TH_LOG("opening the %s: %s", what, strerror(errno));

	/* An offset that cannot be read fails before anything moves. */
	errno = 0;
	ret = netfile_recvfile(p.fd[K_FILE], p.fd[K_TCP_DATA], (void *)1, 1,
			       MSG_DONTWAIT);
	if (ret == -1 && errno == ENOSYS)
		SKIP(return, "no recvfile(2) in this kernel");
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, splice(p.fd[K_TCP_DATA], NULL, p.fd[K_FILE], (loff_t *)1, 1,
			     SPLICE_F_NONBLOCK));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ((int)p.data_len, sock_inq(p.fd[K_TCP_DATA]));

	for (f.iter = 0; f.iter < iters; f.iter++) {
		struct call c;

		if (netfile_now() - t0 > BUDGET_S) {
			TH_LOG("time budget used up after %ld calls", f.iter);
			break;
		}
		pool_tend(&p, &f.rng, f.iter);
		pick_call(&f, &p, &c);
		run_call(&p, &c);
		check_call(&f, &c);
		if (c.in != K_TCP_DATA)
			continue;
		check_data(&f, &p, c.what, c.ret, c.count, c.out,
			   c.out_sel == OFF_NULL ? c.pos_out0 : c.off_out0);
		ret = pool_new_data(&p, &f.rng);
		ASSERT_EQ(0, ret) TH_LOG("new data connection: %s", strerror(-ret));
	}
	TH_LOG("%lu calls, %lu moved data (%lu bytes), %lu conservation checks",
	       f.calls, f.successes, f.bytes, f.data_checks);
	fz_report(_metadata, &f);
	pool_close(&p);
}

/* ---- IORING_OP_SPLICE -------------------------------------------------------- */

struct usqe {
	int in, out;		/* kinds the request resolves to; -1: no such file */
	int fd_in, fd_out;	/* what the SQE carries */
	int64_t off_in, off_out;
	unsigned int len, splice_flags;
	uint8_t sqe_flags;
	bool data;		/* reads K_TCP_DATA: conservation is checked */
	off_t pos0;		/* f_pos of the data request's output */
	bool got_res, got_notif, notif_early;
	int res, notif_res;
	unsigned int cflags;
};

struct uctx {
	struct fz f;
	struct pool p;
	struct io_uring ring;
	int table[NR_KINDS];	/* registered files, by kind; -1 empty */
	bool fixed;
	unsigned long results, mores, notifs;
};

static int64_t pick_uoff(uint64_t *rng)
{
	loff_t v;

	if (rnd(rng) % 100 < 40)
		return -1;
	switch (pick_off(rng, &v)) {
	case OFF_NULL:
		return -1;
	case OFF_BADPTR:
		return -2;
	default:
		return v;
	}
}

static unsigned int pick_ulen(uint64_t *rng, size_t data_len)
{
	static const unsigned int odd[] = {
		0, 1, UINT_MAX, INT_MAX, RW_COUNT_MAX, RW_COUNT_MAX + 1,
	};
	int r = rnd(rng) % 10;

	if (r < 5)
		return 1 + rnd(rng) % (1 << 20);
	if (r < 7)
		return data_len;
	return odd[rnd(rng) % ARRAY_SIZE(odd)];
}

/* The kind a registered-file index names, or -1. */
static int fixed_kind(struct uctx *u, int idx)
{
	return idx >= 0 && idx < NR_KINDS && u->table[idx] >= 0 ? idx : -1;
}

/* Fill the SQE's fds for @in and @out, maybe as (mis)used fixed files. */
static void pick_fds(struct uctx *u, struct usqe *s, int in, int out, bool proper)
{
	uint64_t *rng = &u->f.rng;

	s->fd_in = u->p.fd[in];
	s->fd_out = u->p.fd[out];
	s->in = in;
	s->out = out;
	if (!u->fixed)
		return;
	if (rnd(rng) % 8 == 0) {
		s->splice_flags |= SPLICE_F_FD_IN_FIXED;
		/* misuse: a plain fd number taken as an index */
		s->fd_in = proper || rnd(rng) & 1 ? in : u->p.fd[in];
		s->in = fixed_kind(u, s->fd_in);
	}
	if (rnd(rng) % 8 == 0) {
		s->sqe_flags |= IOSQE_FIXED_FILE;
		s->fd_out = proper || rnd(rng) & 1 ? out : u->p.fd[out];
		s->out = fixed_kind(u, s->fd_out);
	}
}

/* One random request reading none of @excl_in and writing none of @excl_out. */
static void pick_usqe(struct uctx *u, struct usqe *s, unsigned int excl_in,
		      unsigned int excl_out)
{
	uint64_t *rng = &u->f.rng;
	int tries;

	for (tries = 0; tries < 50; tries++) {
		int r = rnd(rng) % 100, in, out;

		memset(s, 0, sizeof(*s));
		if (r < 25) {
			/* file or pipe to TCP with a notification */
			in = pick_from(rng, FILE_KINDS | KB(K_PIPE_R));
			out = pick_from(rng, KB(K_TCP_DATA) | KB(K_TCP_EMPTY));
			s->splice_flags = SPLICE_F_NOTIF;
		} else {
			in = pick_from(rng, ALL_KINDS);
			out = rnd(rng) % 3 ? pick_from(rng, ALL_KINDS) :
					     pick_from(rng, FILE_KINDS | KB(K_PIPE_W));
			if (rnd(rng) % 4 == 0)
				s->splice_flags = SPLICE_F_NOTIF;
		}
		s->splice_flags |= rnd(rng) & SPLICE_F_ALL_USER;
		if (rnd(rng) % 32 == 0)
			s->splice_flags |= 1U << (4 + rnd(rng) % 26);
		s->off_in = is(in, FILE_KINDS) ? pick_uoff(rng) : rnd(rng) % 8 ? -1 : 0;
		s->off_out = (s->splice_flags & SPLICE_F_NOTIF) && rnd(rng) % 8 ?
			     -1 : pick_uoff(rng);
		s->len = pick_ulen(rng, u->p.data_len);
		if (rnd(rng) % 8 == 0)
			s->sqe_flags |= IOSQE_ASYNC;
		pick_fds(u, s, in, out, false);
		if (!is(s->in, excl_in) && !is(s->out, excl_out))
			break;
	}
	if (tries == 50) {
		memset(s, 0, sizeof(*s));
		s->in = K_DEVNULL;
		s->out = K_PIPE_W;
		s->fd_in = u->p.fd[K_DEVNULL];
		s->fd_out = u->p.fd[K_PIPE_W];
		s->off_in = -1;
		s->off_out = -1;
		s->len = 1;
	}
}

/* The request that reads the data connection. */
static void pick_data_usqe(struct uctx *u, struct usqe *s)
{
	uint64_t *rng = &u->f.rng;
	int out = rnd(rng) % 4 ? pick_from(rng, FILE_KINDS | KB(K_PIPE_W)) :
				 pick_from(rng, ALL_KINDS);

	memset(s, 0, sizeof(*s));
	s->data = true;
	s->splice_flags = rnd(rng) & SPLICE_F_ALL_USER;
	if (rnd(rng) % 10 == 0)
		s->splice_flags |= SPLICE_F_NOTIF;
	if (rnd(rng) % 32 == 0)
		s->splice_flags |= 1U << (4 + rnd(rng) % 26);
	s->off_in = rnd(rng) % 10 ? -1 : 0;
	s->off_out = pick_uoff(rng);
	s->len = rnd(rng) % 3 ? u->p.data_len : pick_ulen(rng, u->p.data_len);
	if (rnd(rng) % 8 == 0)
		s->sqe_flags |= IOSQE_ASYNC;
	pick_fds(u, s, K_TCP_DATA, out, true);
}

/*
 * A batch: at most one request reads the data connection, and nothing else
 * touches the file it writes, so that its result can be checked exactly.
 */
static void pick_batch(struct uctx *u, struct usqe *b)
{
	uint64_t *rng = &u->f.rng;
	int d = rnd(rng) % 10 < 7 ? (int)(rnd(rng) % BATCH) : -1, i;
	unsigned int excl = 0;

	if (d >= 0) {
		pick_data_usqe(u, &b[d]);
		excl = same_inode(b[d].out);
	}
	/* K_TCP_DATA may be an output: sending leaves what it received alone */
	for (i = 0; i < BATCH; i++)
		if (i != d)
			pick_usqe(u, &b[i], excl | KB(K_TCP_DATA), excl);
	for (i = 0; i < BATCH; i++) {
		struct usqe *s = &b[i];

		/* no request may wait for a socket */
		if (is(s->in, SOCK_KINDS))
			s->splice_flags |= SPLICE_F_NONBLOCK;
		if (s->data && s->off_out == -1 && is(s->out, FILE_KINDS))
			s->pos0 = lseek(u->p.fd[s->out], 0, SEEK_CUR);
	}
}

static void submit_batch(struct __test_metadata *_metadata, struct uctx *u,
			 struct usqe *b, unsigned long batch)
{
	int i, done = 0, tries;

	for (i = 0; i < BATCH; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

		ASSERT_NE(NULL, sqe);
		io_uring_prep_splice(sqe, b[i].fd_in, b[i].off_in, b[i].fd_out, b[i].off_out,
				     b[i].len, b[i].splice_flags);
		sqe->flags |= b[i].sqe_flags;
		sqe->user_data = (batch << 8) | i;
	}
	/* without IORING_SETUP_SUBMIT_ALL a failed SQE stops the submission */
	for (tries = 0; done < BATCH && tries < 2 * BATCH; tries++) {
		int ret = io_uring_submit(&u->ring);

		ASSERT_LE(0, ret) TH_LOG("io_uring_submit: %s", strerror(-ret));
		done += ret;
	}
	ASSERT_EQ(BATCH, done);
}

static void handle_cqe(struct uctx *u, struct usqe *b, unsigned long batch,
		       struct io_uring_cqe *cqe, int *want_res, int *want_notif)
{
	unsigned int i = cqe->user_data & 0xff;
	struct usqe *s = &b[i];

	if (cqe->user_data >> 8 != batch || i >= BATCH) {
		fz_fail(&u->f, "stray CQE user_data %#llx res %d flags %#x",
			(unsigned long long)cqe->user_data, cqe->res, cqe->flags);
		return;
	}
	if (cqe->flags & IORING_CQE_F_NOTIF) {
		u->notifs++;
		if (s->got_notif)
			fz_fail(&u->f, "request %u: second notification", i);
		s->got_notif = true;
		s->notif_res = cqe->res;
		if (!s->got_res)
			s->notif_early = true;
		else if (s->cflags & IORING_CQE_F_MORE)
			(*want_notif)--;
		else
			fz_fail(&u->f, "request %u: notification after a result without F_MORE",
				i);
		return;
	}
	u->results++;
	if (s->got_res) {
		fz_fail(&u->f, "request %u: second result CQE (res %d)", i, cqe->res);
		return;
	}
	s->got_res = true;
	s->res = cqe->res;
	s->cflags = cqe->flags;
	(*want_res)--;
	if (cqe->flags & IORING_CQE_F_MORE) {
		u->mores++;
		if (!s->got_notif)
			(*want_notif)++;
	} else if (s->got_notif) {
		fz_fail(&u->f, "request %u: a notification, then a result without F_MORE", i);
	}
}

/*
 * Every result, and the notification of every result with F_MORE. A
 * notification needs TCP to free the pages, so the peers are read while
 * waiting. Gives up after 10 s without a CQE.
 */
static int reap_batch(struct uctx *u, struct usqe *b, unsigned long batch)
{
	int want_res = BATCH, want_notif = 0;
	double deadline = netfile_now() + 10;

	while (want_res > 0 || want_notif > 0) {
		struct __kernel_timespec ts = { .tv_nsec = 20 * 1000 * 1000 };
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts);

		if (ret == -ETIME || ret == -EINTR) {
			pool_drain_peers(&u->p);
			if (netfile_now() > deadline)
				return -ETIME;
			continue;
		}
		if (ret)
			return ret;
		handle_cqe(u, b, batch, cqe, &want_res, &want_notif);
		io_uring_cqe_seen(&u->ring, cqe);
		deadline = netfile_now() + 10;
	}
	return 0;
}

static void describe_usqe(struct usqe *s, int i, char *buf, size_t len)
{
	snprintf(buf, len,
		 "SPLICE #%d (%s%s, %lld, %s%s, %lld, %u, splice_flags %#x, flags %#x) = %d",
		 i, s->in < 0 ? "bad index " : "", s->in < 0 ? "" : kind_name[s->in],
		 (long long)s->off_in, s->out < 0 ? "bad index " : "",
		 s->out < 0 ? "" : kind_name[s->out], (long long)s->off_out, s->len,
		 s->splice_flags, s->sqe_flags, s->res);
}

static void check_usqe(struct uctx *u, struct usqe *s, int i)
{
	unsigned int valid = SPLICE_F_ALL_USER | SPLICE_F_NOTIF | SPLICE_F_FD_IN_FIXED;
	bool more = s->cflags & IORING_CQE_F_MORE;
	bool want_more = (s->splice_flags & SPLICE_F_NOTIF) &&
			 !(s->splice_flags & ~valid) && s->off_out == -1;
	char what[200];

	describe_usqe(s, i, what, sizeof(what));
	u->f.calls++;
	if (!s->got_res) {
		fz_fail(&u->f, "%s: no result CQE", what);
		return;
	}
	if (s->res < 0 && !errno_allowed(-s->res, s->out) && s->res != -ECANCELED)
		fz_odd_errno(&u->f, -s->res, what);
	if (s->res > 0) {
		u->f.successes++;
		u->f.bytes += s->res;
	}
	if (s->res > 0 && (unsigned int)s->res > s->len)
		fz_fail(&u->f, "%s: more than asked", what);
	if (more && !(s->splice_flags & SPLICE_F_NOTIF))
		fz_fail(&u->f, "%s: F_MORE without SPLICE_F_NOTIF", what);
	if (want_more && !more && s->res != -ENOMEM)
		fz_fail(&u->f, "%s: SPLICE_F_NOTIF accepted but no F_MORE", what);
	if (more != s->got_notif)
		fz_fail(&u->f, "%s: F_MORE %d but %d notifications", what, more,
			s->got_notif);
	if (s->notif_early)
		fz_fail(&u->f, "%s: notification before the result", what);
	if (s->got_notif && s->notif_res && s->notif_res != (int)IORING_NOTIF_USAGE_ZC_COPIED)
		fz_fail(&u->f, "%s: notification res %#x", what, s->notif_res);
	/* bad sockets fail with recvfile's errors even with nothing queued */
	if (s->res == -EAGAIN && is(s->in, KB(K_UDP) | KB(K_TCP_LISTEN) | KB(K_UNIX)) &&
	    is(s->out, RF_OUT_KINDS))
		u->f.masked++;
	if (!s->data)
		return;
	if (s->off_out == -1 && is(s->out, FILE_KINDS)) {
		off_t pos = lseek(u->p.fd[s->out], 0, SEEK_CUR);

		if (pos != s->pos0 + (s->res > 0 ? s->res : 0))
			fz_fail(&u->f, "%s: file position %lld -> %lld", what,
				(long long)s->pos0, (long long)pos);
	}
	check_data(&u->f, &u->p, what, s->res < 0 ? -1 : s->res, s->len, s->out,
		   s->off_out == -1 ? s->pos0 : s->off_out);
}

static int register_pool(struct uctx *u)
{
	int k;

	for (k = 0; k < NR_KINDS; k++)
		u->table[k] = is(k, BADFD_KINDS) ? -1 : u->p.fd[k];
	return io_uring_register_files(&u->ring, u->table, NR_KINDS);
}

TEST_F_TIMEOUT(netfile, fuzz_uring_splice, 600)
{
	long total = getenv("NETFILE_SOAK") ? 30000 : 3000;
	struct uctx *u = calloc(1, sizeof(*u));
	struct usqe *b = calloc(BATCH, sizeof(*b));
	double t0 = netfile_now();
	unsigned long batch;
	const char *what;
	int ret, i;

	(void)self;
	(void)variant;
	ASSERT_NE(NULL, u);
	ASSERT_NE(NULL, b);
	fz_init(&u->f, 0x75726e67);
	ret = io_uring_queue_init(RING_DEPTH, &u->ring, IORING_SETUP_SUBMIT_ALL);
	if (ret == -EINVAL)
		ret = io_uring_queue_init(RING_DEPTH, &u->ring, 0);
	if (ret == -ENOSYS)
		SKIP(return, "no io_uring");
	ASSERT_EQ(0, ret);
	TH_LOG("seed %llu (NETFILE_FUZZ_SEED), %ld requests in batches of %d",
	       (unsigned long long)u->f.seed, total, BATCH);
	ASSERT_EQ(0, pool_open(&u->p, false, &u->f.rng, &what))
		TH_LOG("opening the %s: %s", what, strerror(errno));
	ret = register_pool(u);
	u->fixed = !ret;
	if (ret)
		TH_LOG("registering files: %s; no fixed files", strerror(-ret));

	for (batch = 0; batch * BATCH < (unsigned long)total; batch++) {
		bool data = false;

		if (netfile_now() - t0 > BUDGET_S) {
			TH_LOG("time budget used up after %lu batches", batch);
			break;
		}
		u->f.iter = batch;
		pool_tend(&u->p, &u->f.rng, batch);
		pick_batch(u, b);
		submit_batch(_metadata, u, b, batch);
		ret = reap_batch(u, b, batch);
		for (i = 0; ret && i < BATCH; i++)
			if (!b[i].got_res || (b[i].cflags & IORING_CQE_F_MORE && !b[i].got_notif))
				TH_LOG("batch %lu: request %d: result %d, notification %d",
				       batch, i, b[i].got_res, b[i].got_notif);
		ASSERT_EQ(0, ret) TH_LOG("seed %llu: CQEs missing after 10 s: %s",
					 (unsigned long long)u->f.seed, strerror(-ret));
		for (i = 0; i < BATCH; i++) {
			check_usqe(u, &b[i], i);
			data |= b[i].data;
		}
		if (!data)
			continue;
		ret = pool_new_data(&u->p, &u->f.rng);
		ASSERT_EQ(0, ret) TH_LOG("new data connection: %s", strerror(-ret));
		if (u->fixed)
			ASSERT_EQ(1, io_uring_register_files_update(&u->ring, K_TCP_DATA,
								    &u->p.fd[K_TCP_DATA], 1));
	}
	TH_LOG("%lu requests, %lu moved data (%lu bytes), %lu conservation checks",
	       u->f.calls, u->f.successes, u->f.bytes, u->f.data_checks);
	TH_LOG("%lu result CQEs, %lu with F_MORE, %lu notifications",
	       u->results, u->mores, u->notifs);
	EXPECT_EQ(0, u->f.masked)
		TH_LOG("%lu UDP/listening/AF_UNIX -> file requests got -EAGAIN%s",
		       u->f.masked, " (recvfile(2): EINVAL/ENOTCONN/EOPNOTSUPP)");
	EXPECT_EQ(u->f.calls, u->results);
	EXPECT_EQ(u->mores, u->notifs);
	fz_report(_metadata, &u->f);
	io_uring_queue_exit(&u->ring);
	pool_close(&u->p);
	free(b);
	free(u);
}

/* ---- conservation under injected allocation failures ---------------------------- */

#define FA_DIR		"/sys/kernel/debug"
#define FA_TRANSFERS	300

static const struct {
	const char *file, *value;
	bool required;
} fa_settings[] = {
	{ "probability", "20", true },
	{ "interval", "1", true },
	{ "times", "-1", true },
	{ "verbose", "0", false },
	{ "task-filter", "Y", true },
	/*
	 * By default neither fails allocations that may sleep (GFP_KERNEL),
	 * and fail_page_alloc no highmem or order-0 ones either.
	 */
	{ "ignore-gfp-wait", "N", false },
	{ "ignore-gfp-highmem", "N", false },
	{ "min-order", "0", false },
};

#define NR_FA	ARRAY_SIZE(fa_settings)

struct fa_saved {
	bool have[NR_FA];
	char val[NR_FA][32];
};

static int fa_open(const char *attr, const char *file, int flags)
{
	char path[256];

	snprintf(path, sizeof(path), FA_DIR "/%s/%s", attr, file);
	return open(path, flags | O_CLOEXEC);
}

static int fa_read(const char *attr, const char *file, char *val, size_t len)
{
	int fd = fa_open(attr, file, O_RDONLY), err;
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, val, len - 1);
	err = errno;
	close(fd);
	if (n < 0)
		return -err;
	val[n] = 0;
	val[strcspn(val, "\n")] = 0;
	return 0;
}

static int fa_write(const char *attr, const char *file, const char *val)
{
	int fd = fa_open(attr, file, O_WRONLY | O_TRUNC), err;
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	err = errno;
	close(fd);
	return n < 0 ? -err : 0;
}

static bool fa_exists(const char *attr)
{
	char path[256];

	snprintf(path, sizeof(path), FA_DIR "/%s/probability", attr);
	return !access(path, W_OK);
}

/* Save and set every setting; -errno if a required one cannot be set. */
static int fa_enable(const char *attr, struct fa_saved *saved)
{
	unsigned int i;
	int ret;

	for (i = 0; i < NR_FA; i++) {
		ret = fa_read(attr, fa_settings[i].file, saved->val[i],
			      sizeof(saved->val[i]));
		if (ret && !fa_settings[i].required)
			continue;
		if (!ret)
			ret = fa_write(attr, fa_settings[i].file, fa_settings[i].value);
		if (ret)
			return ret;
		saved->have[i] = true;
	}
	return 0;
}

/* Failures off first, then the rest as it was. */
static void fa_reset(const char *attr, struct fa_saved *saved)
{
	unsigned int i;

	fa_write(attr, "probability", "0");
	fa_write(attr, "times", "0");
	for (i = 0; i < NR_FA; i++)
		if (saved->have[i] && strcmp(fa_settings[i].file, "probability") &&
		    strcmp(fa_settings[i].file, "times"))
			fa_write(attr, fa_settings[i].file, saved->val[i]);
}

struct fault_run {
	const char *attr;
	uint64_t rng;
	int mif;		/* /proc/self/make-it-fail */
	int file;
	char *pat;		/* FAULT_MAX bytes: the current transfer's stream */
	char *sink;		/* BUF_SIZE */
	int transfer;
	unsigned int fails;
	unsigned long calls, errors, nomem, retried, stopped, bytes;
};

static void __printf(2, 3)
fr_fail(struct fault_run *r, const char *fmt, ...)
{
	va_list ap;

	if (++r->fails > MAX_REPORTS)
		return;
	fprintf(stderr, "# %s transfer %d: ", r->attr, r->transfer);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Inside the window only the call under test runs: its allocations may
 * fail, and the write that closes the window touches nothing new.
 */
static void fault_window(struct fault_run *r, bool on)
{
	static const char one = '1', zero = '0';
	int i;

	for (i = 0; i < 1000; i++)
		if (write(r->mif, on ? &one : &zero, 1) == 1)
			return;
	fprintf(stderr, "# %s: cannot write make-it-fail: %s\n", r->attr, strerror(errno));
	_exit(3);
}

/* Send what the socket takes now; FIN once all @k bytes are sent. */
static void fr_push(struct fault_run *r, int c, size_t k, size_t *sent, bool *shut)
{
	while (*sent < k) {
		ssize_t w = send(c, r->pat + *sent, k - *sent, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w <= 0)
			break;
		*sent += w;
	}
	if (*sent == k && !*shut && !shutdown(c, SHUT_WR))
		*shut = true;
}

/* Read the rest of the stream after @moved bytes; returns its length. */
static size_t fr_rest(struct fault_run *r, int c, int s, size_t k, size_t *sent,
		      bool *shut, size_t moved)
{
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	size_t rest = 0;
	int stalls = 0;

	for (;;) {
		ssize_t n;

		fr_push(r, c, k, sent, shut);
		n = recv(s, r->sink, BUF_SIZE, MSG_DONTWAIT);
		if (n > 0) {
			if (moved + rest + n > k) {
				fr_fail(r, "%zu bytes more than were sent", moved + rest + n - k);
				break;
			}
			if (memcmp(r->sink, r->pat + moved + rest, n))
				fr_fail(r, "stream bytes %zu.. left on the socket are wrong",
					moved + rest);
			rest += n;
			stalls = 0;
			continue;
		}
		if (!n)
			break;
		if (errno != EAGAIN || ++stalls > 100) {
			fr_fail(r, "reading the rest: %s after %zu bytes",
				n < 0 && errno != EAGAIN ? strerror(errno) : "stuck", rest);
			break;
		}
		poll(&pfd, 1, 100);
	}
	return rest;
}

static bool fault_errno_ok(int err)
{
	return err == ENOMEM || err == EFAULT || err == EINTR || err == ENOBUFS;
}

/*
 * One transfer of 1..256 KiB through recvfile(2) or splice(2) with failures
 * injected into its allocations. On an error the socket must still hold
 * every byte the file did not take.
 */
static void fault_transfer(struct fault_run *r)
{
	struct pollfd pfd = { .events = POLLIN };
	size_t k = 1 + rnd(&r->rng) % FAULT_MAX, sent = 0, moved = 0, rest;
	loff_t start = rnd(&r->rng) % 3 ? rnd(&r->rng) % 8192 : 0, off = start;
	bool use_splice = r->transfer & 1, shut = false, stop = false;
	uint64_t seed = rnd(&r->rng);
	int c = -1, s = -1, stalls = 0;
	struct stat st;
	off_t bad;

	netfile_pattern_fill(r->pat, k, seed, 0);
	if (ftruncate(r->file, 0) || netfile_tcp_pair(AF_INET, &c, &s) ||
	    set_nonblock(c)) {
		fr_fail(r, "setup: %s", strerror(errno));
		return;
	}
	pfd.fd = s;
	while (moved < k && !stop) {
		ssize_t ret;
		int err;

		fr_push(r, c, k, &sent, &shut);
		poll(&pfd, 1, 50);
		fault_window(r, true);
		if (use_splice)
			ret = syscall(__NR_splice, s, NULL, r->file, &off, k - moved,
				      SPLICE_F_NONBLOCK);
		else
			ret = netfile_recvfile(r->file, s, &off, k - moved,
					       MSG_DONTWAIT);
		err = errno;
		fault_window(r, false);
		r->calls++;
		if (ret > 0) {
			moved += ret;
			stalls = 0;
			if (off != start + (loff_t)moved)
				fr_fail(r, "offset %lld after %zu bytes from %lld",
					(long long)off, moved, (long long)start);
			continue;
		}
		if (ret == 0) {
			fr_fail(r, "end of stream after %zu of %zu bytes", moved, k);
			break;
		}
		if (err == EAGAIN) {
			if (++stalls > 400) {
				fr_fail(r, "no progress at %zu of %zu bytes", moved, k);
				break;
			}
			continue;
		}
		r->errors++;
		r->nomem += err == ENOMEM;
		if (!fault_errno_ok(err))
			fr_fail(r, "%s: unexpected %s", use_splice ? "splice" : "recvfile",
				strerror(err));
		if (off != start + (loff_t)moved)
			fr_fail(r, "offset moved on %s", strerror(err));
		/* retry half the time; else stop and account for the rest */
		if (rnd(&r->rng) & 1)
			r->retried++;
		else
			stop = true;
	}
	r->stopped += moved < k;
	r->bytes += moved;
	rest = fr_rest(r, c, s, k, &sent, &shut, moved);
	if (moved + rest != k)
		fr_fail(r, "%zu bytes in the file + %zu on the socket != %zu sent", moved,
			rest, k);
	bad = moved ? netfile_file_check(r->file, start, moved, seed, 0) : -1;
	if (bad != -1)
		fr_fail(r, "file differs from the stream at offset %lld", (long long)bad);
	if (fstat(r->file, &st) || st.st_size != (moved ? start + (off_t)moved : 0))
		fr_fail(r, "file size %lld, %zu bytes moved from offset %lld",
			(long long)st.st_size, moved, (long long)start);
	close(c);
	close(s);
}

/* The forked worker: its exit status is the verdict. */
static int fault_child(const char *attr, uint64_t seed)
{
	struct fault_run r = { .attr = attr, .rng = seed | 1 };

	alarm(240);
	r.pat = malloc(FAULT_MAX);
	r.sink = malloc(BUF_SIZE);
	r.file = netfile_tmpfile(NULL);
	r.mif = open("/proc/self/make-it-fail", O_WRONLY | O_CLOEXEC);
	if (!r.pat || !r.sink || r.file < 0 || r.mif < 0) {
		fprintf(stderr, "# %s: child setup failed\n", attr);
		return 2;
	}
	/*
	 * Resolve and touch now what the window uses (lazy PLT binding writes
	 * the GOT, errno is thread-local): a page fault inside the window
	 * could fail its allocation too.
	 */
	fault_window(&r, false);
	errno = syscall(__NR_getpid) < 0;
	for (r.transfer = 0; r.transfer < FA_TRANSFERS; r.transfer++)
		fault_transfer(&r);
	fprintf(stderr, "# %s: %d transfers, %lu calls, %lu failed (%lu ENOMEM)\n",
		attr, FA_TRANSFERS, r.calls, r.errors, r.nomem);
	fprintf(stderr, "# %s: %lu retried, %lu stopped early, %lu bytes moved, %u problems\n",
		attr, r.retried, r.stopped, r.bytes, r.fails);
	if (!r.errors)
		fprintf(stderr, "# %s: note: no failure reached the calls under test\n", attr);
	return r.fails ? 1 : 0;
}

TEST_F_TIMEOUT(netfile, fault_injection_conservation, 600)
{
	static const char * const attrs[] = { "failslab", "fail_page_alloc" };
	uint64_t seed = fuzz_seed();
	unsigned int i;
	int ran = 0;

	(void)self;
	(void)variant;
	if (access("/proc/self/make-it-fail", W_OK))
		SKIP(return, "no /proc/self/make-it-fail (CONFIG_FAULT_INJECTION)");
	if (!fa_exists(attrs[0]) && !fa_exists(attrs[1]))
		SKIP(return, "no failslab or fail_page_alloc in " FA_DIR);
	TH_LOG("seed %llu (NETFILE_FUZZ_SEED)", (unsigned long long)seed);
	for (i = 0; i < ARRAY_SIZE(attrs); i++) {
		struct fa_saved saved = {};
		int status = 0, ret;
		pid_t pid;

		if (!fa_exists(attrs[i])) {
			TH_LOG("%s: not available", attrs[i]);
			continue;
		}
		ret = fa_enable(attrs[i], &saved);
		if (ret) {
			fa_reset(attrs[i], &saved);
			ASSERT_EQ(0, ret) TH_LOG("configuring %s: %s", attrs[i], strerror(-ret));
		}
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid == 0)
			_exit(fault_child(attrs[i], seed + i));
		while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		/* always, before anything can end the test */
		fa_reset(attrs[i], &saved);
		ASSERT_LT(0, pid);
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("%s: worker status %#x (seed %llu)", attrs[i], status,
			       (unsigned long long)seed + i);
		ran++;
	}
	ASSERT_LT(0, ran);
}

TEST_HARNESS_MAIN
