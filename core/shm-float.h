/* shm-float.h — floats as the shortest text that reads back to them. */
#pragma once

#include <glib.h>
#include <locale.h>

G_BEGIN_DECLS

/* Writes the decimal digits of v backwards, ending just before end;
 * returns the first.  end needs 20 bytes before it. */
char *shm_float_u64_digits (guint64 v, char *end);

/* The C locale, for the _l functions and uselocale(). */
locale_t shm_float_c_locale (void);

/* Appends x as "%.*g" at the least precision that strtod (strtof when
 * single) reads back to the same bits; inf, -inf, nan, -0.  The caller is
 * in the C locale (uselocale). */
void shm_float_append (GString *out, double x, gboolean single);

G_END_DECLS
