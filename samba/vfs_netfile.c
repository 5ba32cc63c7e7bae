// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * vfs_netfile: SMB2 WRITE payloads with recvfile(2), READs spliced from
 * the page cache with the after-ACK completion of the netfile series.
 *
 *   vfs objects = netfile
 *   min receivefile size = 16384	# smbd leaves big WRITE payloads
 *					# on the socket for recvfile
 *   use sendfile = yes
 *
 * WRITE. smbd calls recvfile_fn with its socket non-blocking, calls again
 * while the result is positive, and on 0 or EAGAIN makes the socket
 * blocking for one more call. recvfile(2) with MSG_WAITALL keeps that
 * contract: it moves what is queued (all of @n on the blocking call) and
 * consumes from the socket only what reached the file. On a file error
 * (ENOSPC, EDQUOT, EIO, ...) this module reads and discards the rest of
 * the payload, so that the SMB2 stream stays in sync, and returns -1 with
 * that errno: smbd would call again after a positive short count and
 * then read the next request as payload.
 *
 * READ. sendfile_fn sends the header as smbd does and the file range
 * with IORING_OP_SPLICE and SPLICE_F_NOTIF, each splice waited for: a
 * second CQE says when TCP has released the page-cache pages (after the
 * ACK). Until then the range is "in flight": a write to it would change
 * what the client receives, even on a retransmission. Where io_uring
 * cannot do that (disabled, an older kernel) or a share sets
 * "netfile:io_uring = no", sendfile(2) sends on a socket with
 * SO_ZEROCOPY_SPLICE set and the completion comes on the socket's error
 * queue; that one makes smbd's socket report POLLERR until it is reaped.
 *
 * Ranges in flight, across smbd processes. Each in-flight READ holds a
 * shared OFD lock on a lock file in the lock directory (netfile.lock),
 * at an offset derived from the file's identity and range; every write
 * through this module (recvfile, pwrite, pwrite_send) takes an exclusive
 * OFD lock on the same place first. So a write waits until every READ
 * that sent that range has completed, in whichever smbd. Locks are never
 * waited for in fcntl(): a process that waits keeps reaping its own
 * completions and releasing its own locks, so two smbds waiting for each
 * other still make progress; and no lock is held across a return to the
 * event loop (async calls run synchronously here), since a waiter does
 * not run it. A wait ends after "netfile:lock wait limit" seconds. The
 * lock file is separate from the data files, so these locks never meet
 * smbd's POSIX byte-range locks.
 * Completions are reaped after every send, before every write and from
 * smbd's event loop (the ring's descriptor; a tevent timer for error
 * queues while anything is in flight), so an idle connection releases
 * its ranges too.
 *
 * If the kernel has no recvfile(2) (probed once: see the netfile
 * series' Documentation/filesystems/recvfile.rst), or neither completion
 * is there (no SPLICE_F_NOTIF, and the socket refuses
 * SO_ZEROCOPY_SPLICE), the module says so once in the log and passes the
 * call to the next module. Counters of what went where are logged at
 * level 1 when the connection ends and appended to netfile.stats in the
 * lock directory.
 *
 * Copyright (C) 2026 the netfile series authors
 *
 * This program is free software; you can redistribute it and/or modify
 * it under the terms of the GNU General Public License as published by
 * the Free Software Foundation; either version 3 of the License, or
 * (at your option) any later version.
 */

#include "includes.h"
#include "smbd/smbd.h"
#include "system/filesys.h"
#include "lib/global_contexts.h"
#include "lib/util/sys_rw.h"
#include "lib/util/tevent_ntstatus.h"
#include "lib/util/tevent_unix.h"
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <linux/errqueue.h>
#include <liburing.h>
#include <poll.h>

#undef DBGC_CLASS
#define DBGC_CLASS DBGC_VFS

/* Provisional numbers of the netfile series, until it is merged. */
#ifndef __NR_recvfile
#define __NR_recvfile 474
#endif
#ifndef SO_ZEROCOPY_SPLICE
#define SO_ZEROCOPY_SPLICE 86
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY_SPLICE
#define SO_EE_ORIGIN_ZEROCOPY_SPLICE 7
#endif

#define NETFILE_SLOT_BITS	42	/* 4 TiB of each file per lock slot */
/*
 * The event-loop reaper's period while anything is in flight. Every smbd
 * with a READ in flight wakes this often: at 2 ms, four READ clients
 * through virtio-net under TCG used 1.54x stock's CPU per GiB, at 20 ms
 * 1.19x. Writers that wait poll by themselves, so this only bounds how
 * long an idle holder keeps a range.
 */
#define NETFILE_REAP_MSEC	20
#define NETFILE_WAIT_MSEC	5
/*
 * How long a write waits for the READs in flight on its range (and a
 * READ for a write in progress), "netfile:lock wait limit" in [global],
 * in seconds, 0 for no limit. A client that stops ACKing keeps its READ
 * in flight for as long as TCP probes its window: without a limit, every
 * smbd that writes the range would stop serving its own client too.
 */
#define NETFILE_WAIT_LIMIT_SEC	60
static int netfile_wait_limit_sec = NETFILE_WAIT_LIMIT_SEC;

struct netfile_range {
	struct netfile_range *prev, *next;
	uint32_t last_id;	/* completes when every id up to it has */
	int lockfd;		/* holds the shared lock; closed to release */
	/* io_uring: the sender's reference plus one per notification due */
	unsigned int refs;
	int res;		/* the last splice's result CQE */
	bool res_seen;
};

#define NETFILE_EARLY	64

/*
 * A socket READs were sent on. Per process, not per tree connect: every
 * share on the connection reads the same error queue.
 */
struct netfile_sock {
	struct netfile_sock *prev, *next;
	int fd;
	bool notify_ok;
	uint32_t next_id;	/* id of the next sendfile() that sends */
	uint32_t done;		/* ids below this have completed */
	struct { uint32_t lo, hi; } early[NETFILE_EARLY]; /* beyond done */
	unsigned int nr_early;
	struct netfile_range *inflight;
};

struct netfile_counters {
	uint64_t recvfile_calls, recvfile_bytes, drained;
	uint64_t sendfile_calls, sendfile_bytes, completions;
	uint64_t write_waits, fallbacks, wait_timeouts;
	uint64_t uring_sends;	/* of sendfile_calls, through io_uring */
	uint64_t copies;	/* server-side copies done under their lock */
};

static struct netfile_sock *netfile_socks;
static struct tevent_timer *netfile_reaper_te;
static struct netfile_counters netfile_n, netfile_logged;
/* the lock-file range a server-side copy of this smbd holds (l_len 0: none) */
static struct flock netfile_copy_lock;

/* Per tree connect: the descriptor its synchronous writes lock with. */
struct netfile_state {
	int lockfd;
	bool use_uring;		/* netfile:io_uring, yes by default */
};

/* ---- probing -------------------------------------------------------- */

/*
 * Whether recvfile(2) answers at its provisional number: it checks its
 * flags (EINVAL) before its descriptors (EBADF), and neither call does
 * anything. ENOSYS, or any other answer, means no.
 */
static bool netfile_have_recvfile(void)
{
	static int have = -1;

	if (have >= 0)
		return have;
	have = syscall(__NR_recvfile, -1, -1, NULL, 0, 0) == -1 &&
	       errno == EBADF &&
	       syscall(__NR_recvfile, -1, -1, NULL, 0, ~0U) == -1 &&
	       errno == EINVAL;
	if (!have)
		DBG_ERR("netfile: this kernel has no recvfile(2) at %d; "
			"WRITEs go to the next module\n", __NR_recvfile);
	return have;
}

/* ---- the lock file -------------------------------------------------- */

/*
 * A new open file description of the lock file (OFD locks belong to it).
 * As root: the file is root's, 0600, and smbd opens it for a READ or a
 * write while it acts as the client's user.
 */
static int netfile_open_lockfile(void)
{
	char *path = lock_path(talloc_tos(), "netfile.lock");
	int fd, err;

	if (path == NULL)
		return -1;
	become_root();
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	err = errno;
	unbecome_root();
	if (fd == -1)
		DBG_ERR("netfile: cannot open %s: %s\n", path, strerror(err));
	TALLOC_FREE(path);
	errno = err;
	return fd;
}

/* Where in the lock file the range @off..@off+@n of @fsp is. */
static void netfile_lock_range(files_struct *fsp, off_t off, size_t n,
			       struct flock *fl)
{
	const struct file_id *id = &fsp->file_id;
	const off_t slot_len = (off_t)1 << NETFILE_SLOT_BITS;
	uint64_t h = id->devid * 0x9e3779b97f4a7c15ULL ^ id->inode;
	off_t start, end;

	h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ULL;
	h = (h >> 44) & ((1 << (62 - NETFILE_SLOT_BITS)) - 1);
	/* beyond the slot: lock to its end, which is only more careful */
	start = MIN(off, slot_len - 1);
	end = MIN((off_t)(off + n), slot_len);
	if (end <= start)
		end = start + 1;
	*fl = (struct flock) {
		.l_whence = SEEK_SET,
		.l_start = (off_t)(h << NETFILE_SLOT_BITS) + start,
		.l_len = end - start,
	};
}

/* ---- completions ---------------------------------------------------- */

static void netfile_reap_all(void);

static void netfile_reaper(struct tevent_context *ev, struct tevent_timer *te,
			   struct timeval now, void *private_data)
{
	netfile_reaper_te = NULL;
	netfile_reap_all();
}

/* While anything is in flight, reap from the event loop too. */
static void netfile_arm_reaper(void)
{
	struct netfile_sock *ns;

	if (netfile_reaper_te != NULL)
		return;
	for (ns = netfile_socks; ns != NULL; ns = ns->next)
		if (ns->inflight != NULL)
			break;
	if (ns == NULL)
		return;
	netfile_reaper_te = tevent_add_timer(global_event_context(), NULL,
				timeval_current_ofs_msec(NETFILE_REAP_MSEC),
				netfile_reaper, NULL);
}

/* ids are u32 and wrap: compare by distance */
static bool netfile_id_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/* Note the completed ids @lo..@hi; ranges may come merged or out of order. */
static void netfile_complete(struct netfile_sock *ns, uint32_t lo, uint32_t hi)
{
	bool moved;
	unsigned int i;

	netfile_n.completions += hi - lo + 1;
	if (netfile_id_before(ns->done, lo)) {
		if (ns->nr_early < NETFILE_EARLY) {
			ns->early[ns->nr_early].lo = lo;
			ns->early[ns->nr_early++].hi = hi;
		} else {
			DBG_ERR("netfile: too many early completions\n");
		}
		return;
	}
	if (!netfile_id_before(hi, ns->done))
		ns->done = hi + 1;
	do {
		moved = false;
		for (i = 0; i < ns->nr_early; i++) {
			if (netfile_id_before(ns->done, ns->early[i].lo))
				continue;
			if (!netfile_id_before(ns->early[i].hi, ns->done))
				ns->done = ns->early[i].hi + 1;
			ns->early[i] = ns->early[--ns->nr_early];
			moved = true;
			break;
		}
	} while (moved);
}

/* Release every range whose completions have all arrived. */
static void netfile_release_done(struct netfile_sock *ns)
{
	struct netfile_range *r, *next;

	for (r = ns->inflight; r != NULL; r = next) {
		next = r->next;
		if (!netfile_id_before(r->last_id, ns->done))
			continue;
		DLIST_REMOVE(ns->inflight, r);
		if (r->lockfd != -1)
			close(r->lockfd);
		TALLOC_FREE(r);
	}
}

/* Read the socket's splice completions without waiting. */
static void netfile_reap(struct netfile_sock *ns)
{
	char control[128];

	while (ns->inflight != NULL) {
		struct msghdr msg = {
			.msg_control = control,
			.msg_controllen = sizeof(control),
		};
		struct sock_extended_err *serr;
		struct cmsghdr *cm;

		if (recvmsg(ns->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) == -1)
			break;
		cm = CMSG_FIRSTHDR(&msg);
		if (cm == NULL)
			continue;
		serr = (struct sock_extended_err *)CMSG_DATA(cm);
		/* smbd has no other user of the error queue */
		if (serr->ee_origin != SO_EE_ORIGIN_ZEROCOPY_SPLICE ||
		    serr->ee_errno != 0)
			continue;
		netfile_complete(ns, serr->ee_info, serr->ee_data);
	}
	netfile_release_done(ns);
}

/*
 * READs through io_uring. One ring per smbd process; a READ sent with
 * IORING_OP_SPLICE and SPLICE_F_NOTIF gets its completion as a second
 * CQE (IORING_CQE_F_NOTIF) instead of on the socket's error queue. So
 * smbd's socket never reports POLLERR for it: tevent takes POLLERR as an
 * error on the connection's fde, keeps that mark for good, and from then
 * on would not report the socket writable while smbd waits for nothing
 * else (samba/README.md). The ring's descriptor is in smbd's event loop,
 * so a range is released as soon as its notification is posted.
 */
#ifndef SPLICE_F_NOTIF
#define SPLICE_F_NOTIF		(1U << 30)	/* <linux/io_uring.h>, netfile */
#endif
#define NETFILE_URING_ENTRIES	16
#define NETFILE_URING_PROBE	0	/* user_data of the probe, no range */

static struct {
	struct io_uring ring;
	pid_t pid;		/* the process that set the ring up */
	int usable;		/* -1 not tried yet, 0 no, 1 yes */
	struct tevent_fd *fde;
	struct netfile_range *inflight;
} netfile_uring = { .usable = -1 };

/* Drop a reference; the last one releases the range. */
static void netfile_uring_put(struct netfile_range *r)
{
	if (--r->refs > 0)
		return;
	DLIST_REMOVE(netfile_uring.inflight, r);
	close(r->lockfd);
	TALLOC_FREE(r);
}

static void netfile_uring_cqe(const struct io_uring_cqe *cqe)
{
	struct netfile_range *r = io_uring_cqe_get_data(cqe);

	if (cqe->user_data == NETFILE_URING_PROBE)
		return;
	if (cqe->flags & IORING_CQE_F_NOTIF) {
		netfile_n.completions++;
		netfile_uring_put(r);
		return;
	}
	r->res = cqe->res;
	r->res_seen = true;
	if (cqe->flags & IORING_CQE_F_MORE) {
		netfile_n.sendfile_calls++;
		netfile_n.uring_sends++;
	} else {
		/* rejected at prep: no notification follows */
		netfile_uring_put(r);
	}
}

/* Handle every CQE posted so far, without a system call. */
static void netfile_uring_reap(void)
{
	struct io_uring_cqe *cqe;

	if (netfile_uring.usable != 1 || netfile_uring.pid != getpid())
		return;
	while (io_uring_peek_cqe(&netfile_uring.ring, &cqe) == 0) {
		netfile_uring_cqe(cqe);
		io_uring_cqe_seen(&netfile_uring.ring, cqe);
	}
}

static void netfile_uring_handler(struct tevent_context *ev,
				  struct tevent_fd *fde, uint16_t flags,
				  void *private_data)
{
	netfile_uring_reap();
}

static void netfile_reap_all(void)
{
	struct netfile_sock *ns;

	netfile_uring_reap();
	for (ns = netfile_socks; ns != NULL; ns = ns->next)
		netfile_reap(ns);
	netfile_arm_reaper();
}

/*
 * Wait up to @msec for a completion: a CQE on the ring, or one queued on
 * any socket with ranges in flight.
 */
static void netfile_wait_some(int msec)
{
	struct pollfd pfd[9];
	struct netfile_sock *ns;
	int n = 0;

	if (netfile_uring.inflight != NULL)
		pfd[n++] = (struct pollfd) {
			.fd = netfile_uring.ring.ring_fd,
			.events = POLLIN,
		};
	for (ns = netfile_socks; ns != NULL && n < 9; ns = ns->next)
		if (ns->inflight != NULL)
			pfd[n++] = (struct pollfd) { .fd = ns->fd };
	/* POLLIN: a CQE; POLLERR: a completion queued; else just sleep */
	poll(pfd, n, msec);
}

static bool netfile_waited_too_long(const struct timespec *start)
{
	struct timespec now;

	if (netfile_wait_limit_sec <= 0)
		return false;
	clock_gettime_mono(&now);
	return now.tv_sec - start->tv_sec >= netfile_wait_limit_sec;
}

/*
 * Take a lock on the range without waiting in fcntl(): retry while
 * reaping our own completions, so that a lock we hold ourselves (our own
 * READ of the range still in flight) or one held by an smbd that waits
 * for us is released meanwhile.
 */
static int netfile_lock(int fd, short type, files_struct *fsp, off_t off,
			size_t n)
{
	struct timespec start;
	struct flock fl;
	bool waited = false;

	netfile_lock_range(fsp, off, n, &fl);
	fl.l_type = type;
	for (;;) {
		netfile_reap_all();
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			break;
		if (errno != EAGAIN && errno != EACCES)
			return -1;
		if (!waited) {
			clock_gettime_mono(&start);
			if (type == F_WRLCK)
				netfile_n.write_waits++;
		} else if (netfile_waited_too_long(&start)) {
			netfile_n.wait_timeouts++;
			DBG_ERR("netfile: a %s of %s waited %d s for its "
				"range: giving up\n",
				type == F_WRLCK ? "write" : "READ",
				fsp_str_dbg(fsp), netfile_wait_limit_sec);
			errno = ETIMEDOUT;
			return -1;
		}
		waited = true;
		netfile_wait_some(NETFILE_WAIT_MSEC);
	}
	return 0;
}

/* Release the range; errno is kept, for the result of the locked call. */
static void netfile_unlock(int fd, files_struct *fsp, off_t off, size_t n)
{
	struct flock fl;
	int err = errno;

	netfile_lock_range(fsp, off, n, &fl);
	fl.l_type = F_UNLCK;
	fcntl(fd, F_OFD_SETLK, &fl);
	errno = err;
}

/* ---- WRITE: recvfile ------------------------------------------------ */

/* Read and discard @count bytes: the rest of a payload that was refused. */
static bool netfile_drain(int sock, size_t count)
{
	/* not on the stack: smbd runs this path in one thread at a time */
	static char buf[65536];
	int flags = fcntl(sock, F_GETFL, 0);
	bool ok = true;

	if (flags != -1 && (flags & O_NONBLOCK))
		fcntl(sock, F_SETFL, flags & ~O_NONBLOCK);
	while (count > 0) {
		ssize_t r = recv(sock, buf, MIN(sizeof(buf), count), 0);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			ok = false;
			break;
		}
		count -= r;
	}
	if (flags != -1 && (flags & O_NONBLOCK))
		fcntl(sock, F_SETFL, flags);
	return ok;
}

