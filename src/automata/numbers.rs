//! Numeric bounds (`minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum`, both draft-4 boolean and numeric forms) as exact
//! regular languages over JSON number text.
//!
//! Bounded numbers are written without an exponent (output format); the
//! regexes here are exact on such text and are intersected with the number
//! syntax in [`crate::automata::strings`]. A bound is read from its JSON text exactly
//! (no float rounding): `0.1` is the decimal 0.1.

use crate::automata::lexer::digits_range;
use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, Repetition};

/// A non-negative decimal: integer digits (no leading zeros, "0" for zero)
/// and fraction digits (no trailing zeros).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dec {
    pub neg: bool,
    pub int: Vec<u32>,
    pub frac: Vec<u32>,
}

impl Dec {
    pub fn is_zero(&self) -> bool {
        self.int == [0] && self.frac.is_empty()
    }
}

/// Parses JSON number text exactly (`-12.5e3` → 12500).
pub(crate) fn parse_dec(s: &str) -> Option<Dec> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(p) => (&s[..p], s[p + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (ip, fp) = match mant.find('.') {
        Some(p) => (&mant[..p], &mant[p + 1..]),
        None => (mant, ""),
    };
    if ip.is_empty() || !ip.chars().chain(fp.chars()).all(|c| c.is_ascii_digit()) || exp.abs() > 400 {
        return None;
    }
    let mut digits: Vec<u32> = ip.chars().chain(fp.chars()).map(|c| c.to_digit(10).unwrap()).collect();
    let mut point = ip.len() as i64 + exp;
    while point < 1 {
        digits.insert(0, 0);
        point += 1;
    }
    while (digits.len() as i64) < point {
        digits.push(0);
    }
    let mut int: Vec<u32> = digits[..point as usize].to_vec();
    let mut frac: Vec<u32> = digits[point as usize..].to_vec();
    while int.len() > 1 && int[0] == 0 {
        int.remove(0);
    }
    while frac.last() == Some(&0) {
        frac.pop();
    }
    let d = Dec { neg, int, frac };
    Some(if d.is_zero() { Dec { neg: false, ..d } } else { d })
}

/// A fractional `multipleOf` that an f64 holds exactly (a binary
/// fraction `m / 2^k` written in decimal: `0.5`, `0.25`, `1.125`), as the
/// whole number `D` and the digit count `k` with `divisor = D / 10^k`,
/// when `D` is at most 1,000,000. A decimal `D / 10^k` is a binary
/// fraction exactly when `5^k` divides `D`.
pub(crate) fn binary_fraction(v: &serde_json::Value) -> Option<(u64, u32)> {
    let d = parse_dec(&v.as_number()?.to_string())?;
    let k = u32::try_from(d.frac.len()).ok().filter(|&k| (1..=8).contains(&k))?;
    if d.neg || d.int.len() > 7 {
        return None;
    }
    let scaled = d.int.iter().chain(&d.frac).fold(0u64, |a, &x| a * 10 + u64::from(x));
    (scaled <= 1_000_000 && scaled % 5u64.pow(k) == 0).then_some((scaled, k))
}

/// Whether the number written `x` is a whole multiple of the one written
/// `d` in exact decimal arithmetic; `None` past 36 digits.
pub(crate) fn decimal_multiple(x: &str, d: &str) -> Option<bool> {
    let (x, d) = (parse_dec(x)?, parse_dec(d)?);
    let k = x.frac.len().max(d.frac.len());
    let scaled = |n: &Dec| -> Option<i128> {
        let pad = k - n.frac.len();
        let digits = n.int.iter().chain(&n.frac).chain(std::iter::repeat_n(&0, pad));
        (n.int.len() + k <= 36).then(|| digits.fold(0i128, |a, &x| a * 10 + i128::from(x)))
    };
    let (x, d) = (scaled(&x)?, scaled(&d)?);
    (d != 0).then(|| x % d == 0)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Cmp {
    Ge,
    Gt,
    Le,
    Lt,
}

fn class(lo: u32, hi: u32) -> Hir {
    Hir::class(Class::Unicode(ClassUnicode::new([ClassUnicodeRange::new(
        char::from_digit(lo, 10).unwrap(),
        char::from_digit(hi, 10).unwrap(),
    )])))
}

fn digits(min: u32, max: Option<u32>) -> Hir {
    Hir::repetition(Repetition { min, max, greedy: true, sub: Box::new(class(0, 9)) })
}

fn never() -> Hir {
    Hir::fail()
}

fn alt(v: Vec<Hir>) -> Hir {
    if v.is_empty() {
        never()
    } else {
        Hir::alternation(v)
    }
}

/// Non-negative JSON integers (`0` or no leading zero, at most `max_len`
/// digits) strictly greater (`Gt`) or strictly less (`Lt`) than `n`.
fn int_strict(n: &[u32], cmp: Cmp, max_len: usize) -> Hir {
    let len = n.len();
    let mut alts = Vec::new();
    match cmp {
        Cmp::Gt => {
            // longer numbers
            if len < max_len {
                alts.push(Hir::concat(vec![class(1, 9), digits(len as u32, Some(max_len as u32 - 1))]));
            }
            // same length, larger
            let hi = vec![9; len];
            if n != hi.as_slice() {
                let mut lo = n.to_vec();
                // n + 1
                let mut i = len;
                while i > 0 {
                    i -= 1;
                    if lo[i] == 9 {
                        lo[i] = 0;
                    } else {
                        lo[i] += 1;
                        break;
                    }
                }
                alts.push(digits_range(&lo, &hi, 10));
            }
        }
        Cmp::Lt => {
            if n == [0] {
                return never();
            }
            // shorter numbers: 0, then 1..len-1 digits without leading zero
            alts.push(Hir::literal(*b"0"));
            if len >= 3 {
                alts.push(Hir::concat(vec![class(1, 9), digits(1, Some(len as u32 - 2))]));
            }
            if len >= 2 {
                alts.push(class(1, 9));
            }
            // same length, smaller, no leading zero
            let lo: Vec<u32> =
                if len == 1 { vec![0] } else { std::iter::once(1).chain(std::iter::repeat_n(0, len - 1)).collect() };
            if n > lo.as_slice() {
                let mut hi = n.to_vec();
                let mut i = len;
                while i > 0 {
                    i -= 1;
                    if hi[i] == 0 {
                        hi[i] = 9;
                    } else {
                        hi[i] -= 1;
                        break;
                    }
                }
                if len == 1 {
                    // 0 is already listed; 1..=n-1
                    if n[0] >= 2 {
                        alts.push(class(1, n[0] - 1));
                    }
                } else {
                    alts.push(digits_range(&lo, &hi, 10));
                }
            }
        }
        _ => unreachable!(),
    }
    alt(alts)
}

/// Digit strings `D` (possibly empty, empty = 0) with `0.D cmp 0.f`.
fn frac_cmp(f: &[u32], cmp: Cmp) -> Hir {
    if f.iter().all(|&d| d == 0) {
        return match cmp {
            Cmp::Ge => digits(0, None),
            Cmp::Gt => Hir::concat(vec![digits(0, None), class(1, 9), digits(0, None)]),
            Cmp::Le => {
                Hir::repetition(Repetition { min: 0, max: None, greedy: true, sub: Box::new(Hir::literal(*b"0")) })
            }
            Cmp::Lt => never(),
        };
    }
    let f0 = f[0];
    let rest = frac_cmp(&f[1..], cmp);
    let mut alts = Vec::new();
    match cmp {
        Cmp::Ge | Cmp::Gt => {
            if f0 < 9 {
                alts.push(Hir::concat(vec![class(f0 + 1, 9), digits(0, None)]));
            }
        }
        Cmp::Le | Cmp::Lt => {
            alts.push(Hir::empty());
            if f0 > 0 {
                alts.push(Hir::concat(vec![class(0, f0 - 1), digits(0, None)]));
            }
        }
    }
    alts.push(Hir::concat(vec![class(f0, f0), rest]));
    alt(alts)
}

/// Non-negative number text `I(.F)?` with value `cmp` the non-negative `d`.
/// `integer` restricts to no fraction.
fn nonneg_cmp(d: &Dec, cmp: Cmp, integer: bool, max_len: usize) -> Hir {
    let strict = if matches!(cmp, Cmp::Ge | Cmp::Gt) { Cmp::Gt } else { Cmp::Lt };
    let any_frac = if integer {
        Hir::empty()
    } else {
        Hir::repetition(Repetition {
            min: 0,
            max: Some(1),
            greedy: true,
            sub: Box::new(Hir::concat(vec![Hir::literal(*b"."), digits(1, None)])),
        })
    };
    let int_lit = Hir::literal(d.int.iter().map(|&x| b'0' + x as u8).collect::<Vec<u8>>());
    let same_int = if integer {
        // no fraction: value == int part
        let ok = match cmp {
            Cmp::Ge => d.frac.is_empty(),
            Cmp::Gt => false,
            Cmp::Le => true,
            Cmp::Lt => !d.frac.is_empty(),
        };
        if ok {
            int_lit
        } else {
            never()
        }
    } else {
        // Optional fraction compared with d.frac. (`1.` never occurs: the
        // number syntax requires digits after the point.)
        let f = frac_cmp(&d.frac, cmp);
        let with_point = Hir::concat(vec![Hir::literal(*b"."), f]);
        let no_point_ok = match cmp {
            Cmp::Ge => d.frac.is_empty(),
            Cmp::Gt => false,
            Cmp::Le => true,
            Cmp::Lt => !d.frac.is_empty(),
        };
        let tail = if no_point_ok { alt(vec![Hir::empty(), with_point]) } else { with_point };
        Hir::concat(vec![int_lit, tail])
    };
    alt(vec![Hir::concat(vec![int_strict(&d.int, strict, max_len), any_frac]), same_int])
}

/// JSON number text (no exponent) whose value `cmp` `bound`.
pub(crate) fn cmp_regex(bound: &Dec, cmp: Cmp, integer: bool, max_len: usize) -> Hir {
    let any_nonneg = Hir::concat(vec![
        Hir::class(Class::Unicode(ClassUnicode::new([ClassUnicodeRange::new('0', '9')]))),
        Hir::repetition(Repetition {
            min: 0,
            max: None,
            greedy: true,
            sub: Box::new(Hir::class(Class::Unicode(ClassUnicode::new([
                ClassUnicodeRange::new('0', '9'),
                ClassUnicodeRange::new('.', '.'),
            ])))),
        }),
    ]);
    let abs = Dec { neg: false, ..bound.clone() };
    let flip = |c: Cmp| match c {
        Cmp::Ge => Cmp::Le,
        Cmp::Gt => Cmp::Lt,
        Cmp::Le => Cmp::Ge,
        Cmp::Lt => Cmp::Gt,
    };
    let minus = |h: Hir| Hir::concat(vec![Hir::literal(*b"-"), h]);
    let lower = matches!(cmp, Cmp::Ge | Cmp::Gt);
    // x = +y (y >= 0) or x = -y (y >= 0; -0 is 0).
    let (pos, neg) = if !bound.neg {
        if lower {
            // +y cmp b ; -y >= b only if y == 0 and (b == 0 and Ge)
            let n = if bound.is_zero() && cmp == Cmp::Ge {
                minus(nonneg_cmp(&abs, Cmp::Le, integer, max_len))
            } else {
                never()
            };
            (nonneg_cmp(&abs, cmp, integer, max_len), n)
        } else {
            // +y <= b ; -y <= b always (b >= 0), except -0 < 0 false
            let n = if bound.is_zero() && cmp == Cmp::Lt {
                minus(nonneg_cmp(&abs, Cmp::Gt, integer, max_len))
            } else {
                minus(any_nonneg.clone())
            };
            (nonneg_cmp(&abs, cmp, integer, max_len), n)
        }
    } else if lower {
        // b < 0: +y always; -y >= b  <=> y <= |b|
        (any_nonneg, minus(nonneg_cmp(&abs, flip(cmp), integer, max_len)))
    } else {
        // b < 0: +y never; -y <= b <=> y >= |b|
        (never(), minus(nonneg_cmp(&abs, flip(cmp), integer, max_len)))
    };
    alt(vec![pos, neg])
}

/// Exact order of two decimals.
pub(crate) fn cmp_dec(a: &Dec, b: &Dec) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let mag = |x: &Dec, y: &Dec| -> Ordering {
        x.int.len().cmp(&y.int.len()).then_with(|| x.int.cmp(&y.int)).then_with(|| {
            let n = x.frac.len().max(y.frac.len());
            let at = |v: &[u32], i: usize| v.get(i).copied().unwrap_or(0);
            (0..n).map(|i| at(&x.frac, i).cmp(&at(&y.frac, i))).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
        })
    };
    let sign = |x: &Dec| {
        if x.is_zero() {
            0
        } else if x.neg {
            -1
        } else {
            1
        }
    };
    match sign(a).cmp(&sign(b)) {
        Ordering::Equal if sign(a) < 0 => mag(b, a),
        Ordering::Equal => mag(a, b),
        o => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automata::lexer::compile_hir;
    use regex_automata::dfa::Automaton;
    use regex_automata::{util::start, Anchored};

    fn matches(h: &Hir, s: &str) -> bool {
        let dfa = compile_hir(h, 1 << 24).unwrap();
        let mut id = dfa.start_state(&start::Config::new().anchored(Anchored::Yes)).unwrap();
        for &b in s.as_bytes() {
            id = dfa.next_state(id, b);
        }
        dfa.is_match_state(dfa.next_eoi_state(id))
    }

    #[test]
    fn parse_is_exact() {
        assert_eq!(parse_dec("12.50").unwrap(), Dec { neg: false, int: vec![1, 2], frac: vec![5] });
        assert_eq!(parse_dec("-1.5e2").unwrap(), Dec { neg: true, int: vec![1, 5, 0], frac: vec![] });
        assert_eq!(parse_dec("2.5E-3").unwrap(), Dec { neg: false, int: vec![0], frac: vec![0, 0, 2, 5] });
        assert_eq!(parse_dec("-0.0").unwrap(), Dec { neg: false, int: vec![0], frac: vec![] });
    }

    #[test]
    fn comparisons_agree_with_f64_on_a_grid() {
        let bounds =
            ["0", "1", "-1", "10", "99", "100", "-100", "0.5", "-0.5", "2.25", "-2.25", "1000000", "0.001", "123.456"];
        let mut values: Vec<String> = Vec::new();
        for i in -130..=130 {
            values.push(i.to_string());
        }
        for s in [
            "0.5",
            "-0.5",
            "0.25",
            "2.25",
            "2.250",
            "2.2",
            "2.3",
            "-2.25",
            "-2.2",
            "-2.3",
            "123.456",
            "123.4561",
            "123.455",
            "0.001",
            "0.0009",
            "0.0011",
            "-0",
            "-0.0",
            "0.0",
            "99.99",
            "100.0",
            "100.01",
            "999999",
            "1000000",
            "1000000.5",
            "1000001",
            "1.5",
            "-1.5",
            "-0.001",
        ] {
            values.push(s.to_string());
        }
        for b in bounds {
            let d = parse_dec(b).unwrap();
            let bf: f64 = b.parse().unwrap();
            for cmp in [Cmp::Ge, Cmp::Gt, Cmp::Le, Cmp::Lt] {
                for integer in [false, true] {
                    let h = cmp_regex(&d, cmp, integer, 200);
                    for v in &values {
                        if integer && v.contains('.') {
                            continue;
                        }
                        let x: f64 = v.parse().unwrap();
                        let want = match cmp {
                            Cmp::Ge => x >= bf,
                            Cmp::Gt => x > bf,
                            Cmp::Le => x <= bf,
                            Cmp::Lt => x < bf,
                        };
                        assert_eq!(matches(&h, v), want, "{v} {cmp:?} {b} (integer {integer})");
                    }
                }
            }
        }
    }
}
