//! Docker's human units (go-units) and time formats: sizes, "2 minutes ago", Go's
//! `time.Time.String()`, and parsing of sizes, durations and `--since`-style timestamps.

/// `units.HumanSizeWithPrecision`: decimal units, `%.Ng`.
pub fn human_size(size: f64, precision: usize) -> String {
    const U: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let (s, i) = scale(size, 1000.0, U.len());
    format!("{}{}", go_g(s, precision), U[i])
}

/// `units.BytesSize`: binary units, `%.4g`.
pub fn bytes_size(size: f64) -> String {
    const U: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let (s, i) = scale(size, 1024.0, U.len());
    format!("{}{}", go_g(s, 4), U[i])
}

fn scale(mut size: f64, base: f64, n: usize) -> (f64, usize) {
    let mut i = 0;
    while size >= base && i < n - 1 {
        size /= base;
        i += 1;
    }
    (size, i)
}

/// Go's `%.Pg`: P significant digits, trailing zeros dropped, exponent form when the
/// exponent is < -4 or >= P.
pub fn go_g(x: f64, p: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let e = format!("{:.*e}", p.saturating_sub(1), x);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = trim_zeros(mant);
        return format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let decimals = (p as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{x:.decimals$}")).to_owned()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs;
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = s / 60;
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = (s + 1800) / 3600;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", s / 3600 / 24 / 365)
}

pub fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// "2 minutes ago" for a Unix time.
pub fn ago(unix: i64) -> String {
    format!("{} ago", human_duration(now().0 - unix))
}

/// The local zone's offset and name at `unix` (libc's localtime_r honours TZ).
fn local_zone(unix: i64) -> (i64, String) {
    // SAFETY: localtime_r fills the tm we own; tm_zone points into libc's static zone names.
    unsafe {
        let t: libc::time_t = unix as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return (0, "UTC".into());
        }
        let name = if tm.tm_zone.is_null() { "UTC".into() } else { std::ffi::CStr::from_ptr(tm.tm_zone).to_string_lossy().into_owned() };
        (tm.tm_gmtoff, name)
    }
}

/// (year, month, day, hour, min, sec) of a Unix time in UTC.
pub fn civil(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn offset_str(off: i64, colon: bool) -> String {
    let sign = if off < 0 { '-' } else { '+' };
    let (h, m) = (off.abs() / 3600, off.abs() / 60 % 60);
    if colon {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}")
    }
}

/// Go's `time.Unix(t, 0).String()` in the local zone: `2024-01-02 15:04:05 +0000 UTC`.
pub fn go_time_string(unix: i64) -> String {
    let (off, name) = local_zone(unix);
    let (y, mo, d, h, mi, s) = civil(unix + off);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} {} {name}", offset_str(off, false))
}

/// Docker's `RFC3339NanoFixed` in the local zone (events, `logs -t` style).
pub fn rfc3339_nano_fixed(unix: i64, nanos: u32) -> String {
    let (off, _) = local_zone(unix);
    let (y, mo, d, h, mi, s) = civil(unix + off);
    let zone = if off == 0 { "Z".to_owned() } else { offset_str(off, true) };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}{zone}")
}

/// Parses an RFC 3339 timestamp (`2024-01-02T15:04:05.5Z`, `...+02:00`) into (secs, nanos).
#[cfg(test)]
fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    parse_time(s, false)
}

