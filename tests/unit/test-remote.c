/* Unit tests of core/shm-remote: the namespace and values in Redis, with
 * the errnos of core/shm-tree, two handles sharing a store, atomics bit
 * for bit as core/shm-atomic.c, and concurrency — against a real
 * redis-server per test (skipped without redis-server).
 *
 * SHMFS_TEST_ATOMIC_CASES sets the number of random atomic cases
 * (default 4000, 20000 with -m slow). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shm-redis.h"
#include "shm-remote.h"
#include "redis-helpers.h"

#define NOREPLACE 1
#define EXCHANGE 2
#define ROOT 1

typedef struct {
  TestRedis  server;
  char      *url;
  ShmRemote *r;
} Fixture;

static ShmRemote *
open_remote (const char *url, const char *prefix)
{
  ShmRemoteConfig config = { .timeout = 3, .root_mode = 0755, .root_uid = 1000,
                             .root_gid = 1000, .lease = 60 };
  g_autoptr(GError) error = NULL;
  ShmRemote *r = shm_remote_open (url, prefix, &config, &error);

  g_assert_no_error (error);
  g_assert_nonnull (r);
  return r;
}

static void
setup (Fixture *f, gconstpointer data)
{
  if (test_redis_skip ())
    return;
  test_redis_start (&f->server, NULL);
  f->url = test_redis_url (&f->server);
  f->r = open_remote (f->url, "t");
}

static void
teardown (Fixture *f, gconstpointer data)
{
  shm_remote_free (f->r);
  test_redis_stop (&f->server);
  g_free (f->url);
}

static ShmType
parse (const char *spec)
{
  ShmType t;
  g_assert_cmpint (shm_type_parse (spec, strlen (spec), &t), ==, 0);
  return t;
}

/* Creates name in dir and returns its oid. */
static guint64
make (ShmRemote *r, guint64 dir, const char *name, gboolean is_dir)
{
  ShmRemoteEntry e;
  guint64 oid;

  g_assert_cmpint (shm_remote_create (r, dir, name, is_dir, 0644, 1000, 1000, &e), ==, 0);
  oid = e.oid;
  shm_remote_entry_clear (&e);
  return oid;
}

static guint64
make_typed (ShmRemote *r, guint64 dir, const char *name, const char *spec)
{
  guint64 oid = make (r, dir, name, FALSE);
  g_auto(ShmType) t = parse (spec);

  g_assert_cmpint (shm_remote_set_type (r, oid, &t, NULL), ==, 0);
  return oid;
}

static int
lookup_oid (ShmRemote *r, guint64 dir, const char *name, guint64 *oid)
{
  ShmRemoteEntry e;
  int err = shm_remote_lookup (r, dir, name, &e);

  if (err == 0)
    {
      if (oid != NULL)
        *oid = e.oid;
      shm_remote_entry_clear (&e);
    }
  return err;
}

static guint
nlink (ShmRemote *r, guint64 oid)
{
  ShmRemoteEntry e;
  guint n;

  g_assert_cmpint (shm_remote_getattr (r, oid, &e), ==, 0);
  n = e.nlink;
  shm_remote_entry_clear (&e);
  return n;
}

/* ---- open ----------------------------------------------------------------------- */

static void
test_open (Fixture *f, gconstpointer data)
{
  ShmRemoteConfig config = { .timeout = 1 };
  ShmRemoteEntry e;
  ShmRemote *again;
  guint64 first;
  g_autoptr(GError) error = NULL;
  redisReply *rep;

  if (f->r == NULL)
    return;
  g_assert_cmpint (shm_remote_getattr (f->r, ROOT, &e), ==, 0);
  g_assert_true (e.is_dir);
  g_assert_cmpuint (e.attr.mode, ==, S_IFDIR | 0755);
  g_assert_cmpuint (e.attr.uid, ==, 1000);
  g_assert_cmpuint (e.nlink, ==, 2);
  g_assert_null (e.name);
  g_assert_cmpuint (e.parent, ==, 0);
  g_assert_cmpint (e.attr.mtime.tv_sec, >, 1600000000);
  shm_remote_entry_clear (&e);
  /* Oids count up from the store's birth in ms * 1000, above any of a
   * store wiped before; 16 digits, exact. */
  first = make (f->r, ROOT, "first", FALSE);
  g_assert_cmpuint (first, >, G_GUINT64_CONSTANT (1600000000000000));
  g_assert_cmpuint (first, <, G_GUINT64_CONSTANT (1) << 53);
  g_assert_cmpuint (make (f->r, ROOT, "second", FALSE), ==, first + 1);

  /* A second mount finds the store as it is. */
  again = open_remote (f->url, "t");
  g_assert_cmpstr (shm_remote_get_epoch (again), ==, shm_remote_get_epoch (f->r));
  g_assert_cmpint (lookup_oid (again, ROOT, "first", NULL), ==, 0);
  shm_remote_free (again);

  /* Another format or byte order is refused with one line. */
  rep = test_redis_cmd (f->server.port, "HSET {t}:meta format 2");
  freeReplyObject (rep);
  g_assert_null (shm_remote_open (f->url, "t", &config, &error));
  g_assert_nonnull (strstr (error->message, "format 2"));
  g_assert_null (strchr (error->message, '\n'));
  g_clear_error (&error);

  g_assert_null (shm_remote_open (f->url, "a{b", &config, &error));
  g_clear_error (&error);
  g_assert_null (shm_remote_open (f->url, "", &config, &error));
  g_clear_error (&error);
  g_assert_null (shm_remote_open ("rediss://127.0.0.1", "t", &config, &error));
  g_clear_error (&error);
}

/* ---- namespace ----------------------------------------------------------------------- */

