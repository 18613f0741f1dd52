#!/usr/bin/python3
"""Fails when files of a source directory call each other in a cycle.

    tools/check-layers.py BUILDDIR SRCDIR [--allow a.c,b.c ...]

Calls in fs/ flow one way (main -> ops-* -> services -> session -> core):
no two files may reach each other through the functions and data they
use.  The calls are read from the compiled objects, not from the headers:
each object of a file in SRCDIR (found through BUILDDIR's
compile_commands.json) is read with nm (or $NM), a file depends on the
file that defines a global symbol it uses, and every strongly connected
set of two files or more is a cycle.  A cycle named by --allow (its files,
exactly, comma-separated) is reported but does not fail; an --allow that
names no cycle any more is reported too, to be removed.
"""
import argparse
import collections
import json
import os
import subprocess
import sys


def objects(builddir, srcdir):
    """{source file name: object path} of the files compiled from srcdir."""
    with open(os.path.join(builddir, 'compile_commands.json')) as f:
        commands = json.load(f)
    srcdir = os.path.realpath(srcdir)
    found = {}
    for c in commands:
        source = os.path.realpath(os.path.join(c['directory'], c['file']))
        if os.path.dirname(source) != srcdir or 'output' not in c:
            continue
        name = os.path.basename(source)
        if name in found:
            sys.exit(f'check-layers: {name} is compiled twice; cannot tell its calls apart')
        found[name] = os.path.join(c['directory'], c['output'])
    return found


def symbols(nm, obj):
    """(defined global symbols, undefined symbols) of obj."""
    out = subprocess.run([nm, '-P', obj], check=True, capture_output=True, text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        name, kind = fields[0], fields[1]
        if kind == 'U':
            used.add(name)
        elif kind.isupper() and kind not in 'NV':
            defined.add(name)
    return defined, used


def strongly_connected(graph):
    """Tarjan's algorithm: the strongly connected sets of graph's nodes."""
    index, low, stack, on_stack, sets = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.add(w)
                if w == v:
                    break
            sets.append(members)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sets


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('builddir')
    parser.add_argument('srcdir')
    parser.add_argument('--allow', action='append', default=[], metavar='A.c,B.c',
                        help='a known cycle, reported but not failed')
    args = parser.parse_args()
    nm = os.environ.get('NM', 'nm')

    objs = objects(args.builddir, args.srcdir)
    if len(objs) < 2:
        sys.exit(f'check-layers: no objects of {args.srcdir} in {args.builddir}')
    defined, used = {}, {}
    for name, obj in objs.items():
        defined[name], used[name] = symbols(nm, obj)
        if not defined[name] and not used[name]:
            sys.exit(f'check-layers: no symbols in {obj} (an LTO object?)')
    owner = {}
    for name, syms in defined.items():
        for s in syms:
            owner[s] = name

    # calls[a][b]: the symbols of b that a uses.
    calls = collections.defaultdict(lambda: collections.defaultdict(list))
    graph = {name: set() for name in objs}
    for name, syms in used.items():
        for s in sorted(syms):
            other = owner.get(s)
            if other is not None and other != name:
                calls[name][other].append(s)
                graph[name].add(other)

    allowed = {frozenset(a.split(',')) for a in args.allow}
    failed = False
    found = set()
    for members in strongly_connected(graph):
        if len(members) < 2:
            continue
        found.add(frozenset(members))
        known = frozenset(members) in allowed
        print(f"{'known cycle' if known else 'cycle'}: {', '.join(sorted(members))}")
        for a in sorted(members):
            for b in sorted(graph[a] & members):
                print(f'  {a} -> {b}: {", ".join(calls[a][b])}')
        failed |= not known
    for a in sorted(allowed - found, key=sorted):
        print(f"allowed cycle {', '.join(sorted(a))} is gone: drop its --allow")
    if not failed:
        print(f'{len(objs)} files of {os.path.basename(os.path.normpath(args.srcdir))}/, '
              'calls flow one way' + (' but for the known cycles' if found else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
