/* Unit tests of core/shm-redis: URLs, commands, scripts, errors as errnos
 * (refused, stopped and full servers), and Cluster routing, against real
 * redis-server processes (skipped without redis-server). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "shm-redis.h"
#include "redis-helpers.h"

static void
test_url (void)
{
  static const struct { const char *url, *host; int port, db; } good[] = {
    { "redis://localhost", "localhost", 6379, 0 },
    { "redis://10.0.0.1:7000", "10.0.0.1", 7000, 0 },
    { "redis://h:1/15", "h", 1, 15 },
    { "redis://h/3", "h", 6379, 3 },
    { "redis://[::1]:6380/2", "::1", 6380, 2 },
  };
  static const char *const bad[] = {
    "", "http://h", "redis:/h", "redis://", "redis://:6379", "redis://h:", "redis://h:0",
    "redis://h:65536", "redis://h:12x", "redis://h:-1", "redis://h/", "redis://h/x",
    "redis://h/1/2", "redis://u:p@h", "redis://h:1 ", "redis://[::1", "redis://h/99999999999",
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      ShmRedisUrl u;
      g_autoptr(GError) error = NULL;
      g_assert_true (shm_redis_url_parse (good[i].url, &u, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (u.host, ==, good[i].host);
      g_assert_cmpint (u.port, ==, good[i].port);
      g_assert_cmpint (u.db, ==, good[i].db);
      shm_redis_url_clear (&u);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      ShmRedisUrl u;
      g_autoptr(GError) error = NULL;
      g_assert_false (shm_redis_url_parse (bad[i], &u, &error));
      g_assert_nonnull (error);
      g_assert_null (strchr (error->message, '\n'));
      g_assert_null (u.host);
    }
  {
    ShmRedisUrl u;
    g_autoptr(GError) error = NULL;
    g_assert_false (shm_redis_url_parse ("rediss://h:6380", &u, &error));
    g_assert_nonnull (strstr (error->message, "TLS"));
  }
}

static void
test_key_slot (void)
{
  /* Measured on a Cluster (docs/design/remote.md §3.1) and CLUSTER KEYSLOT. */
  g_assert_cmpuint (shm_redis_key_slot ("{shmfs}:d:1", 11), ==, 6407);
  g_assert_cmpuint (shm_redis_key_slot ("{shmfs:5}:v", 11), ==, 1444);
  g_assert_cmpuint (shm_redis_key_slot ("{shmfs:5}:ev", 12), ==, 1444);
  g_assert_cmpuint (shm_redis_key_slot ("{shmfs:6}:v", 11), ==, 13767);
  g_assert_cmpuint (shm_redis_key_slot ("foo", 3), ==, 12182);
  g_assert_cmpuint (shm_redis_key_slot ("{}foo", 5), !=, shm_redis_key_slot ("foo", 3));
  g_assert_cmpuint (shm_redis_key_slot ("a{foo}b", 7), ==, 12182);
}

typedef struct {
  TestRedis server;
  ShmRedis *redis;
  char     *url;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  ShmRedisConfig config = { .timeout = data != NULL ? *(const double *) data : 2.0 };
  g_autoptr(GError) error = NULL;

  if (test_redis_skip ())
    return;
  test_redis_start (&f->server, NULL);
  f->url = test_redis_url (&f->server);
  f->redis = shm_redis_open (f->url, &config, &error);
  g_assert_no_error (error);
  g_assert_false (shm_redis_is_cluster (f->redis));
}

static void
teardown (Fixture *f, gconstpointer data)
{
  shm_redis_free (f->redis);
  test_redis_stop (&f->server);
  g_free (f->url);
}

static void
test_commands (Fixture *f, gconstpointer data)
{
  const char *set[] = { "SET", "k", "a\0b" };
  const size_t setlen[] = { 3, 1, 3 };
  redisReply *rep;
  guint64 ms;

  if (f->redis == NULL)
    return;
  g_assert_cmpint (shm_redis_command (f->redis, "k", 3, set, setlen, &rep), ==, 0);
  g_assert_cmpint (rep->type, ==, REDIS_REPLY_STATUS);
  freeReplyObject (rep);
  g_assert_cmpint (shm_redis_commandf (f->redis, "k", &rep, "GET %s", "k"), ==, 0);
  g_assert_cmpint (rep->type, ==, REDIS_REPLY_STRING);
  g_assert_cmpmem (rep->str, rep->len, "a\0b", 3);
  freeReplyObject (rep);
  g_assert_cmpint (shm_redis_commandf (f->redis, "nokey", &rep, "GET nokey"), ==, 0);
  g_assert_cmpint (rep->type, ==, REDIS_REPLY_NIL);
  freeReplyObject (rep);
  g_assert_cmpint (shm_redis_commandf (f->redis, NULL, &rep, "PING"), ==, 0);
  freeReplyObject (rep);

  /* Any other error reply is -EIO (and one log line). */
  g_assert_cmpint (shm_redis_commandf (f->redis, "k", &rep, "INCR k"), ==, -EIO);
  g_assert_cmpint (shm_redis_commandf (f->redis, NULL, &rep, "NOSUCHCOMMAND"), ==, -EIO);

  g_assert_cmpint (shm_redis_time_ms (f->redis, NULL, &ms), ==, 0);
  g_assert_cmpint (ABS ((gint64) ms - g_get_real_time () / 1000), <, 5000);
}

