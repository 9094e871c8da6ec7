#!/usr/bin/env python3
"""Checks the gateway's module graph: no import cycle between its top-level
modules (crate::X), and no module file over the line budget of non-test code.

    python3 .ci/module_graph.py [crate-src-dir ...]

A module's children may use their parent and siblings (that is one module);
cycles between different top-level modules are what this refuses.
"""
import os
import re
import sys

BUDGET = 600


def top_level(path, src):
    rel = os.path.relpath(path, src)
    head = rel.split(os.sep)[0]
    return head[:-3] if head.endswith(".rs") else head


def non_test_lines(text):
    # Everything from the first `#[cfg(test)]` on is test code (the house
    # style puts tests last).
    cut = text.find("#[cfg(test)]")
    body = text if cut < 0 else text[:cut]
    return sum(1 for line in body.splitlines() if line.strip() and not line.strip().startswith("//"))


def check(src):
    modules = {}
    sizes = []
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            text = open(path, encoding="utf-8").read()
            if os.path.basename(path) == "tests.rs" or os.sep + "tests" + os.sep in path:
                continue
            module = top_level(path, src)
            if module in ("lib", "main"):
                continue
            deps = modules.setdefault(module, set())
            cut = text.find("#[cfg(test)]")
            body = text if cut < 0 else text[:cut]
            # Comments and doc links name modules without depending on them.
            body = "\n".join(line.split("//")[0] for line in body.splitlines())
            for match in re.finditer(r"crate::([a-z_][a-z0-9_]*)", body):
                if match.group(1) != module:
                    deps.add(match.group(1))
            # `use crate::{a, b::c}` groups.
            for group in re.finditer(r"crate::\{([^}]*)\}", body):
                for item in re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group.group(1)):
                    if item != module:
                        deps.add(item)
            sizes.append((non_test_lines(text), os.path.relpath(path, src)))
    for deps in modules.values():
        deps.intersection_update(modules.keys())
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on.add(node)
        for dep in sorted(modules[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                sccs.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(modules):
        if node not in index:
            visit(node)
    failed = False
    for component in sccs:
        failed = True
        edges = [f"{a} -> {b}" for a in component for b in sorted(modules[a]) if b in component]
        print(f"{src}: import cycle between {', '.join(component)}: {'; '.join(edges)}")
    for lines, path in sorted(sizes, reverse=True):
        if lines > BUDGET:
            failed = True
            print(f"{src}: {path} has {lines} lines of non-test code (budget {BUDGET})")
    if not failed and sizes:
        biggest = max(sizes)
        print(f"{src}: {len(modules)} modules, no import cycle; largest {biggest[1]} ({biggest[0]} lines)")
    return not failed


if __name__ == "__main__":
    dirs = sys.argv[1:] or ["gateway/src"]
    sys.exit(0 if all([check(d) for d in dirs]) else 1)
