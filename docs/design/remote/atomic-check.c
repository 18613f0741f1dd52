/* Compares the Lua atomic script on a real redis-server with core/shm-atomic.c
 * (the local implementation), bit for bit, on random and special cases. */
#include <hiredis.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shm-atomic.h"

static guint64 rnd (void) { return ((guint64) g_random_int () << 32) | g_random_int (); }

static double special_double (void)
{
  static const double sp[] = { 0.0, -0.0, 1.0, -1.0, 0.5, 1e300, -1e300, 3.4e38, 3.5e38, 1e-45, 1e-310,
                               INFINITY, -INFINITY, NAN, 0.1, 16777217.0, 9007199254740993.0, 1e-30 };
  guint64 b;
  double d;
  switch (g_random_int_range (0, 3))
    {
    case 0: return sp[g_random_int_range (0, G_N_ELEMENTS (sp))];
    case 1: b = rnd (); memcpy (&d, &b, 8); return d;
    default: return g_random_double_range (-1e6, 1e6);
    }
}

int main (int argc, char **argv)
{
  redisContext *c = redisConnectWithTimeout ("127.0.0.1", atoi (argv[1]), (struct timeval) { 2, 0 });
  g_autofree char *src = NULL;
  gsize srclen;
  int n = atoi (argv[3]), bad = 0, done = 0;
  static const ShmElem elems[] = { SHM_ELEM_I8, SHM_ELEM_U8, SHM_ELEM_I16, SHM_ELEM_U16, SHM_ELEM_I32,
                                   SHM_ELEM_U32, SHM_ELEM_I64, SHM_ELEM_U64, SHM_ELEM_BOOL, SHM_ELEM_F32, SHM_ELEM_F64 };
  if (c == NULL || c->err) { fprintf (stderr, "connect\n"); return 1; }
  g_file_get_contents (argv[2], &src, &srclen, NULL);
  redisReply *r = redisCommand (c, "SCRIPT LOAD %b", src, srclen);
  char sha[41]; strcpy (sha, r->str); freeReplyObject (r);

  for (int k = 0; k < n; k++)
    {
      ShmType t = { .elem = elems[g_random_int_range (0, G_N_ELEMENTS (elems))] };
      gsize w = shm_type_elem_size (&t);
      gboolean fl = shm_type_is_float (&t);
      ShmAtomic a = { .op = g_random_int_range (0, 5) }, ref;
      guint8 buf[8] = { 0 }, before[8];
      guint64 ob = rnd ();
      if (t.elem == SHM_ELEM_BOOL) ob &= 1;
      if (fl && g_random_boolean ()) { double d = special_double (); if (w == 4) { float f = d; memcpy (&ob, &f, 4); } else memcpy (&ob, &d, 8); }
      memcpy (buf, &ob, w);
      if (fl) { a.is_float = g_random_int_range (0, 4) != 0; }
      if (a.is_float) { a.operand.f = special_double (); a.expected.f = g_random_boolean () ? special_double () : 0; }
      else { a.operand.u = g_random_boolean () ? rnd () : (guint64) g_random_int_range (-300, 300);
             a.expected.u = g_random_boolean () ? rnd () : ob; }
      if (t.elem == SHM_ELEM_BOOL) { a.operand.u &= 1; }
      if (a.op == SHM_ATOMIC_CAS && g_random_boolean ()) {   /* make cas hit */
        if (fl) { if (a.is_float) { if (w == 4) { float f; memcpy (&f, &ob, 4); a.expected.f = f; } else memcpy (&a.expected.f, &ob, 8); } }
        else a.expected.u = ob; }
      if (shm_atomic_check (&t, &a) < 0) { k--; continue; }
      /* the daemon's encoding of operand/expected: the local (type) casts */
      guint8 argb[8], expb[8];
      if (fl) {
        double o = a.is_float ? a.operand.f : (double) a.operand.i, e = a.is_float ? a.expected.f : (double) a.expected.i;
        if (w == 4) { float of = o, ef = e; memcpy (argb, &of, 4); memcpy (expb, &ef, 4); }
        else { memcpy (argb, &o, 8); memcpy (expb, &e, 8); }
      } else { memcpy (argb, &a.operand.u, w); memcpy (expb, &a.expected.u, w); }
      memcpy (before, buf, 8);
      ref = a;
      shm_atomic_apply_elem (&t, buf, &ref);
      /* remote */
      redisReply *s = redisCommand (c, "SET v %b", before, w); freeReplyObject (s);
      char opstr[4], wstr[4]; snprintf (opstr, 4, "%d", a.op); snprintf (wstr, 4, "%zu", w);
      const char *kind = fl ? (w == 4 ? "f4" : "f8") : "i";
      const char *av[] = { "EVALSHA", sha, "3", "v", "m", "l", opstr, kind, "0", wstr, (char *) argb, (char *) expb, "h:1", "{v}:ev" };
      size_t al[] = { 7, 40, 1, 1, 1, 1, strlen (opstr), strlen (kind), 1, strlen (wstr), w, w, 3, 6 };
      redisReply *e = redisCommandArgv (c, 14, av, al);
      if (e == NULL || e->type != REDIS_REPLY_ARRAY) { fprintf (stderr, "reply: %s\n", e ? e->str : c->errstr); return 1; }
      redisReply *g = redisCommand (c, "GET v");
      gboolean ok = e->element[0]->integer == 0 && e->element[1]->len == w && memcmp (e->element[1]->str, before, w) == 0
                    && memcmp (g->str, buf, w) == 0 && (guint64) e->element[2]->integer == (guint64) ref.swapped;
      if (!ok && bad++ < 10)
        {
          guint64 rb = 0, lb = 0; memcpy (&rb, g->str, w); memcpy (&lb, buf, w);
          fprintf (stderr, "MISMATCH elem=%d op=%d isf=%d old=%016" G_GINT64_MODIFIER "x arg=%016" G_GINT64_MODIFIER "x local=%016" G_GINT64_MODIFIER "x remote=%016" G_GINT64_MODIFIER "x sw %d/%lld\n",
                   t.elem, a.op, a.is_float, ob, a.operand.u, lb, rb, ref.swapped, e->element[2]->integer);
        }
      done++;
      freeReplyObject (e); freeReplyObject (g);
    }
  printf ("%d cases, %d mismatches\n", done, bad);
  return bad != 0;
}
