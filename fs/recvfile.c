// SPDX-License-Identifier: GPL-2.0
/*
 * recvfile(2): move data from a connected TCP socket into a regular file's
 * page cache with one copy (socket buffer -> folio) and no user buffer.
 *
 * Each round waits for data with no filesystem lock held, takes page
 * references on what is queued without consuming it, writes those pages
 * through the filesystem's ->write_iter (which locks one folio at a time,
 * throttles dirty pages and handles partial failure as write(2) does) with
 * no socket lock held, and then consumes from the socket exactly the bytes
 * that reached the file. Bytes that could not be written (ENOSPC, EFBIG,
 * EIO, ...) stay readable on the socket.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fsnotify.h>
#include <linux/net.h>
#include <linux/recvfile.h>
#include <linux/sched/signal.h>
#include <linux/sched/xacct.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/syscalls.h>
#include <linux/uio.h>
#include <net/sock.h>

/*
 * recvfile(2) without an offset writes at the file position. f_pos_lock is
 * taken per batch, after the wait for data and only around the write, so
 * other users of the open file description are never held up by the
 * network. (Where fdget_pos() would not lock, this lock is uncontended.)
 */
static bool recvfile_lock_pos(struct file *out)
{
	if (!(out->f_mode & FMODE_ATOMIC_POS))
		return false;
	mutex_lock(&out->f_pos_lock);
	return true;
}

/*
 * vfs_iter_write(RWF_NOWAIT) that does not wait for a frozen filesystem
 * either: vfs_iter_write() takes freeze protection with file_start_write(),
 * which sleeps until the filesystem is thawed. io_uring issues this from
 * the submitting task and from task work, where nothing may sleep so; as
 * io_write() does, take it with a trylock and return -EAGAIN instead.
 */
static ssize_t recvfile_write_nowait(struct file *out, struct iov_iter *from,
				     loff_t *ppos)
{
	struct kiocb kiocb;
	ssize_t ret;

	if (!(out->f_mode & FMODE_CAN_WRITE))
		return -EINVAL;
	if (!iov_iter_count(from))
		return 0;
	ret = rw_verify_area(WRITE, out, ppos, iov_iter_count(from));
	if (ret < 0)
		return ret;
	init_sync_kiocb(&kiocb, out);
	ret = kiocb_set_rw_flags(&kiocb, RWF_NOWAIT, WRITE);
	if (ret)
		return ret;
	kiocb.ki_pos = *ppos;
	if (!file_start_write_trylock(out))
		return -EAGAIN;
	ret = out->f_op->write_iter(&kiocb, from);
	if (ret > 0) {
		*ppos = kiocb.ki_pos;
		fsnotify_modify(out);
	}
	file_end_write(out);
	return ret;
}

static ssize_t recvfile_write_at(struct file *out, struct iov_iter *from,
				 loff_t *ppos, bool nowait)
{
	if (nowait)
		return recvfile_write_nowait(out, from, ppos);
	return vfs_iter_write(out, from, ppos, 0);
}

/* Write @from to @out at *@ppos, or at out->f_pos when @ppos is NULL. */
static ssize_t recvfile_write(struct file *out, struct iov_iter *from,
			      loff_t *ppos, bool nowait)
{
	bool pos_locked;
	ssize_t written;
	loff_t pos;

	if (ppos)
		return recvfile_write_at(out, from, ppos, nowait);

	pos_locked = recvfile_lock_pos(out);
	pos = out->f_pos;
	written = recvfile_write_at(out, from, &pos, nowait);
	if (written > 0)
		out->f_pos = pos;
	if (pos_locked)
		mutex_unlock(&out->f_pos_lock);
	return written;
}

/*
 * Write one batch of queued socket data to @out at *@ppos (or its file
 * position) and consume what was written. Returns bytes moved, 0 at end of
 * stream, or -errno; sets *@short_write when the file took less than was
 * offered. *@claimed says whether the caller holds the socket's claim:
 * kept from one batch to the next, so that the bytes of one call are one
 * run of the stream, and given up by a short write, by a collect that
 * finds nothing or waits, or by the caller (tcp_recvfile_unclaim()).
 */
