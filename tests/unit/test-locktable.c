/* Unit tests of core/shm-locktable: the lock of one object, its owners,
 * modes and queue of waiters (docs/semantics.md "Locks"). */
#include "config.h"

#include <errno.h>

#include "shm-locktable.h"

/* A request as the daemon would make it: answered once, at some point. */
typedef struct {
  const char *name;
  GString    *log;        /* where answers are written, in order */
  int         answers;
  int         err;
  guint64     owner;
  /* For holds: what the function does once granted. */
  ShmLockTable *table;
  gboolean    release_at_once;
  int        *depth;      /* nesting of hold functions */
  int         max_depth;
} Req;

static void
answer (gpointer user_data, int err, guint64 owner)
{
  Req *r = user_data;

  r->answers++;
  r->err = err;
  r->owner = owner;
  g_string_append_printf (r->log, "%s%s ", r->name, err == 0 ? "" : "!");
  if (r->release_at_once && err == 0)
    {
      (*r->depth)++;
      r->max_depth = MAX (r->max_depth, *r->depth);
      shm_locktable_release (r->table, owner);
      (*r->depth)--;
    }
}

static Req
req (const char *name, GString *log)
{
  Req r = { name, log, 0, 1, 0, NULL, FALSE, NULL, 0 };
  return r;
}

/* Locks at once or not at all; returns the verdict. */
static int
try_lock (ShmLockTable *t, Req *r, guint64 owner, pid_t pid, ShmLockMode mode)
{
  return shm_locktable_lock (t, r, owner, pid, mode, FALSE, answer, r);
}

/* Locks, waiting if need be; the answer comes through r. */
static void
lock_wait (ShmLockTable *t, Req *r, guint64 owner, pid_t pid, ShmLockMode mode)
{
  g_assert_cmpint (shm_locktable_lock (t, r, owner, pid, mode, TRUE, answer, r), ==, 0);
}

static void
assert_granted (const Req *r, guint64 owner)
{
  g_assert_cmpint (r->answers, ==, 1);
  g_assert_cmpint (r->err, ==, 0);
  g_assert_cmpuint (r->owner, ==, owner);
}

static void
assert_waiting (const Req *r)
{
  g_assert_cmpint (r->answers, ==, 0);
}

static void
assert_refused (const Req *r)
{
  g_assert_cmpint (r->answers, ==, 1);
  g_assert_cmpint (r->err, ==, -EINTR);
  g_assert_cmpuint (r->owner, ==, 0);
}

static void
test_conflicts_per_mode (void)
{
  static const struct {
    ShmLockMode held, wanted;
    gboolean conflict;
  } cases[] = {
    { SHM_LOCK_READ, SHM_LOCK_READ, FALSE },
    { SHM_LOCK_READ, SHM_LOCK_WRITE, TRUE },
    { SHM_LOCK_WRITE, SHM_LOCK_READ, TRUE },
    { SHM_LOCK_WRITE, SHM_LOCK_WRITE, TRUE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GString) log = g_string_new (NULL);
      ShmLockTable *t = shm_locktable_new (NULL);
      Req a = req ("a", log), b = req ("b", log);

      g_assert_cmpint (try_lock (t, &a, 1, 100, cases[i].held), ==, 0);
      assert_granted (&a, 1);
      if (cases[i].conflict)
        {
          g_assert_cmpint (try_lock (t, &b, 2, 200, cases[i].wanted), ==, -EAGAIN);
          g_assert_cmpint (b.answers, ==, 0);
        }
      else
        {
          g_assert_cmpint (try_lock (t, &b, 2, 200, cases[i].wanted), ==, 0);
          assert_granted (&b, 2);
        }
      shm_locktable_free (t);
    }
}

static void
test_same_owner_never_conflicts (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  ShmLockTable *t = shm_locktable_new (NULL);
  Req a = req ("a", log), a2 = req ("a2", log), b = req ("b", log);

  g_assert_cmpint (try_lock (t, &a, 1, 100, SHM_LOCK_WRITE), ==, 0);
  g_assert_cmpint (try_lock (t, &a2, 1, 100, SHM_LOCK_WRITE), ==, 0);
  /* Still one lock: one release frees the object. */
  shm_locktable_release (t, 1);
  g_assert_cmpint (try_lock (t, &b, 2, 200, SHM_LOCK_WRITE), ==, 0);
  shm_locktable_free (t);
}

