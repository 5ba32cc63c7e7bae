// SPDX-License-Identifier: GPL-2.0
/*
 * The pipe ring under a racing reader and writer: the head and tail indices
 * wrap around the ring many times while both sides run on different CPUs.
 * Every byte must arrive once and in order, and no wakeup may be lost: all
 * waits are bounded polls, so a lost wakeup fails the test instead of
 * hanging it.
 */
#include "netfile_util.h"

#include <poll.h>
#include "../kselftest_harness.h"

#define WAIT_MS 20000

enum ring_mode {
	RING_RW,		/* write() -> read() */
	RING_NONBLOCK,		/* O_NONBLOCK on both ends, poll() for readiness */
	RING_SPLICE_RELAY,	/* write() -> splice(pipe -> pipe) -> read() */
};

struct ring_side {
	int fd;
	uint64_t total;
	uint64_t seed;
	size_t max_io;
	bool nonblock;
	uint64_t done;
	int err;
	const char *what;
};

FIXTURE(pipe_ring) {
	int a[2], b[2];
};

FIXTURE_VARIANT(pipe_ring) {
	enum ring_mode mode;
	int pipe_size;
	uint64_t total;
	size_t max_io;
};

FIXTURE_VARIANT_ADD(pipe_ring, rw_one_slot) {
	.mode = RING_RW,
	.pipe_size = 4096,
	.total = 8 << 20,
	.max_io = 3 * 4096 + 5,
};

FIXTURE_VARIANT_ADD(pipe_ring, rw_two_slots) {
	.mode = RING_RW,
	.pipe_size = 8192,
	.total = 8 << 20,
	.max_io = 4096 + 1,
};

FIXTURE_VARIANT_ADD(pipe_ring, rw_16_slots) {
	.mode = RING_RW,
	.pipe_size = 65536,
	.total = 16 << 20,
	.max_io = 100000,
};

FIXTURE_VARIANT_ADD(pipe_ring, nonblock_one_slot) {
	.mode = RING_NONBLOCK,
	.pipe_size = 4096,
	.total = 8 << 20,
	.max_io = 5000,
};

FIXTURE_VARIANT_ADD(pipe_ring, nonblock_4_slots) {
	.mode = RING_NONBLOCK,
	.pipe_size = 16384,
	.total = 8 << 20,
	.max_io = 777,
};

FIXTURE_VARIANT_ADD(pipe_ring, splice_relay_one_slot) {
	.mode = RING_SPLICE_RELAY,
	.pipe_size = 4096,
	.total = 4 << 20,
	.max_io = 9000,
};

FIXTURE_VARIANT_ADD(pipe_ring, splice_relay_16_slots) {
	.mode = RING_SPLICE_RELAY,
	.pipe_size = 65536,
	.total = 8 << 20,
	.max_io = 70000,
};

/* Cheap xorshift so each side picks different, reproducible I/O sizes. */
static size_t next_len(uint64_t *state, size_t max)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return 1 + *state % max;
}

static int wait_fd(int fd, short events)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int ret;

	do {
		ret = poll(&pfd, 1, WAIT_MS);
	} while (ret < 0 && errno == EINTR);
	if (ret == 0)
		return -ETIMEDOUT;	/* a lost wakeup, or a hang */
	return ret < 0 ? -errno : 0;
}

static void *writer_main(void *arg)
{
	struct ring_side *w = arg;
	uint64_t rnd = w->seed | 1;
	uint8_t *buf = malloc(w->max_io);

	if (!buf) {
		w->err = ENOMEM;
		return NULL;
	}
	while (w->done < w->total) {
		size_t n = next_len(&rnd, w->max_io);
		ssize_t ret;

		n = NETFILE_MIN(n, w->total - w->done);

		netfile_pattern_fill(buf, n, w->seed, w->done);
		ret = write(w->fd, buf, n);
		if (ret < 0 && errno == EAGAIN && w->nonblock) {
			w->err = -wait_fd(w->fd, POLLOUT);
			if (w->err)
				break;
			continue;
		}
		if (ret <= 0) {
			w->err = ret < 0 ? errno : EIO;
			break;
		}
		w->done += ret;
	}
	free(buf);
	close(w->fd);
	return NULL;
}

