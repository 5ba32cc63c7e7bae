// SPDX-License-Identifier: GPL-2.0
/*
 * recvfile(2) racing with everything else that can happen to its file and
 * its socket: truncate, hole punching, writes, mmap reads and fsync of
 * the range being written, and shutdown, reset and close of the socket
 * from another thread. Whatever the interleaving, a call returns a count
 * or an errno, the bytes it reports as moved were consumed from the
 * socket and nothing else was, and the file never shows anything but
 * what was sent, zeroes (holes, truncation) or what the racing writer
 * wrote: no stale or uninitialised page-cache contents.
 */
#include "netfile_util.h"

#include <linux/falloc.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"

#define RANGE		(4 * 1024 * 1024)
#define OTHER_BYTE	0xa5

struct racer {
	pthread_t thread;
	int file;
	bool stop;		/* set by the test, read by the racer */
	int mode;
	unsigned long ops;
};

enum { RACE_TRUNCATE, RACE_PUNCH, RACE_WRITE, RACE_MMAP_READ, RACE_FSYNC, RACE_NR };

static const char * const race_names[] = {
	"truncate", "punch hole", "write", "mmap read", "fsync",
};

static unsigned long mmap_sink;	/* keeps the mmap reads */

/* One racing operation on the range recvfile is writing. */
static void race_once(struct racer *r, uint64_t *rng, char *buf)
{
	off_t off, len;
	char *map;

	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
	off = (*rng % RANGE) & ~4095UL;
	len = 4096 * (1 + (*rng >> 40) % 16);

	switch (r->mode) {
	case RACE_TRUNCATE:
		ftruncate(r->file, off);
		break;
	case RACE_PUNCH:
		fallocate(r->file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
		break;
	case RACE_WRITE:
		pwrite(r->file, buf, 4096, off);
		break;
	case RACE_MMAP_READ:
		map = mmap(NULL, RANGE, PROT_READ, MAP_SHARED, r->file, 0);
		if (map != MAP_FAILED) {
			struct stat st;
			off_t i;

			/* only touch what is inside EOF: beyond it is SIGBUS */
			if (!fstat(r->file, &st))
				for (i = 0; i < st.st_size && i < RANGE; i += 4096)
					__atomic_fetch_add(&mmap_sink, map[i], __ATOMIC_RELAXED);
			munmap(map, RANGE);
		}
		break;
	case RACE_FSYNC:
		fsync(r->file);
		break;
	}
	r->ops++;
}

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ULL + r->mode;
	char buf[4096];

	memset(buf, OTHER_BYTE, sizeof(buf));
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED))
		race_once(r, &rng, buf);
	return NULL;
}

/*
 * Every byte of the file is the pattern byte at its offset, zero, or the
 * racing writer's byte.
 */
static off_t find_foreign_byte(int fd, uint64_t seed)
{
	uint8_t *buf = malloc(1 << 16);
	off_t off = 0, bad = -1;
	ssize_t n;

	while (bad < 0 && (n = pread(fd, buf, 1 << 16, off)) > 0) {
		ssize_t i;

		for (i = 0; i < n; i++) {
			uint8_t c = buf[i];

			if (c && c != OTHER_BYTE && c != netfile_pattern_byte(seed, off + i)) {
				bad = off + i;
				break;
			}
		}
		off += n;
	}
	free(buf);
	return bad;
}

FIXTURE(race) {
	int client, server, file;
};

FIXTURE_VARIANT(race) {
	int mode;
	const char *fs;		/* on the scratch disk; NULL: tmpfs */
};

FIXTURE_VARIANT_ADD(race, truncate) { .mode = RACE_TRUNCATE };
FIXTURE_VARIANT_ADD(race, punch_hole) { .mode = RACE_PUNCH };
FIXTURE_VARIANT_ADD(race, write) { .mode = RACE_WRITE };
FIXTURE_VARIANT_ADD(race, mmap_read) { .mode = RACE_MMAP_READ };
FIXTURE_VARIANT_ADD(race, fsync) { .mode = RACE_FSYNC };
/* ext4: block allocation, writeback and journalled truncate in the race */
FIXTURE_VARIANT_ADD(race, ext4_truncate) { .mode = RACE_TRUNCATE, .fs = "ext4" };
FIXTURE_VARIANT_ADD(race, ext4_punch_hole) { .mode = RACE_PUNCH, .fs = "ext4" };
FIXTURE_VARIANT_ADD(race, ext4_write) { .mode = RACE_WRITE, .fs = "ext4" };
FIXTURE_VARIANT_ADD(race, ext4_mmap_read) { .mode = RACE_MMAP_READ, .fs = "ext4" };
FIXTURE_VARIANT_ADD(race, ext4_fsync) { .mode = RACE_FSYNC, .fs = "ext4" };

