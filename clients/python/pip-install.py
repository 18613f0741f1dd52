"""Installs the package with pip into a directory of the build, as a user
installs it (offline: no build isolation, no index), for the tests to
import.  Usage: pip-install.py SOURCE TARGET STAMP"""

import os
import shutil
import subprocess
import sys
import tempfile

source, target, stamp = sys.argv[1:4]
with tempfile.TemporaryDirectory() as tmp:
    # pip builds in the tree it is given: build a copy, leave the sources be.
    copy = os.path.join(tmp, 'src')
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns(
        'build', '*.egg-info', '__pycache__', 'meson.build', 'pip-install.py'))
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-index',
                    '--no-build-isolation', '--no-deps', '--no-cache-dir',
                    '--disable-pip-version-check', '--root-user-action=ignore',
                    '--target', target, copy],
                   check=True)
with open(stamp, 'w') as f:
    f.write(target + '\n')