/*
 * Move up to @n bytes. Returns what moved (the socket ran dry: smbd
 * calls again), 0 at end of stream, -1/EAGAIN with nothing moved, or -1
 * with the file's or socket's errno after draining the rest of @n.
 */
static ssize_t netfile_recvfile_locked(int sock, int fd, off_t offset,
				       size_t n)
{
	loff_t pos = offset;
	size_t done = 0;

	while (done < n) {
		ssize_t r = syscall(__NR_recvfile, fd, sock, &pos, n - done,
				    MSG_WAITALL);
		int err = errno;

		if (r > 0) {
			netfile_n.recvfile_calls++;
			netfile_n.recvfile_bytes += r;
			done += r;
			continue;
		}
		if (r == 0)
			return done;
		if (err == EINTR)
			continue;
		if (err == EAGAIN || err == EWOULDBLOCK) {
			if (done > 0)
				return done;
			errno = err;
			return -1;
		}
		/* the file refused (or the socket failed): keep in sync */
		if (!netfile_drain(sock, n - done))
			DBG_WARNING("netfile: drain after %s failed\n",
				    strerror(err));
		netfile_n.drained += n - done;
		errno = err;
		return -1;
	}
	return done;
}

/*
 * smbd may move one WRITE payload in several calls (what is queued, then
 * the rest on a blocking socket): hold the range locked from the first
 * call to the last, so that no READ sees half of the new data.
 */