static void
test_upgrade_downgrade (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  ShmLockTable *t = shm_locktable_new (NULL);
  Req a = req ("a", log), up = req ("up", log), b = req ("b", log), down = req ("down", log);
  Req c = req ("c", log), up2 = req ("up2", log);
  ShmLockMode mode;

  /* Alone: read, then write (upgrade) at once. */
  g_assert_cmpint (try_lock (t, &a, 1, 100, SHM_LOCK_READ), ==, 0);
  g_assert_cmpint (try_lock (t, &up, 1, 100, SHM_LOCK_WRITE), ==, 0);
  g_assert_true (shm_locktable_test (t, 2, SHM_LOCK_READ, &mode, NULL));
  g_assert_cmpint (mode, ==, SHM_LOCK_WRITE);
  /* A reader waits; the downgrade lets it in, after the downgrade's answer. */
  lock_wait (t, &b, 2, 200, SHM_LOCK_READ);
  assert_waiting (&b);
  g_assert_cmpint (try_lock (t, &down, 1, 100, SHM_LOCK_READ), ==, 0);
  assert_granted (&b, 2);
  g_assert_cmpstr (log->str, ==, "a up down b ");
  g_assert_true (shm_locktable_test (t, 3, SHM_LOCK_WRITE, &mode, NULL));
  g_assert_cmpint (mode, ==, SHM_LOCK_READ);
  /* With another reader in, an upgrade conflicts. */
  g_assert_cmpint (try_lock (t, &c, 1, 100, SHM_LOCK_WRITE), ==, -EAGAIN);
  lock_wait (t, &up2, 1, 100, SHM_LOCK_WRITE);
  assert_waiting (&up2);
  shm_locktable_release (t, 2);
  assert_granted (&up2, 1);
  shm_locktable_free (t);
}

static void
test_release_grants_in_order (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  ShmLockTable *t = shm_locktable_new (NULL);
  Req a = req ("a", log), w1 = req ("w1", log), w2 = req ("w2", log);
  Req r1 = req ("r1", log), r2 = req ("r2", log);

  g_assert_cmpint (try_lock (t, &a, 1, 100, SHM_LOCK_WRITE), ==, 0);
  lock_wait (t, &w1, 2, 200, SHM_LOCK_WRITE);
  lock_wait (t, &r1, 3, 300, SHM_LOCK_READ);
  lock_wait (t, &w2, 4, 400, SHM_LOCK_WRITE);
  lock_wait (t, &r2, 5, 500, SHM_LOCK_READ);
  g_assert_cmpstr (log->str, ==, "a ");
  /* The oldest waiter first; the others still conflict with it. */
  shm_locktable_release (t, 1);
  g_assert_cmpstr (log->str, ==, "a w1 ");
  /* Both readers, oldest first, past the writer queued between them. */
  shm_locktable_release (t, 2);
  g_assert_cmpstr (log->str, ==, "a w1 r1 r2 ");
  assert_waiting (&w2);
  shm_locktable_release (t, 3);
  assert_waiting (&w2);
  shm_locktable_release (t, 5);
  assert_granted (&w2, 4);
  g_assert_cmpstr (log->str, ==, "a w1 r1 r2 w2 ");
  shm_locktable_free (t);
}

static void
test_eagain_without_wait (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  ShmLockTable *t = shm_locktable_new (NULL);
  Req a = req ("a", log), b = req ("b", log), c = req ("c", log);

  g_assert_cmpint (try_lock (t, &a, 1, 100, SHM_LOCK_WRITE), ==, 0);
  g_assert_cmpint (try_lock (t, &b, 2, 200, SHM_LOCK_READ), ==, -EAGAIN);
  /* Not queued: a release grants nothing to it. */
  shm_locktable_release (t, 1);
  g_assert_cmpint (b.answers, ==, 0);
  g_assert_false (shm_locktable_cancel (t, &b));
  g_assert_cmpint (try_lock (t, &c, 2, 200, SHM_LOCK_WRITE), ==, 0);
  g_assert_cmpstr (log->str, ==, "a c ");
  shm_locktable_free (t);
}

