// SPDX-License-Identifier: GPL-2.0
/*
 * TCP side of recvfile(2): hand queued receive data to a writer without
 * consuming it, then consume exactly what the writer stored.
 *
 * Locking: the socket lock is held only while the receive queue is walked
 * or consumed, and while waiting for data (sk_wait_data() drops it while
 * sleeping). It is never held while the data is written to a file: the
 * writer runs the filesystem's own write path with no socket lock, and the
 * filesystem's locks are never held while waiting for the network.
 *
 * Page references, not skb references, keep the data alive between collect
 * and consume: tcp_collapse() may free and rebuild queued skbs while the
 * socket lock is not held, but the bytes they carried stay the same.
 */
#include <linux/highmem.h>
#include <linux/recvfile.h>
#include <linux/sched/signal.h>
#include <linux/skbuff.h>
#include <net/inet_connection_sock.h>
#include <net/rps.h>
#include <net/sock.h>
#include <net/tcp.h>

/**
 * tcp_recvfile_supported - can recvfile read this socket's receive queue?
 * @sk: socket
 *
 * True for plain TCP over IPv4 and IPv6. A socket with an upper layer
 * protocol (kTLS, ...) or a replaced proto (sockmap) does not hand out
 * its receive queue as the peer sent it.
 *
 * Return: true if tcp_recvfile_collect() may be used on @sk.
 */
bool tcp_recvfile_supported(const struct sock *sk)
{
	if (sk->sk_type != SOCK_STREAM || sk->sk_protocol != IPPROTO_TCP)
		return false;
	if (sk->sk_family != AF_INET && sk->sk_family != AF_INET6)
		return false;
	if (inet_csk(sk)->icsk_ulp_ops)
		return false;
	return READ_ONCE(sk->sk_prot)->recvmsg == tcp_recvmsg;
}
EXPORT_SYMBOL_GPL(tcp_recvfile_supported);

static bool batch_full(const struct recvfile_batch *b)
{
	return b->nr_segs == RECVFILE_MAX_SEGS;
}

/* Add a reference to @len bytes at @off in @page, merging with the last one. */
static void batch_add_page(struct recvfile_batch *b, struct page *page,
			   unsigned int off, unsigned int len)
{
	struct bio_vec *last = b->nr_segs ? &b->bvec[b->nr_segs - 1] : NULL;

	if (last && last->bv_page == page &&
	    last->bv_offset + last->bv_len == off) {
		last->bv_len += len;
		return;
	}
	get_page(page);
	bvec_set_page(&b->bvec[b->nr_segs++], page, len, off);
}

/*
 * The linear part of an skb may live in kmalloc memory, which cannot be
 * referenced by page: copy it into the batch's bounce page, as
 * tcp_splice_read() does. It is normally only a few header-sized bytes.
 */
static int batch_add_linear(struct recvfile_batch *b, const void *data,
			    size_t len)
{
	size_t done = 0;

	while (done < len) {
		const struct bio_vec *last = b->nr_segs ?
					     &b->bvec[b->nr_segs - 1] : NULL;
		bool extends_last = last && b->bounce &&
				    b->bounce_used < PAGE_SIZE &&
				    last->bv_page == b->bounce &&
				    last->bv_offset + last->bv_len == b->bounce_used;
		unsigned int n;

		if (!extends_last) {
			if (batch_full(b))
				break;
			if (!b->bounce || b->bounce_used == PAGE_SIZE) {
				if (b->bounce)
					put_page(b->bounce);
				b->bounce = alloc_page(GFP_KERNEL);
				if (!b->bounce)
					return done ?: -ENOMEM;
				b->bounce_used = 0;
			}
		}
		n = min_t(size_t, len - done, PAGE_SIZE - b->bounce_used);
		memcpy_to_page(b->bounce, b->bounce_used, data + done, n);
		batch_add_page(b, b->bounce, b->bounce_used, n);
		b->bounce_used += n;
		done += n;
	}
	return done;
}

/*
 * Reference @len bytes of @skb from @offset. Returns the bytes added, less
 * than @len when the batch ran out of segments, or -errno if none were.
 */
static int batch_add_skb(struct recvfile_batch *b, const struct sk_buff *skb,
			 unsigned int offset, size_t len)
{
	unsigned int headlen = skb_headlen(skb);
	struct sk_buff *frag_iter;
	size_t done = 0;
	int i, ret;

	if (offset < headlen) {
		size_t n = min_t(size_t, len, headlen - offset);

		ret = batch_add_linear(b, skb->data + offset, n);
		if (ret <= 0)
			return ret;
		done += ret;
		if (ret < n)
			return done;
		offset = 0;
	} else {
		offset -= headlen;
	}

	for (i = 0; i < skb_shinfo(skb)->nr_frags && done < len; i++) {
		const skb_frag_t *frag = &skb_shinfo(skb)->frags[i];
		unsigned int size = skb_frag_size(frag), n;
		struct page *page = skb_frag_page(frag);
		unsigned int off = skb_frag_off(frag) + offset;

		if (offset >= size) {
			offset -= size;
			continue;
		}
		n = min_t(size_t, len - done, size - offset);
		if (batch_full(b)) {
			const struct bio_vec *last = &b->bvec[b->nr_segs - 1];

			if (last->bv_page != page ||
			    last->bv_offset + last->bv_len != off)
				return done;
		}
		batch_add_page(b, page, off, n);
		done += n;
		offset = 0;
	}

	skb_walk_frags(skb, frag_iter) {
		if (done == len)
			break;
		if (offset >= frag_iter->len) {
			offset -= frag_iter->len;
			continue;
		}
		ret = batch_add_skb(b, frag_iter, offset, len - done);
		if (ret <= 0)
			return done ?: ret;
		done += ret;
		if (done < len && batch_full(b))
			break;
		offset = 0;
	}
	return done;
}

