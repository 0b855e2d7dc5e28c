//! A small exact decimal (`i128` mantissa, base-10 scale) for the expression evaluator: enough for
//! MySQL's DECIMAL arithmetic on the values a filter sees (`0.1 + 0.2 = 0.3` is TRUE, as in MySQL).
//! Every operation is checked: an overflow is `None`, and the caller falls back to DOUBLE.

use std::cmp::Ordering;

/// Largest scale kept (MySQL's DECIMAL allows 30).
const MAX_SCALE: u32 = 30;

/// `m × 10^-s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dec {
    pub m: i128,
    pub s: u32,
}

fn pow10(k: u32) -> Option<i128> {
    10i128.checked_pow(k)
}

impl Dec {
    pub fn from_i128(v: i128) -> Dec {
        Dec { m: v, s: 0 }
    }

    /// Parses `[-+]digits[.digits]` (no exponent).
    pub fn parse(text: &str) -> Option<Dec> {
        let t = text.trim();
        let (neg, digits) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() as u32 > MAX_SCALE {
            return None;
        }
        let mut m: i128 = 0;
        for c in int.bytes().chain(frac.bytes()) {
            m = m.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
        }
        Some(Dec {
            m: if neg { -m } else { m },
            s: frac.len() as u32,
        })
    }

    fn rescale(self, s: u32) -> Option<Dec> {
        if s < self.s {
            return None;
        }
        Some(Dec {
            m: self.m.checked_mul(pow10(s - self.s)?)?,
            s,
        })
    }

    fn align(a: Dec, b: Dec) -> Option<(Dec, Dec)> {
        let s = a.s.max(b.s);
        Some((a.rescale(s)?, b.rescale(s)?))
    }

    pub fn checked_add(self, o: Dec) -> Option<Dec> {
        let (a, b) = Self::align(self, o)?;
        Some(
            Dec {
                m: a.m.checked_add(b.m)?,
                s: a.s,
            }
            .normalize(),
        )
    }

    pub fn checked_sub(self, o: Dec) -> Option<Dec> {
        self.checked_add(Dec {
            m: o.m.checked_neg()?,
            s: o.s,
        })
    }

    pub fn checked_mul(self, o: Dec) -> Option<Dec> {
        let s = self.s + o.s;
        if s > 2 * MAX_SCALE {
            return None;
        }
        Some(
            Dec {
                m: self.m.checked_mul(o.m)?,
                s,
            }
            .normalize(),
        )
    }

    /// MySQL's `/`: the result has the dividend's scale plus 4 (`div_precision_increment`),
    /// rounded half away from zero. `None` on overflow; the caller checks for zero first.
    pub fn checked_div(self, o: Dec) -> Option<Dec> {
        if o.m == 0 {
            return None;
        }
        let target = (self.s + 4).min(MAX_SCALE);
        // self.m/10^self.s ÷ o.m/10^o.s = (self.m × 10^(o.s + target − self.s)) / o.m × 10^-target
        let num = self.m.checked_mul(pow10(o.s + target - self.s)?)?;
        let q = num / o.m;
        let r = num % o.m;
        let round = if r.checked_abs()?.checked_mul(2)? >= o.m.checked_abs()? {
            if (num < 0) != (o.m < 0) { -1 } else { 1 }
        } else {
            0
        };
        Some(
            Dec {
                m: q + round,
                s: target,
            }
            .normalize_to_min(self.s),
        )
    }

    /// Remainder with the sign of the dividend (MySQL's `%` on decimals).
    pub fn checked_rem(self, o: Dec) -> Option<Dec> {
        let (a, b) = Self::align(self, o)?;
        if b.m == 0 {
            return None;
        }
        Some(Dec {
            m: a.m % b.m,
            s: a.s,
        })
    }

    /// Drops trailing fractional zeros.
    fn normalize(self) -> Dec {
        self.normalize_to_min(0)
    }

    fn normalize_to_min(mut self, min: u32) -> Dec {
        while self.s > min && self.m % 10 == 0 {
            self.m /= 10;
            self.s -= 1;
        }
        self
    }

    pub fn cmp_dec(self, o: Dec) -> Ordering {
        match Self::align(self, o) {
            Some((a, b)) => a.m.cmp(&b.m),
            None => self.to_f64().total_cmp(&o.to_f64()),
        }
    }

    pub fn to_f64(self) -> f64 {
        self.m as f64 / 10f64.powi(self.s as i32)
    }

    pub fn is_zero(self) -> bool {
        self.m == 0
    }

    /// Truncated toward zero.
    pub fn trunc(self) -> i128 {
        match pow10(self.s) {
            Some(p) => self.m / p,
            None => 0,
        }
    }

