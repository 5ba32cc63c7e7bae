/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _UAPI_LINUX_RECVFILE_H
#define _UAPI_LINUX_RECVFILE_H

/*
 * Flags for recvfile(2): move data from a connected stream socket into a
 * regular file's page cache without a user buffer.
 */

/* Do not wait for data: move what is queued now, -EAGAIN if nothing is. */
#define RECVFILE_NONBLOCK	0x00000001U
/*
 * Wait until @count bytes have been moved, as MSG_WAITALL does for recv(2);
 * end of stream, an error, a signal or SO_RCVTIMEO still end the call early
 * with the count moved so far.
 */
#define RECVFILE_WAITALL	0x00000002U

#define RECVFILE_FLAGS_ALL	(RECVFILE_NONBLOCK | RECVFILE_WAITALL)

#endif /* _UAPI_LINUX_RECVFILE_H */
