/* timers.c — one thread running a GMainContext of timeouts. */
#include "config.h"

#include "timers.h"

struct _ShmfsTimers {
  GMainContext *context;
  GMainLoop    *loop;
  GThread      *thread;
};

static gpointer
run (gpointer data)
{
  ShmfsTimers *t = data;

  g_main_context_push_thread_default (t->context);
  g_main_loop_run (t->loop);
  g_main_context_pop_thread_default (t->context);
  return NULL;
}

ShmfsTimers *
shmfs_timers_new (void)
{
  ShmfsTimers *t = g_new0 (ShmfsTimers, 1);

  t->context = g_main_context_new ();
  t->loop = g_main_loop_new (t->context, FALSE);
  t->thread = g_thread_new ("shmfs-timers", run, t);
  return t;
}

static gboolean
quit (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

void
shmfs_timers_free (ShmfsTimers *t)
{
  GSource *source;

  if (t == NULL)
    return;
  source = g_idle_source_new ();
  g_source_set_callback (source, quit, t->loop, NULL);
  g_source_attach (source, t->context);
  g_source_unref (source);
  g_thread_join (t->thread);
  g_main_loop_unref (t->loop);
  /* Destroys the timers still attached: their destroy functions run. */
  g_main_context_unref (t->context);
  g_free (t);
}

void
shmfs_timers_add (ShmfsTimers *t, guint ms, GSourceFunc fn, gpointer data, GDestroyNotify destroy)
{
  GSource *source;

  if (t == NULL)
    {
      /* Stopping, or stopped: as if freed before it ran. */
      if (destroy != NULL)
        destroy (data);
      return;
    }
  source = g_timeout_source_new (ms);

  g_source_set_callback (source, fn, data, destroy);
  g_source_attach (source, t->context);
  g_source_unref (source);
}