/// Date, optional `T` time with optional fraction, optional zone; without a zone the local
/// one applies when `local` (Docker's `GetTimestamp` rules), else UTC.
fn parse_time(s: &str, local: bool) -> Option<(i64, u32)> {
    let num = |t: &str| t.parse::<u32>().ok();
    let (date, rest) = s.split_at(s.find(['T', 't']).unwrap_or(s.len()));
    let mut dp = date.splitn(3, '-');
    let y: i64 = dp.next()?.parse().ok()?;
    let mo = num(dp.next()?)?;
    let d = num(dp.next().unwrap_or("1")).filter(|_| true)?;
    let rest = rest.get(1..).unwrap_or("");
    // Split off the zone.
    let zpos = rest.rfind(['Z', 'z', '+', '-']);
    let (time, zone) = match zpos {
        Some(p) => (&rest[..p], Some(&rest[p..])),
        None => (rest, None),
    };
    let (clock, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut cp = clock.split(':');
    let h = cp.next().filter(|x| !x.is_empty()).map(num).unwrap_or(Some(0))?;
    let mi = cp.next().map(num).unwrap_or(Some(0))?;
    let sec = cp.next().map(num).unwrap_or(Some(0))?;
    let nanos: u32 = if frac.is_empty() { 0 } else { format!("{frac:0<9}")[..9].parse().ok()? };
    let base = days_from_civil(y, mo, d) * 86400 + (h * 3600 + mi * 60 + sec) as i64;
    let off = match zone {
        Some("Z") | Some("z") => 0,
        Some(z) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (zh, zm) = z[1..].split_once(':').unwrap_or((&z[1..], "0"));
            sign * (zh.parse::<i64>().ok()? * 3600 + zm.parse::<i64>().ok()? * 60)
        }
        None if local => local_zone(base).0,
        None => 0,
    };
    Some((base - off, nanos))
}

/// Go's `time.ParseDuration` in nanoseconds.
pub fn parse_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let val: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += val * mult;
        rest = &rest[u..];
    }
    Some(if neg { -(total as i128) } else { total as i128 })
}

/// Docker's `timetypes.GetTimestamp`: a duration ago, an RFC 3339-ish time, or Unix seconds
/// passed through; the result is what the API's `since`/`until` take.
pub fn get_timestamp(value: &str) -> Result<String, String> {
    let now = now().0;
    if value != "0" {
        if let Some(ns) = parse_duration(value) {
            return Ok((now - (ns / 1_000_000_000) as i64).to_string());
        }
    }
    let zoned = value.contains(['z', 'Z', '+']) || value.matches('-').count() == 3;
    if value.contains('-') {
        let (s, n) = parse_time(value, !zoned).ok_or_else(|| format!("parsing time {value:?}: cannot parse"))?;
        return Ok(format!("{s}.{n:09}"));
    }
    let (secs, frac) = value.split_once('.').unwrap_or((value, "0"));
    if secs.parse::<i64>().is_ok() && frac.parse::<u64>().is_ok() {
        return Ok(value.to_owned());
    }
    Err(format!("failed to parse value as time or duration: {value:?}"))
}

/// `units.RAMInBytes`: `512m`, `1.5g`, `2GB`, `100` (bytes); binary multiples.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let n = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let num: f64 = t[..n].parse().map_err(|_| format!("invalid size: '{s}'"))?;
    let unit = t[n..].trim().to_ascii_lowercase();
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(format!("invalid suffix: '{}'", &t[n..])),
    };
    Ok((num * mult) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(1982430.0, 3), "1.98MB");
        assert_eq!(human_size(16384.0, 3), "16.4kB");
        assert_eq!(human_size(0.0, 3), "0B");
        assert_eq!(human_size(2_000_000.0, 3), "2MB");
        assert_eq!(human_size(999.0, 3), "999B");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(ram_in_bytes("2GB").unwrap(), 2 << 30);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 3 << 29);
        assert!(ram_in_bytes("12x").is_err());
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(5 * 86400), "5 days");
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_rfc3339("2024-01-02T03:04:05.5Z"), Some((1704164645, 500_000_000)));
        assert_eq!(parse_rfc3339("2024-01-02T05:04:05+02:00").map(|x| x.0), Some(1704164645));
        assert_eq!(civil(1704164645), (2024, 1, 2, 3, 4, 5));
        assert_eq!(get_timestamp("1700000000.5").unwrap(), "1700000000.5");
        assert_eq!(get_timestamp("0").unwrap(), "0");
        assert!(get_timestamp("nonsense").is_err());
    }
}
