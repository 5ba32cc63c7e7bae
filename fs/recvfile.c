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
#include <linux/syscalls.h>
#include <linux/uio.h>
#include <net/sock.h>

/*
 * Write one batch of queued socket data to @out at *@ppos and consume what
 * was written. Returns bytes moved, 0 at end of stream, or -errno; sets
 * *@short_write when the file took less than was offered.
 */
static ssize_t recvfile_one_batch(struct sock *sk, struct file *out,
				  loff_t *ppos, struct recvfile_batch *batch,
				  size_t want, long *timeo, bool moved,
				  bool nowait, bool *short_write)
{
	struct iov_iter from;
	ssize_t written;
	int ret;

	/* Never wait for the network with a filesystem lock held. */
	lockdep_assert_not_held(&file_inode(out)->i_rwsem);
	ret = tcp_recvfile_collect(sk, batch, min_t(size_t, want, RECVFILE_MAX_BATCH),
				   timeo, moved);
	if (ret <= 0)
		return ret;

	/* Never hold the socket while the filesystem writes. */
	lockdep_assert_not_held(&sk->sk_lock);
	iov_iter_bvec(&from, ITER_SOURCE, batch->bvec, batch->nr_segs, batch->len);
	written = vfs_iter_write(out, &from, ppos, nowait ? RWF_NOWAIT : 0);
	if (written > 0) {
		ret = tcp_recvfile_consume(sk, batch->seq, written);
		if (ret)
			written = ret;
	}
	*short_write = written < (ssize_t)batch->len;
	recvfile_batch_release(batch);
	return written;
}

static int recvfile_check_files(struct file *in, struct file *out,
				unsigned int flags)
{
	struct socket *sock;

	if (flags & ~(RECVFILE_FLAGS_ALL | RECVFILE_NOWAIT_WRITE))
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
 * @ppos: file position to write at; advanced by the bytes moved
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
	struct recvfile_batch *batch;
	bool short_write = false, nonblock;
	struct sock *sk;
	size_t done = 0;
	ssize_t ret;
	long timeo;

	ret = recvfile_check_files(in, out, flags);
	if (ret)
		return ret;
	count = min_t(size_t, count, MAX_RW_COUNT);
	ret = rw_verify_area(READ, in, NULL, count);
	if (ret)
		return ret;
	ret = rw_verify_area(WRITE, out, ppos, count);
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
					 &timeo, done > 0,
					 flags & RECVFILE_NOWAIT_WRITE, &short_write);
		if (ret <= 0)
			break;
		done += ret;
		if (short_write || fatal_signal_pending(current))
			break;
		/* Without WAITALL, take only what is already queued. */
		if (!(flags & RECVFILE_WAITALL))
			timeo = 0;
	}
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
	struct fd in, out;
	loff_t pos;
	ssize_t ret;

	if (flags & ~RECVFILE_FLAGS_ALL)
		return -EINVAL;

	in = fdget(in_fd);
	if (!fd_file(in))
		return -EBADF;
	out = offset ? fdget(out_fd) : fdget_pos(out_fd);
	ret = -EBADF;
	if (!fd_file(out))
		goto put_in;

	if (!offset) {
		pos = fd_file(out)->f_pos;
		ret = do_recvfile(fd_file(in), fd_file(out), &pos, count, flags);
		if (ret > 0)
			fd_file(out)->f_pos = pos;
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
	ret = do_recvfile(fd_file(in), fd_file(out), &pos, count, flags);
	if (put_user(pos, offset))
		ret = -EFAULT;

put_out:
	if (offset)
		fdput(out);
	else
		fdput_pos(out);
put_in:
	fdput(in);
	if (ret > 0)
		inc_syscr(current);
	return ret;
}
