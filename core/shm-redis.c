/* shm-redis.c — Redis connections: URLs, a pool of synchronous hiredis
 * contexts per node, errors as errnos, EVALSHA, Cluster routing.
 *
 * Each node (one server, or one master of a Cluster) has a pool: a free
 * list of connected contexts under the node's mutex.  A command takes a
 * context (or connects a new one, outside the mutex), runs, and gives it
 * back; a context that saw an error is freed, never reused, and the node
 * is marked down for DOWN_US: requests to it fail at once with -EIO, then
 * the next one reconnects.  An idle context the server has closed since
 * (it restarted) is dropped when taken, before anything is written.  Every context has the timeout both for
 * connecting and for each reply (redisSetTimeout: without it a stopped
 * server hangs a reply forever, docs/design/remote.md §1).
 *
 * A command is written first and only then read: an error while writing
 * means the server never saw it whole (-EIO, not applied); no reply after
 * the write (a timeout, or the connection lost) may follow a command that
 * ran (-ETIMEDOUT); nothing is sent again except on the refusals that say
 * the command did not run (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, LOADING,
 * NOSCRIPT).
 *
 * Cluster: the slot map (CLUSTER SLOTS) maps each slot to its node; it is
 * loaded at open, and again on MOVED and after a node failed, by one
 * request at a time, asking the nodes that failed least recently first: a
 * hung node (it accepts connections and never answers) costs the requests
 * for its own slots the timeout, never those for the other nodes.
 */
#include "config.h"

#include "shm-redis.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define N_SLOTS 16384
#define DOWN_US (100 * G_TIME_SPAN_MILLISECOND)
#define MAX_REDIRECTS 8

typedef struct {
  char    *host;
  int      port;
  GMutex   lock;
  GQueue   idle;           /* redisContext *, connected; protected by lock */
  gint64   down_until;     /* monotonic; protected by lock */
  gint64   failed_at;      /* monotonic time of the last failure, or 0; protected by lock */
} Node;

struct _ShmRedis {
  ShmRedisUrl url;
  struct timeval tv;
  gint64   timeout_us;
  gboolean cluster;
  GMutex   lock;
  GHashTable *nodes;       /* "host:port" → Node; never shrinks; protected by lock */
  Node    *seed;
  Node    *slots[N_SLOTS]; /* Cluster: the owner of each slot; protected by lock */
  gint64   map_loaded;     /* monotonic time of the last map load; protected by lock */
  gboolean map_stale;      /* protected by lock */
  GHashTable *logged;      /* error kinds logged once; protected by lock */
};

struct _ShmRedisScript {
  char *source;
  char  sha[41];
};

/* ---- URLs ---------------------------------------------------------------- */

static gboolean
parse_int (const char *s, gsize len, long min, long max, long *out)
{
  char buf[16], *end;

  if (len == 0 || len >= sizeof buf)
    return FALSE;
  memcpy (buf, s, len);
  buf[len] = '\0';
  if (!g_ascii_isdigit (buf[0]))
    return FALSE;
  errno = 0;
  *out = strtol (buf, &end, 10);
  return errno == 0 && *end == '\0' && *out >= min && *out <= max;
}

gboolean
shm_redis_url_parse (const char *url, ShmRedisUrl *out, GError **error)
{
  const char *p, *host, *host_end, *port = NULL, *db = NULL;
  long port_n = 6379, db_n = 0;

  memset (out, 0, sizeof *out);
  if (g_str_has_prefix (url, "rediss://"))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: TLS (rediss://) is not supported by this build's hiredis", url);
      return FALSE;
    }
  if (!g_str_has_prefix (url, "redis://"))
    goto bad;
  host = url + strlen ("redis://");
  if (host[0] == '[')                        /* [v6 address] */
    {
      if ((host_end = strchr (host, ']')) == NULL)
        goto bad;
      host++;
      p = host_end + 1;
    }
  else
    {
      host_end = host + strcspn (host, ":/");
      p = host_end;
    }
  if (host_end == host || memchr (host, '@', host_end - host) != NULL)
    goto bad;
  if (*p == ':')
    {
      port = ++p;
      p += strcspn (p, "/");
      if (!parse_int (port, p - port, 1, 65535, &port_n))
        goto bad;
    }
  if (*p == '/')
    {
      db = ++p;
      p += strlen (p);
      if (!parse_int (db, p - db, 0, G_MAXINT, &db_n))
        goto bad;
    }
  if (*p != '\0')
    goto bad;
  out->host = g_strndup (host, host_end - host);
  out->port = port_n;
  out->db = db_n;
  return TRUE;

bad:
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
               "%s: not a redis://HOST[:PORT][/DB] URL", url);
  return FALSE;
}

