/* shm-redis-sub.c — a subscriber thread: a hiredis context in subscribe
 * mode, polled with a pipe that wakes it when channels are added or
 * dropped.  Replies are read with the context's own reader; nothing is
 * ever waited for with a lock held.
 */
#include "config.h"

#include "shm-redis-sub.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#define RETRY_MS 200

struct _ShmRedisSub {
  ShmRedis       *redis;
  ShmRedisSubFunc func;
  gpointer        user_data;
  GMutex          lock;
  GHashTable     *channels;       /* channel -> count; lock */
  GPtrArray      *changes;        /* "+channel" / "-channel" to send; lock */
  gboolean        stop;           /* lock */
  int             wake[2];
  GThread        *thread;
};

static void
wake (ShmRedisSub *sub)
{
  char c = 0;

  if (write (sub->wake[1], &c, 1) < 0 && errno != EAGAIN)
    g_warning ("redis subscriber: cannot wake: %s", g_strerror (errno));
}

static void
drain (ShmRedisSub *sub)
{
  char buf[64];

  while (read (sub->wake[0], buf, sizeof buf) > 0)
    ;
}

/* Sends (UN)SUBSCRIBE for channels; FALSE when the connection failed. */
static gboolean
send_command (redisContext *c, const char *verb, GPtrArray *channels)
{
  g_autofree const char **argv = g_new (const char *, channels->len + 1);
  int done = 0;

  if (channels->len == 0)
    return TRUE;
  argv[0] = verb;
  for (guint i = 0; i < channels->len; i++)
    argv[i + 1] = channels->pdata[i];
  if (redisAppendCommandArgv (c, channels->len + 1, argv, NULL) != REDIS_OK)
    return FALSE;
  do
    if (redisBufferWrite (c, &done) != REDIS_OK)
      return FALSE;
  while (!done);
  return TRUE;
}

/* Connects and subscribes to every channel; NULL when it could not. */
static redisContext *
connect_all (ShmRedisSub *sub)
{
  g_autoptr (GPtrArray) all = g_ptr_array_new_with_free_func (g_free);
  redisContext *c = shm_redis_connect (sub->redis);
  GHashTableIter iter;
  gpointer key;

  if (c == NULL)
    return NULL;
  /* Blocking reads are done by poll; the socket's timeout stays for
   * writes. */
  g_mutex_lock (&sub->lock);
  g_hash_table_iter_init (&iter, sub->channels);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (all, g_strdup (key));
  g_ptr_array_set_size (sub->changes, 0);
  g_mutex_unlock (&sub->lock);
  if (!send_command (c, "SUBSCRIBE", all))
    {
      redisFree (c);
      return NULL;
    }
  return c;
}

/* Sends the changes queued since; FALSE when the connection failed. */
static gboolean
send_changes (ShmRedisSub *sub, redisContext *c)
{
  g_autoptr (GPtrArray) add = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) drop = g_ptr_array_new_with_free_func (g_free);

  g_mutex_lock (&sub->lock);
  for (guint i = 0; i < sub->changes->len; i++)
    {
      const char *change = sub->changes->pdata[i];
      g_ptr_array_add (change[0] == '+' ? add : drop, g_strdup (change + 1));
    }
  g_ptr_array_set_size (sub->changes, 0);
  g_mutex_unlock (&sub->lock);
  return send_command (c, "SUBSCRIBE", add) && send_command (c, "UNSUBSCRIBE", drop);
}

/* Hands the messages read so far to func; FALSE when the connection failed. */
static gboolean
read_messages (ShmRedisSub *sub, redisContext *c)
{
  redisReply *rep;

  if (redisBufferRead (c) != REDIS_OK)
    return FALSE;
  while (redisGetReplyFromReader (c, (void **) &rep) == REDIS_OK && rep != NULL)
    {
      if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
          rep->element[0]->type == REDIS_REPLY_STRING &&
          strcmp (rep->element[0]->str, "message") == 0 &&
          rep->element[1]->type == REDIS_REPLY_STRING &&
          rep->element[2]->type == REDIS_REPLY_STRING)
        sub->func (rep->element[1]->str, rep->element[2]->str, rep->element[2]->len,
                   sub->user_data);
      freeReplyObject (rep);
    }
  return c->err == 0;
}