FIXTURE_SETUP(race)
{
	const char *dir = getenv("NETFILE_RACE_DIR");

	if (variant->fs) {
		int ret = netfile_mount_scratch("/tmp/netfile-race", variant->fs,
						 NULL);

		if (ret == -ENODEV || ret == -ENOENT)
			SKIP(return, "no scratch disk or mkfs.%s", variant->fs);
		ASSERT_EQ(0, ret);
		dir = "/tmp/netfile-race";
	}
	ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &self->client, &self->server));
	self->file = netfile_tmpfile(dir);
	ASSERT_LE(0, self->file);
}

FIXTURE_TEARDOWN(race)
{
	close(self->client);
	close(self->server);
	close(self->file);
}

/*
 * 32 MiB arrive over the socket; recvfile writes them round and round
 * into a 4 MiB range while another thread races with it. The counts add
 * up to what was sent, and the file holds nothing foreign.
 */
TEST_F_TIMEOUT(race, recvfile_against, 600)
{
	struct netfile_sender snd = {
		.fd = self->client, .seed = 77, .total = 32 << 20,
		.chunk = 65536, .close_after = false,
	};
	struct racer r = { .file = self->file, .mode = variant->mode };
	uint64_t moved = 0;

	ASSERT_EQ(0, netfile_sender_start(&snd));
	ASSERT_EQ(0, pthread_create(&r.thread, NULL, racer_main, &r));
	while (moved < snd.total) {
		/* keep stream offset == file offset (mod RANGE) for the check */
		loff_t off = moved % RANGE;
		size_t want = netfile_min(snd.total - moved, RANGE - off);
		ssize_t n = netfile_recvfile(self->file, self->server, &off, want, 0);

		if (n < 0) {
			ASSERT_TRUE(errno == EINTR || errno == EAGAIN)
				TH_LOG("recvfile: %s", strerror(errno));
			continue;
		}
		ASSERT_LT(0, n);
		ASSERT_EQ((moved % RANGE) + n, off);
		moved += n;
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	pthread_join(r.thread, NULL);
	netfile_sender_join(&snd);
	EXPECT_EQ(snd.total, moved);
	TH_LOG("%s: %lu racing operations", race_names[variant->mode], r.ops);
	{
		char c;

		/* nothing left on the socket: every byte sent was moved once */
		EXPECT_EQ(-1, recv(self->server, &c, 1, MSG_DONTWAIT));
	}
}

/*
 * A smaller, checkable version: one lap (4 MiB) so every file offset is
 * written exactly once, with the racer running throughout.
 */
TEST_F_TIMEOUT(race, content_is_sent_zero_or_written, 300)
{
	struct netfile_sender snd = {
		.fd = self->client, .seed = 78, .total = RANGE,
		.chunk = 65536, .close_after = false,
	};
	struct racer r = { .file = self->file, .mode = variant->mode };
	loff_t off = 0;
	off_t bad;

	ASSERT_EQ(0, netfile_sender_start(&snd));
	ASSERT_EQ(0, pthread_create(&r.thread, NULL, racer_main, &r));
	while ((uint64_t)off < snd.total) {
		ssize_t n = netfile_recvfile(self->file, self->server, &off,
					 snd.total - off, 0);

		ASSERT_LT(0, n) TH_LOG("recvfile: %s", strerror(errno));
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	pthread_join(r.thread, NULL);
	netfile_sender_join(&snd);
	bad = find_foreign_byte(self->file, snd.seed);
	EXPECT_EQ(-1, bad) TH_LOG("%s: foreign byte at %lld", race_names[variant->mode],
				  (long long)bad);
}

/* The socket goes away under a blocked recvfile, in each way it can. */
FIXTURE(gone) {
	int client, server, file;
};

FIXTURE_VARIANT(gone) {
	int how;
};

enum { GONE_SHUT_RD, GONE_PEER_RESET, GONE_PEER_CLOSE, GONE_SHUT_RDWR };

FIXTURE_VARIANT_ADD(gone, shutdown_read) { .how = GONE_SHUT_RD };
FIXTURE_VARIANT_ADD(gone, peer_reset) { .how = GONE_PEER_RESET };
FIXTURE_VARIANT_ADD(gone, peer_close) { .how = GONE_PEER_CLOSE };
FIXTURE_VARIANT_ADD(gone, shutdown_both) { .how = GONE_SHUT_RDWR };

FIXTURE_SETUP(gone)
{
	ASSERT_EQ(0, netfile_tcp_pair(AF_INET, &self->client, &self->server));
	self->file = netfile_tmpfile(NULL);
	ASSERT_LE(0, self->file);
}

FIXTURE_TEARDOWN(gone)
{
	close(self->client);
	close(self->server);
	close(self->file);
}

struct blocked_call {
	int file, sock;
	ssize_t ret;
	int err;
	loff_t off;
};

static void *blocked_main(void *arg)
{
	struct blocked_call *b = arg;

	b->ret = netfile_recvfile(b->file, b->sock, &b->off, 1 << 20, MSG_WAITALL);
	b->err = b->ret < 0 ? errno : 0;
	return NULL;
}

TEST_F_TIMEOUT(gone, blocked_recvfile_returns, 60)
{
	struct blocked_call b = { .file = self->file, .sock = self->server };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char buf[10000];
	pthread_t th;

	netfile_pattern_fill(buf, sizeof(buf), 5, 0);
	ASSERT_EQ(sizeof(buf), write(self->client, buf, sizeof(buf)));
	ASSERT_EQ(0, pthread_create(&th, NULL, blocked_main, &b));
	usleep(200000);	/* blocked waiting for the rest of 1 MiB */
	switch (variant->how) {
	case GONE_SHUT_RD:
		shutdown(self->server, SHUT_RD);
		break;
	case GONE_SHUT_RDWR:
		shutdown(self->server, SHUT_RDWR);
		break;
	case GONE_PEER_RESET:
		setsockopt(self->client, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(self->client);
		self->client = -1;
		break;
	case GONE_PEER_CLOSE:
		close(self->client);
		self->client = -1;
		break;
	}
	pthread_join(th, NULL);
	/* a partial count: what was queued; never more, never garbage */
	if (b.ret >= 0) {
		EXPECT_EQ(sizeof(buf), b.ret);
		EXPECT_EQ(sizeof(buf), b.off);
	} else {
		EXPECT_TRUE(b.err == ECONNRESET || b.err == EPIPE)
			TH_LOG("recvfile: %s", strerror(b.err));
	}
	if (b.ret > 0)
		EXPECT_EQ(-1, netfile_file_check(self->file, 0, b.ret, 5, 0));
	/* the file is still fully usable */
	EXPECT_EQ(0, ftruncate(self->file, 0));
	EXPECT_EQ(3, pwrite(self->file, "abc", 3, 0));
}

/*
 * A destination the caller may not write is refused, and nothing is
 * consumed from the socket: a file opened read-only (as after dropping
 * privileges, when only a read-only open succeeds) and a file on a
 * read-only bind mount.
 */
static int refused_without_consuming(int file, int expect_errno)
{
	int client, server;
	loff_t off = 0;
	char c;
	int ret = 0;

	if (netfile_tcp_pair(AF_INET, &client, &server))
		return -1;
	if (write(client, "x", 1) != 1)
		ret = -1;
	usleep(50000);
	if (netfile_recvfile(file, server, &off, 1, MSG_DONTWAIT) != -1 ||
	    errno != expect_errno)
		ret = -1;
	/* the byte is still there */
	if (recv(server, &c, 1, MSG_DONTWAIT) != 1 || c != 'x')
		ret = -1;
	close(client);
	close(server);
	return ret;
}

TEST(unwritable_destinations_refused)
{
	const char *dir = "/tmp/netfile-ro", *bind_dir = "/tmp/netfile-ro-bind";
	int status, fd;
	pid_t pid;

	mkdir(dir, 0755);
	mkdir(bind_dir, 0755);
	fd = open("/tmp/netfile-ro/f", O_CREAT | O_RDWR | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	close(fd);

	/* after dropping privileges: no writable open, a read-only fd fails */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (setgid(65534) || setuid(65534))
			_exit(2);
		if (open("/tmp/netfile-ro/f", O_RDWR) >= 0 || errno != EACCES)
			_exit(3);
		fd = open("/tmp/netfile-ro/f", O_RDONLY);
		_exit(fd < 0 ? 4 : refused_without_consuming(fd, EBADF) ? 5 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* a read-only bind mount */
	ASSERT_EQ(0, unshare(CLONE_NEWNS));
	ASSERT_EQ(0, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	ASSERT_EQ(0, mount(dir, bind_dir, NULL, MS_BIND, NULL));
	ASSERT_EQ(0, mount(NULL, bind_dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
	EXPECT_EQ(-1, open("/tmp/netfile-ro-bind/f", O_RDWR));
	EXPECT_EQ(EROFS, errno);
	fd = open("/tmp/netfile-ro-bind/f", O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, refused_without_consuming(fd, EBADF));
	close(fd);
	umount(bind_dir);
}

TEST_HARNESS_MAIN
