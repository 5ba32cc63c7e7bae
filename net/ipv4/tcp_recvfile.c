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
 *
 * One reader at a time: a successful collect sets SOCK_RCV_CLAIMED, and
 * it stays set until the call gives it up: after its last batch, or
 * before it sleeps for more data. While it is set, tcp_recvmsg(),
 * tcp_splice_read() and other recvfile callers wait for it (MSG_PEEK does
 * not), so the bytes a writer holds between collect and consume cannot
 * be read by anyone else, consume always finds copied_seq where collect
 * left it, and the batches of one call that does not wait for data are
 * one run of the stream, as the bytes of one read(2) are.
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
	if (READ_ONCE(inet_csk(sk)->icsk_ulp_ops))
		return false;
	/* TCP_REPAIR: the queues belong to the checkpoint tool */
	if (tcp_sk(sk)->repair)
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
				/* charged like the skbs it stands for */
				b->bounce = alloc_page(GFP_KERNEL_ACCOUNT);
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
		if (!skb_frags_readable(frag_iter))
			return done ?: -EFAULT;
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
 * Step over the urgent byte at copied_seq, as tcp_recvmsg() does for a
 * socket without SO_OOBINLINE (and as consuming it does with it), and
 * forget the urgent data once the stream has passed it.
 */
static void tcp_recvfile_pass_mark(struct sock *sk)
{
	struct tcp_sock *tp = tcp_sk(sk);

	WRITE_ONCE(tp->copied_seq, tp->copied_seq + 1);
	if (tp->urg_data && after(tp->copied_seq, tp->urg_seq)) {
		WRITE_ONCE(tp->urg_data, 0);
		tcp_fast_path_check(sk);
	}
}

/* Is the urgent byte, not inline, the next byte of the stream? */
static bool tcp_recvfile_at_mark(const struct sock *sk, u32 seq)
{
	const struct tcp_sock *tp = tcp_sk(sk);

	return unlikely(tp->urg_data) && tp->urg_seq == seq &&
	       !sock_flag(sk, SOCK_URGINLINE);
}

/*
 * Reference up to @max queued bytes from copied_seq on, without consuming
 * them. Caller holds the socket lock.
 *
 * Urgent data is handled as read(2) handles it. With SO_OOBINLINE the
 * urgent byte is ordinary data. Without it, a batch stops before the
 * urgent byte, and a call that already moved data (@moved) stops there
 * (*@at_mark is set): the next call steps over the byte, which
 * recv(MSG_OOB) returns. Stops after FIN.
 */
static int batch_collect_queued(struct sock *sk, struct recvfile_batch *b,
				size_t max, bool moved, bool *at_mark)
{
	struct tcp_sock *tp = tcp_sk(sk);
	u32 seq = tp->copied_seq;
	struct sk_buff *skb;

	sock_owned_by_me(sk);
	*at_mark = false;
	b->seq = seq;
	skb_queue_walk(&sk->sk_receive_queue, skb) {
		u32 offset = seq - TCP_SKB_CB(skb)->seq;
		bool stop = false;
		size_t len;
		int added;

		if (unlikely(TCP_SKB_CB(skb)->tcp_flags & TCPHDR_SYN))
			offset--;
		if (offset < skb->len && tcp_recvfile_at_mark(sk, seq)) {
			if (b->len)
				break;
			if (moved) {
				*at_mark = true;
				break;
			}
			tcp_recvfile_pass_mark(sk);
			seq++;
			offset++;
			b->seq = seq;
		}
		if (offset >= skb->len) {
			if (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_FIN)
				break;
			continue;	/* read up, not yet eaten */
		}
		if (!skb_frags_readable(skb))
			return b->len ?: -EFAULT;

		len = skb->len - offset;
		if (unlikely(tp->urg_data) && !sock_flag(sk, SOCK_URGINLINE)) {
			u32 urg_offset = tp->urg_seq - seq;

			if (urg_offset < len) {
				len = urg_offset;
				stop = true;
			}
		}
		len = min(len, max - b->len);
		added = batch_add_skb(b, skb, offset, len);
		if (added < 0)
			return b->len ?: added;
		b->len += added;
		seq += added;
		if (stop || added < len || b->len == max ||
		    (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_FIN))
			break;
	}
	return b->len;
}

/*
 * Readers that waited for the claim, and pollers (io_uring arms poll for
 * POLLIN), look again. As sock_def_readable(), without SIGIO: no data
 * arrived.
 */
