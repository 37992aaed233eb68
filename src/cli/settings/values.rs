//! The values of flags more than one command takes, each parsed and checked here and only here:
//! durations (`--lock-timeout`, `--progress-interval`), `--rate`, `--parallelism`, amounts
//! (`--max-fees`), `--max-prune`, `--max-failure-rate` and `--target`. Pure functions of the
//! flag's text; where a default comes from (flag, environment, cardform.toml) is the parent's.

use rust_decimal::Decimal;
use std::str::FromStr;
use std::time::Duration;

use crate::cli::CliError;

/// `--lock-timeout`: how long a writing command waits for another holder of the state lock.
pub fn lock_wait(raw: &str) -> Result<Duration, CliError> {
    parse_duration("--lock-timeout", raw)
}

/// `--rate`: requests per second to stay under, when given.
pub fn rate(rate: Option<f64>) -> Result<Option<f64>, CliError> {
    match rate {
        Some(r) if !r.is_finite() || r <= 0.0 => Err(CliError::Usage(format!(
            "--rate {r}: expected requests per second > 0"
        ))),
        r => Ok(r),
    }
}

/// `--max-prune 25` or `--max-prune 5%`.
pub fn max_prune(raw: &str) -> Result<crate::plan::MaxPrune, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--max-prune {raw:?}: expected a number of cards (25) or a share of the cards in state (5%)"
        ))
    };
    let raw = raw.trim();
    match raw.strip_suffix('%') {
        Some(p) => match Decimal::from_str(p.trim()) {
            Ok(p) if !p.is_sign_negative() && p <= Decimal::ONE_HUNDRED => {
                Ok(crate::plan::MaxPrune::Percent(p))
            }
            _ => Err(bad()),
        },
        None => raw
            .parse()
            .map(crate::plan::MaxPrune::Count)
            .map_err(|_| bad()),
    }
}

/// `--target`s, parsed.
pub fn targets(raw: &[String]) -> Result<Vec<crate::plan::Target>, CliError> {
    raw.iter()
        .map(|t| crate::plan::Target::parse(t).map_err(CliError::Usage))
        .collect()
}

/// `--max-failure-rate P%`: the share of finished orders that may fail before apply stops
/// starting new work, as a fraction.
pub fn max_failure_rate(raw: &str) -> Result<Option<Decimal>, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--max-failure-rate {raw:?}: expected a percentage from 0% to 100%, e.g. 5%"
        ))
    };
    let p = Decimal::from_str(raw.trim().trim_end_matches('%')).map_err(|_| bad())?;
    if p.is_sign_negative() || p > Decimal::ONE_HUNDRED {
        return Err(bad());
    }
    Ok((p < Decimal::ONE_HUNDRED).then(|| p / Decimal::ONE_HUNDRED))
}

/// `--parallelism`, or its default: enough cards in flight to keep a `--rate R` provider busy
/// (R/2 cards/s, each about 1–2 s in flight), and never fewer than the executor's default.
pub fn parallelism(n: Option<usize>, rate: Option<f64>) -> Result<usize, CliError> {
    let Some(n) = n else {
        let for_rate = rate.map_or(0, |r| r.ceil() as usize);
        return Ok(crate::exec::DEFAULT_PARALLELISM.max(for_rate));
    };
    if n == 0 {
        return Err(CliError::Usage(
            "--parallelism 0: expected at least 1".into(),
        ));
    }
    Ok(n)
}

/// `--max-fees 100.00`: an exact, non-negative amount.
pub fn parse_amount(flag: &str, s: Option<&str>) -> Result<Option<Decimal>, CliError> {
    let Some(s) = s else { return Ok(None) };
    match Decimal::from_str(s.trim()) {
        Ok(d) if !d.is_sign_negative() => Ok(Some(d)),
        _ => Err(CliError::Usage(format!(
            "{flag} {s:?}: expected a non-negative decimal amount such as 100.00"
        ))),
    }
}

/// `500ms`, `2s`, `1.5s`, `3m`, `1h`; a bare number is seconds.
pub fn parse_duration(flag: &str, s: &str) -> Result<Duration, CliError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value = Decimal::from_str(num)
        .ok()
        .filter(|d| !d.is_sign_negative());
    let millis_per = match unit.trim() {
        "ms" => Some(Decimal::ONE),
        "" | "s" => Some(Decimal::from(1_000)),
        "m" => Some(Decimal::from(60_000)),
        "h" => Some(Decimal::from(3_600_000)),
        _ => None,
    };
    match (value, millis_per) {
        (Some(v), Some(m)) => {
            let ms: u64 = (v * m).trunc().try_into().unwrap_or(u64::MAX);
            Ok(Duration::from_millis(ms))
        }
        _ => Err(CliError::Usage(format!(
            "{flag} {s:?}: expected a duration such as 500ms, 2s, 5m"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("x", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("x", "1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("x", "2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("x", "3m").unwrap(), Duration::from_secs(180));
        assert!(parse_duration("x", "soon").is_err());
        assert!(parse_duration("x", "-1s").is_err());
    }

    #[test]
    fn amounts() {
        assert_eq!(
            parse_amount("x", Some("10.50")).unwrap(),
            Some(Decimal::new(1050, 2))
        );
        assert!(parse_amount("x", Some("-1")).is_err());
        assert!(parse_amount("x", Some("ten")).is_err());
    }
}
