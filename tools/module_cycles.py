#!/usr/bin/env python3
"""Import cycles between the modules of src/.

Builds the import graph from `crate::a::b` paths (and `super::x` inside a directory module)
of the non-test code (a file's `#[cfg(test)]` part and `tests/` directories are left out),
once between the top-level modules and once between files, and reports its strongly
connected components (Tarjan): every set of modules that reach each other, also through
long paths, not only the back edges a depth-first walk happens to meet.

Exit status 1 when the top-level modules have a cycle (or, with --files, the files).
Run from the repository root: python3 tools/module_cycles.py [--files] [--graph]
"""
import os
import re
import sys

ROOT = "src"


def top_module(path):
    parts = os.path.relpath(path, ROOT)[:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    if "tests" in parts:
        return None
    return parts[0] if parts else None


def file_module(path):
    return os.path.relpath(path, ROOT)[:-3].replace("/mod", "")


def code_of(path):
    with open(path, encoding="utf-8") as f:
        src = f.read()
    cut = src.find("#[cfg(test)]")
    if cut >= 0:
        src = src[:cut]
    return re.sub(r"//[^\n]*", "", src)


def graphs():
    top, files = {}, {}
    for dirpath, _, names in os.walk(ROOT):
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            m = top_module(path)
            if m is None:
                continue
            src = code_of(path)
            me = file_module(path)
            top.setdefault(m, set())
            files.setdefault(me, set())
            for a, b in re.findall(r"crate::([a-z_0-9]+)(?:::([a-z_0-9]+))?", src):
                if a != m:
                    top[m].add(a)
                sub = os.path.join(ROOT, a, b + ".rs") if b else ""
                target = a + "/" + b if b and os.path.exists(sub) else a
                if target != me:
                    files[me].add(target)
            if "/" in me:
                parent = me.rsplit("/", 1)[0]
                for b in re.findall(r"super::([a-z_0-9]+)", src):
                    sub = os.path.join(ROOT, parent, b + ".rs")
                    target = parent + "/" + b if os.path.exists(sub) else parent
                    if target != me:
                        files[me].add(target)
    return top, files


def sccs(graph):
    """Strongly connected components with more than one member (iterative Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def main(argv):
    top, files = graphs()
    if "--graph" in argv:
        for m in sorted(top):
            print(f"{m:16s} -> {', '.join(sorted(top[m]))}")
    failed = False
    found = sccs(top)
    print("top-level cycles (strongly connected components):", found or "none")
    failed |= bool(found)
    found = sccs(files)
    print("file-level cycles:", found or "none")
    if "--files" in argv:
        failed |= bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
