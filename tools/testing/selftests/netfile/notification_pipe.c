// SPDX-License-Identifier: GPL-2.0
/*
 * O_NOTIFICATION_PIPE: a pipe whose slots are reserved for kernel-posted
 * notifications (Documentation/core-api/watch_queue.rst). User writes and
 * splices are refused, resizing is refused, and when the reserved slots run
 * out the reader is told that notifications were lost. The splice work in
 * this series must keep all of that.
 */
/*
 * <linux/watch_queue.h> brings the uapi <linux/fcntl.h>, which clashes with
 * glibc's <fcntl.h>: this file uses raw syscalls for pipe2, fcntl, splice
 * and tee instead.
 */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/keyctl.h>
#include <linux/watch_queue.h>
#include "../kselftest_harness.h"

#define NR_NOTES 32	/* one page of 128-byte notes on 4 KiB pages */

static long sys_pipe2(int fds[2], int flags)
{
	return syscall(__NR_pipe2, fds, flags);
}

static long sys_fcntl(int fd, int cmd, long arg)
{
	return syscall(__NR_fcntl, fd, cmd, arg);
}

static long sys_splice(int in, int out, size_t len)
{
	return syscall(__NR_splice, in, NULL, out, NULL, len, 0);
}

static long sys_tee(int in, int out, size_t len)
{
	return syscall(__NR_tee, in, out, len, 0);
}

static long keyctl(int cmd, long a2, long a3, long a4)
{
	return syscall(__NR_keyctl, cmd, a2, a3, a4, 0);
}

static long add_user_key(const char *desc)
{
	return syscall(__NR_add_key, "user", desc, "v", 1,
		       KEY_SPEC_PROCESS_KEYRING);
}

FIXTURE(notification_pipe) {
	int fds[2];
};

FIXTURE_SETUP(notification_pipe)
{
	if (sys_pipe2(self->fds, O_NOTIFICATION_PIPE | O_NONBLOCK | O_CLOEXEC)) {
		if (errno == ENOPKG)
			SKIP(return, "kernel built without CONFIG_WATCH_QUEUE");
		ASSERT_EQ(0, -errno);
	}
}

FIXTURE_TEARDOWN(notification_pipe)
{
	close(self->fds[0]);
	close(self->fds[1]);
}

TEST_F(notification_pipe, user_write_refused)
{
	EXPECT_EQ(-1, write(self->fds[1], "x", 1));
	EXPECT_EQ(EXDEV, errno);
}

TEST_F(notification_pipe, resize_refused)
{
	EXPECT_EQ(-1, sys_fcntl(self->fds[1], F_SETPIPE_SZ, 65536));
	EXPECT_EQ(EBUSY, errno);
}

TEST_F(notification_pipe, splice_refused)
{
	int other[2];

	ASSERT_EQ(0, pipe(other));
	ASSERT_EQ(1, write(other[1], "x", 1));
	/*
	 * Not a pipe for splice: splicing into it goes through its
	 * ->write_iter, which refuses user data like write() does.
	 */
	EXPECT_EQ(-1, sys_splice(other[0], self->fds[1], 1));
	EXPECT_EQ(EXDEV, errno);
	EXPECT_EQ(-1, sys_splice(self->fds[0], other[1], 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sys_tee(other[0], self->fds[1], 1));
	EXPECT_EQ(EINVAL, errno);
	/* Nothing was consumed from the ordinary pipe. */
	EXPECT_EQ(1, read(other[0], &(char){0}, 1));
	close(other[0]);
	close(other[1]);
}

TEST_F(notification_pipe, set_size_bounds)
{
	EXPECT_EQ(-1, ioctl(self->fds[0], IOC_WATCH_QUEUE_SET_SIZE, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fds[0], IOC_WATCH_QUEUE_SET_SIZE, 513));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, ioctl(self->fds[0], IOC_WATCH_QUEUE_SET_SIZE, NR_NOTES));
	EXPECT_EQ(-1, ioctl(self->fds[0], IOC_WATCH_QUEUE_SET_SIZE, NR_NOTES));
	EXPECT_EQ(EBUSY, errno);
}