static void
test_create_lookup (Fixture *f, gconstpointer data)
{
  g_autofree char *long_name = g_strnfill (256, 'x'), *max_name = g_strnfill (255, 'y');
  ShmRemoteEntry e;
  guint64 d, o, oid;

  if (f->r == NULL)
    return;
  g_assert_cmpint (shm_remote_create (f->r, ROOT, "d", TRUE, 0750, 5, 6, &e), ==, 0);
  d = e.oid;
  g_assert_true (e.is_dir);
  g_assert_cmpuint (e.attr.mode, ==, S_IFDIR | 0750);
  g_assert_cmpuint (e.attr.uid, ==, 5);
  g_assert_cmpuint (e.attr.gid, ==, 6);
  g_assert_cmpuint (e.parent, ==, ROOT);
  g_assert_cmpstr (e.name, ==, "d");
  g_assert_cmpuint (e.nlink, ==, 2);
  shm_remote_entry_clear (&e);
  g_assert_cmpuint (nlink (f->r, ROOT), ==, 3);

  g_assert_cmpint (shm_remote_create (f->r, d, "o", FALSE, 0640, 5, 6, &e), ==, 0);
  o = e.oid;
  g_assert_false (e.is_dir);
  g_assert_cmpuint (e.attr.mode, ==, S_IFREG | 0640);
  g_assert_cmpuint (e.nlink, ==, 1);
  g_assert_null (e.type);
  g_assert_cmpuint (e.nbytes, ==, 0);
  shm_remote_entry_clear (&e);
  g_assert_cmpuint (nlink (f->r, d), ==, 2);

  g_assert_cmpint (shm_remote_lookup (f->r, d, "o", &e), ==, 0);
  g_assert_cmpuint (e.oid, ==, o);
  g_assert_cmpuint (e.parent, ==, d);
  shm_remote_entry_clear (&e);
  g_assert_cmpint (lookup_oid (f->r, d, "nope", NULL), ==, -ENOENT);
  g_assert_cmpint (lookup_oid (f->r, o, "x", NULL), ==, -ENOTDIR);
  g_assert_cmpint (lookup_oid (f->r, 999, "x", NULL), ==, -ENOTDIR);
  g_assert_cmpint (lookup_oid (f->r, d, long_name, NULL), ==, -ENAMETOOLONG);
  g_assert_cmpint (shm_remote_getattr (f->r, 999, &e), ==, -ENOENT);

  g_assert_cmpint (shm_remote_create (f->r, d, "o", FALSE, 0644, 0, 0, NULL), ==, -EEXIST);
  g_assert_cmpint (shm_remote_create (f->r, d, "o", TRUE, 0755, 0, 0, NULL), ==, -EEXIST);
  g_assert_cmpint (shm_remote_create (f->r, o, "x", FALSE, 0644, 0, 0, NULL), ==, -ENOTDIR);
  g_assert_cmpint (shm_remote_create (f->r, 999, "x", FALSE, 0644, 0, 0, NULL), ==, -ENOENT);
  g_assert_cmpint (shm_remote_create (f->r, d, "", FALSE, 0644, 0, 0, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_remote_create (f->r, d, "..", FALSE, 0644, 0, 0, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_remote_create (f->r, d, "a/b", FALSE, 0644, 0, 0, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_remote_create (f->r, d, long_name, FALSE, 0644, 0, 0, NULL), ==, -ENAMETOOLONG);
  g_assert_cmpint (shm_remote_create (f->r, d, max_name, FALSE, 0644, 0, 0, NULL), ==, 0);
  g_assert_cmpint (lookup_oid (f->r, d, max_name, NULL), ==, 0);

  /* A setgid directory gives its group, and setgid to directories. */
  g_assert_cmpint (shm_remote_create (f->r, ROOT, "sg", TRUE, 02775, 5, 77, &e), ==, 0);
  d = e.oid;
  shm_remote_entry_clear (&e);
  g_assert_cmpint (shm_remote_create (f->r, d, "sub", TRUE, 0755, 5, 6, &e), ==, 0);
  g_assert_cmpuint (e.attr.gid, ==, 77);
  g_assert_cmpuint (e.attr.mode, ==, S_IFDIR | 02755);
  shm_remote_entry_clear (&e);
  g_assert_cmpint (shm_remote_create (f->r, d, "obj", FALSE, 0644, 5, 6, &e), ==, 0);
  g_assert_cmpuint (e.attr.gid, ==, 77);
  g_assert_cmpuint (e.attr.mode, ==, S_IFREG | 0644);
  shm_remote_entry_clear (&e);

  /* Names are bytes: binary-safe. */
  g_assert_cmpint (shm_remote_create (f->r, ROOT, "sp ace\t\xc3\xa9", FALSE, 0644, 0, 0, NULL), ==, 0);
  g_assert_cmpint (lookup_oid (f->r, ROOT, "sp ace\t\xc3\xa9", &oid), ==, 0);
}

static void
test_list (Fixture *f, gconstpointer data)
{
  g_autoptr(GArray) entries = g_array_new (FALSE, FALSE, sizeof (ShmRemoteEntry));
  guint64 d, oids[10], after = 0;
  guint seen = 0;

  if (f->r == NULL)
    return;
  d = make (f->r, ROOT, "d", TRUE);
  for (int i = 0; i < 10; i++)
    {
      g_autofree char *name = g_strdup_printf ("n%d", 9 - i);
      oids[i] = make (f->r, d, name, i % 3 == 0);
    }
  make_typed (f->r, d, "typed", "f64[2]");
  /* Pages of 4, in oid order, resumed after the last oid. */
  for (;;)
    {
      g_array_set_size (entries, 0);
      g_assert_cmpint (shm_remote_list (f->r, d, after, 4, entries), ==, 0);
      if (entries->len == 0)
        break;
      g_assert_cmpuint (entries->len, <=, 4);
      for (guint i = 0; i < entries->len; i++)
        {
          ShmRemoteEntry *e = &g_array_index (entries, ShmRemoteEntry, i);
          g_assert_cmpuint (e->oid, >, after);
          after = e->oid;
          if (seen < 10)
            {
              g_autofree char *name = g_strdup_printf ("n%u", 9 - seen);
              g_assert_cmpuint (e->oid, ==, oids[seen]);
              g_assert_cmpstr (e->name, ==, name);
              g_assert_cmpint (e->is_dir, ==, seen % 3 == 0);
            }
          else
            {
              g_assert_cmpstr (e->type, ==, "f64[2]");
              g_assert_cmpuint (e->nbytes, ==, 16);
              g_assert_cmpuint (e->version, ==, 1);
            }
          seen++;
          shm_remote_entry_clear (e);
        }
    }
  g_assert_cmpuint (seen, ==, 11);
  g_assert_cmpint (shm_remote_list (f->r, 999, 0, 10, entries), ==, -ENOENT);
  g_assert_cmpint (shm_remote_list (f->r, oids[1], 0, 10, entries), ==, -ENOTDIR);
  g_assert_cmpint (shm_remote_list (f->r, d, 0, 0, entries), ==, 0);
  g_assert_cmpuint (entries->len, ==, 0);
}

static gint64
pttl (Fixture *f, const char *key)
{
  redisReply *rep = test_redis_cmd (f->server.port, "PTTL %s", key);
  gint64 ms = rep->integer;
  freeReplyObject (rep);
  return ms;
}

static void
test_remove (Fixture *f, gconstpointer data)
{
  guint64 d, sub, o, typed, oid;
  ShmRemoteEntry e;
  guint8 buf[4];
  guint64 used, cap;

  if (f->r == NULL)
    return;
  d = make (f->r, ROOT, "d", TRUE);
  sub = make (f->r, d, "sub", TRUE);
  o = make (f->r, d, "o", FALSE);
  typed = make_typed (f->r, ROOT, "typed", "u8[4]");
  g_assert_cmpint (shm_remote_usage (f->r, &used, &cap), ==, 0);
  g_assert_cmpuint (used, ==, 4);
  g_assert_cmpuint (cap, >, 4);        /* no cap of its own: the server's memory */

  g_assert_cmpint (shm_remote_remove (f->r, ROOT, "nope", FALSE, &oid), ==, -ENOENT);
  g_assert_cmpint (shm_remote_remove (f->r, ROOT, "d", FALSE, &oid), ==, -EISDIR);
  g_assert_cmpint (shm_remote_remove (f->r, d, "o", TRUE, &oid), ==, -ENOTDIR);
  g_assert_cmpint (shm_remote_remove (f->r, ROOT, "d", TRUE, &oid), ==, -ENOTEMPTY);
  g_assert_cmpint (shm_remote_remove (f->r, o, "x", FALSE, &oid), ==, -ENOENT);

  g_assert_cmpint (shm_remote_remove (f->r, d, "sub", TRUE, &oid), ==, 0);
  g_assert_cmpuint (oid, ==, sub);
  g_assert_cmpint (shm_remote_getattr (f->r, sub, &e), ==, -ENOENT);
  g_assert_cmpuint (nlink (f->r, d), ==, 2);
  g_assert_cmpint (shm_remote_remove (f->r, d, "o", FALSE, &oid), ==, 0);
  g_assert_cmpuint (oid, ==, o);
  g_assert_cmpint (lookup_oid (f->r, d, "o", NULL), ==, -ENOENT);
  g_assert_cmpint (shm_remote_remove (f->r, ROOT, "d", TRUE, NULL), ==, 0);
  g_assert_cmpuint (nlink (f->r, ROOT), ==, 2);

  /* An unlinked typed object stays readable for the lease, then goes. */
  g_assert_cmpint (shm_remote_remove (f->r, ROOT, "typed", FALSE, &oid), ==, 0);
  g_assert_cmpuint (oid, ==, typed);
  g_assert_cmpint (shm_remote_getattr (f->r, typed, &e), ==, 0);
  g_assert_cmpuint (e.nlink, ==, 0);
  g_assert_cmpuint (e.parent, ==, 0);
  g_assert_null (e.name);
  g_assert_cmpstr (e.type, ==, "u8[4]");
  shm_remote_entry_clear (&e);
  g_assert_cmpint (shm_remote_read (f->r, typed, 4, 0, 4, buf, NULL), ==, 0);
  {
    char *keys[] = { g_strdup_printf ("{t:%" G_GUINT64_FORMAT "}:v", typed),
                     g_strdup_printf ("{t:%" G_GUINT64_FORMAT "}:m", typed),
                     g_strdup_printf ("{t}:i:%" G_GUINT64_FORMAT, typed) };
    for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
      {
        gint64 ms = pttl (f, keys[i]);
        g_assert_cmpint (ms, >, 50000);
        g_assert_cmpint (ms, <=, 60000);
        g_free (keys[i]);
      }
  }
  g_assert_cmpint (shm_remote_usage (f->r, &used, &cap), ==, 0);
  g_assert_cmpuint (used, ==, 0);
}

static void
test_rename (Fixture *f, gconstpointer data)
{
  g_autofree char *long_name = g_strnfill (256, 'x');
  guint64 a, b, c, ab, x, y, full, t, moved, replaced;

  if (f->r == NULL)
    return;
  a = make (f->r, ROOT, "a", TRUE);
  b = make (f->r, ROOT, "b", TRUE);
  ab = make (f->r, a, "ab", TRUE);
  x = make (f->r, a, "x", FALSE);
  y = make (f->r, b, "y", FALSE);
  full = make (f->r, ROOT, "full", TRUE);
  make (f->r, full, "inside", FALSE);
  c = make (f->r, ROOT, "c", TRUE);

  g_assert_cmpint (shm_remote_rename (f->r, a, "x", b, "y", 3, &moved, &replaced), ==, -EINVAL);
  g_assert_cmpint (shm_remote_rename (f->r, a, "x", b, "y", 4, &moved, &replaced), ==, -EINVAL);
  g_assert_cmpint (shm_remote_rename (f->r, x, "x", b, "y", 0, &moved, &replaced), ==, -ENOTDIR);
  g_assert_cmpint (shm_remote_rename (f->r, a, "x", 999, "y", 0, &moved, &replaced), ==, -ENOENT);
  g_assert_cmpint (shm_remote_rename (f->r, a, "nope", b, "y", 0, &moved, &replaced), ==, -ENOENT);
  g_assert_cmpint (shm_remote_rename (f->r, a, "nope", b, "", 0, &moved, &replaced), ==, -ENOENT);
  g_assert_cmpint (shm_remote_rename (f->r, a, "x", b, "", 0, &moved, &replaced), ==, -EINVAL);
  g_assert_cmpint (shm_remote_rename (f->r, a, "x", b, long_name, 0, &moved, &replaced), ==, -ENAMETOOLONG);
  /* into its own subtree */
  g_assert_cmpint (shm_remote_rename (f->r, ROOT, "a", ab, "a", 0, &moved, &replaced), ==, -EINVAL);
  g_assert_cmpint (shm_remote_rename (f->r, ROOT, "a", a, "z", 0, &moved, &replaced), ==, -EINVAL);
  g_assert_cmpint (shm_remote_rename (f->r, ROOT, "a", ab, "y", EXCHANGE, &moved, &replaced), ==, -ENOENT);
  g_assert_cmpint (shm_remote_rename (f->r, ROOT, "b", a, "ab", EXCHANGE, &moved, &replaced), ==, 0);
  g_assert_cmpint (shm_remote_rename (f->r, a, "ab", ROOT, "a", EXCHANGE, &moved, &replaced), ==, -EINVAL);
  g_assert_cmpint (shm_remote_rename (f->r, ROOT, "b", a, "ab", EXCHANGE, &moved, &replaced), ==, 0);  /* back */
  /* over something */
  g_assert_cmpint (shm_remote_rename (f->r, a, "x", b, "y", NOREPLACE, &moved, &replaced), ==, -EEXIST);
  g_assert_cmpint (shm_remote_rename (f->r, ROOT, "c", ROOT, "full", 0, &moved, &replaced), ==, -ENOTEMPTY);
  g_assert_cmpint (shm_remote_rename (f->r, ROOT, "c", b, "y", 0, &moved, &replaced), ==, -ENOTDIR);
  g_assert_cmpint (shm_remote_rename (f->r, a, "x", ROOT, "c", 0, &moved, &replaced), ==, -EISDIR);
  g_assert_cmpint (shm_remote_rename (f->r, a, "x", b, "missing", EXCHANGE, &moved, &replaced), ==, -ENOENT);
  /* the same node: nothing happens */
  g_assert_cmpint (shm_remote_rename (f->r, a, "x", a, "x", 0, &moved, &replaced), ==, 0);
  g_assert_cmpuint (moved, ==, x);
  g_assert_cmpuint (replaced, ==, 0);
  g_assert_cmpint (shm_remote_rename (f->r, a, "x", a, "x", EXCHANGE, &moved, &replaced), ==, 0);
  g_assert_cmpint (shm_remote_rename (f->r, a, "x", a, "x", NOREPLACE, &moved, &replaced), ==, -EEXIST);

  /* a plain move across directories */
  g_assert_cmpint (shm_remote_rename (f->r, a, "x", c, "x2", 0, &moved, &replaced), ==, 0);
  g_assert_cmpuint (moved, ==, x);
  g_assert_cmpuint (replaced, ==, 0);
  g_assert_cmpint (lookup_oid (f->r, a, "x", NULL), ==, -ENOENT);
  g_assert_cmpint (lookup_oid (f->r, c, "x2", &moved), ==, 0);
  g_assert_cmpuint (moved, ==, x);
  /* a directory: nlinks follow */
  g_assert_cmpint (shm_remote_rename (f->r, a, "ab", c, "ab", 0, &moved, &replaced), ==, 0);
  g_assert_cmpuint (nlink (f->r, a), ==, 2);
  g_assert_cmpuint (nlink (f->r, c), ==, 3);
  /* exchange swaps */
  g_assert_cmpint (shm_remote_rename (f->r, c, "x2", b, "y", EXCHANGE, &moved, &replaced), ==, 0);
  g_assert_cmpuint (moved, ==, x);
  g_assert_cmpuint (replaced, ==, y);
  g_assert_cmpint (lookup_oid (f->r, c, "x2", &moved), ==, 0);
  g_assert_cmpuint (moved, ==, y);
  g_assert_cmpint (lookup_oid (f->r, b, "y", &moved), ==, 0);
  g_assert_cmpuint (moved, ==, x);
  /* replacing a typed object: it is unlinked, its value expires */
  t = make_typed (f->r, ROOT, "t", "i32");
  g_assert_cmpint (shm_remote_rename (f->r, b, "y", ROOT, "t", 0, &moved, &replaced), ==, 0);
  g_assert_cmpuint (moved, ==, x);
  g_assert_cmpuint (replaced, ==, t);
  g_assert_cmpuint (nlink (f->r, t), ==, 0);
  {
    g_autofree char *key = g_strdup_printf ("{t:%" G_GUINT64_FORMAT "}:v", t);
    g_assert_cmpint (pttl (f, key), >, 0);
  }
  /* replacing an empty directory */
  g_assert_cmpint (shm_remote_rename (f->r, c, "ab", ROOT, "a", 0, &moved, &replaced), ==, 0);
  g_assert_cmpuint (replaced, ==, a);
  g_assert_cmpint (shm_remote_getattr (f->r, a, NULL), ==, -ENOENT);
  g_assert_cmpuint (nlink (f->r, ROOT), ==, 2 + 4);   /* a(=ab) b full c */
}

static void
test_set_attr (Fixture *f, gconstpointer data)
{
  ShmAttr attr = { .mode = 0600 | S_ISGID, .uid = 7, .gid = 8,
                   .atime = { 100, 5 }, .mtime = { 200, 6 }, .ctime = { 300, 7 } };
  ShmRemoteEntry e, before;
  guint64 o, t;

  if (f->r == NULL)
    return;
  o = make (f->r, ROOT, "o", FALSE);
  g_assert_cmpint (shm_remote_getattr (f->r, o, &before), ==, 0);
  g_assert_cmpint (shm_remote_set_attr (f->r, o, &attr, SHM_REMOTE_ATTR_MODE), ==, 0);
  g_assert_cmpint (shm_remote_getattr (f->r, o, &e), ==, 0);
  g_assert_cmpuint (e.attr.mode, ==, S_IFREG | 0600 | S_ISGID);
  g_assert_cmpuint (e.attr.uid, ==, before.attr.uid);
  g_assert_cmpint (e.attr.mtime.tv_sec, ==, before.attr.mtime.tv_sec);
  shm_remote_entry_clear (&e);
  shm_remote_entry_clear (&before);
  g_assert_cmpint (shm_remote_set_attr (f->r, o, &attr, SHM_REMOTE_ATTR_UID | SHM_REMOTE_ATTR_GID |
                                        SHM_REMOTE_ATTR_ATIME | SHM_REMOTE_ATTR_MTIME |
                                        SHM_REMOTE_ATTR_CTIME), ==, 0);
  g_assert_cmpint (shm_remote_getattr (f->r, o, &e), ==, 0);
  g_assert_cmpuint (e.attr.uid, ==, 7);
  g_assert_cmpuint (e.attr.gid, ==, 8);
  g_assert_cmpint (e.attr.atime.tv_sec, ==, 100);
  g_assert_cmpint (e.attr.atime.tv_nsec, ==, 5);
  g_assert_cmpint (e.attr.mtime.tv_sec, ==, 200);
  g_assert_cmpint (e.attr.mtime.tv_nsec, ==, 6);
  g_assert_cmpint (e.attr.ctime.tv_sec, ==, 300);
  shm_remote_entry_clear (&e);
  g_assert_cmpint (shm_remote_set_attr (f->r, 999, &attr, SHM_REMOTE_ATTR_UID), ==, -ENOENT);

  /* A typed object: an explicit mtime wins over the value's. */
  t = make_typed (f->r, ROOT, "t", "u8");
  g_assert_cmpint (shm_remote_set_attr (f->r, t, &attr, SHM_REMOTE_ATTR_MTIME), ==, 0);
  g_assert_cmpint (shm_remote_getattr (f->r, t, &e), ==, 0);
  g_assert_cmpint (e.attr.mtime.tv_sec, ==, 200);
  g_assert_cmpint (e.attr.mtime.tv_nsec, ==, 6);
  shm_remote_entry_clear (&e);
}

static void
test_set_type (Fixture *f, gconstpointer data)
{
  g_auto(ShmType) u8x5 = parse ("u8[5]");
  g_auto(ShmType) big = parse ("u8[600000000]");
  g_auto(ShmType) rec = parse ("{x:f64, n:i32}");
  const guint8 init[5] = { 1, 2, 3, 4, 5 };
  guint8 buf[16];
  guint64 o, o2, d, version, used, cap;
  ShmRemoteEntry e;
  redisReply *rep;

  if (f->r == NULL)
    return;
  o = make (f->r, ROOT, "o", FALSE);
  d = make (f->r, ROOT, "d", TRUE);
  g_assert_cmpint (shm_remote_set_type (f->r, o, &u8x5, NULL), ==, 0);
  g_assert_cmpint (shm_remote_getattr (f->r, o, &e), ==, 0);
  g_assert_cmpstr (e.type, ==, "u8[5]");
  g_assert_cmpuint (e.nbytes, ==, 5);
  g_assert_cmpuint (e.version, ==, 1);
  shm_remote_entry_clear (&e);
  g_assert_cmpint (shm_remote_read (f->r, o, 5, 0, 5, buf, &version), ==, 0);
  g_assert_cmpmem (buf, 5, "\0\0\0\0\0", 5);
  g_assert_cmpuint (version, ==, 1);
  g_assert_cmpint (shm_remote_set_type (f->r, o, &u8x5, NULL), ==, -EPERM);
  g_assert_cmpint (shm_remote_set_type (f->r, d, &u8x5, NULL), ==, -EPERM);
  g_assert_cmpint (shm_remote_set_type (f->r, 999, &u8x5, NULL), ==, -ENOENT);
  g_assert_cmpint (shm_remote_set_type (f->r, make (f->r, ROOT, "big", FALSE), &big, NULL), ==, -EFBIG);

  o2 = make (f->r, ROOT, "o2", FALSE);
  g_assert_cmpint (shm_remote_set_type (f->r, o2, &u8x5, init), ==, 0);
  g_assert_cmpint (shm_remote_read (f->r, o2, 5, 1, 3, buf, NULL), ==, 0);
  g_assert_cmpmem (buf, 3, init + 1, 3);
  g_assert_cmpint (shm_remote_set_type (f->r, make (f->r, ROOT, "rec", FALSE), &rec, NULL), ==, 0);
  g_assert_cmpint (lookup_oid (f->r, ROOT, "rec", &o2), ==, 0);
  g_assert_cmpint (shm_remote_getattr (f->r, o2, &e), ==, 0);
  g_assert_cmpstr (e.type, ==, "{x:f64, n:i32}");
  g_assert_cmpuint (e.nbytes, ==, 16);
  shm_remote_entry_clear (&e);
  g_assert_cmpint (shm_remote_usage (f->r, &used, &cap), ==, 0);
  g_assert_cmpuint (used, ==, 26);

  /* A capacity set in {P}:meta: ENOSPC over it, nothing typed. */
  rep = test_redis_cmd (f->server.port, "HSET {t}:meta cap 30");
  freeReplyObject (rep);
  o2 = make (f->r, ROOT, "over", FALSE);
  g_assert_cmpint (shm_remote_set_type (f->r, o2, &u8x5, NULL), ==, -ENOSPC);
  g_assert_cmpint (shm_remote_getattr (f->r, o2, &e), ==, 0);
  g_assert_null (e.type);
  shm_remote_entry_clear (&e);
  g_assert_cmpint (shm_remote_usage (f->r, &used, &cap), ==, 0);
  g_assert_cmpuint (used, ==, 26);
  g_assert_cmpuint (cap, ==, 30);
  rep = test_redis_cmd (f->server.port, "HDEL {t}:meta cap");
  freeReplyObject (rep);

  /* Step 2 fails (a value is there already): step 1 is undone. */
  {
    g_autofree char *v = g_strdup_printf ("{t:%" G_GUINT64_FORMAT "}:v", o2);
    rep = test_redis_cmd (f->server.port, "SET %s junk", v);
    freeReplyObject (rep);
    g_assert_cmpint (shm_remote_set_type (f->r, o2, &u8x5, NULL), <, 0);
    g_assert_cmpint (shm_remote_getattr (f->r, o2, &e), ==, 0);
    g_assert_null (e.type);
    shm_remote_entry_clear (&e);
    g_assert_cmpint (shm_remote_usage (f->r, &used, &cap), ==, 0);
    g_assert_cmpuint (used, ==, 26);
    rep = test_redis_cmd (f->server.port, "DEL %s", v);
    freeReplyObject (rep);
  }

  /* maxmemory reached: typing is ENOSPC and nothing changes; existing
   * objects stay writable, readable and removable. */
  test_redis_run (f->server.port, "CONFIG SET maxmemory 1");
  g_assert_cmpint (shm_remote_set_type (f->r, o2, &u8x5, NULL), ==, -ENOSPC);
  g_assert_cmpint (shm_remote_create (f->r, ROOT, "new", FALSE, 0644, 0, 0, NULL), ==, -ENOSPC);
  {
    ShmRemoteRange range = { 0, 2, "zz" };
    ShmAtomic a = { .op = SHM_ATOMIC_ADD, .operand.u = 1 };
    g_auto(ShmType) u8 = parse ("u8");
    g_assert_cmpint (shm_remote_write (f->r, o, 5, &range, 1, NULL), ==, 0);
    g_assert_cmpint (shm_remote_atomic (f->r, o, 5, &u8, 4, &a, 1, NULL), ==, 0);
    g_assert_cmpint (shm_remote_bump (f->r, o, NULL), ==, 0);
    g_assert_cmpint (shm_remote_read (f->r, o, 5, 0, 5, buf, NULL), ==, 0);
    g_assert_cmpmem (buf, 5, "zz\0\0\1", 5);
  }
  g_assert_cmpint (shm_remote_remove (f->r, ROOT, "o2", FALSE, NULL), ==, 0);
  test_redis_run (f->server.port, "CONFIG SET maxmemory 0");
  g_assert_cmpint (shm_remote_getattr (f->r, o2, &e), ==, 0);
  g_assert_null (e.type);
  shm_remote_entry_clear (&e);
}

/* ---- values ------------------------------------------------------------------------- */

static void
test_values (Fixture *f, gconstpointer data)
{
  guint64 o, u, v1, v2;
  guint8 buf[8];
  ShmRemoteEntry e;
  ShmRemoteRange ranges[] = { { 0, 2, "ab" }, { 5, 3, "xyz" } };
  struct timespec before;

  if (f->r == NULL)
    return;
  o = make_typed (f->r, ROOT, "o", "u8[8]");
  u = make (f->r, ROOT, "untyped", FALSE);
  g_assert_cmpint (shm_remote_getattr (f->r, o, &e), ==, 0);
  before = e.attr.mtime;
  shm_remote_entry_clear (&e);
  g_usleep (2000);

  g_assert_cmpint (shm_remote_write (f->r, o, 8, ranges, 2, &v1), ==, 0);
  g_assert_cmpuint (v1, ==, 2);
  g_assert_cmpint (shm_remote_read (f->r, o, 8, 0, 8, buf, &v2), ==, 0);
  g_assert_cmpmem (buf, 8, "ab\0\0\0xyz", 8);
  g_assert_cmpuint (v2, ==, 2);
  g_assert_cmpint (shm_remote_version (f->r, o, &v2), ==, 0);
  g_assert_cmpuint (v2, ==, 2);
  g_assert_cmpint (shm_remote_read (f->r, o, 8, 8, 0, buf, NULL), ==, 0);
  /* the value's change shows as mtime and ctime */
  g_assert_cmpint (shm_remote_getattr (f->r, o, &e), ==, 0);
  g_assert_true (e.attr.mtime.tv_sec > before.tv_sec ||
                 (e.attr.mtime.tv_sec == before.tv_sec && e.attr.mtime.tv_nsec > before.tv_nsec));
  g_assert_cmpint (e.attr.ctime.tv_sec, ==, e.attr.mtime.tv_sec);
  g_assert_cmpint (e.attr.ctime.tv_nsec, ==, e.attr.mtime.tv_nsec);
  g_assert_cmpuint (e.version, ==, 2);
  shm_remote_entry_clear (&e);

  g_assert_cmpint (shm_remote_bump (f->r, o, &v1), ==, 0);
  g_assert_cmpuint (v1, ==, 3);
  g_assert_cmpint (shm_remote_write (f->r, o, 8, NULL, 0, &v1), ==, 0);  /* no ranges: a bump */
  g_assert_cmpuint (v1, ==, 4);

  /* errors */
  g_assert_cmpint (shm_remote_read (f->r, o, 7, 0, 4, buf, NULL), ==, -ESTALE);
  g_assert_cmpint (shm_remote_write (f->r, o, 9, ranges, 1, NULL), ==, -ESTALE);
  g_assert_cmpint (shm_remote_read (f->r, o, 8, 6, 4, buf, NULL), ==, -EINVAL);
  ranges[1].off = 6;
  g_assert_cmpint (shm_remote_write (f->r, o, 8, ranges, 2, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_remote_read (f->r, u, 8, 0, 4, buf, NULL), ==, -ENOENT);
  g_assert_cmpint (shm_remote_write (f->r, u, 8, ranges, 1, NULL), ==, -ENOENT);
  g_assert_cmpint (shm_remote_version (f->r, u, &v1), ==, -ENOENT);
  g_assert_cmpint (shm_remote_bump (f->r, u, &v1), ==, -ENOENT);
  g_assert_cmpint (shm_remote_read (f->r, 999, 8, 0, 4, buf, NULL), ==, -ENOENT);
  g_assert_cmpint (shm_remote_version (f->r, o, &v2), ==, 0);
  g_assert_cmpuint (v2, ==, 4);       /* failed writes bumped nothing */
}

/* Two daemons on the same store see each other's changes at once. */
static void
test_two_handles (Fixture *f, gconstpointer data)
{
  ShmRemote *b;
  ShmRemoteEntry e;
  guint64 d, o, version;
  guint8 buf[4];
  ShmRemoteRange range = { 0, 4, "\1\2\3\4" };
  g_auto(ShmType) i32 = parse ("i32");

  if (f->r == NULL)
    return;
  b = open_remote (f->url, "t");
  d = make (f->r, ROOT, "d", TRUE);
  g_assert_cmpint (shm_remote_lookup (b, ROOT, "d", &e), ==, 0);
  g_assert_cmpuint (e.oid, ==, d);
  shm_remote_entry_clear (&e);
  o = make (b, d, "o", FALSE);
  g_assert_cmpint (shm_remote_set_type (b, o, &i32, NULL), ==, 0);
  g_assert_cmpint (shm_remote_lookup (f->r, d, "o", &e), ==, 0);
  g_assert_cmpstr (e.type, ==, "i32");
  shm_remote_entry_clear (&e);
  g_assert_cmpint (shm_remote_write (f->r, o, 4, &range, 1, NULL), ==, 0);
  g_assert_cmpint (shm_remote_read (b, o, 4, 0, 4, buf, &version), ==, 0);
  g_assert_cmpmem (buf, 4, "\1\2\3\4", 4);
  g_assert_cmpuint (version, ==, 2);
  g_assert_cmpint (shm_remote_rename (b, d, "o", ROOT, "o", 0, NULL, NULL), ==, 0);
  g_assert_cmpint (lookup_oid (f->r, d, "o", NULL), ==, -ENOENT);
  g_assert_cmpint (shm_remote_remove (f->r, ROOT, "d", TRUE, NULL), ==, 0);
  g_assert_cmpint (lookup_oid (b, ROOT, "d", NULL), ==, -ENOENT);
  /* another prefix is another store */
  {
    ShmRemote *other = open_remote (f->url, "other");
    g_assert_cmpint (lookup_oid (other, ROOT, "o", NULL), ==, -ENOENT);
    shm_remote_free (other);
  }
  shm_remote_free (b);
}

/* ---- atomics -------------------------------------------------------------------------- */

static guint64
rnd (GRand *g)
{
  return ((guint64) g_rand_int (g) << 32) | g_rand_int (g);
}

static double
special_double (GRand *g)
{
  static const double sp[] = { 0.0, -0.0, 1.0, -1.0, 0.5, 1e300, -1e300, 3.4e38, 3.5e38, 1e-45,
                               1e-310, INFINITY, -INFINITY, NAN, 0.1, 16777217.0,
                               9007199254740993.0, 1e-30 };
  guint64 b;
  double d;

  switch (g_rand_int_range (g, 0, 3))
    {
    case 0: return sp[g_rand_int_range (g, 0, G_N_ELEMENTS (sp))];
    case 1: b = rnd (g); memcpy (&d, &b, 8); return d;
    default: return g_rand_double_range (g, -1e6, 1e6);
    }
}

static guint
atomic_cases (void)
{
  const char *env = g_getenv ("SHMFS_TEST_ATOMIC_CASES");

  if (env != NULL)
    return atoi (env);
  return g_test_slow () ? 20000 : 4000;
}

/* docs/design/remote/atomic-check.c as a test: random and special cases of
 * every element type and op, through shm_remote_atomic and through
 * shm_atomic_apply_elem, compared bit for bit (stored bytes, old value,
 * swapped, whether the version moved). */
static void
test_atomic_exact (Fixture *f, gconstpointer data)
{
  static const ShmElem elems[] = { SHM_ELEM_I8, SHM_ELEM_U8, SHM_ELEM_I16, SHM_ELEM_U16,
                                   SHM_ELEM_I32, SHM_ELEM_U32, SHM_ELEM_I64, SHM_ELEM_U64,
                                   SHM_ELEM_BOOL, SHM_ELEM_F32, SHM_ELEM_F64 };
  guint n = atomic_cases (), done = 0, bad = 0;
  g_autoptr(GRand) g = g_rand_new_with_seed (g_test_rand_int ());
  guint64 o, version = 1;

  if (f->r == NULL)
    return;
  o = make_typed (f->r, ROOT, "bytes", "u8[16]");
  while (done < n)
    {
      ShmType t = { .elem = elems[g_rand_int_range (g, 0, G_N_ELEMENTS (elems))] };
      gsize w = shm_type_elem_size (&t);
      gboolean fl = shm_type_is_float (&t);
      guint64 off = g_rand_int_range (g, 0, 17 - w), ob = rnd (g), ver;
      ShmAtomic a = { .op = g_rand_int_range (g, 0, 5) }, ref;
      union { guint64 align; guint8 b[8]; } local = { 0 };
      guint8 before[8], after[16];
      ShmRemoteRange range = { off, w, before };
      gboolean changed;

      if (t.elem == SHM_ELEM_BOOL)
        ob &= 1;
      if (fl && g_rand_boolean (g))
        {
          double d = special_double (g);
          if (w == 4) { float x = d; memcpy (&ob, &x, 4); } else memcpy (&ob, &d, 8);
        }
      memcpy (local.b, &ob, w);
      if (fl)
        a.is_float = g_rand_int_range (g, 0, 4) != 0;
      if (a.is_float)
        {
          a.operand.f = special_double (g);
          a.expected.f = g_rand_boolean (g) ? special_double (g) : 0;
        }
      else
        {
          a.operand.u = g_rand_boolean (g) ? rnd (g) : (guint64) g_rand_int_range (g, -300, 300);
          a.expected.u = g_rand_boolean (g) ? rnd (g) : ob;
        }
      if (t.elem == SHM_ELEM_BOOL)
        a.operand.u &= 1;
      if (a.op == SHM_ATOMIC_CAS && g_rand_boolean (g))   /* make the cas hit */
        {
          if (!fl)
            a.expected.u = ob;
          else if (a.is_float)
            {
              if (w == 4) { float x; memcpy (&x, &ob, 4); a.expected.f = x; }
              else memcpy (&a.expected.f, &ob, 8);
            }
        }
      {
        ShmType elem;
        guint64 eoff;
        if (shm_atomic_target (&t, &a, &elem, &eoff) < 0)
          continue;
      }
      memcpy (before, local.b, w);
      ref = a;
      changed = shm_atomic_apply_elem (&t, local.b, &ref);

      g_assert_cmpint (shm_remote_write (f->r, o, 16, &range, 1, &version), ==, 0);
      g_assert_cmpint (shm_remote_atomic (f->r, o, 16, &t, off, &a, 1, &ver), ==, 0);
      g_assert_cmpint (shm_remote_read (f->r, o, 16, 0, 16, after, NULL), ==, 0);
      if (memcmp (after + off, local.b, w) != 0 || memcmp (&a.old, &ref.old, 8) != 0 ||
          a.swapped != ref.swapped || (ver != version) != changed)
        {
          if (bad++ < 10)
            g_test_message ("MISMATCH elem=%d op=%d is_float=%d old=%016" G_GINT64_MODIFIER "x "
                            "operand=%016" G_GINT64_MODIFIER "x swapped %d/%d ver %" G_GUINT64_FORMAT
                            "->%" G_GUINT64_FORMAT " changed %d",
                            t.elem, a.op, a.is_float, ob, a.operand.u, ref.swapped, a.swapped,
                            version, ver, changed);
        }
      done++;
    }
  g_test_message ("%u atomic cases, %u mismatches", done, bad);
  g_assert_cmpuint (bad, ==, 0);
}

static void
test_atomic_errors (Fixture *f, gconstpointer data)
{
  g_auto(ShmType) i32 = parse ("i32");
  g_auto(ShmType) c4 = parse ("char[4]");
  ShmAtomic a = { .op = SHM_ATOMIC_ADD, .operand.i = -1 };
  guint64 o, u, ver;

  if (f->r == NULL)
    return;
  o = make_typed (f->r, ROOT, "o", "i32[2]");
  u = make (f->r, ROOT, "u", FALSE);
  g_assert_cmpint (shm_remote_atomic (f->r, o, 8, &i32, 4, &a, 1, &ver), ==, 0);
  g_assert_cmpint (a.old.i, ==, 0);
  g_assert_cmpuint (ver, ==, 2);
  g_assert_cmpint (shm_remote_atomic (f->r, o, 8, &i32, 4, &a, 1, &ver), ==, 0);
  g_assert_cmpint (a.old.i, ==, -1);                 /* sign-extended */
  a.op = SHM_ATOMIC_LOAD;
  g_assert_cmpint (shm_remote_atomic (f->r, o, 8, &i32, 4, &a, 1, &ver), ==, 0);
  g_assert_cmpint (a.old.i, ==, -2);
  g_assert_cmpuint (ver, ==, 3);                     /* a load bumps nothing */
  a.op = SHM_ATOMIC_CAS;
  a.operand.i = 5;
  a.expected.i = 7;
  g_assert_cmpint (shm_remote_atomic (f->r, o, 8, &i32, 4, &a, 1, &ver), ==, 0);
  g_assert_false (a.swapped);
  g_assert_cmpuint (ver, ==, 3);                     /* nor a failed cas */
  g_assert_cmpint (shm_remote_atomic (f->r, o, 8, &i32, 5, &a, 1, &ver), ==, -EINVAL);
  g_assert_cmpint (shm_remote_atomic (f->r, o, 8, &c4, 0, &a, 1, &ver), ==, -EINVAL);
  g_assert_cmpint (shm_remote_atomic (f->r, o, 12, &i32, 0, &a, 1, &ver), ==, -ESTALE);
  g_assert_cmpint (shm_remote_atomic (f->r, u, 8, &i32, 0, &a, 1, &ver), ==, -ENOENT);
  g_assert_cmpint (shm_remote_atomic (f->r, 999, 8, &i32, 0, &a, 1, &ver), ==, -ENOENT);
}

/* ---- concurrency ------------------------------------------------------------------------ */

#define N_THREADS 4

typedef struct {
  ShmRemote *r;
  guint64    i64, u8;
  guint      n;
  gint      *ready;
  const char *name;
  int        err;
} Worker;

static gpointer
add_worker (gpointer data)
{
  Worker *w = data;
  g_auto(ShmType) i64 = parse ("i64");
  g_auto(ShmType) u8 = parse ("u8");

  for (guint k = 0; k < w->n; k++)
    {
      ShmAtomic a = { .op = SHM_ATOMIC_ADD, .operand.i = 3 };
      ShmAtomic b = { .op = SHM_ATOMIC_ADD, .operand.u = 1 };
      g_assert_cmpint (shm_remote_atomic (w->r, w->i64, 8, &i64, 0, &a, 1, NULL), ==, 0);
      g_assert_cmpint (shm_remote_atomic (w->r, w->u8, 1, &u8, 0, &b, 1, NULL), ==, 0);
    }
  return NULL;
}

static void
test_concurrent_adds (Fixture *f, gconstpointer data)
{
  g_auto(ShmType) i64 = parse ("i64");
  g_auto(ShmType) u8 = parse ("u8");
  guint n = g_test_slow () ? 1000 : 300;
  Worker w = { .r = f->r, .n = n };
  GThread *threads[N_THREADS];
  ShmAtomic a = { .op = SHM_ATOMIC_LOAD };
  guint64 ver;

  if (f->r == NULL)
    return;
  w.i64 = make_typed (f->r, ROOT, "count", "i64");
  w.u8 = make_typed (f->r, ROOT, "small", "u8");
  for (int i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("adder", add_worker, &w);
  for (int i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);
  g_assert_cmpint (shm_remote_atomic (f->r, w.i64, 8, &i64, 0, &a, 1, &ver), ==, 0);
  g_assert_cmpint (a.old.i, ==, 3 * N_THREADS * n);
  g_assert_cmpuint (ver, ==, 1 + N_THREADS * n);
  g_assert_cmpint (shm_remote_atomic (f->r, w.u8, 1, &u8, 0, &a, 1, &ver), ==, 0);
  g_assert_cmpuint (a.old.u, ==, (N_THREADS * n) % 256);   /* wraps */
}

static gpointer
create_worker (gpointer data)
{
  Worker *w = data;

  g_atomic_int_inc (w->ready);
  while (g_atomic_int_get (w->ready) < 2)
    ;
  w->err = shm_remote_create (w->r, ROOT, w->name, FALSE, 0644, 0, 0, NULL);
  return NULL;
}

/* Two threads (two handles) create the same name at once: one wins. */
static void
test_create_race (Fixture *f, gconstpointer data)
{
  ShmRemote *other;

  if (f->r == NULL)
    return;
  other = open_remote (f->url, "t");
  for (int round = 0; round < 40; round++)
    {
      g_autofree char *name = g_strdup_printf ("race%d", round);
      gint ready = 0;
      Worker w[2] = { { .r = f->r, .ready = &ready, .name = name },
                      { .r = other, .ready = &ready, .name = name } };
      GThread *t0 = g_thread_new ("c0", create_worker, &w[0]);
      GThread *t1 = g_thread_new ("c1", create_worker, &w[1]);
      g_thread_join (t0);
      g_thread_join (t1);
      g_assert_true ((w[0].err == 0 && w[1].err == -EEXIST) ||
                     (w[1].err == 0 && w[0].err == -EEXIST));
    }
  shm_remote_free (other);
}

/* ---- Cluster ------------------------------------------------------------------------------ */

/* The namespace in one slot, values spread over the nodes. */
static void
test_cluster (void)
{
  TestRedis nodes[3] = { 0 };
  g_autofree char *url = NULL;
  g_auto(ShmType) i64 = parse ("i64");
  GHashTable *slots = g_hash_table_new (NULL, NULL);
  ShmRemote *r;
  guint64 d;

  if (test_redis_skip ())
    {
      g_hash_table_destroy (slots);
      return;
    }
  test_redis_cluster_start (nodes);
  url = test_redis_url (&nodes[2]);
  r = open_remote (url, "c");
  d = make (r, ROOT, "d", TRUE);
  for (int i = 0; i < 12; i++)
    {
      g_autofree char *name = g_strdup_printf ("o%d", i);
      g_autofree char *v = NULL;
      guint64 o = make_typed (r, d, name, "i64");
      ShmAtomic a = { .op = SHM_ATOMIC_ADD, .operand.i = i };
      g_assert_cmpint (shm_remote_atomic (r, o, 8, &i64, 0, &a, 1, NULL), ==, 0);
      a.op = SHM_ATOMIC_LOAD;
      g_assert_cmpint (shm_remote_atomic (r, o, 8, &i64, 0, &a, 1, NULL), ==, 0);
      g_assert_cmpint (a.old.i, ==, i);
      v = g_strdup_printf ("{c:%" G_GUINT64_FORMAT "}:v", o);
      g_hash_table_add (slots, GUINT_TO_POINTER (shm_redis_key_slot (v, strlen (v)) * 3 / 16384));
    }
  g_assert_cmpint (g_hash_table_size (slots), >=, 2);   /* thirds of the slot space */
  g_assert_cmpint (shm_remote_rename (r, d, "o1", ROOT, "moved", 0, NULL, NULL), ==, 0);
  g_assert_cmpint (lookup_oid (r, ROOT, "moved", NULL), ==, 0);
  shm_remote_free (r);
  g_hash_table_destroy (slots);
  for (int i = 0; i < 3; i++)
    test_redis_stop (&nodes[i]);
}

/* Lock leases: owners of one host and of another, shared and exclusive,
 * upgrades, release, expiry; atomic operations wait for another process's
 * lease. */
static void
test_locks (Fixture *f, gconstpointer data)
{
  ShmRemoteConfig quick = { .timeout = 3, .root_mode = 0755, .lease = 0.3 };
  g_autoptr(GError) error = NULL;
  g_auto(ShmType) i64 = parse ("i64");
  ShmAtomic add = { .op = SHM_ATOMIC_ADD, .operand.i = 1 };
  ShmRemote *b, *c;
  guint64 o;

  if (f->r == NULL)
    return;
  b = open_remote (f->url, "t");
  o = make (f->r, ROOT, "o", FALSE);
  /* An untyped object (a lock file) locks too. */
  g_assert_cmpint (shm_remote_lock (f->r, o, 1, 100, TRUE), ==, 0);
  g_assert_cmpint (shm_remote_lock (b, o, 1, 200, FALSE), ==, -EAGAIN);
  g_assert_cmpint (shm_remote_unlock (f->r, o, 1), ==, 0);
  g_assert_cmpint (shm_remote_set_type (f->r, o, &i64, NULL), ==, 0);

  /* Shared with shared, on two hosts; exclusive refused while they hold. */
  g_assert_cmpint (shm_remote_lock (f->r, o, 1, 100, FALSE), ==, 0);
  g_assert_cmpint (shm_remote_lock (b, o, 1, 200, FALSE), ==, 0);
  g_assert_cmpint (shm_remote_lock (b, o, 2, 201, TRUE), ==, -EAGAIN);
  /* Owner 1 of host A may not upgrade while B shares; after B lets go, it may. */
  g_assert_cmpint (shm_remote_lock (f->r, o, 1, 100, TRUE), ==, -EAGAIN);
  g_assert_cmpint (shm_remote_unlock (b, o, 1), ==, 0);
  g_assert_cmpint (shm_remote_lock (f->r, o, 1, 100, TRUE), ==, 0);
  /* Another owner of the same host conflicts too (the daemon's own table
   * orders them before they reach the store). */
  g_assert_cmpint (shm_remote_lock (f->r, o, 2, 101, FALSE), ==, -EAGAIN);

  /* Atomics run inside the lock: the holder's process may, others wait. */
  g_assert_cmpint (shm_remote_atomic (f->r, o, 8, &i64, 0, &add, 100, NULL), ==, 0);
  g_assert_cmpint (shm_remote_atomic (f->r, o, 8, &i64, 0, &add, 101, NULL), ==, -EAGAIN);
  g_assert_cmpint (shm_remote_atomic (b, o, 8, &i64, 0, &add, 100, NULL), ==, -EAGAIN);
  g_assert_cmpint (shm_remote_unlock (f->r, o, 1), ==, 0);
  g_assert_cmpint (shm_remote_atomic (b, o, 8, &i64, 0, &add, 100, NULL), ==, 0);
  g_assert_cmpint (add.old.i, ==, 1);
  g_assert_cmpint (shm_remote_unlock (f->r, o, 1), ==, 0);   /* twice: nothing */
  /* A renewal keeps the mode held and brings nothing back. */
  g_assert_cmpint (shm_remote_renew_lock (f->r, o, 1, 100), ==, -ENOENT);
  g_assert_cmpint (shm_remote_lock (f->r, o, 4, 100, TRUE), ==, 0);
  g_assert_cmpint (shm_remote_renew_lock (f->r, o, 4, 100), ==, 0);
  g_assert_cmpint (shm_remote_lock (b, o, 5, 200, FALSE), ==, -EAGAIN);   /* still exclusive */
  g_assert_cmpint (shm_remote_unlock (f->r, o, 4), ==, 0);

  /* A host that stops renewing loses its lease once it ends. */
  c = shm_remote_open (f->url, "t", &quick, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (shm_remote_get_lease_ms (c), ==, 300);
  g_assert_cmpint (shm_remote_lock (c, o, 9, 300, TRUE), ==, 0);
  g_assert_cmpint (shm_remote_lock (b, o, 3, 202, TRUE), ==, -EAGAIN);
  g_usleep (400 * 1000);
  g_assert_cmpint (shm_remote_lock (b, o, 3, 202, TRUE), ==, 0);
  g_assert_cmpint (shm_remote_lock (c, o, 9, 300, TRUE), ==, -EAGAIN);   /* its renewal is late */
  g_assert_cmpint (shm_remote_unlock (b, o, 3), ==, 0);
  shm_remote_free (c);
  shm_remote_free (b);
}

/* Changes heard from any handle: a subscription per oid, counted; a
 * (re)connect says so with oid 0. */
typedef struct {
  GMutex   lock;
  GCond    cond;
  GArray  *heard;       /* guint64 */
} Heard;

static void
on_changed (guint64 oid, gpointer user_data)
{
  Heard *h = user_data;

  g_mutex_lock (&h->lock);
  g_array_append_val (h->heard, oid);
  g_cond_broadcast (&h->cond);
  g_mutex_unlock (&h->lock);
}

/* Waits (5 s at most) until h heard oid; TRUE if it did. */
static gboolean
wait_heard (Heard *h, guint64 oid)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_TIME_SPAN_SECOND;
  gboolean found = FALSE;

  g_mutex_lock (&h->lock);
  while (!found)
    {
      for (guint i = 0; i < h->heard->len && !found; i++)
        found = g_array_index (h->heard, guint64, i) == oid;
      if (!found && !g_cond_wait_until (&h->cond, &h->lock, deadline))
        break;
    }
  g_array_set_size (h->heard, 0);
  g_mutex_unlock (&h->lock);
  return found;
}

static void
test_watch (Fixture *f, gconstpointer data)
{
  Heard h = { .heard = g_array_new (FALSE, FALSE, sizeof (guint64)) };
  g_auto(ShmType) i64 = parse ("i64");
  ShmAtomic add = { .op = SHM_ATOMIC_ADD, .operand.i = 1 };
  ShmRemoteRange range = { 0, 8, "\1\0\0\0\0\0\0\0" };
  ShmRemote *b;
  guint64 o, p;

  if (f->r == NULL)
    return;
  g_mutex_init (&h.lock);
  g_cond_init (&h.cond);
  b = open_remote (f->url, "t");
  o = make (f->r, ROOT, "o", FALSE);
  p = make (f->r, ROOT, "p", FALSE);
  g_assert_cmpint (shm_remote_set_type (f->r, o, &i64, NULL), ==, 0);
  g_assert_cmpint (shm_remote_set_type (f->r, p, &i64, NULL), ==, 0);
  shm_remote_watch_start (b, on_changed, &h);
  g_assert_true (wait_heard (&h, 0));                     /* connected */
  shm_remote_watch (b, o, TRUE);
  shm_remote_watch (b, o, TRUE);
  /* A subscription takes effect once sent: write until heard. */
  for (int i = 0; i < 50; i++)
    {
      g_assert_cmpint (shm_remote_write (f->r, o, 8, &range, 1, NULL), ==, 0);
      if (wait_heard (&h, o))
        break;
      g_assert_cmpint (i, <, 49);
    }
  g_assert_cmpint (shm_remote_atomic (f->r, o, 8, &i64, 0, &add, 1, NULL), ==, 0);
  g_assert_true (wait_heard (&h, o));
  g_assert_cmpint (shm_remote_bump (f->r, o, NULL), ==, 0);
  g_assert_true (wait_heard (&h, o));
  /* Counted: one off of two leaves it on; p was never on. */
  shm_remote_watch (b, o, FALSE);
  g_assert_cmpint (shm_remote_write (f->r, p, 8, &range, 1, NULL), ==, 0);
  g_assert_cmpint (shm_remote_write (f->r, o, 8, &range, 1, NULL), ==, 0);
  g_assert_true (wait_heard (&h, o));
  shm_remote_watch_stop (b);
  shm_remote_free (b);
  g_array_unref (h.heard);
  g_mutex_clear (&h.lock);
  g_cond_clear (&h.cond);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/remote/open", test_open);
  ADD ("/remote/create-lookup", test_create_lookup);
  ADD ("/remote/list", test_list);
  ADD ("/remote/remove", test_remove);
  ADD ("/remote/rename", test_rename);
  ADD ("/remote/set-attr", test_set_attr);
  ADD ("/remote/set-type", test_set_type);
  ADD ("/remote/values", test_values);
  ADD ("/remote/two-handles", test_two_handles);
  ADD ("/remote/atomic-exact", test_atomic_exact);
  ADD ("/remote/atomic-errors", test_atomic_errors);
  ADD ("/remote/concurrent-adds", test_concurrent_adds);
  ADD ("/remote/create-race", test_create_race);
  ADD ("/remote/locks", test_locks);
  ADD ("/remote/watch", test_watch);
#undef ADD
  g_test_add_func ("/remote/cluster", test_cluster);
  return g_test_run ();
}
