/* hiredis 0.14.1: are connect and command times bounded? */
#include <hiredis.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now (void) { struct timespec t; clock_gettime (CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main (int argc, char **argv)
{
  struct timeval tv = { 0, 300000 };
  double t0 = now ();
  redisContext *c = redisConnectWithTimeout ("127.0.0.1", atoi (argv[1]), tv);
  printf ("connect: err=%d (%s) %.3fs\n", c->err, c->errstr, now () - t0);
  t0 = now ();
  redisReply *r = redisCommand (c, "BLPOP nokey 1");
  printf ("BLPOP nokey 1 with only the connect timeout: reply=%p err=%d '%s' errno=%d %.3fs\n", (void *) r, c->err, c->errstr, errno, now () - t0);
  if (r) freeReplyObject (r);
  int rc = redisReconnect (c);
  printf ("redisReconnect: %d err=%d\n", rc, c->err);
  redisSetTimeout (c, tv);
  t0 = now ();
  r = redisCommand (c, "BLPOP nokey 1");
  printf ("after redisSetTimeout: reply=%p err=%d '%s' %.3fs\n", (void *) r, c->err, c->errstr, now () - t0);
  redisFree (c);
  t0 = now ();
  c = redisConnectWithTimeout ("10.255.255.1", 6379, tv);
  printf ("blackhole connect: err=%d '%s' %.3fs\n", c->err, c->errstr, now () - t0);
  redisFree (c);
  t0 = now ();
  c = redisConnectWithTimeout ("127.0.0.1", 1, tv);
  printf ("refused connect: err=%d '%s' %.3fs\n", c->err, c->errstr, now () - t0);
  redisFree (c);
  return 0;
}
