#!/usr/bin/python3
"""Writes the shmfs(1) man page from the binary's own --help and --version,
so the page never disagrees with the program.  Usage: gen-man.py SHMFS"""

import subprocess
import sys


def roff(text):
    lines = []
    for line in text.splitlines():
        line = line.replace('\\', '\\e')
        if line.startswith(('.', "'")):
            line = '\\&' + line
        lines.append(line)
    return '\n'.join(lines)


def main():
    shmfs = sys.argv[1]
    help_text = subprocess.run([shmfs, '--help'], stdout=subprocess.PIPE,
                               text=True, check=True).stdout
    version = subprocess.run([shmfs, '--version'], stdout=subprocess.PIPE,
                             text=True, check=True).stdout.split('\n')[0]
    print(f'''.TH SHMFS 1 "" "{version}" "User Commands"
.SH NAME
shmfs \\- shared typed values and arrays as files
.SH SYNOPSIS
.B shmfs
[\\fBmount\\fR] [\\fIoptions\\fR] \\fIMOUNTPOINT\\fR
.br
.B shmfs
\\fIVERB\\fR \\fIARGS\\fR...
.SH DESCRIPTION
shmfs mounts a directory in which every shared typed value or fixed-shape
typed array is a file.
\\fIMOUNTPOINT\\fR/\\fIPATH\\fR is the text view of an object: \\fBcat\\fR
prints it, \\fBecho\\fR sets it.
\\fIMOUNTPOINT\\fR/.raw/\\fIPATH\\fR is its binary view, exactly as many
bytes as the value, in native byte order, mappable with MAP_SHARED; every
process mapping it shares the very bytes.
Types are set once, with the extended attribute \\fBuser.shmfs.type\\fR
or by the first text write.
.PP
The same program is the command line: the verbs below work on the objects
of any mounted shmfs.
It also serves as a mount helper: \\fBmount -t fuse.shmfs shmfs
\\fIMOUNTPOINT\\fR, or an /etc/fstab line
\\fBshmfs \\fIMOUNTPOINT\\fB fuse.shmfs defaults 0 0\\fR.
.SH OPTIONS AND VERBS
.nf
{roff(help_text)}
.fi
.SH EXIT STATUS
0 on success; 1 when \\fBcas\\fR did not swap or the daemon could not start;
2 when a verb failed (a message on standard error says why).
.SH SEE ALSO
.BR fusermount3 (1),
.BR setfattr (1),
.BR flock (1)''')


if __name__ == '__main__':
    main()
