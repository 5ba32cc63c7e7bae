// SPDX-License-Identifier: GPL-2.0
/*
 * splice(2) over every pair of fd kinds, each pair on fresh fds, compared
 * with what the unpatched 6.12 kernel answers (splice_pairs_base.h, made
 * by running "splice_pairs --print" on the base kernel that
 * scripts/upstream-compare.sh builds). The series adds exactly two pairs,
 * a connected TCP socket into a regular file and a regular file into a
 * connected TCP socket; every other pair must answer as before.
 *
 *   splice_pairs            the test (KTAP)
 *   splice_pairs --print    the table for this kernel, as C
 */
#include "netfile_util.h"

#include <ctype.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/un.h>

#include "../kselftest.h"

enum kind {
	K_FILE, K_EMPTY_FILE, K_MEMFD, K_DEV_ZERO, K_PROC, K_PIPE_R, K_PIPE_W,
	K_UNIX_CONN, K_UNIX_UNCONN, K_UNIX_DGRAM, K_TCP_CONN, K_TCP_UNCONN,
	K_TCP_LISTEN, K_UDP, K_EVENTFD, K_DIR, NR_KINDS
};

static const char * const kind_name[NR_KINDS] = {
	"file", "empty_file", "memfd", "dev_zero", "proc", "pipe_r", "pipe_w",
	"unix_conn", "unix_unconn", "unix_dgram", "tcp_conn", "tcp_unconn",
	"tcp_listen", "udp", "eventfd", "dir",
};

/*
 * The pairs the series adds: not compared with the base kernel. A procfs
 * file is a regular file too (S_ISREG), and is sent like one, as
 * sendfile(2) sends it; as an output it has no ->write_iter, so recvfile
 * refuses it with EINVAL, which is also what 6.12 answers.
 */
static bool new_pair(enum kind in, enum kind out)
{
	bool in_file = in == K_FILE || in == K_EMPTY_FILE || in == K_MEMFD ||
		       in == K_PROC;
	bool out_file = out == K_FILE || out == K_EMPTY_FILE || out == K_MEMFD;

	return (in == K_TCP_CONN && out_file) || (in_file && out == K_TCP_CONN);
}

struct made {
	int fd;		/* the fd under test */
	int extra[2];	/* peers and other ends, closed afterwards */
};

static int tcp_listener(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1))
		return -1;
	return fd;
}

/*
 * A fresh fd of @k, open for reading (@as_in) or writing, with 4 KiB
 * readable where it can hold data.
 */
static int make(enum kind k, bool as_in, struct made *m)
{
	static char data[4096] = { 'd' };
	int p[2];

	m->extra[0] = -1;
	m->extra[1] = -1;
	switch (k) {
	case K_FILE:
	case K_EMPTY_FILE:
		m->fd = netfile_tmpfile(NULL);
		if (m->fd < 0)
			return -1;
		if (k == K_FILE && pwrite(m->fd, data, sizeof(data), 0) != sizeof(data))
			return -1;
		return 0;
	case K_MEMFD:
		m->fd = memfd_create("splice_pairs", 0);
		if (m->fd < 0 || pwrite(m->fd, data, sizeof(data), 0) != sizeof(data))
			return -1;
		return 0;
	case K_DEV_ZERO:
		m->fd = open("/dev/zero", O_RDWR);
		return m->fd < 0 ? -1 : 0;
	case K_PROC:
		m->fd = open(as_in ? "/proc/version" : "/proc/self/clear_refs",
			     as_in ? O_RDONLY : O_WRONLY);
		return m->fd < 0 ? -1 : 0;
	case K_PIPE_R:
	case K_PIPE_W:
		if (pipe(p) || write(p[1], data, sizeof(data)) != sizeof(data))
			return -1;
		m->fd = p[k == K_PIPE_R ? 0 : 1];
		m->extra[0] = p[k == K_PIPE_R ? 1 : 0];
		return 0;
	case K_UNIX_CONN:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) ||
		    write(p[1], data, sizeof(data)) != sizeof(data))
			return -1;
		m->fd = p[0];
		m->extra[0] = p[1];
		return 0;
	case K_UNIX_UNCONN:
		m->fd = socket(AF_UNIX, SOCK_STREAM, 0);
		return m->fd < 0 ? -1 : 0;
	case K_UNIX_DGRAM:
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, p) ||
		    write(p[1], data, sizeof(data)) != sizeof(data))
			return -1;
		m->fd = p[0];
		m->extra[0] = p[1];
		return 0;
	case K_TCP_CONN:
		if (netfile_tcp_pair(AF_INET, &m->extra[0], &m->fd) ||
		    send(m->extra[0], data, sizeof(data), 0) != sizeof(data))
			return -1;
		usleep(10000);
		return 0;
	case K_TCP_UNCONN:
		m->fd = socket(AF_INET, SOCK_STREAM, 0);
		return m->fd < 0 ? -1 : 0;
	case K_TCP_LISTEN:
		m->fd = tcp_listener();
		return m->fd < 0 ? -1 : 0;
	case K_UDP:
		m->fd = socket(AF_INET, SOCK_DGRAM, 0);
		return m->fd < 0 ? -1 : 0;
	case K_EVENTFD:
		m->fd = eventfd(1, 0);
		return m->fd < 0 ? -1 : 0;
	case K_DIR:
		m->fd = open("/", O_RDONLY | O_DIRECTORY);
		return m->fd < 0 ? -1 : 0;
	default:
		return -1;
	}
}

