/* shmfs.h — the daemon's state (Shmfs), a node's state, an open file and
 * inode numbers: the types the files of fs/ share. */
#pragma once

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <glib.h>

#include "shm-store.h"
#include "shm-textread.h"
#include "shm-textwrite.h"
#include "shm-tree.h"
#include "coherence.h"
#include "inval.h"
#include "lifetime.h"
#include "locks.h"
#include "rawclient.h"
#include "timers.h"

/* Inode numbers: every node has two, its main view (2*id) and its raw
 * twin (2*id + 1).  The root's main view is FUSE_ROOT_ID; its raw twin is
 * the hidden ".raw" directory. */
#define SHMFS_RAW_DIR_NAME ".raw"
#define SHMFS_RAW_DIR_INO (2 * SHM_TREE_ROOT_ID + 1)

typedef enum {
  SHMFS_MODE_AUTO,          /* wanted: passthrough if the kernel offers it */
  SHMFS_MODE_CACHED,
  SHMFS_MODE_PASSTHROUGH,
  SHMFS_MODE_REMOTE,        /* -o remote=: the bytes live in Redis */
} ShmfsMode;

typedef struct _ShmfsAuthority ShmfsAuthority;
typedef struct _ShmRemote ShmRemote;

typedef struct {
  struct fuse_session *se;
  const ShmfsAuthority *authority;/* decides the namespace (authority.h) */
  ShmRemote     *remote;          /* -o remote=URL: the store, or NULL */
  gpointer       authority_data;  /* the authority's own state */
  ShmfsTimers   *timers;          /* retries and renewals (timers.h) */
  GMutex         tree_lock;
  ShmTree       *tree;            /* protected by tree_lock */
  ShmStore      *store;           /* -o store=DIR, or NULL; calls under tree_lock */
  ShmfsCoherence *coherence;
  ShmfsInval    *inval;           /* entries dropped off the request path */
  ShmfsLifetimes *lifetimes;
  GMutex         poll_lock;       /* the pollers of every node */
  GCond          released;        /* an unlinked object's bytes were freed */
  guint          releases_pending;/* unlinked objects still open; tree_lock */
  GHashTable    *handles;         /* every open ShmfsHandle; tree_lock */
  GHashTable    *twin_ids;        /* raw twin numbers of moved directories:
                                     id -> ShmfsTwinId*; tree_lock */
  char          *mountpoint;      /* absolute */
  ShmfsRawClient *raw_client;     /* cached mode's atomic operations, or NULL */
  ShmfsMode      mode;            /* wanted before init, in force after */
  gboolean       init_failed;     /* the kernel refused the mode asked for */
  double         timeout;         /* entry/attr cache time of stable things */
  char          *bdi;             /* the mount's backing device "MAJ:MIN", or NULL */
  gboolean       verbose;         /* log rejected input on stderr */
} Shmfs;

/* Per-node state of the FUSE layer, attached to each ShmNode. */
typedef struct {
  Shmfs     *fs;
  guint64    raw_id;              /* the raw twin's number: the node id until
                                     a directory moves or an object the
                                     kernel holds is typed; tree_lock */
  guint64    nlookup[2];          /* kernel references, main and raw; tree_lock */
  ShmfsSync *sync;                /* objects only: coherence of the bytes */
  guint      handles;             /* open files of either view; tree_lock */
  gboolean   release_pending;     /* unlinked, bytes freed at last release */
  pid_t      bound_pid;           /* removed when it exits; 0: not bound */
  char      *bound_elsewhere;     /* remote: "host:pid" of another host's
                                     binding, or NULL; tree_lock */
  ShmfsLocks *locks;              /* flock and fcntl locks of both views */
  GPtrArray  *pollers;            /* ShmfsHandle* with a poll registered;
                                     Shmfs.poll_lock */
} ShmfsNode;


/* Open file state. */
typedef struct {
  ShmNode   *node;                /* referenced; stable */
  gboolean   raw;
  gboolean   empty;               /* raw, opened as the untyped view: no bytes */
  gboolean   writer;
  gboolean   backing;             /* passthrough open holding the backing */
  gboolean   counted_writer;      /* cached raw writer, counted in its sync */
  GMutex     lock;                /* protects the text fields below */
  ShmTextRead *textread;          /* text read state, from the last read at 0 */
  ShmTextWrite *textwrite;        /* text write state, from the last write at 0 */
  guint64    seen_version;        /* version rendered by the last read at 0 */
  struct fuse_pollhandle *ph;     /* the latest poll registration, to notify
                                     at the next change; Shmfs.poll_lock */
} ShmfsHandle;

static inline Shmfs *
shmfs_from_req (fuse_req_t req)
{
  return fuse_req_userdata (req);
}

/* The FUSE layer's state of node. */
static inline ShmfsNode *
shmfs_node_state (ShmNode *node)
{
  return shm_node_get_data (node);
}

/* tree_lock held (a raw twin is renumbered when its directory moves or its
 * object is typed). */
static inline fuse_ino_t
shmfs_ino (const ShmNode *node, gboolean raw)
{
  guint64 id = shm_node_get_id (node);
  if (id == SHM_TREE_ROOT_ID && !raw)
    return FUSE_ROOT_ID;
  if (raw)
    id = ((ShmfsNode *) shm_node_get_data (node))->raw_id;
  return 2 * id + (raw ? 1 : 0);
}
