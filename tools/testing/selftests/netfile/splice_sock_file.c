// SPDX-License-Identifier: GPL-2.0
/*
 * Baseline: splice(2) from a TCP socket through a pipe into a file moves
 * exactly the bytes the peer sent, for sizes around page and pipe-capacity
 * boundaries and at unaligned file offsets. Later patches change the code
 * under this path; these tests pin what must not change.
 */
#include "netfile_util.h"
#include "../kselftest_harness.h"

FIXTURE(splice_sock_file) {
	int client, server;	/* loopback TCP pair: client sends */
	int pipefd[2];
	int file;
	struct netfile_sender sender;
};

FIXTURE_VARIANT(splice_sock_file) {
	int family;
	uint64_t size;		/* bytes the peer sends */
	off_t file_off;		/* where in the file they land */
	int pipe_size;		/* F_SETPIPE_SZ, 0 for the default */
	size_t send_chunk;	/* sender's write size */
};

FIXTURE_VARIANT_ADD(splice_sock_file, v4_1_byte) {
	.family = AF_INET,
	.size = 1,
	.file_off = 0,
	.pipe_size = 0,
	.send_chunk = 65536,
};

FIXTURE_VARIANT_ADD(splice_sock_file, v4_page_minus_1) {
	.family = AF_INET,
	.size = 4095,
	.file_off = 0,
	.pipe_size = 0,
	.send_chunk = 65536,
};

FIXTURE_VARIANT_ADD(splice_sock_file, v4_page) {
	.family = AF_INET,
	.size = 4096,
	.file_off = 0,
	.pipe_size = 0,
	.send_chunk = 65536,
};

FIXTURE_VARIANT_ADD(splice_sock_file, v4_odd_offset) {
	.family = AF_INET,
	.size = 10007,
	.file_off = 4093,
	.pipe_size = 0,
	.send_chunk = 65536,
};

FIXTURE_VARIANT_ADD(splice_sock_file, v4_over_pipe_capacity) {
	.family = AF_INET,
	.size = 65536 * 3 + 17,
	.file_off = 1,
	.pipe_size = 0,
	.send_chunk = 65536,
};

FIXTURE_VARIANT_ADD(splice_sock_file, v4_1m_small_chunks) {
	.family = AF_INET,
	.size = (1 << 20) + 13,
	.file_off = 511,
	.pipe_size = 0,
	.send_chunk = 1000,
};

FIXTURE_VARIANT_ADD(splice_sock_file, v4_8m) {
	.family = AF_INET,
	.size = 8 << 20,
	.file_off = 0,
	.pipe_size = 0,
	.send_chunk = 1 << 20,
};

FIXTURE_VARIANT_ADD(splice_sock_file, v4_4m_one_slot_pipe) {
	.family = AF_INET,
	.size = 4 << 20,
	.file_off = 3,
	.pipe_size = 4096,
	.send_chunk = 65536,
};

FIXTURE_VARIANT_ADD(splice_sock_file, v6_page_plus_1) {
	.family = AF_INET6,
	.size = 4097,
	.file_off = 0,
	.pipe_size = 0,
	.send_chunk = 65536,
};

FIXTURE_VARIANT_ADD(splice_sock_file, v6_2m_odd) {
	.family = AF_INET6,
	.size = (2 << 20) - 7,
	.file_off = 12345,
	.pipe_size = 0,
	.send_chunk = 65536,
};

FIXTURE_SETUP(splice_sock_file)
{
	int ret;

	ret = netfile_tcp_pair(variant->family, &self->client, &self->server);
	if (ret == -EAFNOSUPPORT || ret == -EADDRNOTAVAIL)
		SKIP(return, "address family %d not available", variant->family);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, pipe2(self->pipefd, O_CLOEXEC));
	if (variant->pipe_size)
		ASSERT_EQ(variant->pipe_size,
			  fcntl(self->pipefd[1], F_SETPIPE_SZ, variant->pipe_size));
	self->file = netfile_tmpfile(NULL);
	ASSERT_LE(0, self->file);

	self->sender = (struct netfile_sender) {
		.fd = self->client, .seed = variant->size ^ 0x5eed,
		.total = variant->size, .chunk = variant->send_chunk,
		.close_after = true,
	};
	ASSERT_EQ(0, netfile_sender_start(&self->sender));
}