void
shm_redis_url_clear (ShmRedisUrl *url)
{
  g_clear_pointer (&url->host, g_free);
}

/* ---- nodes and their pools ---------------------------------------------- */

static void
node_free (gpointer data)
{
  Node *n = data;
  redisContext *c;

  while ((c = g_queue_pop_head (&n->idle)) != NULL)
    redisFree (c);
  g_mutex_clear (&n->lock);
  g_free (n->host);
  g_free (n);
}

/* The node host:port, made on first use.  Called with r->lock held. */
static Node *
node_get_locked (ShmRedis *r, const char *host, int port)
{
  g_autofree char *key = g_strdup_printf ("%s:%d", host, port);
  Node *n = g_hash_table_lookup (r->nodes, key);

  if (n == NULL)
    {
      n = g_new0 (Node, 1);
      n->host = g_strdup (host);
      n->port = port;
      g_mutex_init (&n->lock);
      g_hash_table_insert (r->nodes, g_steal_pointer (&key), n);
    }
  return n;
}

/* Marks n down and drops its idle contexts (they most likely share the
 * fault); a Cluster reloads its map before the next routing. */
static void
node_mark_down (ShmRedis *r, Node *n)
{
  GQueue dead = G_QUEUE_INIT;
  redisContext *c;

  g_mutex_lock (&n->lock);
  n->failed_at = g_get_monotonic_time ();
  n->down_until = n->failed_at + DOWN_US;
  dead = n->idle;
  g_queue_init (&n->idle);
  g_mutex_unlock (&n->lock);
  while ((c = g_queue_pop_head (&dead)) != NULL)
    redisFree (c);
  if (r->cluster)
    {
      g_mutex_lock (&r->lock);
      r->map_stale = TRUE;
      g_mutex_unlock (&r->lock);
    }
}

/* An idle context has no reply pending: readable means closed by the
 * server (EOF) or reset. */
static gboolean
idle_closed (redisContext *c)
{
  struct pollfd p = { .fd = c->fd, .events = POLLIN | POLLRDHUP };

  return poll (&p, 1, 0) != 0;
}

/* A new context to n, with the timeouts and the database; c->err set
 * when it failed (or NULL). */
static redisContext *
connect_node (ShmRedis *r, Node *n)
{
  redisContext *c = redisConnectWithTimeout (n->host, n->port, r->tv);

  if (c != NULL && c->err == 0)
    {
      redisSetTimeout (c, r->tv);
      redisEnableKeepAlive (c);
      if (r->url.db != 0)
        {
          redisReply *rep = redisCommand (c, "SELECT %d", r->url.db);
          if (rep != NULL && rep->type == REDIS_REPLY_ERROR && c->err == 0)
            {
              c->err = REDIS_ERR_OTHER;
              g_strlcpy (c->errstr, rep->str, sizeof c->errstr);
            }
          if (rep != NULL)
            freeReplyObject (rep);
        }
    }
  return c;
}

redisContext *
shm_redis_connect (ShmRedis *r)
{
  redisContext *c = connect_node (r, r->seed);

  if (c != NULL && c->err != 0)
    g_clear_pointer (&c, redisFree);
  return c;
}

/* A connected context of n: 0, or -EIO (down, refused, no answer within
 * the timeout, SELECT refused); *errstr (optional) says why. */
static int
node_take (ShmRedis *r, Node *n, redisContext **out, char **errstr)
{
  redisContext *c;

  g_mutex_lock (&n->lock);
  if (g_get_monotonic_time () < n->down_until)
    {
      g_mutex_unlock (&n->lock);
      if (errstr != NULL)
        *errstr = g_strdup ("marked down after a failure");
      return -EIO;
    }
  c = g_queue_pop_head (&n->idle);
  g_mutex_unlock (&n->lock);
  /* An idle connection the server has closed (it restarted, say) reads
   * as ready: never send on it, whose reply could not come. */
  while (c != NULL && idle_closed (c))
    {
      redisFree (c);
      g_mutex_lock (&n->lock);
      c = g_queue_pop_head (&n->idle);
      g_mutex_unlock (&n->lock);
    }
  if (c != NULL)
    {
      *out = c;
      return 0;
    }

  c = connect_node (r, n);
  if (c == NULL || c->err != 0)
    {
      if (errstr != NULL)
        *errstr = g_strdup (c != NULL ? c->errstr : "out of memory");
      if (c != NULL)
        redisFree (c);
      node_mark_down (r, n);
      return -EIO;
    }
  *out = c;
  return 0;
}