    /// Rounded half away from zero to `d` fractional digits (negative `d` rounds left of the
    /// point), MySQL's ROUND on exact values.
    pub fn round(self, d: i64) -> Option<Dec> {
        let d = d.clamp(-38, MAX_SCALE as i64);
        if d >= self.s as i64 {
            return Some(self);
        }
        let drop = (self.s as i64 - d) as u32;
        let p = pow10(drop)?;
        let q = self.m / p;
        let r = self.m % p;
        let q = if r.checked_abs()?.checked_mul(2)? >= p {
            q + self.m.signum()
        } else {
            q
        };
        if d >= 0 {
            Some(Dec { m: q, s: d as u32 })
        } else {
            Some(Dec {
                m: q.checked_mul(pow10((-d) as u32)?)?,
                s: 0,
            })
        }
    }

    pub fn abs(self) -> Option<Dec> {
        Some(Dec {
            m: self.m.checked_abs()?,
            s: self.s,
        })
    }

    pub fn checked_neg(self) -> Option<Dec> {
        Some(Dec {
            m: self.m.checked_neg()?,
            s: self.s,
        })
    }

    /// Rounded toward −∞ (`up == false`) or +∞ (`up == true`) to an integer.
    pub fn floor_ceil(self, up: bool) -> i128 {
        let t = self.trunc();
        let exact = pow10(self.s).is_some_and(|p| self.m % p == 0);
        if exact {
            t
        } else if up && self.m > 0 {
            t + 1
        } else if !up && self.m < 0 {
            t - 1
        } else {
            t
        }
    }
}

impl std::fmt::Display for Dec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let neg = self.m < 0;
        let digits = self.m.unsigned_abs().to_string();
        let s = self.s as usize;
        let body = if s == 0 {
            digits
        } else if digits.len() > s {
            format!(
                "{}.{}",
                &digits[..digits.len() - s],
                &digits[digits.len() - s..]
            )
        } else {
            format!("0.{}{}", "0".repeat(s - digits.len()), digits)
        };
        if neg {
            write!(f, "-{body}")
        } else {
            f.write_str(&body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap_or_else(|| panic!("{s}"))
    }

    #[test]
    fn arithmetic_table() {
        let cases: &[(&str, char, &str, &str)] = &[
            ("0.1", '+', "0.2", "0.3"),
            ("1.50", '+', "2", "3.5"),
            ("-1.25", '-', "0.75", "-2"),
            ("1.5", '*', "1.5", "2.25"),
            ("1", '/', "3", "0.3333"),
            ("2", '/', "3", "0.6667"),
            ("-2", '/', "3", "-0.6667"),
            ("10", '/', "4", "2.5"),
            ("1.00", '/', "8", "0.125"),
            ("7.5", '%', "2", "1.5"),
            ("-7.5", '%', "2", "-1.5"),
        ];
        for &(a, op, b, want) in cases {
            let (a, b) = (d(a), d(b));
            let got = match op {
                '+' => a.checked_add(b),
                '-' => a.checked_sub(b),
                '*' => a.checked_mul(b),
                '/' => a.checked_div(b),
                _ => a.checked_rem(b),
            }
            .unwrap_or_else(|| panic!("{a} {op} {b}"));
            assert_eq!(
                got.cmp_dec(d(want)),
                Ordering::Equal,
                "{a} {op} {b} = {got}"
            );
        }
    }

    #[test]
    fn parse_display_round() {
        assert_eq!(d("-0012.3400").to_string(), "-12.34");
        assert_eq!(d(".5").to_string(), "0.5");
        assert_eq!(d("0.05").to_string(), "0.05");
        assert!(Dec::parse("1e5").is_none());
        assert!(Dec::parse("-").is_none());
        assert_eq!(d("2.5").round(0).map(|x| x.to_string()), Some("3".into()));
        assert_eq!(d("-2.5").round(0).map(|x| x.to_string()), Some("-3".into()));
        assert_eq!(
            d("1.2345").round(2).map(|x| x.to_string()),
            Some("1.23".into())
        );
        assert_eq!(
            d("155").round(-1).map(|x| x.to_string()),
            Some("160".into())
        );
        assert_eq!(d("-1.5").floor_ceil(false), -2);
        assert_eq!(d("-1.5").floor_ceil(true), -1);
        assert_eq!(d("2.0").floor_ceil(true), 2);
        assert_eq!(d("3").cmp_dec(d("3.000")), Ordering::Equal);
    }

    #[test]
    fn overflow_is_none() {
        let big = Dec::from_i128(i128::MAX);
        assert!(big.checked_add(Dec::from_i128(1)).is_none());
        assert!(big.checked_mul(Dec::from_i128(2)).is_none());
    }
}
