/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_RECVFILE_H
#define _LINUX_RECVFILE_H

#include <linux/bits.h>
#include <linux/bvec.h>
#include <linux/types.h>

struct file;
struct page;
struct sock;

/*
 * Flags of do_recvfile(). recvfile(2) takes recv(2)'s MSG_DONTWAIT and
 * MSG_WAITALL instead and translates them; the other two are for the
 * kernel's own callers only.
 */
/* Do not wait for data: move what is queued now, -EAGAIN if nothing is. */
#define RECVFILE_NONBLOCK	BIT(0)
/*
 * Wait until @count bytes have been moved, as MSG_WAITALL does for recv(2);
 * end of stream, an error, a signal or SO_RCVTIMEO still end the call early
 * with the count moved so far.
 */
#define RECVFILE_WAITALL	BIT(1)
#define RECVFILE_FLAGS_ALL	(RECVFILE_NONBLOCK | RECVFILE_WAITALL)

/*
 * Kernel-internal flag (io_uring's inline issue): write with IOCB_NOWAIT;
 * a write that would block ends the call, with nothing more consumed.
 */
#define RECVFILE_NOWAIT_WRITE	BIT(31)
/*
 * Kernel-internal flag (io-wq): wait for another reader's claim on the
 * socket, which lasts while that reader's call moves queued bytes (one
 * run of the stream, never a wait for the network), but never for the
 * network itself: -EAGAIN
 * when nothing is queued, so that the request waits with poll instead.
 */
#define RECVFILE_NOWAIT_DATA	BIT(30)

/* Bounds of one batch: what is pinned between two waits for the socket. */
#define RECVFILE_MAX_SEGS	64
#define RECVFILE_MAX_BATCH	BIT(20)

/**
 * struct recvfile_batch - received bytes held for one write to the page cache
 * @seq: TCP sequence number of the first byte (copied_seq when collected)
 * @len: number of bytes described by @bvec
 * @nr_segs: entries used in @bvec
 * @bounce: page that linear skb data is copied into, or NULL
 * @bounce_used: bytes of @bounce in use
 * @bvec: one page reference per entry; the bytes stay queued on the socket
 *	  until they are consumed with tcp_recvfile_consume()
 */
struct recvfile_batch {
	u32 seq;
	size_t len;
	unsigned int nr_segs;
	struct page *bounce;
	unsigned int bounce_used;
	struct bio_vec bvec[RECVFILE_MAX_SEGS];
};

#ifdef CONFIG_INET
bool tcp_recvfile_supported(const struct sock *sk);
#else
static inline bool tcp_recvfile_supported(const struct sock *sk)
{
	return false;
}
#endif
int tcp_recvfile_collect(struct sock *sk, struct recvfile_batch *batch,
			 size_t max, long *timeo, bool moved, bool wait_data,
			 bool claimed);
bool tcp_recvfile_consume(struct sock *sk, u32 seq, size_t len,
			  bool keep_claim);
void tcp_recvfile_unclaim(struct sock *sk);
int tcp_recvfile_wait_claim(struct sock *sk, long *timeo);
void recvfile_batch_release(struct recvfile_batch *batch);

#ifdef CONFIG_INET
ssize_t do_recvfile(struct file *in, struct file *out, loff_t *ppos,
		    size_t count, unsigned int flags);
#else
static inline ssize_t do_recvfile(struct file *in, struct file *out,
				  loff_t *ppos, size_t count,
				  unsigned int flags)
{
	return -EOPNOTSUPP;
}
#endif

#endif /* _LINUX_RECVFILE_H */
