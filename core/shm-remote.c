/* shm-remote.c — a shmfs namespace and its values in Redis.
 *
 * Key layout (docs/design/remote.md §3.1, P the prefix):
 *   {P}:meta {P}:ctr {P}:i:<oid> {P}:d:<dir> {P}:o:<dir> {P}:used {P}:ns
 *     the namespace, all in the slot of {P}: each change is one script
 *     there (core/lua/ns-*.lua), so atomic on a Cluster too;
 *   {P:oid}:v {P:oid}:m {P:oid}:ev
 *     an object's bytes, its ver and mt, its change channel: in the
 *     object's own slot (core/lua/value-*.lua).
 * Node times live in i; a value change sets m.mt, and getattr shows the
 * later of the two as mtime and ctime.
 *
 * Simplified for now (later steps of §6): typing has no lease (a daemon
 * dying between its steps leaves the object "being typed"); unlinked
 * objects stay readable for the lease after their unlink, not their last
 * close (no renewal yet); no deadline fence; getattr reads its two slots
 * one after the other; no dangling-entry sweep (nothing makes one yet).
 */
#include "config.h"

#include "shm-remote.h"
#include "shm-redis.h"
#include "shm-redis-sub.h"
#include "shm-lua.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The scripts return Linux errnos. */
G_STATIC_ASSERT (EPERM == 1 && ENOENT == 2 && EAGAIN == 11 && EEXIST == 17 && ENOTDIR == 20 && EISDIR == 21 &&
                 EINVAL == 22 && ENOSPC == 28 && ENOTEMPTY == 39 && ESTALE == 116);

#define FORMAT "1"
#define MAX_VALUE (G_GUINT64_CONSTANT (512) << 20)   /* proto-max-bulk-len */

typedef enum {
  NS_INIT, NS_LOOKUP, NS_GETATTR, NS_LIST, NS_CREATE, NS_REMOVE, NS_RENAME, NS_SET_ATTR,
  NS_TYPE_BEGIN, NS_TYPE_END, NS_TYPE_UNDO, NS_BIND, NS_RENEW, NS_EXPIRE,
  VALUE_INIT, VALUE_READ, VALUE_WRITE, VALUE_BUMP, VALUE_ATOMIC, VALUE_LOCK,
  N_SCRIPTS
} Script;

static const char *const script_sources[N_SCRIPTS] = {
  shm_lua_ns_init, shm_lua_ns_lookup, shm_lua_ns_getattr, shm_lua_ns_list, shm_lua_ns_create,
  shm_lua_ns_remove, shm_lua_ns_rename, shm_lua_ns_set_attr, shm_lua_ns_type_begin,
  shm_lua_ns_type_end, shm_lua_ns_type_undo, shm_lua_ns_bind, shm_lua_ns_renew,
  shm_lua_ns_expire, shm_lua_value_init, shm_lua_value_read,
  shm_lua_value_write, shm_lua_value_bump, shm_lua_value_atomic, shm_lua_value_lock,
};

struct _ShmRemote {
  ShmRedis *redis;
  char     *prefix;
  char     *meta_key;       /* {P}:meta, routes every namespace script */
  char     *epoch;
  char     *host;           /* this daemon, among those of the store */
  guint64   lease_ms;
  gint64    timeout_ms;
  gint64    clock_offset;   /* the server's clock in ms, less our monotonic ms */
  GMutex    epoch_lock;     /* shm_remote_check_store */
  ShmRedisSub *sub;         /* shm_remote_watch_start, or NULL */
  ShmRemoteChangedFunc changed;
  gpointer  changed_data;
  mode_t    root_mode;      /* the root, when the store has none */
  uid_t     root_uid;
  gid_t     root_gid;
  ShmRedisScript *scripts[N_SCRIPTS];
};

/* ---- arguments --------------------------------------------------------------- */

/* The arguments of one script call: strings made here, or bytes lent. */
typedef struct {
  GPtrArray *owned;
  GArray    *args;     /* const char * */
  GArray    *lens;     /* size_t */
} Args;

static void
args_init (Args *a)
{
  a->owned = g_ptr_array_new_with_free_func (g_free);
  a->args = g_array_new (FALSE, FALSE, sizeof (const char *));
  a->lens = g_array_new (FALSE, FALSE, sizeof (size_t));
}

static void
args_clear (Args *a)
{
  g_ptr_array_unref (a->owned);
  g_array_unref (a->args);
  g_array_unref (a->lens);
}

static void
args_bytes (Args *a, const void *data, size_t len)
{
  g_array_append_val (a->args, data);
  g_array_append_val (a->lens, len);
}

static void
args_take (Args *a, char *s)
{
  g_ptr_array_add (a->owned, s);
  args_bytes (a, s, strlen (s));
}

static void
args_str (Args *a, const char *s)
{
  args_bytes (a, s, strlen (s));
}

static void
args_u64 (Args *a, guint64 v)
{
  args_take (a, g_strdup_printf ("%" G_GUINT64_FORMAT, v));
}

static char *
format_time (const struct timespec *ts)
{
  return g_strdup_printf ("%lld.%09ld", (long long) ts->tv_sec, (long) ts->tv_nsec);
}