static struct {
	files_struct *fsp;
	off_t start, end;	/* the locked range */
	off_t next;		/* the next call continues here */
} netfile_wpending;

static struct tevent_timer *netfile_wpending_te;

static void netfile_wpending_end(struct netfile_state *st)
{
	files_struct *fsp = netfile_wpending.fsp;

	if (fsp == NULL)
		return;
	netfile_unlock(st->lockfd, fsp, netfile_wpending.start,
		       netfile_wpending.end - netfile_wpending.start);
	netfile_wpending.fsp = NULL;
	TALLOC_FREE(netfile_wpending_te);
}

/*
 * smbd's calls for one payload follow each other without a return to the
 * event loop: once the loop runs, the WRITE is over (whatever its end).
 */
static void netfile_wpending_timeout(struct tevent_context *ev,
				     struct tevent_timer *te,
				     struct timeval now, void *private_data)
{
	netfile_wpending_te = NULL;
	netfile_wpending_end(private_data);
}

static ssize_t netfile_recvfile(vfs_handle_struct *handle, int fromfd,
				files_struct *tofsp, off_t offset, size_t n)
{
	struct netfile_state *st;
	ssize_t ret;
	int err;

	SMB_VFS_HANDLE_GET_DATA(handle, st, struct netfile_state, return -1);
	if (n == 0)
		return 0;
	if (!netfile_have_recvfile() || st->lockfd == -1) {
		netfile_n.fallbacks++;
		return SMB_VFS_NEXT_RECVFILE(handle, fromfd, tofsp, offset, n);
	}
	if (netfile_wpending.fsp != tofsp || netfile_wpending.next != offset ||
	    netfile_wpending.end != (off_t)(offset + n)) {
		netfile_wpending_end(st);
		if (netfile_lock(st->lockfd, F_WRLCK, tofsp, offset, n) == -1) {
			/* refused: the payload still has to leave the socket */
			err = errno;
			if (!netfile_drain(fromfd, n))
				DBG_WARNING("netfile: drain after %s failed\n",
					    strerror(err));
			netfile_n.drained += n;
			errno = err;
			return -1;
		}
		netfile_wpending.fsp = tofsp;
		netfile_wpending.start = offset;
		netfile_wpending.end = offset + n;
	}
	ret = netfile_recvfile_locked(fromfd, fsp_get_io_fd(tofsp), offset, n);
	err = errno;
	/*
	 * smbd calls again for the rest after a short count, and once more
	 * on a blocking socket after 0 or EAGAIN: keep the range locked.
	 */
	if ((ret > 0 && (size_t)ret < n) || ret == 0 ||
	    (ret == -1 && (err == EAGAIN || err == EWOULDBLOCK))) {
		netfile_wpending.next = offset + MAX(ret, 0);
		if (netfile_wpending_te == NULL)
			netfile_wpending_te = tevent_add_timer(
				global_event_context(), NULL,
				timeval_current_ofs_msec(0),
				netfile_wpending_timeout, st);
	} else {
		netfile_wpending_end(st);
	}
	errno = err;
	return ret;
}

