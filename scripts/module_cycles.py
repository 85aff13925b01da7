#!/usr/bin/env python3
"""Import circles between Rust modules, at every level of each crate's module tree.

Usage:
    python3 scripts/module_cycles.py [--tests] [--no-reexports] [--quiet] [ROOT.rs ...]

Without arguments it checks every crate of the workspace: rbe-kernels/src/lib.rs,
rbe-burn/src/lib.rs, examples-support/src/lib.rs, src/lib.rs, every example
(examples/*.rs and examples/*/main.rs) and every bench (benches/*.rs). Run it from the
repository root (or anywhere: the default roots are found relative to this script).
Exit status: 1 when any circle was found, 0 otherwise, 2 on a usage error.

The rule
--------
The module tree comes from the `mod` declarations, starting at the crate root and
following the file layout (`foo.rs` or `foo/mod.rs`, children of `foo.rs` under `foo/`);
inline `mod foo { ... }` blocks are modules too. `#[path]` attributes are not followed
(none are used here).

For a parent module P with direct children A and B: **A depends on B when code in any
file of A's subtree names a path that resolves into B's subtree** (B itself or anything
below it). A circle is a cycle in that graph among P's children (found as strongly
connected components, so longer loops count too). Each reference therefore makes at most
one edge, at the level where its source and target first part: `crate::a::x::f` named
in `a/y.rs` is inside `a`'s own subtree and makes no edge at the root, but makes the edge
`y -> x` among the children of `a`. References into a module's own subtree, or to an
ancestor (an item defined in `lib.rs`, `mod.rs` or `foo.rs` of a module above), make no
edge: an ancestor is not a sibling, and a module may always use what its parents define.

What counts as naming a path, after comments (doc comments included) and string
literals are blanked out:
- `use` trees, groups expanded (`use crate::{a, b::{c, d}}`), with `crate::`, `$crate::`,
  `self::`, `super::` (repeated), or a first segment that is a child module of the
  current module or a module imported by a `use` in the same file;
- the same paths anywhere else in code (`crate::a::f()`, `super::x::T`,
  `$crate::a::b` in macros, `pub(in crate::a)`), and `alias::x::y` where `alias` is a
  module that file imported by `use`.
- By default a path that stops at a name some module binds with `use` is followed to
  where that `use` points: `use crate::RbeError` in `seeds.rs` depends on `error`, not
  only on the crate root, because that is what the compiler resolves it to. This covers
  re-exports (`pub use`) and private imports, which a module's descendants can name too
  (`super::X`). Glob imports (`use x::*`) are not followed. `--no-reexports` turns this
  off and applies the plain path rule only.

Test code is left out of the edges: modules declared under a cfg that requires `test`
(`#[cfg(test)]`, `#[cfg(all(test, ...))]`, an inner `#![cfg(test)]`) and files named
`tests.rs` or under a `tests/` folder, with everything below them. `--tests` puts their
references back in; circles then found only with them are reported as such, and do not
change the exit status.

Output: per crate, each circle as `a -> b -> a` under its parent module, one example
reference (file:line and the path as written) for each edge, and how many references
the edge has. Each strongly connected component is shown as a set of cycles that
together use every edge of it (for each edge u -> v, the shortest way back v -> ... -> u).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIBRARY_ROOTS = [
    "rbe-kernels/src/lib.rs",
    "rbe-burn/src/lib.rs",
    "examples-support/src/lib.rs",
    "src/lib.rs",
]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
MAX_REEXPORT_HOPS = 8


# --------------------------------------------------------------------------------------
# Lexing: blank comments and literals, keep line numbers.
# --------------------------------------------------------------------------------------


def blank(text: str) -> str:
    """`text` with comments and string/char literals replaced by spaces (newlines kept),
    so that paths in doc examples or messages are not mistaken for code."""
    out = list(text)
    n = len(text)
    i = 0

    def wipe(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            wipe(i, j)
            i = j
        elif c == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            wipe(i, j)
            i = j
        elif c in "rb" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            # Raw strings r"..", r#".."#, br"..", byte strings b"..", byte chars b'x'.
            m = re.compile(r'b?r(#*)"').match(text, i)
            if m:
                end = text.find('"' + m.group(1), m.end())
                end = n if end < 0 else end + 1 + len(m.group(1))
                wipe(i, end)
                i = end
            elif c == "b" and nxt in "\"'":
                i = skip_quoted(text, i + 1, wipe)
            else:
                i += 1
        elif c == '"':
            i = skip_quoted(text, i, wipe)
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a, 'static).
            if nxt == "\\" or (i + 2 < n and text[i + 2] == "'"):
                i = skip_quoted(text, i, wipe)
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def skip_quoted(text: str, i: int, wipe) -> int:
    """Blanks the literal opened by the quote at `i` and returns the index after it."""
    quote, j, n = text[i], i + 1, len(text)
    while j < n:
        if text[j] == "\\":
            j += 2
        elif text[j] == quote:
            j += 1
            break
        else:
            j += 1
    wipe(i, j)
    return j


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def matching_brace(text: str, open_pos: int) -> int:
    depth = 0
    for k in range(open_pos, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(text)


# --------------------------------------------------------------------------------------
# cfg predicates: does this one hold only under `test`?
# --------------------------------------------------------------------------------------


def split_args(s: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def requires_test(pred: str) -> bool:
    pred = pred.strip()
    if pred == "test":
        return True
    m = re.fullmatch(r"(all|any|not)\s*\((.*)\)", pred, re.S)
    if not m:
        return False
    args = split_args(m.group(2))
    if m.group(1) == "all":
        return any(requires_test(a) for a in args)
    if m.group(1) == "any":
        return bool(args) and all(requires_test(a) for a in args)
    return False


def attrs_require_test(attrs: str) -> bool:
    return any(requires_test(p) for p in re.findall(r"#\s*\[\s*cfg\s*\((.*?)\)\s*\]", attrs, re.S))


# --------------------------------------------------------------------------------------
# The module tree.
# --------------------------------------------------------------------------------------

Mod = tuple  # a module path: () is the crate root, ("sign", "ops") is crate::sign::ops


@dataclass
class SourceFile:
    path: Path
    module: Mod
    test: bool
    raw: str
    code: str
    # (start, end, module path, test) of inline modules, innermost last when nested.
    inline: list = field(default_factory=list)

    def module_at(self, pos: int) -> tuple[Mod, bool]:
        module, test = self.module, self.test
        for start, end, path, is_test in self.inline:
            if start <= pos < end and len(path) > len(module):
                module, test = path, test or is_test
        return module, test


MOD_DECL = re.compile(
    r"((?:#\s*\[[^\]]*\]\s*)*)(?:pub\s*(?:\([^)]*\))?\s*)?\bmod\s+(" + IDENT + r")\s*([;{])"
)


class Crate:
    def __init__(self, root: Path):
        self.root = root
        self.files: list[SourceFile] = []
        self.children: dict[Mod, set[str]] = defaultdict(set)
        self.test_modules: set[Mod] = set()
        self.file_of: dict[Mod, list[SourceFile]] = defaultdict(list)
        self.missing: list[str] = []
        self.load(root, (), root.parent, test=False)

    def load(self, path: Path, module: Mod, child_dir: Path, test: bool) -> None:
        raw = path.read_text(encoding="utf-8")
        code = blank(raw)
        inner = re.findall(r"#!\s*\[\s*cfg\s*\((.*?)\)\s*\]", code, re.S)
        test = test or any(requires_test(p) for p in inner)
        src = SourceFile(path, module, test, raw, code)
        self.files.append(src)
        self.file_of[module].append(src)
        if test:
            self.test_modules.add(module)
        # Inline modules first, so that `mod x;` inside them resolves below their folder.
        decls = list(MOD_DECL.finditer(code))
        for m in decls:
            if m.group(3) == "{":
                open_pos = m.end() - 1
                close = matching_brace(code, open_pos)
                parent, parent_test = src.module_at(m.start())
                is_test = parent_test or attrs_require_test(m.group(1))
                name = m.group(2)
                sub = parent + (name,)
                src.inline.append((open_pos, close + 1, sub, is_test))
                self.children[parent].add(name)
                if is_test:
                    self.test_modules.add(sub)
        src.inline.sort(key=lambda t: len(t[2]))
        for m in decls:
            if m.group(3) != ";":
                continue
            parent, parent_test = src.module_at(m.start())
            name = m.group(2)
            sub = parent + (name,)
            folder = child_dir.joinpath(*parent[len(module):])
            is_test = (
                parent_test
                or attrs_require_test(m.group(1))
                or name == "tests"
            )
            for candidate, below in (
                (folder / f"{name}.rs", folder / name),
                (folder / name / "mod.rs", folder / name),
            ):
                if candidate.is_file():
                    self.children[parent].add(name)
                    self.load(candidate, sub, below, is_test or "tests" in candidate.parts)
                    break
            else:
                self.missing.append(f"{path}:{line_of(code, m.start())}: mod {name}")

    def is_module(self, path: Mod) -> bool:
        return path == () or (path[-1] in self.children.get(path[:-1], ()))


# --------------------------------------------------------------------------------------
# Paths named in code.
# --------------------------------------------------------------------------------------


@dataclass
class UsePath:
    segments: list[str]
    alias: str | None  # the name it binds (None for globs)
    glob: bool


def tokenize_use(tree: str) -> list[str]:
    return re.findall(r"\$?" + IDENT + r"|::|[{},*]", tree)


def parse_use_tree(tokens: list[str]) -> list[UsePath]:
    """Expands a `use` tree into its leaf paths."""
    out: list[UsePath] = []
    pos = 0

    def tree(prefix: list[str]) -> None:
        nonlocal pos
        segs = list(prefix)
        while pos < len(tokens):
            tok = tokens[pos]
            if tok == "::":
                pos += 1
            elif tok == "{":
                pos += 1
                while pos < len(tokens) and tokens[pos] != "}":
                    if tokens[pos] == ",":
                        pos += 1
                        continue
                    tree(segs)
                pos += 1
                return
            elif tok == "*":
                pos += 1
                out.append(UsePath(segs, None, True))
                return
            elif tok in (",", "}"):
                break
            else:
                pos += 1
                if tok == "self" and segs:
                    out.append(UsePath(segs, segs[-1], False))
                    continue
                segs.append(tok)
                if pos < len(tokens) and tokens[pos] == "as":
                    pos += 1
                    alias = tokens[pos] if pos < len(tokens) else tok
                    pos += 1
                    out.append(UsePath(segs, alias, False))
                    return
                if pos >= len(tokens) or tokens[pos] != "::":
                    out.append(UsePath(segs, tok, False))
                    return

    while pos < len(tokens):
        if tokens[pos] in (",", "}"):
            pos += 1
            continue
        tree([])
    return out


USE_DECL = re.compile(r"(?<![\w:$])((?:pub\s*(?:\([^)]*\))?\s*)?)\buse\s+([^;]*);", re.S)
PATH_EXPR = re.compile(
    r"(?<![\w$:])(\$?" + IDENT + r"(?:\s*::\s*" + IDENT + r")+)"
)


@dataclass
class Reference:
    file: SourceFile
    line: int
    text: str
    source: Mod
    target: Mod
    test: bool
    via: str | None = None  # the re-exported name followed, if any


class Resolver:
    def __init__(self, crate: Crate, follow_reexports: bool):
        self.crate = crate
        self.follow = follow_reexports
        # Per file: the `use` declarations (span, module, test, UsePath list, is_pub).
        self.uses: dict[Path, list] = {}
        for f in crate.files:
            entries = []
            for m in USE_DECL.finditer(f.code):
                module, test = f.module_at(m.start())
                paths = parse_use_tree(tokenize_use(m.group(2)))
                entries.append((m.start(), m.end(), module, test, paths, bool(m.group(1).strip())))
            self.uses[f.path] = entries
        # Per module: name bound by `use` -> (defining file, module, segments).
        self.reexports: dict[Mod, dict[str, tuple]] = defaultdict(dict)
        for f in crate.files:
            for _, _, module, _, paths, _ in self.uses[f.path]:
                for p in paths:
                    if not p.glob and p.alias:
                        self.reexports[module][p.alias] = (f, module, p.segments)

    def aliases(self, f: SourceFile, module: Mod) -> dict[str, Mod]:
        """Module names that `use` declarations of this file bind, for paths in `module`."""
        found: dict[str, Mod] = {}
        for _, _, use_module, _, paths, _ in self.uses[f.path]:
            if use_module != module:
                continue
            for p in paths:
                if p.glob or not p.alias:
                    continue
                target, rest = self.walk(p.segments, use_module, f, {}, depth=0)
                if target is not None and not rest:
                    found[p.alias] = target
        return found

    def walk(self, segments, module, f, aliases, depth):
        """Resolves `segments` named in `module`: (module reached, segments left)."""
        if not segments:
            return None, []
        head, rest = segments[0], list(segments[1:])
        if head in ("crate", "$crate"):
            base = ()
        elif head == "self":
            base = module
        elif head == "super":
            base = module[:-1] if module else ()
            while rest and rest[0] == "super":
                base = base[:-1] if base else ()
                rest.pop(0)
        elif head in self.crate.children.get(module, ()):
            base = module + (head,)
        elif head in aliases:
            base = aliases[head]
        else:
            return None, []
        while rest and rest[0] in self.crate.children.get(base, ()):
            base = base + (rest.pop(0),)
        return base, rest

    def resolve(self, segments, module, f, aliases):
        """The module a path ends in, following named re-exports; and the name followed."""
        target, rest = self.walk(segments, module, f, aliases, 0)
        via = None
        hops = 0
        while self.follow and target is not None and rest and hops < MAX_REEXPORT_HOPS:
            entry = self.reexports.get(target, {}).get(rest[0])
            if entry is None:
                break
            ref_file, ref_module, ref_segments = entry
            nxt, nxt_rest = self.walk(ref_segments, ref_module, ref_file, {}, 0)
            if nxt is None:
                break
            via = via or "::".join(("crate",) + target + (rest[0],))
            # The re-exported path names the item itself; anything after it stays.
            target, rest = nxt, nxt_rest + rest[1:]
            hops += 1
        return target, via

    def references(self):
        for f in self.crate.files:
            spans = []
            file_aliases: dict[Mod, dict[str, Mod]] = {}

            def aliases_for(module: Mod) -> dict[str, Mod]:
                if module not in file_aliases:
                    file_aliases[module] = self.aliases(f, module)
                return file_aliases[module]

            for start, end, module, test, paths, _ in self.uses[f.path]:
                spans.append((start, end))
                for p in paths:
                    target, via = self.resolve(p.segments, module, f, {})
                    if target is not None:
                        yield Reference(
                            f, line_of(f.code, start), "use " + "::".join(p.segments)
                            + ("::*" if p.glob else ""), module, target, test, via,
                        )
            for m in PATH_EXPR.finditer(f.code):
                if any(a <= m.start() < b for a, b in spans):
                    continue
                module, test = f.module_at(m.start())
                segments = [s.strip() for s in m.group(1).split("::")]
                target, via = self.resolve(segments, module, f, aliases_for(module))
                if target is not None:
                    yield Reference(
                        f, line_of(f.code, m.start()), "::".join(segments), module,
                        target, test, via,
                    )


# --------------------------------------------------------------------------------------
# Graphs and cycles.
# --------------------------------------------------------------------------------------


def strongly_connected(nodes, edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
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
            out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def shortest_path(edges, src, dst, allowed):
    prev, queue = {src: None}, deque([src])
    while queue:
        v = queue.popleft()
        if v == dst:
            path = []
            while v is not None:
                path.append(v)
                v = prev[v]
            return path[::-1]
        for w in sorted(edges.get(v, ())):
            if w in allowed and w not in prev:
                prev[w] = v
                queue.append(w)
    return None


def covering_cycles(component, edges):
    """Cycles within `component` that together use each of its edges."""
    members = set(component)
    seen, cycles = set(), []
    for u in component:
        for v in sorted(edges.get(u, ())):
            if v not in members:
                continue
            back = shortest_path(edges, v, u, members)
            cycle = [u] + back  # u -> v -> ... -> u
            body = cycle[:-1]
            k = body.index(min(body))
            canon = tuple(body[k:] + body[:k])
            if canon not in seen:
                seen.add(canon)
                cycles.append(list(canon) + [canon[0]])
    return cycles


def label(path: Mod) -> str:
    return "crate" if not path else "crate::" + "::".join(path)


def analyse(crate: Crate, refs: list[Reference]):
    """Per parent module: {(a, b): [references]} among its children."""
    levels: dict[Mod, dict] = defaultdict(lambda: defaultdict(list))
    for r in refs:
        k = 0
        while k < min(len(r.source), len(r.target)) and r.source[k] == r.target[k]:
            k += 1
        if k == len(r.source) or k == len(r.target):
            continue  # into its own subtree, or to an ancestor
        parent = r.source[:k]
        levels[parent][(r.source[k], r.target[k])].append(r)
    return levels


def find_cycles(levels):
    found = []
    for parent in sorted(levels, key=lambda p: (len(p), p)):
        pairs = levels[parent]
        edges = defaultdict(set)
        for a, b in pairs:
            edges[a].add(b)
        nodes = set(edges) | {b for bs in edges.values() for b in bs}
        for comp in strongly_connected(nodes, edges):
            found.append((parent, comp, covering_cycles(comp, edges), pairs))
    return found


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def describe(parent, cycles, pairs, indent="  "):
    lines = []
    for cycle in cycles:
        lines.append(f"{indent}circle under {label(parent)}: " + " -> ".join(cycle))
        for a, b in zip(cycle, cycle[1:]):
            edge = sorted(pairs[(a, b)], key=lambda r: (rel(r.file.path), r.line))
            ex = edge[0]
            via = f" (re-export {ex.via})" if ex.via else ""
            more = f", {len(edge)} references" if len(edge) > 1 else ""
            lines.append(
                f"{indent}  {a} -> {b}: {rel(ex.file.path)}:{ex.line} `{ex.text}`{via}{more}"
            )
    return lines


def default_roots() -> list[Path]:
    roots = [REPO / r for r in LIBRARY_ROOTS]
    examples = REPO / "examples"
    roots += sorted(examples.glob("*.rs"))
    roots += sorted(p for p in examples.glob("*/main.rs"))
    roots += sorted((REPO / "benches").glob("*.rs"))
    return [r for r in roots if r.is_file()]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Report import circles between Rust modules (see the module docstring)."
    )
    parser.add_argument("roots", nargs="*", type=Path, help="crate root files (default: the workspace)")
    parser.add_argument("--tests", action="store_true", help="also report circles that test code adds")
    parser.add_argument(
        "--no-reexports", action="store_true", help="do not follow `pub use` re-exports"
    )
    parser.add_argument("--quiet", action="store_true", help="print crates with circles only")
    args = parser.parse_args(argv)

    roots = [r.resolve() for r in args.roots] or default_roots()
    total = 0
    for root in roots:
        if not root.is_file():
            print(f"{root}: no such file", file=sys.stderr)
            return 2
        crate = Crate(root)
        refs = list(Resolver(crate, not args.no_reexports).references())
        main_refs = [r for r in refs if not r.test]
        cycles = find_cycles(analyse(crate, main_refs))
        extra = []
        if args.tests:
            known = {(p, tuple(c)) for p, c, _, _ in cycles}
            extra = [
                c for c in find_cycles(analyse(crate, refs)) if (c[0], tuple(c[1])) not in known
            ]
        total += len(cycles)
        if args.quiet and not cycles and not extra:
            continue
        n_mods = 1 + sum(len(c) for c in crate.children.values())
        status = f"{len(cycles)} circle(s)" if cycles else "no circles"
        print(
            f"{rel(root)}: {n_mods} modules, {len(crate.files)} files, "
            f"{len(main_refs)} references outside test code: {status}"
        )
        for missing in crate.missing:
            print(f"  note: declared but not found: {missing}")
        for parent, comp, cyc, pairs in cycles:
            print(f"  strongly connected under {label(parent)}: {{{', '.join(comp)}}}")
            print("\n".join(describe(parent, cyc, pairs, "    ")))
        for parent, comp, cyc, pairs in extra:
            print(f"  with test code only (not counted), under {label(parent)}: {{{', '.join(comp)}}}")
            print("\n".join(describe(parent, cyc, pairs, "    ")))
    print(f"{total} circle(s) in {len(roots)} crate(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
