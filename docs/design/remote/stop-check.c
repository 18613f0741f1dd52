#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now (void) { struct timespec t; clock_gettime (CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main (int argc, char **argv)
{
  struct timeval tv = { 0, 500000 };
  redisContext *c = redisConnectWithTimeout ("127.0.0.1", atoi (argv[1]), tv);
  redisSetTimeout (c, tv);
  system (argv[2]);   /* stop the server */
  double t0 = now ();
  redisReply *r = redisCommand (c, "INCR k");
  printf ("INCR to a stopped server: reply=%p err=%d '%s' %.3fs\n", (void *) r, c->err, c->errstr, now () - t0);
  t0 = now ();
  redisContext *c2 = redisConnectWithTimeout ("127.0.0.1", atoi (argv[1]), tv);
  printf ("new connect to a stopped server: err=%d '%s' %.3fs\n", c2->err, c2->errstr, now () - t0);
  if (!c2->err) { redisSetTimeout (c2, tv); t0 = now (); r = redisCommand (c2, "PING"); printf ("  PING on it: reply=%p err=%d '%s' %.3fs\n", (void *) r, c2->err, c2->errstr, now () - t0); }
  system (argv[3]);   /* continue it */
  t0 = now ();
  int rc = redisReconnect (c);
  r = redisCommand (c, "GET k");
  printf ("after SIGCONT, redisReconnect=%d, GET k = %s (%.3fs)\n", rc, r ? r->str : c->errstr, now () - t0);
  return 0;
}
