#!/usr/bin/env python3
"""What takes the space in a wasm module: the size of each section, and the
code bytes of each crate, from the function names. Use a module that still
has its names: the wasm-release profile's output before wasm-bindgen and
wasm-opt, target/wasm32-unknown-unknown/wasm-release/condlock_wasm.wasm.

    python3 scripts/wasm-size.py <module.wasm> [how many crates]
"""

import collections
import re
import sys

SECTIONS = {1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
            7: "export", 9: "element", 10: "code", 11: "data", 12: "data count"}


def leb(b: bytes, i: int) -> tuple:
    """An unsigned LEB128 at `i`: (value, next index)."""
    value = shift = 0
    while True:
        x = b[i]
        i += 1
        value |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return value, i


def imported_functions(b: bytes, i: int) -> int:
    """How many functions the import section at `i` imports (they come first
    in the function index space)."""
    n, i = leb(b, i)
    count = 0
    for _ in range(n):
        for _name in range(2):  # module, field
            length, i = leb(b, i)
            i += length
        kind = b[i]
        i += 1
        if kind == 0:  # function: type index
            _, i = leb(b, i)
            count += 1
        elif kind == 1:  # table: reftype, limits
            i += 1
            flags, i = leb(b, i)
            _, i = leb(b, i)
            if flags & 1:
                _, i = leb(b, i)
        elif kind == 2:  # memory: limits
            flags, i = leb(b, i)
            _, i = leb(b, i)
            if flags & 1:
                _, i = leb(b, i)
        elif kind == 3:  # global: valtype, mutability
            i += 2
    return count


def crate(name: str) -> str:
    """The crate a (legacy or v0) mangled Rust symbol belongs to."""
    m = re.match(r"_ZN(\d+)", name)
    if m:
        seg = name[m.end():m.end() + int(m.group(1))]
        if seg.startswith("_$LT$"):  # <impl Trait for crate::Type>
            inner = seg[5:].split("..")[0].replace("$RF$", "").replace("mut$u20$", "").lstrip("_")
            return inner.split("$")[0] or seg
        return seg
    m = re.search(r"Cs[0-9a-zA-Z]+_(\d+)", name)
    if m:
        return name[m.end():m.end() + int(m.group(1))]
    return name.split(":")[0][:25]


def main() -> None:
    data = open(sys.argv[1], "rb").read()
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    i = 8  # magic and version
    imports, bodies, names = 0, [], {}
    while i < len(data):
        sid = data[i]
        size, i = leb(data, i + 1)
        end = i + size
        if sid == 0:
            length, j = leb(data, i)
            custom = data[j:j + length].decode()
            j += length
            print(f"{size:8d} custom section {custom}")
            if custom == "name":
                while j < end:
                    sub = data[j]
                    sub_size, j = leb(data, j + 1)
                    sub_end = j + sub_size
                    if sub == 1:  # function names
                        n, j = leb(data, j)
                        for _ in range(n):
                            idx, j = leb(data, j)
                            length, j = leb(data, j)
                            names[idx] = data[j:j + length].decode(errors="replace")
                            j += length
                    j = sub_end
        else:
            print(f"{size:8d} section {SECTIONS.get(sid, sid)}")
            if sid == 2:
                imports = imported_functions(data, i)
            elif sid == 10:
                n, j = leb(data, i)
                for _ in range(n):
                    length, k = leb(data, j)
                    bodies.append(k - j + length)
                    j = k + length
        i = end
    per_crate = collections.Counter()
    for k, size in enumerate(bodies):
        per_crate[crate(names.get(imports + k, "?"))] += size
    total = sum(bodies)
    print(f"code bytes {total}, by crate:")
    for name, size in per_crate.most_common(top):
        print(f"{size:8d} {100 * size / total:5.1f}% {name}")


main()
