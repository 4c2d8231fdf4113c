//! Identifiers and references: every `$ref` of a document made a JSON
//! pointer from the document's root.
//!
//! A `$ref` resolves against the base URI where it stands, and a subschema
//! with an `$id` (draft 4: `id`) starts a resource of its own: `#/$defs/a`
//! inside it means that resource's `$defs`, `#name` one of its `$anchor`s
//! (draft 4–7: an `id`/`$id` that is a bare fragment), and
//! `other.json#/x` the resource whose `$id` resolves to `other.json`. The
//! compiler reads every `$ref` from the root, and a rewrite (a merge, a
//! negation) moves subschemas away from where they stood, so references are
//! resolved once, at their place, before compiling: [`absolutized`]
//! rewrites each one it can resolve inside the document to `#` and the
//! target's pointer from the root. One that it cannot (another document)
//! stays as written and is refused by name later.
//!
//! Under draft 7 and earlier a `$ref` hides its siblings, `$id` too: such an
//! `$id` changes no base URI. Only keywords that hold schemas are read: an
//! `$id` under `enum` or an unknown keyword names nothing.

use serde_json::{Map, Value};

/// The base of a document without an `$id` of its own.
const DEFAULT_BASE: &str = "https://grammask.invalid/schema.json";

/// The document with every `$ref` that resolves inside it rewritten to a
/// pointer from its root (`#/…`); `None` when every `$ref` already is one
/// and no subschema has an identifier that could change what they mean.
/// `draft4`: identifiers are `id` (else `$id`); `legacy_ref`: a `$ref`
/// hides its sibling identifier (draft 7 and earlier).
pub(crate) fn absolutized(root: &Value, draft4: bool, legacy_ref: bool) -> Option<Value> {
    let id_kw = if draft4 { "id" } else { "$id" };
    let mut needed = false;
    scan(root, id_kw, true, &mut needed, 0);
    if !needed {
        return None;
    }
    let reader = Ids { id_kw, legacy_ref };
    let mut index = Index::default();
    let base = match root.get(id_kw).and_then(Value::as_str) {
        Some(id) if !(legacy_ref && root.get("$ref").is_some()) => resolve(DEFAULT_BASE, id),
        _ => DEFAULT_BASE.to_string(),
    };
    reader.index(root, &without_fragment(&base), &mut String::new(), &mut index, 0, true);
    let mut edits = Vec::new();
    reader.edits(root, &without_fragment(&base), &mut String::new(), &index, 0, &mut edits);
    let mut out = root.clone();
    for (at, r) in edits {
        if let Some(m) = out.pointer_mut(&at).and_then(Value::as_object_mut) {
            m.insert("$ref".into(), Value::String(r));
        }
    }
    Some(out)
}

/// Deepest nesting read (deeper documents are refused by the compiler's
/// own depth limit long before).
const MAX_DEPTH: usize = 512;

/// The subschemas of schema object `m`, each with its path below `m`:
/// only where keywords hold schemas (an `$id` inside an unknown keyword,
/// or inside `enum`, identifies nothing).
fn children(m: &Map<String, Value>) -> Vec<(String, &Value)> {
    let esc = |k: &str| k.replace('~', "~0").replace('/', "~1");
    let mut out = Vec::new();
    for (k, v) in m {
        match (k.as_str(), v) {
            (
                "additionalProperties"
                | "additionalItems"
                | "items"
                | "contains"
                | "propertyNames"
                | "not"
                | "if"
                | "then"
                | "else"
                | "unevaluatedItems"
                | "unevaluatedProperties"
                | "contentSchema",
                Value::Object(_) | Value::Bool(_),
            ) => out.push((format!("/{}", esc(k)), v)),
            ("allOf" | "anyOf" | "oneOf" | "prefixItems" | "items", Value::Array(a)) => {
                out.extend(a.iter().enumerate().map(|(i, x)| (format!("/{}/{i}", esc(k)), x)))
            }
            (
                "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" | "dependencies",
                Value::Object(o),
            ) => out.extend(
                o.iter()
                    .filter(|(_, x)| x.is_object() || x.is_boolean())
                    .map(|(n, x)| (format!("/{}/{}", esc(k), esc(n)), x)),
            ),
            _ => {}
        }
    }
    out
}

/// Whether the document needs [`absolutized`]: a `$ref` that is not a
/// pointer from the root, or an identifier below the root.
fn scan(v: &Value, id_kw: &str, at_root: bool, needed: &mut bool, depth: usize) {
    let Value::Object(m) = v else { return };
    if *needed || depth > MAX_DEPTH {
        return;
    }
    if let Some(Value::String(r)) = m.get("$ref") {
        if !(r == "#" || r.starts_with("#/")) {
            *needed = true;
            return;
        }
    }
    let has_id = m.get(id_kw).is_some_and(Value::is_string)
        || m.get("$anchor").is_some_and(Value::is_string)
        || m.get("$dynamicAnchor").is_some_and(Value::is_string);
    if has_id && !at_root {
        *needed = true;
        return;
    }
    for (_, x) in children(m) {
        scan(x, id_kw, false, needed, depth + 1);
    }
}