/* ---- replies ----------------------------------------------------------------- */

static guint64
reply_u64 (const redisReply *rep)
{
  if (rep->type == REDIS_REPLY_INTEGER)
    return rep->integer;
  if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS)
    return g_ascii_strtoull (rep->str, NULL, 10);
  return 0;
}

/* Checks a script's {status, ...} reply: 0, the -errno it returned, or
 * -EIO for a malformed reply; frees it unless 0. */
static int
check_status (redisReply *rep, gsize min_elements)
{
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
      rep->element[0]->type == REDIS_REPLY_INTEGER)
    {
      long long st = rep->element[0]->integer;
      if (st < 0 && st > -4096)
        {
          freeReplyObject (rep);
          return (int) st;
        }
      if (st == 0 && rep->elements >= min_elements)
        return 0;
    }
  freeReplyObject (rep);
  return -EIO;
}

/* The deadline fence of a script sent now (core/lua/fence.lua): the
 * server time at which this daemon stops waiting for its reply. */
static char *
deadline_arg (ShmRemote *r)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT,
                          g_get_monotonic_time () / 1000 +
                          __atomic_load_n (&r->clock_offset, __ATOMIC_RELAXED) + r->timeout_ms);
}

/* Runs script s with its deadline first, then a's arguments. */
static int
eval_raw (ShmRemote *r, Script s, int nkeys, const char **keys, Args *a, redisReply **reply)
{
  g_autofree char *deadline = deadline_arg (r);
  g_autofree const char **argv = g_new (const char *, a->args->len + 1);
  g_autofree size_t *lens = g_new (size_t, a->args->len + 1);

  argv[0] = deadline;
  lens[0] = strlen (deadline);
  if (a->args->len > 0)
    {
      memcpy (argv + 1, a->args->data, a->args->len * sizeof *argv);
      memcpy (lens + 1, a->lens->data, a->args->len * sizeof *lens);
    }
  return shm_redis_eval (r->redis, r->scripts[s], nkeys, keys, NULL, a->args->len + 1, argv, lens,
                         reply);
}

static int
eval_keys (ShmRemote *r, Script s, int nkeys, const char **keys, Args *a, gsize min_elements,
           redisReply **reply)
{
  int err = eval_raw (r, s, nkeys, keys, a, reply);

  args_clear (a);
  if (err < 0)
    return err;
  return check_status (*reply, min_elements);
}

/* Runs a namespace script (on {P}); consumes a. */
static int
ns_eval (ShmRemote *r, Script s, Args *a, gsize min_elements, redisReply **reply)
{
  const char *keys[] = { r->meta_key };
  return eval_keys (r, s, 1, keys, a, min_elements, reply);
}

static char *
value_key (ShmRemote *r, guint64 oid, const char *suffix)
{
  return g_strdup_printf ("{%s:%" G_GUINT64_FORMAT "}:%s", r->prefix, oid, suffix);
}

/* Runs a value script (on {P:oid}: keys v, m, l); consumes a. */
static int
value_eval (ShmRemote *r, Script s, guint64 oid, Args *a, gsize min_elements, redisReply **reply)
{
  g_autofree char *v = value_key (r, oid, "v"), *m = value_key (r, oid, "m");
  g_autofree char *l = value_key (r, oid, "l");
  const char *keys[] = { v, m, l };
  return eval_keys (r, s, 3, keys, a, min_elements, reply);
}

/* ---- entries ------------------------------------------------------------------ */

void
shm_remote_entry_clear (ShmRemoteEntry *e)
{
  g_clear_pointer (&e->name, g_free);
  g_clear_pointer (&e->type, g_free);
  g_clear_pointer (&e->bound, g_free);
}