static gpointer
run (gpointer data)
{
  ShmRedisSub *sub = data;
  redisContext *c = NULL;

  for (;;)
    {
      struct pollfd fds[2] = { { sub->wake[0], POLLIN, 0 }, { -1, POLLIN, 0 } };
      gboolean stop;

      g_mutex_lock (&sub->lock);
      stop = sub->stop;
      g_mutex_unlock (&sub->lock);
      if (stop)
        break;
      if (c == NULL && (c = connect_all (sub)) != NULL)
        sub->func (NULL, NULL, 0, sub->user_data);   /* messages may be lost */
      fds[1].fd = c != NULL ? c->fd : -1;
      if (poll (fds, 2, c != NULL ? -1 : RETRY_MS) < 0 && errno != EINTR)
        break;
      if (fds[0].revents & POLLIN)
        drain (sub);
      if (c != NULL && (!send_changes (sub, c) ||
                        ((fds[1].revents & (POLLIN | POLLERR | POLLHUP)) &&
                         !read_messages (sub, c))))
        g_clear_pointer (&c, redisFree);
    }
  if (c != NULL)
    redisFree (c);
  return NULL;
}

ShmRedisSub *
shm_redis_sub_new (ShmRedis *r, ShmRedisSubFunc func, gpointer user_data)
{
  ShmRedisSub *sub = g_new0 (ShmRedisSub, 1);

  sub->redis = r;
  sub->func = func;
  sub->user_data = user_data;
  g_mutex_init (&sub->lock);
  sub->channels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  sub->changes = g_ptr_array_new_with_free_func (g_free);
  if (pipe2 (sub->wake, O_CLOEXEC | O_NONBLOCK) < 0)
    g_error ("redis subscriber: pipe: %s", g_strerror (errno));
  sub->thread = g_thread_new ("shmfs-redis-sub", run, sub);
  return sub;
}

void
shm_redis_sub_free (ShmRedisSub *sub)
{
  if (sub == NULL)
    return;
  g_mutex_lock (&sub->lock);
  sub->stop = TRUE;
  g_mutex_unlock (&sub->lock);
  wake (sub);
  g_thread_join (sub->thread);
  close (sub->wake[0]);
  close (sub->wake[1]);
  g_hash_table_unref (sub->channels);
  g_ptr_array_unref (sub->changes);
  g_mutex_clear (&sub->lock);
  g_free (sub);
}

static void
change (ShmRedisSub *sub, const char *channel, int delta)
{
  gpointer key, value;
  guint count = 0;
  gboolean send = FALSE;

  g_mutex_lock (&sub->lock);
  if (g_hash_table_lookup_extended (sub->channels, channel, &key, &value))
    count = GPOINTER_TO_UINT (value);
  if (delta > 0 && count++ == 0)
    send = TRUE;
  else if (delta < 0 && count > 0 && --count == 0)
    send = TRUE;
  if (count > 0)
    g_hash_table_replace (sub->channels, g_strdup (channel), GUINT_TO_POINTER (count));
  else
    g_hash_table_remove (sub->channels, channel);
  if (send)
    g_ptr_array_add (sub->changes, g_strconcat (delta > 0 ? "+" : "-", channel, NULL));
  g_mutex_unlock (&sub->lock);
  if (send)
    wake (sub);
}

void
shm_redis_sub_add (ShmRedisSub *sub, const char *channel)
{
  change (sub, channel, 1);
}

void
shm_redis_sub_remove (ShmRedisSub *sub, const char *channel)
{
  change (sub, channel, -1);
}