/// Resources (absolute URI without fragment → pointer) and anchors
/// (absolute URI with `#name` → pointer).
#[derive(Default)]
struct Index {
    resources: ahash::AHashMap<String, String>,
    anchors: ahash::AHashMap<String, String>,
}

struct Ids<'k> {
    id_kw: &'k str,
    legacy_ref: bool,
}

impl Ids<'_> {
    /// The base URI inside object `m`, which stands where `base` holds, and
    /// the bare-fragment anchor its identifier names, if it does.
    fn base_in(&self, m: &Map<String, Value>, base: &str) -> (String, Option<String>) {
        if self.legacy_ref && m.contains_key("$ref") {
            return (base.to_string(), None);
        }
        match m.get(self.id_kw).and_then(Value::as_str) {
            Some(id) if id.starts_with('#') => (base.to_string(), Some(id[1..].to_string())),
            Some(id) => (without_fragment(&resolve(base, id)), None),
            None => (base.to_string(), None),
        }
    }

    fn index(&self, v: &Value, base: &str, at: &mut String, idx: &mut Index, depth: usize, root: bool) {
        let Value::Object(m) = v else { return };
        if depth > MAX_DEPTH {
            return;
        }
        let (inner, bare) = self.base_in(m, base);
        if root || inner != base {
            idx.resources.entry(inner.clone()).or_insert_with(|| at.clone());
        }
        let anchors = [bare, m.get("$anchor").and_then(Value::as_str).map(String::from)]
            .into_iter()
            .chain([m.get("$dynamicAnchor").and_then(Value::as_str).map(String::from)]);
        for name in anchors.flatten() {
            idx.anchors.entry(format!("{inner}#{name}")).or_insert_with(|| at.clone());
        }
        for (path, x) in children(m) {
            let len = at.len();
            at.push_str(&path);
            self.index(x, &inner, at, idx, depth + 1, false);
            at.truncate(len);
        }
    }

    /// The `$ref`s under `v` (at `at`) that resolve in the document, each
    /// with the pointer it becomes.
    fn edits(
        &self,
        v: &Value,
        base: &str,
        at: &mut String,
        idx: &Index,
        depth: usize,
        out: &mut Vec<(String, String)>,
    ) {
        let Value::Object(m) = v else { return };
        if depth > MAX_DEPTH {
            return;
        }
        let (base, _) = self.base_in(m, base);
        if let Some(Value::String(r)) = m.get("$ref") {
            if let Some(t) = target(&base, r, idx) {
                out.push((at.clone(), t));
            }
        }
        for (path, x) in children(m) {
            let len = at.len();
            at.push_str(&path);
            self.edits(x, &base, at, idx, depth + 1, out);
            at.truncate(len);
        }
    }
}

/// `r` resolved against `base` to a pointer from the root (`#/…`, its
/// characters percent-encoded where the compiler decodes them), when it
/// names a place in this document.
fn target(base: &str, r: &str, idx: &Index) -> Option<String> {
    let abs = resolve(base, r);
    let (doc, frag) = match abs.split_once('#') {
        Some((d, f)) => (d.to_string(), f.to_string()),
        None => (abs.clone(), String::new()),
    };
    let at = if frag.is_empty() || frag.starts_with('/') {
        let resource = idx.resources.get(&doc)?;
        // The fragment stays percent-encoded, as the compiler reads it.
        format!("{}{frag}", encode(resource))
    } else {
        encode(idx.anchors.get(&format!("{doc}#{frag}"))?)
    };
    Some(format!("#{at}"))
}

/// Percent-encodes what the compiler's fragment decoding would read.
fn encode(pointer: &str) -> String {
    pointer.replace('%', "%25")
}

fn without_fragment(uri: &str) -> String {
    uri.split('#').next().unwrap_or("").to_string()
}

/// Whether `r` starts with a URI scheme (`http:`, `urn:`).
fn has_scheme(r: &str) -> bool {
    match r.find(':') {
        Some(i) if i > 0 => {
            let s = &r[..i];
            s.as_bytes()[0].is_ascii_alphabetic()
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        }
        _ => false,
    }
}

/// RFC 3986 §5.2: reference `r` resolved against absolute URI `base`.
pub(crate) fn resolve(base: &str, r: &str) -> String {
    if has_scheme(r) {
        return with_dots_removed(r);
    }
    let base = without_fragment(base);
    if r.is_empty() {
        return base;
    }
    if r.starts_with('#') {
        return format!("{base}{r}");
    }
    let Some(colon) = base.find(':') else {
        return r.to_string();
    };
    let (scheme, rest) = (&base[..colon], &base[colon + 1..]);
    if r.starts_with("//") {
        return with_dots_removed(&format!("{scheme}:{r}"));
    }
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find(['/', '?']).unwrap_or(after.len());
            (Some(&after[..end]), &after[end..])
        }
        None => (None, rest),
    };
    let path = path.split('?').next().unwrap_or("");
    let prefix = match authority {
        Some(a) => format!("{scheme}://{a}"),
        None => format!("{scheme}:"),
    };
    if r.starts_with('/') {
        return format!("{prefix}{}", remove_dot_segments(r));
    }
    if r.starts_with('?') {
        return format!("{prefix}{path}{r}");
    }
    let merged = if authority.is_some() && path.is_empty() {
        format!("/{r}")
    } else {
        match path.rfind('/') {
            Some(i) => format!("{}{r}", &path[..=i]),
            None => r.to_string(),
        }
    };
    format!("{prefix}{}", remove_dot_segments(&merged))
}