static void
test_getlk_reports_conflict (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  ShmLockTable *t = shm_locktable_new (NULL);
  Req a = req ("a", log), b = req ("b", log);
  ShmLockMode mode = SHM_LOCK_READ;
  pid_t pid = 0;

  g_assert_false (shm_locktable_test (t, 1, SHM_LOCK_WRITE, &mode, &pid));
  g_assert_cmpint (try_lock (t, &a, 1, 100, SHM_LOCK_WRITE), ==, 0);
  /* The owner's own lock is no conflict. */
  g_assert_false (shm_locktable_test (t, 1, SHM_LOCK_WRITE, NULL, NULL));
  g_assert_true (shm_locktable_test (t, 2, SHM_LOCK_READ, &mode, &pid));
  g_assert_cmpint (mode, ==, SHM_LOCK_WRITE);
  g_assert_cmpint (pid, ==, 100);
  shm_locktable_release (t, 1);
  g_assert_cmpint (try_lock (t, &b, 3, 300, SHM_LOCK_READ), ==, 0);
  g_assert_false (shm_locktable_test (t, 2, SHM_LOCK_READ, NULL, NULL));
  g_assert_true (shm_locktable_test (t, 2, SHM_LOCK_WRITE, &mode, &pid));
  g_assert_cmpint (mode, ==, SHM_LOCK_READ);
  g_assert_cmpint (pid, ==, 300);
  shm_locktable_free (t);
}

static void
test_hold_waits_for_other_processes (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  ShmLockTable *t = shm_locktable_new (NULL);
  Req a = req ("a", log), mine = req ("mine", log), other = req ("other", log);
  Req b = req ("b", log);
  guint64 token;

  /* Process 100 holds a read lock: its own hold goes in at once ... */
  g_assert_cmpint (try_lock (t, &a, 1, 100, SHM_LOCK_READ), ==, 0);
  shm_locktable_hold (t, &mine, 100, answer, &mine);
  g_assert_cmpint (mine.answers, ==, 1);
  g_assert_cmpint (mine.err, ==, 0);
  token = mine.owner;
  g_assert_cmpuint (token, !=, 0);
  g_assert_cmpuint (token, !=, 1);
  /* ... and holds exclusively: another owner cannot lock. */
  g_assert_cmpint (try_lock (t, &b, 2, 200, SHM_LOCK_READ), ==, -EAGAIN);
  shm_locktable_release (t, token);
  /* Another process's hold waits while 100 holds anything. */
  shm_locktable_hold (t, &other, 200, answer, &other);
  assert_waiting (&other);
  shm_locktable_release (t, 1);
  g_assert_cmpint (other.answers, ==, 1);
  g_assert_cmpint (other.err, ==, 0);
  /* Each hold has a token of its own. */
  g_assert_cmpuint (other.owner, !=, token);
  g_assert_cmpuint (other.owner, !=, 0);
  shm_locktable_release (t, other.owner);
  g_assert_false (shm_locktable_test (t, 9, SHM_LOCK_WRITE, NULL, NULL));
  shm_locktable_free (t);
}

static void
test_holds_never_nest (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  ShmLockTable *t = shm_locktable_new (NULL);
  Req a = req ("a", log), h[4];
  int depth = 0;
  char names[4][3];

  g_assert_cmpint (try_lock (t, &a, 1, 100, SHM_LOCK_WRITE), ==, 0);
  for (int i = 0; i < 4; i++)
    {
      g_snprintf (names[i], sizeof names[i], "h%d", i);
      h[i] = req (names[i], log);
      h[i].table = t;
      h[i].release_at_once = TRUE;
      h[i].depth = &depth;
      shm_locktable_hold (t, &h[i], 200 + i, answer, &h[i]);
      assert_waiting (&h[i]);
    }
  /* Each hold lets go inside its function, which grants the next: they
   * run one after the other, in order, from the releasing call. */
  shm_locktable_release (t, 1);
  g_assert_cmpstr (log->str, ==, "a h0 h1 h2 h3 ");
  for (int i = 0; i < 4; i++)
    g_assert_cmpint (h[i].max_depth, ==, 1);
  shm_locktable_free (t);
}

static void
test_abort_answers_every_waiter (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  ShmLockTable *t = shm_locktable_new (NULL);
  Req a = req ("a", log), b = req ("b", log), c = req ("c", log), d = req ("d", log);

  g_assert_cmpint (try_lock (t, &a, 1, 100, SHM_LOCK_WRITE), ==, 0);
  lock_wait (t, &b, 2, 200, SHM_LOCK_READ);
  shm_locktable_hold (t, &c, 300, answer, &c);
  lock_wait (t, &d, 4, 400, SHM_LOCK_WRITE);
  shm_locktable_abort (t);
  assert_refused (&b);
  assert_refused (&c);
  assert_refused (&d);
  g_assert_cmpstr (log->str, ==, "a b! c! d! ");
  /* The holder keeps its lock; nothing is left to answer. */
  g_assert_true (shm_locktable_test (t, 2, SHM_LOCK_READ, NULL, NULL));
  shm_locktable_release (t, 1);
  g_assert_cmpstr (log->str, ==, "a b! c! d! ");
  shm_locktable_free (t);
}