static void
parse_time (const char *s, struct timespec *ts)
{
  char *end;

  ts->tv_sec = g_ascii_strtoll (s, &end, 10);
  ts->tv_nsec = *end == '.' ? g_ascii_strtoll (end + 1, NULL, 10) : 0;
  if (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
    ts->tv_nsec = 0;
}

static gboolean
time_after (const struct timespec *a, const struct timespec *b)
{
  return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* Fills e from {oid, {field, value, ...}} (the value's part: merge_value). */
static int
parse_entry (const redisReply *oid, const redisReply *fields, ShmRemoteEntry *e)
{
  gboolean pending = FALSE, unlinked = FALSE;
  guint64 nd = 0;

  memset (e, 0, sizeof *e);
  if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2 != 0)
    return -EIO;
  e->oid = reply_u64 (oid);
  for (gsize i = 0; i < fields->elements; i += 2)
    {
      const char *k = fields->element[i]->str, *v = fields->element[i + 1]->str;
      if (k == NULL || v == NULL)
        continue;
      if (strcmp (k, "k") == 0)
        e->is_dir = v[0] == 'd';
      else if (strcmp (k, "mode") == 0)
        e->attr.mode = g_ascii_strtoull (v, NULL, 10);
      else if (strcmp (k, "uid") == 0)
        e->attr.uid = g_ascii_strtoull (v, NULL, 10);
      else if (strcmp (k, "gid") == 0)
        e->attr.gid = g_ascii_strtoull (v, NULL, 10);
      else if (strcmp (k, "at") == 0)
        parse_time (v, &e->attr.atime);
      else if (strcmp (k, "mt") == 0)
        parse_time (v, &e->attr.mtime);
      else if (strcmp (k, "ct") == 0)
        parse_time (v, &e->attr.ctime);
      else if (strcmp (k, "par") == 0)
        e->parent = g_ascii_strtoull (v, NULL, 10);
      else if (strcmp (k, "nm") == 0 && v[0] != '\0')
        e->name = g_strdup (v);
      else if (strcmp (k, "t") == 0)
        e->type = g_strdup (v);
      else if (strcmp (k, "nb") == 0)
        e->nbytes = g_ascii_strtoull (v, NULL, 10);
      else if (strcmp (k, "nd") == 0)
        nd = g_ascii_strtoull (v, NULL, 10);
      else if (strcmp (k, "tp") == 0)
        pending = TRUE;
      else if (strcmp (k, "ul") == 0)
        unlinked = TRUE;
      else if (strcmp (k, "lt") == 0)
        e->bound = g_strdup (v);
    }
  if (pending)           /* untyped until typing completes (§3.4) */
    {
      g_clear_pointer (&e->type, g_free);
      e->nbytes = 0;
    }
  if (unlinked)
    {
      e->parent = 0;
      g_clear_pointer (&e->name, g_free);
    }
  e->nlink = e->is_dir ? 2 + nd : unlinked ? 0 : 1;
  return 0;
}

/* Adds the value's version and mtime (another slot) to a typed entry.
 * When the value's node does not answer (a Cluster node down), the entry
 * keeps the namespace's times: its name can still be listed, renamed and
 * removed; the value's own operations fail. */
static int
merge_value (ShmRemote *r, ShmRemoteEntry *e)
{
  g_autofree char *m = NULL;
  redisReply *rep;
  int err;

  if (e->type == NULL)
    return 0;
  m = value_key (r, e->oid, "m");
  if ((err = shm_redis_commandf (r->redis, m, &rep, "HMGET %s ver mt", m)) < 0)
    return err == -EIO || err == -ETIMEDOUT ? 0 : err;
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2)
    {
      if (rep->element[0]->type == REDIS_REPLY_STRING)
        e->version = reply_u64 (rep->element[0]);
      if (rep->element[1]->type == REDIS_REPLY_STRING)
        {
          struct timespec mt;
          parse_time (rep->element[1]->str, &mt);
          if (time_after (&mt, &e->attr.mtime))
            e->attr.mtime = mt;
          if (time_after (&mt, &e->attr.ctime))
            e->attr.ctime = mt;
        }
    }
  freeReplyObject (rep);
  return 0;
}

/* Takes {0, oid, fields} into *out (optional). */
static int
take_entry (ShmRemote *r, redisReply *rep, ShmRemoteEntry *out)
{
  ShmRemoteEntry e;
  int err = parse_entry (rep->element[1], rep->element[2], &e);

  freeReplyObject (rep);
  if (err == 0)
    err = merge_value (r, &e);
  if (err == 0 && out != NULL)
    *out = e;
  else
    shm_remote_entry_clear (&e);
  return err;
}

/* Expires an unlinked object's value after the lease (hosts that have it
 * open keep reading it meanwhile).  Best effort: its keys are unreachable. */
static void
expire_value (ShmRemote *r, guint64 oid)
{
  static const char *const suffixes[] = { "v", "m" };

  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      g_autofree char *key = value_key (r, oid, suffixes[i]);
      redisReply *rep;
      if (shm_redis_commandf (r->redis, key, &rep, "PEXPIRE %s %" G_GUINT64_FORMAT,
                              key, r->lease_ms) == 0)
        freeReplyObject (rep);
    }
}

/* ---- open ----------------------------------------------------------------------- */

/* Runs ns-init: the store's meta and root, made if missing (with a new
 * epoch).  The reply as it came. */
static int
init_store (ShmRemote *r, redisReply **rep)
{
  Args a;
  int err;

  args_init (&a);
  args_str (&a, FORMAT);
  args_str (&a, "le");
  args_take (&a, g_strdup_printf ("%08x%08x", g_random_int (), g_random_int ()));
  args_u64 (&a, r->root_mode);
  args_u64 (&a, r->root_uid);
  args_u64 (&a, r->root_gid);
  err = eval_raw (r, NS_INIT, 1, (const char **) &r->meta_key, &a, rep);
  args_clear (&a);
  return err;
}