static void
test_db (Fixture *f, gconstpointer data)
{
  g_autofree char *url = NULL;
  g_autoptr(GError) error = NULL;
  ShmRedisConfig config = { .timeout = 2 };
  ShmRedis *db3;
  redisReply *rep;

  if (f->redis == NULL)
    return;
  url = g_strdup_printf ("%s/3", f->url);
  db3 = shm_redis_open (url, &config, &error);
  g_assert_no_error (error);
  g_assert_cmpint (shm_redis_commandf (db3, "x", &rep, "SET x 1"), ==, 0);
  freeReplyObject (rep);
  g_assert_cmpint (shm_redis_commandf (f->redis, "x", &rep, "EXISTS x"), ==, 0);
  g_assert_cmpint (rep->integer, ==, 0);
  freeReplyObject (rep);
  g_assert_cmpint (shm_redis_commandf (db3, "x", &rep, "EXISTS x"), ==, 0);
  g_assert_cmpint (rep->integer, ==, 1);
  freeReplyObject (rep);
  shm_redis_free (db3);
}

static void
test_scripts (Fixture *f, gconstpointer data)
{
  ShmRedisScript *s = shm_redis_script_new ("#!lua flags=allow-oom\n"
                                            "redis.call('SET', KEYS[1], ARGV[1])\n"
                                            "return {tonumber(ARGV[2]) + 1, redis.call('GET', KEYS[1])}");
  ShmRedisScript *bad = shm_redis_script_new ("return redis.call('NOSUCH')");
  const char *keys[] = { "{s}:a" }, *args[] = { "x\0y", "41" };
  const size_t arglens[] = { 3, 2 };
  redisReply *rep;

  if (f->redis == NULL)
    goto out;
  for (int round = 0; round < 3; round++)
    {
      g_assert_cmpint (shm_redis_eval (f->redis, s, 1, keys, NULL, 2, args, arglens, &rep), ==, 0);
      g_assert_cmpint (rep->type, ==, REDIS_REPLY_ARRAY);
      g_assert_cmpint (rep->element[0]->integer, ==, 42);
      g_assert_cmpmem (rep->element[1]->str, rep->element[1]->len, "x\0y", 3);
      freeReplyObject (rep);
      if (round == 1)
        test_redis_run (f->server.port, "SCRIPT FLUSH");   /* NOSCRIPT: EVAL, then cached again */
    }
  g_assert_cmpint (shm_redis_eval (f->redis, bad, 0, NULL, NULL, 0, NULL, NULL, &rep), ==, -EIO);
out:
  shm_redis_script_free (s);
  shm_redis_script_free (bad);
}

static void
test_oom (Fixture *f, gconstpointer data)
{
  ShmRedisScript *s = shm_redis_script_new ("#!lua flags=allow-oom\n"
                                            "return redis.call('SETRANGE', KEYS[1], 0, 'b')");
  const char *keys[] = { "v" };
  redisReply *rep;

  if (f->redis == NULL)
    goto out;
  g_assert_cmpint (shm_redis_commandf (f->redis, "v", &rep, "SET v aaaa"), ==, 0);
  freeReplyObject (rep);
  test_redis_run (f->server.port, "CONFIG SET maxmemory 1");
  g_assert_cmpint (shm_redis_commandf (f->redis, "w", &rep, "SET w 1"), ==, -ENOSPC);
  /* A script that does not grow data runs when full (design §3.5). */
  g_assert_cmpint (shm_redis_eval (f->redis, s, 1, keys, NULL, 0, NULL, NULL, &rep), ==, 0);
  freeReplyObject (rep);
  test_redis_run (f->server.port, "CONFIG SET maxmemory 0");
  g_assert_cmpint (shm_redis_commandf (f->redis, "w", &rep, "SET w 1"), ==, 0);
  freeReplyObject (rep);
out:
  shm_redis_script_free (s);
}