static void *relay_main(void *arg)
{
	struct ring_side *r = arg;	/* fd: source pipe; total: sink fd */
	uint64_t rnd = r->seed | 3;
	int sink = r->total;

	for (;;) {
		ssize_t ret = splice(r->fd, NULL, sink, NULL,
				     next_len(&rnd, r->max_io), SPLICE_F_MOVE);
		if (ret == 0)
			break;
		if (ret < 0) {
			r->err = errno;
			break;
		}
		r->done += ret;
	}
	close(sink);
	return NULL;
}

static void read_and_check(struct __test_metadata *_metadata,
			   struct ring_side *r)
{
	uint64_t rnd = r->seed ^ 0xabcdef;
	uint8_t *buf = malloc(r->max_io);

	ASSERT_NE(NULL, buf);
	for (;;) {
		size_t want = next_len(&rnd, r->max_io);
		ssize_t ret = read(r->fd, buf, want), bad;

		if (ret < 0 && errno == EAGAIN && r->nonblock) {
			ASSERT_EQ(0, wait_fd(r->fd, POLLIN))
				TH_LOG("reader stuck at byte %llu of %llu",
				       (unsigned long long)r->done,
				       (unsigned long long)r->total);
			continue;
		}
		ASSERT_LE(0, ret) TH_LOG("read: %s", strerror(errno));
		if (ret == 0)
			break;
		ASSERT_GE(r->total, r->done + ret) TH_LOG("duplicated bytes");
		bad = netfile_pattern_check(buf, ret, r->seed, r->done);
		ASSERT_EQ(-1, bad) TH_LOG("wrong byte at stream offset %llu",
					  (unsigned long long)(r->done + bad));
		r->done += ret;
	}
	free(buf);
}

FIXTURE_SETUP(pipe_ring)
{
	int flags = variant->mode == RING_NONBLOCK ? O_NONBLOCK : 0;

	ASSERT_EQ(0, pipe2(self->a, O_CLOEXEC | flags));
	ASSERT_EQ(variant->pipe_size, fcntl(self->a[1], F_SETPIPE_SZ, variant->pipe_size));
	self->b[0] = -1;
	self->b[1] = -1;
	if (variant->mode == RING_SPLICE_RELAY) {
		ASSERT_EQ(0, pipe2(self->b, O_CLOEXEC));
		ASSERT_EQ(variant->pipe_size,
			  fcntl(self->b[1], F_SETPIPE_SZ, variant->pipe_size));
	}
}

FIXTURE_TEARDOWN(pipe_ring)
{
	close(self->a[0]);
	if (self->b[0] >= 0)
		close(self->b[0]);
}

TEST_F_TIMEOUT(pipe_ring, no_loss_no_dup_no_hang, 600)
{
	uint64_t seed = variant->total * 31 + variant->pipe_size;
	bool nonblock = variant->mode == RING_NONBLOCK;
	struct ring_side w = {
		.fd = self->a[1], .total = variant->total, .seed = seed,
		.max_io = variant->max_io, .nonblock = nonblock,
	};
	struct ring_side relay = {
		.fd = self->a[0], .total = self->b[1], .seed = seed,
		.max_io = variant->max_io,
	};
	struct ring_side r = {
		.fd = self->a[0], .total = variant->total, .seed = seed,
		.max_io = variant->max_io, .nonblock = nonblock,
	};
	pthread_t wt, rt;

	ASSERT_EQ(0, pthread_create(&wt, NULL, writer_main, &w));
	if (variant->mode == RING_SPLICE_RELAY) {
		ASSERT_EQ(0, pthread_create(&rt, NULL, relay_main, &relay));
		r.fd = self->b[0];
	}
	read_and_check(_metadata, &r);
	pthread_join(wt, NULL);
	if (variant->mode == RING_SPLICE_RELAY) {
		pthread_join(rt, NULL);
		EXPECT_EQ(0, relay.err);
		EXPECT_EQ(variant->total, relay.done);
	}
	EXPECT_EQ(0, w.err) TH_LOG("writer: %s", strerror(w.err));
	EXPECT_EQ(variant->total, w.done);
	EXPECT_EQ(variant->total, r.done);
	TH_LOG("%llu ring wraps", (unsigned long long)(variant->total / variant->pipe_size));
}

TEST_HARNESS_MAIN