/* Gives c back to n's pool, or frees it (and marks n down) after an error. */
static void
node_give (ShmRedis *r, Node *n, redisContext *c)
{
  if (c->err != 0)
    {
      redisFree (c);
      node_mark_down (r, n);
      return;
    }
  g_mutex_lock (&n->lock);
  g_queue_push_head (&n->idle, c);
  g_mutex_unlock (&n->lock);
}

/* ---- Cluster slots --------------------------------------------------------- */

static guint16
crc16_xmodem (const char *buf, gsize len)
{
  guint16 crc = 0;

  for (gsize i = 0; i < len; i++)
    {
      crc ^= (guint16) ((guint8) buf[i]) << 8;
      for (int k = 0; k < 8; k++)
        crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
    }
  return crc;
}

guint
shm_redis_key_slot (const char *key, gsize len)
{
  const char *open = memchr (key, '{', len), *close;

  /* The hash tag: between the first '{' and the next '}', when not empty. */
  if (open != NULL &&
      (close = memchr (open + 1, '}', len - (open + 1 - key))) != NULL && close > open + 1)
    return crc16_xmodem (open + 1, close - open - 1) % N_SLOTS;
  return crc16_xmodem (key, len) % N_SLOTS;
}

/* Runs a command without routing or retries on n (for CLUSTER SLOTS,
 * INFO, PING).  0 and *reply (not an error reply), or -EIO. */
static int
node_simple (ShmRedis *r, Node *n, const char *cmd, redisReply **reply, char **errstr)
{
  redisContext *c;
  redisReply *rep;
  int err;

  if ((err = node_take (r, n, &c, errstr)) < 0)
    return err;
  rep = redisCommand (c, cmd);
  if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
    {
      if (errstr != NULL)
        *errstr = g_strdup (rep != NULL ? rep->str : c->errstr);
      if (rep != NULL)
        freeReplyObject (rep);
      node_give (r, n, c);
      return -EIO;
    }
  node_give (r, n, c);
  *reply = rep;
  return 0;
}

typedef struct {
  Node  *node;
  gint64 failed_at;
} Candidate;

static gint
by_failure (gconstpointer a, gconstpointer b)
{
  const Candidate *x = a, *y = b;

  return (x->failed_at > y->failed_at) - (x->failed_at < y->failed_at);
}

/* Loads the slot map from the first node that answers CLUSTER SLOTS:
 * the seed and the nodes that never failed first, the most recently
 * failed last (the stable sort keeps the seed ahead of its equals). */
static int
load_slots (ShmRedis *r, char **errstr)
{
  g_autoptr(GArray) candidates = g_array_new (FALSE, FALSE, sizeof (Candidate));
  redisReply *rep = NULL;
  GHashTableIter it;
  gpointer value;
  int err = -EIO;

  g_mutex_lock (&r->lock);
  g_array_append_val (candidates, ((Candidate) { r->seed, 0 }));
  g_hash_table_iter_init (&it, r->nodes);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (value != r->seed)
      g_array_append_val (candidates, ((Candidate) { value, 0 }));
  r->map_loaded = g_get_monotonic_time ();
  r->map_stale = FALSE;
  g_mutex_unlock (&r->lock);

  for (guint i = 0; i < candidates->len; i++)
    {
      Candidate *c = &g_array_index (candidates, Candidate, i);
      g_mutex_lock (&c->node->lock);
      c->failed_at = c->node->failed_at;
      g_mutex_unlock (&c->node->lock);
    }
  g_array_sort (candidates, by_failure);

  for (guint i = 0; i < candidates->len && err < 0; i++)
    {
      if (errstr != NULL)
        g_clear_pointer (errstr, g_free);
      err = node_simple (r, g_array_index (candidates, Candidate, i).node, "CLUSTER SLOTS",
                         &rep, errstr);
    }
  if (err < 0)
    return err;
  if (rep->type != REDIS_REPLY_ARRAY)
    {
      freeReplyObject (rep);
      return -EIO;
    }

  g_mutex_lock (&r->lock);
  for (gsize i = 0; i < rep->elements; i++)
    {
      redisReply *range = rep->element[i], *master;
      if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
          (master = range->element[2])->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
          master->element[0]->type != REDIS_REPLY_STRING)
        continue;
      const char *host = master->element[0]->len > 0 ? master->element[0]->str : r->url.host;
      Node *n = node_get_locked (r, host, master->element[1]->integer);
      for (long long s = range->element[0]->integer; s <= range->element[1]->integer && s < N_SLOTS; s++)
        if (s >= 0)
          r->slots[s] = n;
    }
  g_mutex_unlock (&r->lock);
  freeReplyObject (rep);
  return 0;
}

