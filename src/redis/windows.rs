//! The maintenance and snapshot windows: AWS's formats (`ddd:hh24:mi-ddd:hh24:mi` weekly,
//! `hh24:mi-hh24:mi` daily, both UTC), the 60-minute minimum of each, and the rule that the daily
//! snapshot window never overlaps the weekly maintenance window (see docs/research, section 6:
//! the formats and minimums are AWS's API reference; the overlap rule is the service's own error,
//! quoted outside AWS's pages).
//!
//! The same arithmetic is written twice, once in Rust (the operator's second line of defence, unit
//! tested here) and once as CEL for the apiserver (refusal at apply time, tested on the bed with
//! the same cases).

/// What an omitted field means: the template's defaults, which are the seed's windows.
pub const DEFAULT_MAINTENANCE: &str = "sun:05:00-sun:07:00";
pub const DEFAULT_SNAPSHOT: &str = "03:00-05:00";
pub const MINIMUM_MINUTES: i64 = 60;
const DAY: i64 = 24 * 60;
const WEEK: i64 = 7 * DAY;
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The apiserver's patterns (the schema's `pattern`), also the template's AllowedPatterns.
pub const MAINTENANCE_PATTERN: &str = "^(sun|mon|tue|wed|thu|fri|sat):([01][0-9]|2[0-3]):[0-5][0-9]-(sun|mon|tue|wed|thu|fri|sat):([01][0-9]|2[0-3]):[0-5][0-9]$";
pub const SNAPSHOT_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$";

/// A window as minutes on a circle (a week or a day): where it starts and how long it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub minutes: i64,
}

fn clock(hh_mm: &str) -> Option<i64> {
    let (h, m) = hh_mm.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m) && hh_mm.len() == 5).then_some(h * 60 + m)
}

fn weekly(point: &str) -> Option<i64> {
    let (day, time) = point.split_at_checked(3)?;
    let day = DAYS.iter().position(|d| *d == day)? as i64;
    Some(day * DAY + clock(time.strip_prefix(':')?)?)
}

/// `ddd:hh24:mi-ddd:hh24:mi`, at least 60 minutes.
pub fn maintenance(text: &str) -> Result<Window, String> {
    let bad =
        || format!("maintenanceWindow {text:?} must be ddd:hh24:mi-ddd:hh24:mi in UTC, e.g. {DEFAULT_MAINTENANCE}");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (start, end) = (weekly(a).ok_or_else(bad)?, weekly(b).ok_or_else(bad)?);
    at_least_an_hour("maintenanceWindow", text, Window { start, minutes: (end - start).rem_euclid(WEEK) })
}

/// `hh24:mi-hh24:mi`, at least 60 minutes.
pub fn snapshot(text: &str) -> Result<Window, String> {
    let bad = || format!("snapshotWindow {text:?} must be hh24:mi-hh24:mi in UTC, e.g. {DEFAULT_SNAPSHOT}");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (start, end) = (clock(a).ok_or_else(bad)?, clock(b).ok_or_else(bad)?);
    at_least_an_hour("snapshotWindow", text, Window { start, minutes: (end - start).rem_euclid(DAY) })
}

fn at_least_an_hour(field: &str, text: &str, w: Window) -> Result<Window, String> {
    if w.minutes < MINIMUM_MINUTES {
        return Err(format!("{field} {text} lasts {} minutes; AWS needs at least {MINIMUM_MINUTES}", w.minutes));
    }
    Ok(w)
}

/// Whether the daily snapshot window meets the weekly maintenance window on any day.
pub fn overlap(maintenance: Window, snapshot: Window) -> bool {
    (0..7).any(|d| {
        let s = d * DAY + snapshot.start;
        (s - maintenance.start).rem_euclid(WEEK) < maintenance.minutes
            || (maintenance.start - s).rem_euclid(WEEK) < snapshot.minutes
    })
}

/// The windows as given (or defaulted), checked; the snapshot window only counts when automatic
/// snapshots are on.
pub fn check(maintenance_text: Option<&str>, snapshot_text: Option<&str>, snapshots_on: bool) -> Result<(), String> {
    let m = maintenance(maintenance_text.unwrap_or(DEFAULT_MAINTENANCE))?;
    let s = snapshot(snapshot_text.unwrap_or(DEFAULT_SNAPSHOT))?;
    if snapshots_on && overlap(m, s) {
        return Err(OVERLAP_MESSAGE.to_string());
    }
    Ok(())
}

pub const OVERLAP_MESSAGE: &str = "snapshotWindow and maintenanceWindow overlap (AWS refuses that): move one of them; omitted, they are 03:00-05:00 daily and sun:05:00-sun:07:00";