/* ---- other writes --------------------------------------------------- */

static ssize_t netfile_pwrite(vfs_handle_struct *handle, files_struct *fsp,
			      const void *data, size_t n, off_t offset)
{
	struct netfile_state *st;
	ssize_t ret;

	SMB_VFS_HANDLE_GET_DATA(handle, st, struct netfile_state, return -1);
	if (st->lockfd == -1 || n == 0)
		return SMB_VFS_NEXT_PWRITE(handle, fsp, data, n, offset);
	if (netfile_lock(st->lockfd, F_WRLCK, fsp, offset, n) == -1)
		return -1;
	ret = SMB_VFS_NEXT_PWRITE(handle, fsp, data, n, offset);
	netfile_unlock(st->lockfd, fsp, offset, n);
	return ret;
}

/*
 * Writes that do not carry data still change it: a truncate drops (and
 * zeroes the tail of) what lies beyond the new size, a punched hole
 * reads as zeros. Both wait, as a write does, for READs in flight on
 * what they change.
 */
#define NETFILE_TO_EOF	((size_t)1 << NETFILE_SLOT_BITS)

static int netfile_ftruncate(vfs_handle_struct *handle, files_struct *fsp,
			     off_t len)
{
	struct netfile_state *st;
	int ret;

	SMB_VFS_HANDLE_GET_DATA(handle, st, struct netfile_state, return -1);
	if (st->lockfd == -1 || len < 0)
		return SMB_VFS_NEXT_FTRUNCATE(handle, fsp, len);
	if (netfile_lock(st->lockfd, F_WRLCK, fsp, len, NETFILE_TO_EOF) == -1)
		return -1;
	ret = SMB_VFS_NEXT_FTRUNCATE(handle, fsp, len);
	netfile_unlock(st->lockfd, fsp, len, NETFILE_TO_EOF);
	return ret;
}

static int netfile_fallocate(vfs_handle_struct *handle, files_struct *fsp,
			     uint32_t mode, off_t offset, off_t len)
{
	struct netfile_state *st;
	int ret;

	SMB_VFS_HANDLE_GET_DATA(handle, st, struct netfile_state, return -1);
	if (st->lockfd == -1 || !(mode & VFS_FALLOCATE_FL_PUNCH_HOLE) ||
	    offset < 0 || len <= 0)
		return SMB_VFS_NEXT_FALLOCATE(handle, fsp, mode, offset, len);
	if (netfile_lock(st->lockfd, F_WRLCK, fsp, offset, len) == -1)
		return -1;
	ret = SMB_VFS_NEXT_FALLOCATE(handle, fsp, mode, offset, len);
	netfile_unlock(st->lockfd, fsp, offset, len);
	return ret;
}

/*
 * Server-side copy (FSCTL_SRV_COPYCHUNK): vfs_default copies a chunk with
 * copy_file_range() inside its send function, and only when it cannot
 * (the same file with overlapping ranges, EXDEV, ...) through
 * pread_send/pwrite_send, which come back up through this module and
 * take their own locks. copy_file_range() writes the page cache behind
 * the module's back, so the whole send call runs under the exclusive
 * lock on the destination range: it waits for READs of the range in
 * flight, as a WRITE does. The lock is dropped when the call returns,
 * before smbd's event loop runs again (see netfile_io_send()).
 *
 * The fallback's first read of the source runs inside the call, and it
 * goes unlocked (netfile_copying()): a pread into smbd's buffer is not a
 * READ in flight, and copy_file_range() does not lock the source either.
 * Locked, it could wait with the destination held: for the exclusive
 * lock of this very smbd when the source is the destination file (on
 * the same lock-file description it would even turn that lock into a
 * shared one and then drop it), or for another smbd that copies the
 * other way round and waits for us.
 *
 * A copy of 0 bytes is one that vfs_fruit, above this module, turns into
 * a whole-file copy (macOS copyfile): it is locked to the end of file.
 * Modules that write data themselves (vfs_btrfs clones ranges) must come
 * after this one in "vfs objects".
 */