static ssize_t recvfile_one_batch(struct sock *sk, struct file *out,
				  loff_t *ppos, struct recvfile_batch *batch,
				  size_t want, long *timeo, bool moved,
				  unsigned int flags, bool *short_write,
				  bool *claimed)
{
	struct inode *inode = file_inode(out);
	struct iov_iter from;
	ssize_t written;
	int ret;

	/*
	 * Never wait for the network with a lock another user of the file
	 * may need: not the inode, not the file position, not freeze
	 * protection (folio locks are only taken inside ->write_iter).
	 */
	lockdep_assert_not_held(&inode->i_rwsem);
	lockdep_assert_not_held(&out->f_pos_lock);
	lockdep_assert_not_held(&inode->i_sb->s_writers.rw_sem[SB_FREEZE_WRITE - 1]);
	ret = tcp_recvfile_collect(sk, batch, min_t(size_t, want, RECVFILE_MAX_BATCH),
				   timeo, moved, !(flags & RECVFILE_NOWAIT_DATA),
				   *claimed);
	*claimed = ret > 0;
	if (ret <= 0)
		return ret;

	/*
	 * The batch is claimed: no other reader of the socket can take these
	 * bytes until tcp_recvfile_consume(), so what reaches the file is
	 * exactly what is consumed. Never hold the socket while the
	 * filesystem writes.
	 */
	lockdep_assert_not_held(&sk->sk_lock);
	iov_iter_bvec(&from, ITER_SOURCE, batch->bvec, batch->nr_segs, batch->len);
	written = recvfile_write(out, &from, ppos, flags & RECVFILE_NOWAIT_WRITE);
	*short_write = written < (ssize_t)batch->len;
	/*
	 * A short write ends the call: no need to keep the claim. A socket
	 * disconnected since the collect ends it too (the claim is gone):
	 * what comes next belongs to another connection.
	 */
	if (!tcp_recvfile_consume(sk, batch->seq, written > 0 ? written : 0,
				  !*short_write))
		*short_write = true;
	*claimed = !*short_write;
	recvfile_batch_release(batch);
	return written;
}

static int recvfile_check_files(struct file *in, struct file *out,
				unsigned int flags)
{
	struct socket *sock;

	if (flags & ~(RECVFILE_FLAGS_ALL | RECVFILE_NOWAIT_WRITE |
		      RECVFILE_NOWAIT_DATA))
		return -EINVAL;
	if (!(in->f_mode & FMODE_READ) || !(out->f_mode & FMODE_WRITE))
		return -EBADF;
	sock = sock_from_file(in);
	if (!sock)
		return -ENOTSOCK;
	if (!S_ISREG(file_inode(out)->i_mode) || !out->f_op->write_iter)
		return -EINVAL;
	/* As for splice: no append semantics, and no direct I/O from skbs. */
	if (out->f_flags & (O_APPEND | O_DIRECT))
		return -EINVAL;
	if (sock->type != SOCK_STREAM)
		return -EINVAL;
	if (!tcp_recvfile_supported(sock->sk))
		return -EOPNOTSUPP;
	/* as read(2) on it: a listening socket has no data, ever */
	if (READ_ONCE(sock->sk->sk_state) == TCP_LISTEN)
		return -ENOTCONN;
	return 0;
}

/**
 * do_recvfile - move data from a stream socket into a file's page cache
 * @in: connected TCP socket
 * @out: regular file open for writing, not O_APPEND or O_DIRECT
 * @ppos: file position to write at, advanced by the bytes moved; NULL to
 *	  write at @out's file position (taking f_pos_lock around each
 *	  write, never while waiting for the network)
 * @count: most bytes to move
 * @flags: RECVFILE_* flags
 *
 * Waits for data as recv(2) would (SO_RCVTIMEO, O_NONBLOCK on @in or
 * RECVFILE_NONBLOCK, signals), holding no filesystem lock. Then moves
 * what is queued, in batches, through @out's ->write_iter. Without
 * RECVFILE_WAITALL it returns once queued data is exhausted after some
 * bytes moved; with it, it waits until @count bytes moved.
 *
 * Bytes are consumed from the socket only after the filesystem stored
 * them, so the return value is both the number of bytes read from @in and
 * the number written to @out; on a short write the rest stays readable on
 * the socket.
 *
 * Context: process context, no locks held.
 * Return: bytes moved, 0 at end of stream, or -errno if nothing moved.
 */
