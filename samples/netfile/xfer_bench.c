// SPDX-License-Identifier: GPL-2.0
/*
 * Receive-side transfer benchmark: a peer process sends N MiB over a
 * loopback TCP connection and this process writes it to a file with each
 * back end in turn, several rounds, interleaved, in one boot. Prints
 * throughput and the receiver's system CPU time per GiB, and each back
 * end's ratio to read()+pwrite().
 *
 *   xfer_bench [-s MiB] [-r rounds] [-b bufsize] [-d dir] [-m method,...]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <liburing.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct bench_opts {
	uint64_t bytes;
	int rounds;
	size_t bufsize;
	const char *dir;
};

struct method {
	const char *name;
	const char *what;
	/* Move @len bytes from @sock to @file at offset 0; returns bytes moved. */
	int64_t (*recv)(int sock, int file, uint64_t len, const struct bench_opts *o);
	double mbps[64], sys_per_gib[64];
	bool enabled;
};

static int64_t recv_rw(int sock, int file, uint64_t len, const struct bench_opts *o)
{
	char *buf = malloc(o->bufsize);
	uint64_t done = 0;

	if (!buf)
		return -ENOMEM;
	while (done < len) {
		ssize_t n = read(sock, buf, o->bufsize), w = 0;

		if (n <= 0)
			break;
		while (w < n) {
			ssize_t r = pwrite(file, buf + w, n - w, done + w);

			if (r <= 0) {
				free(buf);
				return -errno;
			}
			w += r;
		}
		done += n;
	}
	free(buf);
	return done;
}

static int64_t recv_splice(int sock, int file, uint64_t len, const struct bench_opts *o)
{
	loff_t off = 0;
	int p[2];

	if (pipe(p))
		return -errno;
	/* As Samba's dormant path would with a large pipe. */
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	while ((uint64_t)off < len) {
		ssize_t n = splice(sock, NULL, p[1], NULL, 1 << 20, SPLICE_F_MOVE);

		if (n <= 0)
			break;
		while (n > 0) {
			ssize_t w = splice(p[0], NULL, file, &off, n, SPLICE_F_MOVE);

			if (w <= 0) {
				off = -errno;
				goto out;
			}
			n -= w;
		}
	}
out:
	close(p[0]);
	close(p[1]);
	(void)o;
	return off;
}

static int64_t recv_recvfile(int sock, int file, uint64_t len,
			     const struct bench_opts *o)
{
	loff_t off = 0;

	while ((uint64_t)off < len) {
		ssize_t n = syscall(__NR_recvfile, file, sock, &off, len - off,
				    MSG_WAITALL);

		if (n <= 0)
			return n < 0 ? -errno : off;
	}
	(void)o;
	return off;
}

static int64_t recv_splice_direct(int sock, int file, uint64_t len,
				  const struct bench_opts *o)
{
	loff_t off = 0;

	while ((uint64_t)off < len) {
		ssize_t n = splice(sock, NULL, file, &off, len - off, 0);

		if (n <= 0)
			return n < 0 ? -errno : off;
	}
	(void)o;
	return off;
}

/* io_uring, one request in flight: IORING_OP_SPLICE socket -> file, no pipe. */
static int64_t recv_uring_splice(int sock, int file, uint64_t len,
				 const struct bench_opts *o)
{
	struct io_uring ring;
	uint64_t off = 0;

	if (io_uring_queue_init(4, &ring, 0))
		return -ENOSYS;
	while (off < len) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;
		int res;

		io_uring_prep_splice(sqe, sock, -1, file, off, len - off, 0);
		io_uring_submit(&ring);
		if (io_uring_wait_cqe(&ring, &cqe))
			break;
		res = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		if (res <= 0) {
			if (res < 0)
				off = res;
			break;
		}
		off += res;
	}
	io_uring_queue_exit(&ring);
	(void)o;
	return off;
}

/* io_uring, what a server does today: RECV into a buffer, then WRITE it. */
static int64_t recv_uring_rw(int sock, int file, uint64_t len,
			     const struct bench_opts *o)
{
	char *buf = malloc(o->bufsize);
	struct io_uring ring;
	uint64_t off = 0;

	if (!buf || io_uring_queue_init(4, &ring, 0)) {
		free(buf);
		return -ENOMEM;
	}
	while (off < len) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;
		int got, put;

		io_uring_prep_recv(sqe, sock, buf, o->bufsize, 0);
		io_uring_submit(&ring);
		if (io_uring_wait_cqe(&ring, &cqe))
			break;
		got = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		if (got <= 0)
			break;
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_write(sqe, file, buf, got, off);
		io_uring_submit(&ring);
		if (io_uring_wait_cqe(&ring, &cqe))
			break;
		put = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		if (put != got) {
			off = put < 0 ? put : -EIO;
			break;
		}
		off += got;
	}
	io_uring_queue_exit(&ring);
	free(buf);
	return off;
}

static struct method methods[] = {
	{ .name = "rw", .what = "read()+pwrite() through a user buffer",
	  .recv = recv_rw },
	{ .name = "splice", .what = "splice socket -> pipe -> file",
	  .recv = recv_splice },
	{ .name = "recvfile", .what = "recvfile(2), MSG_WAITALL",
	  .recv = recv_recvfile },
	{ .name = "splice-direct", .what = "splice socket -> file, no pipe",
	  .recv = recv_splice_direct },
	{ .name = "uring-rw", .what = "io_uring RECV + WRITE through a buffer",
	  .recv = recv_uring_rw },
	{ .name = "uring-splice", .what = "io_uring SPLICE socket -> file, no pipe",
	  .recv = recv_uring_splice },
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NR_METHODS ARRAY_SIZE(methods)

static void send_all(int fd, uint64_t len)
{
	size_t bufsz = 1 << 20;
	char *buf = malloc(bufsz);
	uint64_t done = 0;

	if (!buf)
		exit(1);
	memset(buf, 0x5a, bufsz);
	while (done < len) {
		size_t n = len - done < bufsz ? len - done : bufsz;
		ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);

		if (w <= 0)
			exit(1);
		done += w;
	}
	exit(0);
}