struct netfile_copy_state {
	vfs_handle_struct *handle;
	off_t copied;
	bool locked;
};

static bool netfile_copying(void)
{
	return netfile_copy_lock.l_len != 0;
}

static void netfile_offload_write_done(struct tevent_req *subreq);

static struct tevent_req *netfile_offload_write_send(
	vfs_handle_struct *handle, TALLOC_CTX *mem_ctx,
	struct tevent_context *ev, uint32_t fsctl, DATA_BLOB *token,
	off_t transfer_offset, files_struct *dest_fsp, off_t dest_off,
	off_t num)
{
	struct netfile_copy_state *state;
	struct netfile_state *st;
	struct tevent_req *req, *subreq;
	size_t len;

	SMB_VFS_HANDLE_GET_DATA(handle, st, struct netfile_state,
				return NULL);
	req = tevent_req_create(mem_ctx, &state, struct netfile_copy_state);
	if (req == NULL)
		return NULL;
	state->handle = handle;

	len = num > 0 ? (size_t)num : NETFILE_TO_EOF;
	if (netfile_copying()) {
		DBG_ERR("netfile: a copy into %s inside another copy: "
			"not locked\n", fsp_str_dbg(dest_fsp));
	} else if (st->lockfd != -1 && dest_off >= 0 && num >= 0) {
		if (netfile_lock(st->lockfd, F_WRLCK, dest_fsp, dest_off,
				 len) == -1) {
			tevent_req_nterror(req, map_nt_error_from_unix(errno));
			return tevent_req_post(req, ev);
		}
		state->locked = true;
		netfile_lock_range(dest_fsp, dest_off, len, &netfile_copy_lock);
	}
	subreq = SMB_VFS_NEXT_OFFLOAD_WRITE_SEND(handle, state, ev, fsctl,
						 token, transfer_offset,
						 dest_fsp, dest_off, num);
	if (state->locked) {
		netfile_copy_lock.l_len = 0;
		netfile_unlock(st->lockfd, dest_fsp, dest_off, len);
	}
	if (tevent_req_nomem(subreq, req))
		return tevent_req_post(req, ev);
	tevent_req_set_callback(subreq, netfile_offload_write_done, req);
	return req;
}

static void netfile_offload_write_done(struct tevent_req *subreq)
{
	struct tevent_req *req =
		tevent_req_callback_data(subreq, struct tevent_req);
	struct netfile_copy_state *state =
		tevent_req_data(req, struct netfile_copy_state);
	NTSTATUS status;

	status = SMB_VFS_NEXT_OFFLOAD_WRITE_RECV(state->handle, subreq,
						 &state->copied);
	TALLOC_FREE(subreq);
	if (tevent_req_nterror(req, status))
		return;
	if (state->locked)
		netfile_n.copies++;
	tevent_req_done(req);
}

static NTSTATUS netfile_offload_write_recv(vfs_handle_struct *handle,
					   struct tevent_req *req,
					   off_t *copied)
{
	struct netfile_copy_state *state =
		tevent_req_data(req, struct netfile_copy_state);
	NTSTATUS status;

	if (tevent_req_is_nterror(req, &status)) {
		*copied = 0;
		tevent_req_received(req);
		return status;
	}
	*copied = state->copied;
	tevent_req_received(req);
	return NT_STATUS_OK;
}

/*
 * Async reads and writes run here, synchronously, under their lock, and
 * complete at once. A lock held across a return to the event loop (until
 * a thread pool job is done) could be waited for by this same smbd in
 * netfile_lock(), which does not run the event loop: the job's callback
 * that would release it would never run. A client that sends a small
 * WRITE (these go through pwrite_send) and then a READ of the same range
 * would hang its connection. smbd comes here for WRITEs that do not
 * reach recvfile (small, signed, encrypted, compounded) and, with
 * "aio read size" set, for READs that do not reach sendfile: a
 * page-cache copy each, with the lock that keeps a READ served from a
 * buffer from being half old and half new.
 */
struct netfile_io_state {
	ssize_t ret;
	struct vfs_aio_state aio_state;
};

static ssize_t netfile_pwrite(vfs_handle_struct *handle, files_struct *fsp,
			      const void *data, size_t n, off_t offset);
static ssize_t netfile_pread(vfs_handle_struct *handle, files_struct *fsp,
			     void *data, size_t n, off_t offset);

static struct tevent_req *netfile_io_send(vfs_handle_struct *handle,
					  TALLOC_CTX *mem_ctx,
					  struct tevent_context *ev,
					  files_struct *fsp, void *data,
					  size_t n, off_t offset, bool write)
{
	struct tevent_req *req;
	struct netfile_io_state *state;
	struct timespec start, end;

	req = tevent_req_create(mem_ctx, &state, struct netfile_io_state);
	if (req == NULL)
		return NULL;
	clock_gettime_mono(&start);
	if (write)
		state->ret = netfile_pwrite(handle, fsp, data, n, offset);
	else
		state->ret = netfile_pread(handle, fsp, data, n, offset);
	if (state->ret == -1)
		state->aio_state.error = errno;
	clock_gettime_mono(&end);
	state->aio_state.duration = nsec_time_diff(&end, &start);
	tevent_req_done(req);
	return tevent_req_post(req, ev);
}

static ssize_t netfile_io_recv(struct tevent_req *req,
			       struct vfs_aio_state *vfs_aio_state)
{
	struct netfile_io_state *state =
		tevent_req_data(req, struct netfile_io_state);

	if (tevent_req_is_unix_error(req, &vfs_aio_state->error))
		return -1;
	*vfs_aio_state = state->aio_state;
	return state->ret;
}

static struct tevent_req *netfile_pwrite_send(vfs_handle_struct *handle,
					      TALLOC_CTX *mem_ctx,
					      struct tevent_context *ev,
					      files_struct *fsp,
					      const void *data, size_t n,
					      off_t offset)
{
	return netfile_io_send(handle, mem_ctx, ev, fsp, discard_const(data),
			       n, offset, true);
}

static struct tevent_req *netfile_pread_send(vfs_handle_struct *handle,
					     TALLOC_CTX *mem_ctx,
					     struct tevent_context *ev,
					     files_struct *fsp, void *data,
					     size_t n, off_t offset)
{
	return netfile_io_send(handle, mem_ctx, ev, fsp, data, n, offset,
			       false);
}

