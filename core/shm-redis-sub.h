/* shm-redis-sub.h — one connection subscribed to Redis channels, on a
 * thread of its own (shm-redis-sub.c).  Messages published on any node
 * reach it (PUBLISH is broadcast in a Cluster).  After every connect it
 * calls the function with channel NULL: messages may have been missed
 * while it was away, so whatever they would have said must be checked.
 */
#pragma once

#include <glib.h>

#include "shm-redis.h"

G_BEGIN_DECLS

typedef struct _ShmRedisSub ShmRedisSub;

/* channel and message (len bytes), or NULL and 0 after a (re)connect;
 * called on the subscriber's thread. */
typedef void (*ShmRedisSubFunc) (const char *channel, const char *message, gsize len,
                                 gpointer user_data);

/* Starts the thread; it connects as r does and keeps reconnecting. */
ShmRedisSub *shm_redis_sub_new (ShmRedis *r, ShmRedisSubFunc func, gpointer user_data);
/* Stops the thread; func is not called any more once this returns. */
void shm_redis_sub_free (ShmRedisSub *sub);
/* Subscribes to channel, or drops it (counted: as many drops as adds). */
void shm_redis_sub_add (ShmRedisSub *sub, const char *channel);
void shm_redis_sub_remove (ShmRedisSub *sub, const char *channel);

G_END_DECLS