/* The node for key (NULL: any), reloading a stale map first (at most
 * once per DOWN_US, by one request: the others route by the map they
 * have meanwhile). */
static Node *
route (ShmRedis *r, const char *key, gsize keylen)
{
  gboolean reload = FALSE;
  gint64 now = g_get_monotonic_time ();
  Node *n;

  if (!r->cluster)
    return r->seed;
  g_mutex_lock (&r->lock);
  if (r->map_stale && now - r->map_loaded >= DOWN_US)
    {
      reload = TRUE;
      r->map_stale = FALSE;
      r->map_loaded = now;
    }
  g_mutex_unlock (&r->lock);
  if (reload)
    load_slots (r, NULL);
  g_mutex_lock (&r->lock);
  n = key != NULL ? r->slots[shm_redis_key_slot (key, keylen)] : NULL;
  if (n == NULL)
    n = r->seed;
  g_mutex_unlock (&r->lock);
  return n;
}

/* ---- commands --------------------------------------------------------------- */

/* Logs an unexpected error reply once per kind (its first word). */
static void
log_error (ShmRedis *r, const char *msg)
{
  char *kind = g_strndup (msg, strcspn (msg, " "));
  gboolean first;

  g_mutex_lock (&r->lock);
  first = g_hash_table_add (r->logged, kind);
  g_mutex_unlock (&r->lock);
  if (first)
    g_message ("shmfs: remote: %s", msg);
}

/* Parses "MOVED 3999 127.0.0.1:6381" (or ASK) into the node it names. */
static Node *
redirect_node (ShmRedis *r, const char *msg, guint *slot)
{
  const char *sp = strchr (msg, ' '), *addr, *colon;
  g_autofree char *host = NULL;
  Node *n;

  if (sp == NULL || (addr = strchr (sp + 1, ' ')) == NULL || (colon = strrchr (++addr, ':')) == NULL)
    return NULL;
  *slot = strtoul (sp + 1, NULL, 10) % N_SLOTS;
  host = colon > addr ? g_strndup (addr, colon - addr) : g_strdup (r->url.host);
  g_mutex_lock (&r->lock);
  n = node_get_locked (r, host, atoi (colon + 1));
  g_mutex_unlock (&r->lock);
  return n;
}

typedef enum { ERR_NONE, ERR_NOSCRIPT } Outcome;

