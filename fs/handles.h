/* handles.h — open files and their poll(2) registrations (handles.c).
 * _locked: with tree_lock held.
 */
#pragma once

#include "shmfs.h"

G_BEGIN_DECLS

/* A new open file of node's view. */
ShmfsHandle *shmfs_handle_new_locked (Shmfs *fs, ShmNode *node, gboolean raw, int flags);
/* Frees an open file (release, or an open that could not be answered). */
void shmfs_handle_free (Shmfs *fs, fuse_req_t req, ShmfsHandle *h);
/* Frees the open files the kernel never released (at exit). */
void shmfs_free_handles (Shmfs *fs);
/* The open file behind fi. */
ShmfsHandle *shmfs_handle_of (struct fuse_file_info *fi);
/* Wakes the poll(2)ers of the node's text view. */
void shmfs_node_wake_pollers (Shmfs *fs, ShmNode *node);

G_END_DECLS