/* A closed port: -EIO at once, and open fails at once with one line. */
static void
test_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  ShmRedisConfig config = { .timeout = 2 };
  redisReply *rep;
  gint64 t0;

  if (f->redis == NULL)
    return;
  test_redis_stop (&f->server);
  t0 = g_get_monotonic_time ();
  g_assert_cmpint (shm_redis_commandf (f->redis, NULL, &rep, "PING"), ==, -EIO);
  g_assert_cmpint (shm_redis_commandf (f->redis, NULL, &rep, "PING"), ==, -EIO);  /* marked down */
  g_usleep (150000);
  g_assert_cmpint (shm_redis_commandf (f->redis, NULL, &rep, "PING"), ==, -EIO);  /* refused */
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 500000);

  t0 = g_get_monotonic_time ();
  g_assert_null (shm_redis_open (f->url, &config, &error));
  g_assert_nonnull (error);
  g_assert_null (strchr (error->message, '\n'));
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 500000);
}

/* A stopped server accepts connections but never answers: -ETIMEDOUT
 * within the timeout (+0.5 s), and the same handle works after SIGCONT. */
static void
test_stopped (Fixture *f, gconstpointer data)
{
  const double timeout = *(const double *) data;
  redisReply *rep;
  gint64 t0, spent;

  if (f->redis == NULL)
    return;
  g_assert_cmpint (shm_redis_commandf (f->redis, "a", &rep, "SET a 1"), ==, 0);
  freeReplyObject (rep);
  kill (f->server.pid, SIGSTOP);
  for (int round = 0; round < 2; round++)   /* a pooled context, then a new one */
    {
      t0 = g_get_monotonic_time ();
      g_assert_cmpint (shm_redis_commandf (f->redis, "a", &rep, "INCR a"), ==, -ETIMEDOUT);
      spent = g_get_monotonic_time () - t0;
      g_test_message ("stopped server: -ETIMEDOUT after %.3f s (timeout %.1f s)",
                      spent / 1e6, timeout);
      g_assert_cmpint (spent, >=, timeout * 0.9e6);
      g_assert_cmpint (spent, <, (timeout + 0.5) * 1e6);
      g_assert_cmpint (shm_redis_commandf (f->redis, "a", &rep, "GET a"), ==, -EIO);  /* marked down */
      g_usleep (150000);
    }
  kill (f->server.pid, SIGCONT);
  g_usleep (150000);
  g_assert_cmpint (shm_redis_commandf (f->redis, "a", &rep, "GET a"), ==, 0);
  g_assert_cmpint (rep->type, ==, REDIS_REPLY_STRING);
  /* The timed-out INCRs ran once the server went on (ETIMEDOUT: maybe applied). */
  g_test_message ("a after two timed-out INCRs: %s", rep->str);
  freeReplyObject (rep);
}

static gpointer
busy_script (gpointer data)
{
  redisContext *c = test_redis_connect (GPOINTER_TO_INT (data));
  redisReply *rep = redisCommand (c, "EVAL %s 0",
                                  "local t0 = redis.call('TIME')[1] "
                                  "while tonumber(redis.call('TIME')[1]) < t0 + 2 do end return 1");
  if (rep != NULL)
    freeReplyObject (rep);
  redisFree (c);
  return NULL;
}

/* A script running too long makes the server answer BUSY: -ETIMEDOUT. */
static void
test_busy (Fixture *f, gconstpointer data)
{
  redisReply *rep;
  GThread *t;
  int err = 0;

  if (f->redis == NULL)
    return;
  test_redis_run (f->server.port, "CONFIG SET busy-reply-threshold 100");
  t = g_thread_new ("busy", busy_script, GINT_TO_POINTER (f->server.port));
  for (int i = 0; i < 100 && err == 0; i++)
    {
      g_usleep (50000);
      if ((err = shm_redis_commandf (f->redis, "x", &rep, "GET x")) == 0)
        freeReplyObject (rep);
    }
  g_assert_cmpint (err, ==, -ETIMEDOUT);
  g_thread_join (t);
  g_usleep (150000);
  g_assert_cmpint (shm_redis_commandf (f->redis, "x", &rep, "GET x"), ==, 0);
  freeReplyObject (rep);
}

/* ---- Cluster ------------------------------------------------------------------ */

static char *
node_id (int port)
{
  redisReply *rep = test_redis_cmd (port, "CLUSTER MYID");
  char *id = g_strdup (rep->str);
  freeReplyObject (rep);
  return id;
}

/* The node (0..2) that owns slot, by CLUSTER SLOTS. */
static int
slot_owner (TestRedis nodes[3], guint slot)
{
  redisReply *rep = test_redis_cmd (nodes[0].port, "CLUSTER SLOTS");
  int owner = -1;

  for (gsize r = 0; r < rep->elements; r++)
    {
      redisReply *range = rep->element[r];
      if (slot >= range->element[0]->integer && slot <= range->element[1]->integer)
        for (int i = 0; i < 3; i++)
          if (range->element[2]->element[1]->integer == nodes[i].port)
            owner = i;
    }
  freeReplyObject (rep);
  return owner;
}