ssize_t do_recvfile(struct file *in, struct file *out, loff_t *ppos,
		    size_t count, unsigned int flags)
{
	bool short_write = false, claimed = false, nonblock;
	struct recvfile_batch *batch;
	struct sock *sk;
	size_t done = 0;
	ssize_t ret;
	long timeo;
	loff_t pos;

	ret = recvfile_check_files(in, out, flags);
	if (ret)
		return ret;
	count = min_t(size_t, count, MAX_RW_COUNT);
	ret = rw_verify_area(READ, in, NULL, count);
	if (ret)
		return ret;
	pos = ppos ? *ppos : READ_ONCE(out->f_pos);
	ret = rw_verify_area(WRITE, out, &pos, count);
	if (ret)
		return ret;
	/* After the checks: a zero count validates the arguments. */
	if (!count)
		return 0;

	batch = kzalloc(sizeof(*batch), GFP_KERNEL);
	if (!batch)
		return -ENOMEM;

	sk = sock_from_file(in)->sk;
	nonblock = (flags & RECVFILE_NONBLOCK) || (in->f_flags & O_NONBLOCK);
	timeo = sock_rcvtimeo(sk, nonblock);
	while (done < count) {
		ret = recvfile_one_batch(sk, out, ppos, batch, count - done,
					 &timeo, done > 0, flags, &short_write,
					 &claimed);
		if (ret <= 0)
			break;
		done += ret;
		if (short_write || fatal_signal_pending(current))
			break;
		/* Without WAITALL, take only what is already queued. */
		if (!(flags & RECVFILE_WAITALL))
			timeo = 0;
	}
	if (claimed)
		tcp_recvfile_unclaim(sk);
	kfree(batch);

	if (done) {
		fsnotify_access(in);
		add_wchar(current, done);
		add_rchar(current, done);
		return done;
	}
	return ret;
}
EXPORT_SYMBOL_GPL(do_recvfile);

SYSCALL_DEFINE5(recvfile, int, out_fd, int, in_fd, loff_t __user *, offset,
		size_t, count, unsigned int, flags)
{
	unsigned int rflags = 0;
	struct fd in, out;
	loff_t pos;
	ssize_t ret;

	/* recv(2)'s names for the two things a receive may be asked. */
	if (flags & ~(MSG_DONTWAIT | MSG_WAITALL))
		return -EINVAL;
	if (flags & MSG_DONTWAIT)
		rflags |= RECVFILE_NONBLOCK;
	if (flags & MSG_WAITALL)
		rflags |= RECVFILE_WAITALL;

	in = fdget(in_fd);
	if (!fd_file(in))
		return -EBADF;
	/* Not fdget_pos(): f_pos_lock must not be held across the wait. */
	out = fdget(out_fd);
	ret = -EBADF;
	if (!fd_file(out))
		goto put_in;

	if (!offset) {
		ret = do_recvfile(fd_file(in), fd_file(out), NULL, count, rflags);
		goto put_out;
	}

	ret = -EFAULT;
	if (copy_from_user(&pos, offset, sizeof(pos)))
		goto put_out;
	/* Find out now, not after moving data, that the result has nowhere to go. */
	if (put_user(pos, offset))
		goto put_out;
	ret = -ESPIPE;
	if (!(fd_file(out)->f_mode & FMODE_PWRITE))
		goto put_out;
	ret = do_recvfile(fd_file(in), fd_file(out), &pos, count, rflags);
	/*
	 * Data moved is in the file and gone from the socket: report it even
	 * if *offset became unwritable during the call (then it is left as
	 * it was), rather than an error that would lose the count.
	 */
	if (ret > 0)
		(void)put_user(pos, offset);

put_out:
	fdput(out);
put_in:
	fdput(in);
	if (ret > 0)
		inc_syscr(current);
	return ret;
}