/* Runs the formatted command cmd for key: the heart of every request. */
static int
run (ShmRedis *r, const char *key, gsize keylen, const char *cmd, gsize cmdlen,
     redisReply **reply, Outcome *outcome)
{
  gint64 deadline = g_get_monotonic_time () + r->timeout_us;
  Node *ask = NULL;
  int redirects = 0;

  *reply = NULL;
  for (;;)
    {
      Node *n = ask != NULL ? ask : route (r, key, keylen);
      gboolean asking = ask != NULL;
      redisContext *c;
      redisReply *rep = NULL;
      int err, done = 0;

      ask = NULL;
      if ((err = node_take (r, n, &c, NULL)) < 0)
        return err;
      if (asking)
        redisAppendCommand (c, "ASKING");
      if (redisAppendFormattedCommand (c, cmd, cmdlen) != REDIS_OK)
        {
          node_give (r, n, c);
          return -EIO;
        }
      /* Write the whole request first: a failure here is "not applied". */
      do
        if (redisBufferWrite (c, &done) != REDIS_OK)
          {
            node_give (r, n, c);
            return -EIO;
          }
      while (!done);
      if (asking && redisGetReply (c, (void **) &rep) == REDIS_OK)
        g_clear_pointer (&rep, freeReplyObject);
      errno = 0;
      if (c->err == 0)
        redisGetReply (c, (void **) &rep);
      if (rep == NULL)
        {
          /* No reply to a request written whole: a timeout, or the server
           * gone (EOF, reset) perhaps after it ran the command.  Either
           * way it may have been applied: -ETIMEDOUT, never -EIO. */
          node_give (r, n, c);
          return -ETIMEDOUT;
        }
      node_give (r, n, c);

      if (rep->type != REDIS_REPLY_ERROR)
        {
          *reply = rep;
          return 0;
        }

      /* Error replies: those that say the command did not run are retried. */
      const char *msg = rep->str;
      guint slot;
      if ((g_str_has_prefix (msg, "MOVED ") || g_str_has_prefix (msg, "ASK ")) &&
          redirects++ < MAX_REDIRECTS)
        {
          Node *to = redirect_node (r, msg, &slot);
          gboolean moved = msg[0] == 'M';
          freeReplyObject (rep);
          if (to == NULL)
            return -EIO;
          if (moved)
            {
              g_mutex_lock (&r->lock);
              r->slots[slot] = to;
              r->map_stale = TRUE;
              r->map_loaded = 0;
              g_mutex_unlock (&r->lock);
            }
          else
            ask = to;
          continue;
        }
      if (g_str_has_prefix (msg, "TRYAGAIN") || g_str_has_prefix (msg, "CLUSTERDOWN") ||
          g_str_has_prefix (msg, "LOADING"))
        {
          freeReplyObject (rep);
          if (g_get_monotonic_time () + 20 * G_TIME_SPAN_MILLISECOND > deadline)
            return -EIO;
          g_usleep (20 * G_TIME_SPAN_MILLISECOND);
          continue;
        }
      if (g_str_has_prefix (msg, "NOSCRIPT") && outcome != NULL)
        err = (*outcome = ERR_NOSCRIPT, -ENOENT);
      else if (g_str_has_prefix (msg, "OOM"))
        err = -ENOSPC;
      else if (g_str_has_prefix (msg, "BUSY"))
        err = -ETIMEDOUT;
      else
        {
          log_error (r, msg);
          err = -EIO;
        }
      freeReplyObject (rep);
      return err;
    }
}

static const char *
first_key (int argc, const char **argv, const size_t *argvlen, int index, gsize *len)
{
  if (index >= argc)
    return NULL;
  *len = argvlen != NULL ? argvlen[index] : strlen (argv[index]);
  return argv[index];
}

int
shm_redis_command (ShmRedis *r, const char *key, int argc, const char **argv,
                   const size_t *argvlen, redisReply **reply)
{
  char *cmd;
  int len, err;

  if ((len = redisFormatCommandArgv (&cmd, argc, argv, argvlen)) < 0)
    return -ENOMEM;
  err = run (r, key, key != NULL ? strlen (key) : 0, cmd, len, reply, NULL);
  free (cmd);
  return err;
}

int
shm_redis_commandf (ShmRedis *r, const char *key, redisReply **reply, const char *format, ...)
{
  va_list ap;
  char *cmd;
  int len, err;

  va_start (ap, format);
  len = redisvFormatCommand (&cmd, format, ap);
  va_end (ap);
  if (len < 0)
    return -ENOMEM;
  err = run (r, key, key != NULL ? strlen (key) : 0, cmd, len, reply, NULL);
  free (cmd);
  return err;
}

/* ---- scripts --------------------------------------------------------------- */

ShmRedisScript *
shm_redis_script_new (const char *source)
{
  ShmRedisScript *s = g_new0 (ShmRedisScript, 1);
  g_autofree char *sha = g_compute_checksum_for_string (G_CHECKSUM_SHA1, source, -1);

  s->source = g_strdup (source);
  g_strlcpy (s->sha, sha, sizeof s->sha);
  return s;
}

void
shm_redis_script_free (ShmRedisScript *s)
{
  if (s == NULL)
    return;
  g_free (s->source);
  g_free (s);
}