static void tcp_recvfile_wake_readers(struct sock *sk)
{
	struct socket_wq *wq;

	rcu_read_lock();
	wq = rcu_dereference(sk->sk_wq);
	if (skwq_has_sleeper(wq))
		wake_up_interruptible_sync_poll(&wq->wait, EPOLLIN | EPOLLPRI |
						EPOLLRDNORM | EPOLLRDBAND);
	rcu_read_unlock();
}

/* Give up the claim and let the readers that wait for it look again. */
static void tcp_recvfile_drop_claim(struct sock *sk)
{
	sock_owned_by_me(sk);
	WARN_ON_ONCE(!sock_flag(sk, SOCK_RCV_CLAIMED));
	sock_reset_flag(sk, SOCK_RCV_CLAIMED);
	tcp_recvfile_wake_readers(sk);
}

/**
 * tcp_recvfile_wait_claim - wait until no recvfile holds the receive queue
 * @sk: TCP socket, locked by the caller
 * @timeo: how long to wait, updated with the time left; 0 means do not wait
 *
 * Readers that consume the stream (tcp_recvmsg() without MSG_PEEK,
 * tcp_splice_read(), recvfile) call this before taking data, so that they
 * never take bytes a recvfile collected and is still writing to a file.
 * The socket lock is dropped while waiting, as in sk_wait_data().
 *
 * Return: 0 once the queue is not claimed, -EAGAIN if @timeo ran out,
 * -ERESTARTSYS or -EINTR on a signal, -EPIPE if the socket was
 * disconnected meanwhile.
 */
