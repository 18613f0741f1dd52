/* textview.h — the text view of an object (textview.c): a read at offset 0
 * snapshots the value and later reads continue it; writes make up a text
 * that is committed when complete (core's shm-textwrite says when).
 */
#pragma once

#include "shmfs.h"

G_BEGIN_DECLS

/* Answers a read of h's text view (under h's lock). */
void shmfs_textview_reply_read (Shmfs *fs, fuse_req_t req, ShmfsHandle *h, off_t off, size_t size);
/* Takes a write to h's text view: size, or -errno when refused or when the
 * text it completes is not a value. */
int shmfs_textview_write (Shmfs *fs, ShmfsHandle *h, off_t off, const char *buf, size_t size);
/* Commits what was written and not yet committed (at close): 0 or -errno. */
int shmfs_textview_flush (Shmfs *fs, ShmfsHandle *h);
/* The size of node's view as stat shows it, into *size: its text's length
 * for an object's main view, 0 otherwise (rendered outside tree_lock).
 * 0 or -errno (the store of a remote mount). */
int shmfs_textview_size_of (Shmfs *fs, ShmNode *node, gboolean raw, guint64 *size);

G_END_DECLS
