"""At the start of a test's Python child: no mmap of shmfs binary views when
SHMFS_TEST_NOMAP is set (see ../nomap.py)."""

import os

if os.environ.get('SHMFS_TEST_NOMAP'):
    import nomap
    nomap.install()