ShmRemote *
shm_remote_open (const char *url, const char *prefix, const ShmRemoteConfig *config,
                 GError **error)
{
  ShmRedisConfig rc = { .timeout = config != NULL ? config->timeout : 0 };
  ShmRemote *r;
  redisReply *rep;
  int err;

  if (G_BYTE_ORDER != G_LITTLE_ENDIAN)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "remote stores keep values little-endian; this host is not");
      return NULL;
    }
  if (prefix == NULL)
    prefix = "shmfs";
  if (prefix[0] == '\0' || strlen (prefix) > 200 || strpbrk (prefix, "{} \t\r\n") != NULL)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "remote prefix '%s': 1 to 200 characters, no braces or blanks", prefix);
      return NULL;
    }

  r = g_new0 (ShmRemote, 1);
  if ((r->redis = shm_redis_open (url, &rc, error)) == NULL)
    {
      g_free (r);
      return NULL;
    }
  r->prefix = g_strdup (prefix);
  r->meta_key = g_strdup_printf ("{%s}:meta", prefix);
  r->lease_ms = (config != NULL && config->lease > 0 ? config->lease : 15.0) * 1000;
  r->timeout_ms = (config != NULL && config->timeout > 0 ? config->timeout : 3.0) * 1000;
  r->host = g_strdup_printf ("%08x%08x", g_random_int (), g_random_int ());
  g_mutex_init (&r->epoch_lock);
  for (int i = 0; i < N_SCRIPTS; i++)
    r->scripts[i] = shm_redis_script_new (script_sources[i]);

  r->root_mode = S_IFDIR | (config != NULL ? config->root_mode & 07777 : 0755);
  r->root_uid = config != NULL ? config->root_uid : getuid ();
  r->root_gid = config != NULL ? config->root_gid : getgid ();
  err = shm_remote_sync_clock (r);
  if (err == 0)
    err = init_store (r, &rep);
  if (err < 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "%s: cannot open store '%s': %s",
                   url, prefix, g_strerror (-err));
      goto fail;
    }
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 && rep->element[0]->integer == -1)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: store '%s' has format %s and byte order %s; this shmfs reads format "
                   FORMAT ", le", url, prefix, rep->element[1]->str, rep->element[2]->str);
      freeReplyObject (rep);
      goto fail;
    }
  if ((err = check_status (rep, 2)) < 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "%s: cannot open store '%s': %s",
                   url, prefix, g_strerror (-err));
      goto fail;
    }
  r->epoch = g_strndup (rep->element[1]->str, rep->element[1]->len);
  freeReplyObject (rep);
  return r;

fail:
  shm_remote_free (r);
  return NULL;
}

void
shm_remote_free (ShmRemote *r)
{
  if (r == NULL)
    return;
  for (int i = 0; i < N_SCRIPTS; i++)
    shm_redis_script_free (r->scripts[i]);
  shm_redis_free (r->redis);
  g_free (r->prefix);
  g_free (r->meta_key);
  g_free (r->epoch);
  g_free (r->host);
  g_mutex_clear (&r->epoch_lock);
  shm_redis_sub_free (r->sub);
  g_free (r);
}

ShmRedis *
shm_remote_get_redis (ShmRemote *r)
{
  return r->redis;
}

const char *
shm_remote_get_epoch (ShmRemote *r)
{
  return r->epoch;
}

/* ---- namespace -------------------------------------------------------------------- */

int
shm_remote_lookup (ShmRemote *r, guint64 dir, const char *name, ShmRemoteEntry *out)
{
  redisReply *rep;
  Args a;
  int err;

  if (strlen (name) > SHM_TREE_NAME_MAX)
    return -ENAMETOOLONG;
  args_init (&a);
  args_u64 (&a, dir);
  args_str (&a, name);
  if ((err = ns_eval (r, NS_LOOKUP, &a, 3, &rep)) < 0)
    return err;
  return take_entry (r, rep, out);
}

int
shm_remote_getattr (ShmRemote *r, guint64 oid, ShmRemoteEntry *out)
{
  redisReply *rep;
  Args a;
  int err;

  args_init (&a);
  args_u64 (&a, oid);
  if ((err = ns_eval (r, NS_GETATTR, &a, 3, &rep)) < 0)
    return err;
  return take_entry (r, rep, out);
}

int
shm_remote_list (ShmRemote *r, guint64 dir, guint64 after, guint max, GArray *entries)
{
  redisReply *rep;
  Args a;
  int err = 0;

  args_init (&a);
  args_u64 (&a, dir);
  args_u64 (&a, after);
  args_u64 (&a, MAX (max, 1));
  if ((err = ns_eval (r, NS_LIST, &a, 1, &rep)) < 0)
    return err;
  for (gsize i = 1; i < rep->elements && i <= max && err == 0; i++)
    {
      redisReply *item = rep->element[i];
      ShmRemoteEntry e;
      if (item->type != REDIS_REPLY_ARRAY || item->elements != 2)
        err = -EIO;
      else if ((err = parse_entry (item->element[0], item->element[1], &e)) == 0)
        {
          if ((err = merge_value (r, &e)) == 0)
            g_array_append_val (entries, e);
          else
            shm_remote_entry_clear (&e);
        }
    }
  freeReplyObject (rep);
  return err;
}

