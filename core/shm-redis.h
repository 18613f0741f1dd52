/* shm-redis.h — a connection to a Redis server or Cluster: URLs, a pool
 * of synchronous connections per node with connect and command timeouts,
 * Redis errors as errnos, scripts run by EVALSHA, and Cluster routing by
 * key slot (docs/design/remote.md §3.8, §3.9).
 *
 * Thread-safe: any thread may run commands at once; each takes a
 * connection of the node it needs from that node's pool.  Nothing here
 * holds a lock while waiting for the network.
 */
#pragma once

#include <glib.h>
#include <hiredis.h>

G_BEGIN_DECLS

typedef struct _ShmRedis ShmRedis;
typedef struct _ShmRedisScript ShmRedisScript;

typedef struct {
  double timeout;            /* seconds, for connecting and for each reply */
} ShmRedisConfig;

/* A parsed redis://HOST[:PORT][/DB] (port 6379, db 0 by default). */
typedef struct {
  char  *host;
  int    port;
  int    db;
} ShmRedisUrl;

/* Parses url; FALSE and a one-line message in *error for anything else
 * (rediss://, a bad port or db, trailing junk). */
gboolean shm_redis_url_parse (const char *url, ShmRedisUrl *out, GError **error);
void shm_redis_url_clear (ShmRedisUrl *url);

/* Connects to url and checks the server answers (PING) within the
 * timeout; finds out whether it is a Cluster node (then db must be 0) and
 * loads the slot map.  NULL and a one-line message in *error otherwise. */
ShmRedis *shm_redis_open (const char *url, const ShmRedisConfig *config, GError **error);
void shm_redis_free (ShmRedis *r);
gboolean shm_redis_is_cluster (ShmRedis *r);

/* The Cluster slot of key: CRC16 of its hash tag, modulo 16384. */
guint shm_redis_key_slot (const char *key, gsize len);

/* Runs one command on the node that owns key (any node when key is NULL);
 * argvlen may be NULL for NUL-terminated arguments.  Returns 0 and the
 * reply in *reply (freeReplyObject() it; never an error reply), or -errno:
 *   -EIO        not connected, refused, reset before the request was
 *               written whole, or the node was marked down (not applied);
 *   -ETIMEDOUT  no reply: none within the timeout, or the connection lost
 *               after the request was written (it may or may not have run);
 *   -ENOSPC     OOM (maxmemory);
 *   -EIO        any other error reply (logged once per kind).
 * MOVED/ASK are followed, TRYAGAIN/CLUSTERDOWN/LOADING retried until the
 * timeout; nothing that may have run is sent twice. */
int shm_redis_command (ShmRedis *r, const char *key, int argc, const char **argv,
                       const size_t *argvlen, redisReply **reply);
/* The same with a printf-like format (hiredis' redisCommand syntax). */
int shm_redis_commandf (ShmRedis *r, const char *key, redisReply **reply, const char *format, ...);

/* A Lua script, loaded on first use (EVALSHA, then EVAL on NOSCRIPT). */
ShmRedisScript *shm_redis_script_new (const char *source);
void shm_redis_script_free (ShmRedisScript *s);

/* Runs s with nkeys keys (all in one slot; routed by keys[0]) and nargs
 * arguments; lengths may be NULL for NUL-terminated strings.  Errors as
 * shm_redis_command; an error raised by the script itself is -EIO. */
int shm_redis_eval (ShmRedis *r, ShmRedisScript *s,
                    int nkeys, const char **keys, const size_t *keylens,
                    int nargs, const char **args, const size_t *arglens,
                    redisReply **reply);

/* A connection of its own to the server of the URL (a Cluster's node), with
 * the timeouts and the database, for a subscriber; NULL when it fails.
 * redisFree() it. */
redisContext *shm_redis_connect (ShmRedis *r);

/* The server's clock in ms (TIME), for deadlines and leases. */
int shm_redis_time_ms (ShmRedis *r, const char *key, guint64 *ms);

G_END_DECLS
