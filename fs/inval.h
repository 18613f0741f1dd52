/* inval.h — kernel entries dropped outside any request.
 *
 * Dropping a dentry takes its parent's inode lock, which the kernel may
 * hold around the very request that wants the dentry gone: so the drop is
 * queued and made by a thread of its own.
 */
#pragma once

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <glib.h>

typedef struct _ShmfsInval ShmfsInval;

ShmfsInval *shmfs_inval_new (void);
/* Starts dropping entries through se (at init: its thread starts here). */
void shmfs_inval_start (ShmfsInval *inv, struct fuse_session *se);
/* Stops notifying: entries still queued are not dropped (at unmount). */
void shmfs_inval_stop (ShmfsInval *inv);
void shmfs_inval_free (ShmfsInval *inv);

/* Drops the kernel's dentry of name in parent soon, outside any request:
 * a twin entry under /.raw kept after its main entry went would keep the
 * object's inode, and so its memory, alive. */
void shmfs_inval_forget_entry (ShmfsInval *inv, fuse_ino_t parent, const char *name);
