//! Configuration: how a schema is compiled ([`Config`]) and the resource
//! limits that bound compile and step cost ([`Limits`]).

/// Whitespace the grammar allows between JSON tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whitespace {
    /// No whitespace at all: `{"a":1,"b":[2,3]}`. The default.
    Compact,
    /// Up to `max_run` bytes of `[ \t\n\r]` at each place JSON allows
    /// whitespace inside objects and arrays (never before the document or
    /// after it). Bounded so that a model cannot loop on blanks forever.
    /// `Flexible { max_run: 1 }` covers Python's `json.dumps` style
    /// (`{"a": 1, "b": [2, 3]}`).
    Flexible {
        /// Longest run of whitespace allowed in one place.
        max_run: u8,
    },
}

/// Order in which object members may appear in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyOrder {
    /// Declared properties in the order the schema lists them (each optional
    /// one may be skipped), then additional properties. The smallest
    /// grammar; what a server that re-serializes output wants.
    Schema,
    /// Declared properties in any order, each at most once, additional
    /// properties anywhere among them. The default. Tracking which members
    /// were emitted takes one state per subset, so an object that declares
    /// more than [`Limits::max_unordered_properties`] properties (or, past
    /// 10, one with `maxProperties`) falls back to [`PropertyOrder::Schema`]
    /// (still sound; documented in the README).
    Any,
}

/// Resource limits. Each has a default that covers real-world schemas; a
/// schema or a step that exceeds one fails with a typed error.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most automaton states one compiled grammar may have. Default 200,000.
    pub max_states: usize,
    /// Most bytes one terminal DFA (a string pattern, a key set) may take.
    /// Default 8 MiB.
    pub max_terminal_bytes: usize,
    /// Most array positions spelled out to enforce `minItems`/`maxItems`/
    /// `prefixItems`. Default 4,096.
    pub max_array_positions: usize,
    /// Most parallel parses a matcher keeps (an ambiguous `anyOf` keeps
    /// several). Default 512.
    pub max_parse_states: usize,
    /// Deepest nesting of inline subschemas (`anyOf` in `anyOf`…). Default 64.
    pub max_schema_depth: usize,
    /// Objects declaring at most this many properties (24 at most) accept
    /// them in any order under [`PropertyOrder::Any`]; larger ones keep
    /// schema order. Up to 10, the object's automaton has a state per
    /// subset of members written; past 10 the subset lives in the state id
    /// (a *keyset* machine), which takes neither `maxProperties` nor a
    /// `minProperties` above the required members: such objects keep
    /// schema order. Default 24.
    pub max_unordered_properties: usize,
    /// Most states of objects past 10 declared properties (see
    /// [`Limits::max_unordered_properties`]) whose masks a compiled grammar
    /// keeps: such an object of 24 members has 16 million states, of which
    /// a run visits one per member written. Past this many, a state's mask
    /// is computed at each use (a walk of the tokens that start with `,` or
    /// `}`), so a long-running server's cache stays bounded. Default 4,096.
    pub keyset_mask_cache: usize,
    /// Strings with a `maxLength` of at least this many characters count
    /// their length at run time (virtual states) instead of in the
    /// automaton, which would need `maxLength` copies of the string's
    /// states. Default 64.
    pub counted_strings_from: u64,
    /// Most states of one constrained-string automaton (the product of a
    /// string's patterns, `not` patterns, formats and length bounds below
    /// [`Limits::counted_strings_from`]). Products grow multiplicatively
    /// with the patterns they intersect and build at a few µs a state; past
    /// this many the schema is refused with `LimitExceeded` (keyword
    /// `pattern`, `not`, …) instead of building on. A state of a product of
    /// k > 4 constraints counts as (10 + k)/14 states (its work grows with
    /// them). Default 50,000 (a refusal within about 40–80 ms on the
    /// development machine).
    pub max_string_states: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_states: 200_000,
            max_terminal_bytes: 8 << 20,
            max_array_positions: 4096,
            max_parse_states: 512,
            max_schema_depth: 64,
            max_unordered_properties: 24,
            keyset_mask_cache: 4096,
            counted_strings_from: 64,
            max_string_states: 50_000,
        }
    }
}

/// How a schema is compiled. Cheap to clone; setters chain.
///
/// ```
/// use grammask::{Config, Whitespace};
/// let cfg = Config::new().strict(false).whitespace(Whitespace::Flexible { max_run: 2 });
/// assert!(!cfg.get_strict());
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    strict: bool,
    whitespace: Whitespace,
    property_order: PropertyOrder,
    limits: Limits,
    deadline: Option<std::time::Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            strict: true,
            whitespace: Whitespace::Compact,
            property_order: PropertyOrder::Any,
            limits: Limits::default(),
            deadline: None,
        }
    }
}

impl Config {
    /// The defaults: strict, compact whitespace, any member order, default limits.
    pub fn new() -> Config {
        Config::default()
    }
    /// Strict mode (default `true`): a keyword the compiler cannot enforce is
    /// a compile error naming it. With `false`, such keywords are dropped and
    /// each drop is listed in [`CompiledGrammar::relaxations`](crate::CompiledGrammar::relaxations).
    pub fn strict(mut self, yes: bool) -> Config {
        self.strict = yes;
        self
    }
    /// Whitespace policy (default [`Whitespace::Compact`]).
    pub fn whitespace(mut self, ws: Whitespace) -> Config {
        self.whitespace = ws;
        self
    }
    /// Member order (default [`PropertyOrder::Any`]).
    pub fn property_order(mut self, order: PropertyOrder) -> Config {
        self.property_order = order;
        self
    }
    /// Resource limits (default [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Config {
        self.limits = limits;
        self
    }
    /// A wall-clock budget for each compile (default none): a compile still
    /// running after `d` stops with [`CompileErrorKind::LimitExceeded`](crate::CompileErrorKind)
    /// at the schema location it was working on. The work limits in
    /// [`Limits`] bound what a schema may build; this bounds the time on a
    /// slow or busy machine.
    pub fn deadline(mut self, d: std::time::Duration) -> Config {
        self.deadline = Some(d);
        self
    }
    /// The compile deadline, if any.
    pub fn get_deadline(&self) -> Option<std::time::Duration> {
        self.deadline
    }
    /// What decides the output (strict mode, whitespace, member order,
    /// limits), as text for fingerprints: the deadline is left out.
    pub(crate) fn output_key(&self) -> String {
        format!("{:?} {:?} {:?} {:?}", self.strict, self.whitespace, self.property_order, self.limits)
    }
    /// Whether strict mode is on.
    pub fn get_strict(&self) -> bool {
        self.strict
    }
    /// The whitespace policy.
    pub fn get_whitespace(&self) -> Whitespace {
        self.whitespace
    }
    /// The member order.
    pub fn get_property_order(&self) -> PropertyOrder {
        self.property_order
    }
    /// The limits.
    pub fn get_limits(&self) -> &Limits {
        &self.limits
    }
}