static ssize_t netfile_pread(vfs_handle_struct *handle, files_struct *fsp,
			     void *data, size_t n, off_t offset)
{
	struct netfile_state *st;
	ssize_t ret;

	SMB_VFS_HANDLE_GET_DATA(handle, st, struct netfile_state, return -1);
	if (st->lockfd == -1 || n == 0 || netfile_copying())
		return SMB_VFS_NEXT_PREAD(handle, fsp, data, n, offset);
	if (netfile_lock(st->lockfd, F_RDLCK, fsp, offset, n) == -1)
		return -1;
	ret = SMB_VFS_NEXT_PREAD(handle, fsp, data, n, offset);
	netfile_unlock(st->lockfd, fsp, offset, n);
	return ret;
}

/* ---- READ: sendfile with the completion ------------------------------ */

static struct netfile_sock *netfile_sock_get(int fd)
{
	struct netfile_sock *ns;
	int one = 1;

	for (ns = netfile_socks; ns != NULL; ns = ns->next)
		if (ns->fd == fd)
			return ns->notify_ok ? ns : NULL;
	ns = talloc_zero(NULL, struct netfile_sock);
	if (ns == NULL)
		return NULL;
	ns->fd = fd;
	ns->notify_ok = setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY_SPLICE, &one,
				   sizeof(one)) == 0;
	if (!ns->notify_ok)
		DBG_ERR("netfile: no SO_ZEROCOPY_SPLICE on this kernel or "
			"socket (%s); READs go to the next module\n",
			strerror(errno));
	DLIST_ADD(netfile_socks, ns);
	return ns->notify_ok ? ns : NULL;
}

/* send() all of @len, blocking if the socket is full (as smbd does). */
static bool netfile_send_all(int sock, const uint8_t *p, size_t len,
			     int flags, int *old_flags)
{
	while (len > 0) {
		ssize_t r = send(sock, p, len, flags);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    *old_flags == -1) {
			*old_flags = fcntl(sock, F_GETFL, 0);
			if (set_blocking(sock, true) == -1)
				return false;
			continue;
		}
		if (r <= 0)
			return false;
		p += r;
		len -= r;
	}
	return true;
}

/*
 * What sendfile_fn returns after @sent of @n file bytes went out after a
 * header of @hdr_len, with @err the error that ended the send (0: none,
 * or end of file). As sys_sendfile(): a short count only at end of file.
 * After an error, -1: smbd pads a short count with zeros and calls it a
 * READ, and it ends the connection on -1, which is the only safe answer
 * once part of the range went out. Before any of it, EINTR says "header
 * sent, send the range yourself": smbd then copies it with pread (through
 * this module's lock) and write. ENOSYS (with no header) makes it do the
 * whole READ that way; with a header it would send the header again.
 */
static ssize_t netfile_send_result(size_t hdr_len, size_t n, size_t sent,
				   int err)
{
	if (err == 0) {
		errno = 0;
		return hdr_len + sent;
	}
	if (sent == 0 && (err == ENOSYS || err == EINVAL ||
			  err == EOPNOTSUPP || err == EBUSY))
		err = hdr_len > 0 ? EINTR : ENOSYS;
	errno = err;
	return -1;
}

/*
 * sys_sendfile() with one completion id per sendfile() call that sent
 * data; returns what sys_sendfile() returns (header plus file bytes).
 */
static ssize_t netfile_send_range(struct netfile_sock *ns, int fd,
				  const DATA_BLOB *hdr, off_t offset,
				  size_t n)
{
	size_t left = n, hdr_len = hdr ? hdr->length : 0;
	int old_flags = -1, err = 0;
	ssize_t ret;

	if (hdr_len && !netfile_send_all(ns->fd, hdr->data, hdr_len, MSG_MORE,
					 &old_flags)) {
		ret = -1;
		err = errno;
		goto out;
	}
	while (left > 0) {
		ssize_t w = sendfile(ns->fd, fd, &offset, left);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    old_flags == -1) {
			old_flags = fcntl(ns->fd, F_GETFL, 0);
			if (set_blocking(ns->fd, true) == -1) {
				err = errno;
				break;
			}
			continue;
		}
		if (w == -1)
			err = errno;
		if (w <= 0)
			break;
		ns->next_id++;
		netfile_n.sendfile_calls++;
		netfile_n.sendfile_bytes += w;
		left -= w;
	}
	ret = netfile_send_result(hdr_len, n, n - left, err);
	err = errno;
out:
	if (old_flags != -1)
		fcntl(ns->fd, F_SETFL, old_flags);
	errno = err;
	return ret;
}

/* ---- READ through io_uring ------------------------------------------ */

/*
 * Whether the kernel knows SPLICE_F_NOTIF: an unknown splice flag fails
 * at prep (EINVAL), before any descriptor is looked at (EBADF here).
 */
static bool netfile_uring_probe(struct io_uring *ring)
{
	struct __kernel_timespec ts = { .tv_sec = 1 };
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	bool more;
	int res;

	io_uring_prep_splice(sqe, -1, 0, -1, -1, 1, SPLICE_F_NOTIF);
	io_uring_sqe_set_data64(sqe, NETFILE_URING_PROBE);
	if (io_uring_submit(ring) != 1 ||
	    io_uring_wait_cqe_timeout(ring, &cqe, &ts) != 0)
		return false;
	res = cqe->res;
	more = cqe->flags & IORING_CQE_F_MORE;
	io_uring_cqe_seen(ring, cqe);
	/* the probe's notification: nothing was sent, it comes at once */
	if (more && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0)
		io_uring_cqe_seen(ring, cqe);
	return res == -EBADF;
}

/*
 * The ring of this process, set up on first use; false if the kernel
 * has no io_uring (or it is disabled) or no SPLICE_F_NOTIF, said once.
 * Only a connection's smbd sends, and it forks no further.
 */
static bool netfile_uring_get(void)
{
	int ret;

	if (netfile_uring.usable >= 0)
		return netfile_uring.usable == 1 &&
		       netfile_uring.pid == getpid();
	netfile_uring.usable = 0;
	ret = io_uring_queue_init(NETFILE_URING_ENTRIES, &netfile_uring.ring,
				  0);
	if (ret < 0) {
		DBG_ERR("netfile: no io_uring (%s): READs complete on the "
			"socket's error queue\n", strerror(-ret));
		return false;
	}
	/* a child smbd forks (a script, say) must not share the rings */
	io_uring_ring_dontfork(&netfile_uring.ring);
	if (!netfile_uring_probe(&netfile_uring.ring)) {
		DBG_ERR("netfile: this kernel's io_uring has no "
			"SPLICE_F_NOTIF: READs complete on the socket's "
			"error queue\n");
		goto out_exit;
	}
	netfile_uring.fde = tevent_add_fd(global_event_context(), NULL,
					  netfile_uring.ring.ring_fd,
					  TEVENT_FD_READ, netfile_uring_handler,
					  NULL);
	if (netfile_uring.fde == NULL)
		goto out_exit;
	netfile_uring.pid = getpid();
	netfile_uring.usable = 1;
	return true;
out_exit:
	io_uring_queue_exit(&netfile_uring.ring);
	return false;
}

