/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the netfile selftests: a deterministic byte pattern
 * that can be checked at any stream offset, loopback TCP connections, and a
 * sender thread that feeds a connection with the pattern.
 */
#ifndef NETFILE_UTIL_H
#define NETFILE_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/*
 * The number is provisional until recvfile(2) is merged: the first one
 * after mainline's table when the series was posted, past the numbers that
 * series then under review asked for. Probe before use.
 */
#ifndef __NR_recvfile
#define __NR_recvfile 474
#endif

/* recvfile(2) takes recv(2)'s flags, these two only. */
#define NETFILE_RECVFILE_FLAGS (MSG_DONTWAIT | MSG_WAITALL)

/* recvfile(2); libc has no wrapper yet. */
static inline ssize_t netfile_recvfile(int out, int in, loff_t *off,
				       size_t count, unsigned int flags)
{
	return syscall(__NR_recvfile, out, in, off, count, flags);
}

/*
 * Whether system call @nr is recvfile(2): 1 if it is, 0 if the number is
 * unused (ENOSYS), -1 if some other system call answered. Neither call
 * does anything: recvfile(2) checks its flags (EINVAL) and then its
 * descriptors (EBADF) before any other argument, a fingerprint that a
 * call with a different meaning is unlikely to share. errno is preserved.
 */
static inline int netfile_recvfile_probe_nr(long nr)
{
	int saved = errno, ret = -1;

	if (syscall(nr, -1, -1, NULL, 0, 0) != -1)
		goto out;
	if (errno == ENOSYS) {
		ret = 0;
		goto out;
	}
	if (errno != EBADF)
		goto out;
	if (syscall(nr, -1, -1, NULL, 0, ~0U) != -1 || errno != EINVAL)
		goto out;
	ret = 1;
out:
	errno = saved;
	return ret;
}

/* Whether the running kernel has recvfile(2) at __NR_recvfile. */
static inline int netfile_recvfile_probe(void)
{
	return netfile_recvfile_probe_nr(__NR_recvfile);
}

/*
 * io-wq workers are threads of this process named iou-wrk-<pid>. Returns
 * how many there are for which @match(tid) is true (all if @match is
 * NULL), or -1.
 */
static inline int netfile_iowq_workers(bool (*match)(const char *tid))
{
	char path[300], comm[32];
	struct dirent *de;
	DIR *d = opendir("/proc/self/task");
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		bool wrk;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		wrk = fgets(comm, sizeof(comm), f) && !strncmp(comm, "iou-wrk-", 8);
		fclose(f);
		if (wrk && (!match || match(de->d_name)))
			n++;
	}
	closedir(d);
	return n;
}

/* CLOCK_MONOTONIC in seconds. */
static inline double netfile_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline uint64_t netfile_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

#define NETFILE_MIN(a, b) netfile_min(a, b)

/* Byte at stream offset @off of the pattern named by @seed. */
static inline uint8_t netfile_pattern_byte(uint64_t seed, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9e3779b97f4a7c15ULL ^ seed;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	return x >> ((off & 7) * 8);
}

static inline void netfile_pattern_fill(void *buf, size_t len, uint64_t seed,
					uint64_t off)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = netfile_pattern_byte(seed, off + i);
}

/*
 * Check @len bytes at @buf against the pattern at stream offset @off.
 * Returns the index of the first wrong byte, or -1 if all match.
 */
static inline ssize_t netfile_pattern_check(const void *buf, size_t len,
					    uint64_t seed, uint64_t off)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != netfile_pattern_byte(seed, off + i))
			return i;
	return -1;
}

/* FNV-1a, to report a checksum of what was moved alongside a mismatch. */
static inline uint64_t netfile_fnv1a(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define NETFILE_FNV_INIT 0xcbf29ce484222325ULL

/*
 * A connected loopback TCP pair of the given family. Returns 0 and sets
 * @client and @server, or -errno.
 */
static inline int netfile_tcp_pair(int family, int *client, int *server)
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) :
					     sizeof(struct sockaddr_in);
	int lfd, cfd, sfd, err;

	if (family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&ss, &len))
		goto close_listener;
	cfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd < 0)
		goto close_listener;
	if (connect(cfd, (struct sockaddr *)&ss, len))
		goto close_client;
	sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (sfd < 0)
		goto close_client;
	close(lfd);
	*client = cfd;
	*server = sfd;
	return 0;

