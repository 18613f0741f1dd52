/* type-helpers.h — parsing specs in unit tests (test-type.c, test-record.c). */
#pragma once

#include <string.h>

#include "shm-type.h"

/* The type of spec, which must parse; shm_type_clear() it. */
static inline ShmType
parse_ok (const char *spec)
{
  ShmType t;
  int r = shm_type_parse (spec, strlen (spec), &t);

  if (r != 0)
    g_error ("shm_type_parse (\"%s\") = %d", spec, r);
  return t;
}

/* Asserts that spec parses and reads back as canonical. */
static inline void
assert_canonical (const char *spec, const char *canonical)
{
  ShmType t = parse_ok (spec);
  g_autofree char *s = shm_type_to_string (&t);

  g_assert_cmpstr (s, ==, canonical);
  shm_type_clear (&t);
}