int tcp_recvfile_wait_claim(struct sock *sk, long *timeo)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	int ret = 0;

	sock_owned_by_me(sk);
	while (sock_flag(sk, SOCK_RCV_CLAIMED)) {
		if (!*timeo)
			return -EAGAIN;
		if (signal_pending(current))
			return sock_intr_errno(*timeo);
		add_wait_queue(sk_sleep(sk), &wait);
		ret = sk_wait_event(sk, timeo,
				    !sock_flag(sk, SOCK_RCV_CLAIMED), &wait);
		remove_wait_queue(sk_sleep(sk), &wait);
		if (ret < 0)
			return ret;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(tcp_recvfile_wait_claim);

/**
 * tcp_recvfile_collect - reference queued data, waiting for some if needed
 * @sk: TCP socket (tcp_recvfile_supported())
 * @batch: empty batch to fill
 * @max: most bytes to collect
 * @timeo: how long to wait for data, updated with the time left; 0 means
 *	   do not wait
 * @moved: the caller already moved data in this call; a pending socket
 *	   error is then left for the next call to report, as recv(2) does,
 *	   and the call ends at an urgent mark
 * @wait_data: wait (up to @timeo) for data when none is queued; if false,
 *	       only for another reader's claim
 * @claimed: the caller holds the claim, kept from its previous batch by
 *	     tcp_recvfile_consume(); it is given up here if no bytes are
 *	     collected, and before sleeping for data
 *
 * Waits with the socket's own machinery, holding no other lock, until data
 * is queued and no other recvfile holds the queue, then takes page
 * references on up to @max bytes from the head of the stream. Nothing is
 * consumed: the bytes stay on the socket, claimed by this caller (see
 * tcp_recvfile_wait_claim()), until tcp_recvfile_consume() is called with
 * @batch->seq. Every collect that returns bytes must be followed by
 * exactly one consume, even of 0 bytes.
 *
 * Never returns 0 or an error while bytes it could read are queued,
 * except 0 at an urgent mark when @moved.
 *
 * Return: bytes collected (the caller holds the claim), 0 at end of
 * stream (or at a pending error or an urgent mark when @moved), or
 * -errno (the caller holds no claim then): -EAGAIN when nothing is queued
 * and @timeo ran out, -ERESTARTSYS or -EINTR on a signal, -ENOTCONN,
 * -EOPNOTSUPP if the socket stopped being one recvfile can read (a ULP
 * or sockmap was attached, TCP_REPAIR), or the socket's pending error.
 */
int tcp_recvfile_collect(struct sock *sk, struct recvfile_batch *batch,
			 size_t max, long *timeo, bool moved, bool wait_data,
			 bool claimed)
{
	bool at_mark;
	int ret;

	sock_rps_record_flow(sk);
	lock_sock(sk);
	for (;;) {
		if (sk->sk_state == TCP_LISTEN) {
			ret = -ENOTCONN;
			break;
		}
		/* Checked on every batch: kTLS or sockmap may be attached
		 * while a WAITALL call sleeps.
		 */
		if (!tcp_recvfile_supported(sk)) {
			ret = moved ? 0 : -EOPNOTSUPP;
			break;
		}
		if (!claimed) {
			ret = tcp_recvfile_wait_claim(sk, timeo);
			if (ret)
				break;
		}
		ret = batch_collect_queued(sk, batch, max, moved, &at_mark);
		if (ret > 0 && !claimed) {
			sock_set_flag(sk, SOCK_RCV_CLAIMED);
			claimed = true;
		}
		if (ret || at_mark)
			break;
		/*
		 * Nothing queued: the run of the stream this call moved ends
		 * here. Never keep other readers waiting while the network
		 * is waited for.
		 */
		if (claimed) {
			tcp_recvfile_drop_claim(sk);
			claimed = false;
		}
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
		if (!*timeo || !wait_data) {
			ret = -EAGAIN;
			break;
		}
		if (signal_pending(current)) {
			ret = sock_intr_errno(*timeo);
			break;
		}
		/* -EPIPE: disconnected meanwhile, as tcp_recvmsg() ends */
		if (sk_wait_data(sk, timeo, NULL) < 0) {
			ret = moved ? 0 : -EPIPE;
			break;
		}
	}
	if (ret <= 0 && claimed)
		tcp_recvfile_drop_claim(sk);
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

/*
 * Consume @len bytes from copied_seq on. tcp_read_sock() stops at an
 * urgent mark, inline or not; an inline urgent byte was collected and
 * written as data, so step over it here.
 */
static void tcp_recvfile_eat(struct sock *sk, size_t len)
{
	read_descriptor_t desc;

	while (len) {
		desc.count = len;
		tcp_read_sock(sk, &desc, consume_actor);
		len = desc.count;
		if (!len)
			break;
		if (WARN_ON_ONCE(!sock_flag(sk, SOCK_URGINLINE) ||
				 !tcp_sk(sk)->urg_data ||
				 tcp_sk(sk)->urg_seq != tcp_sk(sk)->copied_seq))
			break;
		tcp_recvfile_pass_mark(sk);
		len--;
	}
}

/**
 * tcp_recvfile_consume - consume bytes that were stored elsewhere
 * @sk: TCP socket
 * @seq: @batch->seq of the batch the bytes came from
 * @len: number of bytes from @seq on to consume, 0 if none were stored
 * @keep_claim: the call goes on with another batch: keep the claim, so
 *		that no other reader takes the bytes in between and the
 *		call's bytes stay one run of the stream
 *
 * Advances the stream past @len bytes, frees the skbs they were in and
 * lets TCP open the window, as a read of @len bytes would. Unless
 * @keep_claim, then gives up the claim tcp_recvfile_collect() took and
 * wakes the readers that wait for it; a kept claim is given up by the
 * next tcp_recvfile_collect() or tcp_recvfile_unclaim(). If the socket
 * was disconnected since the collect (connect() with AF_UNSPEC), there is
 * nothing left to consume, and the claim is given up in any case: the
 * run of the stream the call was moving has ended.
 *
 * Return: false if the socket was disconnected since the collect.
 */
bool tcp_recvfile_consume(struct sock *sk, u32 seq, size_t len,
			  bool keep_claim)
{
	bool same_stream;

	lock_sock(sk);
	WARN_ON_ONCE(!sock_flag(sk, SOCK_RCV_CLAIMED));
	same_stream = tcp_sk(sk)->copied_seq == seq;
	if (len && same_stream)
		tcp_recvfile_eat(sk, len);
	if (!keep_claim || !same_stream)
		tcp_recvfile_drop_claim(sk);
	release_sock(sk);
	return same_stream;
}
EXPORT_SYMBOL_GPL(tcp_recvfile_consume);

/**
 * tcp_recvfile_unclaim - give up a claim kept by tcp_recvfile_consume()
 * @sk: TCP socket
 *
 * Ends a call whose last consume kept the claim: the readers that wait
 * for it look again.
 */
void tcp_recvfile_unclaim(struct sock *sk)
{
	lock_sock(sk);
	tcp_recvfile_drop_claim(sk);
	release_sock(sk);
}
EXPORT_SYMBOL_GPL(tcp_recvfile_unclaim);

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
