/* shm-pages.h — the page bookkeeping of an object's kernel page cache.
 *
 * In cached mode the kernel keeps pages of each binary view, and the
 * daemon must know which of them to read back or store into (fs/pagecache.c).
 * This is that arithmetic, with no FUSE in it: per page of an object, one
 * bit "maybe cached", one bit "a daemon store reached it since its last
 * writeback", and a write generation.  Ranges are in bytes and clipped to
 * the object; the last page may be partial.  Each table is allocated at
 * its first mark, so an object nobody reads or writes costs nothing.
 * Not thread-safe: the caller locks.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _ShmPages ShmPages;

/* Bookkeeping of nbytes bytes in pages of page_size bytes, nothing marked. */
ShmPages *shm_pages_new (guint64 nbytes, gsize page_size);
void shm_pages_free (ShmPages *pages);

/* How many pages the object spans, the last one maybe partial. */
guint64 shm_pages_count (const ShmPages *pages);

/* Marks the pages of [off, off+len) maybe cached. */
void shm_pages_mark_cached (ShmPages *pages, guint64 off, guint64 len);
/* Whether page (an index) may be cached; FALSE past the last page. */
gboolean shm_pages_is_cached (const ShmPages *pages, guint64 page);
/* Whether any page may be cached. */
gboolean shm_pages_any_cached (const ShmPages *pages);
/* Forgets every cached and stored mark (the kernel dropped its pages). */
void shm_pages_forget_cache (ShmPages *pages);

/* Finds the first run of maybe-cached pages that meets [off, end), at
 * most max_len bytes of pages long (at least one page); sets it, clipped to
 * [off, end), in [*run_off, *run_end).  Returns FALSE when there is none. */
gboolean shm_pages_next_cached_run (const ShmPages *pages, guint64 off, guint64 end,
                                    guint64 max_len, guint64 *run_off, guint64 *run_end);
/* Where the run from off (< end) of pages alike (all maybe cached, or all
 * not: *cached says which) ends, within end; it grows a page at a time
 * while it is shorter than max_len bytes. */
guint64 shm_pages_run_end (const ShmPages *pages, guint64 off, guint64 end, guint64 max_len,
                           gboolean *cached);

/* Marks the pages of [off, off+len) stored. */
void shm_pages_mark_stored (ShmPages *pages, guint64 off, guint64 len);
/* Clears the stored marks of the pages of [off, off+len); returns whether
 * any was set, and then the span of those pages, clipped to the range, in
 * *span_off and *span_len. */
gboolean shm_pages_take_stored (ShmPages *pages, guint64 off, guint64 len,
                                guint64 *span_off, guint64 *span_len);

/* Counts one more write in each page of [off, off+len). */
void shm_pages_bump (ShmPages *pages, guint64 off, guint64 len);
/* A sum that grows whenever a page of [off, off+len) is written. */
guint64 shm_pages_generation (const ShmPages *pages, guint64 off, guint64 len);

G_END_DECLS