/*
 * Reference up to @max queued bytes from copied_seq on, without consuming
 * them. Stops before urgent data and at FIN. Caller holds the socket lock.
 */
static int batch_collect_queued(struct sock *sk, struct recvfile_batch *b,
				size_t max)
{
	struct tcp_sock *tp = tcp_sk(sk);
	u32 seq = tp->copied_seq;
	struct sk_buff *skb;

	sock_owned_by_me(sk);
	b->seq = seq;
	skb_queue_walk(&sk->sk_receive_queue, skb) {
		u32 offset = seq - TCP_SKB_CB(skb)->seq;
		size_t len;
		int added;

		if (unlikely(TCP_SKB_CB(skb)->tcp_flags & TCPHDR_SYN))
			offset--;
		if (offset >= skb->len) {
			if (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_FIN)
				break;
			continue;	/* read up, not yet eaten */
		}
		if (!skb_frags_readable(skb))
			return b->len ?: -EFAULT;

		len = skb->len - offset;
		if (unlikely(tp->urg_data)) {
			u32 urg_offset = tp->urg_seq - seq;

			if (urg_offset < len)
				len = urg_offset;
			if (!len)
				break;
		}
		len = min(len, max - b->len);
		added = batch_add_skb(b, skb, offset, len);
		if (added < 0)
			return b->len ?: added;
		b->len += added;
		seq += added;
		if (added < len || b->len == max ||
		    (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_FIN))
			break;
	}
	return b->len;
}

/**
 * tcp_recvfile_collect - reference queued data, waiting for some if needed
 * @sk: TCP socket (tcp_recvfile_supported())
 * @batch: empty batch to fill
 * @max: most bytes to collect
 * @timeo: how long to wait for data, updated with the time left; 0 means
 *	   do not wait
 * @moved: the caller already moved data in this call; a pending socket
 *	   error is then left for the next call to report, as recv(2) does
 *
 * Waits with the socket's own machinery, holding no other lock, until data
 * is queued, then takes page references on up to @max bytes from the head
 * of the stream. Nothing is consumed: the bytes stay on the socket until
 * tcp_recvfile_consume() is called with @batch->seq.
 *
 * Return: bytes collected, 0 at end of stream (or at a pending error when
 * @moved), or -errno: -EAGAIN when
 * nothing is queued and @timeo ran out, -ERESTARTSYS or -EINTR on a
 * signal, -ENOTCONN, the socket's pending error, or -EOPNOTSUPP when
 * urgent data that is not inline is at the head of the stream.
 */
int tcp_recvfile_collect(struct sock *sk, struct recvfile_batch *batch,
			 size_t max, long *timeo, bool moved)
{
	int ret;

	sock_rps_record_flow(sk);
	lock_sock(sk);
	for (;;) {
		if (sk->sk_state == TCP_LISTEN) {
			ret = -ENOTCONN;
			break;
		}
		ret = batch_collect_queued(sk, batch, max);
		if (ret)
			break;
		if (sock_flag(sk, SOCK_DONE))
			break;
		if (sk->sk_err) {
			ret = moved ? 0 : sock_error(sk);
			break;
		}
		if (sk->sk_shutdown & RCV_SHUTDOWN)
			break;
		if (sk->sk_state == TCP_CLOSE) {
			ret = -ENOTCONN;
			break;
		}
		/* Queued but not collectable: urgent data at the head. */
		if (!skb_queue_empty(&sk->sk_receive_queue)) {
			ret = -EOPNOTSUPP;
			break;
		}
		if (!*timeo) {
			ret = -EAGAIN;
			break;
		}
		if (signal_pending(current)) {
			ret = sock_intr_errno(*timeo);
			break;
		}
		sk_wait_data(sk, timeo, NULL);
	}
	release_sock(sk);
	return ret;
}
EXPORT_SYMBOL_GPL(tcp_recvfile_collect);

static int consume_actor(read_descriptor_t *desc, struct sk_buff *skb,
			 unsigned int offset, size_t len)
{
	size_t n = min(len, desc->count);

	desc->count -= n;
	return n;
}

/**
 * tcp_recvfile_consume - consume bytes that were stored elsewhere
 * @sk: TCP socket
 * @seq: @batch->seq of the batch the bytes came from
 * @len: number of bytes from @seq on to consume
 *
 * Advances the stream past @len bytes, frees the skbs they were in and
 * lets TCP open the window, as a read of @len bytes would.
 *
 * Return: 0, or -EBUSY if another reader consumed data since the batch was
 * collected (then nothing is consumed here).
 */
int tcp_recvfile_consume(struct sock *sk, u32 seq, size_t len)
{
	read_descriptor_t desc = { .count = len };
	int ret = 0;

	lock_sock(sk);
	if (tcp_sk(sk)->copied_seq != seq)
		ret = -EBUSY;
	else
		tcp_read_sock(sk, &desc, consume_actor);
	release_sock(sk);
	return ret;
}
EXPORT_SYMBOL_GPL(tcp_recvfile_consume);

/**
 * recvfile_batch_release - drop the page references of a batch
 * @batch: batch filled by tcp_recvfile_collect()
 *
 * Leaves @batch empty and ready to be filled again.
 */
void recvfile_batch_release(struct recvfile_batch *batch)
{
	unsigned int i;

	for (i = 0; i < batch->nr_segs; i++)
		put_page(batch->bvec[i].bv_page);
	if (batch->bounce)
		put_page(batch->bounce);
	batch->bounce = NULL;
	batch->bounce_used = 0;
	batch->nr_segs = 0;
	batch->len = 0;
}
EXPORT_SYMBOL_GPL(recvfile_batch_release);