/*
 * One IORING_OP_SPLICE of up to @len bytes of @fd from @offset to @sock,
 * waited for: on a blocking socket the kernel waits for POLLOUT itself,
 * as a blocking sendfile() would. Notifications of earlier READs that
 * come meanwhile release their ranges. Returns the result CQE's res.
 */
static int netfile_uring_splice(struct netfile_range *r, int sock, int fd,
				off_t offset, size_t len)
{
	struct io_uring *ring = &netfile_uring.ring;
	struct io_uring_sqe *sqe;
	int ret;

	/* every SQE is submitted before the next is taken: never NULL */
	sqe = io_uring_get_sqe(ring);
	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_splice(sqe, fd, offset, sock, -1,
			     MIN(len, (size_t)INT_MAX & ~4095), SPLICE_F_NOTIF);
	io_uring_sqe_set_data(sqe, r);
	/* the reference of the notification, or of the NOP below */
	r->refs++;
	r->res_seen = false;
	do {
		ret = io_uring_submit(ring);
	} while (ret == -EINTR);
	if (ret < 1) {
		/*
		 * Not taken (no memory for the request, a CQ overflow): the
		 * SQE stays in the ring and the next submit would run it,
		 * maybe after these descriptors were closed and reused.
		 * Nothing reads the SQ until then (no SQPOLL), so make it a
		 * NOP for this range: its CQE drops the reference.
		 */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, r);
		DBG_WARNING("netfile: io_uring_submit: %s\n",
			    strerror(ret < 0 ? -ret : EBUSY));
		return -EBUSY;
	}
	while (!r->res_seen) {
		struct io_uring_cqe *cqe;

		ret = io_uring_wait_cqe(ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			/*
			 * The splice may still be sending: no copy may follow
			 * it on this socket, so not EINTR (smbd ends the
			 * connection on EIO).
			 */
			DBG_ERR("netfile: io_uring_wait_cqe: %s\n",
				strerror(-ret));
			return -EIO;
		}
		netfile_uring_cqe(cqe);
		io_uring_cqe_seen(ring, cqe);
	}
	return r->res;
}

/* As netfile_send_range(), through the ring. */
static ssize_t netfile_uring_send_range(struct netfile_range *r, int sock,
					int fd, const DATA_BLOB *hdr,
					off_t offset, size_t n)
{
	size_t left = n, hdr_len = hdr ? hdr->length : 0;
	int old_flags = -1, err = 0;
	ssize_t ret;

	if (hdr_len && !netfile_send_all(sock, hdr->data, hdr_len, MSG_MORE,
					 &old_flags)) {
		ret = -1;
		err = errno;
		goto out;
	}
	while (left > 0) {
		int res = netfile_uring_splice(r, sock, fd, offset, left);

		if (res == -EINTR)
			continue;
		/*
		 * smbd's socket is non-blocking, and the splice then ends on
		 * a full socket: make it blocking for the rest, as
		 * sys_sendfile() does, and the kernel waits for POLLOUT.
		 */
		if (res == -EAGAIN && old_flags == -1) {
			old_flags = fcntl(sock, F_GETFL, 0);
			if (set_blocking(sock, true) == -1) {
				err = errno;
				break;
			}
			continue;
		}
		if (res < 0)
			err = -res;
		if (res <= 0)
			break;
		netfile_n.sendfile_bytes += res;
		offset += res;
		left -= res;
	}
	ret = netfile_send_result(hdr_len, n, n - left, err);
	err = errno;
out:
	if (old_flags != -1)
		fcntl(sock, F_SETFL, old_flags);
	errno = err;
	return ret;
}

/* ---- READ: the entry point ------------------------------------------ */

/* A range of @fsp, locked shared for a READ in flight; NULL if not. */
static struct netfile_range *netfile_range_lock(TALLOC_CTX *mem_ctx,
						files_struct *fsp,
						off_t offset, size_t n)
{
	struct netfile_range *r = talloc_zero(mem_ctx, struct netfile_range);

	if (r == NULL)
		return NULL;
	r->lockfd = netfile_open_lockfile();
	if (r->lockfd == -1)
		goto out_free;
	if (netfile_lock(r->lockfd, F_RDLCK, fsp, offset, n) == -1)
		goto out_close;
	return r;
out_close:
	close(r->lockfd);
out_free:
	TALLOC_FREE(r);
	return NULL;
}

static ssize_t netfile_uring_sendfile(vfs_handle_struct *handle, int tofd,
				      files_struct *fromfsp,
				      const DATA_BLOB *hdr, off_t offset,
				      size_t n)
{
	struct netfile_range *r = netfile_range_lock(NULL, fromfsp, offset, n);
	ssize_t ret;
	int err;

	if (r == NULL) {
		netfile_n.fallbacks++;
		return SMB_VFS_NEXT_SENDFILE(handle, tofd, fromfsp, hdr, offset,
					     n);
	}
	/* the sender's reference: the range lives at least until we return */
	r->refs = 1;
	DLIST_ADD_END(netfile_uring.inflight, r);
	ret = netfile_uring_send_range(r, tofd, fsp_get_io_fd(fromfsp), hdr,
				       offset, n);
	err = errno;
	netfile_uring_put(r);
	netfile_reap_all();
	errno = err;
	return ret;
}

static ssize_t netfile_sendfile(vfs_handle_struct *handle, int tofd,
				files_struct *fromfsp, const DATA_BLOB *hdr,
				off_t offset, size_t n)
{
	struct netfile_state *st;
	struct netfile_range *r = NULL;
	struct netfile_sock *ns;
	uint32_t first;
	ssize_t ret;
	int err;

	SMB_VFS_HANDLE_GET_DATA(handle, st, struct netfile_state, return -1);
	if (n > 0 && st->use_uring && netfile_uring_get())
		return netfile_uring_sendfile(handle, tofd, fromfsp, hdr,
					      offset, n);
	ns = n > 0 ? netfile_sock_get(tofd) : NULL;
	if (ns == NULL) {
		netfile_n.fallbacks++;
		return SMB_VFS_NEXT_SENDFILE(handle, tofd, fromfsp, hdr, offset,
					     n);
	}
	r = netfile_range_lock(ns, fromfsp, offset, n);
	if (r == NULL) {
		/*
		 * Sent unprotected, as stock smbd would, but still counted:
		 * every sendfile() on this socket uses up a completion id.
		 */
		netfile_n.fallbacks++;
		r = talloc_zero(ns, struct netfile_range);
		if (r == NULL) {
			errno = ENOMEM;
			return -1;
		}
		r->lockfd = -1;
	}
	first = ns->next_id;
	ret = netfile_send_range(ns, fsp_get_io_fd(fromfsp), hdr, offset, n);
	err = errno;
	if (ns->next_id == first) {
		/* nothing sent, no completion will come */
		if (r->lockfd != -1)
			close(r->lockfd);
		TALLOC_FREE(r);
	} else {
		r->last_id = ns->next_id - 1;
		DLIST_ADD_END(ns->inflight, r);
	}
	netfile_reap_all();
	errno = err;
	return ret;
}

