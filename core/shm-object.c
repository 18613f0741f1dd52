/* shm-object.c — typed objects over a backing region. */
#include "config.h"

#include "shm-object.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct _ShmObject {
  gint     ref_count;
  gboolean typed;
  ShmType  type;
  guint64  nbytes;
  int      fd;
  guint8  *data;
  ShmSlab *slab;     /* data is a slot of it; else fd and a mapping */
  guint64  version;  /* atomic */
};

static int
memfd_backing_create (gpointer user_data, const char *path, const ShmType *type)
{
  guint64 nbytes = shm_type_nbytes (type);
  int fd = memfd_create ("shmfs", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return -errno;
  /* Allocated now, so no mapping can meet SIGBUS for want of memory. */
  if (ftruncate (fd, (off_t) nbytes) < 0 ||
      fallocate (fd, 0, 0, (off_t) nbytes) < 0 ||
      fcntl (fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
    {
      int err = -errno;
      close (fd);
      return err;
    }
  return fd;
}

const ShmBacking *
shm_backing_memfd (void)
{
  static const ShmBacking memfd_backing = { memfd_backing_create, NULL };
  return &memfd_backing;
}

ShmObject *
shm_object_new (void)
{
  ShmObject *obj = g_new0 (ShmObject, 1);
  obj->ref_count = 1;
  obj->fd = -1;
  return obj;
}

ShmObject *
shm_object_ref (ShmObject *obj)
{
  g_atomic_int_inc (&obj->ref_count);
  return obj;
}

void
shm_object_unref (ShmObject *obj)
{
  if (obj == NULL || !g_atomic_int_dec_and_test (&obj->ref_count))
    return;
  shm_object_drop_bytes (obj);
  shm_type_clear (&obj->type);
  g_free (obj);
}

/* Maps a new region of nbytes from backing; returns the fd or -errno. */
static int
map_region (const ShmBacking *backing, const ShmType *type, const char *path, guint8 **data)
{
  guint64 nbytes = shm_type_nbytes (type);
  void *map;
  int fd;

  fd = backing->create (backing->user_data, path, type);
  if (fd < 0)
    return fd;
  map = mmap (NULL, nbytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED)
    {
      int err = -errno;
      close (fd);
      return err;
    }
  *data = map;
  return fd;
}

int
shm_object_set_type (ShmObject *obj, const ShmType *type, const ShmBacking *backing,
                     ShmSlab *slab, const char *path)
{
  guint64 nbytes = shm_type_nbytes (type);

  if (obj->typed)
    return -EPERM;
  if (nbytes == 0 || nbytes > G_MAXSIZE)
    return -EINVAL;

  if (slab == NULL && backing == NULL)
    ;   /* the bytes live elsewhere */
  else if (slab != NULL && nbytes <= SHM_SLAB_MAX)
    {
      if ((obj->data = shm_slab_alloc (slab, nbytes)) == NULL)
        return -ENOMEM;
      obj->slab = shm_slab_ref (slab);
    }
  else
    {
      int fd = map_region (backing, type, path, &obj->data);
      if (fd < 0)
        return fd;
      obj->fd = fd;
    }
  /* Its record (if any) lives as long as the object: holders of
   * shm_object_get_type()'s pointer may outlast its bytes. */
  shm_type_clear (&obj->type);
  shm_type_copy (&obj->type, type);
  obj->nbytes = nbytes;
  obj->typed = TRUE;
  shm_object_bump_version (obj);
  return 0;
}

int
shm_object_own_region (ShmObject *obj, const ShmBacking *backing, const char *path)
{
  guint8 *data;
  int fd;

  if (obj->slab == NULL)
    return obj->typed ? 0 : -EINVAL;
  fd = map_region (backing, &obj->type, path, &data);
  if (fd < 0)
    return fd;
  memcpy (data, obj->data, obj->nbytes);
  shm_slab_release (obj->slab, obj->data, obj->nbytes);
  g_clear_pointer (&obj->slab, shm_slab_unref);
  obj->data = data;
  obj->fd = fd;
  return 0;
}

void
shm_object_close_fd (ShmObject *obj)
{
  if (obj->slab == NULL && obj->fd >= 0)
    {
      close (obj->fd);
      obj->fd = -1;
    }
}

int
shm_object_reopen_fd (ShmObject *obj)
{
  gsize page = (gsize) sysconf (_SC_PAGESIZE);
  guintptr start = (guintptr) obj->data;
  guintptr end = start + ((obj->nbytes + page - 1) / page) * page;
  g_autofree char *path = NULL;

  if (obj->fd >= 0)
    return obj->fd;
  if (obj->slab != NULL || obj->data == NULL)
    return -EINVAL;
  /* The mapping keeps the file; its map_files entry opens it again. */
  path = g_strdup_printf ("/proc/self/map_files/%lx-%lx", (unsigned long) start,
                          (unsigned long) end);
  obj->fd = open (path, O_RDWR | O_CLOEXEC);
  return obj->fd >= 0 ? obj->fd : -errno;
}

guint64
shm_object_drop_bytes (ShmObject *obj)
{
  guint64 nbytes = obj->nbytes;

  if (obj->slab != NULL)
    shm_slab_release (obj->slab, obj->data, obj->nbytes);
  else if (obj->data != NULL)
    munmap (obj->data, obj->nbytes);
  if (obj->fd >= 0)
    close (obj->fd);
  g_clear_pointer (&obj->slab, shm_slab_unref);
  obj->fd = -1;
  obj->data = NULL;
  obj->nbytes = 0;
  obj->typed = FALSE;
  return nbytes;
}

gboolean
shm_object_is_typed (const ShmObject *obj)
{
  return obj->typed;
}

const ShmType *
shm_object_get_type (const ShmObject *obj)
{
  return obj->typed ? &obj->type : NULL;
}

guint64
shm_object_get_nbytes (const ShmObject *obj)
{
  return obj->nbytes;
}

int
shm_object_get_fd (const ShmObject *obj)
{
  return obj->fd;
}

guint8 *
shm_object_get_data (const ShmObject *obj)
{
  return obj->data;
}

guint64
shm_object_get_version (const ShmObject *obj)
{
  return __atomic_load_n (&obj->version, __ATOMIC_SEQ_CST);
}

guint64
shm_object_bump_version (ShmObject *obj)
{
  return __atomic_add_fetch (&obj->version, 1, __ATOMIC_SEQ_CST);
}