int
shm_remote_create (ShmRemote *r, guint64 dir, const char *name, gboolean is_dir,
                   mode_t mode, uid_t uid, gid_t gid, ShmRemoteEntry *out)
{
  redisReply *rep;
  Args a;
  int err;

  if ((err = shm_tree_check_name (name)) < 0)
    return err;
  args_init (&a);
  args_u64 (&a, dir);
  args_str (&a, name);
  args_str (&a, is_dir ? "1" : "0");
  args_u64 (&a, mode & 07777);
  args_u64 (&a, uid);
  args_u64 (&a, gid);
  if ((err = ns_eval (r, NS_CREATE, &a, 3, &rep)) < 0)
    return err;
  return take_entry (r, rep, out);
}

int
shm_remote_remove (ShmRemote *r, guint64 dir, const char *name, gboolean is_dir, guint64 *oid)
{
  redisReply *rep;
  guint64 removed;
  gboolean typed;
  Args a;
  int err;

  if (strlen (name) > SHM_TREE_NAME_MAX)
    return -ENOENT;
  args_init (&a);
  args_u64 (&a, dir);
  args_str (&a, name);
  args_str (&a, is_dir ? "1" : "0");
  args_u64 (&a, r->lease_ms);
  if ((err = ns_eval (r, NS_REMOVE, &a, 3, &rep)) < 0)
    return err;
  removed = reply_u64 (rep->element[1]);
  typed = reply_u64 (rep->element[2]) != 0;
  freeReplyObject (rep);
  if (typed)
    expire_value (r, removed);
  if (oid != NULL)
    *oid = removed;
  return 0;
}

int
shm_remote_rename (ShmRemote *r, guint64 olddir, const char *oldname,
                   guint64 newdir, const char *newname, guint flags,
                   guint64 *moved, guint64 *replaced)
{
  const guint noreplace = 1, exchange = 2;  /* RENAME_NOREPLACE, RENAME_EXCHANGE */
  guint64 src, dst;
  gboolean typed;
  redisReply *rep;
  Args a;
  int err;

  if ((flags & ~(noreplace | exchange)) != 0 || flags == (noreplace | exchange))
    return -EINVAL;
  if (strlen (oldname) > SHM_TREE_NAME_MAX)
    return -ENOENT;
  args_init (&a);
  args_u64 (&a, olddir);
  args_str (&a, oldname);
  args_u64 (&a, newdir);
  args_str (&a, newname);
  args_u64 (&a, flags);
  args_u64 (&a, r->lease_ms);
  /* shm_tree_rename checks the new name once it found the old one. */
  args_u64 (&a, -shm_tree_check_name (newname));
  if ((err = ns_eval (r, NS_RENAME, &a, 4, &rep)) < 0)
    return err;
  src = reply_u64 (rep->element[1]);
  dst = reply_u64 (rep->element[2]);
  typed = reply_u64 (rep->element[3]) != 0;
  freeReplyObject (rep);
  if (typed)
    expire_value (r, dst);
  if (moved != NULL)
    *moved = src;
  if (replaced != NULL)
    *replaced = dst;
  return 0;
}

int
shm_remote_set_attr (ShmRemote *r, guint64 oid, const ShmAttr *attr, guint mask)
{
  ShmRemoteEntry e;
  redisReply *rep;
  Args a;
  int err;

  args_init (&a);
  args_u64 (&a, oid);
  args_u64 (&a, mask);
  args_u64 (&a, attr->mode & 07777);
  args_u64 (&a, attr->uid);
  args_u64 (&a, attr->gid);
  args_take (&a, format_time (&attr->atime));
  args_take (&a, format_time (&attr->mtime));
  args_take (&a, format_time (&attr->ctime));
  if ((err = ns_eval (r, NS_SET_ATTR, &a, 3, &rep)) < 0)
    return err;
  err = parse_entry (rep->element[1], rep->element[2], &e);
  freeReplyObject (rep);
  if (err == 0 && e.type != NULL && (mask & SHM_REMOTE_ATTR_MTIME))
    {
      /* A value's mtime is the later of i's and m's: an explicit one
       * (utimens, maybe earlier) goes to both. */
      g_autofree char *m = value_key (r, oid, "m"), *ts = format_time (&attr->mtime);
      if ((err = shm_redis_commandf (r->redis, m, &rep, "HSET %s mt %s", m, ts)) == 0)
        freeReplyObject (rep);
    }
  shm_remote_entry_clear (&e);
  return err;
}

static int
ns_oid_call (ShmRemote *r, Script s, guint64 oid, redisReply **rep)
{
  Args a;

  args_init (&a);
  args_u64 (&a, oid);
  return ns_eval (r, s, &a, 1, rep);
}