/* ---- connection ------------------------------------------------------ */

/* Log and append to netfile.stats what moved since the last time. */
static void netfile_log_counters(void)
{
	struct netfile_counters d = netfile_n;
	char *path;
	FILE *f;

	d.recvfile_calls -= netfile_logged.recvfile_calls;
	d.recvfile_bytes -= netfile_logged.recvfile_bytes;
	d.drained -= netfile_logged.drained;
	d.sendfile_calls -= netfile_logged.sendfile_calls;
	d.sendfile_bytes -= netfile_logged.sendfile_bytes;
	d.completions -= netfile_logged.completions;
	d.write_waits -= netfile_logged.write_waits;
	d.fallbacks -= netfile_logged.fallbacks;
	d.uring_sends -= netfile_logged.uring_sends;
	d.wait_timeouts -= netfile_logged.wait_timeouts;
	d.copies -= netfile_logged.copies;
	netfile_logged = netfile_n;

	DBG_NOTICE("netfile: recvfile %" PRIu64 " calls %" PRIu64 " bytes, "
		   "drained %" PRIu64 ", sendfile %" PRIu64 " calls %" PRIu64
		   " bytes, completions %" PRIu64 ", write waits %" PRIu64
		   ", fallbacks %" PRIu64 ", through io_uring %" PRIu64
		   ", wait timeouts %" PRIu64 ", copies %" PRIu64 "\n",
		   d.recvfile_calls, d.recvfile_bytes, d.drained,
		   d.sendfile_calls, d.sendfile_bytes, d.completions,
		   d.write_waits, d.fallbacks, d.uring_sends, d.wait_timeouts,
		   d.copies);
	path = lock_path(talloc_tos(), "netfile.stats");
	f = path ? fopen(path, "a") : NULL;
	if (f != NULL) {
		fprintf(f, "pid=%d recvfile_calls=%" PRIu64 " recvfile_bytes=%"
			PRIu64 " drained=%" PRIu64 " sendfile_calls=%" PRIu64
			" sendfile_bytes=%" PRIu64 " completions=%" PRIu64
			" write_waits=%" PRIu64 " fallbacks=%" PRIu64
			" uring_sends=%" PRIu64 " wait_timeouts=%" PRIu64
			" copies=%" PRIu64 "\n",
			(int)getpid(), d.recvfile_calls, d.recvfile_bytes,
			d.drained, d.sendfile_calls, d.sendfile_bytes,
			d.completions, d.write_waits, d.fallbacks,
			d.uring_sends, d.wait_timeouts, d.copies);
		fclose(f);
	}
	TALLOC_FREE(path);
}

static void netfile_disconnect(vfs_handle_struct *handle)
{
	struct netfile_sock *ns;
	int i;

	/*
	 * A tree disconnect may leave the connection up: wait a while for
	 * what is still in flight, so that its ranges are released only
	 * when the pages are.
	 */
	for (i = 0; i < 400; i++) {
		netfile_reap_all();
		for (ns = netfile_socks; ns != NULL; ns = ns->next)
			if (ns->inflight != NULL)
				break;
		if (ns == NULL && netfile_uring.inflight == NULL)
			break;
		netfile_wait_some(NETFILE_WAIT_MSEC);
	}
	netfile_log_counters();
	SMB_VFS_NEXT_DISCONNECT(handle);
}

static void netfile_free_state(void **data)
{
	struct netfile_state *st = *data;

	if (st->lockfd != -1)
		close(st->lockfd);
	TALLOC_FREE(*data);
}

/* Say once if smb.conf keeps smbd from calling the module's paths. */
static void netfile_check_config(vfs_handle_struct *handle)
{
	static bool said;
	int snum = SNUM(handle->conn);

	if (said)
		return;
	said = true;
	if (lp_min_receive_file_size() == 0)
		DBG_WARNING("netfile: 'min receivefile size' is 0, so smbd "
			    "reads WRITE payloads itself: set it (16384) to "
			    "receive them with recvfile(2)\n");
	if (!lp__use_sendfile(snum) || lp_aio_read_size(snum) != 0)
		DBG_WARNING("netfile: READs of [%s] do not reach sendfile: "
			    "set 'use sendfile = yes' and 'aio read size = 0'\n",
			    lp_const_servicename(snum));
}

static int netfile_connect(vfs_handle_struct *handle, const char *service,
			   const char *user)
{
	struct netfile_state *st;
	int ret = SMB_VFS_NEXT_CONNECT(handle, service, user);

	if (ret < 0)
		return ret;
	st = talloc_zero(handle->conn, struct netfile_state);
	if (st == NULL) {
		SMB_VFS_NEXT_DISCONNECT(handle);
		errno = ENOMEM;
		return -1;
	}
	st->lockfd = netfile_open_lockfile();
	st->use_uring = lp_parm_bool(SNUM(handle->conn), "netfile", "io_uring",
				     true);
	netfile_wait_limit_sec = lp_parm_int(GLOBAL_SECTION_SNUM, "netfile",
					     "lock wait limit",
					     NETFILE_WAIT_LIMIT_SEC);
	netfile_have_recvfile();
	netfile_check_config(handle);
	SMB_VFS_HANDLE_SET_DATA(handle, st, netfile_free_state,
				struct netfile_state, return -1);
	return ret;
}

static struct vfs_fn_pointers netfile_fns = {
	.connect_fn = netfile_connect,
	.disconnect_fn = netfile_disconnect,
	.recvfile_fn = netfile_recvfile,
	.sendfile_fn = netfile_sendfile,
	.pread_fn = netfile_pread,
	.pread_send_fn = netfile_pread_send,
	.pread_recv_fn = netfile_io_recv,
	.pwrite_fn = netfile_pwrite,
	.pwrite_send_fn = netfile_pwrite_send,
	.pwrite_recv_fn = netfile_io_recv,
	.ftruncate_fn = netfile_ftruncate,
	.fallocate_fn = netfile_fallocate,
	.offload_write_send_fn = netfile_offload_write_send,
	.offload_write_recv_fn = netfile_offload_write_recv,
};

/*
 * Built out of Samba's module lists, so configure did not rename the init
 * function for us: smbd looks up samba_init_module in a shared module.
 */
NTSTATUS samba_init_module(TALLOC_CTX *ctx);
NTSTATUS samba_init_module(TALLOC_CTX *ctx)
{
	return smb_register_vfs(SMB_VFS_INTERFACE_VERSION, "netfile",
				&netfile_fns);
}