TEST_F(notification_pipe, empty_read_would_block)
{
	char buf[128];

	ASSERT_EQ(0, ioctl(self->fds[0], IOC_WATCH_QUEUE_SET_SIZE, NR_NOTES));
	EXPECT_EQ(-1, read(self->fds[0], buf, sizeof(buf)));
	EXPECT_EQ(EAGAIN, errno);
}

/* Read every queued message; count key updates and loss markers. */
static void drain_notes(struct __test_metadata *_metadata, int fd,
			int *updates, int *losses)
{
	unsigned char buf[4096];
	ssize_t len;

	*updates = *losses = 0;
	while ((len = read(fd, buf, sizeof(buf))) > 0) {
		ssize_t off = 0;

		while (off < len) {
			struct watch_notification *n = (void *)(buf + off);
			size_t sz = n->info & WATCH_INFO_LENGTH;

			ASSERT_LE(sizeof(*n), sz);
			ASSERT_GE(len - off, (ssize_t)sz);
			if (n->type == WATCH_TYPE_META &&
			    n->subtype == WATCH_META_LOSS_NOTIFICATION)
				(*losses)++;
			else if (n->type == WATCH_TYPE_KEY_NOTIFY &&
				 n->subtype == NOTIFY_KEY_UPDATED)
				(*updates)++;
			off += sz;
		}
	}
	ASSERT_EQ(-1, len);
	ASSERT_EQ(EAGAIN, errno);
}

static long watched_key(struct __test_metadata *_metadata, int fd)
{
	long key = add_user_key("netfile-notification-pipe");

	if (key < 0 && (errno == ENOSYS || errno == EOPNOTSUPP))
		return -1;
	EXPECT_LT(0, key);
	if (keyctl(KEYCTL_WATCH_KEY, key, fd, 0x01)) {
		EXPECT_EQ(EOPNOTSUPP, errno);	/* no CONFIG_KEY_NOTIFICATIONS */
		return -1;
	}
	return key;
}

TEST_F(notification_pipe, notifications_delivered_in_order)
{
	int updates, losses, i;
	long key;

	ASSERT_EQ(0, ioctl(self->fds[0], IOC_WATCH_QUEUE_SET_SIZE, NR_NOTES));
	key = watched_key(_metadata, self->fds[0]);
	if (key < 0)
		SKIP(return, "no key notifications");
	for (i = 0; i < NR_NOTES / 2; i++)
		ASSERT_EQ(0, keyctl(KEYCTL_UPDATE, key, (long)"w", 1));
	drain_notes(_metadata, self->fds[0], &updates, &losses);
	EXPECT_EQ(NR_NOTES / 2, updates);
	EXPECT_EQ(0, losses);
}

/* More notifications than reserved slots: the excess is reported lost. */
TEST_F(notification_pipe, overflow_reports_loss)
{
	int updates, losses, i;
	long key;

	ASSERT_EQ(0, ioctl(self->fds[0], IOC_WATCH_QUEUE_SET_SIZE, NR_NOTES));
	key = watched_key(_metadata, self->fds[0]);
	if (key < 0)
		SKIP(return, "no key notifications");
	for (i = 0; i < NR_NOTES * 4; i++)
		ASSERT_EQ(0, keyctl(KEYCTL_UPDATE, key, (long)"w", 1));
	drain_notes(_metadata, self->fds[0], &updates, &losses);
	EXPECT_GE(NR_NOTES, updates);
	EXPECT_LT(0, updates);
	EXPECT_EQ(1, losses);

	/* The slots are free again after the read. */
	ASSERT_EQ(0, keyctl(KEYCTL_UPDATE, key, (long)"w", 1));
	drain_notes(_metadata, self->fds[0], &updates, &losses);
	EXPECT_EQ(1, updates);
	EXPECT_EQ(0, losses);
}

TEST_HARNESS_MAIN