int
shm_remote_set_type (ShmRemote *r, guint64 oid, const ShmType *type, const void *initial)
{
  guint64 nbytes = shm_type_nbytes (type);
  g_autofree char *spec = NULL;
  redisReply *rep;
  Args a;
  int err;

  if (nbytes > MAX_VALUE)
    return -EFBIG;
  if ((spec = shm_type_to_string (type)) == NULL)
    return -ENOMEM;

  /* 1: {P} takes the type (pending), 2: the value is made, 3: {P} shows it. */
  args_init (&a);
  args_u64 (&a, oid);
  args_str (&a, spec);
  args_u64 (&a, nbytes);
  if ((err = ns_eval (r, NS_TYPE_BEGIN, &a, 1, &rep)) < 0)
    return err;
  freeReplyObject (rep);

  args_init (&a);
  args_u64 (&a, nbytes);
  if (initial != NULL)
    args_bytes (&a, initial, nbytes);
  if ((err = value_eval (r, VALUE_INIT, oid, &a, 2, &rep)) < 0)
    {
      if (ns_oid_call (r, NS_TYPE_UNDO, oid, &rep) == 0)
        freeReplyObject (rep);
      return err;
    }
  freeReplyObject (rep);

  if ((err = ns_oid_call (r, NS_TYPE_END, oid, &rep)) == -ENOENT ||
      (err == 0 && reply_u64 (rep->element[1]) != 0))
    expire_value (r, oid);           /* unlinked meanwhile */
  if (err == 0)
    freeReplyObject (rep);
  return err;
}

int
shm_remote_usage (ShmRemote *r, guint64 *used, guint64 *capacity)
{
  g_autofree char *used_key = g_strdup_printf ("{%s}:used", r->prefix);
  redisReply *rep;
  int err;

  if ((err = shm_redis_commandf (r->redis, used_key, &rep, "GET %s", used_key)) < 0)
    return err;
  *used = rep->type == REDIS_REPLY_STRING ? reply_u64 (rep) : 0;
  freeReplyObject (rep);
  if ((err = shm_redis_commandf (r->redis, r->meta_key, &rep, "HGET %s cap", r->meta_key)) < 0)
    return err;
  *capacity = rep->type == REDIS_REPLY_STRING ? reply_u64 (rep) : 0;
  freeReplyObject (rep);
  if (*capacity > 0)
    return 0;
  /* No capacity of its own: the server's maxmemory, or its memory. */
  if ((err = shm_redis_commandf (r->redis, r->meta_key, &rep, "INFO memory")) < 0)
    return err;
  if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS)
    {
      const char *max = strstr (rep->str, "\nmaxmemory:");
      const char *total = strstr (rep->str, "\ntotal_system_memory:");

      if (max != NULL)
        *capacity = g_ascii_strtoull (max + strlen ("\nmaxmemory:"), NULL, 10);
      if (*capacity == 0 && total != NULL)
        *capacity = g_ascii_strtoull (total + strlen ("\ntotal_system_memory:"), NULL, 10);
    }
  freeReplyObject (rep);
  return 0;
}

/* ---- values -------------------------------------------------------------------------- */

int
shm_remote_read (ShmRemote *r, guint64 oid, guint64 nbytes, guint64 off, guint64 len,
                 void *buf, guint64 *version)
{
  redisReply *rep;
  Args a;
  int err;

  if (off > nbytes || len > nbytes - off)
    return -EINVAL;
  args_init (&a);
  args_u64 (&a, nbytes);
  args_u64 (&a, off);
  args_u64 (&a, len);
  if ((err = value_eval (r, VALUE_READ, oid, &a, 3, &rep)) < 0)
    return err;
  if (rep->element[1]->type != REDIS_REPLY_STRING || rep->element[1]->len != len)
    err = -ESTALE;
  else
    {
      memcpy (buf, rep->element[1]->str, len);
      if (version != NULL)
        *version = reply_u64 (rep->element[2]);
    }
  freeReplyObject (rep);
  return err;
}

int
shm_remote_write (ShmRemote *r, guint64 oid, guint64 nbytes, const ShmRemoteRange *ranges,
                  guint n, guint64 *version)
{
  redisReply *rep;
  Args a;
  int err;

  for (guint i = 0; i < n; i++)
    if (ranges[i].off > nbytes || ranges[i].len > nbytes - ranges[i].off)
      return -EINVAL;
  args_init (&a);
  args_u64 (&a, nbytes);
  for (guint i = 0; i < n; i++)
    {
      args_u64 (&a, ranges[i].off);
      args_bytes (&a, ranges[i].data, ranges[i].len);
    }
  if ((err = value_eval (r, VALUE_WRITE, oid, &a, 2, &rep)) < 0)
    return err;
  if (version != NULL)
    *version = reply_u64 (rep->element[1]);
  freeReplyObject (rep);
  return 0;
}

