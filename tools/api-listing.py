#!/usr/bin/env python3
"""Prints the public API of a crate, one item per line, sorted, from rustdoc's JSON output.

    python3 tools/api-listing.py target/doc/tether_core.json > api/tether-core.txt

Used by tools/api-check.sh, which makes the JSON (`cargo +nightly rustdoc ... --output-format json`)
and compares the listing with the committed one: any change to the public API shows up as a reviewable
diff of api/*.txt. Every public item is listed with its signature (functions, fields, variants,
constants), its `#[non_exhaustive]` mark, and the traits it implements (auto traits included, blanket
impls left out); re-exports of other crates' items are listed as `pub use`.
"""

import json
import sys

doc = json.load(open(sys.argv[1]))
index = doc["index"]
paths = doc["paths"]
lines = set()
# Traits that are rustdoc's or the compiler's bookkeeping (unstable auto traits, the derive marker),
# not API a user can rely on or break.
NOISE = {"Freeze", "UnsafeUnpin", "StructuralPartialEq"}


def add(key, text):
    lines.add((key, text))


def item(i):
    return index.get(str(i))


def attrs(it):
    marks = []
    for a in it.get("attrs", []):
        if a == "non_exhaustive" or (isinstance(a, dict) and "non_exhaustive" in a) or (
            isinstance(a, str) and "non_exhaustive" in a
        ):
            marks.append("#[non_exhaustive]")
        elif isinstance(a, dict) and "must_use" in a:
            pass  # not part of compatibility
    return ("  " + " ".join(marks)) if marks else ""


def generic_args(a):
    if not a:
        return ""
    if "angle_bracketed" in a:
        parts = []
        for arg in a["angle_bracketed"]["args"]:
            if "type" in arg:
                parts.append(ty(arg["type"]))
            elif "lifetime" in arg:
                parts.append(arg["lifetime"])
            elif "const" in arg:
                parts.append(arg["const"].get("expr", "_"))
            else:
                parts.append("_")
        for c in a["angle_bracketed"].get("constraints", []):
            b = c.get("binding", {})
            if "equality" in b:
                eq = b["equality"]
                parts.append("%s = %s" % (c["name"], ty(eq["type"]) if "type" in eq else eq.get("constant", "_")))
            else:
                parts.append("%s: %s" % (c["name"], bounds(b.get("constraint", []))))
        return "<%s>" % ", ".join(parts) if parts else ""
    if "parenthesized" in a:
        p = a["parenthesized"]
        out = "(%s)" % ", ".join(ty(t) for t in p["inputs"])
        if p.get("output"):
            out += " -> " + ty(p["output"])
        return out
    return ""


def path_of(p):
    # The last segment: `Duration`, not `std::time::Duration` or however the source spelled it, so a
    # listing changes only when the API does.
    return p["path"].rsplit("::", 1)[-1] + generic_args(p.get("args"))


def bounds(bs):
    out = []
    for b in bs:
        if "trait_bound" in b:
            t = b["trait_bound"]
            mod = "?" if t.get("modifier") == "maybe" else ""
            out.append(mod + path_of(t["trait"]))
        elif "outlives" in b:
            out.append(b["outlives"])
        else:
            out.append("_")
    return " + ".join(out)


def ty(t):
    if t is None:
        return "()"
    (kind, v), = t.items()
    if kind == "resolved_path":
        return path_of(v)
    if kind == "generic":
        return v
    if kind == "primitive":
        return v
    if kind == "borrowed_ref":
        lt = (v["lifetime"] + " ") if v.get("lifetime") else ""
        return "&%s%s%s" % (lt, "mut " if v["is_mutable"] else "", ty(v["type"]))
    if kind == "raw_pointer":
        return "*%s %s" % ("mut" if v["is_mutable"] else "const", ty(v["type"]))
    if kind == "tuple":
        return "(%s)" % ", ".join(ty(x) for x in v) + ("," if len(v) == 1 else "")
    if kind == "slice":
        return "[%s]" % ty(v)
    if kind == "array":
        return "[%s; %s]" % (ty(v["type"]), v["len"])
    if kind == "impl_trait":
        return "impl " + bounds(v)
    if kind == "dyn_trait":
        traits = [path_of(p["trait"]) for p in v["traits"]]
        if v.get("lifetime"):
            traits.append(v["lifetime"])
        return "dyn " + " + ".join(traits)
    if kind == "function_pointer":
        sig = v["sig"]
        out = "fn(%s)" % ", ".join(ty(x[1]) for x in sig["inputs"])
        if sig.get("output"):
            out += " -> " + ty(sig["output"])
        return out
    if kind == "qualified_path":
        trait = v.get("trait")
        self_ty = ty(v["self_type"])
        return "<%s as %s>::%s" % (self_ty, path_of(trait), v["name"]) if trait else "%s::%s" % (self_ty, v["name"])
    if kind == "infer":
        return "_"
    return "<%s>" % kind