int
shm_redis_eval (ShmRedis *r, ShmRedisScript *s,
                int nkeys, const char **keys, const size_t *keylens,
                int nargs, const char **args, const size_t *arglens,
                redisReply **reply)
{
  int argc = 3 + nkeys + nargs, err;
  g_autofree const char **argv = g_new (const char *, argc);
  g_autofree size_t *argvlen = g_new (size_t, argc);
  char nk[16];
  const char *key;
  gsize keylen = 0;

  g_snprintf (nk, sizeof nk, "%d", nkeys);
  argv[0] = "EVALSHA";
  argv[1] = s->sha;
  argv[2] = nk;
  for (int i = 0; i < nkeys; i++)
    {
      argv[3 + i] = keys[i];
      argvlen[3 + i] = keylens != NULL ? keylens[i] : strlen (keys[i]);
    }
  for (int i = 0; i < nargs; i++)
    {
      argv[3 + nkeys + i] = args[i];
      argvlen[3 + nkeys + i] = arglens != NULL ? arglens[i] : strlen (args[i]);
    }
  for (int i = 0; i < 3; i++)
    argvlen[i] = strlen (argv[i]);
  key = first_key (argc, argv, argvlen, nkeys > 0 ? 3 : argc, &keylen);

  for (int attempt = 0; attempt < 2; attempt++)
    {
      Outcome outcome = ERR_NONE;
      char *cmd;
      int len;

      if ((len = redisFormatCommandArgv (&cmd, argc, argv, argvlen)) < 0)
        return -ENOMEM;
      err = run (r, key, keylen, cmd, len, reply, &outcome);
      free (cmd);
      if (outcome != ERR_NOSCRIPT)
        return err;
      /* Not loaded on that node (never, or SCRIPT FLUSH): it did not run. */
      argv[0] = "EVAL";
      argv[1] = s->source;
      argvlen[0] = 4;
      argvlen[1] = strlen (s->source);
    }
  return -EIO;
}

int
shm_redis_time_ms (ShmRedis *r, const char *key, guint64 *ms)
{
  redisReply *rep;
  int err;

  if ((err = shm_redis_commandf (r, key, &rep, "TIME")) < 0)
    return err;
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
    err = -EIO;
  else
    *ms = g_ascii_strtoull (rep->element[0]->str, NULL, 10) * 1000 +
          g_ascii_strtoull (rep->element[1]->str, NULL, 10) / 1000;
  freeReplyObject (rep);
  return err;
}

/* ---- open, free -------------------------------------------------------------- */

ShmRedis *
shm_redis_open (const char *url, const ShmRedisConfig *config, GError **error)
{
  ShmRedis *r = g_new0 (ShmRedis, 1);
  double timeout = config != NULL && config->timeout > 0 ? config->timeout : 3.0;
  g_autofree char *why = NULL;
  redisReply *rep = NULL;

  if (!shm_redis_url_parse (url, &r->url, error))
    {
      g_free (r);
      return NULL;
    }
  r->timeout_us = timeout * G_USEC_PER_SEC;
  r->tv.tv_sec = r->timeout_us / G_USEC_PER_SEC;
  r->tv.tv_usec = r->timeout_us % G_USEC_PER_SEC;
  g_mutex_init (&r->lock);
  r->nodes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, node_free);
  r->logged = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  r->seed = node_get_locked (r, r->url.host, r->url.port);

  if (node_simple (r, r->seed, "PING", &rep, &why) < 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "%s: no answer from %s:%d: %s",
                   url, r->url.host, r->url.port, why);
      goto fail;
    }
  g_clear_pointer (&rep, freeReplyObject);
  if (node_simple (r, r->seed, "INFO cluster", &rep, &why) == 0 && rep->type == REDIS_REPLY_STRING)
    r->cluster = strstr (rep->str, "cluster_enabled:1") != NULL;
  g_clear_pointer (&rep, freeReplyObject);
  if (r->cluster && r->url.db != 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: a Redis Cluster has only database 0", url);
      goto fail;
    }
  g_clear_pointer (&why, g_free);
  if (r->cluster && load_slots (r, &why) < 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "%s: CLUSTER SLOTS failed: %s",
                   url, why != NULL ? why : "bad reply");
      goto fail;
    }
  return r;

fail:
  shm_redis_free (r);
  return NULL;
}

void
shm_redis_free (ShmRedis *r)
{
  if (r == NULL)
    return;
  g_hash_table_destroy (r->nodes);
  g_hash_table_destroy (r->logged);
  g_mutex_clear (&r->lock);
  shm_redis_url_clear (&r->url);
  g_free (r);
}

gboolean
shm_redis_is_cluster (ShmRedis *r)
{
  return r->cluster;
}