int
shm_remote_atomic (ShmRemote *r, guint64 oid, guint64 nbytes, const ShmType *elem,
                   guint64 off, ShmAtomic *a, pid_t pid, guint64 *version)
{
  gsize w = shm_type_elem_size (elem);
  gboolean fl = shm_type_is_float (elem);
  guint8 operand[8] = { 0 }, expected[8] = { 0 };
  union { guint64 align; guint8 b[8]; } old = { 0 };
  ShmAtomic load = { .op = SHM_ATOMIC_LOAD };
  redisReply *rep;
  Args args;
  int err;

  if (w > 8 || off > nbytes || w > nbytes - off || elem->elem == SHM_ELEM_CHAR ||
      elem->elem == SHM_ELEM_RECORD)
    return -EINVAL;
  /* The operand and expected value as the element's bytes, with the casts
   * of shm-atomic.c: (type) v.u for integers, (ftype) as_double for floats. */
  if (fl)
    {
      double o = a->is_float ? a->operand.f : (double) a->operand.i;
      double x = a->is_float ? a->expected.f : (double) a->expected.i;
      if (w == 4)
        {
          float of = o, xf = x;
          memcpy (operand, &of, 4);
          memcpy (expected, &xf, 4);
        }
      else
        {
          memcpy (operand, &o, 8);
          memcpy (expected, &x, 8);
        }
    }
  else
    {
      memcpy (operand, &a->operand.u, w);     /* little-endian: the low bytes */
      memcpy (expected, &a->expected.u, w);
    }

  args_init (&args);
  args_u64 (&args, nbytes);
  args_u64 (&args, a->op);
  args_str (&args, !fl ? "i" : w == 4 ? "f4" : "f8");
  args_u64 (&args, off);
  args_u64 (&args, w);
  args_bytes (&args, operand, w);
  args_bytes (&args, expected, w);
  args_take (&args, g_strdup_printf ("%s:%d", r->host, (int) pid));
  if ((err = value_eval (r, VALUE_ATOMIC, oid, &args, 4, &rep)) < 0)
    return err;
  if (rep->element[1]->type != REDIS_REPLY_STRING || rep->element[1]->len != w)
    {
      freeReplyObject (rep);
      return -ESTALE;
    }
  /* The old bytes, decoded by the local code (sign extension, floats). */
  memcpy (old.b, rep->element[1]->str, w);
  shm_atomic_apply_elem (elem, old.b, &load);
  a->old = load.old;
  a->swapped = reply_u64 (rep->element[2]) != 0;
  if (version != NULL)
    *version = reply_u64 (rep->element[3]);
  freeReplyObject (rep);
  return 0;
}

int
shm_remote_version (ShmRemote *r, guint64 oid, guint64 *version)
{
  g_autofree char *m = value_key (r, oid, "m");
  redisReply *rep;
  int err;

  if ((err = shm_redis_commandf (r->redis, m, &rep, "HGET %s ver", m)) < 0)
    return err;
  if (rep->type != REDIS_REPLY_STRING)
    err = -ENOENT;
  else
    *version = reply_u64 (rep);
  freeReplyObject (rep);
  return err;
}

int
shm_remote_bump (ShmRemote *r, guint64 oid, guint64 *version)
{
  redisReply *rep;
  Args a;
  int err;

  args_init (&a);
  if ((err = value_eval (r, VALUE_BUMP, oid, &a, 2, &rep)) < 0)
    return err;
  if (version != NULL)
    *version = reply_u64 (rep->element[1]);
  freeReplyObject (rep);
  return 0;
}

/* ---- lock leases ------------------------------------------------------------ */

guint64
shm_remote_get_lease_ms (ShmRemote *r)
{
  return r->lease_ms;
}

static int
lock_call (ShmRemote *r, guint64 oid, guint64 owner, const char *mode, pid_t pid)
{
  redisReply *rep;
  Args a;
  int err;

  args_init (&a);
  args_take (&a, g_strdup_printf ("%s:%" G_GINT64_MODIFIER "x", r->host, owner));
  args_str (&a, mode);
  args_u64 (&a, r->lease_ms);
  args_take (&a, g_strdup_printf ("%s:%d", r->host, (int) pid));
  if ((err = value_eval (r, VALUE_LOCK, oid, &a, 1, &rep)) < 0)
    return err;
  freeReplyObject (rep);
  return 0;
}

int
shm_remote_lock (ShmRemote *r, guint64 oid, guint64 owner, pid_t pid, gboolean write)
{
  return lock_call (r, oid, owner, write ? "w" : "r", pid);
}

int
shm_remote_unlock (ShmRemote *r, guint64 oid, guint64 owner)
{
  return lock_call (r, oid, owner, "u", 0);
}

int
shm_remote_renew_lock (ShmRemote *r, guint64 oid, guint64 owner, pid_t pid)
{
  return lock_call (r, oid, owner, "e", pid);
}

/* ---- the server's clock ----------------------------------------------------- */

int
shm_remote_sync_clock (ShmRemote *r)
{
  gint64 before = g_get_monotonic_time () / 1000;
  guint64 server;
  int err = shm_redis_time_ms (r->redis, r->meta_key, &server);

  /* The server read its clock somewhere in the round trip: its middle. */
  if (err == 0)
    __atomic_store_n (&r->clock_offset,
                      (gint64) server - (before + g_get_monotonic_time () / 1000) / 2,
                      __ATOMIC_RELAXED);
  return err;
}

/* ---- a store made again --------------------------------------------------------- */

int
shm_remote_check_store (ShmRemote *r, gboolean *reset)
{
  redisReply *rep;
  int err;

  *reset = FALSE;
  g_mutex_lock (&r->epoch_lock);
  if ((err = init_store (r, &rep)) == 0)
    err = check_status (rep, 2);
  if (err < 0)
    {
      g_mutex_unlock (&r->epoch_lock);
      return err;
    }
  if (rep->element[1]->type == REDIS_REPLY_STRING &&
      (rep->element[1]->len != strlen (r->epoch) ||
       memcmp (rep->element[1]->str, r->epoch, rep->element[1]->len) != 0))
    {
      g_free (r->epoch);
      r->epoch = g_strndup (rep->element[1]->str, rep->element[1]->len);
      *reset = TRUE;
    }
  g_mutex_unlock (&r->epoch_lock);
  freeReplyObject (rep);
  return 0;
}