def generics(g):
    ps = []
    for p in g.get("params", []):
        k = p["kind"]
        if "lifetime" in k:
            ps.append(p["name"])
        elif "type" in k:
            if k["type"].get("is_synthetic"):
                continue
            b = bounds(k["type"].get("bounds", []))
            ps.append(p["name"] + (": " + b if b else ""))
        elif "const" in k:
            ps.append("const %s: %s" % (p["name"], ty(k["const"]["type"])))
    out = "<%s>" % ", ".join(ps) if ps else ""
    wh = []
    for w in g.get("where_predicates", []):
        if "bound_predicate" in w:
            bp = w["bound_predicate"]
            wh.append("%s: %s" % (ty(bp["type"]), bounds(bp["bounds"])))
    return out, (" where " + ", ".join(wh)) if wh else ""


def fn_sig(name, f):
    g, wh = generics(f["generics"])
    h = f.get("header", {})
    pre = ("const " if h.get("is_const") else "") + ("async " if h.get("is_async") else "") + (
        "unsafe " if h.get("is_unsafe") else "")
    args = []
    for n, t in f["sig"]["inputs"]:
        if n == "self":
            s = ty(t)
            args.append({"Self": "self", "&Self": "&self", "&mut Self": "&mut self"}.get(s, "self: " + s))
        else:
            args.append("%s: %s" % (n, ty(t)))
    out = "%sfn %s%s(%s)" % (pre, name, g, ", ".join(args))
    if f["sig"].get("output"):
        out += " -> " + ty(f["sig"]["output"])
    return out + wh


def fields(ids):
    out = []
    for fid in ids:
        f = item(fid)
        if f and f["visibility"] in ("public", "default"):
            out.append("%s: %s" % (f["name"], ty(f["inner"]["struct_field"])))
    return out


def impls(owner, impl_ids):
    for iid in impl_ids:
        im = item(iid)
        if not im:
            continue
        i = im["inner"]["impl"]
        if i.get("blanket_impl"):
            continue
        if i.get("trait") is None:
            for mid in i["items"]:
                m = item(mid)
                if not m or m["visibility"] != "public":
                    continue
                k = next(iter(m["inner"]))
                if k == "function":
                    add(owner + "::" + m["name"], "pub %s%s" % (fn_sig(owner + "::" + m["name"], m["inner"]["function"]), attrs(m)))
                elif k == "assoc_const":
                    c = m["inner"]["assoc_const"]
                    add(owner + "::" + m["name"], "pub const %s::%s: %s" % (owner, m["name"], ty(c["type"])))
                elif k == "assoc_type":
                    add(owner + "::" + m["name"], "pub type %s::%s" % (owner, m["name"]))
        else:
            neg = "!" if i.get("is_negative") else ""
            g, wh = generics(i.get("generics", {}))
            if path_of(i["trait"]).split("<")[0] in NOISE:
                continue
            add(owner + " ~impl", "impl%s %s%s for %s%s" % (g, neg, path_of(i["trait"]), owner, wh))