FIXTURE_TEARDOWN(splice_sock_file)
{
	close(self->server);
	close(self->pipefd[0]);
	close(self->pipefd[1]);
	close(self->file);
}

/* Drain @len bytes from the pipe into the file at *@off. */
static int drain_pipe(struct __test_metadata *_metadata, int pipe_rd,
		      int file, loff_t *off, size_t len)
{
	while (len) {
		ssize_t n = splice(pipe_rd, NULL, file, off, len, SPLICE_F_MOVE);

		if (n <= 0) {
			TH_LOG("splice pipe -> file: %zd (%s) with %zu left",
			       n, strerror(errno), len);
			return -1;
		}
		len -= n;
	}
	return 0;
}

TEST_F_TIMEOUT(splice_sock_file, moves_exact_bytes, 300)
{
	loff_t off = variant->file_off;
	uint64_t moved = 0;
	struct stat st;
	off_t bad;

	for (;;) {
		ssize_t n = splice(self->server, NULL, self->pipefd[1], NULL,
				   1 << 20, SPLICE_F_MOVE);

		if (n == 0)
			break;
		ASSERT_LT(0, n) TH_LOG("splice socket -> pipe: %s", strerror(errno));
		ASSERT_EQ(0, drain_pipe(_metadata, self->pipefd[0], self->file,
					&off, n));
		moved += n;
	}
	netfile_sender_join(&self->sender);
	ASSERT_EQ(0, self->sender.err);

	EXPECT_EQ(variant->size, moved);
	EXPECT_EQ(variant->file_off + variant->size, off);
	ASSERT_EQ(0, fstat(self->file, &st));
	EXPECT_EQ(variant->file_off + variant->size, st.st_size);

	bad = netfile_file_check(self->file, variant->file_off, variant->size,
				 self->sender.seed, 0);
	EXPECT_EQ(-1, bad) TH_LOG("file differs from what was sent at offset %lld",
				  (long long)bad);
	/* The hole before the data must read back as zeroes. */
	if (variant->file_off) {
		char *zero = calloc(1, variant->file_off);
		char *got = malloc(variant->file_off);

		ASSERT_TRUE(zero && got);
		ASSERT_EQ(variant->file_off, pread(self->file, got, variant->file_off, 0));
		EXPECT_EQ(0, memcmp(zero, got, variant->file_off));
		free(zero);
		free(got);
	}
}

/* A pipe that already holds data is appended to, never overwritten. */
TEST_F_TIMEOUT(splice_sock_file, appends_behind_queued_pipe_data, 120)
{
	static const char head[] = "queued before the splice";
	size_t want = NETFILE_MIN(variant->size, 4096);
	char *buf;
	ssize_t n;

	/* Room for the queued buffer and the spliced one, whatever the variant. */
	ASSERT_EQ(65536, fcntl(self->pipefd[1], F_SETPIPE_SZ, 65536));
	ASSERT_EQ(sizeof(head), write(self->pipefd[1], head, sizeof(head)));
	n = splice(self->server, NULL, self->pipefd[1], NULL, want, 0);
	ASSERT_LT(0, n);
	buf = malloc(sizeof(head) + n);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(sizeof(head) + n, read(self->pipefd[0], buf, sizeof(head) + n));
	EXPECT_EQ(0, memcmp(buf, head, sizeof(head)));
	EXPECT_EQ(-1, netfile_pattern_check(buf + sizeof(head), n,
					    self->sender.seed, 0));
	free(buf);
	/* Let the sender finish: drain the rest. */
	shutdown(self->server, SHUT_RD);
	close(self->server);
	self->server = -1;
	netfile_sender_join(&self->sender);
}

TEST_HARNESS_MAIN