/* ---- lifetimes -------------------------------------------------------------- */

static char *
who (ShmRemote *r, pid_t pid)
{
  return g_strdup_printf ("%s:%d", r->host, (int) pid);
}

int
shm_remote_bind (ShmRemote *r, guint64 oid, pid_t pid)
{
  redisReply *rep;
  Args a;
  int err;

  args_init (&a);
  args_u64 (&a, oid);
  args_take (&a, pid > 0 ? who (r, pid) : g_strdup (""));
  args_u64 (&a, r->lease_ms);
  if ((err = ns_eval (r, NS_BIND, &a, 1, &rep)) < 0)
    return err;
  freeReplyObject (rep);
  return 0;
}

int
shm_remote_renew (ShmRemote *r, const guint64 *oids, guint n)
{
  redisReply *rep;
  Args a;
  int err;

  if (n == 0)
    return 0;
  args_init (&a);
  args_u64 (&a, r->lease_ms);
  for (guint i = 0; i < n; i++)
    args_u64 (&a, oids[i]);
  if ((err = ns_eval (r, NS_RENEW, &a, 1, &rep)) < 0)
    return err;
  freeReplyObject (rep);
  return 0;
}

/* The objects an expire script removed: their values expire after the
 * lease; each appended to removed (optional). */
static void
expired (ShmRemote *r, redisReply *rep, GArray *removed)
{
  for (gsize i = 1; i + 3 < rep->elements; i += 4)
    {
      ShmRemoteRemoved x = { 0 };

      x.oid = reply_u64 (rep->element[i]);
      x.dir = reply_u64 (rep->element[i + 2]);
      if (rep->element[i + 3]->type == REDIS_REPLY_STRING)
        x.name = g_strndup (rep->element[i + 3]->str, rep->element[i + 3]->len);
      if (reply_u64 (rep->element[i + 1]) != 0)
        expire_value (r, x.oid);
      if (removed != NULL)
        g_array_append_val (removed, x);
      else
        g_free (x.name);
    }
}

int
shm_remote_expire (ShmRemote *r, guint64 oid, pid_t pid, GArray *removed)
{
  redisReply *rep;
  Args a;
  int err;

  args_init (&a);
  args_str (&a, "one");
  args_u64 (&a, oid);
  args_take (&a, who (r, pid));
  args_u64 (&a, r->lease_ms);
  if ((err = ns_eval (r, NS_EXPIRE, &a, 1, &rep)) < 0)
    return err;
  expired (r, rep, removed);
  err = rep->elements > 1 ? 0 : -ENOENT;
  freeReplyObject (rep);
  return err;
}

int
shm_remote_sweep (ShmRemote *r, GArray *removed)
{
  redisReply *rep;
  Args a;
  int err;

  args_init (&a);
  args_str (&a, "sweep");
  args_u64 (&a, r->lease_ms);
  if ((err = ns_eval (r, NS_EXPIRE, &a, 1, &rep)) < 0)
    return err;
  expired (r, rep, removed);
  freeReplyObject (rep);
  return 0;
}

void
shm_remote_removed_clear (gpointer data)
{
  g_clear_pointer (&((ShmRemoteRemoved *) data)->name, g_free);
}

int
shm_remote_keep (ShmRemote *r, guint64 oid)
{
  expire_value (r, oid);
  return 0;
}

/* ---- changes made anywhere ------------------------------------------------------ */

static void
on_message (const char *channel, const char *message, gsize len, gpointer user_data)
{
  ShmRemote *r = user_data;
  gsize plen = strlen (r->prefix);
  char *end;
  guint64 oid;

  if (channel == NULL)
    return r->changed (0, r->changed_data);
  /* "{P:oid}:ev" */
  if (channel[0] != '{' || strncmp (channel + 1, r->prefix, plen) != 0 || channel[plen + 1] != ':')
    return;
  oid = g_ascii_strtoull (channel + plen + 2, &end, 10);
  if (oid != 0 && strcmp (end, "}:ev") == 0)
    r->changed (oid, r->changed_data);
}

void
shm_remote_watch_start (ShmRemote *r, ShmRemoteChangedFunc func, gpointer user_data)
{
  r->changed = func;
  r->changed_data = user_data;
  r->sub = shm_redis_sub_new (r->redis, on_message, r);
}

void
shm_remote_watch_stop (ShmRemote *r)
{
  g_clear_pointer (&r->sub, shm_redis_sub_free);
}

void
shm_remote_watch (ShmRemote *r, guint64 oid, gboolean on)
{
  g_autofree char *channel = NULL;

  if (r->sub == NULL)
    return;   /* not started, or stopped */
  channel = value_key (r, oid, "ev");
  if (on)
    shm_redis_sub_add (r->sub, channel);
  else
    shm_redis_sub_remove (r->sub, channel);
}