def visit(it, path):
    k = next(iter(it["inner"]))
    v = it["inner"][k]
    a = attrs(it)
    if k == "module":
        if path.count("::"):
            add(path, "pub mod %s%s" % (path, a))
        for cid in v["items"]:
            c = item(cid)
            if c is None or c["visibility"] != "public":
                continue
            if "use" in c["inner"]:
                u = c["inner"]["use"]
                target = item(u["id"]) if u.get("id") is not None else None
                if u["is_glob"]:
                    if target and "module" in target["inner"]:
                        visit_children(target, path)
                    else:
                        add(path + "::*", "pub use %s::*" % u["source"])
                elif target is not None:
                    visit(dict(target, name=u["name"]), path + "::" + u["name"])
                else:
                    src = u["source"]
                    if u.get("id") is not None and str(u["id"]) in paths:
                        src = "::".join(paths[str(u["id"])]["path"])
                    alias = "" if src.rsplit("::", 1)[-1] == u["name"] else " as " + u["name"]
                    add(path + "::" + u["name"], "pub use %s%s (in %s)" % (src, alias, path))
            else:
                visit(c, path + "::" + c["name"])
    elif k == "struct":
        g, wh = generics(v["generics"])
        kind = v["kind"]
        if kind == "unit":
            add(path, "pub struct %s%s;%s%s" % (path, g, wh, a))
        elif "tuple" in kind:
            fs = ["pub " + ty(item(f)["inner"]["struct_field"]) if f is not None and item(f) else "_" for f in kind["tuple"]]
            add(path, "pub struct %s%s(%s)%s%s" % (path, g, ", ".join(fs), wh, a))
        else:
            add(path, "pub struct %s%s%s%s" % (path, g, wh, a))
            for f in fields(kind["plain"]["fields"]):
                add(path + "::" + f.split(":")[0], "pub %s::%s" % (path, f))
        impls(path, v["impls"])
    elif k == "enum":
        g, wh = generics(v["generics"])
        add(path, "pub enum %s%s%s%s" % (path, g, wh, a))
        for vid in v["variants"]:
            var = item(vid)
            vk = var["inner"]["variant"]["kind"]
            va = attrs(var)
            if vk == "plain":
                add(path + "::" + var["name"], "pub %s::%s%s" % (path, var["name"], va))
            elif "tuple" in vk:
                fs = [ty(item(f)["inner"]["struct_field"]) if f is not None else "_" for f in vk["tuple"]]
                add(path + "::" + var["name"], "pub %s::%s(%s)%s" % (path, var["name"], ", ".join(fs), va))
            else:
                fs = fields(vk["struct"]["fields"])
                add(path + "::" + var["name"], "pub %s::%s { %s }%s" % (path, var["name"], ", ".join(fs), va))
        impls(path, v["impls"])
    elif k == "function":
        add(path, "pub %s%s" % (fn_sig(path, v), a))
    elif k == "constant":
        add(path, "pub const %s: %s" % (path, ty(v["type"])))
    elif k == "static":
        add(path, "pub static %s: %s" % (path, ty(v["type"])))
    elif k == "type_alias":
        g, wh = generics(v["generics"])
        add(path, "pub type %s%s = %s%s" % (path, g, ty(v["type"]), wh))
    elif k == "trait":
        g, wh = generics(v["generics"])
        sup = bounds(v.get("bounds", []))
        add(path, "pub trait %s%s%s%s%s" % (path, g, (": " + sup) if sup else "", wh, a))
        for mid in v["items"]:
            m = item(mid)
            mk = next(iter(m["inner"]))
            if mk == "function":
                add(path + "::" + m["name"], "pub %s" % fn_sig(path + "::" + m["name"], m["inner"]["function"]))
            elif mk == "assoc_type":
                b = bounds(m["inner"]["assoc_type"].get("bounds", []))
                add(path + "::" + m["name"], "pub type %s::%s%s" % (path, m["name"], (": " + b) if b else ""))
            elif mk == "assoc_const":
                add(path + "::" + m["name"], "pub const %s::%s: %s" % (path, m["name"], ty(m["inner"]["assoc_const"]["type"])))
    elif k == "macro":
        add(path, "pub macro %s!" % path)
    else:
        add(path, "pub %s %s" % (k, path))


def visit_children(module, path):
    visit(dict(module, inner={"module": dict(module["inner"]["module"])}), path)


root = item(doc["root"])
visit(root, root["name"])
sys.stdout.write("".join(text + "\n" for _, text in sorted(lines)))