close_client:
	err = -errno;
	close(cfd);
	close(lfd);
	return err;
close_listener:
	err = -errno;
	close(lfd);
	return err;
}

struct netfile_sender {
	pthread_t thread;
	int fd;			/* socket to write to */
	uint64_t seed;
	uint64_t total;		/* bytes to send */
	size_t chunk;		/* max bytes per send() */
	bool close_after;	/* close @fd when done */
	uint64_t sent;		/* result: bytes sent */
	int err;		/* result: errno of a failed send, or 0 */
};

static inline void *netfile_sender_main(void *arg)
{
	struct netfile_sender *s = arg;
	size_t bufsz = s->chunk;
	uint8_t *buf = malloc(bufsz);

	if (!buf) {
		s->err = ENOMEM;
		return NULL;
	}
	while (s->sent < s->total) {
		size_t n = NETFILE_MIN(bufsz, s->total - s->sent);
		ssize_t w;

		netfile_pattern_fill(buf, n, s->seed, s->sent);
		w = send(s->fd, buf, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			s->err = errno;
			break;
		}
		s->sent += w;
	}
	free(buf);
	if (s->close_after)
		close(s->fd);
	return NULL;
}

static inline int netfile_sender_start(struct netfile_sender *s)
{
	return -pthread_create(&s->thread, NULL, netfile_sender_main, s);
}

static inline void netfile_sender_join(struct netfile_sender *s)
{
	pthread_join(s->thread, NULL);
}

/* An unlinked regular file in @dir (tmpfs by default), or -errno. */
static inline int netfile_tmpfile(const char *dir)
{
	int fd;

	if (!dir)
		dir = getenv("NETFILE_TMPDIR") ?: "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/*
 * Compare @len bytes of @fd at @off with the pattern at stream offset
 * @stream_off. Returns -1 if equal, else the file offset of the first
 * mismatch; a short file counts as a mismatch at EOF.
 */
static inline off_t netfile_file_check(int fd, off_t off, size_t len,
				       uint64_t seed, uint64_t stream_off)
{
	size_t bufsz = 1 << 20, done = 0;
	uint8_t *buf = malloc(bufsz);
	off_t bad = -1;

	if (!buf)
		return off;
	while (done < len) {
		ssize_t r = pread(fd, buf, NETFILE_MIN(bufsz, len - done), off + done);
		ssize_t at;

		if (r <= 0) {
			bad = off + done;
			break;
		}
		at = netfile_pattern_check(buf, r, seed, stream_off + done);
		if (at >= 0) {
			bad = off + done + at;
			break;
		}
		done += r;
	}
	free(buf);
	return bad;
}

/*
 * Mount @src on @dir in a mount namespace of this process's own, so that
 * the mount goes away with the test. 0 or -errno.
 */
static inline int netfile_private_mount(const char *dir, const char *fstype,
					const char *src, const char *opts)
{
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -errno;
	mkdir(dir, 0755);
	if (mount(src, dir, fstype, 0, opts))
		return -errno;
	return 0;
}

/*
 * A fresh @fstype ("ext4", "xfs") made with @mkfs_opts (or none) on the
 * runner's scratch disk (NETFILE_SCRATCH_DISK), mounted privately on @dir.
 * -ENODEV without a scratch disk, -ENOENT if mkfs fails, else as
 * netfile_private_mount().
 */
static inline int netfile_mount_scratch(const char *dir, const char *fstype,
					const char *mkfs_opts)
{
	const char *disk = getenv("NETFILE_SCRATCH_DISK");
	char cmd[256];

	if (!disk)
		return -ENODEV;
	snprintf(cmd, sizeof(cmd), "mkfs.%s -q %s %s %s >/dev/null 2>&1",
		 fstype, strcmp(fstype, "xfs") ? "-F" : "-f",
		 mkfs_opts ?: "", disk);
	if (system(cmd))
		return -ENOENT;
	return netfile_private_mount(dir, fstype, disk, "");
}

#endif /* NETFILE_UTIL_H */