/// (maintenance window, snapshot window, snapshots on, words of the refusal or None).
pub type Example = (Option<&'static str>, Option<&'static str>, bool, Option<&'static str>);

/// Worked examples: (maintenance, snapshot, snapshots on, words of the refusal or None). The
/// unit tests check the Rust rules with them and a bed test the CEL rules, so the two agree.
pub const EXAMPLES: [Example; 9] = [
    (None, None, true, None),
    (Some("mon:23:30-tue:00:30"), Some("22:00-23:30"), true, None),
    (Some("sat:23:00-sun:01:00"), Some("00:30-01:30"), true, Some("overlap")),
    (Some("sat:23:00-sun:01:00"), Some("00:30-01:30"), false, None),
    (None, Some("06:00-07:00"), true, Some("overlap")),
    (Some("wed:10:00-wed:10:30"), None, true, Some("at least 60")),
    (None, Some("23:30-00:10"), true, Some("at least 60")),
    (Some("sun:07:00-sun:05:00"), Some("10:00-11:00"), true, Some("overlap")),
    (Some("fri:09:00-fri:10:00"), Some("23:00-01:00"), true, None),
];

// ----- the same as CEL (spec strings are bounded by maxLength, so the cost budget holds) -----

fn cel_weekly(w: &str, at: usize) -> String {
    let days: Vec<String> = DAYS.iter().enumerate().map(|(i, d)| format!("'{d}': {i}")).collect();
    format!(
        "({{{}}}[{w}.substring({at}, {})] * {DAY} + int({w}.substring({}, {})) * 60 + int({w}.substring({}, {})))",
        days.join(", "),
        at + 3,
        at + 4,
        at + 6,
        at + 7,
        at + 9
    )
}

fn cel_daily(w: &str, at: usize) -> String {
    format!("(int({w}.substring({at}, {})) * 60 + int({w}.substring({}, {})))", at + 2, at + 3, at + 5)
}

fn cel_maintenance(w: &str) -> (String, String) {
    let start = cel_weekly(w, 0);
    let minutes = format!("(({} - {start} + {WEEK}) % {WEEK})", cel_weekly(w, 10));
    (start, minutes)
}

fn cel_snapshot(w: &str) -> (String, String) {
    let start = cel_daily(w, 0);
    let minutes = format!("(({} - {start} + {DAY}) % {DAY})", cel_daily(w, 6));
    (start, minutes)
}

/// CEL on `spec.maintenanceWindow` (self is the string): at least 60 minutes.
pub fn maintenance_length_rule() -> String {
    format!("{} >= {MINIMUM_MINUTES}", cel_maintenance("self").1)
}

/// CEL on `spec.snapshotWindow` (self is the string): at least 60 minutes.
pub fn snapshot_length_rule() -> String {
    format!("{} >= {MINIMUM_MINUTES}", cel_snapshot("self").1)
}

/// CEL on `spec`: with snapshots on (`snapshots_on`, a CEL boolean), the daily snapshot window
/// meets the weekly maintenance window on no day. Omitted windows take the defaults.
pub fn no_overlap_rule(snapshots_on: &str) -> String {
    let m = format!("(has(self.maintenanceWindow) ? self.maintenanceWindow : '{DEFAULT_MAINTENANCE}')");
    let s = format!("(has(self.snapshotWindow) ? self.snapshotWindow : '{DEFAULT_SNAPSHOT}')");
    let ((m_start, m_minutes), (s_start, s_minutes)) = (cel_maintenance(&m), cel_snapshot(&s));
    format!(
        "!{snapshots_on} || ![0, 1, 2, 3, 4, 5, 6].exists(d, \
         (d * {DAY} + {s_start} - {m_start} + 2 * {WEEK}) % {WEEK} < {m_minutes} || \
         ({m_start} - d * {DAY} - {s_start} + 2 * {WEEK}) % {WEEK} < {s_minutes})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_awss_rules() {
        for (m, s, on, want) in EXAMPLES {
            match (check(m, s, on), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{m:?} {s:?}: {e}"),
                (got, want) => panic!("{m:?} {s:?} {on}: got {got:?}, want {want:?}"),
            }
        }
        assert!(maintenance("sun:5:00-sun:07:00").is_err());
        assert!(snapshot("24:00-01:00").is_err());
        assert_eq!(maintenance("sat:23:00-sun:01:00"), Ok(Window { start: 6 * DAY + 23 * 60, minutes: 120 }));
    }

    #[test]
    fn the_patterns_accept_the_defaults() {
        let m = regex::Regex::new(MAINTENANCE_PATTERN).expect("pattern");
        let s = regex::Regex::new(SNAPSHOT_PATTERN).expect("pattern");
        assert!(m.is_match(DEFAULT_MAINTENANCE) && s.is_match(DEFAULT_SNAPSHOT));
        assert!(!m.is_match("sun:5:00-sun:07:00") && !s.is_match("3:00-05:00"));
    }

    #[test]
    fn the_template_takes_the_same_defaults_and_patterns() {
        let t: serde_json::Value = serde_json::from_str(super::super::template::TEMPLATE_BODY).expect("json");
        use super::super::template::param;
        assert_eq!(t["Parameters"][param::MAINTENANCE_WINDOW]["Default"], DEFAULT_MAINTENANCE);
        assert_eq!(t["Parameters"][param::SNAPSHOT_WINDOW]["Default"], DEFAULT_SNAPSHOT);
        assert_eq!(t["Parameters"][param::MAINTENANCE_WINDOW]["AllowedPattern"], MAINTENANCE_PATTERN);
        assert_eq!(t["Parameters"][param::SNAPSHOT_WINDOW]["AllowedPattern"], SNAPSHOT_PATTERN);
    }
}
