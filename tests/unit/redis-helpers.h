/* redis-helpers.h — redis-server processes for the unit tests of
 * core/shm-redis and core/shm-remote: each on a free loopback port, no
 * persistence, killed with the test process whatever happens
 * (PR_SET_PDEATHSIG), stopped with SHUTDOWN NOSAVE then SIGKILL. */
#pragma once

#include <errno.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

typedef struct {
  GPid  pid;
  int   port;
  char *dir;          /* its working directory (cluster nodes.conf) */
} TestRedis;

/* Skips the test (TRUE) when redis-server is not installed. */
static inline gboolean
test_redis_skip (void)
{
  g_autofree char *path = g_find_program_in_path ("redis-server");

  if (path != NULL)
    return FALSE;
  g_test_skip ("redis-server is not installed (apt-get install redis-server)");
  return TRUE;
}

/* A port that is free now, with port + 10000 free too (a Cluster's bus). */
static inline int
test_redis_free_port (void)
{
  for (int attempt = 0; attempt < 100; attempt++)
    {
      int port = g_random_int_range (20000, 55000), ok = 1;
      for (int k = 0; k < 2 && ok; k++)
        {
          struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port + k * 10000),
                                    .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
          int fd = socket (AF_INET, SOCK_STREAM, 0);
          ok = fd >= 0 && bind (fd, (struct sockaddr *) &sa, sizeof sa) == 0;
          if (fd >= 0)
            close (fd);
        }
      if (ok)
        return port;
    }
  g_error ("no free port");
}

