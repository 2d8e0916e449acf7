#!/usr/bin/env python3
"""Biggest contributors to a wasm module: code bytes per crate (from the name section, so run it
on the module before wasm-bindgen strips names), plus the data segments. Usage:
    python3 scripts/wasm_sizes.py MODULE.wasm [TOP]
Prints a markdown table. Generic functions are attributed to the crate of their own path (the
first path segment of the demangled name, `<T as Trait>` impls to T's crate)."""
import re
import sys
from collections import Counter


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


def sections(b):
    i = 8
    while i < len(b):
        sid = b[i]
        n, j = leb(b, i + 1)
        yield sid, b[j:j + n]
        i = j + n


def demangle_first(name):
    """The first path segment of a legacy-mangled Rust symbol (`_ZN<len><ident>...E`), with
    `$LT$`-style escapes undone: for `<T as Trait>::f` that segment is `<T as Trait>`."""
    m = re.match(r'_ZN(\d+)', name)
    if not m:
        return name
    n = int(m.group(1))
    seg = name[m.end():m.end() + n]
    for a, b in (('$LT$', '<'), ('$GT$', '>'), ('$u20$', ' '), ('$RF$', '&'), ('$BP$', '*'),
                 ('$C$', ','), ('..', '::'), ('$u5b$', '['), ('$u5d$', ']')):
        seg = seg.replace(a, b)
    return seg.lstrip('_')


def crate_of(name):
    # Legacy-mangled names (what rustc writes to the name section): the crate is the first path
    # segment; for an impl `<T as Trait>` it is T's crate.
    n = demangle_first(name).lstrip('<&*')
    n = re.sub(r'^(mut |dyn |const )+', '', n)
    m = re.match(r'([A-Za-z_][A-Za-z0-9_]*)', n)
    if not m:
        return '(other)'
    c = m.group(1)
    if c in ('core', 'alloc', 'std', 'hashbrown'):
        return 'std/core/alloc'
    if c.startswith('__') or c in ('memcpy', 'memset', 'memmove', 'memcmp', 'dlmalloc'):
        return 'std/core/alloc'
    return c


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    b = open(path, 'rb').read()
    imports = 0
    code = []
    names = {}
    data = 0
    custom = Counter()
    for sid, body in sections(b):
        if sid == 2:
            n, i = leb(body, 0)
            # Function imports come first in the index space; count them.
            for _ in range(n):
                for _ in range(2):
                    ln, i = leb(body, i)
                    i += ln
                kind = body[i]
                i += 1
                if kind == 0:
                    _, i = leb(body, i)
                    imports += 1
                elif kind == 1:
                    i += 1
                    fl, i = leb(body, i)
                    _, i = leb(body, i)
                    if fl & 1:
                        _, i = leb(body, i)
                elif kind == 2:
                    fl, i = leb(body, i)
                    _, i = leb(body, i)
                    if fl & 1:
                        _, i = leb(body, i)
                elif kind == 3:
                    i += 2
        elif sid == 10:
            n, i = leb(body, 0)
            for _ in range(n):
                sz, j = leb(body, i)
                code.append(j + sz - i)
                i = j + sz
        elif sid == 11:
            data += len(body)
        elif sid == 0:
            ln, i = leb(body, 0)
            nm = body[i:i + ln].decode()
            custom[nm] += len(body)
            if nm == 'name':
                i += ln
                while i < len(body):
                    sub = body[i]
                    sz, j = leb(body, i + 1)
                    if sub == 1:
                        n, k = leb(body, j)
                        for _ in range(n):
                            idx, k = leb(body, k)
                            ln2, k = leb(body, k)
                            names[idx] = body[k:k + ln2].decode('utf-8', 'replace')
                            k += ln2
                    i = j + sz
    per = Counter()
    for f, size in enumerate(code):
        per[crate_of(names.get(f + imports, '(unnamed)'))] += size
    total = len(b)
    code_total = sum(code)
    print(f'module {path}: {total:,} bytes; code {code_total:,}; data segments {data:,}; '
          f'custom sections ' + ', '.join(f'{k} {v:,}' for k, v in custom.most_common()))
    print()
    print('| crate (by function path) | code bytes | share of code |')
    print('|---|---:|---:|')
    for c, s in per.most_common(top):
        print(f'| {c} | {s:,} | {100 * s / code_total:.1f}% |')
    rest = sum(s for c, s in per.most_common()[top:])
    print(f'| (all others) | {rest:,} | {100 * rest / code_total:.1f}% |')


if __name__ == '__main__':
    main()
