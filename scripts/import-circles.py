#!/usr/bin/env python3
"""Lists the import circles between a crate's modules: groups of modules that reach one another
through `use crate::…`, `super::…` and full paths (strongly connected components of the module
graph; a module's own submodules and parents do not count).

    scripts/import-circles.py [--check] CRATE_SRC...     e.g. app/lens/src app/ui/src

--check exits 1 if any crate given has a circle (scripts/lint.sh checks the engine this way)."""
import os
import re
import sys


def modules(root):
    """Module path (`lens::partial`, `crate` for lib.rs/main.rs) -> source without comments."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)[:-3].replace(os.sep, "/")
            if rel.endswith("/mod"):
                rel = rel[:-4]
            module = "crate" if rel in ("lib", "main") else rel.replace("/", "::")
            with open(path, encoding="utf-8") as f:
                found[module] = re.sub(r"//.*", "", f.read())
    return found


def use_paths(tree):
    """`a::{b, c::{d}}` -> [`a::b`, `a::c::d`]."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))
    out = []

    def walk(prefix, items):
        depth, item, parts = 0, "", []
        for ch in items:
            depth += ch == "{"
            depth -= ch == "}"
            if ch == "," and depth == 0:
                parts.append(item)
                item = ""
            else:
                item += ch
        parts.append(item)
        for part in filter(None, parts):
            if "{" in part:
                at = part.index("{")
                walk(prefix + part[:at], part[at + 1 : -1])
            else:
                out.append(prefix + part)

    walk("", tree)
    return out


def resolve(current, path, known):
    """The module a `crate::`/`super::`/`self::` path points into, or None."""
    parts = path.replace("::*", "").split("::")
    if parts[0] == "crate":
        base = []
    elif parts[0] in ("super", "self"):
        base = current.split("::") if current != "crate" else []
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                base = base[:-1]
            parts = parts[1:]
        return longest(base + parts, known)
    else:
        return None
    return longest(base + parts[1:], known)


def longest(parts, known):
    for n in range(len(parts), 0, -1):
        name = "::".join(parts[:n])
        if name in known:
            return name
    return None


def graph(root):
    mods = modules(root)
    edges = {m: set() for m in mods}
    for module, source in mods.items():
        paths = [p for tree in re.findall(r"\buse\s+([^;]+);", source) for p in use_paths(tree)]
        paths += re.findall(r"\b((?:crate|super)(?:::[A-Za-z_0-9]+)+)", source)
        for path in paths:
            target = resolve(module, path, mods)
            related = target and (target.startswith(module + "::") or module.startswith(target + "::"))
            if target and target not in (module, "crate") and not related:
                edges[module].add(target)
    return edges


def circles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main():
    args = sys.argv[1:]
    check = "--check" in args
    roots = [a for a in args if a != "--check"]
    any_circle = False
    for root in roots:
        edges = graph(root)
        found = circles(edges)
        any_circle |= bool(found)
        print(f"{root}: {len(found) or 'no'} circle{'' if len(found) == 1 else 's'}")
        for component in found:
            print(f"  {len(component)} modules: {', '.join(component)}")
            for module in component:
                inside = sorted(t for t in edges[module] if t in component)
                print(f"    {module} -> {', '.join(inside)}")
    sys.exit(1 if check and any_circle else 0)


if __name__ == "__main__":
    main()