static void
test_redis_child_setup (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* A connection of our own to the server (for setup and checks). */
static inline redisContext *
test_redis_connect (int port)
{
  redisContext *c = redisConnectWithTimeout ("127.0.0.1", port, (struct timeval) { 2, 0 });

  g_assert_nonnull (c);
  if (c->err == 0)
    redisSetTimeout (c, (struct timeval) { 10, 0 });
  return c;
}

/* Runs a command on the server, asserts it did not fail, returns the reply. */
static inline redisReply *
test_redis_vcmd (int port, const char *format, va_list ap)
{
  redisContext *c = test_redis_connect (port);
  redisReply *rep;

  g_assert_cmpint (c->err, ==, 0);
  rep = redisvCommand (c, format, ap);
  g_assert_nonnull (rep);
  if (rep->type == REDIS_REPLY_ERROR)
    g_error ("%s: %s", format, rep->str);
  redisFree (c);
  return rep;
}

static inline redisReply *
test_redis_cmd (int port, const char *format, ...)
{
  redisReply *rep;
  va_list ap;

  va_start (ap, format);
  rep = test_redis_vcmd (port, format, ap);
  va_end (ap);
  return rep;
}

/* The same, for a command whose reply is not needed. */
static inline void
test_redis_run (int port, const char *format, ...)
{
  va_list ap;

  va_start (ap, format);
  freeReplyObject (test_redis_vcmd (port, format, ap));
  va_end (ap);
}

static inline gboolean
test_redis_ping (int port)
{
  redisContext *c = redisConnectWithTimeout ("127.0.0.1", port, (struct timeval) { 0, 200000 });
  gboolean ok = FALSE;

  if (c != NULL && c->err == 0)
    {
      redisReply *rep;
      redisSetTimeout (c, (struct timeval) { 1, 0 });
      rep = redisCommand (c, "PING");
      ok = rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp (rep->str, "PONG") == 0;
      if (rep != NULL)
        freeReplyObject (rep);
    }
  if (c != NULL)
    redisFree (c);
  return ok;
}

/* Starts a server; extra: more arguments (NULL-terminated), or NULL. */
static inline void
test_redis_start (TestRedis *t, const char *const *extra)
{
  for (int attempt = 0; attempt < 5; attempt++)
    {
      g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
      g_autoptr(GError) error = NULL;
      int status;

      t->port = test_redis_free_port ();
      t->dir = g_dir_make_tmp ("shmfs-redis-XXXXXX", &error);
      g_assert_no_error (error);
      g_ptr_array_add (argv, g_strdup ("redis-server"));
      g_ptr_array_add (argv, g_strdup ("--port"));
      g_ptr_array_add (argv, g_strdup_printf ("%d", t->port));
      for (const char *const *a = (const char *const []) { "--bind", "127.0.0.1", "--save", "",
                                                          "--appendonly", "no", "--daemonize", "no",
                                                          "--logfile", "redis.log", NULL };
           *a != NULL; a++)
        g_ptr_array_add (argv, g_strdup (*a));
      for (const char *const *a = extra; a != NULL && *a != NULL; a++)
        g_ptr_array_add (argv, g_strdup (*a));
      g_ptr_array_add (argv, NULL);
      g_spawn_async (t->dir, (char **) argv->pdata, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
                     test_redis_child_setup, NULL, &t->pid, &error);
      g_assert_no_error (error);
      for (int i = 0; i < 500; i++)
        {
          if (test_redis_ping (t->port))
            return;
          if (waitpid (t->pid, &status, WNOHANG) == t->pid)
            break;                               /* the port was taken meanwhile */
          g_usleep (10000);
        }
      kill (t->pid, SIGKILL);
      waitpid (t->pid, &status, 0);
      g_spawn_close_pid (t->pid);
      g_rmdir (t->dir);
      g_free (t->dir);
    }
  g_error ("redis-server did not start");
}

static inline char *
test_redis_url (const TestRedis *t)
{
  return g_strdup_printf ("redis://127.0.0.1:%d", t->port);
}

/* Stops the server (SHUTDOWN NOSAVE, SIGKILL after 5 s) and removes its directory. */
static inline void
test_redis_stop (TestRedis *t)
{
  redisContext *c;
  int status;

  if (t->pid == 0)
    return;
  kill (t->pid, SIGCONT);
  c = redisConnectWithTimeout ("127.0.0.1", t->port, (struct timeval) { 1, 0 });
  if (c != NULL && c->err == 0)
    {
      redisSetTimeout (c, (struct timeval) { 1, 0 });
      redisReply *rep = redisCommand (c, "SHUTDOWN NOSAVE");
      if (rep != NULL)
        freeReplyObject (rep);
    }
  if (c != NULL)
    redisFree (c);
  for (int i = 0; i < 500 && waitpid (t->pid, &status, WNOHANG) != t->pid; i++)
    {
      if (i == 499)
        {
          kill (t->pid, SIGKILL);
          waitpid (t->pid, &status, 0);
        }
      g_usleep (10000);
    }
  g_spawn_close_pid (t->pid);
  t->pid = 0;
  {
    g_autofree char *log = g_build_filename (t->dir, "redis.log", NULL);
    g_autofree char *conf = g_build_filename (t->dir, "nodes.conf", NULL);
    g_unlink (log);
    g_unlink (conf);
    g_rmdir (t->dir);
  }
  g_clear_pointer (&t->dir, g_free);
}

/* Three masters on loopback, slots assigned by redis-cli --cluster create,
 * ready (cluster_state:ok on all). */
static inline void
test_redis_cluster_start (TestRedis nodes[3])
{
  static const char *const extra[] = { "--cluster-enabled", "yes", "--cluster-config-file",
                                       "nodes.conf", "--cluster-node-timeout", "2000", NULL };
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL;
  int status;

  for (int i = 0; i < 3; i++)
    test_redis_start (&nodes[i], extra);
  g_ptr_array_add (argv, g_strdup ("redis-cli"));
  g_ptr_array_add (argv, g_strdup ("--cluster"));
  g_ptr_array_add (argv, g_strdup ("create"));
  for (int i = 0; i < 3; i++)
    g_ptr_array_add (argv, g_strdup_printf ("127.0.0.1:%d", nodes[i].port));
  g_ptr_array_add (argv, g_strdup ("--cluster-replicas"));
  g_ptr_array_add (argv, g_strdup ("0"));
  g_ptr_array_add (argv, g_strdup ("--cluster-yes"));
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                &out, &err, &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("redis-cli --cluster create: %s%s", out, err);
  for (int i = 0; i < 3; i++)
    for (int k = 0;; k++)
      {
        redisReply *rep = test_redis_cmd (nodes[i].port, "CLUSTER INFO");
        gboolean ok = strstr (rep->str, "cluster_state:ok") != NULL;
        freeReplyObject (rep);
        if (ok)
          break;
        g_assert_cmpint (k, <, 1000);
        g_usleep (10000);
      }
}