fn with_dots_removed(uri: &str) -> String {
    let Some(colon) = uri.find(':') else { return uri.to_string() };
    let (scheme, rest) = (&uri[..colon], &uri[colon + 1..]);
    match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            format!("{scheme}://{}{}", &after[..end], remove_dot_segments(&after[end..]))
        }
        None => uri.to_string(),
    }
}

/// RFC 3986 §5.2.4 on a path (a query or fragment after it kept as is).
fn remove_dot_segments(p: &str) -> String {
    let cut = p.find(['?', '#']).unwrap_or(p.len());
    let (path, tail) = (&p[..cut], &p[cut..]);
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = path.split('/').collect();
    for (i, s) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match *s {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("{}{tail}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_resolve_as_rfc_3986_says() {
        let base = "http://a/b/c/d;p?q";
        for (r, want) in [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("#s", "http://a/b/c/d;p?q#s"),
            ("g#s", "http://a/b/c/g#s"),
            ("..", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("urn:x:y", "urn:x:y"),
        ] {
            assert_eq!(resolve(base, r), want, "{r}");
        }
    }

    fn rewritten(doc: Value) -> Value {
        absolutized(&doc, false, false).expect("needs rewriting")
    }

    #[test]
    fn references_become_pointers_from_the_root() {
        // An embedded resource's `#/$defs/b` is its own, not the root's.
        let doc = json!({
            "$id": "http://example.com/root.json",
            "properties": {
                "a": {"$id": "inner.json", "$defs": {"b": {"type": "integer"}}, "properties": {"x": {"$ref": "#/$defs/b"}}},
                "c": {"$ref": "inner.json#/$defs/b"},
                "d": {"$ref": "#named"},
                "e": {"$ref": "http://example.com/root.json#/$defs/b"},
                "f": {"$ref": "other.json"},
                "g": {"enum": [{"$id": "http://example.com/inner.json"}]}
            },
            "$defs": {"b": {"type": "string"}, "n": {"$anchor": "named", "type": "null"}}
        });
        let out = rewritten(doc);
        assert_eq!(out.pointer("/properties/a/properties/x/$ref"), Some(&json!("#/properties/a/$defs/b")));
        assert_eq!(out.pointer("/properties/c/$ref"), Some(&json!("#/properties/a/$defs/b")));
        assert_eq!(out.pointer("/properties/d/$ref"), Some(&json!("#/$defs/n")));
        assert_eq!(out.pointer("/properties/e/$ref"), Some(&json!("#/$defs/b")));
        assert_eq!(out.pointer("/properties/f/$ref"), Some(&json!("other.json")), "another document stays");
    }

    #[test]
    fn identifiers_outside_schemas_name_nothing() {
        let id = "https://x.test/my.json";
        let doc = json!({
            "$defs": {
                "a_unknown": {"not": {"array_of_schemas": [{"$id": id, "type": "null"}]}},
                "a_enum": {"enum": [{"$id": id, "type": "null"}]},
                "real": {"$id": id, "type": "string"}
            },
            "$ref": id
        });
        let out = rewritten(doc);
        assert_eq!(out.pointer("/$ref"), Some(&json!("#/$defs/real")));
    }

    #[test]
    fn legacy_drafts_read_their_own_identifiers() {
        // Draft 4: `id`, and a bare fragment is an anchor.
        let doc =
            json!({"properties": {"a": {"$ref": "#foo"}}, "definitions": {"x": {"id": "#foo", "type": "integer"}}});
        let out = absolutized(&doc, true, true).unwrap();
        assert_eq!(out.pointer("/properties/a/$ref"), Some(&json!("#/definitions/x")));
        // Draft 7: an `$id` beside `$ref` is hidden, so it changes no base.
        let doc = json!({"$id": "http://x/root.json", "definitions": {"d": {"type": "null"}},
            "properties": {"a": {"$id": "http://x/sub/", "$ref": "#/definitions/d"}}});
        let out = absolutized(&doc, false, true).unwrap();
        assert_eq!(out.pointer("/properties/a/$ref"), Some(&json!("#/definitions/d")));
        // Documents of root pointers only are left alone.
        assert!(absolutized(&json!({"$ref": "#/$defs/a", "$defs": {"a": {}}}), false, false).is_none());
    }
}