static void
test_free_answers_waiters (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  ShmLockTable *t = shm_locktable_new (NULL);
  Req a = req ("a", log), b = req ("b", log);

  g_assert_cmpint (try_lock (t, &a, 1, 100, SHM_LOCK_WRITE), ==, 0);
  lock_wait (t, &b, 2, 200, SHM_LOCK_WRITE);
  shm_locktable_free (t);
  assert_refused (&b);
}

static void
test_cancel_withdraws_one (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  ShmLockTable *t = shm_locktable_new (NULL);
  Req a = req ("a", log), b = req ("b", log), c = req ("c", log), d = req ("d", log);

  g_assert_cmpint (try_lock (t, &a, 1, 100, SHM_LOCK_WRITE), ==, 0);
  lock_wait (t, &b, 2, 200, SHM_LOCK_WRITE);
  shm_locktable_hold (t, &c, 300, answer, &c);
  lock_wait (t, &d, 4, 400, SHM_LOCK_WRITE);
  g_assert_true (shm_locktable_cancel (t, &b));
  assert_refused (&b);
  g_assert_true (shm_locktable_cancel (t, &c));
  assert_refused (&c);
  g_assert_false (shm_locktable_cancel (t, &b));
  g_assert_cmpint (b.answers, ==, 1);
  /* The one left is granted at the release. */
  shm_locktable_release (t, 1);
  assert_granted (&d, 4);
  g_assert_cmpstr (log->str, ==, "a b! c! d ");
  shm_locktable_free (t);
}

static gconstpointer withdrawn_waiter;

static gboolean
withdrawn (gconstpointer waiter)
{
  return waiter == withdrawn_waiter;
}

static void
test_withdrawn_before_queued (void)
{
  g_autoptr (GString) log = g_string_new (NULL);
  ShmLockTable *t = shm_locktable_new (withdrawn);
  Req a = req ("a", log), b = req ("b", log), c = req ("c", log), d = req ("d", log);

  /* Granted at once: never asked. */
  withdrawn_waiter = &a;
  g_assert_cmpint (shm_locktable_lock (t, &a, 1, 100, SHM_LOCK_WRITE, TRUE, answer, &a), ==, 0);
  assert_granted (&a, 1);
  /* An interrupt that came before the queuing refuses it at once. */
  withdrawn_waiter = &b;
  lock_wait (t, &b, 2, 200, SHM_LOCK_WRITE);
  assert_refused (&b);
  withdrawn_waiter = &c;
  shm_locktable_hold (t, &c, 300, answer, &c);
  assert_refused (&c);
  g_assert_false (shm_locktable_cancel (t, &b));
  /* Others wait as usual. */
  withdrawn_waiter = NULL;
  lock_wait (t, &d, 4, 400, SHM_LOCK_WRITE);
  assert_waiting (&d);
  shm_locktable_release (t, 1);
  assert_granted (&d, 4);
  shm_locktable_free (t);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/locktable/conflicts-per-mode", test_conflicts_per_mode);
  g_test_add_func ("/locktable/same-owner-never-conflicts", test_same_owner_never_conflicts);
  g_test_add_func ("/locktable/upgrade-downgrade", test_upgrade_downgrade);
  g_test_add_func ("/locktable/release-grants-in-order", test_release_grants_in_order);
  g_test_add_func ("/locktable/eagain-without-wait", test_eagain_without_wait);
  g_test_add_func ("/locktable/getlk-reports-conflict", test_getlk_reports_conflict);
  g_test_add_func ("/locktable/hold-waits-for-other-processes", test_hold_waits_for_other_processes);
  g_test_add_func ("/locktable/holds-never-nest", test_holds_never_nest);
  g_test_add_func ("/locktable/abort-answers-every-waiter", test_abort_answers_every_waiter);
  g_test_add_func ("/locktable/free-answers-waiters", test_free_answers_waiters);
  g_test_add_func ("/locktable/cancel-withdraws-one", test_cancel_withdraws_one);
  g_test_add_func ("/locktable/withdrawn-before-queued", test_withdrawn_before_queued);
  return g_test_run ();
}
