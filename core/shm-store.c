/* shm-store.c — the namespace mirrored in a directory. */
#include "config.h"

#include "shm-store.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define XATTR_TYPE "user.shmfs.type"
#define XATTR_ATTR "user.shmfs.attr"

struct _ShmStore {
  int        dirfd;
  ShmBacking backing;
};

static int
write_attr (int fd, const ShmAttr *attr)
{
  char value[64];
  int len = g_snprintf (value, sizeof value, "%o %u %u", (unsigned) (attr->mode & 07777),
                        (unsigned) attr->uid, (unsigned) attr->gid);

  return fsetxattr (fd, XATTR_ATTR, value, (size_t) len, 0) < 0 ? -errno : 0;
}

/* Reads "MODE UID GID"; FALSE when absent or malformed. */
static gboolean
read_attr (int fd, ShmAttr *attr)
{
  char value[64];
  unsigned mode, uid, gid;
  ssize_t len = fgetxattr (fd, XATTR_ATTR, value, sizeof value - 1);

  if (len < 0)
    return FALSE;
  value[len] = '\0';
  if (sscanf (value, "%o %u %u", &mode, &uid, &gid) != 3 || mode > 07777 ||
      uid == (unsigned) -1 || gid == (unsigned) -1)
    return FALSE;
  attr->mode = (attr->mode & S_IFMT) | mode;
  attr->uid = uid;
  attr->gid = gid;
  return TRUE;
}

/* Opens an object's file and makes it exactly nbytes long: a new object's
 * file is empty (typed now), a loaded one has its size already. */
static int
store_backing_create (gpointer user_data, const char *path, const ShmType *type)
{
  ShmStore *store = user_data;
  guint64 nbytes = shm_type_nbytes (type);
  g_autofree char *spec = shm_type_to_string (type);
  struct stat st;
  int fd, err = 0;

  fd = openat (store->dirfd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return -errno;
  if (fstat (fd, &st) < 0)
    err = -errno;
  else if (st.st_size == 0)
    {
      /* Type first: a crash before the size is set leaves a typed empty
       * file, which loading completes. */
      if (fsetxattr (fd, XATTR_TYPE, spec, strlen (spec), 0) < 0 ||
          ftruncate (fd, (off_t) nbytes) < 0)
        err = -errno;
    }
  else if ((guint64) st.st_size != nbytes)
    err = -EIO;
  if (err < 0)
    {
      close (fd);
      return err;
    }
  return fd;
}

ShmStore *
shm_store_open (const char *dir, GError **error)
{
  ShmStore *store;
  const char probe[] = ".shmfs-xattr-probe";
  int dirfd, fd;

  if (g_mkdir_with_parents (dir, 0700) < 0 ||
      (dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "store %s: %s", dir, g_strerror (errno));
      return NULL;
    }
  /* Types live in user xattrs: refuse a filesystem that has none. */
  fd = openat (dirfd, probe, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || fsetxattr (fd, XATTR_TYPE, "u8", 2, 0) < 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   "store %s: cannot keep user xattrs: %s", dir, g_strerror (saved));
      if (fd >= 0)
        close (fd);
      unlinkat (dirfd, probe, 0);
      close (dirfd);
      return NULL;
    }
  close (fd);
  unlinkat (dirfd, probe, 0);

  store = g_new0 (ShmStore, 1);
  store->dirfd = dirfd;
  store->backing.create = store_backing_create;
  store->backing.user_data = store;
  return store;
}

void
shm_store_free (ShmStore *store)
{
  if (store == NULL)
    return;
  close (store->dirfd);
  g_free (store);
}

const ShmBacking *
shm_store_backing (ShmStore *store)
{
  return &store->backing;
}

typedef struct {
  ShmStore   *store;
  ShmTree    *tree;
  ShmStoreLog log;
  gpointer    user_data;
  guint       loaded;
} Loader;