static void
test_cluster (void)
{
  TestRedis nodes[3] = { 0 };
  g_autofree char *url = NULL;
  g_autoptr(GError) error = NULL;
  ShmRedisConfig config = { .timeout = 2 };
  ShmRedis *r;
  redisReply *rep;
  int per_node[3] = { 0 };

  if (test_redis_skip ())
    return;
  test_redis_cluster_start (nodes);
  url = test_redis_url (&nodes[1]);
  r = shm_redis_open (url, &config, &error);
  g_assert_no_error (error);
  g_assert_true (shm_redis_is_cluster (r));

  /* Keys go to the node that owns their slot; our slot is the server's. */
  for (int i = 0; i < 60; i++)
    {
      g_autofree char *key = g_strdup_printf ("{shmfs:%d}:v", i);
      guint slot = shm_redis_key_slot (key, strlen (key));
      int owner;
      g_assert_cmpint (shm_redis_commandf (r, key, &rep, "SET %s %d", key, i), ==, 0);
      freeReplyObject (rep);
      rep = test_redis_cmd (nodes[0].port, "CLUSTER KEYSLOT %s", key);
      g_assert_cmpint (rep->integer, ==, slot);
      freeReplyObject (rep);
      owner = slot_owner (nodes, slot);
      g_assert_cmpint (owner, >=, 0);
      rep = test_redis_cmd (nodes[owner].port, "EXISTS %s", key);
      g_assert_cmpint (rep->integer, ==, 1);
      freeReplyObject (rep);
      per_node[owner]++;
    }
  for (int i = 0; i < 3; i++)
    g_assert_cmpint (per_node[i], >, 0);

  /* Move the (empty) slot of a key to another node behind our back: the
   * stale map sends it to the old owner, MOVED brings it to the new one.
   * First ASK, while the slot migrates. */
  {
    const char *key = "{moving}:k";
    guint slot = shm_redis_key_slot (key, strlen (key));
    int from = slot_owner (nodes, slot), to = (from + 1) % 3;
    g_autofree char *from_id = node_id (nodes[from].port), *to_id = node_id (nodes[to].port);

    test_redis_run (nodes[to].port, "CLUSTER SETSLOT %u IMPORTING %s", slot, from_id);
    test_redis_run (nodes[from].port, "CLUSTER SETSLOT %u MIGRATING %s", slot, to_id);
    g_assert_cmpint (shm_redis_commandf (r, key, &rep, "SET %s asked", key), ==, 0);   /* ASK */
    freeReplyObject (rep);
    rep = test_redis_cmd (nodes[to].port, "CLUSTER COUNTKEYSINSLOT %u", slot);
    g_assert_cmpint (rep->integer, ==, 1);
    freeReplyObject (rep);
    for (int i = 0; i < 3; i++)
      test_redis_run (nodes[i].port, "CLUSTER SETSLOT %u NODE %s", slot, to_id);
    g_assert_cmpint (shm_redis_commandf (r, key, &rep, "GET %s", key), ==, 0);          /* MOVED */
    g_assert_cmpstr (rep->str, ==, "asked");
    freeReplyObject (rep);
    g_assert_cmpint (shm_redis_commandf (r, key, &rep, "GET %s", key), ==, 0);          /* the new map */
    freeReplyObject (rep);
  }

  /* A database other than 0 is refused in a Cluster. */
  {
    g_autofree char *db1 = g_strdup_printf ("%s/1", url);
    g_autoptr(GError) e2 = NULL;
    g_assert_null (shm_redis_open (db1, &config, &e2));
    g_assert_nonnull (e2);
  }
  shm_redis_free (r);
  for (int i = 0; i < 3; i++)
    test_redis_stop (&nodes[i]);
}

int
main (int argc, char **argv)
{
  static const double stop_timeout = 0.5;

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/redis/url", test_url);
  g_test_add_func ("/redis/key-slot", test_key_slot);
  g_test_add ("/redis/commands", Fixture, NULL, setup, test_commands, teardown);
  g_test_add ("/redis/db", Fixture, NULL, setup, test_db, teardown);
  g_test_add ("/redis/scripts", Fixture, NULL, setup, test_scripts, teardown);
  g_test_add ("/redis/oom", Fixture, NULL, setup, test_oom, teardown);
  g_test_add ("/redis/refused", Fixture, NULL, setup, test_refused, teardown);
  g_test_add ("/redis/stopped", Fixture, &stop_timeout, setup, test_stopped, teardown);
  g_test_add ("/redis/busy", Fixture, NULL, setup, test_busy, teardown);
  g_test_add_func ("/redis/cluster", test_cluster);
  return g_test_run ();
}