static void unmake(struct made *m)
{
	close(m->fd);
	if (m->extra[0] >= 0)
		close(m->extra[0]);
	if (m->extra[1] >= 0)
		close(m->extra[1]);
}

/* "4096", "EINVAL", ...: what one splice() of up to 4 KiB answers. */
static void one_pair(enum kind in, enum kind out, char *res, size_t len)
{
	struct made a, b;
	ssize_t n;

	if (make(in, true, &a) || make(out, false, &b)) {
		snprintf(res, len, "setup failed: %s", strerror(errno));
		return;
	}
	/* a pair that waits (a socket read ignores SPLICE_F_NONBLOCK) is
	 * interrupted after a second
	 */
	alarm(1);
	n = splice(a.fd, NULL, b.fd, NULL, 4096, SPLICE_F_NONBLOCK);
	alarm(0);
	if (n >= 0)
		snprintf(res, len, "%zd", n);
	else if (errno == EINTR)
		snprintf(res, len, "blocks");
	else
		snprintf(res, len, "%s", strerrorname_np(errno) ?: "?");
	unmake(&a);
	unmake(&b);
}

#include "splice_pairs_base.h"

static void on_alarm(int sig)
{
}

static const char *base_result(enum kind in, enum kind out)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(splice_pairs_base); i++)
		if (!strcmp(splice_pairs_base[i].in, kind_name[in]) &&
		    !strcmp(splice_pairs_base[i].out, kind_name[out]))
			return splice_pairs_base[i].res;
	return NULL;
}

/*
 * The proc input is /proc/version, which names the build (#N, its date):
 * a splice of the whole of it answers its length, which is not the base
 * kernel's. A count that is the whole file here matches the base's count.
 */
static bool same_answer(enum kind in, const char *res, const char *want)
{
	char buf[4096];
	ssize_t len = -1;
	int fd;

	if (!strcmp(res, want))
		return true;
	if (in != K_PROC || !isdigit(res[0]) || !isdigit(want[0]))
		return false;
	fd = open("/proc/version", O_RDONLY);
	if (fd >= 0) {
		len = read(fd, buf, sizeof(buf));
		close(fd);
	}
	return len >= 0 && atol(res) == len;
}

int main(int argc, char **argv)
{
	bool print = argc > 1 && !strcmp(argv[1], "--print");
	char res[64];
	int in, out;

	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */

	/* a splice into a socket with no peer answers EPIPE, not a signal */
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGALRM, &sa, NULL);
	if (print) {
		printf("/* splice_pairs --print on %s */\n", "the unpatched base kernel");
		printf("static const struct { const char *in, *out, *res; }\n");
		printf("splice_pairs_base[] = {\n");
		for (in = 0; in < NR_KINDS; in++)
			for (out = 0; out < NR_KINDS; out++) {
				one_pair(in, out, res, sizeof(res));
				printf("\t{ \"%s\", \"%s\", \"%s\" },\n",
				       kind_name[in], kind_name[out], res);
			}
		printf("};\n");
		return 0;
	}

	ksft_print_header();
	ksft_set_plan(NR_KINDS * NR_KINDS);
	for (in = 0; in < NR_KINDS; in++)
		for (out = 0; out < NR_KINDS; out++) {
			const char *want = base_result(in, out);

			one_pair(in, out, res, sizeof(res));
			if (new_pair(in, out)) {
				/* the new pairs move data, or answer as recvfile/sendfile */
				ksft_test_result(strcmp(res, "EINVAL"),
						 "%s -> %s: %s (new pair)\n",
						 kind_name[in], kind_name[out], res);
			} else if (!want) {
				ksft_test_result_skip("%s -> %s: %s (no base result)\n",
						      kind_name[in], kind_name[out], res);
			} else {
				ksft_test_result(same_answer(in, res, want),
						 "%s -> %s: %s, 6.12 answers %s\n",
						 kind_name[in], kind_name[out], res, want);
			}
		}
	ksft_finished();
}