static void
skip (Loader *l, const char *path, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static void
skip (Loader *l, const char *path, const char *fmt, ...)
{
  g_autofree char *why = NULL;
  va_list args;

  va_start (args, fmt);
  why = g_strdup_vprintf (fmt, args);
  va_end (args);
  l->log (l->user_data, path, why);
}

static void
apply_stat (ShmNode *node, const struct stat *st, int fd)
{
  ShmAttr *attr = shm_node_get_attr (node);

  attr->uid = st->st_uid;
  attr->gid = st->st_gid;
  read_attr (fd, attr);
  /* Whoever can write DIR could have made this entry: no bit that would
   * claim a privilege is loaded (an object's setuid or setgid, a
   * directory's setuid); a directory keeps setgid, which only hands down
   * its group. */
  attr->mode &= S_ISDIR (attr->mode) ? ~(mode_t) S_ISUID : ~(mode_t) (S_ISUID | S_ISGID);
  attr->atime = st->st_atim;
  attr->mtime = st->st_mtim;
  attr->ctime = st->st_ctim;
}

static void load_dir (Loader *l, ShmNode *dir, const char *path, int dirfd);

static void
load_object (Loader *l, ShmNode *dir, const char *name, const char *path, int fd,
             const struct stat *st)
{
  char spec[SHM_TYPE_MAX_SPEC + 1];
  ssize_t len = fgetxattr (fd, XATTR_TYPE, spec, sizeof spec - 1);
  ShmNode *node;
  ShmType type;
  int err;

  if (len < 0 && errno != ENODATA)
    return skip (l, path, "cannot read its type: %s", g_strerror (errno));
  if (len < 0 && st->st_size != 0)
    return skip (l, path, "a file with bytes but no %s (not ours)", XATTR_TYPE);
  if (len >= 0 && shm_type_parse (spec, (gsize) len, &type) < 0)
    return skip (l, path, "unknown type \"%.*s\"", (int) len, spec);
  if (len >= 0 && st->st_size != 0 && (guint64) st->st_size != shm_type_nbytes (&type))
    {
      guint64 need = shm_type_nbytes (&type);

      shm_type_clear (&type);
      return skip (l, path, "%" G_GINT64_FORMAT " bytes, but its type needs %" G_GUINT64_FORMAT,
                   (gint64) st->st_size, need);
    }

  if (shm_tree_create (l->tree, dir, name, FALSE, st->st_mode, st->st_uid, st->st_gid, &node) < 0)
    {
      if (len >= 0)
        shm_type_clear (&type);
      return skip (l, path, "cannot be created");
    }
  if (len >= 0)
    {
      err = shm_tree_set_type (l->tree, node, &type);
      shm_type_clear (&type);
      if (err < 0)
        {
          shm_tree_remove (l->tree, dir, name, FALSE);
          return skip (l, path, "cannot be mapped: %s", g_strerror (-err));
        }
    }
  apply_stat (node, st, fd);
  l->loaded++;
}

static void
load_entry (Loader *l, ShmNode *dir, int dirfd, const char *dir_path, const char *name)
{
  g_autofree char *path = *dir_path ? g_strconcat (dir_path, "/", name, NULL) : g_strdup (name);
  struct stat st;
  ShmNode *node;
  int fd;

  if (shm_node_get_id (dir) == SHM_TREE_ROOT_ID && strcmp (name, ".raw") == 0)
    return skip (l, path, "the name of the binary views");
  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK (st.st_mode))
    return skip (l, path, "a symbolic link (not ours)");
  fd = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return skip (l, path, "cannot be opened: %s", g_strerror (errno));
  if (fstat (fd, &st) < 0)
    skip (l, path, "cannot stat: %s", g_strerror (errno));
  else if (S_ISDIR (st.st_mode))
    {
      if (shm_tree_create (l->tree, dir, name, TRUE, st.st_mode, st.st_uid, st.st_gid, &node) < 0)
        skip (l, path, "cannot be created");
      else
        {
          apply_stat (node, &st, fd);
          l->loaded++;
          load_dir (l, node, path, fd);
        }
    }
  else if (S_ISREG (st.st_mode))
    load_object (l, dir, name, path, fd, &st);
  else
    skip (l, path, "neither a directory nor a regular file");
  close (fd);
}

static void
load_dir (Loader *l, ShmNode *dir, const char *path, int dirfd)
{
  int fd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *de;

  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return skip (l, *path ? path : ".", "cannot be listed: %s", g_strerror (errno));
    }
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      load_entry (l, dir, dirfd, path, de->d_name);
  closedir (d);
}

guint
shm_store_load (ShmStore *store, ShmTree *tree, ShmStoreLog log, gpointer user_data)
{
  Loader l = { store, tree, log, user_data, 0 };

  load_dir (&l, shm_tree_get_root (tree), "", store->dirfd);
  return l.loaded;
}

int
shm_store_create (ShmStore *store, const char *path, gboolean is_dir, const ShmAttr *attr)
{
  int fd, err;

  if (is_dir)
    {
      if (mkdirat (store->dirfd, path, 0700) < 0)
        return -errno;
      fd = openat (store->dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
  else
    fd = openat (store->dirfd, path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  err = write_attr (fd, attr);
  close (fd);
  return err;
}

int
shm_store_remove (ShmStore *store, const char *path, gboolean is_dir)
{
  return unlinkat (store->dirfd, path, is_dir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
}

int
shm_store_rename (ShmStore *store, const char *from, const char *to, guint flags)
{
  return renameat2 (store->dirfd, from, store->dirfd, to, flags) < 0 ? -errno : 0;
}

int
shm_store_set_attr (ShmStore *store, const char *path, const ShmAttr *attr)
{
  struct timespec times[2] = { attr->atime, attr->mtime };
  int fd = openat (store->dirfd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  int err;

  if (fd < 0)
    return -errno;
  err = write_attr (fd, attr);
  if (err == 0 && futimens (fd, times) < 0)
    err = -errno;
  close (fd);
  return err;
}

int
shm_store_sync_object (ShmStore *store, ShmObject *obj)
{
  if (!shm_object_is_typed (obj))
    return 0;
  /* The file's dirty pages, those stored through the mapping included. */
  if (fdatasync (shm_object_get_fd (obj)) < 0)
    return -errno;
  return 0;
}

int
shm_store_sync (ShmStore *store)
{
  return syncfs (store->dirfd) < 0 ? -errno : 0;
}
