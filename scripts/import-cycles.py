#!/usr/bin/env python3
"""Import circles between the files of a Rust crate (`make layering`).

Every path a file names (`use crate::a::b::{C, d::E}`, `crate::a::f(..)`, `super::x::Y`,
`self::z`) is resolved to the file that defines it: the deepest module file on the path, and
through a `pub use` re-export of a `mod.rs` to the file the item really comes from. A parent
naming its own child modules (`mod x;`, `x::f()`) is composition, not a circle; a child
reaching back into the parent that declares it is. Prints each circle (a strongly connected
group of two or more files) and exits 1 when there is one.

    scripts/import-cycles.py src [crates/upgate-http/src ...]
"""
import os
import re
import sys

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)
COMMENT = re.compile(r"//[^\n]*")


def module_of(root, path):
    """The module path (list) of a file below root."""
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def file_of(root, mod):
    """The file defining module `mod` (list), or None."""
    if not mod:
        return os.path.join(root, "lib.rs")
    base = os.path.join(root, *mod)
    for cand in (base + ".rs", os.path.join(base, "mod.rs")):
        if os.path.isfile(cand):
            return cand
    return None


def expand_use(tree):
    """`a::{b, c::{d, e}}` → ['a::b', 'a::c::d', 'a::c::e']."""
    tree = tree.strip()
    m = re.match(r"^(.*?)::\{(.*)\}$", tree, re.S)
    if not m:
        return [re.sub(r"\s+as\s+\w+$", "", tree)]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        p = p.strip()
        if p:
            out += [prefix + "::" + q for q in expand_use(p)]
    return out


def main(roots):
    edges = {}
    reexports = {}  # file -> {name: [module path]}
    files = []
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for n in names:
                if n.endswith(".rs") and n != "tests.rs" and "tests" not in dirpath.split(os.sep):
                    files.append((root, os.path.join(dirpath, n)))
    texts = {}
    for root, f in files:
        text = COMMENT.sub("", open(f, encoding="utf-8").read())
        # Test modules and items are not part of the structure.
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)[0]
        texts[f] = text
        mod = module_of(root, f)
        for m in USE.finditer(text):
            if not m.group(0).lstrip().startswith("pub"):
                continue
            for path in expand_use(m.group(1)):
                segs = path.split("::")
                name = segs[-1]
                if segs[0] in ("crate",):
                    target = segs[1:]
                elif segs[0] == "self":
                    target = mod + segs[1:]
                elif segs[0] == "super":
                    target = mod[:-1] + segs[1:]
                else:
                    target = mod + segs
                reexports.setdefault(f, {})[name] = target
    roots_of = {f: r for r, f in files}

    def resolve(root, segs, seen=0):
        # Deepest module file on the path.
        best, rest = None, []
        for i in range(len(segs), -1, -1):
            cand = file_of(root, segs[:i])
            if cand:
                best, rest = cand, segs[i:]
                break
        if best and rest and seen < 8:
            target = reexports.get(best, {}).get(rest[0])
            if target is not None and target[: len(segs)] != segs:
                return resolve(root, target + rest[1:], seen + 1)
        return best

    for root, f in files:
        mod = module_of(root, f)
        text = texts[f]
        found = set()
        for m in PATH.finditer(text):
            kind, tail = m.group(1), m.group(2).split("::")[1:]
            if kind == "crate":
                segs = tail
            elif kind == "super":
                segs = mod[:-1] + tail
            else:
                segs = mod + tail
            found.add(tuple(segs))
        for m in USE.finditer(text):
            for path in expand_use(m.group(1)):
                segs = path.split("::")
                if segs[0] in ("crate", "super", "self"):
                    continue
                # `use child::x` inside a module names its own child.
                if file_of(root, mod + segs[:1]):
                    found.add(tuple(mod + segs))
        for segs in found:
            target = resolve(root, list(segs))
            if not target or target == f:
                continue
            # A parent naming its own descendants composes them.
            tmod = module_of(roots_of.get(target, root), target)
            if len(tmod) > len(mod) and tmod[: len(mod)] == mod:
                continue
            edges.setdefault(f, set()).add(target)

    # Tarjan's strongly connected components.
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    sys.setrecursionlimit(10000)
    for _, f in files:
        if f not in index:
            strong(f)
    for comp in out:
        print("import circle: " + " <-> ".join(comp))
        for a in comp:
            for b in sorted(edges.get(a, ())):
                if b in comp:
                    print(f"    {a} -> {b}")
    n_edges = sum(len(v) for v in edges.values())
    print(f"{len(files)} files, {n_edges} file imports, {len(out)} circles")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["src"]))