/* A loopback connection whose sending end is a child process. */
static int connect_sender(uint64_t len, pid_t *child)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	int lfd, cfd, sfd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (void *)&sin, slen) || listen(lfd, 1) ||
	    getsockname(lfd, (void *)&sin, &slen))
		return -1;
	fflush(stdout);
	*child = fork();
	if (*child == 0) {
		close(lfd);
		cfd = socket(AF_INET, SOCK_STREAM, 0);
		if (cfd < 0 || connect(cfd, (void *)&sin, slen))
			exit(1);
		send_all(cfd, len);
	}
	sfd = accept(lfd, NULL, NULL);
	close(lfd);
	return sfd;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double sys_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int run_one(struct method *m, int round, const struct bench_opts *o)
{
	double t0, s0, secs, gib = o->bytes / (double)(1 << 30);
	int file, sock, status;
	int64_t got;
	pid_t child;

	file = open(o->dir, O_TMPFILE | O_RDWR, 0600);
	if (file < 0) {
		perror("open O_TMPFILE");
		return -1;
	}
	sock = connect_sender(o->bytes, &child);
	if (sock < 0) {
		perror("connect");
		return -1;
	}
	s0 = sys_seconds();
	t0 = now();
	got = m->recv(sock, file, o->bytes, o);
	secs = now() - t0;
	m->sys_per_gib[round] = (sys_seconds() - s0) / gib;
	m->mbps[round] = o->bytes / secs / 1e6;
	close(sock);
	close(file);
	waitpid(child, &status, 0);
	if (got != (int64_t)o->bytes) {
		fprintf(stderr, "%s: moved %lld of %llu bytes (%s)\n", m->name,
			(long long)got, (unsigned long long)o->bytes,
			got < 0 ? strerror(-got) : "short");
		return -1;
	}
	printf("  round %d  %-13s %8.1f MB/s  %6.2f s sys/GiB\n", round + 1,
	       m->name, m->mbps[round], m->sys_per_gib[round]);
	fflush(stdout);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double tmp[64];

	memcpy(tmp, v, n * sizeof(*v));
	qsort(tmp, n, sizeof(*tmp), cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static void enable_methods(const char *list)
{
	char *copy = strdup(list), *tok, *save;
	size_t i;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		for (i = 0; i < NR_METHODS; i++)
			if (!strcmp(tok, methods[i].name))
				methods[i].enabled = true;
	free(copy);
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
		.bytes = 1024ULL << 20, .rounds = 3, .bufsize = 128 << 10,
		.dir = "/tmp",
	};
	const char *list = "rw,splice,recvfile,splice-direct,uring-rw,uring-splice";
	double base_mbps = 0, base_sys = 0;
	size_t i;
	int c, r;

	while ((c = getopt(argc, argv, "s:r:b:d:m:")) != -1) {
		switch (c) {
		case 's':
			o.bytes = strtoull(optarg, NULL, 0) << 20;
			break;
		case 'r':
			o.rounds = atoi(optarg);
			break;
		case 'b':
			o.bufsize = strtoul(optarg, NULL, 0);
			break;
		case 'd':
			o.dir = optarg;
			break;
		case 'm':
			list = optarg;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-s MiB] [-r rounds] [-b bufsize] [-d dir] [-m method,...]\n",
				argv[0]);
			return 2;
		}
	}
	if (o.rounds < 1 || o.rounds > 64 || !o.bytes)
		return 2;
	enable_methods(list);
	signal(SIGPIPE, SIG_IGN);
	/* the number is provisional until merged: is it recvfile that answers? */
	if (methods[2].enabled &&
	    (syscall(__NR_recvfile, -1, -1, NULL, 0, 0) != -1 || errno != EBADF)) {
		fprintf(stderr, "xfer_bench: no recvfile(2) at %d here, skipped\n",
			__NR_recvfile);
		methods[2].enabled = false;
	}

	printf("xfer_bench: %llu MiB per transfer over loopback TCP into %s, ",
	       (unsigned long long)(o.bytes >> 20), o.dir);
	printf("%d rounds, rw buffer %zu KiB\n", o.rounds, o.bufsize >> 10);
	for (r = 0; r < o.rounds; r++)
		for (i = 0; i < NR_METHODS; i++)
			if (methods[i].enabled && run_one(&methods[i], r, &o))
				return 1;

	printf("\n| back end | what | MB/s (median) | sys s/GiB (median) |");
	printf(" MB/s vs rw | sys/GiB vs rw |\n");
	printf("|---|---|---:|---:|---:|---:|\n");
	for (i = 0; i < NR_METHODS; i++) {
		struct method *m = &methods[i];
		double mb, sys;

		if (!m->enabled)
			continue;
		mb = median(m->mbps, o.rounds);
		sys = median(m->sys_per_gib, o.rounds);
		if (!strcmp(m->name, "rw")) {
			base_mbps = mb;
			base_sys = sys;
		}
		printf("| %s | %s | %.1f | %.2f | ", m->name, m->what, mb, sys);
		if (base_mbps > 0)
			printf("%.2fx | %.2fx |\n", mb / base_mbps,
			       base_sys > 0 ? sys / base_sys : 0);
		else
			printf("- | - |\n");
	}
	return 0;
}
